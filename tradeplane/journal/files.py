"""File hygiene for a state dir: private modes, the single-writer lock, durable appends, and
checks that a database file is SQLite at all before SQLite is let near it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path

from tradeplane.core.errors import OperationalError
from tradeplane.durable import fsync_dir

DB_NAME = "journal.db"
JSONL_NAME = "journal.jsonl"
LOCK_NAME = "journal.lock"
FILE_MODE = 0o600
DIR_MODE = 0o700
_TAIL_CHUNK = 64 * 1024
_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_private(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def prepare_state_dir(state_dir: Path) -> Path:
    state_dir = Path(state_dir)
    if not state_dir.exists():
        state_dir.mkdir(mode=DIR_MODE, parents=True)
        os.chmod(state_dir, DIR_MODE)  # mkdir's mode is filtered by the umask
    elif not state_dir.is_dir():
        raise OperationalError(f"state dir {state_dir} exists and is not a directory")
    elif stat.S_IMODE(state_dir.stat().st_mode) != DIR_MODE:
        os.chmod(state_dir, DIR_MODE)  # as the files in it are tightened to 0600
    return state_dir


def temp_path(path: Path) -> Path:
    """Where ``atomic_write`` builds ``path`` (hidden, beside it, so the rename is atomic)."""
    return path.with_name(f".{path.name}.tmp")


def remove_stale_temp(path: Path) -> None:
    """Drop what an ``atomic_write`` of ``path`` interrupted by a crash left (never renamed, so
    never part of the state)."""
    with contextlib.suppress(FileNotFoundError):
        temp_path(path).unlink()


def atomic_write(path: Path, write: Callable[[int], object], *, fsync: bool = True) -> None:
    """Create or replace ``path`` whole: ``write(fd)`` fills a 0600 temporary file beside it,
    which is fsynced, renamed over ``path``, and the directory fsynced. A crash leaves either the
    old file or the new one, never a part of the new one."""
    tmp = temp_path(path)
    remove_stale_temp(path)
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        write(fd)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        remove_stale_temp(path)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def check_sqlite_header(db_path: Path) -> None:
    """Fail closed on a file that is not SQLite or is shorter than its header says.

    The size check is skipped while a non-empty ``-wal`` exists: after a crash mid-checkpoint
    the database file may legitimately lag until SQLite replays the WAL.
    """
    size = db_path.stat().st_size
    if size == 0:
        return
    with open(db_path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise OperationalError(
            f"{db_path} is not a SQLite database (unrecognised header): refusing to start; "
            "restore the state dir from a backup or point state_dir elsewhere"
        )
    wal = db_path.with_name(db_path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_size_valid = pages > 0 and header[24:28] == header[92:96]
    if (
        page_size < 512
        or page_size & (page_size - 1)
        or size % page_size
        or (header_size_valid and size < pages * page_size)
    ):
        raise OperationalError(
            f"{db_path} is truncated or damaged ({size} bytes; header says {pages} pages of "
            f"{page_size} bytes): refusing to start; restore it from a backup"
        )


def acquire_lock(lock_path: Path) -> int:
    fd = open_private(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            who = f"pid {holder}" if holder else "another writer"
            raise OperationalError(
                f"state dir {lock_path.parent} is in use: {lock_path} is locked by {who}; "
                "only one journal writer may run per state dir"
            ) from exc
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


def last_line_start(fd: int, end: int) -> int:
    """Offset where the line ending at ``end`` (exclusive of its newline) starts; reads backwards
    in chunks so only the tail of a big file is touched."""
    pos = end
    while pos > 0:
        start = max(0, pos - _TAIL_CHUNK)
        chunk = os.pread(fd, pos - start, start)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        pos = start
    return 0
