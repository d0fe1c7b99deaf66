"""Opening a state dir: fail closed on foreign or damaged files, repair only what a crash leaves.

Repaired, each with a warning in the log:

* a torn last line of ``journal.jsonl`` (a write a crash interrupted): cut off, but only when
  the fragment looks like one, i.e. the start of a journal line or zero bytes;
* lines missing at the end of ``journal.jsonl`` (committed to ``journal.db``, not yet
  appended): re-appended from ``events.line``; a missing ``journal.jsonl`` is rebuilt from the
  database into a temporary file that is renamed into place.

Refused with an ``OperationalError`` that names the file and what is wrong, leaving every file as
found: a database that is not SQLite, is truncated, is damaged where open reads it, is another
program's or another deployment's, or whose ``meta`` disagrees with its events; a broken hash
chain in the database's last ``CHAIN_ROWS`` events or in ``journal.jsonl``'s last
``TAIL_WINDOW`` bytes; a ``journal.jsonl`` that ends in something other than a torn line, whose
last line is not the database's line of that seq, or that has more lines than the database.

Open reads a bounded amount whatever the journal's size. Damage further back is found by
``tradeplane journal verify`` (the whole chain) and SQLite's ``PRAGMA quick_check``, which take
time in proportion to the journal.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from pathlib import Path

from tradeplane import durable
from tradeplane.core.errors import OperationalError
from tradeplane.journal import files, migrate, schema
from tradeplane.journal.files import write_all
from tradeplane.journal.records import GENESIS_HASH, LineChecker, line_anchor

log = logging.getLogger(__name__)

CHAIN_ROWS = 256  # the database's last events whose chain open checks
TAIL_WINDOW = 64 * 1024  # bytes at the end of journal.jsonl that open reads and checks
_REAPPEND_BATCH = 10_000  # lines per write when re-appending from the database
_LINE_START = b'{"client_order_id":'  # every line's first key (keys are sorted)


# --- the database -------------------------------------------------------------------------------


def connect(db_path: Path, fsync: bool) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in commit).
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
    # A large page cache keeps the event_id index hot as the journal grows (random-key inserts),
    # and the WAL is trimmed after checkpoints instead of staying at its high-water mark.
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    # The projections' id lookups (an order's row for its fill, an intent's for its decision)
    # land on pages the stream of new events has pushed out of the page cache; read through a
    # memory map they cost a page-table walk instead of a read() call and a copy (at 1M lines,
    # a batch's updates went from about 9 ms to 2). SQLite only reads through the map (writes
    # go to the WAL as before, so durability is unchanged); 2 GiB is the usual compiled cap.
    conn.execute("PRAGMA mmap_size = 2147483648")
    return conn


def open_db(state_dir: Path, deployment: str, fsync: bool) -> sqlite3.Connection:
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
        if not db_path.is_file():
            raise OperationalError(f"{db_path} is not a regular file: refusing to start")
        files.check_sqlite_header(db_path)
        if stat.S_IMODE(db_path.stat().st_mode) != files.FILE_MODE:
            os.chmod(db_path, files.FILE_MODE)
    try:
        conn = connect(db_path, fsync)
    except sqlite3.DatabaseError as exc:
        raise OperationalError(f"{db_path} cannot be opened: {exc}; refusing to start") from exc
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
                durable.fsync_dir(state_dir)
        else:
            meta = schema.check_meta(conn, db_path, deployment, older_ok=True)
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            migrate.migrate(conn, db_path, int(meta["schema_version"]))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise OperationalError(f"{db_path} is damaged: {exc}; refusing to start") from exc
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


def check_record(conn: sqlite3.Connection, db_path: Path) -> tuple[int, str]:
    """The database's (last seq, last hash), once its last events are shown to chain and
    ``meta`` to describe the last of them (they are written in one transaction)."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        rows = conn.execute(
            "SELECT seq, line FROM events ORDER BY seq DESC LIMIT ?", (CHAIN_ROWS,)
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise OperationalError(f"{db_path} is damaged: {exc}; refusing to start") from exc
    try:
        seq, last_hash = int(meta["last_seq"]), meta["last_hash"]
    except (KeyError, ValueError) as exc:
        raise OperationalError(
            f"{db_path} is damaged: meta has no valid last_seq/last_hash ({exc!r}); refusing to "
            "start"
        ) from exc
    rows.reverse()
    row_seq, row_hash = (rows[-1][0], _check_db_chain(db_path, rows)) if rows else (0, GENESIS_HASH)
    if (row_seq, row_hash) != (seq, last_hash):
        raise OperationalError(
            f"{db_path} is inconsistent: meta says last seq {seq}, events end at seq {row_seq}"
            f"{'' if row_seq != seq else ' with a different hash'}; refusing to start"
        )
    return seq, last_hash


def _check_db_chain(db_path: Path, rows: list[tuple[int, str]]) -> str:
    """The hash of the last of ``rows`` (consecutive events, oldest first) once they chain."""
    lines = [(line + "\n").encode() for _, line in rows]
    first = rows[0][0]
    anchor = (0, GENESIS_HASH) if first == 1 else line_anchor(lines[0])
    if anchor is None or anchor[0] != first - 1:
        raise OperationalError(
            f"{db_path} is damaged: events row {first} does not hold the line of seq {first}; "
            "refusing to start"
        )
    checker = LineChecker(deep=False, start_seq=anchor[0], start_hash=anchor[1])
    if not checker.feed(lines, first):
        raise OperationalError(
            f"{db_path} is damaged: the hash chain of its events is broken at seq "
            f"{checker.bad_line} ({checker.reason}); refusing to start"
        )
    if checker.last_seq != rows[-1][0]:
        raise OperationalError(
            f"{db_path} is damaged: events row {rows[-1][0]} holds the line of seq "
            f"{checker.last_seq}; refusing to start"
        )
    return checker.last_hash


