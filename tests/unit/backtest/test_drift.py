"""The live drift tracker (``backtest.drift``): rows cut in event time, drift against a shadow
backtest and a baseline, alerts raised once per crossing, and the same rows from a replay.

The shadow here is scripted (what a backtest step returned), so each figure can be worked out
by hand; the tracker over the real engine is tested with the engine."""

from __future__ import annotations

import json
import math
import stat
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tradeplane.backtest.drift import (
    COLUMNS,
    TOTAL,
    BaselineFigures,
    DriftThresholds,
    DriftTracker,
    LiveFill,
    LiveIntent,
)
from tradeplane.backtest.drift_files import DRIFT_CSV, PERFORMANCE_JSON, DriftFileError, DriftFiles
from tradeplane.core import ids
from tradeplane.core.model import Bar, Fill, Intent, OrderType, Side

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
BAR_S = 60.0


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def bar(open_ts: float, close: float, symbol: str = "BTC-USDT") -> Bar:
    return Bar(symbol, datetime.fromtimestamp(open_ts, tz=UTC), close, close, close, close, 10.0)


def intent(strategy: str, open_ts: float, symbol: str = "BTC-USDT", ts: float = 0.0) -> Intent:
    trigger = ids.bar_trigger(symbol, datetime.fromtimestamp(open_ts, tz=UTC))
    iid = ids.intent_id("demo", strategy, trigger, 0)
    return Intent(
        iid, ids.client_order_id(iid), "demo", strategy, symbol, Side.BUY, 1.0,
        OrderType.MARKET, None, ts, trigger,
    )  # fmt: skip


@dataclass
class Decision:
    intent: Intent
    decision: str = "approved"


@dataclass
class Step:
    close_ts: float
    decisions: list[Decision] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    equity: tuple[tuple[float, float], ...] = ()


class ScriptedShadow:
    """Returns, per bar time, the equity and what the script says happened at that close."""

    def __init__(self, cash: float, script: dict[float, dict[str, Any]] | None = None) -> None:
        self.cash, self.value, self.script = cash, 0.0, script or {}

    def step(self, bars: list[Bar]) -> Step:
        close_ts = bars[0].ts.timestamp() + BAR_S
        what = self.script.get(close_ts, {})
        self.cash += what.get("cash", 0.0)
        self.value = what.get("value", self.value)
        return Step(
            close_ts,
            [Decision(i) for i in what.get("intents", [])],
            list(what.get("fills", [])),
            ((self.cash, self.value),),
        )


def tracker(shadow: ScriptedShadow, **kw: Any) -> DriftTracker:
    args: dict[str, Any] = {
        "capital": {"s1": 1000.0},
        "shadow": shadow,
        "bar_interval_s": BAR_S,
        "interval_s": 60.0,
        "intervals_per_year": 525_960.0,
        "risk_day": day_of,
    }
    return DriftTracker(**(args | kw))


def rows_of(out: Any, strategy: str = "s1") -> list[dict[str, Any]]:
    return [r for r in out.rows if r["strategy"] == strategy]


def test_live_equal_to_shadow_then_rows_every_interval_with_no_drift_and_no_alert() -> None:
    t = tracker(ScriptedShadow(1000.0), thresholds=DriftThresholds(0.1, 1.0, 1.0))
    out = [t.add_bars([bar(T0 + i * BAR_S, 100.0)]) for i in range(5)]
    last = t.advance(T0 + 5 * BAR_S)
    rows = [r for o in [*out, last] for r in rows_of(o)]
    # Bar closes at T0+60 .. T0+300: the first input starts the clock, rows at T0+60 .. T0+300.
    assert [r["timestamp"] for r in rows] == [
        datetime.fromtimestamp(T0 + k * BAR_S, tz=UTC).isoformat() for k in range(1, 6)
    ]
    assert all(r["equity"] == 1000.0 and r["return_drift_pct"] == 0.0 for r in rows)
    assert all(not o.alerts for o in [*out, last])
    assert t.performance()["last_equity"] == 1000.0


