from __future__ import annotations

import itertools
import json
import math
import statistics
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tradeplane.core.model import Bar
from tradeplane.venues.sim.market import MarketSimulator, default_initial_price

START = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = ["BTC-USDT", "ETH-USDT", "ACME"]


def _run(sim: MarketSimulator, steps: int) -> list[list[Bar]]:
    return [sim.next_bars() for _ in range(steps)]


def _closes(steps: list[list[Bar]], index: int) -> list[float]:
    return [bars[index].close for bars in steps]


def _log_returns(closes: list[float]) -> list[float]:
    return [math.log(b / a) for a, b in itertools.pairwise(closes)]


def test_same_symbols_seed_and_start_then_identical_bars() -> None:
    first = _run(MarketSimulator(SYMBOLS, seed=7, start=START), 200)
    second = _run(MarketSimulator(SYMBOLS, seed=7, start=START), 200)
    assert first == second


def test_different_seed_then_different_bars() -> None:
    first = _run(MarketSimulator(SYMBOLS, seed=7, start=START), 5)
    second = _run(MarketSimulator(SYMBOLS, seed=8, start=START), 5)
    assert first != second


def test_adding_a_symbol_then_existing_symbol_paths_unchanged() -> None:
    alone = _run(MarketSimulator(["ACME"], seed=3, start=START), 50)
    with_others = _run(MarketSimulator(["ZED", "ACME"], seed=3, start=START), 50)
    assert [bars[0] for bars in alone] == [bars[1] for bars in with_others]


def test_next_bars_then_one_bar_per_symbol_in_given_order() -> None:
    bars = MarketSimulator(SYMBOLS, seed=1, start=START).next_bars()
    assert [b.symbol for b in bars] == SYMBOLS


def test_bar_ts_is_open_time_and_next_ts_advances_by_interval() -> None:
    sim = MarketSimulator(["ACME"], seed=1, start=START, interval_s=300)
    assert sim.next_ts == START
    first = sim.next_bars()[0]
    second = sim.next_bars()[0]
    assert first.ts == START
    assert second.ts == START + timedelta(seconds=300)
    assert sim.next_ts == START + timedelta(seconds=600)


def test_snapshot_json_round_trip_then_restore_continues_identical_sequence() -> None:
    straight = _run(MarketSimulator(SYMBOLS, seed=11, start=START), 100)

    sim = MarketSimulator(SYMBOLS, seed=11, start=START)
    head = _run(sim, 50)
    restored = MarketSimulator.restore(json.loads(json.dumps(sim.snapshot())))
    assert restored.next_ts == sim.next_ts
    tail = _run(restored, 50)

    assert head + tail == straight


def test_restore_of_foreign_snapshot_then_value_error() -> None:
    with pytest.raises(ValueError, match="not a market simulator snapshot"):
        MarketSimulator.restore({"format": "something-else"})


def test_first_bar_opens_at_initial_price_and_each_open_equals_previous_close() -> None:
    sim = MarketSimulator(["ACME"], seed=5, start=START, initial_prices={"ACME": 123.45})
    bars = [b[0] for b in _run(sim, 500)]
    assert bars[0].open == 123.45
    assert all(b.open == a.close for a, b in itertools.pairwise(bars))


def test_ohlc_consistent_and_prices_positive_over_10k_bars() -> None:
    sim = MarketSimulator(SYMBOLS, seed=2024, start=START)
    for _ in range(10_000 // len(SYMBOLS) + 1):
        for bar in sim.next_bars():
            assert bar.high >= max(bar.open, bar.close)
            assert bar.low <= min(bar.open, bar.close)
            assert bar.low > 0
            assert bar.volume >= 0
            assert all(math.isfinite(v) for v in (bar.open, bar.high, bar.low, bar.close))


def test_one_minute_volatility_in_realistic_range() -> None:
    steps = _run(MarketSimulator(SYMBOLS, seed=9, start=START), 5_000)
    for index in range(len(SYMBOLS)):
        sigma = statistics.pstdev(_log_returns(_closes(steps, index)))
        assert 0.0005 <= sigma <= 0.0015, (SYMBOLS[index], sigma)


def test_large_moves_cluster_in_time() -> None:
    steps = _run(MarketSimulator(["ACME"], seed=4, start=START), 20_000)
    squared = [r * r for r in _log_returns(_closes(steps, 0))]
    mean = statistics.fmean(squared)
    centred = [s - mean for s in squared]
    lag1 = sum(a * b for a, b in itertools.pairwise(centred))
    autocorrelation = lag1 / sum(c * c for c in centred)
    assert autocorrelation > 0.02  # i.i.d. returns would give ~0


def test_volume_larger_when_absolute_return_is_large() -> None:
    bars = [b[0] for b in _run(MarketSimulator(["ACME"], seed=6, start=START), 5_000)]
    ranked = sorted(bars, key=lambda b: abs(math.log(b.close / b.open)))
    tenth = len(ranked) // 10
    calm = statistics.fmean(b.volume for b in ranked[:tenth])
    busy = statistics.fmean(b.volume for b in ranked[-tenth:])
    assert busy > 1.5 * calm


def test_default_initial_prices_deterministic_and_plausible() -> None:
    assert default_initial_price("BTC-USDT") == 60_000.0
    assert default_initial_price("ACME") == default_initial_price("ACME")
    for symbol in ("ACME", "FOO", "BAR-USD", "X"):
        assert 20.0 <= default_initial_price(symbol) <= 500.0


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (datetime(2024, 1, 1), "timezone-aware"),
        (datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))), "must be UTC"),
        (datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC), "not aligned"),
    ],
)
def test_start_not_aligned_utc_then_value_error_names_problem(
    start: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MarketSimulator(["ACME"], seed=1, start=start)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": []}, "empty"),
        ({"symbols": ["A", "A"]}, "duplicates"),
        ({"initial_prices": {"A": -1.0}}, "finite and > 0"),
        ({"initial_prices": {"B": 10.0}}, "not simulated"),
        ({"interval_s": 0}, "positive integer"),
    ],
)
def test_invalid_arguments_then_value_error(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"symbols": ["A"], "seed": 1, "start": START, **kwargs}
    with pytest.raises(ValueError, match=message):
        MarketSimulator(**args)  # type: ignore[arg-type]
