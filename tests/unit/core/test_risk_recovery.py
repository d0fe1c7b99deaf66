"""A restarted risk: taking back its state from the journal's record, and deciding the intents
its predecessor left undecided (``core.risk_recovery``)."""

import itertools
from typing import Any

import pytest

from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import OperationalError
from tradeplane.core.model import Intent, OrderType, Side
from tradeplane.core.risk import DenyReason, RiskEngine, RiskLimits, TradingState
from tradeplane.core.risk_recovery import (
    ORPHAN_FUTURE_TOLERANCE_S,
    ORPHAN_LOOKBACK_S,
    CheckOrphan,
    ExpireOrphan,
    RiskJournal,
    RiskRecovery,
    open_working,
)
from tradeplane.core.risk_types import KillSwitchPolicy

MAX_AGE_S = 30.0
_ids = itertools.count(1)


def recovery(clock: ManualClock, policy: KillSwitchPolicy | None = None) -> RiskRecovery:
    engine = RiskEngine(
        RiskLimits(), clock=clock, starting_equity=10_000.0, policy=policy or KillSwitchPolicy()
    )
    return RiskRecovery(engine, clock, recovered_intent_max_age_s=MAX_AGE_S)


def intent(ts: float, trigger: str = "bar") -> Intent:
    n = next(_ids)
    return Intent(
        f"i{n}", f"k{n}", "d", "s", "AAA", Side.BUY, 1.0, OrderType.MARKET, None, ts, trigger
    )


def order_row(coid: str, status: str, side: str, qty: float, filled: float, ts: float) -> dict:
    return {
        "client_order_id": coid,
        "status": status,
        "symbol": "AAA",
        "side": side,
        "quantity": qty,
        "filled_quantity": filled,
        "created_ts": ts,
    }


def position_row(qty: float, avg: float) -> dict[str, Any]:
    return {"quantity": qty, "avg_price": avg, "realized_pnl": 0.0, "fees": 0.0}


# -- orphan intents -------------------------------------------------------------------------


def test_orphan_when_younger_than_max_age_then_checked_as_usual() -> None:
    clock = ManualClock()
    r = recovery(clock)
    orphan = intent(clock.now() - MAX_AGE_S)
    assert r.decide_orphan(orphan, set()) == CheckOrphan(orphan)


def test_orphan_when_older_than_max_age_then_denied_intent_expired() -> None:
    clock = ManualClock()
    r = recovery(clock)
    orphan = intent(clock.now() - MAX_AGE_S - 0.5)
    decision = r.decide_orphan(orphan, set())
    assert isinstance(decision, ExpireOrphan)
    assert decision.denial.intent == orphan
    assert decision.denial.reason == DenyReason.INTENT_EXPIRED
    assert decision.denial.figures == {"age_s": MAX_AGE_S + 0.5, "max_age_s": MAX_AGE_S}
    assert r.engine.denied == {DenyReason.INTENT_EXPIRED.value: 1}


def test_orphan_age_is_judged_by_the_injected_clock_when_decided() -> None:
    clock = ManualClock()
    r = recovery(clock)
    orphan = intent(clock.now())
    assert isinstance(r.decide_orphan(orphan, set()), CheckOrphan)
    clock.advance(MAX_AGE_S + 1)
    assert isinstance(r.decide_orphan(orphan, set()), ExpireOrphan)


def test_orphan_dated_an_hour_in_the_future_after_a_wall_step_back_then_expired_not_fresh() -> None:
    clock = ManualClock()
    r = recovery(clock)
    orphan = intent(clock.now())
    clock.step_wall(-3600.0)  # the restart finds it "-3600 s old": no age to trust
    decision = r.decide_orphan(orphan, set())
    assert isinstance(decision, ExpireOrphan)
    assert "in the future" in decision.denial.message


def test_orphan_dated_a_little_in_the_future_by_clock_skew_then_checked_as_usual() -> None:
    clock = ManualClock()
    r = recovery(clock)
    orphan = intent(clock.now() + ORPHAN_FUTURE_TOLERANCE_S)
    assert isinstance(r.decide_orphan(orphan, set()), CheckOrphan)


def test_orphan_flatten_when_recent_then_expired_never_resent() -> None:
    clock = ManualClock()
    r = recovery(clock)
    decision = r.decide_orphan(intent(clock.now(), trigger="flatten:kill-1"), set())
    assert isinstance(decision, ExpireOrphan)
    assert decision.denial.reason == DenyReason.INTENT_EXPIRED