def test_live_fill_worse_than_shadow_fill_then_slippage_in_bps_and_one_alert_per_crossing() -> None:
    i = intent("s1", T0, ts=T0 + BAR_S)
    shadow_fill = Fill("f", i.client_order_id, i.intent_id, "s1", "BTC-USDT", Side.BUY, 1.0,
                       100.0, 0.0, T0 + 2 * BAR_S)  # fmt: skip
    shadow = ScriptedShadow(
        1000.0,
        {
            T0 + BAR_S: {"intents": [i]},
            T0 + 2 * BAR_S: {"fills": [shadow_fill], "cash": -100.0, "value": 100.0},
        },
    )
    t = tracker(shadow, thresholds=DriftThresholds(max_fill_slippage_bps=5.0))
    t.add_bars([bar(T0, 100.0)])
    t.add_live_intent(LiveIntent("s1", i.intent_id, "BTC-USDT", i.trigger, T0 + BAR_S + 0.01))
    t.add_bars([bar(T0 + BAR_S, 100.0)])
    fill = LiveFill("s1", i.intent_id, "x-1", "BTC-USDT", Side.BUY, 1.0, 100.1, 0.0,
                    T0 + 2 * BAR_S + 0.05, "sim", T0 + BAR_S + 0.02, T0 + BAR_S + 0.03)  # fmt: skip
    t.add_live_fill(fill)
    out = t.advance(T0 + 3 * BAR_S)
    row = rows_of(out)[-1]
    assert row["fill_slippage_bps"] == pytest.approx(10.0)  # paid 100.1 against 100.0
    assert row["equity"] == pytest.approx(1000.0 - 0.1)  # marked at 100, bought at 100.1
    assert [(a.strategy, a.figure) for a in out.alerts] == [
        ("s1", "fill_slippage_bps"),
        (TOTAL, "fill_slippage_bps"),
    ]
    assert t.advance(T0 + 6 * BAR_S).alerts == []  # still over: not raised again
    quality = t.performance()["execution_quality"]["s1"]["sim"]
    assert quality["fills"] == 1
    assert quality["slippage_bps"]["mean"] == pytest.approx(10.0)  # against the close at intent
    assert quality["ack_latency_ms"]["p50"] == pytest.approx(10.0)
    assert quality["fill_latency_ms"]["p50"] == pytest.approx((BAR_S + 0.03) * 1e3)


def test_shadow_intent_never_seen_live_then_counted_missing_after_lag_and_alerted() -> None:
    i = intent("s1", T0, ts=T0 + BAR_S)
    shadow = ScriptedShadow(1000.0, {T0 + BAR_S: {"intents": [i]}})
    t = tracker(shadow, match_lag_s=5.0)
    t.add_bars([bar(T0, 100.0)])
    early = rows_of(t.advance(T0 + BAR_S))
    assert early[-1]["intents_missing"] == 0  # not yet past the lag
    out = t.advance(T0 + 3 * BAR_S)
    assert rows_of(out)[0]["intents_missing"] == 1
    assert rows_of(out)[0]["intents_backtest"] == 1 and rows_of(out)[0]["intents_live"] == 0
    assert ("s1", "intents_mismatched") in [(a.strategy, a.figure) for a in out.alerts]


def test_live_intent_matching_shadow_then_neither_missing_nor_extra() -> None:
    i = intent("s1", T0, ts=T0 + BAR_S)
    t = tracker(ScriptedShadow(1000.0, {T0 + BAR_S: {"intents": [i]}}))
    t.add_bars([bar(T0, 100.0)])
    t.add_live_intent(LiveIntent("s1", i.intent_id, "BTC-USDT", i.trigger, T0 + BAR_S + 0.01))
    row = rows_of(t.advance(T0 + 10 * BAR_S))[-1]
    assert (row["intents_missing"], row["intents_extra"], row["intents_live"]) == (0, 0, 1)


