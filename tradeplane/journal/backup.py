"""A consistent copy of a deployment's state dir, taken while its journal is being written.

The copy is built in a private temporary directory beside the target and renamed into place
once complete and synced, so a crash or a failure mid-backup never leaves a backup under the
target's name (a SIGKILL leaves a ``.<target>.partial-*`` directory, which is never a backup and
can be deleted).

Order matters, because the record (``journal.db``) only grows:

1. the side files (``backup_files``: drift state, telemetry cursor, recorded bars, a stopped sim
   venue's book), so none refers to a journal line the copy lacks;
2. ``journal.jsonl`` as far as it is written now: never further than ``journal.db`` (a batch is
   appended only after it commits), maybe with a torn last line;
3. ``journal.db`` through SQLite's online backup API, from one read transaction (a WAL snapshot:
   the writer is never blocked and the backup never restarts), a few pages per step with a pause
   between steps so the writer's fsyncs get the disk; the snapshot's last seq is the backup's;
4. the JSONL copy brought to exactly that seq by what ``open`` does after a crash
   (``recovery.open_jsonl``: a torn line cut, the missing lines re-appended from the copied
   ``events.line``), which also checks that its last line is the database's line of that seq and
   that its tail chains; the copied database's last events must chain to its ``meta``
   (``recovery.check_record``).

A backup is a state dir: copied to another machine as a deployment's state dir, the journal
opens there as after a crash, ``journal verify`` passes, and ``up`` reconciles with the venue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tradeplane.core.errors import OperationalError
from tradeplane.durable import fsync_dir, fsync_file
from tradeplane.journal import backup_files, files, recovery
from tradeplane.journal.backup_files import Copied, Skipped
from tradeplane.journal.reader import JournalReader

MANIFEST_NAME = "backup_manifest.json"
MANIFEST_FORMAT = "tradeplane-backup"
STEP_PAGES = 1024  # 4 MiB of 4 KiB pages per step of the online backup
STEP_PAUSE_S = 0.002  # between steps: the writer's commits get the disk


@dataclass
class BackupResult:
    target: str
    deployment: str
    genesis: str
    last_seq: int
    last_hash: str
    jsonl_copied_seq: int  # lines taken from journal.jsonl; the rest rebuilt from journal.db
    elapsed_s: float
    copied: list[Copied] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.copied)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["first_seq"] = 1 if self.last_seq else 0
        out["total_bytes"] = self.total_bytes
        return out


def backup(
    state_dir: Path,
    target: Path,
    *,
    check_venue: Callable[[Path], None],
    deployment: str | None = None,
    force: bool = False,
    step_pages: int = STEP_PAGES,
    pause_s: float = STEP_PAUSE_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BackupResult:
    """Back ``state_dir`` (the journal of ``deployment``, if given) up into ``target``.
    ``check_venue`` raises ``OperationalError`` for a simulated venue's book a running venue
    holds (the venue's own check: the journal imports no venue).

    ``target`` must not exist or be empty; ``force`` replaces an earlier backup there (never
    a directory that holds anything else). Raises ``OperationalError`` saying what failed;
    nothing is then left under ``target``'s name that was not there before."""
    started = clock()
    state_dir, target = Path(state_dir), Path(target)
    _check_target(state_dir, target, force)
    venue_check = check_venue
    target.parent.mkdir(mode=files.DIR_MODE, parents=True, exist_ok=True)
    # Opened first, so a state dir that holds no journal (of this deployment) is refused before
    # anything is copied; its snapshot is taken only after the files that must be older.
    reader = JournalReader.open(state_dir, deployment=deployment)
    try:
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    except BaseException:
        reader.close()
        raise
    try:
        os.chmod(tmp, files.DIR_MODE)
        copied: list[Copied] = []
        skipped: list[Skipped] = []
        backup_files.copy_side_files(state_dir, tmp, copied)
        backup_files.copy_venue_books(state_dir, tmp, copied, skipped, venue_check)
        jsonl_src = state_dir / files.JSONL_NAME
        if jsonl_src.is_file():
            backup_files.copy_prefix(jsonl_src, tmp / files.JSONL_NAME)
        with reader:
            meta = _copy_db(reader, tmp, step_pages, pause_s, sleep)
        last_seq = int(meta["last_seq"])
        from_jsonl = _settle_jsonl(tmp, last_seq, meta["last_hash"])
        copied[:0] = [
            Copied(files.DB_NAME, (tmp / files.DB_NAME).stat().st_size),
            Copied(
                files.JSONL_NAME,
                (tmp / files.JSONL_NAME).stat().st_size,
                _jsonl_note(from_jsonl, last_seq),
            ),
        ]
        skipped.extend(backup_files.left_out(state_dir, copied, skipped))
        result = BackupResult(
            target=str(target),
            deployment=meta["deployment"],
            genesis=meta.get("genesis", ""),
            last_seq=last_seq,
            last_hash=meta["last_hash"],
            jsonl_copied_seq=from_jsonl,
            elapsed_s=0.0,
            copied=copied,
            skipped=skipped,
        )
        result.elapsed_s = clock() - started
        _write_manifest(tmp, state_dir, result)
        fsync_dir(tmp)
        _place(tmp, target)
    except BaseException as exc:
        reader.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OperationalError(f"backup of {state_dir} to {target} failed: {exc}") from exc
        raise
    result.elapsed_s = clock() - started
    return result


def _check_target(state_dir: Path, target: Path, force: bool) -> None:
    src, dst = state_dir.resolve(), target.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise OperationalError(
            f"--to {target} is {'the state dir' if dst == src else 'inside or around'} "
            f"{state_dir}: a backup goes elsewhere"
        )
    if not target.exists():
        return
    if not target.is_dir():
        raise OperationalError(f"--to {target} exists and is not a directory")
    if not any(target.iterdir()):
        return
    if not force:
        raise OperationalError(
            f"--to {target} is not empty: refusing to write a backup into it (--force replaces "
            "an earlier backup there)"
        )
    if not (target / MANIFEST_NAME).is_file():
        raise OperationalError(
            f"--to {target} is not empty and holds no tradeplane backup (no {MANIFEST_NAME}): "
            "refusing to replace it, even with --force"
        )


def _copy_db(
    reader: JournalReader,
    tmp: Path,
    step_pages: int,
    pause_s: float,
    sleep: Callable[[float], None],
) -> dict[str, str]:
    """The online backup of ``journal.db`` from one snapshot; returns the snapshot's ``meta``."""
    dst_path = tmp / files.DB_NAME
    os.close(files.open_private(dst_path, os.O_RDWR | os.O_CREAT | os.O_EXCL))
    src = reader.conn
    try:
        src.execute("BEGIN")  # the read transaction every step of the backup reads from
        meta = dict(src.execute("SELECT key, value FROM meta").fetchall())
        dst = sqlite3.connect(dst_path, isolation_level=None)
        # A small page cache: the copied pages reach the file step by step, and each step
        # is synced before the pause (``_step``), so the copy never leaves a backlog of dirty
        # pages for the kernel to write back at once, which would stall the writer's fsyncs.
        dst.execute("PRAGMA cache_size = 64")
        sync_fd = os.open(dst_path, os.O_RDONLY)
        try:
            src.backup(dst, pages=step_pages, progress=lambda *_: _step(sync_fd, pause_s, sleep))
        finally:
            os.close(sync_fd)
            dst.close()  # the last connection: its WAL is folded in and removed
    except sqlite3.Error as exc:
        raise OperationalError(f"{reader.db_path}: online backup failed: {exc}") from exc
    finally:
        if src.in_transaction:
            src.execute("ROLLBACK")
    fd = os.open(dst_path, os.O_RDONLY)
    try:
        fsync_file(fd)
    finally:
        os.close(fd)
    return meta


def _step(fd: int, pause_s: float, sleep: Callable[[float], None]) -> None:
    fsync_file(fd)
    sleep(pause_s)


def _settle_jsonl(tmp: Path, last_seq: int, last_hash: str) -> int:
    """Bring the copied JSONL to exactly ``last_seq``, checked against the copied record;
    returns the seq it reached from the copied file (the rest came from ``events.line``)."""
    db_path = tmp / files.DB_NAME
    conn = recovery.connect(db_path, fsync=True)
    try:
        seq, found_hash = recovery.check_record(conn, db_path)
        if (seq, found_hash) != (last_seq, last_hash):
            raise OperationalError(
                f"{db_path}: the copy ends at seq {seq}, its snapshot said {last_seq}"
            )
        from_jsonl = _last_complete_seq(tmp / files.JSONL_NAME)
        with _quiet(recovery.log):  # its repair warnings describe a crash, not a backup
            fd, _ = recovery.open_jsonl(conn, tmp, last_seq, fsync=True)
        os.close(fd)
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):  # none, once the last connection closed; never copied
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{db_path}{suffix}")
    return min(from_jsonl, last_seq)


