"""The sim venue actor's incarnations (the plain class, no Ray): a submit is placed only by the
incarnation it was addressed to, and a new incarnation exists only once the previous one has let
go of the store. Together they make a restarted sim venue's "I do not have it" final."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tradeplane.actors.venue import SimVenueActor
from tradeplane.config.models import SimVenueConfig
from tradeplane.core.errors import OperationalError
from tradeplane.core.model import OrderType, Side
from tradeplane.venues.base import OrderLookup, VenueOrderRequest
from tradeplane.venues.sim.faults import VenueUnavailable

T = TypeVar("T")
Venue: Any = SimVenueActor.__ray_actor_class__  # type: ignore[attr-defined]


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def order(coid: str, incarnation: int | None) -> VenueOrderRequest:
    return VenueOrderRequest(
        coid, "ACME", Side.BUY, 1.0, OrderType.MARKET, venue_incarnation=incarnation
    )


def test_submit_addressed_to_an_earlier_incarnation_then_refused_and_not_placed(
    tmp_path: Path,
) -> None:
    venue = Venue("d", str(tmp_path), SimVenueConfig(), epoch=8)
    with pytest.raises(VenueUnavailable, match="addressed to venue incarnation 7"):
        run(venue.submit(order("c-1", 7)))
    assert run(venue.lookup("c-1")) == OrderLookup(None, 8)


@pytest.mark.parametrize("incarnation", [8, None])
def test_submit_addressed_to_this_incarnation_or_unaddressed_then_placed(
    tmp_path: Path, incarnation: int | None
) -> None:
    venue = Venue("d", str(tmp_path), SimVenueConfig(), epoch=8)
    assert run(venue.submit(order("c-1", incarnation)))[0].kind == "order_accepted"
    answer = run(venue.lookup("c-1"))
    assert answer.state is not None and answer.incarnation == 8
    assert run(venue.incarnation()) == 8


def test_new_incarnation_while_the_previous_holds_the_store_then_refused(
    tmp_path: Path,
) -> None:
    first = Venue("d", str(tmp_path), SimVenueConfig(), epoch=7)
    with pytest.raises(OperationalError, match="in use by another process"):
        Venue("d", str(tmp_path), SimVenueConfig(), epoch=8)
    run(first.submit(order("c-1", 7)))
    run(first.close())
    second = Venue("d", str(tmp_path), SimVenueConfig(), epoch=8)
    answer = run(second.lookup("c-1"))  # what the previous one placed is durable here
    assert answer.state is not None and answer.incarnation == 8