def test_live_intent_told_before_its_bar_then_counted_in_the_row_of_its_bar_time() -> None:
    """The journal runs ahead of the shadow (bars settle first): a row counts the live intents
    made by its bar time, as it counts the shadow's, so it does not depend on when it was cut."""
    i = intent("s1", T0 + 2 * BAR_S)  # made at the close of the third bar
    t = tracker(ScriptedShadow(1000.0, {T0 + 3 * BAR_S: {"intents": [i]}}))
    t.add_bars([bar(T0, 100.0)])
    t.add_live_intent(LiveIntent("s1", i.intent_id, "BTC-USDT", i.trigger, T0 + 3 * BAR_S))
    rows = [r for k in (1, 2, 3) for r in rows_of(t.add_bars([bar(T0 + k * BAR_S, 100.0)]))]
    rows += rows_of(t.advance(T0 + 4 * BAR_S))
    counted = [(r["timestamp"][11:16], r["intents_live"], r["intents_backtest"]) for r in rows]
    assert counted == [("00:01", 0, 0), ("00:02", 0, 0), ("00:03", 1, 1), ("00:04", 1, 1)]
    restored = tracker(ScriptedShadow(1000.0))  # and an intent not yet counted survives a restart
    early = tracker(ScriptedShadow(1000.0))
    early.add_bars([bar(T0, 100.0)])
    early.add_live_intent(LiveIntent("s1", i.intent_id, "BTC-USDT", i.trigger, T0 + 3 * BAR_S))
    restored.restore(json.loads(json.dumps(early.snapshot())))
    assert rows_of(restored.advance(T0 + 3 * BAR_S))[-1]["intents_live"] == 1


def test_same_inputs_batched_differently_or_replayed_then_same_rows() -> None:
    def inputs(t: DriftTracker, advance_every: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for k in range(30):
            rows += t.add_bars([bar(T0 + k * 20.0, 100.0 + k % 7)]).rows
            if k % 5 == 2:
                fill = LiveFill("s1", f"i{k}", f"f{k}", "BTC-USDT", Side.BUY, 0.5, 101.0, 0.01,
                                T0 + k * 20.0 + 61.0, "sim")  # fmt: skip
                t.add_live_fill(fill)
            if k % advance_every == 0:
                rows += t.advance(T0 + k * 20.0 + 20.0).rows
        return rows + t.advance(T0 + 700.0).rows

    a = inputs(tracker(ScriptedShadow(1000.0)), 1)
    b = inputs(tracker(ScriptedShadow(1000.0)), 7)
    assert a == b and len(a) > 10


def test_new_risk_day_then_daily_pnl_counts_from_the_last_row_of_the_previous_day() -> None:
    midnight = T0 + 86_400.0
    t = tracker(ScriptedShadow(1000.0))
    rows = rows_of(t.add_bars([bar(midnight - 2 * BAR_S, 100.0)]))
    fill = LiveFill("s1", "i", "f", "BTC-USDT", Side.BUY, 1.0, 100.0, 0.0, midnight - 30.0, "sim")
    t.add_live_fill(fill)
    rows += rows_of(t.add_bars([bar(midnight - BAR_S, 110.0)]))  # closes at 00:00: old day, +10
    rows += rows_of(t.add_bars([bar(midnight, 115.0)]))  # +5 on the new day
    rows += rows_of(t.advance(midnight + BAR_S))
    assert [(r["timestamp"][11:16], r["daily_pnl"]) for r in rows] == [
        ("23:59", 0.0),
        ("00:00", 10.0),
        ("00:01", 5.0),
    ]


def test_baseline_then_expected_return_prorated_and_shortfall_alerted() -> None:
    baseline = BaselineFigures(
        span_s=10 * 86_400.0, total_return=0.10, max_drawdown=0.05, strategies={"s1": (0.1, 0.05)}
    )
    t = tracker(
        ScriptedShadow(1000.0),
        baseline=baseline,
        interval_s=86_400.0,
        thresholds=DriftThresholds(max_return_drift_pct=0.5),
    )
    t.add_bars([bar(T0 - BAR_S, 100.0)])  # starts the clock at T0
    out = t.advance(T0 + 86_400.0)
    start, row = rows_of(out)
    assert start["expected_return"] == 0.0 and start["shortfall_vs_backtest"] == 0.0
    expected = 1.1**0.1 - 1  # one day of a 10-day +10 %: 0.958 %
    assert row["expected_return"] == pytest.approx(expected, abs=1e-8)
    assert row["shortfall_vs_backtest"] == pytest.approx(expected, abs=1e-8)  # live is flat
    assert ("s1", "shortfall_vs_backtest_pct") in [(a.strategy, a.figure) for a in out.alerts]
    perf = t.performance()
    assert perf["baseline_total_return"] == 0.10
    assert perf["strategies"]["s1"]["baseline"] == {"total_return": 0.1, "max_drawdown": 0.05}


def test_tracking_error_then_annualised_std_of_interval_return_differences() -> None:
    # Ten units held, the shadow flat: live equity per row 1000, 1000, 1010, 1010, 1020, so the
    # per-interval return differences are 0, 1 %, 0, 1020/1010 - 1 (the first row has none);
    # their sample std, times sqrt(100 intervals a year), in percent.
    t = tracker(ScriptedShadow(1000.0), intervals_per_year=100.0)
    t.add_bars([bar(T0 - BAR_S, 100.0)])
    t.add_live_fill(LiveFill("s1", "i", "f", "BTC-USDT", Side.BUY, 10.0, 100.0, 0.0, T0, "sim"))
    rows: list[dict[str, Any]] = []
    for k, close in enumerate((100.0, 101.0, 101.0, 102.0)):
        rows += rows_of(t.add_bars([bar(T0 + k * BAR_S, close)]))
    rows += rows_of(t.advance(T0 + 4 * BAR_S))
    equities = [r["equity"] for r in rows]
    assert equities == [1000.0, 1000.0, 1010.0, 1010.0, 1020.0]
    diffs = [0.0, 0.01, 0.0, 1020.0 / 1010.0 - 1.0]
    mean = sum(diffs) / 4
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3)
    assert rows[-1]["tracking_error_pct"] == pytest.approx(std * 10.0 * 100.0, rel=1e-6)


