"""The report's accumulator (``backtest.report_builder``): fed one bar time at a time it gives the
hand-computed figures per strategy and for the total, counts intents, orders, denials, fills and
round trips, keeps a downsampled curve with its first, last and trough points, and refuses bad
input before any report is made."""

from __future__ import annotations

import math
import tracemalloc
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from tradeplane.backtest.metrics import (
    annualised_volatility,
    max_drawdown,
    sharpe_ratio,
    simple_returns,
    sortino_ratio,
)
from tradeplane.backtest.report_builder import ReportAccumulator
from tradeplane.backtest.report_json import MAX_CURVE_POINTS, BacktestReport, BarsInfo, utc
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.model import Fill, Side

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HASH = "ab" * 32
# Strategy "a" is test_metrics' hand-computed case (start 100; P = 100). Strategy "b" holds 100
# flat and never trades.
EQ_A = [110.0, 99.0, 99.0, 118.8, 112.86]
EXPOSED_A = [False, True, True, False, True]


def bars_info(n: int, interval_s: float = 60.0) -> BarsInfo:
    return BarsInfo(
        source="test",
        first_ts=utc(T0),
        last_ts=utc(T0 + interval_s * (n - 1)),
        count=n,
        symbols=("AAA",),
        interval_s=interval_s,
    )


def finish(acc: ReportAccumulator, n: int, ppy: float | None = 100.0) -> BacktestReport:
    return acc.finish(
        deployment="demo",
        config_hash=HASH,
        strategy_code_hashes={name: HASH for name in acc.names},
        bars=bars_info(n),
        calendar="24/7",
        periods_per_year=ppy,
        generated_at=datetime(2026, 1, 2, tzinfo=UTC),
    )


def fill(strategy: str, side: Side, qty: float, price: float, fee: float = 0.0) -> Fill:
    return Fill("f", "c", "i", strategy, "AAA", side, qty, price, fee, T0)


def hand_case(chunk_bars: int = 4096) -> BacktestReport:
    acc = ReportAccumulator(["a", "b"], [100.0, 100.0], chunk_bars=chunk_bars)
    for i, (eq, held) in enumerate(zip(EQ_A, EXPOSED_A, strict=True)):
        acc.add(T0 + 60.0 * i, (eq, 100.0), (held, False))
    for name in ("a", "a", "a", "b"):
        acc.add_intent(name)
    acc.add_order("a")
    acc.add_order("a")
    acc.add_denial("a", "max_order_value")
    acc.add_denial("b", "market_closed")
    acc.add_fill(fill("a", Side.BUY, 1.0, 100.0, fee=0.05))
    acc.add_fill(fill("a", Side.SELL, 1.0, 118.0, fee=0.06))
    return finish(acc, 5)


@pytest.mark.parametrize("chunk_bars", [1, 2, 4096])
def test_hand_computed_case_then_strategy_block_as_worked_out(chunk_bars: int) -> None:
    a = hand_case(chunk_bars).strategies["a"]
    assert a.starting_equity == 100.0
    assert a.final_equity == 112.86
    assert a.total_return == pytest.approx(0.1286, abs=1e-12)
    assert a.annualised_volatility == pytest.approx(math.sqrt(1.45), rel=1e-12)
    assert a.sharpe == pytest.approx(0.3 / math.sqrt(0.0145), rel=1e-12)
    assert a.sortino == pytest.approx(6.0, rel=1e-12)
    assert a.max_drawdown == pytest.approx(0.1, rel=1e-12)
    assert a.max_drawdown_duration_s == 180.0
    assert a.exposure == pytest.approx(0.6)
    # 100 + 118 traded over the mean equity 107.932
    assert a.turnover == pytest.approx(218.0 / 107.932, rel=1e-12)
    assert (a.intents, a.orders, a.fills, a.trades) == (3, 2, 2, 1)
    assert a.fees == pytest.approx(0.11)
    assert a.denials_by_reason == {"max_order_value": 1}
    assert [eq for _, eq in a.equity_curve] == EQ_A
    assert a.equity_curve[0][0] == utc(T0)


