"""Bars a deployment recorded (``[journal] bars = "all"``), for backtests: the closed chunks in
``<state_dir>/bars/`` (``tradeplane.journal.bar_store``) merged into one series in time order.

Each chunk is read and checked as a Parquet bars file (a damaged chunk is refused with its row,
never skipped); a temp file a killed writer left is not a chunk and is ignored; a bar recorded
twice (a refill overlapping what was already closed) is yielded once. Chunks are opened as the
merge reaches them, so memory stays flat in the number of chunks that do not overlap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tradeplane.backtest.bars_file import BarFileError, BarFilter
from tradeplane.backtest.bars_parquet import read_parquet_bars
from tradeplane.core.model import Bar
from tradeplane.journal.bar_store import bars_dir, chunks, read_chunks


def read_recorded_bars(state_dir: Path, keep: BarFilter | None = None) -> Iterator[Bar]:
    """The recorded bars of the deployment whose state dir is ``state_dir``, in
    non-decreasing open time; ``BarFileError`` when it recorded none."""
    keep = keep or BarFilter()
    directory = bars_dir(Path(state_dir))
    if not chunks(directory):
        raise BarFileError(
            directory, None, 'no recorded bars (record them with [journal] bars = "all")'
        )
    return read_chunks(directory, lambda path: read_parquet_bars(path, keep))