def test_bars_older_than_the_tracker_clock_then_counted_late_and_not_given_to_the_shadow() -> None:
    shadow = ScriptedShadow(1000.0)
    t = tracker(shadow)
    t.add_bars([bar(T0 + BAR_S, 100.0)])
    t.add_bars([bar(T0, 90.0)])  # a late delivery of the bar before
    assert t.late_bars == 1
    assert t.last_close["BTC-USDT"] == 100.0


def test_live_fill_attributed_to_the_bar_time_it_arrives_in_not_its_wall_clock() -> None:
    # A simulated market runs ahead of the wall clock: the fill's own time is far behind.
    t = tracker(ScriptedShadow(1000.0))
    t.add_bars([bar(T0, 100.0)])
    t.add_live_fill(LiveFill("s1", "i", "f", "BTC-USDT", Side.BUY, 1.0, 100.0, 1.0, 5.0, "sim"))
    rows = rows_of(t.add_bars([bar(T0 + BAR_S, 100.0)]))
    rows += rows_of(t.advance(T0 + 2 * BAR_S))
    assert [(r["timestamp"][11:16], r["equity"]) for r in rows] == [
        ("00:01", 999.0),
        ("00:02", 999.0),
    ]


def test_alert_event_id_is_deterministic_so_a_replay_journals_it_once() -> None:
    runs = []
    for _ in range(2):
        t = tracker(ScriptedShadow(1000.0), thresholds=DriftThresholds(max_return_drift_pct=0.5))
        t.add_bars([bar(T0, 100.0)])
        t.add_live_fill(
            LiveFill("s1", "i", "f", "BTC-USDT", Side.BUY, 1.0, 100.0, 20.0, T0 + 61.0, "sim")
        )
        runs.append([a.event_id for a in t.advance(T0 + 300.0).alerts])
    assert runs[0] == runs[1] and runs[0]


# -- the files -------------------------------------------------------------------------------


def cut_rows(k_first: int, k_last: int) -> list[dict[str, Any]]:
    t = tracker(ScriptedShadow(1000.0))
    rows: list[dict[str, Any]] = []
    for k in range(k_last + 1):
        rows += t.add_bars([bar(T0 + k * BAR_S, 100.0 + k)]).rows
    rows += t.advance(T0 + (k_last + 1) * BAR_S).rows
    first = datetime.fromtimestamp(T0 + k_first * BAR_S, tz=UTC)
    return [r for r in rows if datetime.fromisoformat(r["timestamp"]) >= first]


