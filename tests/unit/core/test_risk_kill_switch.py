"""Trading states, kill switch, equity and risk-day rollover of the risk core."""

import itertools
import json
from datetime import UTC, datetime

import pytest

from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import IllegalTransition
from tradeplane.core.model import Fill, Intent, OrderDenied, OrderType, Side, SubmitOrder
from tradeplane.core.risk import (
    DenyReason,
    KillSwitchActivated,
    KillSwitchCleared,
    KillSwitchPolicy,
    RiskDayRolledOver,
    RiskEngine,
    RiskLimits,
    TradingState,
)
from tradeplane.core.risk_types import TRADING_STATES
from tradeplane.core.session import make_calendar

_ids = itertools.count(1)


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def intent(side: Side = Side.BUY, qty: float = 1.0, symbol: str = "AAA") -> Intent:
    n = next(_ids)
    return Intent(f"i{n}", f"k{n}", "d", "s", symbol, side, qty, OrderType.MARKET, None, 0.0, "t")


def fill(side: Side, qty: float, price: float, symbol: str = "AAA", fee: float = 0.0) -> Fill:
    n = next(_ids)
    return Fill(f"f{n}", f"c{n}", "i", "s", symbol, side, qty, price, fee, 0.0)


def engine(
    clock: ManualClock | None = None,
    *,
    policy: KillSwitchPolicy | None = None,
    equity: float = 10_000.0,
    calendar: str = "24/7",
    **limits: object,
) -> RiskEngine:
    return RiskEngine(
        RiskLimits(**limits),  # type: ignore[arg-type]
        clock=clock or ManualClock(),
        calendar=make_calendar(calendar),
        starting_equity=equity,
        policy=policy or KillSwitchPolicy(),
    )


def long_100_at_100(e: RiskEngine) -> None:
    e.mark("AAA", 100.0)
    assert e.on_fill(fill(Side.BUY, 100, 100.0)) == []


def reason(d: SubmitOrder | OrderDenied) -> str:
    return d.reason if isinstance(d, OrderDenied) else "approved"


# -- trading states --------------------------------------------------------------------------


def test_trading_state_table_allows_every_change_but_staying_put() -> None:
    assert TRADING_STATES.allowed(TradingState.ACTIVE, TradingState.HALTED)
    with pytest.raises(IllegalTransition):
        TRADING_STATES.check(TradingState.ACTIVE, TradingState.ACTIVE)


def test_submit_when_kill_switch_active_then_denied_reducing_only() -> None:
    e = engine()
    long_100_at_100(e)
    [ev] = e.activate_kill_switch("operator says stop")
    assert isinstance(ev, KillSwitchActivated) and ev.trading_state is TradingState.REDUCING
    d = e.check(intent(Side.BUY))
    assert isinstance(d, OrderDenied) and d.reason == DenyReason.REDUCING_ONLY
    assert d.figures["position"] == 100 and d.figures["trading_state"] == "reducing"
    assert reason(e.check(intent(Side.SELL, qty=40))) == "approved"


def test_reducing_state_counts_working_reductions_so_a_flip_is_denied() -> None:
    e = engine()
    long_100_at_100(e)
    e.activate_kill_switch("stop")
    assert reason(e.check(intent(Side.SELL, qty=80))) == "approved"
    assert reason(e.check(intent(Side.SELL, qty=30))) == DenyReason.REDUCING_ONLY  # would be short


def test_halted_denies_reducing_orders_but_flatten_passes() -> None:
    e = engine(policy=KillSwitchPolicy(allow_reducing=False), max_order_quantity=1)
    long_100_at_100(e)
    [ev] = e.activate_kill_switch("stop")
    assert isinstance(ev, KillSwitchActivated) and ev.trading_state is TradingState.HALTED
    d = e.check(intent(Side.SELL, qty=1))
    assert isinstance(d, OrderDenied) and d.reason == DenyReason.TRADING_HALTED
    assert d.figures["kill_switch_reason"] == "stop"
    # the flatten skips the other checks (here: max_order_quantity) except price known
    assert reason(e.check(intent(Side.SELL, qty=100), flatten=True)) == "approved"


