"""The journal's single writer: SQLite (the record) plus an append-only, hash-chained JSONL.

A batch is one SQLite transaction (events, projections, state, meta); only after it commits are
its lines appended to ``journal.jsonl`` in one write. A crash between the two leaves the JSONL
short, and the next ``open`` re-appends the missing lines from ``events.line``; a torn last line
is cut off first. Sequence number, last hash and the JSONL's size stay in memory, so an append
never re-reads the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tradeplane.core.errors import OperationalError, TransientError
from tradeplane.journal import files, schema
from tradeplane.journal.files import write_all
from tradeplane.journal.records import GENESIS_HASH, JournalRecord, StateWrite, encode_line

log = logging.getLogger(__name__)

_REAPPEND_BATCH = 10_000  # lines per write when re-appending from the database


class JournalStore:
    """Owns ``<state_dir>`` while open; see the module docstring for the write protocol."""

    def __init__(
        self,
        state_dir: Path,
        deployment: str,
        fsync: bool,
        lock_fd: int,
        conn: sqlite3.Connection,
        jsonl_fd: int,
        last_seq: int,
        last_hash: str,
        jsonl_size: int,
    ) -> None:
        self.state_dir = state_dir
        self.deployment = deployment
        self.fsync = fsync
        self.conn = conn
        self._lock_fd = lock_fd
        self._jsonl_fd = jsonl_fd
        self._last_seq = last_seq
        self._last_hash = last_hash
        self._jsonl_seq = last_seq  # last seq known to be in the JSONL
        self._jsonl_size = jsonl_size  # bytes known to be good in the JSONL
        self._jsonl_dirty = False  # a failed append may have left a fragment after _jsonl_size
        self._mutex = threading.Lock()
        self._closed = False

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path, deployment: str, *, fsync: bool = True) -> JournalStore:
        if not isinstance(deployment, str) or not deployment:
            raise ValueError("deployment must be a non-empty string")
        state_dir = files.prepare_state_dir(Path(state_dir))
        lock_fd = files.acquire_lock(state_dir / files.LOCK_NAME)
        conn: sqlite3.Connection | None = None
        jsonl_fd: int | None = None
        try:
            conn = _open_db(state_dir, deployment, fsync)
            last_seq, last_hash = _check_record(conn, state_dir / files.DB_NAME)
            jsonl_fd, size = _open_and_repair_jsonl(conn, state_dir, last_seq, fsync)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(state_dir / (files.DB_NAME + suffix), files.FILE_MODE)
            return cls(
                state_dir, deployment, fsync, lock_fd, conn, jsonl_fd, last_seq, last_hash, size
            )
        except BaseException:
            if jsonl_fd is not None:
                os.close(jsonl_fd)
            if conn is not None:
                conn.close()
            os.close(lock_fd)  # releases the flock
            raise

    # --- properties ---------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def last_hash(self) -> str:
        return self._last_hash

    @property
    def db_path(self) -> Path:
        return self.state_dir / files.DB_NAME

    @property
    def jsonl_path(self) -> Path:
        return self.state_dir / files.JSONL_NAME

    @property
    def closed(self) -> bool:
        return self._closed

    # --- writing ------------------------------------------------------------------------------

    def commit(
        self, records: Sequence[JournalRecord], state: Sequence[StateWrite] = ()
    ) -> list[int]:
        """Durably record a batch; returns each record's seq (the existing one for a duplicate
        ``event_id``, so a retried batch is a no-op that reports the same seqs)."""
        with self._mutex:
            if self._closed:
                raise OperationalError(f"journal {self.state_dir} is closed")
            records = list(records)
            for r in records:
                if r.deployment != self.deployment:
                    raise ValueError(
                        f"journal {r.kind!r} {r.event_id!r}: deployment {r.deployment!r} is not "
                        f"this journal's {self.deployment!r}"
                    )
            state_rows = [schema.state_params(w) for w in state]
            if not records and not state_rows:
                return []
            seqs, new_lines, seq, last_hash = self._commit_db(records, state_rows)
            self._last_seq, self._last_hash = seq, last_hash
            if new_lines or self._jsonl_dirty or self._jsonl_seq < seq:
                self._append_jsonl(new_lines)
            return seqs

    def _commit_db(
        self, records: Sequence[JournalRecord], state_rows: list[tuple[str, str, str, float]]
    ) -> tuple[list[int], list[str], int, str]:
        conn = self.conn
        seq, last_hash = self._last_seq, self._last_hash
        seqs: list[int] = []
        new_lines: list[str] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                known: dict[str, int] = {}
                if records:
                    ids = json.dumps([r.event_id for r in records])
                    known = dict(
                        conn.execute(
                            "SELECT e.event_id, e.seq FROM json_each(?) AS j"
                            " JOIN events AS e ON e.event_id = j.value",
                            (ids,),
                        ).fetchall()
                    )
                rows = []
                fresh: list[tuple[JournalRecord, int]] = []
                for r in records:
                    s = known.get(r.event_id)
                    if s is None:
                        seq += 1
                        line, last_hash = encode_line(r, seq, last_hash)
                        known[r.event_id] = s = seq
                        new_lines.append(line)
                        fresh.append((r, seq))
                        rows.append(
                            (
                                seq,
                                r.event_id,
                                r.kind,
                                float(r.ts),
                                r.deployment,
                                r.strategy,
                                r.intent_id,
                                r.client_order_id,
                                line,
                            )
                        )
                    seqs.append(s)
                if rows:
                    conn.executemany(schema.INSERT_EVENT, rows)
                    for r, s in fresh:
                        schema.project(conn, r, s)
                    conn.executemany(
                        schema.UPSERT_META, (("last_seq", str(seq)), ("last_hash", last_hash))
                    )
                if state_rows:
                    conn.executemany(schema.UPSERT_STATE, state_rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TransientError(f"journal {self.db_path}: {exc}") from exc
            raise OperationalError(f"journal {self.db_path}: {exc}") from exc
        return seqs, new_lines, seq, last_hash

    def _append_jsonl(self, new_lines: list[str]) -> None:
        """Append after the commit. If an earlier append failed, first cut whatever fragment it
        left and re-append everything after the last good line from the database."""
        fd = self._jsonl_fd
        try:
            if self._jsonl_dirty or self._jsonl_seq + len(new_lines) != self._last_seq:
                os.ftruncate(fd, self._jsonl_size)
                self._jsonl_size += _reappend_from_db(self.conn, fd, self._jsonl_seq)
            else:
                self._jsonl_size += write_all(fd, ("\n".join(new_lines) + "\n").encode())
            if self.fsync:
                files.fsync_file(fd)
        except OSError as exc:
            self._jsonl_dirty = True
            raise TransientError(
                f"journal {self.jsonl_path}: append failed after the batch committed to "
                f"{self.db_path} (seq {self._last_seq}); it is repaired by the next commit or "
                f"open: {exc}"
            ) from exc
        self._jsonl_dirty = False
        self._jsonl_seq = self._last_seq

    # --- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            try:
                os.close(self._jsonl_fd)
                self.conn.close()
            finally:
                os.close(self._lock_fd)

    def __enter__(self) -> JournalStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- helpers for open -------------------------------------------------------------------------


def _connect(db_path: Path, fsync: bool) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in commit).
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
    # A large page cache keeps the event_id index hot as the journal grows (random-key inserts),
    # and the WAL is trimmed after checkpoints instead of staying at its high-water mark.
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    return conn


def _open_db(state_dir: Path, deployment: str, fsync: bool) -> sqlite3.Connection:
    db_path = state_dir / files.DB_NAME
    jsonl_path = state_dir / files.JSONL_NAME
    created = not db_path.exists()
    if created and jsonl_path.exists() and jsonl_path.stat().st_size > 0:
        raise OperationalError(
            f"{db_path} is missing but {jsonl_path} has journal lines: the database was lost; "
            "refusing to start a new journal over it (restore journal.db from a backup)"
        )
    if created:
        # Created 0600 before SQLite sees it: SQLite gives -wal and -shm the database's mode.
        os.close(files.open_private(db_path, os.O_RDWR | os.O_CREAT | os.O_EXCL))
    else:
        files.check_sqlite_header(db_path)
        if stat.S_IMODE(db_path.stat().st_mode) != files.FILE_MODE:
            os.chmod(db_path, files.FILE_MODE)
    conn = _connect(db_path, fsync)
    try:
        try:
            empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        except sqlite3.DatabaseError as exc:
            raise OperationalError(f"{db_path} cannot be opened as a journal: {exc}") from exc
        if empty:
            # Only an empty database (never written, or a crash during creation) is initialised;
            # a JSONL with content means the record was lost and must not be started over.
            if jsonl_path.exists() and jsonl_path.stat().st_size > 0:
                raise OperationalError(
                    f"{db_path} is empty but {jsonl_path} has journal lines: the database was "
                    "lost or replaced; refusing to start a new journal over it"
                )
            _initialise(conn, deployment)
            if created:
                files.fsync_dir(state_dir)
        else:
            schema.check_meta(conn, db_path, deployment)
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _initialise(conn: sqlite3.Connection, deployment: str) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in schema.DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany(
            schema.UPSERT_META,
            (
                ("format", schema.FORMAT),
                ("schema_version", str(schema.SCHEMA_VERSION)),
                ("deployment", deployment),
                ("last_seq", "0"),
                ("last_hash", GENESIS_HASH),
            ),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _check_record(conn: sqlite3.Connection, db_path: Path) -> tuple[int, str]:
    """meta's last_seq/last_hash must describe the last event row (written in one transaction)."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        row = conn.execute("SELECT seq, line FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.DatabaseError as exc:
        raise OperationalError(f"{db_path} is damaged: {exc}") from exc
    seq, last_hash = int(meta["last_seq"]), meta["last_hash"]
    row_seq, row_hash = (0, GENESIS_HASH) if row is None else (row[0], json.loads(row[1])["hash"])
    if (row_seq, row_hash) != (seq, last_hash):
        raise OperationalError(
            f"{db_path} is inconsistent: meta says last seq {seq}, events end at seq {row_seq}"
            f"{'' if row_seq != seq else ' with a different hash'}; refusing to start"
        )
    return seq, last_hash