def test_rows_offered_again_after_a_restart_then_written_once_and_file_is_0600(
    tmp_path: Path,
) -> None:
    files = DriftFiles(tmp_path)
    assert files.append(cut_rows(0, 5)) == 2 * 6  # s1 and total, rows at T0+60 .. T0+360
    again = DriftFiles(tmp_path)  # a restart: the replay offers every row again, and more
    assert again.append(cut_rows(0, 8)) == 2 * 3
    lines = (tmp_path / DRIFT_CSV).read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    stamps = [line.split(",")[0] for line in lines[1:]]
    assert len(stamps) == len(set(zip(stamps, [ln.split(",")[1] for ln in lines[1:]], strict=True)))
    assert len(lines) == 1 + 2 * 9
    assert stat.S_IMODE((tmp_path / DRIFT_CSV).stat().st_mode) == 0o600


def test_torn_last_row_then_cut_on_open_and_written_again(tmp_path: Path) -> None:
    DriftFiles(tmp_path).append(cut_rows(0, 3))
    path = tmp_path / DRIFT_CSV
    whole = path.read_text()
    path.write_text(whole[:-7])  # the crash tore the last row
    files = DriftFiles(tmp_path)
    assert files.repaired_bytes > 0
    files.append(cut_rows(0, 3))
    assert path.read_text() == whole


def test_someone_elses_csv_then_refused_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / DRIFT_CSV).write_text("a,b\n1,2\n")
    with pytest.raises(DriftFileError, match="header"):
        DriftFiles(tmp_path)
    assert (tmp_path / DRIFT_CSV).read_text() == "a,b\n1,2\n"


