"""Recorded bars (``[journal] bars = "all"``): every bar a deployment saw, kept in its state dir
as closed Parquet chunks, so a backtest can replay exactly what the deployment traded on.

Layout: ``<state_dir>/bars/chunk-<first open time, epoch ms, 15 digits>-<seq, 8 digits>.parquet``,
each a closed file in the Parquet bars schema (``tradeplane.backtest.bars_parquet``; ``ts`` a
``timestamp[us, UTC]``), sorted by open time and, within one time, by the order the symbols
first arrived. Bars are buffered in memory (the *open chunk*) and written as one file when the
chunk holds ``max_bars`` or is ``interval_s`` old: to a temp name, fsynced, renamed, and the
directory fsynced. So a SIGKILL loses at most the open chunk and never leaves a half-written
chunk under a chunk's name; a leftover temp file is ignored by readers and removed at the next
open. The chunk's footer names the newest bar per symbol (``tradeplane.last_ts``), so a
restarted writer learns where the record stops without reading the bars.

What a restart lost (the open chunk) is refetched by whoever holds history: ``gaps`` says, for
the first bars of each symbol after an open, from which time the record is missing, and bars
added for that stretch (``add``) fill it. Readers merge chunks by time and drop a bar already
yielded for its symbol and time, so chunks that overlap (a refill) read as one clean series.

Pure apart from the files: no clock (callers pass ``now``, a monotonic reading: only a chunk's
age is measured), no threads; one writer per state dir
(the journal actor, on the state node).
"""

from __future__ import annotations

import heapq
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tradeplane.core.model import Bar
from tradeplane.durable import fsync_dir, fsync_file

BARS_DIR = "bars"
LAST_TS_KEY = b"tradeplane.last_ts"
_CHUNK = re.compile(r"^chunk-(\d{15})-(\d{8})\.parquet$")
_TEMP_SUFFIX = ".tmp"
SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
    ]
)


def bars_dir(state_dir: Path) -> Path:
    return Path(state_dir) / BARS_DIR


@dataclass(frozen=True, order=True)
class Chunk:
    """A closed chunk file, ordered by its first bar's open time, then by its sequence."""

    first_ms: int
    seq: int
    path: Path


def chunks(directory: Path) -> list[Chunk]:
    """The closed chunks in ``directory``, oldest first; temp and foreign files are ignored."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        m = _CHUNK.match(name)
        if m:
            out.append(Chunk(int(m.group(1)), int(m.group(2)), directory / name))
    return sorted(out)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def last_recorded(directory: Path) -> dict[str, datetime]:
    """The newest recorded open time per symbol, from the chunks' footers (no bars read)."""
    last: dict[str, datetime] = {}
    for chunk in chunks(directory):
        try:
            meta = pq.read_schema(chunk.path).metadata or {}
            found = json.loads(meta.get(LAST_TS_KEY, b"{}"))
        except (OSError, ValueError, pa.ArrowException):
            # Damaged after it was closed (the disk): readers refuse it with its name; the
            # writer goes on after the chunks it can read.
            continue
        for symbol, iso in found.items():
            ts = datetime.fromisoformat(iso)
            if symbol not in last or ts > last[symbol]:
                last[symbol] = ts
    return last


