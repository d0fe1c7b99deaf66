"""Outbox delivery with fake handles: no Ray cluster, only Ray's exception types."""

from __future__ import annotations

import asyncio
from typing import Any

from ray.exceptions import RayActorError

from tradeplane.actors.common import Outbox
from tradeplane.protocol.api import BrokerApi, RiskApi
from tradeplane.protocol.roles import ROLE_BROKER, ROLE_RISK


class FakeMethod:
    def __init__(self, actor: FakeActor, name: str) -> None:
        self.actor, self.name = actor, name

    def remote(self, *args: Any) -> Any:
        return self.actor.call(self.name, args)


class FakeActor:
    """Accepts calls while alive; a dead one fails every call, as Ray reports it later."""

    def __init__(self) -> None:
        self.alive = True
        self.received: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> FakeMethod:
        return FakeMethod(self, name)

    def call(self, name: str, args: tuple[Any, ...]) -> Any:
        alive = self.alive

        async def result() -> None:
            await asyncio.sleep(0.01)
            if not alive:
                raise RayActorError()
            self.received.append((name, args))

        return result()


class FakePeers:
    def __init__(self) -> None:
        self.current: FakeActor | None = FakeActor()

    def get(self, role: str) -> FakeActor | None:
        return self.current

    def forget(self, role: str | None = None) -> None:
        pass


async def _settle(outbox: Outbox, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (outbox.inflight() or outbox.pending_retries()) and loop.time() < deadline:
        await asyncio.sleep(0.01)


def test_call_failing_after_the_rewire_then_redelivered_without_another_rewire() -> None:
    async def scenario() -> list[Any]:
        peers = FakePeers()
        outbox = Outbox(peers)  # type: ignore[arg-type]
        first = peers.current
        assert first is not None
        first.alive = False
        outbox.send_nowait(ROLE_BROKER, BrokerApi.submit, 1)  # in flight to an actor that just died
        peers.current = FakeActor()  # restarted; the rewire arrives before the failure does
        outbox.resend(ROLE_BROKER)
        outbox.send_nowait(ROLE_BROKER, BrokerApi.submit, 2)
        await _settle(outbox)
        assert peers.current is not None
        return [args[0] for _, args in peers.current.received]

    # Each exactly once. (2 went straight to the replacement; 1 came back through the retry.)
    assert sorted(asyncio.run(scenario())) == [1, 2]


def test_messages_parked_while_peer_is_away_then_delivered_in_order() -> None:
    async def scenario() -> list[Any]:
        peers = FakePeers()
        outbox = Outbox(peers)  # type: ignore[arg-type]
        replacement = FakeActor()
        peers.current = None  # the receiver is being restarted
        for n in range(5):
            outbox.send_nowait(ROLE_RISK, RiskApi.on_intents, n)
        assert outbox.pending_retries() == 5
        peers.current = replacement  # back, but nobody calls rewire
        await _settle(outbox)
        return [args[0] for _, args in replacement.received]

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_parked_messages_retried_after_waits_doubling_to_five_seconds() -> None:
    async def scenario() -> tuple[list[float], list[Any]]:
        peers = FakePeers()
        outbox = Outbox(peers)  # type: ignore[arg-type]
        replacement = FakeActor()
        waits: list[float] = []

        async def sleep(seconds: float) -> None:  # injected: no real waiting
            waits.append(seconds)
            if len(waits) == 7:
                peers.current = replacement  # back after the seventh wait
            await asyncio.sleep(0)

        outbox.sleep = sleep
        peers.current = None
        outbox.send_nowait(ROLE_RISK, RiskApi.on_intents, 1)
        await _settle(outbox)
        return waits, [args[0] for _, args in replacement.received]

    waits, received = asyncio.run(scenario())
    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert received == [1]


def test_outbox_retry_loop_when_cancelled_then_it_ends_and_can_start_again() -> None:
    async def scenario() -> bool:
        peers = FakePeers()
        outbox = Outbox(peers)  # type: ignore[arg-type]
        peers.current = None
        outbox.send_nowait(ROLE_RISK, RiskApi.on_intents, 1)
        (loop_task,) = outbox.tasks
        await asyncio.sleep(0)
        loop_task.cancel()
        await asyncio.gather(loop_task, return_exceptions=True)
        assert loop_task.cancelled() and outbox.pending_retries() == 1
        outbox.send_nowait(ROLE_RISK, RiskApi.on_intents, 2)  # parks, and starts a new retry loop
        return len(outbox.tasks) == 1

    assert asyncio.run(scenario())
