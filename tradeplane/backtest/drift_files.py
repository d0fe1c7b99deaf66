"""The drift tracker's two files in the state dir: ``live_drift.csv`` (one row per strategy and
snapshot, appended) and ``live_performance.json`` (the summary, replaced atomically).

Rows are keyed by their timestamp: a restarted tracker replays its inputs and offers every row
again, and only those newer than the file's last are written, so the file has no duplicates; a
row torn by a crash (a last line without its newline) is cut off on open and written again.
Both files are created 0600, like every state file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from tradeplane.backtest.drift import COLUMNS
from tradeplane.durable import fsync_dir, fsync_file
from tradeplane.journal.files import atomic_write

DRIFT_CSV = "live_drift.csv"
PERFORMANCE_JSON = "live_performance.json"
_TAIL_BYTES = 64 * 1024


class DriftFileError(ValueError):
    """``live_drift.csv`` exists but is not ours (another header): refused, never overwritten."""


class DriftFiles:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.csv_path = state_dir / DRIFT_CSV
        self.json_path = state_dir / PERFORMANCE_JSON
        self.last_ts: datetime | None = None
        self._at_last: set[str] = set()  # strategies whose row at ``last_ts`` is written
        self.repaired_bytes = 0
        self._open()

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Write the rows newer than the file's last (in order); returns how many."""
        fresh = []
        last_ts, at_last = self.last_ts, set(self._at_last)
        for row in rows:
            ts = datetime.fromisoformat(row["timestamp"])
            if last_ts is not None and (
                ts < last_ts or (ts == last_ts and row["strategy"] in at_last)
            ):
                continue  # in the file already
            fresh.append(row)
            if ts != last_ts:
                last_ts, at_last = ts, set()
            at_last.add(row["strategy"])
        if not fresh:
            return 0
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        for row in fresh:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
        fd = os.open(self.csv_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, buf.getvalue().encode())
            fsync_file(fd)
        finally:
            os.close(fd)
        self.last_ts, self._at_last = last_ts, at_last
        return len(fresh)

    def write_performance(self, summary: dict[str, Any]) -> None:
        data = json.dumps(summary, indent=2, sort_keys=True, allow_nan=False).encode()
        atomic_write(self.json_path, lambda fd: os.write(fd, data))

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        header = ",".join(COLUMNS) + "\n"
        if not self.csv_path.exists() or self.csv_path.stat().st_size == 0:
            fd = os.open(self.csv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, header.encode())
                fsync_file(fd)
            finally:
                os.close(fd)
            fsync_dir(self.dir)
            return
        with self.csv_path.open("rb") as f:
            first = f.readline().decode(errors="replace")
            if first != header:
                raise DriftFileError(
                    f"{self.csv_path}: header {first.strip()!r} is not {header.strip()!r}; "
                    "move the file away to start a new one"
                )
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
        cut = len(tail) - (tail.rfind(b"\n") + 1)
        if cut:
            with self.csv_path.open("r+b") as f:
                f.truncate(size - cut)
                fsync_file(f.fileno())
            self.repaired_bytes = cut
            tail = tail[: len(tail) - cut]
        last_stamp = None
        for line in reversed(tail.decode(errors="replace").splitlines()):
            stamp, _, rest = line.partition(",")
            if line == header.strip() or (last_stamp is not None and stamp != last_stamp):
                break
            last_stamp = stamp
            self._at_last.add(rest.partition(",")[0])
        if last_stamp is not None:
            self.last_ts = datetime.fromisoformat(last_stamp)
