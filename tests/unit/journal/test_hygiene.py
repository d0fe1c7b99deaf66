"""Persistence hygiene: modes, atomic whole-file writes, and failing closed on damaged files."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CORRUPTION_SEEDS, garbage, seed_id
from tests.unit.journal.factories import DEPLOYMENT, notes
from tradeplane.core.errors import OperationalError
from tradeplane.journal import files, recovery
from tradeplane.journal.reader import verify_journal
from tradeplane.journal.store import JournalStore


def make(state_dir: Path, n: int, batch: int = 50) -> bytes:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        for start in range(0, n, batch):
            store.commit(notes(min(batch, n - start), start=start))
    return (state_dir / "journal.jsonl").read_bytes()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def refused(state_dir: Path, pattern: str) -> OperationalError:
    """Open must fail closed with ``pattern`` and leave every file as it was (SQLite may leave
    an empty WAL of its own beside a database it could not read)."""
    before = {p.name: p.read_bytes() for p in state_dir.iterdir() if p.is_file()}
    with pytest.raises(OperationalError, match=pattern) as info:
        JournalStore.open(state_dir, DEPLOYMENT)
    after = {p.name: p.read_bytes() for p in state_dir.iterdir() if p.is_file()}
    assert {name: after[name] for name in before} == before
    assert after.get("journal.db-wal", b"") == before.get("journal.db-wal", b"")
    return info.value


# --- modes and whole-file writes ------------------------------------------------------------


def test_an_existing_state_dir_with_a_loose_mode_is_tightened(state_dir: Path) -> None:
    state_dir.mkdir(mode=0o755)
    os.chmod(state_dir, 0o755)
    with JournalStore.open(state_dir, DEPLOYMENT):
        assert mode(state_dir) == 0o700


def test_atomic_write_replaces_the_whole_file_privately(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"old")
    files.atomic_write(path, lambda fd: os.write(fd, b"new contents"))
    assert path.read_bytes() == b"new contents" and mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"old")

    def fail_halfway(fd: int) -> None:
        os.write(fd, b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        files.atomic_write(path, fail_halfway)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_a_lost_jsonl_is_rebuilt_whole_or_not_at_all(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = make(state_dir, 120)
    (state_dir / "journal.jsonl").unlink()
    real = recovery.reappend_from_db

    def crash(conn: sqlite3.Connection, fd: int, after_seq: int) -> int:
        os.write(fd, b'{"client_order_id":null')
        raise KeyboardInterrupt  # the process dies mid-rebuild

    monkeypatch.setattr(recovery, "reappend_from_db", crash)
    with pytest.raises(KeyboardInterrupt):
        JournalStore.open(state_dir, DEPLOYMENT)
    assert not (state_dir / "journal.jsonl").exists()  # no half-built file in its place
    (state_dir / ".journal.jsonl.tmp").write_bytes(b"left by a crash")  # as a kill would
    monkeypatch.setattr(recovery, "reappend_from_db", real)
    with JournalStore.open(state_dir, DEPLOYMENT):
        assert (state_dir / "journal.jsonl").read_bytes() == original
        assert not (state_dir / ".journal.jsonl.tmp").exists()
        assert mode(state_dir / "journal.jsonl") == 0o600


# --- journal.db ---------------------------------------------------------------------------------


def corrupt(path: Path, offset: int, n: int, rng: random.Random) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(garbage(rng, n))


@pytest.mark.parametrize("seed", CORRUPTION_SEEDS[:1], ids=seed_id)
def test_a_damaged_schema_page_is_an_operational_error_naming_the_file(
    state_dir: Path, seed: int
) -> None:
    make(state_dir, 500)
    # page 1 after the header: sqlite_master
    corrupt(state_dir / "journal.db", 100, 3000, random.Random(seed))
    refused(state_dir, r"journal\.db .*(malformed|not a database|damaged)")


@pytest.mark.parametrize("seed", CORRUPTION_SEEDS[:1], ids=seed_id)
def test_damaged_recent_pages_are_an_operational_error_naming_the_file(
    state_dir: Path, seed: int
) -> None:
    make(state_dir, 3000)
    db = state_dir / "journal.db"
    size = db.stat().st_size
    rng = random.Random(seed)
    for page in range(size // 4096 - 8, size // 4096):
        corrupt(db, page * 4096 + 8, 64, rng)
    refused(state_dir, r"journal\.db .*(malformed|damaged|inconsistent)")


def test_a_tampered_recent_event_breaks_the_databases_chain(state_dir: Path) -> None:
    make(state_dir, 300)
    conn = sqlite3.connect(state_dir / "journal.db")
    conn.execute("UPDATE events SET line = replace(line, '\"i\":290', '\"i\":999') WHERE seq = 291")
    conn.commit()
    conn.close()
    refused(state_dir, r"journal\.db is damaged: the hash chain of its events is broken at seq 291")


class _BrokenConnection:
    """Stands in for the writer's connection once its file went bad under it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        if sql.startswith("INSERT INTO events"):
            raise sqlite3.DatabaseError("database disk image is malformed")
        return self._conn.executemany(sql, rows)


