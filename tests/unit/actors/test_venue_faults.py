"""Injected venue faults, on the plain ``StreamingSimVenue`` the venue actor wraps: no Ray."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from ray.exceptions import RayActorError, RayTaskError

from tradeplane.actors.common import Remote
from tradeplane.actors.venue import RayVenueClient, StreamingSimVenue
from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import TransientError
from tradeplane.core.model import Bar, OrderType, Side
from tradeplane.core.venue_events import check_venue_event
from tradeplane.venues.base import OrderLookup
from tradeplane.venues.sim import SimVenue, VenueOrderRequest
from tradeplane.venues.sim.faults import MALFORMED_SHAPES, FaultBook, VenueUnavailable

T = TypeVar("T")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def market(coid: str, qty: float = 1.0) -> VenueOrderRequest:
    return VenueOrderRequest(coid, "ACME", Side.BUY, qty, OrderType.MARKET)


def bar(minute: int) -> Bar:
    return Bar("ACME", T0 + timedelta(minutes=minute), 100.0, 101.0, 99.0, 100.0, 1_000.0)


class Sleeps:
    """Records held-back answers instead of sleeping; runs ``during`` while 'asleep'."""

    def __init__(self, during: Callable[[], object] | None = None) -> None:
        self.calls: list[float] = []
        self.during = during

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.during is not None:
            self.during()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make(
    clock: ManualClock, *, seed: int = 0, sleep: Sleeps | None = None
) -> tuple[StreamingSimVenue, SimVenue]:
    venue = SimVenue.open(None, clock=clock)
    sim = StreamingSimVenue(
        venue, FaultBook(clock, seed=seed, target="venue"), sleep=sleep or Sleeps()
    )
    return sim, venue


# --------------------------------------------------------------------------- drop_connection


def test_submit_when_connection_dropped_then_refused_and_not_placed(clock: ManualClock) -> None:
    sim, venue = make(clock)
    sim.inject_fault("drop_connection")
    with pytest.raises(VenueUnavailable, match="submit refused"):
        run(sim.submit(market("c-1")))
    assert venue.order("c-1") is None and venue.last_seq == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.cancel("c-1"),
        lambda s: s.order("c-1"),
        lambda s: s.open_orders(),
        lambda s: s.positions(),
        lambda s: s.events_since(0, 100, 0.0),
        lambda s: s.last_seq(),
    ],
    ids=["cancel", "order", "open_orders", "positions", "events_since", "last_seq"],
)
def test_every_broker_call_when_connection_dropped_then_refused(
    clock: ManualClock, call: Callable[[StreamingSimVenue], Awaitable[Any]]
) -> None:
    sim, venue = make(clock)
    run(sim.submit(market("c-1")))
    sim.inject_fault("drop_connection")
    with pytest.raises(VenueUnavailable):
        run(call(sim))
    assert venue.order("c-1").status == "accepted"  # type: ignore[union-attr]


def test_refusal_is_a_transient_error_so_the_broker_retries() -> None:
    assert issubclass(VenueUnavailable, TransientError)


def test_bars_while_connection_dropped_then_market_goes_on_and_orders_fill(
    clock: ManualClock,
) -> None:
    sim, venue = make(clock)
    run(sim.submit(market("c-1")))
    sim.inject_fault("drop_connection", duration_s=30.0)
    sim.on_bars([bar(0)])
    assert venue.order("c-1").status == "filled"  # type: ignore[union-attr]
    clock.advance(30.0)
    kinds = [e.kind for e in run(sim.events_since(0, 100, 0.0))]
    assert kinds == ["order_accepted", "order_filled"]


def test_drop_cleared_then_calls_succeed_again(clock: ManualClock) -> None:
    sim, _ = make(clock)
    sim.inject_fault("drop_connection")
    assert sim.clear_faults("drop_connection") == 1
    assert run(sim.submit(market("c-1")))[0].kind == "order_accepted"


async def loop_turns(n: int = 5) -> None:
    """Let every ready task run ``n`` times: what a wake-up does, without waiting on a clock."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_long_poll_when_drop_begins_then_ends_with_error_at_once(clock: ManualClock) -> None:
    sim, _ = make(clock)

    async def scenario() -> None:
        poll = asyncio.ensure_future(sim.events_since(0, 100, 30.0))
        await loop_turns()
        assert not poll.done()  # waiting for events (up to 30 s)
        sim.inject_fault("drop_connection")
        await loop_turns()
        # Ended by the drop itself, not by its 30 s wait running out (bench/promptness.py).
        assert poll.done()
        with pytest.raises(VenueUnavailable, match="events_since"):
            await poll

    run(scenario())


