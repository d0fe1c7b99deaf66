"""A journal written by the release before schema 2 is migrated on open, never refused."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.journal.factories import DEPLOYMENT, denied, intent, notes, status
from tradeplane.core.errors import OperationalError
from tradeplane.journal import ids, migrate, queries, schema
from tradeplane.journal.reader import JournalReader, verify_journal
from tradeplane.journal.store import JournalStore

# Made by the schema-1 release itself (commit 9b400d9), see data/make_v1_journal.py.
V1_JOURNAL = Path(__file__).parent / "data" / "journal_v1"
V1_GENESIS = "e69eb10ca655f1abd40ef1f2f2ccabd87fd7230483dfb5d1ea3abd53fe6a3632"
V1_LAST_HASH = "cfd3263c3a59b1959976b92dcd8d9b3458771bc06b2a39a242e469241d6dc21e"
V1_LINES = 300


@pytest.fixture
def v1_dir(tmp_path: Path) -> Path:
    out = tmp_path / "state"
    shutil.copytree(V1_JOURNAL, out)
    return out


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "BUCKET_BITS", 2)
    monkeypatch.setattr(ids, "BLOCK_BITS", 5)
    monkeypatch.setattr(ids, "BUCKETS_PER_BLOCK", 8)


def _dump(db: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        conn.close()


def _version(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.usefixtures("small_blocks")
def test_v1_journal_opened_then_migrated_with_every_line_chain_and_identity_kept(
    v1_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = v1_dir / "journal.db"
    before = {t: _dump(db, t) for t in ("intents", "orders", "fills", "state")}
    lines_before = _dump(db, "events")
    jsonl_before = (v1_dir / "journal.jsonl").read_bytes()
    with caplog.at_level(logging.WARNING), JournalStore.open(v1_dir, DEPLOYMENT, epoch=4) as s:
        assert (s.last_seq, s.last_hash, s.genesis) == (V1_LINES, V1_LAST_HASH, V1_GENESIS)
        meta = queries.meta(s.conn)
        assert meta["schema_version"] == schema.SCHEMA_VERSION
        assert meta["migrated_from_version"] == "1" and float(meta["migrated_ts"]) > 0
        assert queries.events_for(s.conn, intent_id="i3")[0]["event_id"] == "intent/3"
        # Old ids, in closed blocks and in the open one, are still known.
        assert s.commit([intent(0), intent(29)]) == [2, 292]
        assert s.commit(notes(2, prefix="after")) == [301, 302]
    assert "migrated from schema version 1" in caplog.text
    assert _dump(db, "events")[:V1_LINES] == lines_before
    assert {t: _dump(db, t) for t in ("intents", "orders", "fills")} == {
        t: before[t] for t in ("intents", "orders", "fills")
    }
    assert (v1_dir / "journal.jsonl").read_bytes().startswith(jsonl_before)
    result = verify_journal(v1_dir / "journal.jsonl")
    assert result.ok and result.lines == V1_LINES + 2


def _schema(db: Path) -> set[tuple[str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        # ALTER TABLE ... RENAME quotes the new name: the same schema, spelt differently.
        return {(t, n, " ".join(sql.replace('"', "").split())) for t, n, sql in rows}
    finally:
        conn.close()


def test_v1_journal_migrated_then_same_schema_as_a_new_journal(
    v1_dir: Path, tmp_path: Path
) -> None:
    JournalStore.open(v1_dir, DEPLOYMENT).close()
    JournalStore.open(tmp_path / "fresh", DEPLOYMENT).close()
    assert _schema(v1_dir / "journal.db") == _schema(tmp_path / "fresh" / "journal.db")


def test_v1_journal_read_before_migration_then_readable_as_it_is(v1_dir: Path) -> None:
    with JournalReader.open(v1_dir, deployment=DEPLOYMENT) as reader:
        assert reader.meta()["schema_version"] == 1
        assert [e["kind"] for e in reader.events_for(intent_id="i3")][:2] == [
            "intent",
            "order_submitting",
        ]
    assert _version(v1_dir / "journal.db") == "1"


def test_migration_interrupted_before_the_swap_then_v1_kept_and_the_next_open_finishes(
    v1_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = v1_dir / "journal.db"
    lines_before = _dump(db, "events")

    def crash(keys: object) -> bytes:
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(ids, "BLOCK_BITS", 5)
        m.setattr(ids, "BUCKETS_PER_BLOCK", 8)
        m.setattr(ids, "bloom", crash)  # fails in the last transaction, after events_v2 is in
        with pytest.raises(RuntimeError, match="power cut"):
            JournalStore.open(v1_dir, DEPLOYMENT)
    assert _version(db) == "1" and _dump(db, "events") == lines_before
    with JournalStore.open(v1_dir, DEPLOYMENT) as store:
        assert store.last_seq == V1_LINES
        assert store.commit(notes(1, start=3, prefix="note/")) == [31]  # an old id, found
    assert _version(db) == str(schema.SCHEMA_VERSION)
    assert _dump(db, "events")[:V1_LINES] == lines_before


def test_migration_killed_during_the_copy_then_resumed_where_it_stopped(
    v1_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = v1_dir / "journal.db"
    lines_before = _dump(db, "events")
    monkeypatch.setattr(migrate, "COPY_ROWS", 70)
    real_copy = migrate._copy_chunk
    chunks: list[int] = []

    def copy_then_die(conn: sqlite3.Connection) -> int:
        if len(chunks) == 2:
            raise KeyboardInterrupt  # the supervisor's kill, mid-copy
        chunks.append(real_copy(conn))
        return chunks[-1]

    with monkeypatch.context() as m:
        m.setattr(migrate, "_copy_chunk", copy_then_die)
        with pytest.raises(KeyboardInterrupt):
            JournalStore.open(v1_dir, DEPLOYMENT)
    assert chunks == [70, 140] and _version(db) == "1"
    assert _dump(db, "events") == lines_before
    copied = sqlite3.connect(db).execute("SELECT count(*) FROM events_v2").fetchone()[0]
    assert copied == 140  # kept: the next open carries on from there
    with JournalStore.open(v1_dir, DEPLOYMENT) as store:
        assert store.last_seq == V1_LINES
        assert store.commit([intent(0), intent(29)]) == [2, 292]
    assert _dump(db, "events") == lines_before
    result = verify_journal(v1_dir / "journal.jsonl")
    assert result.ok and result.lines == V1_LINES


def test_newer_schema_than_the_code_then_refused_with_a_clear_error(v1_dir: Path) -> None:
    conn = sqlite3.connect(v1_dir / "journal.db")
    conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(OperationalError, match="schema version 5, newer than the 4"):
        JournalStore.open(v1_dir, DEPLOYMENT)
    with pytest.raises(OperationalError, match="newer"):
        JournalReader.open(v1_dir)


def test_unknown_older_version_then_refused(v1_dir: Path) -> None:
    conn = sqlite3.connect(v1_dir / "journal.db")
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(OperationalError, match="schema version '0'"):
        JournalStore.open(v1_dir, DEPLOYMENT)


def test_migrate_from_the_current_version_then_nothing_happens(store: JournalStore) -> None:
    store.commit(notes(3))
    migrate.migrate(store.conn, store.db_path, schema.SCHEMA_VERSION)
    assert "migrated_from_version" not in queries.meta(store.conn)


# Made by the schema-2 release itself (commit 0f3ea4c), see data/make_v2_journal.py.
V2_JOURNAL = Path(__file__).parent / "data" / "journal_v2"
V2_GENESIS = "a010bb17eb832f3c1a7f59553e8990a66a6d5c5c21300979dfe69d87145c9f01"
V2_LAST_HASH = "410f6c431521b4491f49ca2b515431e0f6ce051b965d1a9dc34579db8b536813"
V2_LINES = 300


@pytest.fixture
def v2_dir(tmp_path: Path) -> Path:
    out = tmp_path / "state"
    shutil.copytree(V2_JOURNAL, out)
    return out


def _fills_by_order(conn: sqlite3.Connection, orders: int) -> dict[str, list[dict[str, object]]]:
    return {f"c{n}": queries.fills(conn, client_order_id=f"c{n}") for n in range(orders)}


def test_v2_journal_opened_then_migrated_and_every_fill_still_found_by_its_order(
    v2_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = v2_dir / "journal.db"
    before = {t: _dump(db, t) for t in ("events", "intents", "orders", "fills", "state")}
    jsonl_before = (v2_dir / "journal.jsonl").read_bytes()
    with JournalReader.open(v2_dir, deployment=DEPLOYMENT) as reader:
        assert reader.meta()["schema_version"] == 2
        fills_before = _fills_by_order(reader.conn, 30)
        trace_before = reader.events_for(client_order_id="c7")
    # Half of the fills name their order only in their data: all are found by order.
    assert all(len(f) == 2 for f in fills_before.values())
    with caplog.at_level(logging.WARNING), JournalStore.open(v2_dir, DEPLOYMENT, epoch=4) as s:
        assert (s.last_seq, s.last_hash, s.genesis) == (V2_LINES, V2_LAST_HASH, V2_GENESIS)
        meta = queries.meta(s.conn)
        assert meta["schema_version"] == schema.SCHEMA_VERSION
        assert meta["migrated_from_version"] == "2" and float(meta["migrated_ts"]) > 0
        assert _fills_by_order(s.conn, 30) == fills_before
        assert queries.events_for(s.conn, client_order_id="c7") == trace_before
        assert s.commit([intent(0), intent(29)]) == [2, 292]  # old ids are still known
        assert s.commit(notes(2, prefix="after")) == [301, 302]
    assert "migrated from schema version 2" in caplog.text
    assert _dump(db, "events")[:V2_LINES] == before["events"]
    assert {t: _dump(db, t) for t in ("intents", "orders", "fills")} == {
        t: before[t] for t in ("intents", "orders", "fills")
    }
    assert (v2_dir / "journal.jsonl").read_bytes().startswith(jsonl_before)
    result = verify_journal(v2_dir / "journal.jsonl")
    assert result.ok and result.lines == V2_LINES + 2


def test_v2_journal_migrated_then_same_schema_as_a_new_journal(
    v2_dir: Path, tmp_path: Path
) -> None:
    JournalStore.open(v2_dir, DEPLOYMENT).close()
    JournalStore.open(tmp_path / "fresh", DEPLOYMENT).close()
    assert _schema(v2_dir / "journal.db") == _schema(tmp_path / "fresh" / "journal.db")


def test_v2_migration_that_fails_then_v2_kept_and_the_next_open_finishes(
    v2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = v2_dir / "journal.db"
    schema_before = _schema(db)

    def crash(client_order_id: str) -> int:
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(ids, "order_key", crash)
        with pytest.raises(OperationalError, match="user-defined function raised"):
            JournalStore.open(v2_dir, DEPLOYMENT)
    assert _version(db) == "2" and _schema(db) == schema_before
    with JournalStore.open(v2_dir, DEPLOYMENT) as store:
        assert store.last_seq == V2_LINES
        assert [f["fill_id"] for f in queries.fills(store.conn, client_order_id="c3")] == [
            "F3",
            "G3",
        ]
    assert _version(db) == str(schema.SCHEMA_VERSION)


# Made by the schema-3 release itself (commit 79db042) with small id blocks, see
# data/make_v3_journal.py: opened with the sizes it was written with.
V3_JOURNAL = Path(__file__).parent / "data" / "journal_v3"
V3_GENESIS = "96e5b51c7cd1834e5856db25baf6083b3ac5fd9fecd5ce79885d4ec64d2dcc2b"
V3_LAST_HASH = "2457f5aab9a0fa9f1b9f6e9feb69b9a0bdb21d9510ec42b5d411351682f635d7"
V3_LINES = 307


@pytest.fixture
def v3_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ids, "BUCKET_BITS", 2)
    monkeypatch.setattr(ids, "BLOCK_BITS", 5)
    monkeypatch.setattr(ids, "BUCKETS_PER_BLOCK", 8)
    monkeypatch.setattr(ids, "BLOOM_BITS", 1 << 12)
    out = tmp_path / "state"
    shutil.copytree(V3_JOURNAL, out)
    return out


def _answers(conn: sqlite3.Connection) -> dict[str, object]:
    """What the readers ask of the projections."""
    coids = [f"c{n}" for n in range(32)] + [f"x{n}" for n in range(0, 32, 3)]
    return {
        "orders": queries.orders(conn),
        "open": queries.orders(conn, open_only=True, strategy="s1"),
        "by_status": queries.order_counts_by_status(conn),
        "intents": queries.intents(conn),
        "undecided": queries.intents(conn, undecided_only=True, since_ts=0.0),
        "fills": {c: queries.fills(conn, client_order_id=c) for c in coids},
        "positions": queries.positions(conn),
        "trace": queries.events_for(conn, client_order_id="c7", intent_id="i200004"),
    }


def test_v3_journal_opened_then_migrated_and_every_query_answers_as_before(
    v3_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = v3_dir / "journal.db"
    before = {t: _dump(db, t) for t in ("events", "intents", "orders", "fills", "state")}
    jsonl_before = (v3_dir / "journal.jsonl").read_bytes()
    with JournalReader.open(v3_dir, deployment=DEPLOYMENT) as reader:
        assert reader.meta()["schema_version"] == 3
        answers_before = _answers(reader.conn)
    assert len(answers_before["orders"]) == 55  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING), JournalStore.open(v3_dir, DEPLOYMENT, epoch=4) as s:
        assert (s.last_seq, s.last_hash, s.genesis) == (V3_LINES, V3_LAST_HASH, V3_GENESIS)
        meta = queries.meta(s.conn)
        assert meta["schema_version"] == schema.SCHEMA_VERSION
        assert meta["migrated_from_version"] == "3" and float(meta["migrated_ts"]) > 0
        assert _answers(s.conn) == answers_before
        created = dict(s.conn.execute("SELECT client_order_id, created_seq FROM order_rows"))
    assert "migrated from schema version 3" in caplog.text
    # c0's submitting was seq 3 (its row's seq moved with its cancel); x0 was found by a status
    # naming it only in its data (seq 9); c200000 was submitted at seq 10.
    assert (created["c0"], created["x0"], created["c200000"]) == (3, 9, 10)
    assert {t: _dump(db, t) for t in before} == before
    assert (v3_dir / "journal.jsonl").read_bytes() == jsonl_before


def test_v3_journal_migrated_then_old_orders_and_intents_updated_in_their_rows(
    v3_dir: Path,
) -> None:
    JournalStore.open(v3_dir, DEPLOYMENT).close()
    x3 = dataclasses.replace(status(300003, "order_expired"), client_order_id="x3", intent_id=None)
    with JournalStore.open(v3_dir, DEPLOYMENT) as store:
        assert store.commit([intent(0), intent(29)]) == [2, 261]  # old ids are still known
        store.commit([status(15, "order_expired"), x3, denied(200004, "late"), *notes(40)])
        store.commit([status(1, "order_expired")])
        orders = {o["client_order_id"]: o for o in queries.orders(store.conn)}
        intents = {i["intent_id"]: i for i in queries.intents(store.conn)}
        rows = store.conn.execute("SELECT count(*) FROM order_rows").fetchone()[0]
        assert rows == len(orders) == 55 and len(intents) == 77
    assert orders["c15"]["status"] == orders["x3"]["status"] == orders["c1"]["status"] == "expired"
    assert (intents["i200004"]["decision"], intents["i200004"]["reason"]) == ("denied", "late")
    result = verify_journal(v3_dir / "journal.jsonl")
    assert result.ok and result.lines == V3_LINES + 44


def test_v3_journal_migrated_then_same_schema_as_a_new_journal(
    v3_dir: Path, tmp_path: Path
) -> None:
    JournalStore.open(v3_dir, DEPLOYMENT).close()
    JournalStore.open(tmp_path / "fresh", DEPLOYMENT).close()
    assert _schema(v3_dir / "journal.db") == _schema(tmp_path / "fresh" / "journal.db")


def test_v3_migration_that_fails_then_v3_kept_and_the_next_open_finishes(
    v3_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = v3_dir / "journal.db"
    schema_before = _schema(db)
    dumps_before = {t: _dump(db, t) for t in ("intents", "orders", "ref_keys")}

    def crash(keys: object) -> bytes:
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(ids, "bloom", crash)  # the row filters: the step's last statement
        with pytest.raises(RuntimeError, match="power cut"):
            JournalStore.open(v3_dir, DEPLOYMENT)
    assert _version(db) == "3" and _schema(db) == schema_before
    assert {t: _dump(db, t) for t in dumps_before} == dumps_before
    with JournalStore.open(v3_dir, DEPLOYMENT) as store:
        assert store.last_seq == V3_LINES
        assert len(queries.orders(store.conn)) == 55
    assert _version(db) == str(schema.SCHEMA_VERSION)


# A process that dies by SIGKILL in the middle of the 3 -> 4 step: intents rebuilt, order_rows
# filled and ref_keys written, the row filters being made; no Python clean-up runs.
_KILLED_MID_V4 = """
import os, signal, sys
from pathlib import Path
from tradeplane.journal import ids
from tradeplane.journal.store import JournalStore
ids.BUCKET_BITS, ids.BLOCK_BITS, ids.BUCKETS_PER_BLOCK, ids.BLOOM_BITS = 2, 5, 8, 1 << 12
real_bloom = ids.bloom
def die(keys):
    os.kill(os.getpid(), signal.SIGKILL)
    return real_bloom(keys)
