from tradeplane.core.lease import SupervisionLease


def test_lease_renewed_in_time_then_never_lapsed() -> None:
    lease = SupervisionLease(lapse_s=5.0, renewed_ts=0.0)
    for t in (1.0, 4.9, 9.0):
        assert not lease.lapsed(t)
        assert lease.renew(t) is None
    assert lease.lapses == 0


def test_lease_without_a_call_for_lapse_s_then_lapsed_once_and_back_on_the_next_call() -> None:
    lease = SupervisionLease(lapse_s=5.0, renewed_ts=0.0)
    assert lease.check(5.0) and not lease.check(6.0)  # said once
    assert lease.lapsed(7.0) and lease.silent_s(7.0) == 7.0
    assert lease.renew(8.0) == 8.0
    assert not lease.lapsed(8.5) and lease.lapses == 1
