import pytest

from tradeplane.core.unconfirmed import Settle, settle


@pytest.mark.parametrize("age_s", [0.0, 4.9, 60.0])
def test_order_the_venue_reports_then_found_whatever_its_age(age_s: float) -> None:
    assert settle(at_venue=True, unanswered_for_s=age_s, grace_s=5.0) is Settle.FOUND


def test_order_unknown_to_the_venue_within_the_grace_then_wait_never_close() -> None:
    assert settle(at_venue=False, unanswered_for_s=4.99, grace_s=5.0) is Settle.WAIT


@pytest.mark.parametrize("age_s", [5.0, 300.0])
def test_order_unknown_to_the_venue_after_the_grace_then_closed(age_s: float) -> None:
    assert settle(at_venue=False, unanswered_for_s=age_s, grace_s=5.0) is Settle.CLOSE


def test_not_at_restarted_final_venue_then_closed_at_once() -> None:
    action = settle(
        at_venue=False,
        unanswered_for_s=0.0,
        grace_s=5.0,
        submitted_to=7,
        answered_by=8,
        answers_final=True,
    )
    assert action is Settle.CLOSE


def test_at_restarted_final_venue_then_found() -> None:
    action = settle(
        at_venue=True,
        unanswered_for_s=0.0,
        grace_s=5.0,
        submitted_to=7,
        answered_by=8,
        answers_final=True,
    )
    assert action is Settle.FOUND


def test_not_at_same_incarnation_then_waits_grace() -> None:
    kwargs = {"submitted_to": 8, "answered_by": 8, "answers_final": True}
    assert settle(at_venue=False, unanswered_for_s=4.9, grace_s=5.0, **kwargs) is Settle.WAIT
    assert settle(at_venue=False, unanswered_for_s=5.0, grace_s=5.0, **kwargs) is Settle.CLOSE


def test_not_at_older_incarnation_than_submitted_to_then_waits_grace() -> None:
    action = settle(
        at_venue=False,
        unanswered_for_s=0.0,
        grace_s=5.0,
        submitted_to=8,
        answered_by=7,
        answers_final=True,
    )
    assert action is Settle.WAIT


def test_not_at_ib_after_restart_then_waits_grace() -> None:
    # IB's answers are not final: an order can still show up at TWS after it says "unknown".
    action = settle(
        at_venue=False,
        unanswered_for_s=0.0,
        grace_s=5.0,
        submitted_to=7,
        answered_by=8,
        answers_final=False,
    )
    assert action is Settle.WAIT


@pytest.mark.parametrize(("submitted_to", "answered_by"), [(None, 8), (7, None), (None, None)])
def test_not_at_final_venue_with_an_incarnation_unknown_then_waits_grace(
    submitted_to: int | None, answered_by: int | None
) -> None:
    action = settle(
        at_venue=False,
        unanswered_for_s=0.0,
        grace_s=5.0,
        submitted_to=submitted_to,
        answered_by=answered_by,
        answers_final=True,
    )
    assert action is Settle.WAIT
