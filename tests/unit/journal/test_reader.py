from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from tests.unit.journal.factories import DEPLOYMENT, intent, notes, submitting, trade
from tradeplane.core.errors import OperationalError
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.records import StateWrite
from tradeplane.journal.store import JournalStore


def test_reader_sees_committed_data_while_the_writer_stays_open(
    store: JournalStore, state_dir: Path
) -> None:
    store.commit([intent(1), submitting(1)], [StateWrite("risk", "state", {"halted": False}, 1.0)])
    with JournalReader.open(state_dir) as reader:
        assert reader.deployment == DEPLOYMENT and reader.last_seq == 2
        assert [o["client_order_id"] for o in reader.orders(open_only=True)] == ["c1"]
        assert reader.get_state("risk", "state") == {"halted": False}
        store.commit(trade(2, "sell", 1.0, 10.0))
        assert reader.last_seq == 4  # no snapshot held between queries
        assert reader.positions()[("s1", "BTC-USDT")]["quantity"] == -1.0
        assert [e["seq"] for e in reader.tail(2)] == [3, 4]
        assert reader.counts_by_kind() == {"intent": 1, "order_submitting": 2, "order_filled": 1}
        assert reader.meta()["deployment"] == DEPLOYMENT
        assert len(reader.fills()) == 1 and len(reader.intents()) == 2
        assert reader.order_counts_by_status() == {"pending_submit": 1, "filled": 1}
        assert reader.states("risk") == {"state": {"halted": False}}
        assert [e["kind"] for e in reader.events(kinds=["intent"])] == ["intent"]
        assert len(reader.events_for(client_order_id="c2")) == 2


def test_an_open_read_transaction_does_not_block_the_writers_next_commit(
    store: JournalStore, state_dir: Path
) -> None:
    store.commit(notes(100))
    with JournalReader.open(state_dir) as reader:
        cursor = reader.conn.execute("SELECT seq FROM events ORDER BY seq")
        assert cursor.fetchone() == (1,)  # the statement, and its snapshot, stay open
        assert store.commit(notes(5, start=100)) == [101, 102, 103, 104, 105]
        assert len(cursor.fetchall()) == 99  # the reader still sees its snapshot
        assert reader.last_seq == 105  # and the next statement sees the new commit


def test_reader_works_with_no_writer_and_after_the_writer_exited(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(3))
    db_before = (state_dir / "journal.db").read_bytes()
    with JournalReader.open(state_dir) as reader:
        assert reader.last_seq == 3
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
            reader.conn.execute("DELETE FROM events")
    assert (state_dir / "journal.db").read_bytes() == db_before
    for path in state_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    # a writer can still open after the reader has come and gone
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.commit(notes(1, start=3)) == [4]


def test_reader_does_not_take_the_writer_lock(store: JournalStore, state_dir: Path) -> None:
    with JournalReader.open(state_dir), JournalReader.open(state_dir) as second:
        assert second.last_seq == 0
    assert store.commit(notes(1)) == [1]


def test_reader_of_a_missing_state_dir_names_it(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match=str(tmp_path / "nope")):
        JournalReader.open(tmp_path / "nope")


def test_reader_of_a_dir_without_a_db_names_the_db(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match=r"journal\.db does not exist"):
        JournalReader.open(tmp_path)


def test_reader_refuses_a_foreign_db(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "journal.db")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(OperationalError, match=r"journal\.db is not a tradeplane journal"):
        JournalReader.open(tmp_path)


def test_reader_refuses_garbage(tmp_path: Path) -> None:
    (tmp_path / "journal.db").write_bytes(b"not a database at all" * 300)
    with pytest.raises(OperationalError, match=r"journal\.db is not a SQLite database"):
        JournalReader.open(tmp_path)


def test_reader_can_insist_on_a_deployment(store: JournalStore, state_dir: Path) -> None:
    with pytest.raises(OperationalError, match="belongs to deployment 'demo'"):
        JournalReader.open(state_dir, deployment="other")