def test_long_poll_without_faults_then_wakes_on_new_event(clock: ManualClock) -> None:
    sim, _ = make(clock)

    async def scenario() -> list[Any]:
        poll = asyncio.ensure_future(sim.events_since(0, 100, 30.0))
        await asyncio.sleep(0.01)
        await sim.submit(market("c-1"))
        return await poll

    assert [e.kind for e in run(scenario())] == ["order_accepted"]


# -------------------------------------------------------------------------------- delay_acks


def test_submit_with_delayed_acks_then_order_live_before_the_answer(clock: ManualClock) -> None:
    seen: list[str] = []
    sleeps = Sleeps()
    sim, venue = make(clock, sleep=sleeps)
    sleeps.during = lambda: seen.append(venue.order("c-1").status)  # type: ignore[union-attr]
    sim.inject_fault("delay_acks", params={"delay_s": 7.5})
    events = run(sim.submit(market("c-1")))
    assert sleeps.calls == [7.5]
    assert seen == ["accepted"]
    assert events[0].kind == "order_accepted"


def test_cancel_and_queries_with_delayed_acks_then_not_delayed(clock: ManualClock) -> None:
    sleeps = Sleeps()
    sim, _ = make(clock, sleep=sleeps)
    sim.inject_fault("delay_acks")
    run(sim.submit(market("c-1")))
    run(sim.cancel("c-1"))
    run(sim.order("c-1"))
    assert sleeps.calls == [2.0]


def test_drop_while_answer_held_back_then_answer_lost_but_order_placed(
    clock: ManualClock,
) -> None:
    sleeps = Sleeps()
    sim, venue = make(clock, sleep=sleeps)
    sleeps.during = lambda: sim.inject_fault("drop_connection")
    sim.inject_fault("delay_acks")
    with pytest.raises(VenueUnavailable, match="submit answer"):
        run(sim.submit(market("c-1")))
    assert venue.order("c-1").status == "accepted"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- duplicate_fills


def test_duplicate_fills_then_each_fill_event_delivered_twice_and_others_once(
    clock: ManualClock,
) -> None:
    sim, _ = make(clock)
    run(sim.submit(market("a")))
    run(sim.submit(market("b")))
    sim.on_bars([bar(0)])
    sim.inject_fault("duplicate_fills")
    events = run(sim.events_since(0, 100, 0.0))
    assert [(e.seq, e.kind) for e in events] == [
        (1, "order_accepted"),
        (2, "order_accepted"),
        (3, "order_filled"),
        (3, "order_filled"),
        (4, "order_filled"),
        (4, "order_filled"),
    ]
    assert events[2] == events[3] and events[2].fill.fill_id == events[3].fill.fill_id


# ----------------------------------------------------------------------------- reject_orders


def test_reject_orders_then_recorded_rejected_like_a_genuine_venue_rejection(
    clock: ManualClock,
) -> None:
    sim, venue = make(clock)
    run(sim.submit(market("a")))
    sim.inject_fault("reject_orders")
    answer = run(sim.submit(market("b")))
    assert [(e.seq, e.kind, e.reason) for e in answer] == [(2, "order_rejected", "INJECTED_REJECT")]
    assert run(sim.events_since(1, 100, 0.0)) == answer
    order = venue.order("b")
    assert order is not None and (order.status, order.reason) == ("rejected", "INJECTED_REJECT")
    sim.clear_faults()
    assert run(sim.submit(market("b")))[0].reason == "DUPLICATE_CLIENT_ORDER_ID"


