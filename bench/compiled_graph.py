"""Ray compiled graphs (``ray.dag``) for the tick-to-order path: latency, rebuild, constraints.

Evidence for issue 15, not a production path: tradeplane does not use compiled graphs. JSON lines
on stdout, each figure beside the floor measured in the same Ray instance (three chained no-op
actor calls the normal way, exactly as ``bench/pipeline.py`` measures it). Sections:

1. ``floor_three_noop_hops``: the normal-call floor (bench/pipeline.py's ``measure_floor``).
2. ``compiled_three_hops``: the same three hops as a compiled graph.
3. ``path_five_actors``: feed -> strategy -> risk -> broker -> journal -> broker with realistic
   payloads (a ``BarBatch`` of 32 bars, real ``Intent``/``SubmitOrder`` objects, the broker's
   real ``order_submitting`` record, a real fsynced ``JournalStore`` commit), compiled and with
   normal calls (async actors, fire-and-forget like the deployment), with each stage's CPU.
4. ``rebuild``: SIGKILL one actor of the compiled path; the driver's detection, teardown,
   replacement (fresh actor, or a pre-started standby), recompile, first good execute.
5. ``constraint_*``: ordinary calls into compiled actors, an actor as the graph's driver, async
   actor methods in a graph, two strategies fanned in to one risk (with a slow or failing one).

Not in ``make bench`` (about 4 minutes). Run it under the Ray lock::

    flock /tmp/tradeplane-ray.lock .venv/bin/python bench/compiled_graph.py
    .venv/bin/python bench/compiled_graph.py --quick          # smoke run, not a result
    .venv/bin/python bench/compiled_graph.py --only rebuild --kills 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import ray
from pipeline import measure_floor, ratio, summary
from ray.dag import InputNode, MultiOutputNode

from tradeplane.actors.records import submitting_record
from tradeplane.core.clock import SystemClock
from tradeplane.core.execution import ExecutionCore
from tradeplane.core.model import Bar, BarBatch, Intent, OrderType, Side, SubmitOrder
from tradeplane.journal.records import JournalRecord
from tradeplane.journal.store import JournalStore
from tradeplane.supervisor import deployment

TARGETS = {
    "p50_tick_to_order_ms": 3.0,  # issue 15
    "p99_tick_to_order_ms": 10.0,
    "recovery_median_s": 0.5,  # issue 15: SIGKILL -> healthy again
    "recovery_p95_s": 1.0,
}
ISSUE_COMPILED_THREE_HOPS_MS = {"p50": 0.31, "p99": 0.61}  # the figure issue 15 quotes
DEPLOYMENT = "bench-cg"
SYMBOLS = tuple(f"S{i:03d}" for i in range(32))
ROLES = ("feed", "strategy", "risk", "broker", "journal")
# Ray prints "(raylet) A worker died ..." on the driver's sys.stdout after a kill: results go to
# the real stdout and sys.stdout is pointed at stderr in main(), as in bench/recovery.py.
RESULTS = sys.stdout

Msg = tuple[int, float, Any]  # (tick, t0 = when the feed published the bars, payload)


def emit(record: dict[str, Any]) -> None:
    record.setdefault("ts", time.time())
    RESULTS.write(json.dumps(record) + "\n")
    RESULTS.flush()


# -- the stages' work: plain functions, the same for both shells -------------------------------

BASE_TS = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def bars_for(tick: int) -> BarBatch:
    """One tick of the sim feed: a bar per symbol (what the feed pushes to each strategy)."""
    ts = BASE_TS + timedelta(minutes=tick)
    out = BarBatch()
    for i, s in enumerate(SYMBOLS):
        px = 100.0 + i + (tick % 7) * 0.01
        out.append(Bar(s, ts, px, px + 0.2, px - 0.2, px + 0.05, 1000.0 + tick % 13))
    return out


def intents_for(name: str, tick: int, bars: list[Bar], every: int, per_signal: int) -> list[Intent]:
    """0 intents on most ticks, ``per_signal`` on one tick in ``every``."""
    if tick % every:
        return []
    now = time.time()
    out = []
    for k in range(per_signal):
        b = bars[k % len(bars)]
        iid = f"{name}-{tick}-{k}"
        out.append(
            Intent(
                intent_id=iid,
                client_order_id=f"c-{iid}",
                deployment=DEPLOYMENT,
                strategy=name,
                symbol=b.symbol,
                side=Side.BUY if tick % 2 else Side.SELL,
                quantity=1.0,
                order_type=OrderType.LIMIT,
                limit_price=b.close,
                ts=now,
                trigger=f"bar:{b.symbol}:{b.ts.isoformat()}",
                bar_recv_ts=now,
                traceparent=f"00-{tick:032x}-{k + 1:016x}-01",
            )
        )
    return out


def approve(intents: list[Intent]) -> list[SubmitOrder]:
    now = time.time()
    return [
        SubmitOrder(
            i,
            approved_ts=now,
            reference_price=i.limit_price,
            traceparent=i.traceparent,
            received_ts=now,
            approved_by=(("risk", 1), (f"strategy/{i.strategy}", 1)),
        )
        for i in intents
    ]


class BrokerCore:
    def __init__(self) -> None:
        self.core = ExecutionCore(SystemClock())

    def submitting(self, cmds: list[SubmitOrder]) -> list[JournalRecord]:
        out = []
        for cmd in cmds:
            begun = self.core.begin_submit(cmd)
            if begun is not None:
                rec = submitting_record(
                    DEPLOYMENT, begun, cmd, broker_received_ts=time.time(), traceparent=None
                )
                out.append(rec)
        return out


def open_store(state_dir: str) -> JournalStore:
    return JournalStore.open(Path(state_dir), DEPLOYMENT, fsync=True)


# -- compiled-graph shells: threaded (sync) actors ---------------------------------------------


class _Stage:
    """What every stage answers outside the graph: its pid, a heartbeat, a ready check."""

    def __init__(self) -> None:
        self.started = False

    def pid(self) -> int:
        return os.getpid()

    def heartbeat(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "ts": time.time(), "started": self.started}


@ray.remote(num_cpus=0)
class CFeed(_Stage):
    def start(self, cfg: dict[str, Any]) -> bool:
        self.started = True
        return True

    def publish(self, tick: int) -> Msg:
        bars = bars_for(tick)
        return (tick, time.time(), bars)


@ray.remote(num_cpus=0)
class CStrategy(_Stage):
    def start(self, cfg: dict[str, Any]) -> bool:
        self.name = str(cfg.get("name", "s1"))
        self.every, self.per_signal = int(cfg.get("every", 10)), int(cfg.get("per_signal", 1))
        self.slow_every, self.slow_s = int(cfg.get("slow_every", 0)), float(cfg.get("slow_s", 0))
        self.raise_every = int(cfg.get("raise_every", 0))
        self.started = True
        return True

    def on_bars(self, msg: Msg) -> Msg:
        tick, t0, bars = msg
        if self.slow_every and tick % self.slow_every == 0:
            time.sleep(self.slow_s)
        if self.raise_every and tick % self.raise_every == 0:
            raise ValueError(f"strategy {self.name} failed on tick {tick}")
        return (tick, t0, intents_for(self.name, tick, bars, self.every, self.per_signal))


@ray.remote(num_cpus=0)
class CRisk(_Stage):
    def start(self, cfg: dict[str, Any]) -> bool:
        self.started = True
        return True

    def check(self, msg: Msg) -> Msg:
        tick, t0, intents = msg
        return (tick, t0, approve(intents))

    def check_many(self, *msgs: Msg) -> Msg:
        """One risk for several strategies: every strategy's intents of this tick."""
        intents = [i for m in msgs for i in m[2]]
        return (msgs[0][0], msgs[0][1], approve(intents))


