"""The broker's resolver against a fake venue (no Ray): an order left in submitting is settled by
asking the venue, never by guessing."""

from __future__ import annotations

import asyncio
from typing import Any

from tradeplane.actors.broker_resolution import Resolver
from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import TransientError
from tradeplane.core.execution import ExecutionCore, OrderEvent
from tradeplane.core.model import Intent, OrderType, Side, SubmitOrder
from tradeplane.core.orders import OrderStatus
from tradeplane.venues.base import OrderLookup


class FakeVenue:
    def __init__(
        self,
        known: dict[str, Any] | None = None,
        *,
        final_lookups: bool = False,
        incarnation: int | None = None,
    ) -> None:
        self.known = known or {}
        self.down = False
        self.asked: list[str] = []
        self.final_lookups = final_lookups
        self.incarnation = incarnation

    async def lookup(self, client_order_id: str) -> OrderLookup:
        self.asked.append(client_order_id)
        if self.down:
            raise TransientError("venue down")
        return OrderLookup(self.known.get(client_order_id), self.incarnation)


class Seen:
    status = "accepted"


def resolver(venue: FakeVenue, clock: ManualClock) -> tuple[Resolver, list[Any], list[Any]]:
    core = ExecutionCore(clock)
    for coid in ("tpa", "tpb"):
        intent = Intent(
            coid[2:], coid, "d", "s", "AAA", Side.BUY, 1.0, OrderType.MARKET, None, 0.0, "t"
        )
        core.begin_submit(SubmitOrder(intent, 0.0, 100.0))
    journaled: list[OrderEvent | None] = []
    failures: list[Exception] = []

    async def journal(events: list[OrderEvent | None]) -> None:
        journaled.extend(events)

    r = Resolver(
        core,
        venue,  # type: ignore[arg-type]
        grace_s=5.0,
        in_submit=set(),
        venue_failed=failures.append,
        journal_events=journal,
        now=clock.now,
        monotonic=clock.monotonic,
    )
    return r, journaled, failures


def test_order_at_the_venue_then_reported_found_and_not_closed() -> None:
    clock = ManualClock()
    r, journaled, _ = resolver(FakeVenue({"tpa": Seen()}), clock)
    clock.advance(10.0)
    waiting = asyncio.run(r.resolve_once())
    assert waiting == [] and r.core.orders.get("tpa").status is OrderStatus.PENDING_SUBMIT
    assert [e.kind for e in journaled if e] == ["order_rejected"]  # tpb: never reached it
    outcomes = {x["client_order_id"]: x["outcome"] for x in r.resolutions}
    assert outcomes == {"tpa": "found at venue (accepted)", "tpb": "rejected NOT_RECEIVED_BY_VENUE"}


def test_order_unknown_to_the_venue_within_the_grace_then_still_waiting() -> None:
    clock = ManualClock()
    r, journaled, _ = resolver(FakeVenue(), clock)
    clock.advance(1.0)
    assert sorted(asyncio.run(r.resolve_once())) == ["tpa", "tpb"] and journaled == []


def test_venue_down_then_nothing_closed_and_the_failure_reported() -> None:
    clock = ManualClock()
    venue = FakeVenue()
    venue.down = True
    r, journaled, failures = resolver(venue, clock)
    clock.advance(60.0)
    assert sorted(asyncio.run(r.resolve_once())) == ["tpa", "tpb"]
    assert journaled == [] and len(failures) == 1


def test_order_whose_submit_is_still_running_then_left_to_its_own_call() -> None:
    clock = ManualClock()
    r, journaled, _ = resolver(FakeVenue(), clock)
    r.in_submit.add("tpa")
    clock.advance(60.0)
    asyncio.run(r.resolve_once())
    assert [e.client_order_id for e in (e.order for e in journaled if e)] == ["tpb"]


def test_order_sent_to_a_venue_incarnation_since_replaced_then_closed_at_once() -> None:
    clock = ManualClock()
    r, journaled, _ = resolver(FakeVenue(final_lookups=True, incarnation=8), clock)
    r.submitted_to.update({"tpa": 7, "tpb": 8})
    clock.advance(0.1)
    assert asyncio.run(r.resolve_once()) == ["tpb"]  # tpb went to this incarnation: may land
    assert [e.order.client_order_id for e in journaled if e] == ["tpa"]
    assert r.core.orders.get("tpa").reason == "NOT_RECEIVED_BY_VENUE"


def test_order_sent_to_a_restarted_venue_whose_answers_are_not_final_then_waits() -> None:
    clock = ManualClock()
    r, journaled, _ = resolver(FakeVenue(final_lookups=False, incarnation=8), clock)
    r.submitted_to.update({"tpa": 7, "tpb": 7})
    clock.advance(0.1)
    assert sorted(asyncio.run(r.resolve_once())) == ["tpa", "tpb"] and journaled == []


def test_order_sent_to_a_since_replaced_incarnation_but_found_then_never_closed() -> None:
    clock = ManualClock()
    venue = FakeVenue({"tpa": Seen()}, final_lookups=True, incarnation=8)
    r, journaled, _ = resolver(venue, clock)
    r.submitted_to.update({"tpa": 7})
    clock.advance(60.0)
    asyncio.run(r.resolve_once())
    assert r.core.orders.get("tpa").status is OrderStatus.PENDING_SUBMIT
    assert "tpa" not in [e.order.client_order_id for e in journaled if e]


def test_closed_orders_forgotten_then_no_incarnation_kept_for_them() -> None:
    r, _, _ = resolver(FakeVenue(), ManualClock())
    r.submitted_to.update({"tpa": 7, "tpb": 7})
    r.forget(["tpa"])
    assert r.submitted_to == {"tpb": 7}


def test_wall_clock_steps_forward_an_hour_then_a_submit_still_on_its_way_not_declared_lost() -> (
    None
):
    clock = ManualClock()
    r, journaled, _ = resolver(FakeVenue(), clock)
    clock.advance(1.0)
    assert sorted(asyncio.run(r.resolve_once())) == ["tpa", "tpb"]
    clock.step_wall(3600.0)
    assert sorted(asyncio.run(r.resolve_once())) == ["tpa", "tpb"] and journaled == []
    clock.advance(4.0)  # the grace (5 s) has now passed
    assert asyncio.run(r.resolve_once()) == [] and len(journaled) == 2


def test_wall_clock_steps_back_an_hour_then_unanswered_orders_closed_after_the_grace() -> None:
    clock = ManualClock()
    r, journaled, _ = resolver(FakeVenue(), clock)
    clock.step_wall(-3600.0)  # the orders are dated an hour in the future
    assert sorted(asyncio.run(r.resolve_once())) == ["tpa", "tpb"]
    clock.advance(5.0)
    assert asyncio.run(r.resolve_once()) == [] and len(journaled) == 2
