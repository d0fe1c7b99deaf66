"""Per-call cost of the backtest report's accumulator (``ReportAccumulator.add``), the only part of
the report on the engine's per-bar path. No Ray, no lock needed; JSON lines out.

The engine's target (issue 16) is 200,000 bars/s: 3 symbols x 500k bars is 500k bar times, so
``add`` (once per bar time) costs the engine ``add_us`` x 500k. Each figure is printed beside its
floor measured in the same run: a no-op method with the same signature called the same way.
CPU time of this process (time.process_time), not wall time: the machine is shared.
Usage: ``python bench/report_accumulator.py [BAR_TIMES] [STRATEGIES]``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence

from tradeplane.backtest.report_builder import ReportAccumulator

TARGETS = {"add_us_per_bar_time": 1.0}


class _Noop:
    def add(self, ts: float, equities: Sequence[float], exposed: Sequence[bool]) -> None:
        pass


def _rows(
    bar_times: int, strategies: int
) -> list[tuple[float, tuple[float, ...], tuple[bool, ...]]]:
    rows = []
    for i in range(bar_times):
        wobble = (i % 97) * 0.5 - (i % 89) * 0.5
        equities = tuple(100_000.0 + wobble * (s + 1) for s in range(strategies))
        flags = tuple((i + s) % 3 != 0 for s in range(strategies))
        rows.append((1.7e9 + 60.0 * i, equities, flags))
    return rows


def _per_call_us(
    target: object, rows: list[tuple[float, tuple[float, ...], tuple[bool, ...]]]
) -> float:
    add = target.add  # type: ignore[attr-defined]
    began = time.process_time()
    for ts, equities, flags in rows:
        add(ts, equities, flags)
    return (time.process_time() - began) / len(rows) * 1e6


def main() -> None:
    bar_times = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    strategies = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rows = _rows(bar_times, strategies)
    names = [f"s{i}" for i in range(strategies)]
    floors, costs, finish = [], [], []
    for _ in range(3):  # best of 3: the machine is shared
        floors.append(_per_call_us(_Noop(), rows))
        acc = ReportAccumulator(names, [100_000.0] * strategies)
        costs.append(_per_call_us(acc, rows))
        began = time.process_time()
        acc._flush()  # what finish() folds beyond the per-call cost
        finish.append((time.process_time() - began) * 1e3)
    record = {
        "bench": "report_accumulator.add",
        "bar_times": bar_times,
        "strategies": strategies,
        "add_us_per_bar_time": round(min(costs), 3),
        "floor_noop_us": round(min(floors), 3),
        "add_minus_floor_us": round(min(costs) - min(floors), 3),
        "target_add_us": TARGETS["add_us_per_bar_time"],
        "last_fold_ms": round(min(finish), 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