@ray.remote(num_cpus=0)
class CBroker(_Stage):
    def start(self, cfg: dict[str, Any]) -> bool:
        self.core = BrokerCore()
        self.started = True
        return True

    def begin(self, msg: Msg) -> Msg:
        tick, t0, cmds = msg
        return (tick, t0, self.core.submitting(cmds))

    def sent(self, msg: Msg) -> tuple[int, float, int, float]:
        """After the journal: the orders would leave now. (tick, t0, orders, tick-to-order ms)."""
        tick, t0, seqs = msg
        return (tick, t0, len(seqs), (time.time() - t0) * 1000.0)


@ray.remote(num_cpus=0)
class CJournal(_Stage):
    def start(self, cfg: dict[str, Any]) -> bool:
        self.store = open_store(cfg["state_dir"])
        self.started = True
        return True

    def commit(self, msg: Msg) -> Msg:
        tick, t0, records = msg
        return (tick, t0, self.store.commit(records) if records else [])


CLASSES: dict[str, Any] = {
    "feed": CFeed,
    "strategy": CStrategy,
    "risk": CRisk,
    "broker": CBroker,
    "journal": CJournal,
}


def build_path(h: dict[str, Any]) -> Any:
    """feed -> strategy -> risk -> broker -> journal -> broker, one tick per execute."""
    with InputNode() as tick:
        bars = h["feed"].publish.bind(tick)
        intents = h["strategy"].on_bars.bind(bars)
        cmds = h["risk"].check.bind(intents)
        records = h["broker"].begin.bind(cmds)
        seqs = h["journal"].commit.bind(records)
        dag = h["broker"].sent.bind(seqs)
    return dag