def test_flatten_that_would_increase_or_flip_then_denied_reducing_only() -> None:
    e = engine()
    long_100_at_100(e)
    assert reason(e.check(intent(Side.BUY, qty=1), flatten=True)) == DenyReason.REDUCING_ONLY
    assert reason(e.check(intent(Side.SELL, qty=101), flatten=True)) == DenyReason.REDUCING_ONLY
    assert reason(e.check(intent(Side.SELL, qty=100), flatten=True)) == "approved"
    # a second flatten while the first is working would go short
    assert reason(e.check(intent(Side.SELL, qty=100), flatten=True)) == DenyReason.REDUCING_ONLY


def test_flatten_without_a_price_then_denied_no_price() -> None:
    e = engine()
    e.restore({"AAA": 5.0}, {})
    assert reason(e.check(intent(Side.SELL, qty=5), flatten=True)) == DenyReason.NO_PRICE


def test_operator_activates_and_clears_kill_switch() -> None:
    clock = ManualClock()
    e = engine(clock)
    e.mark("AAA", 100.0)
    [on] = e.activate_kill_switch("maintenance", source="cli", figures={"ticket": "T-1"})
    assert isinstance(on, KillSwitchActivated)
    assert (on.reason, on.source, on.figures, on.ts) == (
        "maintenance",
        "cli",
        {"ticket": "T-1"},
        clock.now(),
    )
    assert on.cancel_orders is True and on.flatten is False
    assert e.activate_kill_switch("again") == []  # idempotent
    assert e.kill_switch_active and e.summary()["kill_switch"]["reason"] == "maintenance"
    [off] = e.clear_kill_switch("done", source="cli")
    assert isinstance(off, KillSwitchCleared) and off.reason == "done"
    assert e.trading_state is TradingState.ACTIVE and e.clear_kill_switch("x") == []
    assert reason(e.check(intent())) == "approved"


def test_events_serialize_to_json() -> None:
    e = engine()
    [on] = e.activate_kill_switch("stop", figures={"daily_loss": 1.5})
    d = on.to_dict()
    assert d["kind"] == "kill_switch_activated" and d["trading_state"] == "reducing"
    json.dumps(d)
    [off] = e.clear_kill_switch("ok")
    assert json.loads(json.dumps(off.to_dict()))["kind"] == "kill_switch_cleared"


def test_policy_flags_travel_on_the_activation_event() -> None:
    e = engine(policy=KillSwitchPolicy(cancel_orders=False, flatten=True))
    [ev] = e.activate_kill_switch("stop")
    assert isinstance(ev, KillSwitchActivated) and not ev.cancel_orders and ev.flatten


# -- equity and loss limits ----------------------------------------------------------------


def test_equity_is_starting_equity_plus_cash_flow_plus_marked_positions_for_shorts() -> None:
    e = engine(equity=10_000.0)
    e.mark("AAA", 100.0)
    e.on_fill(fill(Side.SELL, 10, 100.0, fee=1.0))  # cash flow +999
    e.mark("AAA", 110.0)
    assert e.equity() == pytest.approx(10_000 + 999 - 1100)
    assert e.summary()["daily_pnl"] == pytest.approx(-101)


def test_kill_switch_trips_on_a_mark_when_daily_loss_reaches_limit_without_any_order() -> None:
    e = engine(max_daily_loss=1000)
    long_100_at_100(e)
    assert e.mark("AAA", 90.01) == []
    [ev] = e.mark("AAA", 90.0)
    assert isinstance(ev, KillSwitchActivated) and ev.reason == "max_daily_loss"
    assert ev.source == "risk" and ev.figures["daily_loss"] == pytest.approx(1000)
    assert ev.figures["limit"] == 1000 and e.trading_state is TradingState.REDUCING
    assert e.mark("AAA", 80.0) == []  # already active: one event


