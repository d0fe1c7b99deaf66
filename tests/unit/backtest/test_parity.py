"""Parity, intent by intent (``backtest.parity``): the same ids in the same order per strategy,
start intents apart, the live run's horizon, and fills where matching is deterministic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tradeplane.backtest.parity import FillTotal, IntentRow, compare

T = "2026-01-01T00:0{}:00+00:00"


def row(strategy: str, iid: str, minute: int = 0, trigger: str | None = None) -> IntentRow:
    return IntentRow(strategy, iid, trigger or f"bar:AAA:{T.format(minute)}", "AAA", "buy", 1.0)


def test_same_intents_and_fills_then_ok() -> None:
    rows = [row("s1", "a", 1), row("s1", "b", 2), row("s2", "c", 1)]
    fills = {"a": FillTotal.of([(1.0, 10.0, 0.01)]), "c": FillTotal.of([(0.5, 9, 0), (0.5, 11, 0)])}
    report = compare(rows, list(rows), fills, dict(fills))
    assert report.ok
    assert report.strategies["s1"].matched == 2 and report.strategies["s2"].fills_compared == 1


def test_changed_strategy_then_each_difference_named_in_order() -> None:
    live = [row("s1", "a", 1), row("s1", "b", 2)]
    backtest = [row("s1", "a", 1), row("s1", "x", 2), row("s1", "y", 3)]
    report = compare(live, backtest, {}, {})
    assert not report.ok
    diffs = report.strategies["s1"].differences
    assert [(d.index, d.what, d.live, d.backtest) for d in diffs] == [
        (1, "intent", "b", "x"),
        (2, "missing_live", None, "y"),
    ]


def test_fill_price_differs_then_fills_difference() -> None:
    rows = [row("s1", "a", 1)]
    report = compare(
        rows, rows, {"a": FillTotal.of([(1.0, 10.0, 0.0)])}, {"a": FillTotal.of([(1.0, 10.5, 0)])}
    )
    (diff,) = report.strategies["s1"].differences
    assert diff.what == "fills" and "10.5" in diff.detail


def test_fill_on_one_side_only_then_difference() -> None:
    rows = [row("s1", "a", 1)]
    report = compare(rows, rows, {}, {"a": FillTotal.of([(1.0, 10.0, 0.0)])})
    assert [d.what for d in report.strategies["s1"].differences] == ["fills"]


def test_start_intents_differ_by_run_id_then_reported_apart_not_compared() -> None:
    live = [row("s1", "L", trigger="start:run-1"), row("s1", "a", 1)]
    backtest = [row("s1", "B", trigger="start:backtest"), row("s1", "a", 1)]
    report = compare(live, backtest, {}, {})
    assert report.ok
    assert (report.strategies["s1"].apart_live, report.strategies["s1"].apart_backtest) == (1, 1)


def test_backtest_intents_after_the_live_runs_last_bar_then_apart_not_missing() -> None:
    live = [row("s1", "a", 1)]
    backtest = [row("s1", "a", 1), row("s1", "b", 3)]
    horizon = {"s1": datetime(2026, 1, 1, 0, 2, tzinfo=UTC)}
    report = compare(live, backtest, {}, {}, live_horizon=horizon)
    assert report.ok and report.strategies["s1"].beyond_live == 1


def opens_of(*prices: float) -> Any:
    """The recorded opens of AAA: one bar a minute from 00:00."""
    bars = [(datetime(2026, 1, 1, 0, m, tzinfo=UTC), p) for m, p in enumerate(prices)]
    return lambda symbol, after: [(t, p) for t, p in bars if symbol == "AAA" and t > after]


def test_live_fill_at_a_later_bars_open_then_named_a_late_fill_with_its_bars() -> None:
    """The sim venue fills on the first bar after the order arrives: an order that reached it a
    bar late filled at that bar's open times the same slippage, fees in proportion."""
    rows = [row("s1", "a", 1)]  # triggered by the 00:01 bar: the backtest fills at 00:02's open
    slip, fee = 1.0001, 0.0005
    backtest = {"a": FillTotal.of([(10.0, 50.0 * slip, 10 * 50.0 * slip * fee)])}
    late = {"a": FillTotal.of([(10.0, 50.2 * slip, 10 * 50.2 * slip * fee)])}
    opens = opens_of(49.0, 49.5, 50.0, 50.1, 50.2, 50.3)
    report = compare(rows, rows, late, backtest, opens_after=opens)
    (diff,) = report.strategies["s1"].differences
    assert diff.what == "late_fill" and "live filled 2 bar(s) after the backtest" in diff.detail
    assert not report.ok  # still a difference: the live fill is what it is
    # Not a late fill: another price, another quantity, fees out of proportion, no bars.
    for other in (
        FillTotal.of([(10.0, 50.15 * slip, 10 * 50.15 * slip * fee)]),
        FillTotal.of([(9.0, 50.2 * slip, 9 * 50.2 * slip * fee)]),
        FillTotal.of([(10.0, 50.2 * slip, 10 * 50.0 * slip * fee)]),
    ):
        (diff,) = (
            compare(rows, rows, {"a": other}, backtest, opens_after=opens)
            .strategies["s1"]
            .differences
        )
        assert diff.what == "fills", other
    (diff,) = compare(rows, rows, late, backtest).strategies["s1"].differences
    assert diff.what == "fills"