def test_orphan_when_already_decided_or_unreadable_then_nothing_to_do() -> None:
    clock = ManualClock()
    r = recovery(clock)
    orphan = intent(clock.now() - 10 * MAX_AGE_S)
    assert r.decide_orphan(orphan, {orphan.intent_id}) is None
    assert r.decide_orphan(None, set()) is None
    assert r.engine.denied == {}


def test_orphans_are_looked_for_two_days_back() -> None:
    clock = ManualClock()
    assert (
        recovery(clock).orphans_since() == clock.now() - ORPHAN_LOOKBACK_S == clock.now() - 172_800
    )


# -- restore --------------------------------------------------------------------------------


def test_restore_takes_positions_working_orders_and_decided_intents_from_the_journal() -> None:
    clock = ManualClock()
    r = recovery(clock)
    now = clock.now()
    journal = RiskJournal(
        positions={("s", "AAA"): position_row(10.0, 100.0), ("t", "AAA"): position_row(-4.0, 90.0)},
        orders=[
            order_row("open", "accepted", "sell", 5.0, 2.0, now - 10),
            order_row("done", "filled", "buy", 10.0, 10.0, now - 20),
        ],
        intents=[{"intent_id": "a", "decision": "approved"}, {"intent_id": "b", "decision": None}],
    )
    restored = r.restore(journal, run_id="run-1", where="here")
    assert r.engine.position("AAA") == 6.0
    assert r.engine.working_quantity("AAA") == -3.0
    assert restored.decided_intent_ids == ["a"]
    assert restored.events == []
    assert r.engine.summary()["orders_today"] == 2


def test_open_working_counts_only_open_orders_by_remaining_signed_quantity() -> None:
    rows = [
        order_row("a", "accepted", "buy", 5.0, 1.0, 0.0),
        order_row("b", "unknown", "sell", 2.0, 0.0, 0.0),
        order_row("c", "cancelled", "sell", 2.0, 0.0, 0.0),
    ]
    rows[1]["filled_quantity"] = None
    assert open_working(rows) == {"a": ("AAA", 4.0), "b": ("AAA", -2.0)}


def test_restore_when_new_run_then_reconciling_until_reconciled() -> None:
    r = recovery(ManualClock())
    r.restore(
        RiskJournal(positions={}, orders=[], last_reconciliation={"run_id": "old"}),
        run_id="new",
        where="x",
    )
    assert r.engine.reconciling


def test_restore_when_restart_inside_a_reconciled_run_then_trades_at_once() -> None:
    r = recovery(ManualClock())
    r.restore(
        RiskJournal(positions={}, orders=[], last_reconciliation={"run_id": "run"}),
        run_id="run",
        where="x",
    )
    assert not r.engine.reconciling


def test_restore_when_journal_kill_switch_active_then_trading_reducing_with_its_reason() -> None:
    r = recovery(ManualClock())
    kill = {"active": True, "reason": "before the crash", "source": "cli"}
    r.restore(RiskJournal(positions={}, orders=[], kill_switch=kill), run_id="r", where="x")
    assert r.engine.trading_state is TradingState.REDUCING
    assert r.engine.summary()["kill_switch"]["reason"] == "before the crash"


def test_restore_when_kill_switch_policy_halts_then_halted() -> None:
    r = recovery(ManualClock(), KillSwitchPolicy(allow_reducing=False))
    kill = {"active": True, "reason": "loss"}
    r.restore(RiskJournal(positions={}, orders=[], kill_switch=kill), run_id="r", where="x")
    assert r.engine.trading_state is TradingState.HALTED


def test_restore_when_journal_kill_switch_cleared_then_it_wins_over_the_saved_state() -> None:
    clock = ManualClock()
    before = recovery(clock)
    before.engine.activate_kill_switch("stop")
    saved = before.engine.export_state()
    r = recovery(clock)
    journal = RiskJournal(
        positions={}, orders=[], risk_state=saved, kill_switch={"active": False, "reason": "ok"}
    )
    r.restore(journal, run_id="r", where="x")
    assert r.engine.trading_state is TradingState.ACTIVE
    assert not r.engine.kill_switch_active


def test_restore_when_saved_risk_state_unusable_then_start_refused_naming_where() -> None:
    r = recovery(ManualClock())
    journal = RiskJournal(positions={}, orders=[], risk_state={"version": "nonsense"})
    with pytest.raises(OperationalError, match=r"risk state in the/journal\.db is unusable"):
        r.restore(journal, run_id="r", where="the/journal.db")