ids.bloom = die
JournalStore.open(Path(sys.argv[1]), sys.argv[2])
"""


def test_v3_migration_killed_mid_step_then_v3_kept_and_the_next_open_finishes(
    v3_dir: Path,
) -> None:
    db = v3_dir / "journal.db"
    schema_before = _schema(db)
    dumps_before = {t: _dump(db, t) for t in ("events", "intents", "orders", "ref_keys")}
    with JournalReader.open(v3_dir, deployment=DEPLOYMENT) as reader:
        answers_before = _answers(reader.conn)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_V4, str(v3_dir), DEPLOYMENT],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert _version(db) == "3" and _schema(db) == schema_before
    assert {t: _dump(db, t) for t in dumps_before} == dumps_before
    with JournalStore.open(v3_dir, DEPLOYMENT) as store:
        assert (store.last_seq, store.last_hash) == (V3_LINES, V3_LAST_HASH)
        assert _answers(store.conn) == answers_before
    assert _version(db) == str(schema.SCHEMA_VERSION)
    result = verify_journal(v3_dir / "journal.jsonl")
    assert result.ok and result.lines == V3_LINES


def test_id_filters_written_by_the_schema_3_release_then_rebuilt_bit_for_bit(
    v3_dir: Path,
) -> None:
    conn = sqlite3.connect(v3_dir / "journal.db")
    try:
        stored = dict(conn.execute("SELECT block, bits FROM id_blooms").fetchall())
        assert len(stored) >= 5
        for block, bits in stored.items():
            assert ids.bloom(ids.block_keys(conn, block)) == bits
    finally:
        conn.close()
