"""Pipeline benchmark: tick-to-order latency, sustained bars/s, RSS growth. JSON lines out.

Run with ``make bench`` (or ``python bench/pipeline.py --quick`` for a short smoke run). Each
figure is printed beside the floor measured in the same Ray instance: three chained no-op actor
hops, so a slow machine is visible as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import ray

from tradeplane.cluster.names import resolve_actor
from tradeplane.config.loading import parse_config
from tradeplane.config.models import TradeplaneConfig
from tradeplane.supervisor import deployment

HERE = Path(__file__).resolve().parent
# Issue 15's figures. Each is printed beside the floor measured in the same run.
TARGETS = {
    "p50_tick_to_order_ms": 3.0,
    "p99_tick_to_order_ms": 10.0,
    "p99_tick_to_order_vs_floor_p99": 2.0,
    "sustained_bars_per_s": 20_000.0,
    "rss_growth_mib": 10.0,
}
# The broker's stages before it reported its own names (the journal commit and the halt gate
# were one stage then): so this bench still reads an older deployment's samples.
OLD_STAGES = ("bar_to_intent", "intent_to_approved", "approved_to_broker", "broker_to_sent")


def emit(record: dict[str, Any]) -> None:
    record.setdefault("ts", time.time())
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": pct(values, 0.5),
        "p95": pct(values, 0.95),
        "p99": pct(values, 0.99),
        "max": max(values) if values else None,
    }


def ratio(value: float | None, floor: float | None) -> float | None:
    return None if value is None or not floor else round(value / floor, 2)


# -- the floor: three chained no-op hops -------------------------------------------------------


@ray.remote(num_cpus=0)
class _Hop:
    def __init__(self, nxt: Any) -> None:
        self.nxt = nxt
        self.lat: list[float] = []

    async def on(self, t0: float) -> None:
        if self.nxt is None:
            self.lat.append((time.time() - t0) * 1000.0)
        else:
            self.nxt.on.remote(t0)

    async def take(self) -> list[float]:
        out, self.lat = self.lat, []
        return out


@ray.remote(num_cpus=0)
class _Pacer:
    async def run(self, first: Any, rate_per_s: float, duration_s: float) -> int:
        period, n = 1.0 / rate_per_s, 0
        due = time.monotonic()
        end = due + duration_s
        while time.monotonic() < end:
            first.on.remote(time.time())
            n += 1
            due += period
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        return n


def measure_floor(rate_per_s: float, duration_s: float) -> dict[str, Any]:
    c = _Hop.remote(None)
    b = _Hop.remote(c)
    a = _Hop.remote(b)
    pacer = _Pacer.remote()
    ray.get(pacer.run.remote(a, rate_per_s, 1.0))
    time.sleep(0.3)
    ray.get(c.take.remote())
    ray.get(pacer.run.remote(a, rate_per_s, duration_s))
    time.sleep(0.5)
    lat = ray.get(c.take.remote())
    for h in (a, b, c, pacer):
        ray.kill(h)
    return summary(lat)


# -- deployments -------------------------------------------------------------------------------


def bench_config(
    name: str,
    state_dir: Path,
    *,
    symbols: int,
    speed: float,
    strategy: str,
    every: int = 32,
    copies: int = 1,
    placement: dict[str, Any] | None = None,
    state_node: str | None = None,
) -> TradeplaneConfig:
    """``copies`` strategies (``bench``, then ``bench1``...), each with the ``placement`` fields
    (``resources``/``labels``); ``state_node`` as in ``[deployment]`` (bench/nodes.py)."""
    syms = [f"S{i:03d}" for i in range(symbols)]
    where = {"state_node": state_node} if state_node else {}
    return parse_config(
        {
            "deployment": {
                "name": name,
                "mode": "paper",
                "state_dir": str(state_dir),
                **where,
            },
            "venue": {
                "kind": "sim",
                "sim": {"symbols": syms, "seed": 11, "speed": speed, "history_bars": 0},
            },
            "journal": {"bars": "summary", "fsync": True},
            "supervisor": {"feed_silence_s": 30.0, "inflight_limit": 64},
            "strategies": [
                {
                    "name": f"bench{i or ''}",
                    "path": str(HERE / "strategies" / "pinger.py"),
                    "class_name": strategy,
                    "params": {"every": every},
                    **(placement or {}),
                }
                for i in range(copies)
            ],
        },
        source="bench",
    )


def heartbeats(sup: Any) -> dict[str, Any]:
    status: dict[str, Any] = ray.get(sup.status.remote(), timeout=10)
    return status


def role_handle(name: str, role: str) -> Any:
    """The actor playing ``role`` now (a promoted standby keeps its own name)."""
    handle = resolve_actor(name, role)
    if handle is None:
        raise LookupError(f"{name}: no actor plays {role}")
    return handle


def broker_handle(name: str) -> Any:
    return role_handle(name, "broker")


def feed_handle(name: str) -> Any:
    return role_handle(name, "feed")


# The throughput deployment runs two strategies (issue 15: 32 symbols, two strategies).
ROLES = ("journal", "venue", "broker", "risk", "strategy/bench", "strategy/bench1", "feed")


def rss_by_role(name: str) -> dict[str, int]:
    out = {}
    for role in ROLES:
        h = role_handle(name, role)
        out[role] = ray.get(h.heartbeat.remote(), timeout=10)["process"]["rss_bytes"]
    return out


def measure_latency(
    tmp: Path,
    *,
    symbols: int,
    ticks_per_s: float,
    duration_s: float,
    every: int,
    profile_s: float = 0.0,
) -> dict[str, Any]:
    name = "bench-latency"
    cfg = bench_config(
        name, tmp / name, symbols=symbols, speed=60.0 * ticks_per_s, strategy="Pinger", every=every
    )
    deployment.deploy(cfg)
    try:
        broker = broker_handle(name)
        time.sleep(3.0)  # warm-up: first calls resolve handles and fill caches
        ray.get(broker.latency_samples.remote(clear=True))
        feed = feed_handle(name)
        bars0 = ray.get(feed.heartbeat.remote())["bars"]
        time.sleep(duration_s)
        bars1 = ray.get(feed.heartbeat.remote())
        samples = ray.get(broker.latency_samples.remote(clear=True))
        # The same three no-op hops while this deployment runs: how much of each hop is the
        # machine being busy with the pipeline's own work, not the pipeline's code path.
        loaded_floor = measure_floor(ticks_per_s, min(duration_s, 10.0))
        profile: dict[str, Any] = {}
        if profile_s > 0:
            # After the figures, so the sampling costs them nothing: the busiest actor on the
            # order path under this load.
            cpu = cpu_by_role(name, roles=LATENCY_ROLES)
            busiest = max(cpu, key=lambda r: cpu[r][1])
            profile = {
                "cpu_pct_by_role": {r: c for r, (_, c) in cpu.items()},
                "busiest": busiest,
                busiest: py_spy_profile(cpu[busiest][0], profile_s),
            }
        journal_view = journal_commit_view(name, samples)
        gc_by_role = {
            role: ray.get(role_handle(name, role).heartbeat.remote(), timeout=10)["process"].get(
                "gc"
            )
            for role in ("strategy/bench", "risk", "broker", "journal")
        }
        stages = samples["stages_ms"]
        names = samples.get("stages") or OLD_STAGES
        # The stages add up to the total per order; their medians need not add up to its.
        sums = [sum(s) - t for s, t in zip(stages, samples["total_ms"], strict=True)]
        return {
            "tick_to_order_ms": summary(samples["total_ms"]),
            "stages_ms": {n: summary([s[i] for s in stages]) for i, n in enumerate(names)},
            "stages_sum_minus_total_ms_max": max((abs(d) for d in sums), default=None),
            "venue_call_ms": summary(samples.get("venue_call_ms") or []),
            "floor_under_load_ms": loaded_floor,
            "bars_per_s": (bars1["bars"] - bars0) / duration_s,
            "orders_per_s": len(samples["total_ms"]) / duration_s,
            "backpressure_waits": bars1["outbox"]["backpressure_waits"],
            "journal_commit_inside": journal_view,
            "gc_by_role": gc_by_role,
            "profile": profile,
        }
    finally:
        deployment.stop(name)


def _overlaps(start: float, end: float, runs: list[list[float]]) -> bool:
    """Whether any (wall start, ms) run overlaps [start, end]."""
    return any(r0 < end and r0 + ms / 1000.0 > start for r0, ms in runs)


def journal_commit_view(name: str, samples: dict[str, Any]) -> dict[str, Any] | None:
    """Inside the journal-commit stage: the journal's own timings of the batches that held an
    ``order_submitting`` (``JournalActor.commit_trace``), and for the slowest 2 % of the
    stage's samples what ran beside them (checkpoints, JSONL syncs, the journal's collector)."""
    journal = role_handle(name, "journal")
    if not hasattr(journal, "commit_trace"):
        return None  # an older journal without the trace
    trace = ray.get(journal.commit_trace.remote(clear=True))
    fields = trace["fields"]
    batches = [dict(zip(fields, b, strict=True)) for b in trace["batches"]]
    orders = [b for b in batches if b["submitting"]]
    since = min(samples.get("received_ts") or [0.0])
    runs = {
        "checkpoint": [r for r in trace["checkpoints"] if r[0] >= since - 1],
        "sync": [r for r in trace["syncs"] if r[0] >= since - 1],
        "gc": [r[:2] for r in trace["gc"] if r[0] >= since - 1],
    }
    view: dict[str, Any] = {
        "batches": len(batches),
        "order_batches": {
            f: summary([float(b[f]) for b in orders]) for f in fields if f.endswith("_ms")
        },
        "order_batch_records": summary([float(b["records"]) for b in orders]),
        "background_ms": {k: summary([ms for _, ms in v]) for k, v in runs.items()},
    }
    stage = [s[3] for s in samples["stages_ms"]]
    received = samples.get("received_ts") or []
    if stage and received:
        cut = pct(stage, 0.98) or 0.0
        slow = [(t, ms) for t, ms in zip(received, stage, strict=True) if ms >= cut]
        view["slowest_2pct"] = {
            "n": len(slow),
            "from_ms": cut,
            "overlapping": {
                k: sum(_overlaps(t, t + ms / 1000.0, v) for t, ms in slow) for k, v in runs.items()
            },
            # The same share over every sample: an overlap that is no more frequent among the
            # slow ones than among all explains nothing.
            "overlapping_all_pct": {
                k: round(
                    100.0
                    * sum(
                        _overlaps(t, t + ms / 1000.0, v)
                        for t, ms in zip(received, stage, strict=True)
                    )
                    / len(stage),
                    1,
                )
                for k, v in runs.items()
            },
        }
    return view


def sustained_rate(feed: Any, *, total_bars: int, window_s: float = 2.0) -> dict[str, Any]:
    """The feed's bars/s over the next ``total_bars`` bars (call it once warmed up), and the
    slowest ``window_s`` window."""
    warm = ray.get(feed.heartbeat.remote())["bars"]
    t0 = time.monotonic()
    windows: list[float] = []
    last_bars, last_t = warm, t0
    inflight_max = 0
    while True:
        time.sleep(window_s)
        beat = ray.get(feed.heartbeat.remote())
        now = time.monotonic()
        windows.append((beat["bars"] - last_bars) / (now - last_t))
        last_bars, last_t = beat["bars"], now
        inflight_max = max(inflight_max, max(beat["inflight"].values() or [0]))
        if beat["bars"] - warm >= total_bars:
            break
    elapsed = time.monotonic() - t0
    return {
        "bars": last_bars - warm,
        "seconds": elapsed,
        "sustained_bars_per_s": (last_bars - warm) / elapsed,
        "min_window_bars_per_s": min(windows),
        "max_inflight_per_subscriber": inflight_max,
    }


LATENCY_ROLES = ("journal", "venue", "broker", "risk", "strategy/bench", "feed")


def cpu_by_role(
    name: str, window_s: float = 2.0, roles: tuple[str, ...] = ROLES
) -> dict[str, tuple[int, float]]:
    """(pid, % of one core over ``window_s``) of each actor process."""
    procs = {}
    for role in roles:
        h = role_handle(name, role)
        pid = ray.get(h.heartbeat.remote(), timeout=10)["process"]["pid"]
        procs[role] = psutil.Process(pid)
        procs[role].cpu_percent(None)
    time.sleep(window_s)
    return {role: (p.pid, p.cpu_percent(None)) for role, p in procs.items()}


def py_spy_profile(pid: int, seconds: float, top: int = 15) -> dict[str, Any]:
    """Sample ``pid`` with py-spy (``pip install py-spy``, in the dev extra) for ``seconds``;
    the functions with the largest share of samples, on their own (self) and with what they
    call (inclusive). Idle event-loop waits are counted and reported apart."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        return {"error": "py-spy not installed (pip install py-spy)"}
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        cmd = [exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"]
        cmd += ["-f", "raw", "-o", out.name, "--nonblocking"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
        lines = Path(out.name).read_text().splitlines()
    if not lines:
        return {"error": (run.stderr or run.stdout)[-500:]}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].rsplit("/", 1)[-1]
            for f in stack.split(";")
            if " (" in f
        ]
        total += n
        if not frames or frames[-1].startswith(("select (", "poll (", "epoll_wait", "_run_once")):
            idle += n
        if frames:
            own[frames[-1]] += n
            for f in set(frames):
                inclusive[f] += n

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100.0 * n / total, 1)) for f, n in c.most_common(top)]

    return {
        "samples": total,
        "idle_pct": round(100.0 * idle / max(1, total), 1),
        "self_pct": share(own),
        "inclusive_pct": share(inclusive),
    }