def test_performance_written_atomically_as_json_0600(tmp_path: Path) -> None:
    t = tracker(ScriptedShadow(1000.0))
    t.add_bars([bar(T0, 100.0)])
    t.advance(T0 + 120)
    files = DriftFiles(tmp_path)
    files.write_performance(t.performance())
    perf = json.loads((tmp_path / PERFORMANCE_JSON).read_text())
    for key in ("baseline_total_return", "live_total_return", "max_drawdown", "last_equity",
                "last_timestamp", "tracking_error_pct", "alerts"):  # fmt: skip
        assert key in perf
    assert stat.S_IMODE((tmp_path / PERFORMANCE_JSON).stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*.tmp"))


def test_restored_from_snapshot_with_shadow_replayed_then_rows_as_if_never_stopped() -> None:
    i = intent("s1", T0 + 3 * BAR_S)
    shadow_fill = Fill("f0", i.client_order_id, i.intent_id, "s1", "BTC-USDT", Side.BUY, 0.5,
                       100.0, 0.0, T0 + 5 * BAR_S)  # fmt: skip
    script = {
        T0 + 4 * BAR_S: {"intents": [i]},
        T0 + 5 * BAR_S: {"fills": [shadow_fill], "cash": -50.0, "value": 49.0},
    }

    def feed(t: DriftTracker, ks: range) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for k in ks:
            rows += t.add_bars([bar(T0 + k * BAR_S, 100.0 + k % 3)]).rows
            if k == 5:
                t.add_live_intent(LiveIntent("s1", "other", "BTC-USDT", i.trigger, 0.0))
            if k == 8:  # after the restart: priced against a shadow fill from before it
                t.add_live_fill(
                    LiveFill(
                        "s1",
                        i.intent_id,
                        "f",
                        "BTC-USDT",
                        Side.BUY,
                        0.5,
                        101.0,
                        0.1,
                        0.0,
                        "sim",
                        ref_price=100.0,
                    )
                )
        return rows

    whole = tracker(ScriptedShadow(1000.0, script), thresholds=DriftThresholds(0.01, 1, 1))
    expected = feed(whole, range(12)) + whole.advance(T0 + 13 * BAR_S).rows

    first = tracker(ScriptedShadow(1000.0, script), thresholds=DriftThresholds(0.01, 1, 1))
    rows = feed(first, range(7))
    snap = json.loads(json.dumps(first.snapshot()))  # what the state file holds
    second = tracker(ScriptedShadow(1000.0, script), thresholds=DriftThresholds(0.01, 1, 1))
    second.restore(snap)
    for k in range(7):
        second.replay_shadow([bar(T0 + k * BAR_S, 100.0 + k % 3)])
    rows += feed(second, range(7, 12)) + second.advance(T0 + 13 * BAR_S).rows
    assert rows == expected
    assert second.performance() == whole.performance()


def test_snapshot_of_other_strategies_then_restore_refused() -> None:
    snap = tracker(ScriptedShadow(1000.0)).snapshot()
    other = tracker(ScriptedShadow(1000.0), capital={"s2": 1000.0})
    with pytest.raises(ValueError, match="cannot restore"):
        other.restore(snap)


def test_baseline_from_a_backtest_report_then_span_and_returns_read() -> None:
    from tests.unit.backtest.test_report_json import a_report

    report = a_report()
    baseline = BaselineFigures.from_report(report)
    assert baseline.span_s == 180.0  # three 60-s bars
    assert baseline.total_return == report.total.total_return
    assert baseline.figures("a") == pytest.approx((report.strategies["a"].total_return, 0.1))


def shadow_filling(i: Intent, made_at: float, filled_at: float, price: float) -> ScriptedShadow:
    fill = Fill("sf", i.client_order_id, i.intent_id, "s1", "BTC-USDT", Side.BUY, 1.0, price,
                0.0, filled_at)  # fmt: skip
    return ScriptedShadow(
        1000.0,
        {
            made_at: {"intents": [i]},
            filled_at: {"fills": [fill], "cash": -price, "value": 100.0},
        },
    )


def live_fill_of(i: Intent, price: float = 100.0) -> LiveFill:
    return LiveFill("s1", i.intent_id, "lf", "BTC-USDT", Side.BUY, 1.0, price, 0.0, 0.0, "sim",
                    trigger=i.trigger)  # fmt: skip


def test_live_fill_told_before_the_shadow_fills_then_counted_at_the_shadows_bar() -> None:
    i = intent("s1", T0)
    t = tracker(shadow_filling(i, T0 + BAR_S, T0 + 3 * BAR_S, 100.0))
    rows = rows_of(t.add_bars([bar(T0, 100.0)]))
    t.add_live_fill(live_fill_of(i))  # the journal is ahead of the recorded bars
    for k in (1, 2, 3):
        rows += rows_of(t.add_bars([bar(T0 + k * BAR_S, 100.0)]))
    rows += rows_of(t.advance(T0 + 4 * BAR_S))
    assert all(r["return_drift_pct"] == 0.0 for r in rows), rows
    assert rows[-1]["fill_slippage_bps"] == 0.0


def test_live_fill_of_an_intent_from_a_bar_the_shadow_has_not_reached_then_held_for_it() -> None:
    i = intent("s1", T0 + 2 * BAR_S)  # triggered by a bar the tracker has not been given
    t = tracker(shadow_filling(i, T0 + 3 * BAR_S, T0 + 4 * BAR_S, 100.0))
    rows = rows_of(t.add_bars([bar(T0, 100.0)]))
    t.add_live_fill(live_fill_of(i))
    for k in (1, 2, 3):
        rows += rows_of(t.add_bars([bar(T0 + k * BAR_S, 100.0)]))
    rows += rows_of(t.advance(T0 + 5 * BAR_S))
    assert all(r["return_drift_pct"] == 0.0 for r in rows), rows


def test_live_fill_the_shadow_never_fills_then_counted_after_the_lag_as_drift() -> None:
    i = intent("s1", T0)
    shadow = ScriptedShadow(1000.0, {T0 + BAR_S: {"intents": [i]}})
    t = tracker(shadow, match_lag_s=120.0)
    t.add_bars([bar(T0, 100.0)])
    t.add_live_fill(live_fill_of(i, price=100.0))
    t.add_live_fill(replace(live_fill_of(i, price=100.0), fill_id="lf2", fee=5.0))
    rows = [r for k in range(1, 6) for r in rows_of(t.add_bars([bar(T0 + k * BAR_S, 100.0)]))]
    drift = [r["return_drift_pct"] for r in rows]
    assert drift[0] == 0.0 and drift[-1] == pytest.approx(-0.5)  # the 5 fee, once counted
