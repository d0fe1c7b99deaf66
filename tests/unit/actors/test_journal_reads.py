"""The journal actor's reads for the CLI (``JournalReads``), run against a real journal without
Ray: they answer what the CLI reads from a local state dir, and events come in bounded pages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.unit.journal.factories import DEPLOYMENT, NOTE, notes, trade
from tradeplane.actors import journal_reads
from tradeplane.actors.journal_reads import (
    JournalReads,
    VerifyReport,
    preflight_state,
    verify_settled,
)
from tradeplane.cli.cluster_reads import RemoteJournal, held_elsewhere
from tradeplane.cli.offline import offline_status
from tradeplane.core.run_record import JournalIdentity, RunRecord
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.store import JournalStore

N = 12  # 10 notes + one order (submitting, filled)


class Reads(JournalReads):
    def __init__(self, state_dir: Path) -> None:
        self.deployment = DEPLOYMENT
        self.state_dir = state_dir


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(6))
        store.commit(trade(1, "buy", 2.0, 100.0, symbol="AAA"))
        store.commit(notes(4, start=6))
    return state_dir


def test_read_status_is_what_status_reads_from_a_local_state_dir(state: Path) -> None:
    assert asyncio.run(Reads(state).read_status(5)) == offline_status(state, tail=5)


def test_read_events_returns_at_most_one_page_and_pages_on_from_a_seq(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_reads, "READ_PAGE", 4)
    reads = Reads(state)
    first = asyncio.run(reads.read_events(None, 0, 1000))
    assert [e["seq"] for e in first] == [1, 2, 3, 4]
    rest = asyncio.run(reads.read_events(None, 10, 1000))
    with JournalReader.open(state) as reader:
        assert rest == reader.events(since_seq=10)
        assert asyncio.run(reads.read_events(["order_filled"])) == reader.events(["order_filled"])


def test_remote_journal_reads_a_whole_journal_page_by_page(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_reads, "READ_PAGE", 4)
    monkeypatch.setattr("tradeplane.cli.cluster_reads.READ_PAGE", 4)
    reads = Reads(state)
    calls: list[tuple[Any, ...]] = []

    def answer(timeout_s: float, method: Any, *args: Any) -> Any:
        calls.append(args)
        return asyncio.run(getattr(reads, method.__name__)(*args))

    remote = RemoteJournal.__new__(RemoteJournal)
    remote._get_within = answer  # type: ignore[method-assign]
    with JournalReader.open(state) as reader:
        assert remote.events() == reader.events()
        assert len(calls) == 4  # 12 events in pages of 4: three full, then an empty one
        assert remote.events(since_seq=2, limit=6) == reader.events(since_seq=2, limit=6)
        assert remote.events([NOTE], since_seq=3) == reader.events([NOTE], since_seq=3)


def test_read_verify_reports_as_a_local_verify_does(state: Path) -> None:
    report = VerifyReport.from_dict(asyncio.run(Reads(state).read_verify()))
    with JournalReader.open(state) as reader:
        local = verify_settled(reader)
    assert report.result == local.result and report.result.ok and report.result.lines == N
    assert report.problem is None and report.db_seq == N
    assert report.path == str(state / "journal.jsonl")


def test_read_verify_of_a_tampered_line_names_it(state: Path) -> None:
    path = state / "journal.jsonl"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace('"i":3', '"i":9')
    path.write_text("\n".join(lines) + "\n")
    report = VerifyReport.from_dict(asyncio.run(Reads(state).read_verify(deep=True)))
    assert not report.result.ok and report.result.first_bad_line == 4


def test_read_preflight_is_preflight_state_of_the_journals_dir(state: Path) -> None:
    answer = asyncio.run(Reads(state).read_preflight())
    assert answer == preflight_state(state)
    assert [c["name"] for c in answer["checks"]] == ["state dir", "journal"]
    assert answer["facts"]["kill_switch"] is None and answer["facts"]["positions"]


# --- a stopped deployment: which node holds its state ----------------------------------------


def record(node_id: str, state_dir: Path, journal: bool = True) -> RunRecord:
    ident = JournalIdentity("genesis", 1, 13) if journal else None
    return RunRecord(DEPLOYMENT, "r1", "stopped", node_id, "10.1.2.3", str(state_dir), ident)


def test_no_run_record_or_a_local_journal_then_read_here_as_before(
    state: Path, tmp_path: Path
) -> None:
    assert held_elsewhere(None, "here", tmp_path / "none") is None
    assert held_elsewhere(record("other", tmp_path / "x"), "here", state) is None


def test_state_on_another_node_then_that_node_and_path_are_named(tmp_path: Path) -> None:
    where = held_elsewhere(record("node-b", Path("/srv/tp/demo")), "here", tmp_path / "none")
    assert isinstance(where, str)
    assert "/srv/tp/demo on node 10.1.2.3 (node id node-b)" in where
    assert "has no journal running" in where and "fresh" not in where


def test_state_on_this_node_elsewhere_than_the_default_then_that_dir_is_read(
    state: Path, tmp_path: Path
) -> None:
    assert held_elsewhere(record("here", state), "here", tmp_path / "none") == state


def test_journal_recorded_on_this_node_but_gone_then_said_not_taken_as_fresh(
    tmp_path: Path,
) -> None:
    where = held_elsewhere(record("here", tmp_path / "gone"), "here", tmp_path / "none")
    assert isinstance(where, str) and "not where its run record puts it" in where
    # ... while a record that names no journal yet leaves a fresh start fresh
    assert held_elsewhere(record("here", tmp_path / "gone", False), "here", tmp_path) is None