def start_path(state_dir: str, every: int, per_signal: int) -> dict[str, Any]:
    cfgs = stage_configs(state_dir, every, per_signal)
    h = {role: CLASSES[role].remote() for role in ROLES}
    ray.get([h[r].start.remote(cfgs[r]) for r in ROLES])
    return h


def stage_configs(state_dir: str, every: int, per_signal: int) -> dict[str, dict[str, Any]]:
    base: dict[str, Any] = {"state_dir": state_dir, "every": every, "per_signal": per_signal}
    return {r: dict(base) for r in ROLES}


def paced(rate_per_s: float, duration_s: float, step: Callable[[int], None]) -> int:
    period, n = 1.0 / rate_per_s, 0
    due = time.monotonic()
    end = due + duration_s
    while time.monotonic() < end:
        step(n)
        n += 1
        due += period
        time.sleep(max(0.0, due - time.monotonic()))
    return n


def cpu_watch(pids: dict[str, int]) -> Callable[[], dict[str, float]]:
    procs = {r: psutil.Process(p) for r, p in pids.items()}
    for p in procs.values():
        p.cpu_percent(None)
    return lambda: {r: round(p.cpu_percent(None), 1) for r, p in procs.items()}


def run_compiled(
    cg: Any, rate_per_s: float, duration_s: float, tick0: int = 0
) -> dict[str, list[float]]:
    """Paced ticks through a compiled path; tick-to-order (feed published -> broker after the
    journal) of the ticks with orders, the same for ticks without, and the driver's round trip."""
    out: dict[str, list[float]] = {"with_orders": [], "without_orders": [], "round_trip": []}

    def step(n: int) -> None:
        t = time.time()
        _, _, orders, ms = ray.get(cg.execute(tick0 + n))
        out["round_trip"].append((time.time() - t) * 1000.0)
        out["with_orders" if orders else "without_orders"].append(ms)

    paced(rate_per_s, duration_s, step)
    return out


# -- normal-call shells: async actors, fire-and-forget as the deployment does ------------------


@ray.remote(num_cpus=0)
class NStage:
    """One shell for every role; ``nxt`` is the next stage (the broker's is the journal)."""

    def __init__(self, role: str, cfg: dict[str, Any], nxt: Any) -> None:
        self.role, self.nxt, self.cfg = role, nxt, cfg
        self.lat: list[float] = []
        if role == "broker":
            self.broker = BrokerCore()
        if role == "journal":
            self.store = open_store(cfg["state_dir"])

    async def pid(self) -> int:
        return os.getpid()

    async def on(self, tick: int, t0: float, payload: Any) -> Any:
        cfg, nxt = self.cfg, self.nxt
        if self.role == "feed":
            nxt.on.remote(tick, t0, payload)
        elif self.role == "strategy":
            intents = intents_for("s1", tick, payload, cfg["every"], cfg["per_signal"])
            if intents:  # nothing to send on most ticks: the path stops here
                nxt.on.remote(tick, t0, intents)
        elif self.role == "risk":
            nxt.on.remote(tick, t0, approve(payload))
        elif self.role == "broker":
            records = self.broker.submitting(payload)
            await nxt.on.remote(tick, t0, records)
            self.lat.append((time.time() - t0) * 1000.0)
        else:
            return self.store.commit(payload)
        return None

    async def run(self, rate_per_s: float, duration_s: float, tick0: int) -> int:
        """The feed's pacer: a tick of 32 bars published every 1/rate s."""
        period, n = 1.0 / rate_per_s, 0
        due = time.monotonic()
        end = due + duration_s
        while time.monotonic() < end:
            bars = bars_for(tick0 + n)
            self.nxt.on.remote(tick0 + n, time.time(), bars)
            n += 1
            due += period
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        return n

    async def take(self) -> list[float]:
        out, self.lat = self.lat, []
        return out


def measure_normal_path(
    state_dir: str, rate: float, duration_s: float, every: int, per_signal: int
) -> dict[str, Any]:
    cfg = {"state_dir": state_dir, "every": every, "per_signal": per_signal}
    h: dict[str, Any] = {}
    nxt = None
    for role in ("journal", "broker", "risk", "strategy", "feed"):
        h[role] = NStage.remote(role, cfg, nxt)  # type: ignore[attr-defined]
        nxt = h[role]
    pids = {r: ray.get(h[r].pid.remote()) for r in ROLES}
    ray.get(h["feed"].run.remote(rate, 1.0, 0))  # warm-up
    time.sleep(0.3)
    ray.get(h["broker"].take.remote())
    cpu = cpu_watch(pids)
    ray.get(h["feed"].run.remote(rate, duration_s, 10_000_000))
    time.sleep(0.5)
    cpu_pct = cpu()
    lat = ray.get(h["broker"].take.remote())
    for a in h.values():
        ray.kill(a)
    return {"tick_to_order_ms": summary(lat), "cpu_pct_by_stage": cpu_pct}


