"""The run's figures from its journal (``journal.run_figures``): what ``status`` shows, from
hand-built journal lines. Each defect a new user met on a stopped demo run is a test here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.unit.journal.factories import (
    DEPLOYMENT,
    T0,
    denied,
    filled,
    intent,
    rec,
    status,
    submitting,
    trade,
)
from tradeplane.journal import queries
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.records import JournalRecord
from tradeplane.journal.run_figures import FIGURE_KINDS, run_figures
from tradeplane.journal.store import JournalStore


def lines(records: list[JournalRecord]) -> list[dict[str, Any]]:
    """Records as the journal's lines carry them (seq in order, ts as in the record)."""
    return [
        {
            "seq": seq,
            "ts": r.ts,
            "kind": str(r.kind),
            "strategy": r.strategy,
            "intent_id": r.intent_id,
            "client_order_id": r.client_order_id,
            "data": r.data,
        }
        for seq, r in enumerate(records, 1)
    ]


def started(capital: dict[str, float], *, ts: float = T0, calendar: str = "24/7") -> JournalRecord:
    return rec(
        f"started/{ts}",
        "deployment_started",
        {"strategies": sorted(capital), "capital": capital, "session_calendar": calendar},
        ts=ts,
    )


def bars(closes: dict[str, float], *, ts: float = T0 + 5) -> JournalRecord:
    symbols = {s: {"bars": 1, "close": c} for s, c in closes.items()}
    return rec(f"bars/{ts}/{sorted(closes)}", "bar_summary", {"symbols": symbols}, ts=ts)


def test_denials_when_journal_holds_them_then_counted_by_reason() -> None:
    records = [started({"s1": 1000.0})]
    records += [denied(n, "MAX_ORDER_VALUE") for n in range(40)]
    records += [denied(n, "KILL_SWITCH_ACTIVE") for n in range(40, 48)]
    f = run_figures(lines(records))
    assert f["denied"] == 48
    assert f["denials"] == {"KILL_SWITCH_ACTIVE": 8, "MAX_ORDER_VALUE": 40}
    assert f["strategies"]["s1"]["denials"] == f["denials"]
    assert f["day"]["denied"] == 48


def test_intents_when_journaled_then_counted_per_strategy_once_each() -> None:
    records = [started({"a": 1000.0, "b": 1000.0})]
    records += [intent(n, strategy="a") for n in range(30)]
    # b's intent records were lost (a crash): its decisions still name them.
    records += [denied(100 + n, "MAX_ORDER_VALUE", strategy="b") for n in range(5)]
    records += [submitting(200, strategy="b")]
    records += [denied(3, "MAX_ORDER_VALUE", strategy="a")]  # a decision of a known intent
    f = run_figures(lines(records))
    assert f["strategies"]["a"]["intents"] == 30
    assert f["strategies"]["b"]["intents"] == 6
    assert f["intents"] == 36


def test_equity_and_total_pnl_when_capital_journaled_then_shown_not_unknown() -> None:
    records = [started({"s1": 10_000.0})]
    records += trade(1, "buy", 10.0, 100.0, fee=1.0)
    records += [bars({"BTC-USDT": 103.0})]
    f = run_figures(lines(records))
    s1 = f["strategies"]["s1"]
    assert s1["equity"] == pytest.approx(10_000.0 + 10 * 3.0 - 1.0)
    assert s1["unrealized_pnl"] == pytest.approx(30.0)
    assert s1["total_pnl"] == pytest.approx(29.0)
    assert f["total"]["equity"] == pytest.approx(10_029.0)
    assert f["total"]["total_pnl"] == pytest.approx(29.0)


def test_equity_when_capital_only_given_by_caller_then_used() -> None:
    f = run_figures(lines(trade(1, "buy", 1.0, 100.0)), capital={"s1": 500.0})
    assert f["strategies"]["s1"]["equity"] == pytest.approx(500.0)


def test_equity_when_no_capital_known_then_none_but_pnl_known() -> None:
    f = run_figures(lines([*trade(1, "buy", 1.0, 100.0), bars({"BTC-USDT": 90.0})]))
    assert f["strategies"]["s1"]["equity"] is None and f["total"]["equity"] is None
    assert f["strategies"]["s1"]["total_pnl"] == pytest.approx(-10.0)