@pytest.mark.parametrize("seed", range(6))
def test_random_run_in_random_chunks_then_each_block_equals_the_whole_series_figures(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    n, chunk = int(rng.integers(2, 2500)), int(rng.integers(1, 600))
    starts = [100.0, 250.0, 40.0]
    equity = np.array(starts) * np.cumprod(1.0 + rng.normal(0.0, 0.01, (n, 3)), axis=0)
    held = rng.random((n, 3)) < 0.4
    ts = T0 + 3600.0 * np.arange(n)
    acc = ReportAccumulator(["x", "y", "z"], starts, chunk_bars=chunk)
    for i in range(n):
        acc.add(float(ts[i]), tuple(equity[i].tolist()), tuple(held[i].tolist()))
    report = finish(acc, n, ppy=8766.0)
    columns = [*equity.T, equity.sum(axis=1)]
    flags = [*held.T, held.any(axis=1)]
    for block, eq, start, flag in zip(
        [*report.strategies.values(), report.total],
        columns,
        [*starts, sum(starts)],
        flags,
        strict=True,
    ):
        returns = simple_returns(eq, start)
        assert returns is not None
        assert block.sharpe == pytest.approx(sharpe_ratio(returns, 8766.0), rel=1e-9)
        assert block.sortino == pytest.approx(sortino_ratio(returns, 8766.0), rel=1e-9)
        assert block.annualised_volatility == pytest.approx(
            annualised_volatility(returns, 8766.0), rel=1e-9
        )
        dd = max_drawdown(ts, eq, start)
        assert (block.max_drawdown, block.max_drawdown_duration_s) == (dd.depth, dd.duration_s)
        assert block.exposure == pytest.approx(flag.mean())
        assert block.final_equity == pytest.approx(eq[-1], rel=1e-15)


def test_flat_strategy_then_undefined_ratios_are_null_in_json() -> None:
    report = hand_case()
    b = report.strategies["b"]
    assert (b.total_return, b.annualised_volatility, b.max_drawdown) == (0.0, 0.0, 0.0)
    assert (b.sharpe, b.sortino, b.turnover, b.exposure) == (None, None, 0.0, 0.0)
    text = report.to_json()
    block = orjson.loads(text)["strategies"]["b"]
    assert block["sharpe"] is None and block["sortino"] is None
    assert b"NaN" not in text and b"Infinity" not in text


def test_total_then_sum_of_strategies_equities_and_counts() -> None:
    total = hand_case().total
    equity = [e + 100.0 for e in EQ_A]
    returns = simple_returns(equity, 200.0)
    assert returns is not None
    assert total.starting_equity == 200.0
    assert total.final_equity == pytest.approx(212.86)
    assert total.sharpe == pytest.approx(sharpe_ratio(returns, 100.0), rel=1e-12)
    ts = [T0 + 60.0 * i for i in range(5)]
    assert total.max_drawdown == pytest.approx(max_drawdown(ts, equity, 200.0).depth)
    assert total.exposure == pytest.approx(0.6)  # any strategy holding
    assert (total.intents, total.orders, total.fills, total.trades) == (4, 2, 2, 1)
    assert total.denials_by_reason == {"market_closed": 1, "max_order_value": 1}


def test_one_bar_then_report_with_nulls() -> None:
    acc = ReportAccumulator(["a"], [100.0])
    acc.add(T0, [101.0], [True])
    a = finish(acc, 1).strategies["a"]
    assert a.total_return == pytest.approx(0.01)
    assert (a.annualised_volatility, a.sharpe, a.sortino) == (None, None, None)
    assert (a.max_drawdown, a.max_drawdown_duration_s, a.exposure) == (0.0, 0.0, 1.0)


def test_equity_to_zero_then_return_figures_null_and_drawdown_full() -> None:
    acc = ReportAccumulator(["a"], [100.0], chunk_bars=2)
    for i, eq in enumerate([50.0, 0.0, 5.0, 6.0]):
        acc.add(T0 + 60.0 * i, [eq], [True])
    a = finish(acc, 4).strategies["a"]
    assert (a.annualised_volatility, a.sharpe, a.sortino) == (None, None, None)
    assert a.total_return == pytest.approx(-0.94)
    assert a.max_drawdown == 1.0


def test_long_run_then_curve_downsampled_keeping_first_last_and_trough() -> None:
    n = 50_001
    rng = np.random.default_rng(3)
    equity = 1000.0 * np.cumprod(1.0 + rng.normal(0.0, 1e-3, n))
    acc = ReportAccumulator(["a"], [1000.0], chunk_bars=777)
    for i, eq in enumerate(equity.tolist()):
        acc.add(T0 + 60.0 * i, (eq,), (False,))
    report = finish(acc, n, ppy=None)
    curve = report.strategies["a"].equity_curve
    assert 1000 <= len(curve) <= MAX_CURVE_POINTS
    assert curve[0] == (utc(T0), float(equity[0]))
    assert curve[-1] == (utc(T0 + 60.0 * (n - 1)), float(equity[-1]))
    dd = max_drawdown(T0 + 60.0 * np.arange(n), equity, 1000.0)
    assert dd.trough_ts is not None and dd.peak_ts is not None
    assert (utc(dd.trough_ts), dd.trough_equity) in curve
    assert (utc(dd.peak_ts), dd.peak_equity) in curve
    assert report.periods_per_year == 525_960.0  # from the calendar when not given


def test_finish_midway_then_feeding_goes_on_as_if_never_finished() -> None:
    # The drift tracker will take snapshots of a running backtest: finish() only reads.
    rng = np.random.default_rng(5)
    equity = (100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, 300))).tolist()
    whole = ReportAccumulator(["a"], [100.0], chunk_bars=7)
    halves = ReportAccumulator(["a"], [100.0], chunk_bars=7)
    for i, eq in enumerate(equity):
        whole.add(T0 + 60.0 * i, (eq,), (True,))
        halves.add(T0 + 60.0 * i, (eq,), (True,))
        if i == 150:
            assert finish(halves, 151).strategies["a"].final_equity == eq
    # Equal but for the rounding of where the chunks were folded.
    fed, once = finish(halves, 300).strategies["a"], finish(whole, 300).strategies["a"]
    inexact = {"annualised_volatility", "sharpe", "sortino"}
    assert fed.model_dump(exclude=inexact) == once.model_dump(exclude=inexact)
    for name in inexact:
        assert getattr(fed, name) == pytest.approx(getattr(once, name), rel=1e-12)