def _last_complete_seq(path: Path) -> int:
    """The seq of the last complete line of ``path`` (0: none, or no file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        end = size
        while end > 0:
            tail = os.pread(fd, min(end, 1 << 16), end - min(end, 1 << 16))
            nl = tail.rfind(b"\n")
            if nl >= 0:
                end = end - len(tail) + nl
                break
            end -= len(tail)
        if end <= 0:
            return 0
        start = files.last_line_start(fd, end)
        try:
            return int(json.loads(os.pread(fd, end - start, start))["seq"])
        except (ValueError, KeyError, TypeError):
            return 0  # open_jsonl refuses it with the reason
    finally:
        os.close(fd)


def _jsonl_note(from_jsonl: int, last_seq: int) -> str:
    if from_jsonl >= last_seq:
        return ""
    first = from_jsonl + 1
    return f"seq {first}..{last_seq} rebuilt from journal.db (committed after the JSONL was copied)"


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _write_manifest(tmp: Path, state_dir: Path, result: BackupResult) -> None:
    body = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "source": str(state_dir.resolve()),
        "created": time.time(),
        **result.as_dict(),
    }
    body.pop("target", None)
    data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
    files.atomic_write(tmp / MANIFEST_NAME, lambda fd: files.write_all(fd, data))


def _place(tmp: Path, target: Path) -> None:
    """Rename the finished copy to ``target`` (an empty directory there is replaced by the
    rename itself; an earlier backup is moved aside first and removed after)."""
    old: Path | None = None
    if target.exists() and any(target.iterdir()):
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.replaced-"))
        os.rename(target, old / target.name)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:  # the earlier backup goes back where it was
            os.rename(old / target.name, target)
            os.rmdir(old)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
