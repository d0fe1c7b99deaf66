"""The journal's single writer: SQLite (the record) plus an append-only, hash-chained JSONL.

A batch is one SQLite transaction (events, projections, state, meta), committed with
``synchronous=FULL`` (the WAL is fsynced) when ``fsync`` is on, so a batch is durable in SQLite
before ``commit`` returns. Only after it commits are its lines appended to ``journal.jsonl`` in
one write (before ``commit`` returns, so ``tail -f`` shows them at once); that mirror is made
durable shortly after, off the commit path (``checkpoint.MirrorSyncer``, and always at
``close``). A crash before then leaves the JSONL short of the database, and the next ``open``
re-appends the missing lines from ``events.line``; a torn last line is cut off first
(``recovery`` says what else open checks and refuses). Sequence number, last hash and the
JSONL's size stay in memory, so an append never re-reads the file, and a batch costs the same
whatever the journal's size: no index the batch writes takes inserts at random places (event,
intent and order ids go through the seq-bucketed tables of ``ids``, which also de-duplicate
event ids and find the intents and orders rows by id), and WAL checkpoints run off the commit
path (``checkpoint``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tradeplane.core.errors import (
    JournalLostError,
    OperationalError,
    StaleEpochError,
    TransientError,
)
from tradeplane.core.fencing import FENCE_SCOPE, identity_mismatch
from tradeplane.core.run_record import JournalIdentity
from tradeplane.journal import checkpoint, files, ids, projections, recovery, schema
from tradeplane.journal.files import write_all
from tradeplane.journal.ids import (
    INSERT_EVENT_KEY,
    INSERT_REF_KEY,
    EventIds,
    RowIds,
    event_key,
    intent_key,
    order_key,
)
from tradeplane.journal.records import (
    JournalRecord,
    StateWrite,
    encode_valid,
    validate_record,
)

log = logging.getLogger(__name__)


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
        self.epoch: int | None = None  # this writer's journal epoch (see ``open``)
        self.genesis = _ensure_genesis(conn)
        self.fences: dict[str, int] = _read_fences(conn)
        self._ids = EventIds(conn, last_seq)
        self._rows = RowIds(conn, last_seq)
        self._checkpointer: checkpoint.Checkpointer | None = None  # started by ``open``
        self._syncer: checkpoint.MirrorSyncer | None = None  # started by ``open`` when fsync
        self.last_sql_commit_ms = 0.0  # the last batch's COMMIT statement (its WAL fsync)

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        state_dir: Path,
        deployment: str,
        *,
        fsync: bool = True,
        expect: JournalIdentity | None = None,
        epoch: int | None = None,
    ) -> JournalStore:
        """``expect``: the identity of the journal a running deployment writes to; anything
        else (no journal there, another one, fewer lines than acknowledged) raises
        ``JournalLostError`` and nothing is created. ``epoch``: this writer's journal epoch,
        recorded in the database; it must be newer than the one recorded, and a writer whose
        epoch has been overtaken there refuses to commit (``StaleEpochError``)."""
        if not isinstance(deployment, str) or not deployment:
            raise ValueError("deployment must be a non-empty string")
        if not (Path(state_dir) / files.DB_NAME).is_file():
            # Checked before anything is created: a lost journal is never started over.
            lost = identity_mismatch(expect, found=False, genesis="", last_seq=0)
            if lost is not None:
                raise JournalLostError(f"journal_lost: {state_dir}: {lost}")
        try:
            state_dir = files.prepare_state_dir(Path(state_dir))
            lock_fd = files.acquire_lock(state_dir / files.LOCK_NAME)
        except OSError as exc:
            raise OperationalError(f"state dir {state_dir} cannot be opened: {exc}") from exc
        conn: sqlite3.Connection | None = None
        jsonl_fd: int | None = None
        try:
            conn = recovery.open_db(state_dir, deployment, fsync)
            last_seq, last_hash = recovery.check_record(conn, state_dir / files.DB_NAME)
            jsonl_fd, size = recovery.open_jsonl(conn, state_dir, last_seq, fsync)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(state_dir / (files.DB_NAME + suffix), files.FILE_MODE)
            store = cls(
                state_dir, deployment, fsync, lock_fd, conn, jsonl_fd, last_seq, last_hash, size
            )
            lost = identity_mismatch(expect, found=True, genesis=store.genesis, last_seq=last_seq)
            if lost is not None:
                raise JournalLostError(f"journal_lost: {state_dir}: {lost}")
            if epoch is not None:
                _take_epoch(conn, state_dir, epoch)
                store.epoch = epoch
            conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint.BACKSTOP_PAGES}")
            store._checkpointer = checkpoint.Checkpointer(store.db_path, fsync)
            if fsync:
                store._syncer = checkpoint.MirrorSyncer(jsonl_fd, store.jsonl_path)
            return store
        except BaseException as exc:
            if jsonl_fd is not None:
                os.close(jsonl_fd)
            if conn is not None:
                conn.close()
            os.close(lock_fd)  # releases the flock
            if isinstance(exc, sqlite3.DatabaseError):
                raise OperationalError(
                    f"{state_dir / files.DB_NAME} is damaged: {exc}; refusing to start"
                ) from exc
            if isinstance(exc, OSError):
                raise OperationalError(f"state dir {state_dir} cannot be opened: {exc}") from exc
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
            for w in state:
                if w.scope == FENCE_SCOPE:
                    self.fences[w.key] = int(w.data["epoch"])
            if new_lines or self._jsonl_dirty or self._jsonl_seq < seq:
                self._append_jsonl(new_lines)
            if self._checkpointer is not None:
                self._checkpointer.committed()
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
                if self.epoch is not None:
                    self._check_epoch()
                event_ids = [r.event_id for r in records]
                keys = [event_key(e) for e in event_ids]
                known = self._ids.find(conn, event_ids, keys)
                rows: list[tuple[Any, ...]] = []
                key_rows: list[tuple[int, int, int]] = []
                ref_rows: list[tuple[int, int, int]] = []
                fresh: list[JournalRecord] = []
                first = seq + 1
                bucket_bits = ids.BUCKET_BITS
                add_row, add_key, add_ref = rows.append, key_rows.append, ref_rows.append
                for r, event_id, key in zip(records, event_ids, keys, strict=True):
                    s = known.get(event_id) if known else None
                    if s is None:
                        validate_record(r)
                        seq += 1
                        line, last_hash = encode_valid(r, seq, last_hash)
                        known[event_id] = s = seq
                        fresh.append(r)
                        new_lines.append(line)
                        intent, coid = r.intent_id, r.client_order_id
                        add_row(
                            (
                                seq,
                                event_id,
                                str(r.kind),  # plain text: sqlite3 binds a str subclass slowly
                                float(r.ts),
                                r.deployment,
                                r.strategy,
                                intent,
                                coid,
                                line,
                            )
                        )
                        bucket = seq >> bucket_bits
                        add_key((bucket, key, seq))
                        if intent is not None:
                            add_ref((bucket, intent_key(intent), seq))
                        if coid is not None:
                            add_ref((bucket, order_key(coid), seq))
                    seqs.append(s)
                if rows:
                    conn.executemany(schema.INSERT_EVENT, rows)
                    conn.executemany(INSERT_EVENT_KEY, key_rows)
                    if ref_rows:
                        conn.executemany(INSERT_REF_KEY, ref_rows)
                    self._ids.stage(conn, [(k, q) for _, k, q in key_rows], seq)
                    projections.project_all(conn, fresh, first, self._rows)
                    conn.executemany(
                        schema.UPSERT_META, (("last_seq", str(seq)), ("last_hash", last_hash))
                    )
                if state_rows:
                    conn.executemany(schema.UPSERT_STATE, state_rows)
                committing = time.perf_counter()
                conn.execute("COMMIT")
                self.last_sql_commit_ms = (time.perf_counter() - committing) * 1000.0
            except BaseException:
                self._ids.rolled_back()
                self._rows.rolled_back()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._ids.committed()
            self._rows.committed()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TransientError(f"journal {self.db_path}: {exc}") from exc
            raise OperationalError(f"journal {self.db_path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # e.g. "database disk image is malformed"
            raise OperationalError(
                f"journal {self.db_path}: {exc}; the batch was not committed"
            ) from exc
        return seqs, new_lines, seq, last_hash

    def _check_epoch(self) -> None:
        """Inside the batch's transaction: a journal opened since with a newer epoch owns the
        record now (one indexed read per batch, so it costs nothing measurable)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'journal_epoch'").fetchone()
        newest = int(row[0]) if row else 0
        if newest > (self.epoch or 0):
            raise StaleEpochError(
                f"stale_epoch: journal epoch {self.epoch} of {self.state_dir} was replaced by "
                f"epoch {newest}: this journal writes no more",
                "journal",
            )

    def identity(self) -> JournalIdentity:
        return JournalIdentity(self.genesis, self.epoch or 0, self._last_seq)

    def _append_jsonl(self, new_lines: list[str]) -> None:
        """Append after the commit. If an earlier append failed, first cut whatever fragment it
        left and re-append everything after the last good line from the database."""
        fd = self._jsonl_fd
        try:
            if self._jsonl_dirty or self._jsonl_seq + len(new_lines) != self._last_seq:
                os.ftruncate(fd, self._jsonl_size)
                self._jsonl_size += recovery.reappend_from_db(self.conn, fd, self._jsonl_seq)
            else:
                self._jsonl_size += write_all(fd, ("\n".join(new_lines) + "\n").encode())
        except OSError as exc:
            self._jsonl_dirty = True
            raise TransientError(
                f"journal {self.jsonl_path}: append failed after the batch committed to "
                f"{self.db_path} (seq {self._last_seq}); it is repaired by the next commit or "
                f"open: {exc}"
            ) from exc
        self._jsonl_dirty = False
        self._jsonl_seq = self._last_seq
        if self._syncer is not None:
            self._syncer.written()

    def background_runs(self, which: str) -> list[tuple[float, float]]:
        """Recent runs of the ``checkpoint`` or JSONL ``sync`` thread: (wall-clock start, ms)."""
        worker = self._checkpointer if which == "checkpoint" else self._syncer
        return list(worker.runs) if worker is not None else []

    # --- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            try:
                if self._checkpointer is not None:
                    self._checkpointer.close()  # first: the last connection closed checkpoints
                if self._syncer is not None:
                    self._syncer.close()  # its last fdatasync, before the fd is closed
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