def test_kill_switch_trips_on_a_mark_when_drawdown_reaches_limit() -> None:
    e = engine(max_drawdown_pct=10)
    long_100_at_100(e)
    e.mark("AAA", 120.0)  # equity 12,000: the new high-water mark
    assert e.mark("AAA", 108.1) == []
    [ev] = e.mark("AAA", 108.0)  # 12,000 -> 10,800 is 10 %
    assert isinstance(ev, KillSwitchActivated) and ev.reason == "max_drawdown"
    assert ev.figures["drawdown_pct"] == pytest.approx(10.0)
    assert ev.figures["high_water_mark"] == pytest.approx(12_000)


def test_kill_switch_trips_on_a_fill_that_books_the_loss() -> None:
    e = engine(max_daily_loss=50)
    e.mark("AAA", 100.0)
    [ev] = e.on_fill(fill(Side.BUY, 10, 100.0, fee=60.0))
    assert isinstance(ev, KillSwitchActivated) and ev.reason == "max_daily_loss"


def test_equity_unknown_until_every_held_symbol_has_a_mark() -> None:
    e = engine(max_daily_loss=10)
    e.restore({"AAA": 10.0, "BBB": 5.0}, {}, cash_flow=-1500.0)
    assert e.mark("AAA", 1.0) == [] and e.equity() is None
    assert e.summary()["unmarked_symbols"] == ["BBB"]
    d = e.check(intent())
    assert isinstance(d, OrderDenied) and d.reason == DenyReason.NO_PRICE
    assert d.figures["unmarked"] == "BBB"
    e.mark("BBB", 100.0)
    assert e.equity() == pytest.approx(10_000 - 1500 + 10 + 500)


def test_order_while_daily_loss_beyond_limit_after_clear_then_denied_and_switch_trips_again() -> (
    None
):
    e = engine(max_daily_loss=1000)
    long_100_at_100(e)
    e.mark("AAA", 85.0)
    e.clear_kill_switch("operator accepts the loss")
    assert e.mark("AAA", 84.0) == []  # no new crossing: clearing sticks on marks
    d = e.check(intent(Side.BUY))
    assert isinstance(d, OrderDenied) and d.reason == DenyReason.MAX_DAILY_LOSS
    assert d.figures["daily_loss"] == pytest.approx(1600) and d.figures["limit"] == 1000
    [ev] = e.drain_events()
    assert isinstance(ev, KillSwitchActivated) and ev.reason == "max_daily_loss"
    assert reason(e.check(intent(Side.SELL, qty=10))) == "approved"  # reducing still passes


def test_order_while_drawdown_beyond_limit_then_denied_max_drawdown() -> None:
    e = engine(max_drawdown_pct=5)
    long_100_at_100(e)
    e.mark("AAA", 90.0)
    e.clear_kill_switch("ok")
    d = e.check(intent(Side.BUY))
    assert isinstance(d, OrderDenied) and d.reason == DenyReason.MAX_DRAWDOWN
    assert d.figures["drawdown_pct"] == pytest.approx(10.0) and d.figures["limit"] == 5


def test_events_raised_inside_check_are_handed_back_by_the_next_mark() -> None:
    e = engine(max_daily_loss=1000)
    long_100_at_100(e)
    e.mark("AAA", 85.0)
    e.clear_kill_switch("ok")
    e.check(intent(Side.BUY))
    assert [type(ev) for ev in e.mark("AAA", 85.0)] == [KillSwitchActivated]


