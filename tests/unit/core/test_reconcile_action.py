"""The start's choice after reconciliation: go on, adopt the venue's holdings, or block."""

import pytest

from tradeplane.core.reconcile import Holdings, LiveOrder, ReconciliationReport, reconcile
from tradeplane.core.reconcile_action import ReconcileAction, choose_action, decide

VENUE_ORDER = LiveOrder(None, "v-1", "AAA", "buy", 3.0, 3.0, "limit", 99.0, "open")


def report_of(expected: Holdings, live: Holdings) -> ReconciliationReport:
    return reconcile(expected, live, checked_at=1.0)


@pytest.mark.parametrize("fail_on_mismatch", [True, False])
def test_action_when_clean_then_none_whatever_the_setting(fail_on_mismatch: bool) -> None:
    same = Holdings({"AAA": 5.0})
    decision = decide(report_of(same, same), same, fail_on_mismatch=fail_on_mismatch)
    assert decision.action is ReconcileAction.NONE
    assert decision.adopt_positions is None and decision.external_orders == []


def test_action_when_mismatch_and_fail_on_mismatch_then_block_start_adopting_nothing() -> None:
    live = Holdings({"AAA": 7.0}, (VENUE_ORDER,))
    decision = decide(report_of(Holdings({"AAA": 5.0}), live), live, fail_on_mismatch=True)
    assert decision.action is ReconcileAction.BLOCK_START
    assert decision.adopt_positions is None and decision.external_orders == []


def test_action_when_mismatch_and_not_fail_on_mismatch_then_adopt_the_venue() -> None:
    live = Holdings({"AAA": 7.0, "BBB": -2.0}, (VENUE_ORDER,))
    report = report_of(Holdings({"AAA": 5.0}), live)
    decision = decide(report, live, fail_on_mismatch=False)
    assert decision.action is ReconcileAction.ADOPT_VENUE
    assert decision.adopt_positions == {"AAA": 7.0, "BBB": -2.0}
    [external] = decision.external_orders
    assert external["venue_order_id"] == "v-1" and external["remaining"] == 3.0


def test_action_values_are_the_wire_strings() -> None:
    assert [a.value for a in ReconcileAction] == ["none", "adopt_venue", "block_start"]
    mismatch = report_of(Holdings({}), Holdings({"AAA": 1.0}))
    assert choose_action(mismatch, fail_on_mismatch=True) == "block_start"