def measure_compiled_path(
    state_dir: str, rate: float, duration_s: float, every: int, per_signal: int
) -> dict[str, Any]:
    h = start_path(state_dir, every, per_signal)
    pids = {r: ray.get(h[r].pid.remote()) for r in ROLES}
    cg = build_path(h).experimental_compile()
    try:
        run_compiled(cg, rate, 1.0)  # warm-up
        # (5) ordinary calls into a compiled actor while the graph runs: a heartbeat every 0.25 s
        beats: list[float] = []
        errors: list[str] = []
        stop = threading.Event()

        def heartbeat_loop() -> None:
            while not stop.wait(0.25):
                t = time.time()
                try:
                    ray.get(h["broker"].heartbeat.remote(), timeout=5)
                    beats.append((time.time() - t) * 1000.0)
                except Exception as exc:  # what the answer is, not a failure of the bench
                    errors.append(repr(exc)[:200])

        beat_thread = threading.Thread(target=heartbeat_loop, daemon=True)
        beat_thread.start()
        cpu = cpu_watch(pids)
        out = run_compiled(cg, rate, duration_s, tick0=10_000_000)
        cpu_pct = cpu()
        stop.set()
        beat_thread.join()
        # The normal-call floor while this graph sits compiled between ticks: what its actors'
        # waiting costs every other actor on the machine (supervisor, venue, telemetry).
        cpu = cpu_watch(pids)
        floor_beside = measure_floor(rate, min(duration_s, 5.0))
        cpu_idle = cpu()
    finally:
        cg.teardown()
        for a in h.values():
            ray.kill(a)
    return {
        "tick_to_order_ms": summary(out["with_orders"]),
        "ticks_without_orders_ms": summary(out["without_orders"]),
        "driver_round_trip_ms": summary(out["round_trip"]),
        "cpu_pct_by_stage": cpu_pct,
        "floor_ms_beside_idle_graph": floor_beside,
        "cpu_pct_by_stage_idle_graph": cpu_idle,
        "heartbeats_during_graph": {
            "ok": len(beats),
            "errors": errors[:3],
            "n_errors": len(errors),
            "ms": summary(beats),
        },
    }


# -- the three-hop floor as a compiled graph ---------------------------------------------------


@ray.remote(num_cpus=0)
class CHop:
    def hop(self, t0: float) -> float:
        return t0

    def last(self, t0: float) -> float:
        return (time.time() - t0) * 1000.0


def measure_compiled_hops(rate: float, duration_s: float) -> dict[str, Any]:
    a, b, c = CHop.remote(), CHop.remote(), CHop.remote()  # type: ignore[attr-defined]
    with InputNode() as t0:
        dag = c.last.bind(b.hop.bind(a.hop.bind(t0)))
    cg = dag.experimental_compile()
    one_way: list[float] = []
    round_trip: list[float] = []

    def step(_: int) -> None:
        t = time.time()
        one_way.append(ray.get(cg.execute(t)))
        round_trip.append((time.time() - t) * 1000.0)

    try:
        paced(rate, 1.0, step)
        one_way.clear()
        round_trip.clear()
        paced(rate, duration_s, step)
    finally:
        cg.teardown()
        for h in (a, b, c):
            ray.kill(h)
    # one way: driver -> a -> b -> c (three hops, as the floor); round trip adds c -> driver
    return {"one_way_ms": summary(one_way), "round_trip_ms": summary(round_trip)}


# -- rebuild after a SIGKILL -------------------------------------------------------------------