def test_venue_rejection_burst_trips_kill_switch() -> None:
    clock = ManualClock()
    e = engine(clock, policy=KillSwitchPolicy(max_venue_rejections=3, venue_rejection_window_s=10))
    assert e.on_venue_rejection("a") == [] and e.on_venue_rejection("b") == []
    clock.advance(10)  # both leave the window
    assert e.on_venue_rejection("c") == [] and e.on_venue_rejection("d") == []
    [ev] = e.on_venue_rejection("e")
    assert isinstance(ev, KillSwitchActivated) and ev.reason == "max_venue_rejections"
    assert ev.figures == {"count": 3, "limit": 3, "window_s": 10, "last_client_order_id": "e"}


def test_venue_rejections_without_a_limit_never_trip() -> None:
    e = engine()
    assert all(e.on_venue_rejection(str(i)) == [] for i in range(100))


# -- risk day ------------------------------------------------------------------------------


def test_rollover_at_midnight_utc_resets_counters_but_not_the_kill_switch() -> None:
    clock = ManualClock(ts("2026-11-20T23:59:00"))
    e = engine(clock, max_daily_loss=1000)
    long_100_at_100(e)
    e.check(intent(Side.SELL))
    e.check(intent(Side.SELL))
    e.mark("AAA", 89.0)  # trips
    assert e.summary()["orders_today"] == 2 and e.risk_day == "2026-11-20"
    clock.advance(59.999)
    assert e.roll_day_if_due() == []
    clock.advance(0.001)
    [ev] = e.mark("AAA", 89.0)
    assert isinstance(ev, RiskDayRolledOver)
    assert (ev.previous_day, ev.day) == ("2026-11-20", "2026-11-21")
    assert ev.figures["orders"] == 2 and ev.figures["daily_loss"] == pytest.approx(1100)
    s = e.summary()
    assert s["orders_today"] == 0 and s["daily_pnl"] == 0 and s["risk_day"] == "2026-11-21"
    assert s["next_boundary"] == "2026-11-22T00:00:00+00:00"
    assert e.kill_switch_active and e.trading_state is TradingState.REDUCING


def test_new_day_measures_daily_loss_from_its_start_equity() -> None:
    clock = ManualClock(ts("2026-11-20T12:00:00"))
    e = engine(clock, max_daily_loss=1000)
    long_100_at_100(e)
    assert e.mark("AAA", 91.0) == []  # -900 today
    clock.advance(12 * 3600)
    assert [type(x) for x in e.mark("AAA", 91.0)] == [RiskDayRolledOver]
    assert e.mark("AAA", 82.0) == []  # -900 on the new day
    assert [x.reason for x in e.mark("AAA", 81.0) if isinstance(x, KillSwitchActivated)] == [
        "max_daily_loss"
    ]


def test_several_days_without_activity_roll_over_once() -> None:
    clock = ManualClock(ts("2026-11-20T12:00:00"))
    e = engine(clock)
    clock.advance(3 * 86_400)
    [ev] = e.roll_day_if_due()
    assert isinstance(ev, RiskDayRolledOver) and ev.day == "2026-11-23"
    assert e.roll_day_if_due() == []


def test_check_rolls_the_day_and_the_event_is_drained() -> None:
    clock = ManualClock(ts("2026-11-20T23:00:00"))
    e = engine(clock, max_orders_per_minute=1)
    e.mark("AAA", 100.0)
    assert reason(e.check(intent())) == "approved"
    clock.advance(3600)
    e.mark("AAA", 100.0)  # rolls
    assert e.summary()["orders_today"] == 0
    clock.advance(86_400)
    assert reason(e.check(intent())) == "approved"
    assert [type(x) for x in e.drain_events()] == [RiskDayRolledOver]
    assert e.summary()["orders_today"] == 1


def test_fill_after_the_day_boundary_rolls_the_day_and_returns_the_event() -> None:
    clock = ManualClock(ts("2026-11-20T23:59:00"))
    e = engine(clock)
    e.mark("AAA", 100.0)
    assert e.on_fill(fill(Side.BUY, 1.0, 100.0)) == []
    clock.advance(120)
    [ev] = e.on_fill(fill(Side.BUY, 1.0, 100.0))
    assert isinstance(ev, RiskDayRolledOver) and ev.day == "2026-11-21"
    assert e.on_fill(fill(Side.BUY, 1.0, 100.0)) == []