def test_reject_orders_with_probability_then_seeded_share_rejected(clock: ManualClock) -> None:
    def rejected(seed: int) -> list[str]:
        sim, _ = make(ManualClock(), seed=seed)
        sim.inject_fault("reject_orders", params={"probability": 0.5})
        return [run(sim.submit(market(f"c-{i}")))[0].kind for i in range(40)]

    first = rejected(3)
    assert first == rejected(3)
    assert 5 < first.count("order_rejected") < 35


# --------------------------------------------------------------------------------- malformed


def test_malformed_then_one_bad_message_first_carrying_the_seq_before_the_batch(
    clock: ManualClock,
) -> None:
    sim, _ = make(clock)
    for i in range(3):
        run(sim.submit(market(f"c-{i}")))
    sim.on_bars([bar(0)])
    real = run(sim.events_since(1, 100, 0.0))
    sim.inject_fault("malformed")
    batch = run(sim.events_since(1, 100, 0.0))
    assert batch[1:] == real, "real events are never altered or dropped"
    bad = batch[0]
    assert check_venue_event(bad) is not None
    assert getattr(bad, "seq", None) == 1


def test_malformed_then_shapes_rotate_and_each_is_caught(clock: ManualClock) -> None:
    sim, _ = make(clock)
    run(sim.submit(market("c-1")))
    sim.inject_fault("malformed")
    reasons = set()
    for _ in range(len(MALFORMED_SHAPES)):
        bad = run(sim.events_since(0, 100, 0.0))[0]
        reason = check_venue_event(bad)
        assert reason is not None
        reasons.add(reason)
    assert len(reasons) == len(MALFORMED_SHAPES)


def test_malformed_on_an_empty_batch_then_nothing_added(clock: ManualClock) -> None:
    sim, _ = make(clock)
    sim.inject_fault("malformed")
    assert run(sim.events_since(0, 100, 0.0)) == []
    assert sim.faults.counts == {}


# ------------------------------------------------------------------------------- bookkeeping


def test_feed_fault_sent_to_the_venue_then_refused(clock: ManualClock) -> None:
    sim, _ = make(clock)
    with pytest.raises(ValueError, match="feed"):
        sim.inject_fault("silent")


def test_fault_expires_then_venue_behaves_again(clock: ManualClock) -> None:
    sim, _ = make(clock)
    described = sim.inject_fault("reject_orders", duration_s=5.0)
    assert described["remaining_s"] == 5.0
    clock.advance(5.0)
    assert run(sim.submit(market("c-1")))[0].kind == "order_accepted"
    assert sim.faults.describe() == []


# ------------------------------------------------------------------------ RayVenueClient._call


class FakeMethod:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def remote(self, *args: Any) -> Awaitable[Any]:
        async def call() -> Any:
            if isinstance(self.outcome, BaseException):
                raise self.outcome
            return self.outcome

        return call()


class FakeHandle:
    def __init__(self, incarnation: int = 1) -> None:
        self.outcomes: dict[str, Any] = {"incarnation": incarnation}
        self.called: list[str] = []

    def __getattr__(self, name: str) -> FakeMethod:
        self.called.append(name)
        return FakeMethod(self.outcomes[name])


class FakePeers:
    def __init__(self, handle: FakeHandle) -> None:
        self.handle: FakeHandle | None = handle
        self.forgotten: list[str | None] = []

    def get(self, role: str) -> Any:
        return self.handle

    def remote(self, role: str) -> Remote[Any] | None:
        return None if self.handle is None else Remote(self.handle)

    def forget(self, role: str | None = None) -> None:
        self.forgotten.append(role)