def measure_rebuild(
    state_dir: str, kills: int, standby: bool, *, gap_s: float = 0.5
) -> dict[str, Any]:
    """Kill a stage of the compiled path (round robin over the roles) while ticks run at 100/s,
    then: driver learns (an execute or its get raises), teardown, replacement (a fresh actor,
    or a started-ahead standby of that role, which is only told to start), recompile, first
    good execute. Times from the kill, on the driver's monotonic clock."""
    cfgs = stage_configs(state_dir, 10, 1)
    h = start_path(state_dir, 10, 1)
    standbys = {r: CLASSES[r].remote() for r in ROLES} if standby else {}
    if standbys:
        ray.get([s.pid.remote() for s in standbys.values()])
    cg = build_path(h).experimental_compile(_submit_timeout=5)
    rows: list[dict[str, Any]] = []
    tick = 0
    try:
        for k in range(kills):
            for _ in range(20):  # the graph is up and ticking
                ray.get(cg.execute(tick))
                tick += 1
            role = ROLES[k % len(ROLES)]
            pid = ray.get(h[role].pid.remote())
            t_kill = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            error = ""
            while True:
                try:
                    ray.get(cg.execute(tick), timeout=5)
                    tick += 1
                    time.sleep(0.01)
                except Exception as exc:
                    error = type(exc).__name__
                    break
            t_detect = time.monotonic()
            cg.teardown()
            t_teardown = time.monotonic()
            if standby:
                h[role] = standbys.pop(role)
            else:
                h[role] = CLASSES[role].remote()
            ray.get(h[role].start.remote(cfgs[role]))
            t_replaced = time.monotonic()
            cg = build_path(h).experimental_compile(_submit_timeout=5)
            t_compiled = time.monotonic()
            ray.get(cg.execute(tick))
            tick += 1
            t_first = time.monotonic()
            rows.append(
                {
                    "role": role,
                    "error": error,
                    "detect_s": t_detect - t_kill,
                    "teardown_s": t_teardown - t_detect,
                    "replace_s": t_replaced - t_teardown,
                    "recompile_s": t_compiled - t_replaced,
                    "first_execute_s": t_first - t_compiled,
                    "total_s": t_first - t_kill,
                }
            )
            if standby:  # the used standby is replaced off the recovery's path, as tradeplane does
                standbys[role] = CLASSES[role].remote()
                ray.get(standbys[role].pid.remote())
            time.sleep(gap_s)
    finally:
        cg.teardown()
        for a in [*h.values(), *standbys.values()]:
            ray.kill(a)
    keys = ("detect_s", "teardown_s", "replace_s", "recompile_s", "first_execute_s", "total_s")
    med = {key: summary([r[key] for r in rows]) for key in keys}
    return {
        "kills": len(rows),
        "standby": standby,
        "errors_seen": sorted({r["error"] for r in rows}),
        "s": {key: {"p50": m["p50"], "p95": m["p95"], "max": m["max"]} for key, m in med.items()},
        "total_s_by_role": {
            r: summary([x["total_s"] for x in rows if x["role"] == r]) for r in ROLES
        },
        "target_median_s": TARGETS["recovery_median_s"],
        "target_p95_s": TARGETS["recovery_p95_s"],
    }


# -- constraints for adoption, by experiment ---------------------------------------------------


