"""Simulated-venue micro-benchmarks: bar generation and matching cost. JSON lines out."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

from tradeplane.core.clock import ManualClock
from tradeplane.core.model import OrderType, Side
from tradeplane.venues.sim import MarketSimulator, PaperMatchingEngine, VenueOrderRequest

START = datetime(2026, 1, 5, tzinfo=UTC)


def emit(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")


def bars_per_second(symbols: int = 32, steps: int = 5_000) -> float:
    sim = MarketSimulator([f"S{i}" for i in range(symbols)], seed=1, start=START)
    began = time.perf_counter()
    for _ in range(steps):
        sim.next_bars()
    return symbols * steps / (time.perf_counter() - began)


def on_bar_us(resting: int, bars: int = 50_000) -> float:
    sim = MarketSimulator(["AAA"], seed=2, start=START)
    engine = PaperMatchingEngine(clock=ManualClock())
    first = sim.next_bars()[0]
    engine.on_bar(first)
    for i in range(resting):  # far from the market: the bar never reaches them
        engine.submit(
            VenueOrderRequest(f"c{i}", "AAA", Side.BUY, 1.0, OrderType.LIMIT, first.close * 0.01)
        )
    series = [sim.next_bars()[0] for _ in range(bars)]
    began = time.perf_counter()
    for bar in series:
        engine.on_bar(bar)
    return (time.perf_counter() - began) / bars * 1e6


def main() -> int:
    emit({"bench": "sim_market_bars_per_s", "symbols": 32, "value": bars_per_second()})
    for resting in (0, 100):
        emit(
            {
                "bench": "sim_matching_on_bar_us",
                "resting_orders": resting,
                "value": on_bar_us(resting),
            }
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
