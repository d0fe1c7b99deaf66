"""Writing a bars file (``tradeplane bars fetch``): CSV or Parquet by the file's extension, in
the schema the readers take (``bars_file``, ``bars_parquet``), streamed a page at a time.

Bars go out de-duplicated and in order: within one symbol, a bar at or before the last one
written is dropped (pages of a venue's history may overlap) and counted. The file appears under
its name only once complete (written to a temp name beside it, fsynced, renamed), so an
interrupted fetch never leaves a file a backtest would take for the whole range.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from tradeplane.backtest.bars_file import COLUMNS
from tradeplane.core.model import Bar
from tradeplane.durable import fsync_dir, fsync_file

PARQUET_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        *((name, pa.float64()) for name in ("open", "high", "low", "close", "volume")),
    ]
)
SUFFIXES = (".csv", ".parquet", ".pq")


def bars_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: write .csv or .parquet (got {suffix or 'no extension'!r})")
    return "csv" if suffix == ".csv" else "parquet"


class BarWriter:
    """``with BarWriter(path) as out: out.write(page)``; the file is published on a clean exit
    and removed on an exception."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.format = bars_format(self.path)
        self.temp = self.path.with_name(f".{self.path.name}.part")
        self.written = 0
        self.dropped = 0
        self.first: datetime | None = None
        self.last_ts: datetime | None = None
        self._last: dict[str, datetime] = {}
        self._file: IO[Any] | None = None
        self._csv: Any = None
        self._parquet: pq.ParquetWriter | None = None

    def __enter__(self) -> BarWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "csv":
            self._file = self.temp.open("w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._file)
            self._csv.writerow(COLUMNS)
        else:
            self._file = self.temp.open("wb")
            self._parquet = pq.ParquetWriter(self._file, PARQUET_SCHEMA)
        return self

    def write(self, bars: Iterable[Bar]) -> int:
        """Write ``bars`` (one page, oldest first); returns how many were new."""
        fresh = []
        for bar in bars:
            last = self._last.get(bar.symbol)
            if last is not None and bar.ts <= last:
                self.dropped += 1
                continue
            self._last[bar.symbol] = bar.ts
            fresh.append(bar)
        if not fresh:
            return 0
        if self._csv is not None:
            self._csv.writerows(
                (b.symbol, b.ts.isoformat().replace("+00:00", "Z"), *_values(b)) for b in fresh
            )
        elif self._parquet is not None:
            self._parquet.write_table(
                pa.Table.from_pydict(
                    {
                        "symbol": [b.symbol for b in fresh],
                        "ts": [b.ts for b in fresh],
                        **{
                            name: [getattr(b, name) for b in fresh]
                            for name in ("open", "high", "low", "close", "volume")
                        },
                    },
                    schema=PARQUET_SCHEMA,
                )
            )
        self.first = self.first or fresh[0].ts
        self.last_ts = fresh[-1].ts
        self.written += len(fresh)
        return len(fresh)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None
        try:
            if self._parquet is not None:
                self._parquet.close()
            self._file.flush()
            if kind is None:
                fsync_file(self._file.fileno())
        finally:
            self._file.close()
        if kind is None:
            os.replace(self.temp, self.path)
            fsync_dir(self.path.parent)
        else:
            self.temp.unlink(missing_ok=True)


def _values(bar: Bar) -> tuple[str, ...]:
    return tuple(repr(v) for v in (bar.open, bar.high, bar.low, bar.close, bar.volume))
