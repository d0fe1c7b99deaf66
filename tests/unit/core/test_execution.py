from dataclasses import dataclass
from typing import Any

import pytest

from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import InvariantError
from tradeplane.core.execution import ExecutionCore, order_event_data
from tradeplane.core.model import Intent, OrderType, Side, SubmitOrder
from tradeplane.core.orders import OrderStatus as S


@dataclass(frozen=True)
class VFill:
    fill_id: str
    venue_order_id: str
    quantity: float
    price: float
    fee: float
    ts: float
    liquidity: str = "taker"


@dataclass(frozen=True)
class VEvent:
    seq: int
    kind: str
    client_order_id: str
    venue_order_id: str | None = "V1"
    ts: float = 1.0
    reason: str | None = None
    fill: Any = None


def submit(core: ExecutionCore, coid: str = "tpa", qty: float = 10.0) -> Any:
    i = Intent(coid[2:], coid, "d", "s", "AAA", Side.BUY, qty, OrderType.MARKET, None, 0.0, "t")
    return core.begin_submit(SubmitOrder(i, 0.0, 100.0))


def test_first_submit_then_submitting_event_second_then_blocked() -> None:
    core = ExecutionCore(ManualClock())
    ev = submit(core)
    assert ev.kind == "order_submitting" and ev.order.status is S.PENDING_SUBMIT
    assert submit(core) is None and core.duplicates_blocked == 1


def test_submit_blocked_even_after_order_is_terminal() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    core.close_unconfirmed("tpa", "NOT_RECEIVED_BY_VENUE")
    assert submit(core) is None


def test_venue_accepts_before_submit_returns_then_submitted_then_accepted() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    kinds = [e.kind for e in core.apply_venue_event(VEvent(1, "order_accepted", "tpa"))]
    assert kinds == ["order_submitted", "order_accepted"]
    assert core.submitted("tpa") is None  # the late return changes nothing


def test_fill_events_then_partial_then_filled_with_fill_record() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    core.submitted("tpa")
    core.apply_venue_event(VEvent(1, "order_accepted", "tpa"))
    (e1,) = core.apply_venue_event(
        VEvent(2, "order_filled", "tpa", fill=VFill("V1-1", "V1", 4, 10, 0.1, 2))
    )
    assert e1.order.status is S.PARTIALLY_FILLED and e1.fill and e1.fill.intent_id == "a"
    (e2,) = core.apply_venue_event(
        VEvent(3, "order_filled", "tpa", fill=VFill("V1-2", "V1", 6, 11, 0.1, 3))
    )
    assert e2.order.status is S.FILLED
    data = order_event_data(e2)
    assert data["status"] == "filled" and data["fill"]["fill_id"] == "V1-2"


def test_duplicate_fill_then_marked_duplicate_and_not_applied() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    f = VFill("V1-1", "V1", 4, 10, 0.1, 2)
    core.apply_venue_event(VEvent(1, "order_filled", "tpa", fill=f))
    (dup,) = core.apply_venue_event(VEvent(2, "order_filled", "tpa", fill=f))
    assert dup.kind == "order_fill_duplicate" and dup.order.filled_quantity == 4


def test_replayed_accept_after_fill_then_ignored() -> None:
    core = ExecutionCore(ManualClock())
    submit(core, qty=4)
    core.apply_venue_event(VEvent(1, "order_filled", "tpa", fill=VFill("V1-1", "V1", 4, 10, 0, 2)))
    assert core.apply_venue_event(VEvent(2, "order_accepted", "tpa")) == []
    assert core.orders.get("tpa").status is S.FILLED  # type: ignore[union-attr]


def test_fill_on_cancelled_order_then_invariant_error() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    core.apply_venue_event(VEvent(1, "order_cancelled", "tpa"))
    with pytest.raises(InvariantError, match="already cancelled"):
        core.apply_venue_event(VEvent(2, "order_filled", "tpa", fill=VFill("x", "V1", 1, 1, 0, 2)))


def test_timeout_then_unknown_then_venue_resolves() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    assert core.unknown("tpa", "timeout").order.status is S.UNKNOWN  # type: ignore[union-attr]
    kinds = [e.kind for e in core.apply_venue_event(VEvent(1, "order_accepted", "tpa"))]
    assert kinds == ["order_submitted", "order_accepted"]


def test_cancel_while_submitting_then_deferred_until_submitted() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    assert core.request_cancel("tpa") == (None, False)
    assert not core.take_deferred_cancel("tpa")
    core.submitted("tpa")
    assert core.take_deferred_cancel("tpa")


def test_cancel_rejected_then_back_to_working() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    core.apply_venue_event(VEvent(1, "order_accepted", "tpa"))
    ev, send = core.request_cancel("tpa")
    assert send and ev and ev.order.status is S.PENDING_CANCEL
    (back,) = core.apply_venue_event(VEvent(2, "cancel_rejected", "tpa", reason="TOO_LATE"))
    assert back.order.status is S.ACCEPTED


def test_venue_rejects_an_order_whose_cancel_is_pending_then_rejected_not_lost() -> None:
    """Seen in the chaos suite under load: the cancel was asked between the submit and the
    venue's refusal; the refusal must close the order (the venue's cancel-rejected that follows
    changes nothing)."""
    core = ExecutionCore(ManualClock())
    submit(core)
    core.submitted("tpa")
    ev, send = core.request_cancel("tpa")
    assert send and ev and ev.order.status is S.PENDING_CANCEL
    (rejected,) = core.apply_venue_event(VEvent(1, "order_rejected", "tpa", reason="NO_MARGIN"))
    assert rejected.order.status is S.REJECTED and rejected.reason == "NO_MARGIN"
    after = core.apply_venue_event(VEvent(2, "cancel_rejected", "tpa", reason="ALREADY_REJECTED"))
    assert after == [] and core.orders.get("tpa").status is S.REJECTED


def test_event_for_unknown_order_then_counted_unmatched() -> None:
    core = ExecutionCore(ManualClock())
    assert core.apply_venue_event(VEvent(1, "order_accepted", "nope")) == []
    assert core.unmatched_events == 1


def test_submit_refused_by_the_journal_then_forgotten_and_a_later_approval_may_go() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    core.forget_unsent("tpa")
    assert core.orders.get("tpa") is None
    assert submit(core).kind == "order_submitting"


def test_forget_unsent_when_the_order_left_already_then_kept() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    core.submitted("tpa")
    core.forget_unsent("tpa")
    assert core.orders.get("tpa") is not None


def test_submit_call_lost_after_the_venue_accepted_it_then_the_order_stays_accepted() -> None:
    core = ExecutionCore(ManualClock())
    submit(core)
    kinds = [e.kind for e in core.apply_venue_event(VEvent(1, "order_accepted", "tpa"))]
    assert kinds == ["order_submitted", "order_accepted"]
    assert core.unknown("tpa", "SUBMIT_UNCONFIRMED: venue died") is None
    assert core.orders.get("tpa").status is S.ACCEPTED  # type: ignore[union-attr]