def reappend_from_db(conn: sqlite3.Connection, fd: int, after_seq: int) -> int:
    """Write the lines after ``after_seq`` from the database to ``fd``; returns bytes written."""
    written = 0
    cur = conn.execute("SELECT line FROM events WHERE seq > ? ORDER BY seq", (after_seq,))
    while rows := cur.fetchmany(_REAPPEND_BATCH):
        written += write_all(fd, "".join(r[0] + "\n" for r in rows).encode())
    return written


# --- journal.jsonl ------------------------------------------------------------------------------


def open_jsonl(
    conn: sqlite3.Connection, state_dir: Path, db_seq: int, fsync: bool
) -> tuple[int, int]:
    """Bring journal.jsonl in line with the database (the record); returns (fd, size)."""
    path = state_dir / files.JSONL_NAME
    files.remove_stale_temp(path)
    if not path.exists() and db_seq > 0:
        log.warning("%s is missing: rebuilding seq 1..%d from the database", path, db_seq)
        files.atomic_write(path, lambda fd: reappend_from_db(conn, fd, 0), fsync=fsync)
    created = not path.exists()
    if not created and not path.is_file():
        raise OperationalError(f"{path} is not a regular file: refusing to start")
    fd = files.open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        # Decide everything before changing anything: a refusal must leave the file as found.
        cut, lines = _read_tail(fd, path, size)
        file_seq = 0
        if lines:
            file_seq = _check_last_line(conn, path, lines[-1][0], lines[-1][1], db_seq)
            _check_tail_chain(path, [line for _, line in lines], lines[0][0] == 0)
        changed = cut != size or file_seq < db_seq
        if cut != size:
            log.warning(
                "%s: cutting a torn last line (%d bytes at offset %d), left by a write a crash "
                "interrupted",
                path,
                size - cut,
                cut,
            )
            os.ftruncate(fd, cut)
            size = cut
        if file_seq < db_seq:
            log.warning(
                "%s: re-appending seq %d..%d from the database (committed, not yet appended when "
                "the writer stopped)",
                path,
                file_seq + 1,
                db_seq,
            )
            size += reappend_from_db(conn, fd, file_seq)
        if changed and fsync:
            durable.fsync_file(fd)
        if created and fsync:
            durable.fsync_dir(state_dir)
        return fd, size
    except BaseException:
        os.close(fd)
        raise


def _read_tail(fd: int, path: Path, size: int) -> tuple[int, list[tuple[int, bytes]]]:
    """Where the complete lines end, and (offset, text) of those in the last ``TAIL_WINDOW``
    bytes (at least the last one). Refuses a fragment after them that is not a torn line."""
    start = max(0, size - TAIL_WINDOW)
    tail = os.pread(fd, size - start, start)
    nl = tail.rfind(b"\n")
    if nl >= 0:
        cut = start + nl + 1
        fragment = tail[nl + 1 :]
    elif start == 0:
        cut, fragment = 0, tail
    else:  # the last line is longer than the window
        cut = files.last_line_start(fd, size)
        fragment = os.pread(fd, min(size - cut, 4096), cut)
    if fragment and not _is_torn_line(fragment):
        raise OperationalError(
            f"{path} ends in {size - cut} bytes at offset {cut} that are not a journal line "
            f"(starting {fragment[:24]!r}): not a torn write; refusing to start"
        )
    lines: list[tuple[int, bytes]] = []
    offset = start
    for text in tail[: max(0, cut - start)].split(b"\n")[:-1]:
        lines.append((offset, text))
        offset += len(text) + 1
    if start > 0 and lines:
        lines.pop(0)  # may be the end of a line that began before the window
    if not lines and cut > 0:
        line_start = files.last_line_start(fd, cut - 1)
        lines = [(line_start, os.pread(fd, cut - 1 - line_start, line_start))]
    return cut, lines


def _is_torn_line(fragment: bytes) -> bool:
    """The beginning of a line the writer was appending, or zero bytes (what a lost delayed
    allocation leaves), as opposed to another program's data."""
    text = fragment.rstrip(b"\0")
    return not text or text.startswith(_LINE_START) or _LINE_START.startswith(text)


def _check_last_line(
    conn: sqlite3.Connection, path: Path, offset: int, line: bytes, db_seq: int
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


def _check_tail_chain(path: Path, lines: list[bytes], from_genesis: bool) -> None:
    """The lines read at the end of the file must chain (the first one is taken as it claims to
    be, unless the window starts the file: then it must be seq 1 after the genesis hash)."""
    raw = [line + b"\n" for line in lines]
    anchor = (0, GENESIS_HASH) if from_genesis else line_anchor(raw[0])
    if anchor is None:
        checker = LineChecker(deep=False)
        checker.feed(raw[:1], 1)
        bad, reason = "the first line read", checker.reason
    else:
        checker = LineChecker(deep=False, start_seq=anchor[0], start_hash=anchor[1])
        if checker.feed(raw, anchor[0] + 1):
            return
        bad, reason = f"line {checker.bad_line}", checker.reason
    raise OperationalError(
        f"{path}: the hash chain is broken at {bad} near the end of the file ({reason}); "
        "refusing to start. `tradeplane journal verify` shows the first bad line; moving "
        "journal.jsonl aside makes the next start rebuild it from journal.db"
    )
