"""Durability work off the commit path: WAL checkpoints, and the JSONL mirror's fdatasync.

A checkpoint copies committed pages from the WAL into the database file and fsyncs it. SQLite's
automatic one runs inside the ``COMMIT`` that crosses the threshold, so one batch in a few paid
for copying and syncing what the earlier ones wrote. Durability does not need it (a commit is
durable once the WAL is fsynced, ``synchronous=FULL``), so it runs here instead: a thread with
its own connection makes a PASSIVE checkpoint (it never blocks the writer) about once a second,
in a quiet gap between commits (``_Coalescer``). The writer keeps SQLite's automatic checkpoint
at ``BACKSTOP_PAGES`` in case this thread falls behind.

The JSONL is a mirror of ``events.line``: its lines are written at commit (so ``tail -f`` shows
them at once) but ``MirrorSyncer`` fdatasyncs them from a thread, coalescing the commits of a
fifth of a second into one sync made in a quiet gap, and ``close`` syncs what is left. A crash
before the sync leaves the JSONL short of the database, which the next ``open`` repairs from
``events.line`` (``recovery.open_jsonl``).
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
# Measured under bench/pipeline.py: a checkpoint after every burst of commits (30 a second)
# made the fsync of the commit an order waited on share the disk with it often enough to be the
# p99; one a second, in a quiet gap, copies more pages at once but rarely meets an order.
CHECKPOINT_DELAY_S = 1.0
SYNC_DELAY_S = 0.2  # the JSONL is repaired from the database after a crash: no hurry
QUIET_S = 0.02  # an order's burst of commits is over within about this


class _Coalescer:
    """A daemon thread that runs ``_work`` once per burst of commits, between them.

    After a ``wake`` it waits ``delay_s`` (the wakes meanwhile are coalesced into one run), then
    until the journal has been quiet for ``quiet_s`` (no ``wake``), but never longer than
    ``max_wait_s``. The quiet gap matters: an order's records come as a burst (the strategy's
    intent, ``order_submitting`` a few milliseconds later, then the venue's answer), and work
    started by the burst's first commit would share the disk with the fsync of the commit an
    order waits on. ``_work`` returning False runs it again after ``delay_s``."""

    def __init__(
        self, name: str, delay_s: float, quiet_s: float = 0.0, max_wait_s: float = 1.0
    ) -> None:
        self._delay_s = delay_s
        self._quiet_s = quiet_s
        self._max_wait_s = max_wait_s
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._last_wake = 0.0
        self.runs: deque[tuple[float, float]] = deque(maxlen=RECENT_RUNS)  # (start, ms)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._last_wake = time.monotonic()
        self._wake.set()

    def _work(self) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopped.wait(self._delay_s) or not self._until_quiet():
                return
            self._wake.clear()
            started, wall = time.perf_counter(), time.time()
            done = self._work()
            self.runs.append((wall, (time.perf_counter() - started) * 1000.0))
            if not done:
                self._wake.set()

    def _until_quiet(self) -> bool:
        """Wait for a gap of ``quiet_s`` between commits (at most ``max_wait_s``); False when
        stopped meanwhile."""
        give_up = time.monotonic() + self._max_wait_s
        while (now := time.monotonic()) < give_up:
            left = self._quiet_s - (now - self._last_wake)
            if left <= 0:
                break
            if self._stopped.wait(min(left, give_up - now)):
                return False
        return not self._stopped.is_set()

    def _join(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join()


class Checkpointer(_Coalescer):
    def __init__(
        self,
        db_path: Path,
        fsync: bool,
        delay_s: float = CHECKPOINT_DELAY_S,
        quiet_s: float = QUIET_S,
    ) -> None:
        self._conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._conn.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
        super().__init__("journal-checkpoint", delay_s, quiet_s)

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
    write to it, at most every ``delay_s``; ``close`` makes the last sync."""

    def __init__(
        self, fd: int, path: Path, delay_s: float = SYNC_DELAY_S, quiet_s: float = QUIET_S
    ) -> None:
        self._fd = fd
        self._path = path
        super().__init__("journal-jsonl-sync", delay_s, quiet_s)

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