def test_many_bar_times_then_memory_does_not_grow_with_them() -> None:
    acc = ReportAccumulator(["a", "b"], [100.0, 100.0], chunk_bars=1000)
    row = (100.0, 100.0)
    flags = (True, False)

    def feed(start: int, count: int) -> None:
        for i in range(start, start + count):
            acc.add(T0 + 60.0 * i, row, flags)

    tracemalloc.start()
    try:
        feed(0, 20_000)
        after_few = tracemalloc.get_traced_memory()[0]
        feed(20_000, 100_000)
        after_many = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Five times the bar times, the same memory: one chunk of pending rows and a curve of at most
    # 2000 points, whatever the run's length (a kept series would be 100,000 x 3 floats).
    assert after_many - after_few < 64_000


def test_nan_equity_then_refused_naming_strategy_and_time() -> None:
    acc = ReportAccumulator(["a", "b"], [100.0, 100.0])
    acc.add(T0, (100.0, 100.0), (False, False))
    acc.add(T0 + 60.0, (100.0, math.nan), (False, False))
    with pytest.raises(ValueError, match=r"equity of b at 2026-01-01T00:01:00\+00:00 is nan"):
        finish(acc, 2)


def test_bar_time_not_after_the_previous_then_refused_across_chunks() -> None:
    acc = ReportAccumulator(["a"], [100.0], chunk_bars=1)
    acc.add(T0, (100.0,), (False,))
    with pytest.raises(ValueError, match="does not come after"):
        acc.add(T0, (100.0,), (False,))


def test_wrong_number_of_equities_then_refused() -> None:
    acc = ReportAccumulator(["a", "b"], [100.0, 100.0])
    acc.add(T0, (100.0, 100.0), (False, False))
    acc.add(T0 + 60.0, (100.0,), (False, False))
    with pytest.raises(ValueError, match="expected 2 equities at 2026-01-01T00:01:00"):
        finish(acc, 2)


def test_no_bar_time_then_no_report() -> None:
    with pytest.raises(ValueError, match="no bar time"):
        finish(ReportAccumulator(["a"], [100.0]), 1)


def test_unknown_strategy_event_then_refused() -> None:
    acc = ReportAccumulator(["a"], [100.0])
    with pytest.raises(ValueError, match="unknown strategy 'zz'"):
        acc.add_denial("zz", "max_order_value")


@pytest.mark.parametrize(
    ("names", "starts"),
    [([], []), (["a"], [100.0, 1.0]), (["a", "a"], [1.0, 1.0]), (["a"], [0.0])],
)
def test_bad_strategies_or_starting_equity_then_refused(
    names: list[str], starts: list[float]
) -> None:
    with pytest.raises(ValueError):
        ReportAccumulator(names, starts)


def test_for_config_then_strategies_in_config_order_starting_at_their_capital() -> None:
    config = TradeplaneConfig.model_validate(
        {
            "deployment": {"name": "demo"},
            "strategies": [
                {"name": "slow", "path": "/s.py", "class_name": "S", "capital": 5_000.0},
                {"name": "fast", "path": "/f.py", "class_name": "F", "capital": 2_000.0},
            ],
        }
    )
    acc = ReportAccumulator.for_config(config)
    assert acc.names == ("slow", "fast")
    acc.add(T0, (5_000.0, 2_000.0), (False, False))
    report = finish(acc, 1)
    assert [b.starting_equity for b in report.strategies.values()] == [5_000.0, 2_000.0]
    assert report.total.starting_equity == 7_000.0