def measure_throughput_and_memory(
    tmp: Path, *, symbols: int, total_bars: int, profile_s: float = 0.0
) -> dict[str, Any]:
    """Unpaced feed (backpressure is the only brake): the rate it sustains, and RSS growth.

    Memory is measured after a warm-up that fills every bounded buffer (the feed's replay ring:
    ``replay_bars`` per symbol), so the figure is growth that would continue, not a cache
    filling up once."""
    name = "bench-throughput"
    cfg = bench_config(name, tmp / name, symbols=symbols, speed=1e9, strategy="Idle", copies=2)
    deployment.deploy(cfg)
    try:
        feed = feed_handle(name)
        warm_up_bars = max(20_000, cfg.supervisor.replay_bars * symbols * 2)
        while ray.get(feed.heartbeat.remote())["bars"] < warm_up_bars:
            time.sleep(0.5)
        rss0 = rss_by_role(name)
        rate = sustained_rate(feed, total_bars=total_bars)
        rss1 = rss_by_role(name)
        profile: dict[str, Any] = {}
        if profile_s > 0:
            # After the figures above, so the sampling costs them nothing.
            cpu = cpu_by_role(name)
            busiest = max(cpu, key=lambda r: cpu[r][1])
            profile = {
                "cpu_pct_by_role": {r: c for r, (_, c) in cpu.items()},
                "busiest": busiest,
                busiest: py_spy_profile(cpu[busiest][0], profile_s),
            }
        return {
            "profile": profile,
            **rate,
            "inflight_limit": cfg.supervisor.inflight_limit,
            "warm_up_bars": warm_up_bars,
            "rss_start_mib": sum(rss0.values()) / 2**20,
            "rss_end_mib": sum(rss1.values()) / 2**20,
            "rss_growth_mib": (sum(rss1.values()) - sum(rss0.values())) / 2**20,
            "rss_growth_mib_by_role": {r: (rss1[r] - rss0[r]) / 2**20 for r in ROLES},
        }
    finally:
        deployment.stop(name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (smoke test, not a result)")
    ap.add_argument("--symbols", type=int, default=32)
    ap.add_argument("--ticks-per-s", type=float, default=100.0)
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--memory-bars", type=int, default=360_000)
    ap.add_argument(
        "--every",
        type=int,
        default=320,
        help="Pinger trades 1 in N bars per symbol (320 at 100 ticks x 32 symbols: 10 orders/s)",
    )
    ap.add_argument(
        "--profile-s",
        type=float,
        default=0.0,
        help="after the throughput figures (with --latency-only: the latency figures), sample "
        "the busiest actor with py-spy this long",
    )
    ap.add_argument("--latency-only", action="store_true", help="floor and tick-to-order only")
    args = ap.parse_args()
    if args.quick:
        args.duration_s, args.memory_bars = 5.0, 20_000
    deployment.connect(None)
    with tempfile.TemporaryDirectory(prefix="tradeplane-bench-") as tmp_name:
        tmp = Path(tmp_name)
        floor = measure_floor(args.ticks_per_s, min(args.duration_s, 20.0))
        emit({"bench": "floor_three_noop_hops", "rate_per_s": args.ticks_per_s, "ms": floor})
        lat = measure_latency(
            tmp,
            symbols=args.symbols,
            ticks_per_s=args.ticks_per_s,
            duration_s=args.duration_s,
            every=args.every,
            profile_s=args.profile_s if args.latency_only else 0.0,
        )
        total = lat["tick_to_order_ms"]
        emit(
            {
                "bench": "tick_to_order",
                "symbols": args.symbols,
                "ticks_per_s": args.ticks_per_s,
                "duration_s": args.duration_s,
                **lat,
                "floor_ms": floor,
                "p99_vs_floor_p99": ratio(total["p99"], floor["p99"]),
                "p50_vs_floor_p50": ratio(total["p50"], floor["p50"]),
                "target_p50_ms": TARGETS["p50_tick_to_order_ms"],
                "target_p99_ms": TARGETS["p99_tick_to_order_ms"],
                "target_p99_vs_floor_p99": TARGETS["p99_tick_to_order_vs_floor_p99"],
            }
        )
        if args.latency_only:
            ray.shutdown()
            return 0
        thr = measure_throughput_and_memory(
            tmp, symbols=args.symbols, total_bars=args.memory_bars, profile_s=args.profile_s
        )
        emit(
            {
                "bench": "throughput_and_memory",
                "symbols": args.symbols,
                **thr,
                "floor_ms": floor,
                "target_bars_per_s": TARGETS["sustained_bars_per_s"],
                "target_rss_growth_mib": TARGETS["rss_growth_mib"],
            }
        )
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