def _client() -> tuple[RayVenueClient, FakeHandle, FakePeers]:
    handle = FakeHandle()
    peers = FakePeers(handle)
    return RayVenueClient(peers, call_timeout_s=1.0), handle, peers  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", ["instance_of_cause", "plain"])
def test_call_refused_by_venue_then_transient_error_and_disconnected(wrap: str) -> None:
    client, handle, peers = _client()
    error = RayTaskError("submit", "traceback", VenueUnavailable("connection dropped"))
    handle.outcomes["submit"] = (
        error.as_instanceof_cause() if wrap == "instance_of_cause" else error
    )
    with pytest.raises(TransientError, match="venue submit refused: connection dropped"):
        run(client.submit(market("c-1")))
    assert client.connected is False
    assert peers.forgotten == [], "the venue actor is alive: keep its handle"
    handle.outcomes["last_seq"] = 4
    assert run(client.last_seq()) == 4
    assert client.connected is True


def test_other_task_error_then_propagates_unchanged_and_stays_connected() -> None:
    client, handle, _ = _client()
    error = RayTaskError("submit", "traceback", KeyError("boom")).as_instanceof_cause()
    handle.outcomes["submit"] = error
    with pytest.raises(RayTaskError) as caught:
        run(client.submit(market("c-1")))
    assert caught.value is error
    assert client.connected is True


def test_dead_venue_actor_then_transient_error_and_handle_forgotten() -> None:
    client, handle, peers = _client()
    handle.outcomes["positions"] = RayActorError()
    with pytest.raises(TransientError, match="RayActorError"):
        run(client.positions())
    assert client.connected is False and peers.forgotten == ["venue"]


# ------------------------------------------------------------ RayVenueClient: venue incarnations


def test_venue_client_then_declares_final_lookups() -> None:
    client, _, _ = _client()
    assert client.final_lookups is True


def test_incarnation_then_asked_once_per_handle_and_known_after() -> None:
    client, handle, peers = _client()
    assert client.incarnation is None
    handle.outcomes["last_seq"] = 4
    run(client.last_seq())
    run(client.last_seq())
    assert handle.called == ["incarnation", "last_seq", "last_seq"]
    assert client.incarnation == 1
    peers.handle = FakeHandle(incarnation=2)
    peers.handle.outcomes["last_seq"] = 0
    run(client.last_seq())
    assert peers.handle.called == ["incarnation", "last_seq"] and client.incarnation == 2


def test_dead_venue_actor_then_its_incarnation_no_longer_claimed() -> None:
    client, handle, _ = _client()
    handle.outcomes["last_seq"] = 4
    run(client.last_seq())
    handle.outcomes["positions"] = RayActorError()
    with pytest.raises(TransientError):
        run(client.positions())
    assert client.incarnation is None


def test_submit_addressed_to_a_replaced_venue_incarnation_then_not_sent() -> None:
    client, handle, _ = _client()  # the venue behind the handle is incarnation 1
    handle.outcomes["submit"] = []
    req = VenueOrderRequest("c-1", "ACME", Side.BUY, 1.0, OrderType.MARKET, venue_incarnation=0)
    with pytest.raises(TransientError, match="not sent"):
        run(client.submit(req))
    assert "submit" not in handle.called


def test_submit_addressed_to_the_current_incarnation_then_sent_there() -> None:
    client, handle, _ = _client()
    handle.outcomes["submit"] = []
    req = VenueOrderRequest("c-1", "ACME", Side.BUY, 1.0, OrderType.MARKET, venue_incarnation=1)
    assert run(client.submit(req)) == []
    assert handle.called == ["incarnation", "submit"]


def test_lookup_then_the_answer_names_the_incarnation_that_gave_it() -> None:
    client, handle, _ = _client()
    handle.outcomes["lookup"] = OrderLookup(None, 1)
    assert run(client.lookup("c-1")) == OrderLookup(None, 1)
