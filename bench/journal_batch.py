"""Where a durable batch's time and written pages go, at a journal of ``--lines`` lines.

A diagnostic for issue 15's journal target, not part of ``make bench`` (``bench/journal.py``
has the figures and floors). It builds a journal as ``bench/journal.py`` does (the store, the
actors' record mix, fsync off), reopens it with fsync on, WAL checkpoints off and the WAL
emptied, sets the garbage collector as the journal actor does (``settle_after_start_up``),
commits ``--batches`` batches of ``--batch`` records and prints one JSON line:

* per batch, the mean milliseconds: ``total`` (``commit``), ``sql`` (inside the connection's
  ``execute``/``executemany``, ``COMMIT`` included), ``commit`` (the ``COMMIT`` statement, its
  WAL fsync) and ``python`` (the rest: validation, encoding, hashing, folding, lookups);
* per batch, the WAL pages written (each page a transaction dirties is one WAL frame), in all and
  by the table or index the page belongs to (SQLite's ``dbstat`` after the run).

Run with the code to measure (its own venv), e.g. before and after a change, back to back:
``python bench/journal_batch.py --lines 300000``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import journal as journal_bench

from tradeplane.actors.gc_tuning import settle_after_start_up
from tradeplane.journal.store import JournalStore

_WAL_HEADER = 32
_FRAME_HEADER = 24


class TimedConnection:
    """The store's connection, with the time spent inside SQLite's statements counted."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.sql_s = 0.0

    def execute(self, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._conn.execute(*args)
        finally:
            self.sql_s += time.perf_counter() - t0

    def executemany(self, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._conn.executemany(*args)
        finally:
            self.sql_s += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def wal_transactions(wal: Path, page_size: int) -> list[list[int]]:
    """The page numbers of each committed transaction's frames, oldest first."""
    data = wal.read_bytes()
    out: list[list[int]] = []
    pages: list[int] = []
    pos = _WAL_HEADER
    while pos + _FRAME_HEADER + page_size <= len(data):
        pageno, commit_size = struct.unpack(">II", data[pos : pos + 8])
        pages.append(pageno)
        if commit_size:
            out.append(pages)
            pages = []
        pos += _FRAME_HEADER + page_size
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument(
        "--keep",
        type=Path,
        help="copy the built journal here before measuring (e.g. to time a migration of it)",
    )
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="journal-batch-"))
    try:
        src = journal_bench.Source()
        state_dir = root / "state"
        build_s = journal_bench.build(state_dir, src, args.lines)
        if args.keep is not None:
            shutil.copytree(state_dir, args.keep)
        store = JournalStore.open(state_dir, journal_bench.DEPLOYMENT, fsync=True)
        settle_after_start_up()  # the journal actor's collector settings, as bench/journal.py
        try:
            if store._checkpointer is not None:
                store._checkpointer.close()
                store._checkpointer = None
            store.conn.execute("PRAGMA wal_autocheckpoint = 0")
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for _ in range(args.warmup):
                store.commit(src.take(args.batch))
            timed = TimedConnection(store.conn)
            store.conn = timed  # type: ignore[assignment]
            batches = [src.take(args.batch) for _ in range(args.batches)]
            total_s = commit_ms = 0.0
            for batch in batches:
                t0 = time.perf_counter()
                store.commit(batch)
                total_s += time.perf_counter() - t0
                commit_ms += store.last_sql_commit_ms
            store.conn = timed._conn
            conn = store.conn
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            owner = dict(conn.execute("SELECT pageno, name FROM dbstat").fetchall())
            measured = wal_transactions(Path(str(store.db_path) + "-wal"), page_size)
            measured = measured[-args.batches :]
            by_name: Counter[str] = Counter()
            for pages in measured:
                by_name.update(owner.get(p, "?") for p in pages)
            n = len(batches)
            out = {
                "bench": "journal_batch",
                "journal_lines": args.lines,
                "build_s": round(build_s, 1),
                "batch": args.batch,
                "batches": n,
                "records_per_s": round(args.batch * n / total_s),
                "ms_per_batch": {
                    "total": round(total_s * 1000 / n, 2),
                    "sql": round(timed.sql_s * 1000 / n, 2),
                    "commit": round(commit_ms / n, 2),
                    "python": round((total_s - timed.sql_s) * 1000 / n, 2),
                },
                "wal_pages_per_batch": round(sum(map(len, measured)) / len(measured), 1),
                "wal_pages_by_name": {
                    k: round(v / len(measured), 1) for k, v in by_name.most_common()
                },
            }
            sys.stdout.write(json.dumps(out) + "\n")
        finally:
            store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