def test_fill_hands_back_an_event_still_pending_from_check() -> None:
    clock = ManualClock(ts("2026-11-20T23:59:00"))
    e = engine(clock)
    e.mark("AAA", 100.0)
    clock.advance(120)
    assert reason(e.check(intent())) == "approved"  # rolls the day: the event waits
    assert [type(x) for x in e.on_fill(fill(Side.BUY, 1.0, 100.0))] == [RiskDayRolledOver]
    assert e.drain_events() == []


def test_xnys_risk_day_rolls_at_session_close_including_early_close_and_holiday() -> None:
    clock = ManualClock(ts("2026-11-25T20:59:00"))  # Wednesday before Thanksgiving
    e = engine(clock, calendar="XNYS")
    assert e.risk_day == "2026-11-25"
    clock.advance(60)  # 16:00 ET close
    [ev] = e.roll_day_if_due()
    assert isinstance(ev, RiskDayRolledOver) and ev.day == "2026-11-27"  # Thanksgiving skipped
    assert e.summary()["next_boundary"] == "2026-11-27T18:00:00+00:00"  # 13:00 ET early close
    clock.advance(ts("2026-11-27T17:59:59") - clock.now())
    assert e.roll_day_if_due() == []
    clock.advance(1)
    [ev] = e.roll_day_if_due()
    assert isinstance(ev, RiskDayRolledOver) and ev.day == "2026-11-30"


def test_summary_is_json_safe_and_complete() -> None:
    e = engine(max_daily_loss=500)
    long_100_at_100(e)
    s = e.summary()
    json.dumps(s)
    for key in (
        "trading_state",
        "kill_switch",
        "equity",
        "daily_pnl",
        "daily_loss_limit",
        "drawdown_pct",
        "high_water_mark",
        "orders_today",
        "risk_day",
        "next_boundary",
        "approved",
        "denied",
    ):
        assert key in s
    assert s["daily_loss_limit"] == 500 and s["equity"] == pytest.approx(10_000)


def test_approval_marks_reducing_orders_by_worst_case_exposure_so_queued_ones_cannot_flip() -> None:
    e = engine()
    long_100_at_100(e)
    first = e.check(intent(Side.SELL, qty=60))
    second = e.check(intent(Side.SELL, qty=60))  # with the first working, this one would flip
    third = e.check(intent(Side.SELL, qty=40))
    grow = e.check(intent(Side.BUY, qty=1))
    assert isinstance(first, SubmitOrder) and first.reduces_position
    assert isinstance(second, SubmitOrder) and not second.reduces_position
    assert isinstance(third, SubmitOrder) and not third.reduces_position  # 100-60-60 < 0 already
    assert isinstance(grow, SubmitOrder) and not grow.reduces_position


def test_approval_when_flat_then_not_reducing() -> None:
    e = engine()
    e.mark("AAA", 100.0)
    d = e.check(intent(Side.SELL, qty=1))
    assert isinstance(d, SubmitOrder) and not d.reduces_position


def test_no_loss_limit_then_marks_still_track_high_water_mark_and_day_start_equity() -> None:
    # Without a loss limit the evaluation on each mark stops before the loss figures (nothing
    # to compare them with): the high-water mark and the day's start equity still follow it.
    e = engine()
    long_100_at_100(e)
    version = e.state_version

    e.mark("AAA", 110.0)
    e.mark("AAA", 105.0)

    summary = e.summary()
    assert summary["high_water_mark"] == 11_000.0
    assert summary["equity"] == 10_500.0
    assert summary["daily_pnl"] == 500.0
    assert summary["drawdown_pct"] == pytest.approx(100.0 * 500.0 / 11_000.0)
    assert e.state_version == version + 1  # the new high-water mark, as before