def _reappend_from_db(conn: sqlite3.Connection, fd: int, after_seq: int) -> int:
    written = 0
    cur = conn.execute("SELECT line FROM events WHERE seq > ? ORDER BY seq", (after_seq,))
    while rows := cur.fetchmany(_REAPPEND_BATCH):
        written += write_all(fd, "".join(r[0] + "\n" for r in rows).encode())
    return written


def _open_and_repair_jsonl(
    conn: sqlite3.Connection, state_dir: Path, db_seq: int, fsync: bool
) -> tuple[int, int]:
    """Bring journal.jsonl in line with the database (the record); returns (fd, size)."""
    path = state_dir / files.JSONL_NAME
    created = not path.exists()
    fd = files.open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        # Decide everything before changing anything: a refusal must leave the file as found.
        cut = size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            cut = files.last_line_start(fd, size)
        file_seq = 0
        if cut:
            start = files.last_line_start(fd, cut - 1)
            last = os.pread(fd, cut - 1 - start, start)
            file_seq = _check_last_line(conn, path, last, start, db_seq)
        changed = cut != size or file_seq < db_seq
        if cut != size:
            log.warning(
                "%s: cutting a torn last line (%d bytes at offset %d)", path, size - cut, cut
            )
            os.ftruncate(fd, cut)
            size = cut
        if file_seq < db_seq:
            log.warning("%s: re-appending seq %d..%d from the database", path, file_seq + 1, db_seq)
            size += _reappend_from_db(conn, fd, file_seq)
        if changed and fsync:
            files.fsync_file(fd)
        if created and fsync:
            files.fsync_dir(state_dir)
        return fd, size
    except BaseException:
        os.close(fd)
        raise


def _check_last_line(
    conn: sqlite3.Connection, path: Path, line: bytes, offset: int, db_seq: int
) -> int:
    where = f"{path}: last complete line (byte offset {offset})"
    try:
        obj = json.loads(line)
        seq = obj["seq"]
        if not isinstance(seq, int):
            raise TypeError("seq is not an integer")
    except (ValueError, KeyError, TypeError) as exc:
        raise OperationalError(f"{where} is not a journal line ({exc}); refusing to start") from exc
    if seq > db_seq:
        raise OperationalError(
            f"{where} is seq {seq} but the database ends at seq {db_seq}: journal.jsonl has more "
            "lines than journal.db; refusing to start"
        )
    row = conn.execute("SELECT line FROM events WHERE seq = ?", (seq,)).fetchone()
    if row is None or row[0].encode() != line:
        raise OperationalError(
            f"{where}, seq {seq} (line {seq}), disagrees with journal.db's seq {seq} "
            f"(hash {obj.get('hash')!r}); refusing to start"
        )
    return seq