def test_damage_found_while_committing_is_an_operational_error(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(3))
        real = store.conn
        store.conn = _BrokenConnection(real)  # type: ignore[assignment]
        with pytest.raises(OperationalError, match=r"journal\.db: database disk image"):
            store.commit(notes(2, start=3))
        store.conn = real
        assert store.last_seq == 3 and not real.in_transaction
        assert store.commit(notes(2, start=3)) == [4, 5]


# --- journal.jsonl ------------------------------------------------------------------------------


def test_a_broken_chain_near_the_end_of_the_jsonl_is_refused(state_dir: Path) -> None:
    make(state_dir, 200)
    path = state_dir / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[190] = lines[190].replace(b'"i":190', b'"i":191')
    path.write_bytes(b"".join(lines))
    error = refused(state_dir, r"journal\.jsonl: the hash chain is broken at line 191")
    assert "hash mismatch" in str(error) and "journal verify" in str(error)


def test_a_jsonl_missing_its_first_lines_is_refused(state_dir: Path) -> None:
    make(state_dir, 20)
    path = state_dir / "journal.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[5:]))
    refused(state_dir, r"journal\.jsonl: the hash chain is broken at line 1 .*prev does not link")


def test_a_jsonl_with_a_deleted_line_near_the_end_is_refused(state_dir: Path) -> None:
    make(state_dir, 100)
    path = state_dir / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[95]
    path.write_bytes(b"".join(lines))
    refused(state_dir, r"journal\.jsonl: the hash chain is broken at line 96")


@pytest.mark.parametrize(
    "tail",
    [b"PK\x03\x04 not a journal", b"\x00\x00\x00garbage", b"hello world"],
)
def test_foreign_bytes_after_the_last_line_are_refused_not_cut(
    state_dir: Path, tail: bytes
) -> None:
    make(state_dir, 10)
    with open(state_dir / "journal.jsonl", "ab") as f:
        f.write(tail)
    refused(state_dir, r"journal\.jsonl ends in \d+ bytes .* not a journal line")


def test_a_foreign_file_without_newlines_is_refused_not_replaced(state_dir: Path) -> None:
    make(state_dir, 10)
    (state_dir / "journal.jsonl").write_bytes(b"\x89PNG\r\x1a binary, no newline")
    refused(state_dir, r"journal\.jsonl ends in 25 bytes at offset 0 that are not a journal line")


def test_a_jsonl_that_is_a_directory_is_refused(state_dir: Path) -> None:
    make(state_dir, 3)
    (state_dir / "journal.jsonl").unlink()
    (state_dir / "journal.jsonl").mkdir()
    with pytest.raises(OperationalError, match=r"journal\.jsonl is not a regular file"):
        JournalStore.open(state_dir, DEPLOYMENT)


def test_a_torn_last_line_is_cut_and_says_a_crash_left_it(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = make(state_dir, 10)
    path = state_dir / "journal.jsonl"
    path.write_bytes(original + original.splitlines(keepends=True)[3][:40])
    with caplog.at_level(logging.WARNING), JournalStore.open(state_dir, DEPLOYMENT):
        pass
    assert path.read_bytes() == original
    assert "torn last line" in caplog.text and "crash" in caplog.text


def test_open_checks_the_tail_without_reading_the_whole_file(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(state_dir, 5000, batch=500)
    size = (state_dir / "journal.jsonl").stat().st_size
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        read.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.last_seq == 5000
    assert sum(read) <= recovery.TAIL_WINDOW < size


# --- verify ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 3])
def test_verify_reports_the_first_of_several_bad_lines(state_dir: Path, workers: int) -> None:
    make(state_dir, 600)
    path = state_dir / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[450] = b"not json at all\n"
    lines[120] = lines[120].replace(b'"i":120', b'"i":121')
    path.write_bytes(b"".join(lines))
    result = verify_journal(path, workers=workers)
    assert (result.ok, result.first_bad_line, result.lines) == (False, 121, 120)
    assert f"line {result.first_bad_line}: {result.reason}" == "line 121: hash mismatch at seq 121"


def test_a_state_dir_that_cannot_be_made_is_an_operational_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OperationalError, match=r"state dir .*file/state cannot be opened"):
        JournalStore.open(tmp_path / "file" / "state", DEPLOYMENT)
