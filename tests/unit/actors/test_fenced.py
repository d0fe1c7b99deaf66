"""A writer whose epoch the journal refuses has been replaced and stops; a refused epoch of
someone it acted for fails only that write. Fake handles, no Ray cluster."""

from __future__ import annotations

import asyncio
from typing import Any

from ray.exceptions import RayTaskError

from tradeplane.actors.common import Outbox, Peers, fenced_role
from tradeplane.core.errors import OperationalError, StaleEpochError


def refused(role: str) -> RayTaskError:
    return RayTaskError("append", "remote traceback", StaleEpochError("stale_epoch: x", role))


class FakeJournal:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.appends: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        journal = self

        class Method:
            @staticmethod
            def remote(*args: Any) -> Any:
                async def result() -> Any:
                    journal.appends.append(args)
                    if journal.error is not None:
                        raise journal.error
                    return []

                return result()

        return Method


class StaticPeers(Peers):
    def __init__(self, journal: FakeJournal, writer: tuple[str, int] | None) -> None:
        self.stopped: list[BaseException] = []
        super().__init__("d", writer, self.stopped.append)
        self.journal = journal

    def get(self, role: str) -> Any:
        return self.journal


def test_fenced_role_found_through_ray_task_errors() -> None:
    assert fenced_role(refused("risk")) == "risk"
    assert fenced_role(RayTaskError("f", "tb", OperationalError("other"))) is None


def test_journal_refuses_the_writers_own_epoch_then_it_stops_itself() -> None:
    peers = StaticPeers(FakeJournal(refused("broker")), ("broker", 4))
    peers.fenced(refused("broker"))
    assert len(peers.stopped) == 1


def test_journal_refuses_the_epoch_of_whom_it_acted_for_then_it_goes_on() -> None:
    peers = StaticPeers(FakeJournal(refused("risk")), ("broker", 4))
    peers.fenced(refused("risk"))
    peers.fenced(RayTaskError("f", "tb", OperationalError("disk full")))
    assert peers.stopped == []


def test_outbox_journal_stamps_every_append_and_a_refusal_stops_the_writer() -> None:
    async def scenario() -> StaticPeers:
        peers = StaticPeers(FakeJournal(refused("strategy/a")), ("strategy/a", 9))
        outbox = Outbox(peers)
        outbox.journal(["r"], ["s"])
        while outbox.inflight():
            await asyncio.sleep(0.01)
        return peers

    peers = asyncio.run(scenario())
    assert peers.journal.appends == [(["r"], ["s"], [("strategy/a", 9)])]
    assert len(peers.stopped) == 1


def test_stamps_are_the_writers_then_those_it_vouches_for() -> None:
    peers = Peers("d", ("broker", 4))
    assert peers.stamps(("risk", 3), None) == [("broker", 4), ("risk", 3)]
    assert Peers("d").stamps() == []
