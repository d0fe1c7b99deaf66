"""Durability work off the commit path: WAL checkpoints, and the JSONL mirror's fdatasync.

A checkpoint copies committed pages from the WAL into the database file and fsyncs it. SQLite's
automatic one runs inside the ``COMMIT`` that crosses the threshold, so one batch in a few paid
for copying and syncing what the earlier ones wrote. Durability does not need it (a commit is
durable once the WAL is fsynced, ``synchronous=FULL``), so it runs here instead: a thread with
its own connection makes a PASSIVE checkpoint (it never blocks the writer) after commits, at most
every ``interval_s``. The writer keeps SQLite's automatic checkpoint at ``BACKSTOP_PAGES`` in case
this thread falls behind.

The JSONL is a mirror of ``events.line``: its lines are written at commit (so ``tail -f`` shows
them at once) but ``MirrorSyncer`` fdatasyncs them from a thread, coalescing the commits of a few
milliseconds into one sync, and ``close`` syncs what is left. A crash before the sync leaves the
JSONL short of the database, which the next ``open`` repairs from ``events.line``
(``recovery.open_jsonl``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path

from tradeplane import durable

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 16_384  # 64 MiB of 4 KiB pages: the writer checkpoints itself beyond this
RECENT_RUNS = 1024  # runs kept for diagnosis (``JournalStore.background_runs``)


class _Coalescer:
    """A daemon thread that runs ``_work`` after ``wake`` (the wakes of ``interval_s`` coalesced
    into one run); ``_work`` returning False runs it again after the pause."""

    def __init__(self, name: str, interval_s: float) -> None:
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stop = False
        self.runs: deque[tuple[float, float]] = deque(maxlen=RECENT_RUNS)  # (start, ms)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _work(self) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stop:
                return
            self._wake.clear()
            started, wall = time.perf_counter(), time.time()
            done = self._work()
            self.runs.append((wall, (time.perf_counter() - started) * 1000.0))
            if not done:
                self._wake.set()
            time.sleep(self._interval_s)

    def _join(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join()


class Checkpointer(_Coalescer):
    def __init__(self, db_path: Path, fsync: bool, interval_s: float = 0.05) -> None:
        self._conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._conn.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
        super().__init__("journal-checkpoint", interval_s)

    def committed(self) -> None:
        self.wake()

    def _work(self) -> bool:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the writer's backstop still checkpoints
            log.warning("journal checkpoint failed (retried after the next commit): %s", exc)
        return True

    def close(self) -> None:
        self._join()
        self._conn.close()


class MirrorSyncer(_Coalescer):
    """fdatasyncs the JSONL (``fd``, owned by the store, which closes this first) after commits
    write to it, at most every ``interval_s``; ``close`` makes the last sync."""

    def __init__(self, fd: int, path: Path, interval_s: float = 0.002) -> None:
        self._fd = fd
        self._path = path
        super().__init__("journal-jsonl-sync", interval_s)

    def written(self) -> None:
        self.wake()

    def _work(self) -> bool:
        """False when the sync failed: retried after the pause (the lines are still unsynced)."""
        return self._sync()

    def _sync(self) -> bool:
        try:
            durable.fsync_file(self._fd)
        except OSError as exc:  # the database holds every line; open repairs a short JSONL
            log.error("journal %s: fdatasync failed (retried): %s", self._path, exc)
            return False
        return True

    def close(self) -> None:
        self._join()
        self._sync()
