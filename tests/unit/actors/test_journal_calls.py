"""Calls to the journal retry across its restart, give up with an operational error when it
stays away, and stop at once when cancelled. Fake handles: no Ray cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ray.exceptions import RayActorError

from tradeplane.actors.common import Remote, call_journal, query_journal
from tradeplane.core.errors import OperationalError


class FakeJournal:
    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls = 0

    @property
    def append(self) -> Any:
        return self._method(lambda records, state, stamps=(): list(range(len(records))))

    @property
    def query(self) -> Any:
        return self._method(lambda name, **kwargs: {"name": name, **kwargs})

    def _method(self, answer: Any) -> Any:
        journal = self

        class Method:
            @staticmethod
            def remote(*args: Any, **kwargs: Any) -> Any:
                async def result() -> Any:
                    journal.calls += 1
                    if journal.calls <= journal.fail_first:
                        raise RayActorError()
                    return answer(*args, **kwargs)

                return result()

        return Method


class FakePeers:
    def __init__(self, journal: FakeJournal | None) -> None:
        self.journal = journal
        self.forgotten = 0

    def get(self, role: str) -> FakeJournal | None:
        return self.journal

    def remote(self, role: str) -> Remote[Any] | None:
        return None if self.journal is None else Remote(self.journal)

    def forget(self, role: str | None = None) -> None:
        self.forgotten += 1

    def stamps(self, *vouched: Any) -> list[Any]:
        return []

    def fenced(self, exc: BaseException) -> None:
        pass


def test_call_journal_when_the_journal_dies_twice_then_the_append_lands_after_retries() -> None:
    peers = FakePeers(FakeJournal(fail_first=2))
    seqs = asyncio.run(call_journal(peers, ["a", "b"], retry_s=30.0))  # type: ignore[arg-type]
    assert seqs == [0, 1]
    assert peers.forgotten == 2  # each dead handle dropped, so the next try looks it up again


def test_query_journal_when_no_handle_yet_then_it_waits_for_one() -> None:
    async def scenario() -> Any:
        peers = FakePeers(None)

        async def restart_later() -> None:
            await asyncio.sleep(0.15)
            peers.journal = FakeJournal()

        back = asyncio.create_task(restart_later())
        answer = await query_journal(peers, "get_state", scope="s", key="k")  # type: ignore[arg-type]
        await back
        return answer

    assert asyncio.run(scenario()) == {"name": "get_state", "scope": "s", "key": "k"}


def test_call_journal_when_the_journal_stays_away_then_operational_error() -> None:
    peers = FakePeers(FakeJournal(fail_first=10**6))
    with pytest.raises(OperationalError, match="journal unavailable"):
        asyncio.run(call_journal(peers, ["a"], retry_s=0.1))  # type: ignore[arg-type]


def test_call_journal_when_cancelled_while_retrying_then_it_stops_at_once() -> None:
    async def scenario() -> int:
        peers = FakePeers(None)
        task = asyncio.create_task(call_journal(peers, ["a"], retry_s=3600.0))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return len(asyncio.all_tasks())

    assert asyncio.run(scenario()) == 1  # only the scenario itself is left
