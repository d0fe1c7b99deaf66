"""Backtest benchmark: bars/s of the backtest engine and its memory over many bars. JSON lines out.

Run with ``make bench`` (or ``python bench/backtest.py --quick`` for a short smoke run). No Ray:
one process, one core. ``examples/sma_cross.py`` runs over 3 symbols x 500k bars, printed beside
the floor measured in the same run: the same engine with a no-op strategy (what the engine costs
by itself). bars/s are given on the CPU time of this process (what one core does, whatever else
the machine runs) and on the wall clock, with the load average beside them.

The bars come from the seeded sim market's path, replayed: one block of the simulator's bars is
kept as price ratios and applied to a running price, so the source costs a ``Bar`` per bar (as
a file reader's would) without the simulator's random draws, and holds no more than the block.
The replayed values were checked when the simulator built its bars (scaling keeps them positive,
finite and consistent), so bars are built with ``trusted_bar``, as a reader that validated its
rows in bulk would build them; ``source_bars_per_s_cpu`` is what that costs alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from tradeplane.backtest.engine import BacktestEngine, StrategySpec
from tradeplane.backtest.outputs import BacktestWriter
from tradeplane.backtest.report_builder import ReportAccumulator
from tradeplane.core.model import Bar, trusted_bar
from tradeplane.core.strategy import Strategy, load_strategy_class
from tradeplane.venues.sim.market import MarketSimulator

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "sma_cross.py"
# Issue 16's figures. Each is printed beside the floor measured in the same run.
TARGETS = {"bars_per_s": 200_000.0, "rss_growth_mib": 10.0}
SYMBOLS = ("AAA", "BBB", "CCC")
START = datetime(2026, 1, 1, tzinfo=UTC)
BLOCK = 20_000  # bar times of the simulator's path kept and replayed


def emit(record: dict[str, Any]) -> None:
    record.setdefault("ts", time.time())
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def ratio(value: float | None, floor: float | None) -> float | None:
    return None if value is None or not floor else round(value / floor, 2)


class ReplayedMarket:
    """The sim market's first ``BLOCK`` bar times as ratios, replayed for as many as asked. Each
    replay is scaled to end where it began, so prices neither drift away nor jump at a seam."""

    def __init__(self, symbols: tuple[str, ...], block: int = BLOCK) -> None:
        market = MarketSimulator(list(symbols), seed=7, start=START)
        self.symbols = symbols
        self.start_prices: list[float] = []
        self.paths: list[list[tuple[float, float, float, float, float]]] = []
        rows = [market.next_bars() for _ in range(block)]
        for i in range(len(symbols)):
            bars = [row[i] for row in rows]
            drift = (bars[-1].close / bars[0].open) ** (1.0 / len(bars))
            self.start_prices.append(bars[0].open)
            self.paths.append(
                [
                    (b.high / b.open, b.low / b.open, b.close / b.open / drift, b.volume, 0.0)
                    for b in bars
                ]
            )

    def bars(self, steps: int, interval_s: int = 60) -> Iterator[list[Bar]]:
        prices = list(self.start_prices)
        step = timedelta(seconds=interval_s)
        ts = START
        n = len(self.paths[0])
        symbols = self.symbols
        paths = self.paths
        for k in range(steps):
            j = k % n
            group = []
            for i, symbol in enumerate(symbols):
                rh, rl, rc, volume, _ = paths[i][j]
                o = prices[i]
                c = o * rc
                h = max(o * rh, o, c)
                lo = min(o * rl, o, c)
                group.append(trusted_bar(symbol, ts, o, h, lo, c, volume))
                prices[i] = c
            yield group
            ts += step


def make_engine(strategy: Strategy) -> BacktestEngine:
    spec = StrategySpec("bench", strategy, SYMBOLS, 100_000.0)
    return BacktestEngine(deployment="bench", strategies=[spec], interval_s=60)


def rss_mib() -> float:
    return float(psutil.Process(os.getpid()).memory_info().rss) / 2**20


def measure(
    name: str, strategy: Strategy, market: ReplayedMarket, steps: int, out: Path | None
) -> dict[str, Any]:
    """Run ``steps`` bar times; RSS is read after the first tenth (warm) and at the end."""
    engine = make_engine(strategy)
    report = ReportAccumulator(["bench"], [100_000.0])
    writer = None if out is None else BacktestWriter(out, ["bench"], report)
    warm_at = max(1, steps // 10)
    rss_warm = rss_start = rss_mib()
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for k, group in enumerate(market.bars(steps)):
        result = engine.step(group)
        if writer is not None:
            writer.write(result)
        if k == warm_at:
            rss_warm = rss_mib()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if writer is not None:
        writer.close()
    bars = engine.bars
    totals = engine.totals["bench"]
    return {
        "strategy": name,
        "bars": bars,
        "bars_per_s_cpu": round(bars / cpu) if cpu > 0 else None,
        "bars_per_s_wall": round(bars / wall) if wall > 0 else None,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "intents": totals.intents,
        "fills": totals.fills,
        "rss_start_mib": round(rss_start, 1),
        "rss_growth_mib": round(rss_mib() - rss_warm, 1),
        "with_outputs": out is not None,
    }


def source_only(market: ReplayedMarket, steps: int) -> float:
    cpu0 = time.process_time()
    n = sum(len(group) for group in market.bars(steps))
    return n / (time.process_time() - cpu0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=500_000, help="bar times (x 3 symbols)")
    parser.add_argument("--quick", action="store_true", help="20k bar times: a smoke run")
    parser.add_argument("--no-outputs", action="store_true", help="skip the run writing CSVs")
    args = parser.parse_args()
    steps = 20_000 if args.quick else args.bars
    market = ReplayedMarket(SYMBOLS)
    sma = load_strategy_class(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE), "SmaCross")
    load = os.getloadavg()
    floor = measure("noop", Strategy(), market, steps, None)
    run = measure("sma_cross", sma(), market, steps, None)
    emit(
        {
            "bench": "backtest_bars_per_s",
            "symbols": len(SYMBOLS),
            "bar_times": steps,
            "source_bars_per_s_cpu": round(source_only(market, min(steps, 100_000))),
            "floor": floor,
            "sma_cross": run,
            "sma_cross_vs_floor": ratio(run["bars_per_s_cpu"], floor["bars_per_s_cpu"]),
            "target_bars_per_s": TARGETS["bars_per_s"],
            "target_rss_growth_mib": TARGETS["rss_growth_mib"],
            "loadavg": [round(x, 2) for x in load],
            "cpus": os.cpu_count(),
        }
    )
    if not args.no_outputs:
        with tempfile.TemporaryDirectory(prefix="tp-bench-backtest-") as tmp:
            written = measure("sma_cross", sma(), market, steps, Path(tmp))
            size = sum(f.stat().st_size for f in Path(tmp).iterdir())
        emit(
            {
                "bench": "backtest_with_outputs",
                **written,
                "csv_mib": round(size / 2**20, 1),
                "loadavg": [round(x, 2) for x in os.getloadavg()],
                "note": "equity.csv, fills.csv, intents.csv streamed; the report's figures "
                "accumulate in streaming form (a chunk of 8192 bar times, a curve of at most "
                "2000 points)",
            }
        )
    return 0 if math.isfinite(floor["cpu_s"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
