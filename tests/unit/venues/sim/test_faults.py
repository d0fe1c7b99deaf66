"""The fault book, schedule and specs: pure, on a manual clock."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tradeplane.config.faults import (
    FEED_FAULTS,
    FaultKind,
    FaultSchedule,
    FaultSpec,
    fault_target,
)
from tradeplane.core.clock import ManualClock
from tradeplane.core.venue_events import check_venue_event
from tradeplane.venues.sim.faults import (
    MALFORMED_SHAPES,
    FaultBook,
    malformed_message,
)
from tradeplane.venues.sim.model import VenueEvent


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# ------------------------------------------------------------------------------------- spec


def test_spec_defaults_are_immediate_until_cleared_always_two_second_delay() -> None:
    spec = FaultSpec(kind=FaultKind.DELAY_ACKS)
    assert (spec.at_s, spec.duration_s, spec.delay_s, spec.probability) == (0.0, None, 2.0, 1.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at_s", -1.0),
        ("duration_s", 0.0),
        ("duration_s", float("inf")),
        ("delay_s", 0.0),
        ("delay_s", float("nan")),
        ("probability", 0.0),
        ("probability", 1.5),
    ],
)
def test_bad_spec_value_then_error_names_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        FaultSpec(kind=FaultKind.SILENT, **{field: value})


def test_unknown_kind_or_field_then_error_names_it() -> None:
    with pytest.raises(ValidationError, match="kind"):
        FaultSpec(kind="meteor_strike")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="delay_ms"):
        FaultSpec(kind=FaultKind.SILENT, delay_ms=5)  # type: ignore[call-arg]


def test_spec_is_frozen() -> None:
    spec = FaultSpec(kind=FaultKind.SILENT)
    with pytest.raises(ValidationError):
        spec.at_s = 3.0


def test_silence_is_the_feeds_fault_and_every_other_kind_the_venues() -> None:
    assert {FaultKind.SILENT} == FEED_FAULTS
    assert fault_target("silent") == "feed"
    assert {fault_target(k) for k in FaultKind if k is not FaultKind.SILENT} == {"venue"}


# ------------------------------------------------------------------------------------- book


def test_inject_then_active_until_duration_passes(clock: ManualClock) -> None:
    book = FaultBook(clock)
    described = book.inject("drop_connection", duration_s=10.0)
    assert described["kind"] == "drop_connection" and described["remaining_s"] == 10.0
    clock.advance(9.9)
    assert book.active(FaultKind.DROP_CONNECTION) is not None
    assert book.hit("drop_connection")
    clock.advance(0.1)
    assert book.active("drop_connection") is None
    assert not book.hit("drop_connection")
    assert book.describe() == []


def test_inject_without_duration_then_active_until_cleared(clock: ManualClock) -> None:
    book = FaultBook(clock)
    book.inject("silent")
    book.inject("malformed", probability=0.5)
    clock.advance(1e6)
    assert book.active("silent") is not None
    assert book.clear("silent") == 1
    assert book.clear("silent") == 0
    assert book.active("silent") is None and book.active("malformed") is not None
    assert book.clear() == 1
    assert not book


def test_clear_all_then_expired_faults_not_counted(clock: ManualClock) -> None:
    book = FaultBook(clock)
    book.inject("silent", duration_s=1.0)
    book.inject("reject_orders")
    clock.advance(2.0)
    assert book.clear() == 1


def test_reinject_same_kind_then_replaces_settings_and_restarts_expiry(clock: ManualClock) -> None:
    book = FaultBook(clock)
    book.inject("delay_acks", duration_s=5.0, delay_s=1.0)
    clock.advance(4.0)
    book.inject("delay_acks", duration_s=5.0, delay_s=3.0)
    clock.advance(4.0)
    spec = book.active("delay_acks")
    assert spec is not None and spec.delay_s == 3.0
    assert [d["kind"] for d in book.describe()] == ["delay_acks"]


def test_inject_with_bad_param_then_validation_error_and_nothing_active(
    clock: ManualClock,
) -> None:
    book = FaultBook(clock)
    with pytest.raises(ValidationError, match="probability"):
        book.inject("malformed", probability=2.0)
    with pytest.raises(ValueError):
        book.inject("meteor_strike")
    assert not book


def test_book_for_one_actor_then_refuses_the_other_actors_kinds(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="carried out by the venue, not the feed"):
        FaultBook(clock, target="feed").inject("drop_connection")
    with pytest.raises(ValueError, match="carried out by the feed, not the venue"):
        FaultBook(clock, target="venue").inject("silent")


def test_hits_counted_per_kind_in_describe_and_counts_survive_clear(clock: ManualClock) -> None:
    book = FaultBook(clock)
    book.inject("duplicate_fills", duration_s=30.0)
    book.inject("delay_acks", delay_s=0.5)
    for _ in range(3):
        assert book.hit("duplicate_fills")
    assert book.hit("delay_acks")
    assert not book.hit("reject_orders")
    clock.advance(10.0)
    described = {d["kind"]: d for d in book.describe()}
    assert described["duplicate_fills"]["hits"] == 3
    assert described["duplicate_fills"]["remaining_s"] == pytest.approx(20.0)
    assert described["delay_acks"] == {
        "kind": "delay_acks",
        "target": "venue",
        "remaining_s": None,
        "hits": 1,
        "probability": 1.0,
        "delay_s": 0.5,
    }
    json.dumps(book.describe())
    book.clear()
    assert book.counts == {"duplicate_fills": 3, "delay_acks": 1}


def _draws(seed: int, n: int = 200) -> list[bool]:
    book = FaultBook(ManualClock(), seed=seed)
    book.inject("reject_orders", probability=0.3)
    return [book.hit("reject_orders") for _ in range(n)]


def test_probability_with_same_seed_then_same_decisions() -> None:
    first = _draws(seed=11)
    assert first == _draws(seed=11)
    assert first != _draws(seed=12)
    assert 30 <= sum(first) <= 90  # about 30% of 200


def test_probability_draws_of_one_kind_do_not_shift_another(clock: ManualClock) -> None:
    alone = _draws(seed=5)
    book = FaultBook(clock, seed=5)
    book.inject("reject_orders", probability=0.3)
    book.inject("malformed", probability=0.5)
    mixed = []
    for _ in range(200):
        book.hit("malformed")
        mixed.append(book.hit("reject_orders"))
    assert mixed == alone


# --------------------------------------------------------------------------------- schedule


def test_schedule_hands_out_each_spec_once_when_its_time_has_come() -> None:
    late = FaultSpec(kind=FaultKind.SILENT, at_s=30.0, duration_s=5.0)
    early = FaultSpec(kind=FaultKind.DROP_CONNECTION, at_s=10.0)
    now = FaultSpec(kind=FaultKind.MALFORMED)
    schedule = FaultSchedule([late, early, now])
    assert schedule.due(0.0) == [now]
    assert schedule.due(9.99) == []
    assert schedule.kinds_for("feed") == {FaultKind.SILENT}
    assert schedule.due(45.0) == [early, late]
    assert schedule.due(1e9) == []
    assert schedule.pending == ()


def test_schedule_two_specs_at_same_time_then_both_fire() -> None:
    a = FaultSpec(kind=FaultKind.REJECT_ORDERS, at_s=5.0)
    b = FaultSpec(kind=FaultKind.DELAY_ACKS, at_s=5.0)
    schedule = FaultSchedule((a, b))
    assert schedule.due(5.0) == [a, b]
    assert schedule.due(5.0) == []


def test_scheduled_spec_applied_to_book_then_expires_after_its_duration(
    clock: ManualClock,
) -> None:
    book = FaultBook(clock)
    for spec in FaultSchedule([FaultSpec(kind="silent", at_s=3.0, duration_s=2.0)]).due(3.0):  # type: ignore[arg-type]
        book.apply(spec)
    assert book.active("silent") is not None
    clock.advance(2.0)
    assert book.active("silent") is None


# -------------------------------------------------------------------------------- malformed


def test_every_malformed_shape_is_rejected_by_the_venue_event_check() -> None:
    template = VenueEvent(7, "order_accepted", "c-1", "SIM-000001", 1.0)
    reasons = set()
    for shape in range(len(MALFORMED_SHAPES)):
        message = malformed_message(shape, template, seq=6)
        reason = check_venue_event(message)
        assert reason is not None, MALFORMED_SHAPES[shape]
        reasons.add(reason)
        seq = message["seq"] if isinstance(message, dict) else getattr(message, "seq", None)
        assert seq == 6, "the cursor must never move past the batch's first real event"
    assert len(reasons) == len(MALFORMED_SHAPES)


def test_malformed_shape_index_wraps_around() -> None:
    template = VenueEvent(1, "order_accepted", "c-1", "SIM-000001", 1.0)
    assert malformed_message(0, template, 0) == malformed_message(
        len(MALFORMED_SHAPES), template, 0
    )


# ----------------------------------------------------------------------------------- config


def _config(faults: list[dict[str, object]]) -> dict[str, object]:
    return {
        "deployment": {"name": "t"},
        "venue": {"sim": {"faults": faults}},
        "strategies": [{"name": "a", "path": "x.py", "class_name": "A"}],
    }


def test_config_without_faults_then_none_scheduled() -> None:
    from tradeplane.config.models import SimVenueConfig

    assert SimVenueConfig().faults == ()


def test_config_fault_schedule_loads_as_specs() -> None:
    from tradeplane.config.loading import parse_config

    cfg = parse_config(_config([{"kind": "silent", "at_s": 30, "duration_s": 60}]))
    assert cfg.venue.sim.faults == (FaultSpec(kind=FaultKind.SILENT, at_s=30.0, duration_s=60.0),)


def test_config_bad_fault_then_error_names_the_dotted_field() -> None:
    from tradeplane.config.loading import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"venue\.sim\.faults\.0\.probability"):
        parse_config(_config([{"kind": "malformed", "probability": 0}]))