def test_strategy_flat_again_when_round_trip_then_shown_with_realized_pnl() -> None:
    records = [started({"s1": 1000.0})]
    records += trade(1, "buy", 5.0, 100.0, fee=0.5)
    records += trade(2, "sell", 5.0, 104.0, fee=0.5)
    f = run_figures(lines(records))
    pos = f["strategies"]["s1"]["positions"]["BTC-USDT"]
    assert pos["quantity"] == 0.0
    assert pos["realized_pnl"] == pytest.approx(20.0)
    assert pos["fees"] == pytest.approx(1.0) and pos["fills"] == 2
    assert f["strategies"]["s1"]["total_pnl"] == pytest.approx(19.0)
    assert f["strategies"]["s1"]["equity"] == pytest.approx(1019.0)


def test_short_when_price_falls_then_unrealized_gain_and_equity_up() -> None:
    records = [started({"s1": 1000.0})]
    records += trade(1, "sell", 4.0, 50.0)
    records += [bars({"BTC-USDT": 45.0})]
    pos = run_figures(lines(records))["strategies"]["s1"]["positions"]["BTC-USDT"]
    assert pos["quantity"] == -4.0 and pos["avg_price"] == 50.0 and pos["mark"] == 45.0
    assert pos["unrealized_pnl"] == pytest.approx(20.0)
    f = run_figures(lines(records))
    assert f["strategies"]["s1"]["equity"] == pytest.approx(1020.0)


def test_partial_fills_when_order_fills_in_parts_then_each_counted_and_order_filled() -> None:
    records = [
        started({"s1": 1000.0}),
        submitting(1, quantity=3.0),
        filled(1, "p1", 1.0, 100.0, cumulative=1.0, avg=100.0, order_status="partially_filled"),
        filled(1, "p2", 2.0, 103.0, cumulative=3.0, avg=102.0, order_status="filled"),
        # the same fill delivered again: counted once
        filled(1, "p2", 2.0, 103.0, cumulative=3.0, avg=102.0, order_status="filled",
               event_id="again"),
    ]  # fmt: skip
    f = run_figures(lines(records))
    assert f["fills"] == 2 and f["strategies"]["s1"]["fills"] == 2
    assert f["orders"] == {"filled": 1}
    pos = f["strategies"]["s1"]["positions"]["BTC-USDT"]
    assert pos["quantity"] == 3.0 and pos["avg_price"] == pytest.approx(102.0)
    assert pos["fees"] == pytest.approx(0.2)


def test_flip_through_zero_when_sell_exceeds_long_then_realized_and_short_opened_at_price() -> None:
    records = [started({"s1": 1000.0})]
    records += trade(1, "buy", 2.0, 100.0)
    records += trade(2, "sell", 5.0, 110.0)
    records += [bars({"BTC-USDT": 100.0})]
    pos = run_figures(lines(records))["strategies"]["s1"]["positions"]["BTC-USDT"]
    assert pos["realized_pnl"] == pytest.approx(20.0)
    assert pos["quantity"] == -3.0 and pos["avg_price"] == 110.0
    assert pos["unrealized_pnl"] == pytest.approx(30.0)


def test_orders_when_statuses_move_then_last_status_each() -> None:
    records = [
        submitting(1),
        status(1, "order_accepted"),
        status(1, "order_cancelled"),
        submitting(2),
        status(2, "order_rejected", reason="venue"),
        submitting(3),
    ]
    f = run_figures(lines(records))
    assert f["orders"] == {"cancelled": 1, "pending_submit": 1, "rejected": 1}
    assert f["strategies"]["s1"]["orders"] == 3


def test_kill_switch_when_activated_then_cleared_then_last_state_shown() -> None:
    on = {"reason": "max_daily_loss", "source": "risk", "ts": T0 + 1, "trading_state": "halted"}
    records = [rec("k1", "kill_switch_activated", on, ts=T0 + 1)]
    f = run_figures(lines(records))
    assert f["kill_switch"]["active"] and f["kill_switch"]["reason"] == "max_daily_loss"
    assert f["trading_state"] == "halted"
    off = {"reason": "operator", "source": "cli", "ts": T0 + 2}
    f = run_figures(lines([*records, rec("k2", "kill_switch_cleared", off, ts=T0 + 2)]))
    assert not f["kill_switch"]["active"] and f["trading_state"] == "active"


def _day(day: int, hour: int = 12) -> float:
    return datetime(2026, 3, day, hour, tzinfo=UTC).timestamp()