class BarRecorder:
    """The writer: an open chunk in memory, rolled into a closed chunk file.

    ``max_bars`` and ``interval_s`` bound what a crash can lose. A bar already recorded for its
    symbol and time is dropped (a restarted feed re-sends the bars since its last snapshot).
    """

    def __init__(
        self, directory: Path, *, max_bars: int, interval_s: float, fsync: bool = True
    ) -> None:
        if max_bars < 1 or interval_s <= 0:
            raise ValueError("a chunk needs max_bars >= 1 and interval_s > 0")
        self.directory = Path(directory)
        self.max_bars, self.interval_s, self.fsync = max_bars, interval_s, fsync
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in os.listdir(self.directory):
            if name.endswith(_TEMP_SUFFIX):  # a chunk a killed writer never closed
                (self.directory / name).unlink(missing_ok=True)
        existing = chunks(self.directory)
        self._seq = max((c.seq for c in existing), default=0)
        # Where the record stood when this writer opened: the stretch between it and a
        # symbol's first bar now is what the previous writer lost (``gaps``).
        self.floor: dict[str, datetime] = last_recorded(self.directory)
        self.closed_last: dict[str, datetime] = dict(self.floor)
        self.first_live: dict[str, datetime] = {}
        self._open: dict[tuple[str, datetime], Bar] = {}
        self._opened_at: float | None = None
        self._rank: dict[str, int] = {}
        self.chunks_written = 0
        self.bars_written = 0
        self.bars_dropped = 0

    @property
    def open_bars(self) -> int:
        return len(self._open)

    def open_chunk(self) -> list[Bar]:
        """The bars not yet in a closed chunk, in the order a chunk would hold them (for a
        reader that cannot wait for the roll: the drift tracker)."""
        rank = self._rank
        return sorted(self._open.values(), key=lambda b: (b.ts, rank[b.symbol]))

    def gaps(self, bars: Sequence[Bar]) -> dict[str, datetime]:
        """For symbols seen for the first time since this writer opened: the last time the
        record holds, when the first bar now comes after it (bars in between were lost, or
        never seen). Call before ``add`` with the same bars; ask history for the bars after it."""
        out: dict[str, datetime] = {}
        for bar in bars:
            if bar.symbol in self.first_live or bar.symbol in out:
                continue
            floor = self.floor.get(bar.symbol)
            if floor is not None and bar.ts > floor:
                out[bar.symbol] = floor
        return out

    def add(self, bars: Sequence[Bar], now: float, *, refill: bool = False) -> list[Path]:
        """Buffer ``bars`` (live ones, or with ``refill`` the history asked for after
        ``gaps``); returns the chunks this closed."""
        written: list[Path] = []
        for bar in bars:
            symbol = bar.symbol
            if symbol not in self._rank:
                self._rank[symbol] = len(self._rank)
            if not refill and symbol not in self.first_live:
                self.first_live[symbol] = bar.ts
            if not self._wanted(bar, refill):
                self.bars_dropped += 1
                continue
            if self._opened_at is None:
                self._opened_at = now
            self._open[(symbol, bar.ts)] = bar
            if len(self._open) >= self.max_bars:
                path = self.roll()
                if path is not None:
                    written.append(path)
        if self.due(now):
            path = self.roll()
            if path is not None:
                written.append(path)
        return written

    def _wanted(self, bar: Bar, refill: bool) -> bool:
        if (bar.symbol, bar.ts) in self._open:
            return False
        last = self.closed_last.get(bar.symbol)
        if last is None or bar.ts > last:
            return True
        # Older than what is closed: only the stretch a previous writer lost is refilled.
        floor, first = self.floor.get(bar.symbol), self.first_live.get(bar.symbol)
        return refill and floor is not None and first is not None and floor < bar.ts < first

    def due(self, now: float) -> bool:
        """The open chunk is ``interval_s`` old: time to close it."""
        return self._opened_at is not None and now - self._opened_at >= self.interval_s

    def roll(self) -> Path | None:
        """Close the open chunk into a file (temp name, fsync, rename, fsync the directory)."""
        if not self._open:
            self._opened_at = None
            return None
        rank = self._rank
        bars = sorted(self._open.values(), key=lambda b: (b.ts, rank[b.symbol]))
        last: dict[str, datetime] = {}
        for bar in bars:
            last[bar.symbol] = bar.ts
        self._seq += 1
        name = f"chunk-{_ms(bars[0].ts):015d}-{self._seq:08d}.parquet"
        final = self.directory / name
        temp = self.directory / f".{name}{_TEMP_SUFFIX}"
        table = pa.Table.from_pydict(
            {
                "symbol": [b.symbol for b in bars],
                "ts": [b.ts for b in bars],
                "open": [b.open for b in bars],
                "high": [b.high for b in bars],
                "low": [b.low for b in bars],
                "close": [b.close for b in bars],
                "volume": [b.volume for b in bars],
            },
            schema=SCHEMA.with_metadata(
                {LAST_TS_KEY: json.dumps({s: t.isoformat() for s, t in last.items()})}
            ),
        )
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            if self.fsync:
                fsync_file(f.fileno())
        os.replace(temp, final)
        if self.fsync:
            fsync_dir(self.directory)
        for symbol, ts in last.items():
            if symbol not in self.closed_last or ts > self.closed_last[symbol]:
                self.closed_last[symbol] = ts
        self._open.clear()
        self._opened_at = None
        self.chunks_written += 1
        self.bars_written += len(bars)
        return final

    def stats(self) -> dict[str, int]:
        return {
            "chunks_written": self.chunks_written,
            "bars_written": self.bars_written,
            "bars_open": len(self._open),
            "bars_dropped": self.bars_dropped,
        }


def read_chunks(directory: Path, read: Callable[[Path], Iterator[Bar]]) -> Iterator[Bar]:
    """The bars of every closed chunk in ``directory`` in non-decreasing open time (within one
    time, chunk order then the chunk's own order), each (symbol, time) once. Chunks are opened
    only when the merge reaches their first time, so memory follows the chunks that overlap,
    not their number. ``read`` opens one chunk (checked and filtered by the caller)."""
    pending = chunks(directory)
    pending.reverse()  # pop() takes the oldest
    heap: list[tuple[datetime, int, int, Bar, Iterator[Bar]]] = []
    order = 0  # ties: earlier chunk first, then the chunk's own row order
    last: dict[str, datetime] = {}

    def push(it: Iterator[Bar], chunk_order: int) -> None:
        nonlocal order
        bar = next(it, None)
        if bar is not None:
            order += 1
            heapq.heappush(heap, (bar.ts, chunk_order, order, bar, it))

    opened = 0
    while heap or pending:
        # Open every chunk that starts at or before the earliest bar waiting.
        while pending and (not heap or _ms(heap[0][0]) >= pending[-1].first_ms):
            opened += 1
            push(read(pending.pop().path), opened)
        if not heap:
            continue
        ts, chunk_order, _, bar, it = heapq.heappop(heap)
        push(it, chunk_order)
        previous = last.get(bar.symbol)
        if previous is not None and ts <= previous:
            continue  # recorded twice (a refill overlapping a live chunk)
        last[bar.symbol] = ts
        yield bar