def _ensure_genesis(conn: sqlite3.Connection) -> str:
    """The journal's fingerprint, the same in every copy of it and different in any other
    journal: drawn at random when the journal is first opened (two journals may well begin
    with the same first line), or, for a journal written before genesis was kept, the hash of
    its first line. Kept in ``meta``."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
    if row:
        return str(row[0])
    first = conn.execute("SELECT line FROM events WHERE seq = 1").fetchone()
    genesis = str(json.loads(first[0])["hash"]) if first else secrets.token_hex(32)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(schema.UPSERT_META, ("genesis", genesis))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return genesis


def _read_fences(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT key, data FROM state WHERE scope = ?", (FENCE_SCOPE,))
    return {key: int(json.loads(data)["epoch"]) for key, data in rows.fetchall()}


def _take_epoch(conn: sqlite3.Connection, state_dir: Path, epoch: int) -> None:
    """Record ``epoch`` as the journal's; refused when a journal as new or newer opened it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'journal_epoch'").fetchone()
        newest = int(row[0]) if row else 0
        if epoch <= newest:
            raise StaleEpochError(
                f"stale_epoch: {state_dir} was opened by journal epoch {newest}; epoch {epoch} "
                "is not newer: refusing to write",
                "journal",
            )
        conn.execute(schema.UPSERT_META, ("journal_epoch", str(epoch)))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
