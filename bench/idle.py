"""Idle benchmark: the CPU an idle deployment costs. JSON lines out.

Run with ``make bench`` (or ``python bench/idle.py --window-s 20`` for a short run). A paper
deployment on the sim venue with 5-minute bars at real speed, so no bar is due for minutes: what
its actor processes (supervisor and every child) spend is the background chatter alone
(heartbeats, polls, metrics). Each process's CPU time is read from the OS (psutil) at the start
and end of the window. The floor, measured in the same Ray instance over the same window: as
many idle Ray actors as the deployment has processes (what Ray itself costs a process that does
nothing). Target (issue 15): <= 2 % of one core for the whole deployment.

Where the floor goes (py-spy, perf and strace of an idle actor, Ray 2.60): nine tenths in the
worker's main thread, which Ray's core worker wakes every 10 ms to check for signals
(``CoreWorker::RunTaskExecutionLoop``, a fixed period no setting changes); its other threads
(task events, metrics, GCS and raylet clients) cost the rest, and Ray's settings for them
(``RAY_task_events_report_interval_ms``, ``RAY_metrics_report_interval_ms``) made no
measurable difference. So the target is below what this many Ray processes cost doing nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import ray

from tradeplane.cluster.names import named
from tradeplane.config.loading import parse_config
from tradeplane.config.models import TradeplaneConfig
from tradeplane.supervisor import deployment
from tradeplane.supervisor.chaos import actor_process

HERE = Path(__file__).resolve().parent
TARGETS = {"total_pct_of_one_core": 2.0}
BAR_INTERVAL_S = 300


# Ray prints its workers' warnings to the driver's sys.stdout: results go to the real stdout and
# sys.stdout is pointed at stderr in main(), so stdout stays JSON lines only.
RESULTS = sys.stdout


def emit(record: dict[str, Any]) -> None:
    record.setdefault("ts", time.time())
    RESULTS.write(json.dumps(record) + "\n")
    RESULTS.flush()


def idle_config(state_dir: Path) -> TradeplaneConfig:
    return parse_config(
        {
            "deployment": {"name": "bench-idle", "mode": "paper", "state_dir": str(state_dir)},
            "venue": {
                "kind": "sim",
                "sim": {
                    "symbols": ["AAA", "BBB", "CCC"],
                    "seed": 5,
                    "speed": 1.0,
                    "bar_interval_s": BAR_INTERVAL_S,
                    "history_bars": 0,
                },
            },
            "supervisor": {"feed_silence_s": 2.0 * BAR_INTERVAL_S},
            "telemetry": {"metrics_port": 0},
            "strategies": [
                {
                    "name": "bench",
                    "path": str(HERE / "strategies" / "pinger.py"),
                    "class_name": "Pinger",
                    "params": {"every": 1},
                }
            ],
        },
        source="bench",
    )


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for role, pid in pids.items():
        times = psutil.Process(pid).cpu_times()
        out[role] = times.user + times.system
    return out


@ray.remote(num_cpus=0)
class _Idle:
    def pid(self) -> int:
        import os

        return os.getpid()


def standbys_started(sup: Any, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The deployment's standbys once each has started (with its pid); [] when it keeps none."""
    deadline = time.monotonic() + timeout_s
    while True:
        standbys = ray.get(sup.status.remote(), timeout=10).get("standbys") or {}
        pool = standbys.get("pool") or []
        if not standbys.get("enabled") or (pool and all(s.get("pid") for s in pool)):
            return list(pool)
        if time.monotonic() > deadline:
            raise RuntimeError(f"standbys not started within {timeout_s:.0f}s: {pool}")
        time.sleep(0.2)


def supervisor_standby_pid(sup: Any, timeout_s: float = 60.0) -> tuple[str, int] | None:
    """The supervisor's standby (name, pid) once it watches; None when the deployment keeps
    none (standbys off)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = ray.get(sup.status.remote(), timeout=10)
        if not (status.get("standbys") or {}).get("enabled"):
            return None
        standby = (status.get("supervisor") or {}).get("standby") or {}
        if standby.get("watching"):
            beat = ray.get(named(standby["name"]).heartbeat.remote(), timeout=10)
            return str(standby["name"]), int(beat["pid"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"the supervisor's standby not watching within {timeout_s:.0f}s")
        time.sleep(0.2)


def measure(pids: dict[str, int], window_s: float) -> dict[str, Any]:
    before, t0 = cpu_seconds(pids), time.monotonic()
    time.sleep(window_s)  # the measurement itself: nothing to wait for, only time to pass
    after, elapsed = cpu_seconds(pids), time.monotonic() - t0
    per_role = {r: 100.0 * (after[r] - before[r]) / elapsed for r in pids}
    return {
        "window_s": round(elapsed, 1),
        "total_pct_of_one_core": round(sum(per_role.values()), 2),
        "per_role_pct": {r: round(v, 2) for r, v in sorted(per_role.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--settle-s", type=float, default=10.0)
    args = parser.parse_args()
    sys.stdout = sys.stderr
    deployment.connect(None)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = idle_config(Path(tmp) / "state")
        sup = deployment.deploy(cfg)
        try:
            status = ray.get(sup.status.remote(), timeout=10)
            roles = ["supervisor", *status["children"]]
            pids = {}
            for role in roles:
                info = actor_process(cfg.deployment.name, role)
                if info.get("pid"):
                    pids[role] = int(info["pid"])
            # Standbys are the deployment's processes too (idle by design: counted here).
            standby_pool = standbys_started(sup)
            for standby in standby_pool:
                pids[f"standby:{standby['name']}"] = int(standby["pid"])
            if (sup_standby := supervisor_standby_pid(sup)) is not None:
                pids[f"standby:{sup_standby[0]}"] = sup_standby[1]
            time.sleep(args.settle_s)  # start-up work (imports, reconciliation) done
            bars_before = ray.get(sup.status.remote(), timeout=10)["feed"].get("bars") or 0
            idle = measure(pids, args.window_s)
            final = ray.get(sup.status.remote(), timeout=10)
            idle_actors = [_Idle.remote() for _ in pids]  # type: ignore[attr-defined]
            floor_pids = {
                f"idle{i}": ray.get(a.pid.remote(), timeout=30) for i, a in enumerate(idle_actors)
            }
            floor = measure(floor_pids, args.window_s)
        finally:
            deployment.stop(cfg.deployment.name)
    target = TARGETS["total_pct_of_one_core"]
    emit(
        {
            "bench": "idle.cpu",
            "processes": len(pids),
            "standbys": len(standby_pool),
            "standby_rss_mib": round(
                sum(int(s["rss_bytes"] or 0) for s in standby_pool) / 2**20, 1
            ),
            "bars_in_window": (final["feed"].get("bars") or 0) - bars_before,
            "health": final.get("health"),
            **idle,
            "per_process_mean_pct": round(idle["total_pct_of_one_core"] / len(pids), 3),
            "floor_total_pct_of_one_core": floor["total_pct_of_one_core"],
            "floor_per_process_mean_pct": round(floor["total_pct_of_one_core"] / len(pids), 3),
            "above_floor_pct_of_one_core": round(
                idle["total_pct_of_one_core"] - floor["total_pct_of_one_core"], 2
            ),
            "floor": "as many idle Ray actors, same instance, same window length",
            "target_total_pct_of_one_core": target,
            "met": idle["total_pct_of_one_core"] <= target,
        }
    )
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
