import pytest

from tradeplane.core.errors import IllegalTransition
from tradeplane.core.health import (
    Health,
    HealthFacts,
    HealthReading,
    HealthTracker,
    Phase,
    derive_health,
)


def facts(**kw: object) -> HealthFacts:
    base: dict[str, object] = dict(
        phase=Phase.RUNNING,
        now=1000.0,
        feed_started=True,
        last_bar_recv_ts=999.0,
        feed_started_ts=900.0,
        feed_silence_s=30.0,
    )
    base.update(kw)
    return HealthFacts(**base)  # type: ignore[arg-type]


def test_bars_flowing_and_all_up_then_ok() -> None:
    assert derive_health(facts()).health is Health.OK


def test_last_bar_older_than_silence_threshold_then_feed_silent() -> None:
    r = derive_health(facts(last_bar_recv_ts=960.0))
    assert r.health is Health.FEED_SILENT and r.last_bar_age_s == 40.0


def test_feed_started_no_bar_yet_then_waiting_then_silent_after_threshold() -> None:
    assert derive_health(facts(last_bar_recv_ts=None, feed_started_ts=990.0)).health is (
        Health.WAITING_FOR_DATA
    )
    assert derive_health(facts(last_bar_recv_ts=None, feed_started_ts=900.0)).health is (
        Health.FEED_SILENT
    )


def test_child_down_then_recovering_even_if_bars_flow() -> None:
    r = derive_health(facts(children_down=("broker",)))
    assert r.health is Health.RECOVERING and "broker" in r.reason


def test_broker_disconnected_then_broker_disconnected() -> None:
    assert derive_health(facts(broker_connected=False)).health is Health.BROKER_DISCONNECTED


def test_broker_reconnected_but_resyncing_then_recovering() -> None:
    r = derive_health(facts(broker_resyncing=True))
    assert r.health is Health.RECOVERING and "resyncing" in r.reason


def test_strategy_suspended_then_still_ok_and_reason_names_it() -> None:
    r = derive_health(facts(suspended=("strategy/bad",)))
    assert r.health is Health.OK and "strategy/bad" in r.reason


def test_drift_alert_then_health_stays_ok_and_reason_names_it() -> None:
    r = derive_health(facts(drift_alerts=("s1 fill_slippage_bps",)))
    assert r.health is Health.OK
    assert r.reason == "bars flowing, all actors up; drift alert: s1 fill_slippage_bps"


def test_drift_alert_while_feed_silent_then_silence_is_what_health_says() -> None:
    r = derive_health(facts(drift_alerts=("s1 x",), last_bar_recv_ts=1.0))
    assert r.health is Health.FEED_SILENT and "drift" not in r.reason


def test_market_closed_then_idle_not_silent() -> None:
    assert derive_health(facts(market_open=False, last_bar_recv_ts=0.0)).health is (
        Health.IDLE_MARKET_CLOSED
    )


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (Phase.STARTING, Health.STARTING),
        (Phase.READY, Health.READY),
        (Phase.STOPPED, Health.STOPPED),
        (Phase.FAILED, Health.FAILED),
    ],
)
def test_phase_decides_health_outside_running(phase: Phase, expected: Health) -> None:
    assert derive_health(facts(phase=phase)).health is expected


def test_tracker_records_changes_only() -> None:
    t = HealthTracker()
    assert t.observe(HealthReading(Health.READY, "r"), 1.0) is not None
    assert t.observe(HealthReading(Health.READY, "r"), 2.0) is None
    assert t.current is Health.READY and len(t.history) == 1


def test_stopped_then_ok_is_an_illegal_transition() -> None:
    t = HealthTracker()
    t.observe(HealthReading(Health.STOPPED, "s"), 1.0)
    with pytest.raises(IllegalTransition):
        t.observe(HealthReading(Health.OK, "o"), 2.0)


def test_feed_silence_judged_by_the_monotonic_age_not_by_a_wall_timestamp_from_the_future() -> None:
    """The feed's node clock an hour ahead (or this one stepped back): its timestamp reads as
    fresh, the age it measured on its monotonic clock says silent."""
    r = derive_health(facts(last_bar_recv_ts=1000.0 + 3600, last_bar_age_s=40.0))
    assert r.health is Health.FEED_SILENT and r.last_bar_age_s == 40.0


def test_feed_flowing_by_the_monotonic_age_then_ok_whatever_the_wall_timestamp_says() -> None:
    r = derive_health(facts(last_bar_recv_ts=1000.0 - 3600, last_bar_age_s=1.0))
    assert r.health is Health.OK and r.last_bar_age_s == 1.0


def test_no_bar_yet_then_silence_counted_from_the_monotonic_streaming_time() -> None:
    no_bar = {"last_bar_recv_ts": None, "feed_started_ts": 1000.0 + 3600}
    assert derive_health(facts(**no_bar, streaming_for_s=40.0)).health is Health.FEED_SILENT
    no_bar["feed_started_ts"] = 1000.0 - 3600
    assert derive_health(facts(**no_bar, streaming_for_s=1.0)).health is Health.WAITING_FOR_DATA


def test_wall_age_only_and_negative_then_read_as_just_now_never_below_zero() -> None:
    r = derive_health(facts(last_bar_recv_ts=1000.0 + 3600))
    assert r.last_bar_age_s == 0.0