def test_day_figures_when_run_spans_two_risk_days_then_today_only() -> None:
    records = [started({"s1": 1000.0}, ts=_day(2))]
    records += [
        r.__class__(**{**_fields(r), "ts": _day(2, 13)}) for r in trade(1, "buy", 10.0, 100.0)
    ]
    records += [bars({"BTC-USDT": 90.0}, ts=_day(2, 20))]  # -100 yesterday
    records += [bars({"BTC-USDT": 95.0}, ts=_day(3, 1))]  # +50 today
    records += [
        r.__class__(**{**_fields(r), "ts": _day(3, 2)})
        for r in trade(2, "sell", 10.0, 95.0, fee=1.0)
    ]
    f = run_figures(lines(records))
    day = f["day"]
    assert day["risk_day"] == "2026-03-03" and day["calendar"] == "24/7"
    assert day["start_equity"] == pytest.approx(900.0)
    assert day["equity"] == pytest.approx(949.0)
    assert day["pnl"] == pytest.approx(49.0)
    assert day["realized_pnl"] == pytest.approx(-51.0)  # the whole -50 closes today, and its fee
    assert day["orders"] == 1 and day["fills"] == 1


def test_day_figures_when_run_began_today_then_start_equity_is_capital() -> None:
    records = [started({"a": 1000.0, "b": 500.0}), *trade(1, "buy", 1.0, 10.0, strategy="a")]
    records += [bars({"BTC-USDT": 12.0})]
    day = run_figures(lines(records))["day"]
    assert day["start_equity"] == pytest.approx(1500.0)
    assert day["pnl"] == pytest.approx(2.0)


def _fields(r: JournalRecord) -> dict[str, Any]:
    return {k: getattr(r, k) for k in r.__dataclass_fields__}


def test_figures_agree_with_the_journals_own_projections(tmp_path: Path) -> None:
    """Written to a real journal and read back: the fold's orders and positions are the
    ``orders`` and ``positions`` projections'."""
    records = [started({"s1": 1000.0, "s2": 1000.0})]
    records += trade(1, "buy", 2.0, 100.0, fee=0.2)
    records += trade(2, "sell", 5.0, 101.0, strategy="s2", fee=0.1)
    records += trade(3, "sell", 2.0, 99.0, fee=0.2)
    records += [submitting(4), status(4, "order_accepted"), denied(5, "MAX_ORDER_VALUE")]
    state = tmp_path / "state"
    with JournalStore.open(state, DEPLOYMENT) as store:
        store.commit(records)
    with JournalReader.open(state) as reader:
        f = run_figures(reader.events(FIGURE_KINDS))
        assert f["orders"] == reader.order_counts_by_status()
        for (strategy, symbol), pos in queries.positions(reader.conn).items():
            mine = f["strategies"][strategy]["positions"][symbol]
            assert mine["quantity"] == pytest.approx(pos["quantity"])
            assert mine["realized_pnl"] == pytest.approx(pos["realized_pnl"])
            assert mine["fees"] == pytest.approx(pos["fees"])
            assert mine["fills"] == pos["fills"]


class EveningCalendar:
    """A risk day that rolls at 21:00 UTC (as an exchange's session close would)."""

    name = "evening"

    def risk_day(self, ts: float) -> str:
        return datetime.fromtimestamp(ts + 3 * 3600, UTC).date().isoformat()

    def next_boundary(self, ts: float) -> float:
        day = datetime.fromisoformat(self.risk_day(ts)).replace(tzinfo=UTC)
        return day.timestamp() + 21 * 3600


def test_day_figures_when_calendar_rolls_in_the_evening_then_its_risk_day_counts() -> None:
    records = [started({"s1": 1000.0}, ts=_day(2, 20), calendar="evening")]
    records += [denied(1, "MAX_ORDER_VALUE")]  # 20:00: day 2
    late = denied(2, "MAX_ORDER_VALUE")
    records += [late.__class__(**{**_fields(late), "ts": _day(2, 22)})]  # 22:00: day 3 already
    f = run_figures(lines(records), calendar_for=lambda name: EveningCalendar())
    assert f["day"]["risk_day"] == "2026-03-03" and f["day"]["calendar"] == "evening"
    assert f["day"]["denied"] == 1 and f["denied"] == 2


def test_fill_without_strategy_when_capital_known_then_counted_in_total_equity() -> None:
    records = [started({"s1": 1000.0}), *trade(1, "buy", 1.0, 100.0, strategy="s1")]
    adopted = filled(9, "x9", 1.0, 50.0, cumulative=1.0, avg=50.0, order_status="filled", fee=0.0)
    records += [adopted.__class__(**{**_fields(adopted), "strategy": None})]
    records += [bars({"BTC-USDT": 60.0})]
    f = run_figures(lines(records))
    assert f["strategies"][""]["total_pnl"] == pytest.approx(10.0)
    assert f["total"]["equity"] == pytest.approx(1000.0 - 40.0 + 10.0)
