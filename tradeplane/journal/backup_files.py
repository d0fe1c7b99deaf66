"""The files of a state dir besides the journal, as a backup copies them (``backup``).

What a restore needs, copied, each no newer than the journal copy made after it (so nothing in
the backup refers to a journal line the backup does not hold):

* ``drift_state.json`` then ``live_drift.csv`` (complete rows only) and
  ``live_performance.json``: the drift tracker resumes from its state, and re-cuts rows past it
  without writing them twice (``drift_session``); without them it starts again on the history.
* ``telemetry_cursor.json`` and ``alerts_cursor.json``: where the span exporter and the alert
  webhook resume (clamped to the journal's end).
* ``bars/``: the closed chunks of the recorded bars (a chunk is renamed into place complete,
  never changed after); the open chunk is in memory only, and the feed refetches what it missed.
* ``venue/sim.db`` and ``shadow/venue.db``: the simulated venue's book, only while no venue has it
  open (a running venue holds it exclusively, so it cannot be read consistently): its
  committed WAL is folded into the copy.

Never copied: ``.env`` (credentials: provision them on the new machine), ``journal.lock`` (the
writer's lock, made at open), ``journal.db-wal``/``-shm`` (folded into the copied
``journal.db``), and whatever else is in the state dir (reports, temp files): a restore does not
need it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tradeplane.core.errors import OperationalError
from tradeplane.durable import fsync_dir, fsync_file
from tradeplane.journal import bar_store, files
from tradeplane.journal.cursors import CURSOR_FILES

DRIFT_FILES = ("drift_state.json", "live_drift.csv", "live_performance.json")
VENUE_DBS = ("venue/sim.db", "shadow/venue.db")
NEVER_COPIED = {
    ".env": "credentials are never copied: provision them on the machine you restore to",
    files.LOCK_NAME: "the writer's lock: made when the journal opens",
    files.DB_NAME + "-wal": "folded into the copied journal.db",
    files.DB_NAME + "-shm": "SQLite's shared-memory index, rebuilt at open",
}
_CHUNK_BYTES = 1 << 20
# Synced as it goes, not once at the end: a backlog of dirty pages written back at once stalls
# the fsyncs of the journal's writer beside it (measured in bench/journal_backup.py).
SYNC_EVERY_BYTES = 8 << 20


@dataclass(frozen=True)
class Copied:
    name: str  # relative to the state dir
    bytes: int
    note: str = ""


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def copy_prefix(src: Path, dst: Path, size: int | None = None, *, whole_lines: bool = False) -> int:
    """Copy ``src``'s first ``size`` bytes (all it has now, when None) to a new 0600 ``dst``,
    fsynced; ``whole_lines``: only up to the last newline. Returns the bytes copied."""
    with open(src, "rb") as f:
        limit = os.fstat(f.fileno()).st_size if size is None else size
        fd = files.open_private(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            done = 0
            last_nl = -1
            while done < limit:
                chunk = f.read(min(_CHUNK_BYTES, limit - done))
                if not chunk:
                    break
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    last_nl = done + nl
                files.write_all(fd, chunk)
                done += len(chunk)
                if done % SYNC_EVERY_BYTES < len(chunk):
                    fsync_file(fd)
            if whole_lines and done != last_nl + 1:
                os.ftruncate(fd, last_nl + 1)
                done = last_nl + 1
            fsync_file(fd)
        finally:
            os.close(fd)
    return done


def _private_dir(path: Path) -> None:
    path.mkdir(mode=files.DIR_MODE, exist_ok=True)
    os.chmod(path, files.DIR_MODE)


def copy_side_files(state_dir: Path, tmp: Path, copied: list[Copied]) -> None:
    """Drift files, the telemetry cursor and the recorded bars, in the order a restore reads
    them against each other (the drift state before the rows and bars it was cut from)."""
    for name in (*DRIFT_FILES, *CURSOR_FILES):
        with contextlib.suppress(FileNotFoundError):
            size = copy_prefix(state_dir / name, tmp / name, whole_lines=name.endswith(".csv"))
            copied.append(Copied(name, size))
    chunks = bar_store.chunks(bar_store.bars_dir(state_dir))
    if chunks:
        _private_dir(tmp / bar_store.BARS_DIR)
        total = 0
        for chunk in chunks:
            with contextlib.suppress(FileNotFoundError):
                total += copy_prefix(chunk.path, tmp / bar_store.BARS_DIR / chunk.path.name)
        fsync_dir(tmp / bar_store.BARS_DIR)
        copied.append(Copied(bar_store.BARS_DIR + "/", total, f"{len(chunks)} closed chunks"))


def copy_venue_books(
    state_dir: Path,
    tmp: Path,
    copied: list[Copied],
    skipped: list[Skipped],
    check_not_in_use: Callable[[Path], None],
) -> None:
    """Each simulated venue's book that no running venue holds; ``check_not_in_use`` raises
    ``OperationalError`` when one does (asked again after the copy: a venue that started
    meanwhile may have changed it under us)."""
    for name in VENUE_DBS:
        src = state_dir / name
        if not src.is_file():
            continue
        try:
            check_not_in_use(src)
            dst = tmp / name
            _private_dir(dst.parent)
            size = copy_prefix(src, dst)
            wal = Path(f"{src}-wal")
            if wal.is_file():
                copy_prefix(wal, Path(f"{dst}-wal"))
                _fold_wal(dst)
                size = dst.stat().st_size
            check_not_in_use(src)
        except OperationalError as exc:
            shutil.rmtree(tmp / Path(name).parent, ignore_errors=True)
            skipped.append(
                Skipped(
                    name,
                    f"not copied: {exc}; a restore starts that venue with an empty book and "
                    "start-up reconciliation names each difference (back up a stopped "
                    "deployment to keep it)",
                )
            )
            continue
        fsync_dir(dst.parent)
        copied.append(Copied(name, size))


def _fold_wal(db: Path) -> None:
    """Make a copied database whole: its copied WAL's committed frames into the file."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        raise OperationalError(f"{db}: its WAL could not be folded in: {exc}") from exc
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{db}{suffix}")
    fd = os.open(db, os.O_RDONLY)
    try:
        fsync_file(fd)
    finally:
        os.close(fd)


def left_out(state_dir: Path, copied: list[Copied], skipped: list[Skipped]) -> list[Skipped]:
    """What the backup did not take from the state dir's top level, and why."""
    taken = {c.name.split("/")[0] for c in copied} | {s.name.split("/")[0] for s in skipped}
    taken |= {files.DB_NAME, files.JSONL_NAME}
    out = []
    for entry in sorted(os.listdir(state_dir)):
        if entry in taken:
            continue
        reason = NEVER_COPIED.get(entry, "not part of the record: a restore does not need it")
        out.append(Skipped(entry, reason))
    return out
