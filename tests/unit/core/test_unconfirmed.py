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
