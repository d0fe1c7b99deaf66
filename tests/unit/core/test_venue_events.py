"""Checks on venue messages at the broker's edge: every broken shape named, real events pass."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from tradeplane.core.clock import ManualClock
from tradeplane.core.model import Bar, OrderType, Side
from tradeplane.core.venue_events import (
    MAX_REPR_CHARS,
    VENUE_EVENT_KINDS,
    check_venue_event,
    describe_raw,
)
from tradeplane.venues.sim.matching import PaperMatchingEngine
from tradeplane.venues.sim.model import VenueEvent, VenueFill, VenueOrderRequest

FILL = VenueFill(
    "SIM-000001-1", "c-1", "SIM-000001", "ACME", Side.BUY, 2.0, 100.0, 0.1, 5.0, "taker"
)
FILLED = VenueEvent(3, "order_filled", "c-1", "SIM-000001", 5.0, None, FILL)


def ev(**changes: Any) -> VenueEvent:
    """``FILLED`` with ``changes``, of any type: a venue can send anything."""
    return replace(FILLED, **changes)


def _real_events() -> list[VenueEvent]:
    """One of each kind the paper engine emits."""
    clock = ManualClock()
    eng = PaperMatchingEngine(clock=clock)
    eng.submit(VenueOrderRequest("m", "ACME", Side.BUY, 1.0, OrderType.MARKET))
    eng.submit(VenueOrderRequest("bad", "ACME", Side.BUY, -1.0, OrderType.MARKET))
    eng.submit(VenueOrderRequest("rest", "ACME", Side.SELL, 1.0, OrderType.LIMIT, 500.0))
    eng.reject(VenueOrderRequest("forced", "ACME", Side.BUY, 1.0, OrderType.MARKET), "X")
    clock.advance(60)
    eng.on_bar(Bar("ACME", datetime(2024, 1, 1, tzinfo=UTC), 100.0, 101.0, 99.0, 100.0, 1e3))
    eng.cancel("rest")
    eng.cancel("ghost")
    return eng.events_since(0)


def test_every_event_from_the_real_matching_engine_passes() -> None:
    events = _real_events()
    assert {e.kind for e in events} == VENUE_EVENT_KINDS - {"order_expired"}
    for event in events:
        assert check_venue_event(event) is None, event


def test_expired_event_without_venue_order_id_passes() -> None:
    assert check_venue_event(VenueEvent(0, "order_expired", "c-1", None, 1.0)) is None


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"seq": 3, "kind": "order_filled"}, "not a venue event: dict lacks"),
        (None, "not a venue event: NoneType"),
        (ev(seq=-1), "seq must be an integer >= 0"),
        (ev(seq=3.0), "seq must be an integer"),
        (ev(seq=True), "seq must be an integer"),
        (ev(kind="order_teleported"), "unknown event kind 'order_teleported'"),
        (ev(kind=None), "unknown event kind None"),
        (ev(client_order_id=""), "client_order_id must be a non-empty string"),
        (ev(client_order_id=7), "client_order_id must be a non-empty string"),
        (ev(venue_order_id=12), "venue_order_id must be a string or None"),
        (ev(ts=math.nan), "ts must be a finite number, got nan"),
        (ev(ts="now"), "ts must be a finite number"),
        (ev(fill=None), "order_filled without a fill"),
        (ev(fill={"price": 1.0}), "fill dict lacks"),
        (ev(fill=replace(FILL, price=math.nan)), "price must be finite and > 0"),
        (ev(fill=replace(FILL, price=math.inf)), "price must be finite and > 0"),
        (ev(fill=replace(FILL, price=-1.0)), "price must be finite and > 0"),
        (ev(fill=replace(FILL, price=0.0)), "price must be finite and > 0"),
        (ev(fill=replace(FILL, quantity=0.0)), "quantity must be finite and > 0"),
        (ev(fill=replace(FILL, quantity=math.nan)), "quantity must be finite"),
        (ev(fill=replace(FILL, fee=-0.01)), "fee must be finite and >= 0"),
        (ev(fill=replace(FILL, fee=math.nan)), "fee must be finite and >= 0"),
        (ev(fill=replace(FILL, fill_id="")), "fill_id must be a non-empty string"),
        (ev(fill=replace(FILL, client_order_id="c-2")), "is for order 'c-2'"),
    ],
)
def test_malformed_message_then_rejected_with_its_reason(message: Any, reason: str) -> None:
    got = check_venue_event(message)
    assert got is not None and reason in got, got


def test_good_fill_event_passes_and_a_fee_of_zero_is_fine() -> None:
    assert check_venue_event(FILLED) is None
    assert check_venue_event(replace(FILLED, fill=replace(FILL, fee=0.0))) is None


def test_duck_typed_event_from_another_adapter_passes() -> None:
    class Other:
        seq, kind, client_order_id, venue_order_id, ts, fill = (
            1,
            "order_accepted",
            "c",
            "V",
            1.0,
            None,
        )

    assert check_venue_event(Other()) is None


def test_describe_raw_is_json_safe_and_keeps_the_identifying_fields() -> None:
    bad = replace(FILLED, fill=replace(FILL, price=math.nan))
    described = describe_raw(bad)
    assert json.loads(json.dumps(described, allow_nan=False)) == described
    assert described["type"] == "VenueEvent"
    assert (described["seq"], described["kind"], described["client_order_id"]) == (
        3,
        "order_filled",
        "c-1",
    )
    assert "nan" in described["repr"]


def test_describe_raw_of_a_dict_reads_its_keys() -> None:
    described = describe_raw({"seq": 4, "kind": "order_filled", "client_order_id": "c-9"})
    assert (described["type"], described["seq"], described["client_order_id"]) == ("dict", 4, "c-9")


def test_describe_raw_of_a_huge_message_is_bounded() -> None:
    described = describe_raw({"seq": 1, "kind": "x" * 50_000, "blob": list(range(100_000))})
    assert len(described["repr"]) <= MAX_REPR_CHARS
    assert len(json.dumps(described)) < 2 * MAX_REPR_CHARS


def test_describe_raw_of_an_object_whose_repr_raises_still_describes_it() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

        @property
        def seq(self) -> int:
            raise RuntimeError("no")

    described = describe_raw(Hostile())
    assert described["type"] == "Hostile" and "repr failed" in described["repr"]
    assert "seq" not in described