def attempt(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """An experiment's figures, or the error that answers the question."""
    try:
        return {"works": True, **fn()}
    except Exception as exc:
        return {"works": False, "error": f"{type(exc).__name__}: {last_lines(exc)}"}


def last_lines(exc: BaseException, n: int = 3) -> str:
    """The end of an error's text (a remote traceback's last lines say what went wrong)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [ln for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= {"^"}]
    return " | ".join(lines[-n:])[-600:]


@ray.remote(num_cpus=0)
class AsyncHop:
    """An asyncio actor, as every tradeplane actor is."""

    async def hop(self, t0: float) -> float:
        await asyncio.sleep(0)
        return t0

    async def last(self, t0: float) -> float:
        return (time.time() - t0) * 1000.0

    async def heartbeat(self) -> float:
        return time.time()


def async_methods_in_graph(rate: float, n: int) -> dict[str, Any]:
    a, b, c = AsyncHop.remote(), AsyncHop.remote(), AsyncHop.remote()  # type: ignore[attr-defined]
    cg = None
    try:
        with InputNode() as t0:
            dag = c.last.bind(b.hop.bind(a.hop.bind(t0)))
        cg = dag.experimental_compile()
        lat: list[float] = []
        paced(rate, n / rate, lambda _: lat.append(ray.get(cg.execute(time.time()), timeout=10)))
        t = time.time()
        ray.get(b.heartbeat.remote(), timeout=10)
        return {"one_way_ms": summary(lat), "heartbeat_ms": (time.time() - t) * 1000.0}
    finally:
        if cg is not None:
            cg.teardown()
        for x in (a, b, c):
            ray.kill(x)


@ray.remote(num_cpus=0)
class SyncDriver:
    """A threaded actor compiling and driving a graph of other actors (a supervisor, say)."""

    def drive(self, hops: list[Any], n: int, period_s: float) -> dict[str, Any]:
        with InputNode() as t0:
            dag = hops[2].last.bind(hops[1].hop.bind(hops[0].hop.bind(t0)))
        cg = dag.experimental_compile()
        try:
            lat = []
            for _ in range(n):
                lat.append(ray.get(cg.execute(time.time()), timeout=10))
                time.sleep(period_s)
            return {"one_way_ms": summary(lat)}
        finally:
            cg.teardown()


@ray.remote(num_cpus=0)
class AsyncDriver:
    """An asyncio actor (as the feed is) driving a graph with ``execute_async``."""

    async def drive(self, hops: list[Any], n: int, period_s: float) -> dict[str, Any]:
        with InputNode() as t0:
            dag = hops[2].last.bind(hops[1].hop.bind(hops[0].hop.bind(t0)))
        cg = dag.experimental_compile(enable_asyncio=True)
        try:
            lat = []
            for _ in range(n):
                fut = await cg.execute_async(time.time())
                lat.append(await fut)
                await asyncio.sleep(period_s)
            return {"one_way_ms": summary(lat)}
        finally:
            cg.teardown()


def actor_as_driver(kind: str, rate: float, n: int) -> dict[str, Any]:
    hops = [CHop.remote() for _ in range(3)]  # type: ignore[attr-defined]
    driver = SyncDriver.remote() if kind == "sync" else AsyncDriver.remote()  # type: ignore[attr-defined]
    try:
        out: dict[str, Any] = ray.get(driver.drive.remote(hops, n, 1.0 / rate), timeout=120)
        return out
    finally:
        for x in [*hops, driver]:
            ray.kill(x)


@ray.remote(num_cpus=0)
class MixedHop:
    """An asyncio actor (it has async methods, as tradeplane's do) whose graph methods are sync."""

    def hop(self, t0: float) -> float:
        return t0

    def last(self, t0: float) -> float:
        return (time.time() - t0) * 1000.0

    async def heartbeat(self) -> float:
        return time.time()

    async def pid(self) -> int:
        return os.getpid()


def async_actor_sync_graph_methods(rate: float, n: int) -> dict[str, Any]:
    hops = [MixedHop.remote() for _ in range(3)]  # type: ignore[attr-defined]
    with InputNode() as t0:
        dag = hops[2].last.bind(hops[1].hop.bind(hops[0].hop.bind(t0)))
    cg = dag.experimental_compile()
    lat: list[float] = []
    beats: list[float] = []

    def step(k: int) -> None:
        lat.append(ray.get(cg.execute(time.time()), timeout=10))
        if k % 25 == 0:  # an ordinary (async) call into a graph actor, 4 a second
            t = time.time()
            ray.get(hops[1].heartbeat.remote(), timeout=10)
            beats.append((time.time() - t) * 1000.0)

    try:
        paced(rate, n / rate, step)
        return {"one_way_ms": summary(lat), "heartbeat_ms": summary(beats)}
    finally:
        cg.teardown()
        for x in hops:
            ray.kill(x)


def idle_cpu(window_s: float) -> dict[str, Any]:
    """% of one core of each graph actor with the graph compiled and no execute (a market with
    no bar due), beside the same actors once the graph is torn down (Ray's own idle floor)."""
    hops = [MixedHop.remote() for _ in range(3)]  # type: ignore[attr-defined]
    pids = {f"hop{i}": ray.get(h.pid.remote()) for i, h in enumerate(hops)}
    with InputNode() as t0:
        dag = hops[2].last.bind(hops[1].hop.bind(hops[0].hop.bind(t0)))
    cg = dag.experimental_compile()
    try:
        ray.get(cg.execute(time.time()))
        time.sleep(0.5)
        cpu = cpu_watch({**pids, "driver": os.getpid()})
        time.sleep(window_s)
        compiled = cpu()
        cg.teardown()
        time.sleep(0.5)
        cpu = cpu_watch({**pids, "driver": os.getpid()})
        time.sleep(window_s)
        torn_down = cpu()
    finally:
        cg.teardown()
        for x in hops:
            ray.kill(x)
    return {
        "window_s": window_s,
        "cpu_pct_compiled_idle": compiled,
        "cpu_pct_after_teardown": torn_down,
    }


@ray.remote(num_cpus=0)
class HeldDriver:
    """Compiles a graph and keeps it, as a feed driving the path would; killed to see what its
    death leaves behind."""

    def compile(self, hops: list[Any]) -> int:
        with InputNode() as t0:
            dag = hops[2].last.bind(hops[1].hop.bind(hops[0].hop.bind(t0)))
        self.cg = dag.experimental_compile()
        for _ in range(20):
            ray.get(self.cg.execute(time.time()), timeout=10)
        return os.getpid()


def driver_killed(rate: float, n: int) -> dict[str, Any]:
    """SIGKILL the actor driving a graph; then do its actors answer, and can a new driver
    compile a graph on them (the feed restarted, the other stages kept)?"""
    hops = [MixedHop.remote() for _ in range(3)]  # type: ignore[attr-defined]
    first = HeldDriver.remote()  # type: ignore[attr-defined]
    second = SyncDriver.remote()  # type: ignore[attr-defined]
    try:
        pids = {f"hop{i}": ray.get(h.pid.remote()) for i, h in enumerate(hops)}
        os.kill(ray.get(first.compile.remote(hops), timeout=60), signal.SIGKILL)
        t_kill = time.monotonic()
        time.sleep(0.2)
        cpu = cpu_watch(pids)
        time.sleep(2.0)
        orphaned_cpu = cpu()  # the dead driver's graph loops, still running?
        t = time.monotonic()
        try:
            ray.get([h.heartbeat.remote() for h in hops], timeout=10)
            answered = f"yes, in {time.monotonic() - t:.3f} s"
        except Exception as exc:
            answered = f"no: {type(exc).__name__}: {last_lines(exc, 1)}"
        t = time.monotonic()
        try:
            again = ray.get(second.drive.remote(hops, n, 1.0 / rate), timeout=30)
            recompiled = {"works": True, "s_from_kill": time.monotonic() - t_kill, **again}
        except Exception as exc:
            recompiled = {
                "works": False,
                "after_s": time.monotonic() - t,
                "error": f"{type(exc).__name__}: {last_lines(exc)}",
            }
        return {
            "graph_actors_answer_after": answered,
            "cpu_pct_of_graph_actors_after_driver_death": orphaned_cpu,
            "new_driver_on_same_actors": recompiled,
        }
    finally:
        for x in [*hops, first, second]:
            ray.kill(x)


def fan_in(
    state_dir: str, rate: float, duration_s: float, second: dict[str, Any]
) -> dict[str, Any]:
    """feed -> (s1, s2) -> one risk -> broker -> journal -> broker. s1 trades 1 tick in 10;
    ``second`` configures s2 (which trades never, so the figures are s1's orders)."""
    h = {role: CLASSES[role].remote() for role in ROLES}
    s2 = CStrategy.remote()  # type: ignore[attr-defined]
    cfgs = stage_configs(state_dir, 10, 1)
    ray.get([h[r].start.remote(cfgs[r]) for r in ROLES])
    ray.get(s2.start.remote({"name": "s2", "every": 10**9, **second}))
    with InputNode() as tick:
        bars = h["feed"].publish.bind(tick)
        cmds = h["risk"].check_many.bind(h["strategy"].on_bars.bind(bars), s2.on_bars.bind(bars))
        seqs = h["journal"].commit.bind(h["broker"].begin.bind(cmds))
        dag = h["broker"].sent.bind(seqs)
    cg = dag.experimental_compile()
    with_orders: list[float] = []
    errors: list[str] = []
    ok_after_error = 0

    def step(n: int) -> None:
        nonlocal ok_after_error
        try:
            _, _, orders, ms = ray.get(cg.execute(10_000_000 + n), timeout=10)
        except Exception as exc:
            errors.append(type(exc).__name__)
            return
        if errors:
            ok_after_error += 1
        if orders:
            with_orders.append(ms)

    try:
        paced(rate, 1.0, step)  # warm-up
        with_orders.clear()
        errors.clear()
        ok_after_error = 0
        paced(rate, duration_s, step)
    finally:
        cg.teardown()
        for a in [*h.values(), s2]:
            ray.kill(a)
    return {
        "second_strategy": second,
        "s1_tick_to_order_ms": summary(with_orders),
        "executions_raising": len(errors),
        "errors_seen": sorted(set(errors)),
        "good_executions_after_first_error": ok_after_error,
    }


def two_risk_inputs(state_dir: str, rate: float, n: int) -> dict[str, Any]:
    """The other fan-in shape: risk bound twice (one method call per strategy) in one graph,
    the two decisions joined again at the broker (a MultiOutputNode returns both)."""
    h = {role: CLASSES[role].remote() for role in ROLES}
    s2 = CStrategy.remote()  # type: ignore[attr-defined]
    cfgs = stage_configs(state_dir, 10, 1)
    ray.get([h[r].start.remote(cfgs[r]) for r in ROLES])
    ray.get(s2.start.remote({"name": "s2", "every": 10}))
    cg = None
    try:
        with InputNode() as tick:
            bars = h["feed"].publish.bind(tick)
            r1 = h["risk"].check.bind(h["strategy"].on_bars.bind(bars))
            r2 = h["risk"].check.bind(s2.on_bars.bind(bars))
            dag = MultiOutputNode([h["broker"].begin.bind(r1), h["broker"].begin.bind(r2)])
        cg = dag.experimental_compile()
        lat: list[float] = []

        def step(k: int) -> None:
            t = time.time()
            ray.get(cg.execute(k), timeout=10)
            lat.append((time.time() - t) * 1000.0)

        paced(rate, n / rate, step)
        return {"round_trip_ms": summary(lat)}
    finally:
        if cg is not None:
            cg.teardown()
        for a in [*h.values(), s2]:
            ray.kill(a)


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    global RESULTS
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (smoke test, not a result)")
    ap.add_argument("--ticks-per-s", type=float, default=100.0)
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--every", type=int, default=10, help="the strategy trades 1 tick in N")
    ap.add_argument("--per-signal", type=int, default=1, help="intents on a trading tick")
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs per rebuild mode")
    ap.add_argument(
        "--only",
        default="floor,hops,path,rebuild,constraints",
        help="comma-separated sections (floor, hops, path, rebuild, constraints)",
    )
    args = ap.parse_args()
    if args.quick:
        args.duration_s, args.kills = 3.0, 2
    only = set(args.only.split(","))
    RESULTS, sys.stdout = sys.stdout, sys.stderr
    rate, dur = args.ticks_per_s, args.duration_s
    deployment.connect(None)
    floor: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tradeplane-bench-cg-") as tmp:
        state = str(Path(tmp) / "journal")
        if only & {"floor", "hops", "path"}:
            floor = measure_floor(rate, min(dur, 20.0))
            emit({"bench": "floor_three_noop_hops", "rate_per_s": rate, "ms": floor})
        if "hops" in only:
            hops = measure_compiled_hops(rate, dur)
            emit(
                {
                    "bench": "compiled_three_hops",
                    "rate_per_s": rate,
                    **hops,
                    "floor_ms": floor,
                    "one_way_p99_vs_floor_p99": ratio(hops["one_way_ms"]["p99"], floor["p99"]),
                    "issue_quotes_ms": ISSUE_COMPILED_THREE_HOPS_MS,
                }
            )
        if "path" in only:
            for mode, fn in (("normal_calls", measure_normal_path), ("compiled", None)):
                fn = fn or measure_compiled_path
                res = fn(f"{state}-{mode}", rate, dur, args.every, args.per_signal)
                total = res["tick_to_order_ms"]
                emit(
                    {
                        "bench": "path_five_actors",
                        "mode": mode,
                        "ticks_per_s": rate,
                        "every": args.every,
                        "per_signal": args.per_signal,
                        "duration_s": dur,
                        **res,
                        "floor_ms": floor,
                        "p99_vs_floor_p99": ratio(total["p99"], floor.get("p99")),
                        "target_p50_ms": TARGETS["p50_tick_to_order_ms"],
                        "target_p99_ms": TARGETS["p99_tick_to_order_ms"],
                    }
                )
        if "rebuild" in only:
            for standby in (False, True):
                res = measure_rebuild(f"{state}-rebuild-{standby}", args.kills, standby)
                emit({"bench": "rebuild", **res})
        if "constraints" in only:
            n = max(50, int(rate * min(dur, 5.0)))
            emit(
                {
                    "bench": "constraint_async_actor_methods_in_graph",
                    **attempt(lambda: async_methods_in_graph(rate, n)),
                }
            )
            emit(
                {
                    "bench": "constraint_async_actor_sync_graph_methods",
                    **attempt(lambda: async_actor_sync_graph_methods(rate, n)),
                }
            )
            emit({"bench": "constraint_idle_cpu", **attempt(lambda: idle_cpu(5.0))})
            emit(
                {
                    "bench": "constraint_driver_actor_killed",
                    **attempt(lambda: driver_killed(rate, n)),
                }
            )
            for kind in ("sync", "async"):
                emit(
                    {
                        "bench": f"constraint_{kind}_actor_as_driver",
                        **attempt(lambda k=kind: actor_as_driver(k, rate, n)),  # type: ignore[misc]
                    }
                )
            for label, second in (
                ("plain", {}),
                ("slow_sibling", {"slow_every": 20, "slow_s": 0.03}),
                ("failing_sibling", {"raise_every": 50}),
            ):
                emit(
                    {
                        "bench": "constraint_two_strategies_one_risk",
                        "case": label,
                        **attempt(
                            lambda s=second, lb=label: fan_in(  # type: ignore[misc]
                                f"{state}-fan-{lb}", rate, min(dur, 10.0), s
                            )
                        ),
                    }
                )
            emit(
                {
                    "bench": "constraint_risk_bound_twice",
                    **attempt(lambda: two_risk_inputs(f"{state}-twice", rate, n)),
                }
            )
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
