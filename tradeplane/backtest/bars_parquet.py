"""Bars from a Parquet file, for backtests (issue 16): read one record batch at a time, so memory
stays flat in the number of bars, and every bad row is refused with its row number, never skipped.

The columns are those of the CSV schema (``tradeplane.backtest.bars_file``: symbol, ts, open,
high, low, close, volume; no other column), with these types:

=========  ==============================================================================
column     Parquet type
=========  ==============================================================================
symbol     string (plain, large or dictionary-encoded)
ts         the bar's *open* time, UTC: a ``timestamp`` with a time zone (any unit; stored
           instants are UTC by definition), or integer / float epoch seconds, or ISO-8601
           strings with a zone; a ``timestamp`` without a time zone is refused, as a naive
           CSV time is
open ...   open, high, low, close, volume: any integer or floating type
=========  ==============================================================================

A null anywhere is a bad row. Rows are numbered from 1 (the first data row of the file, across
row groups). The value and order rules are the CSV's: within one symbol strictly increasing
``ts`` (a duplicate or out-of-order bar is refused with both row numbers), symbols may
interleave; ``keep`` filters after every row is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tradeplane.backtest.bars_file import (
    COLUMNS,
    BarFileError,
    BarFilter,
    SymbolOrder,
    parse_ts,
)
from tradeplane.core.errors import InvalidMarketData

# The unpickling constructor: rows the batch check passed are not checked again one by one.
from tradeplane.core.model import Bar, _checked_bar

# Rows per record batch: large enough that Arrow's per-batch cost vanishes, small enough that
# memory stays a few MB whatever the file's row groups.
BATCH_ROWS = 16_384
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRICES = ("open", "high", "low", "close", "volume")
ROW = "row"


def _schema(path: Path, schema: pa.Schema) -> None:
    names = list(schema.names)
    missing = [c for c in COLUMNS if c not in names]
    extra = [n for n in names if n not in COLUMNS]
    if missing or extra:
        parts = [f"missing {missing}" if missing else "", f"unknown {extra}" if extra else ""]
        raise BarFileError(path, None, "columns: " + ", ".join(p for p in parts if p))
    symbol = schema.field("symbol").type
    if pa.types.is_dictionary(symbol):
        symbol = symbol.value_type
    if not (pa.types.is_string(symbol) or pa.types.is_large_string(symbol)):
        raise BarFileError(path, None, f"column symbol is {symbol}, expected a string")
    ts = schema.field("ts").type
    if pa.types.is_timestamp(ts):
        if ts.tz is None:
            raise BarFileError(
                path,
                None,
                f"column ts is {ts} without a time zone (write it as timestamp with tz='UTC')",
            )
    elif not (
        pa.types.is_integer(ts)
        or pa.types.is_floating(ts)
        or pa.types.is_string(ts)
        or pa.types.is_large_string(ts)
    ):
        raise BarFileError(
            path, None, f"column ts is {ts}, expected a UTC timestamp, epoch seconds or ISO text"
        )
    for name in _PRICES:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise BarFileError(path, None, f"column {name} is {kind}, expected a number")


class _OutOfRange(ValueError):
    """A timestamp a ``datetime`` cannot hold; raised when its row is built."""


def _times(column: pa.Array, *, strict: bool = False) -> list[Any]:
    """The ts column as Python values: ``datetime`` (UTC) for a timestamp column, else the raw
    numbers or strings (parsed row by row, so a bad one is named with its row). A timestamp out
    of range raises with ``strict``, else stands in its row as ``_OutOfRange``."""
    if not pa.types.is_timestamp(column.type):
        return column.to_pylist()
    # Integers in the column's unit, turned into UTC datetimes here: to_pylist would need the
    # tz database and drops nanoseconds silently.
    per_s = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[column.type.unit]
    raw: list[int | None] = column.cast(pa.int64()).to_pylist()
    micros = (
        raw if per_s == 1_000_000 else [None if v is None else v * 1_000_000 // per_s for v in raw]
    )
    if strict:  # no nulls: the batch check passed
        return [_EPOCH + timedelta(microseconds=v or 0) for v in micros]
    out: list[Any] = []
    for v in micros:
        try:
            out.append(None if v is None else _EPOCH + timedelta(microseconds=v))
        except OverflowError:
            out.append(_OutOfRange(f"ts {v} us since the epoch is out of range"))
    return out


def _ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, _OutOfRange):
        raise value
    if isinstance(value, str):
        return parse_ts(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_ts(repr(value))
    raise ValueError(f"ts {value!r} is not a time")


def _columns(batch: pa.RecordBatch) -> list[pa.Array]:
    # The file's column order may differ from COLUMNS.
    columns = [batch.column(batch.schema.get_field_index(name)) for name in COLUMNS]
    if pa.types.is_dictionary(columns[0].type):
        columns[0] = columns[0].cast(pa.string())
    return columns


def _rows(columns: list[pa.Array]) -> Iterator[tuple[Any, ...]]:
    values = [columns[0].to_pylist(), _times(columns[1]), *(c.to_pylist() for c in columns[2:])]
    return zip(*values, strict=True)


def _all_good(columns: list[pa.Array]) -> bool:
    """Every row of the batch passes ``Bar``'s checks, decided column-wise in Arrow (the rows
    are then built without checking each again). Only for a timestamp ``ts``; False sends the
    batch through the row-by-row path, which names the first bad row and its reason."""
    symbol, ts, *prices = columns
    if not pa.types.is_timestamp(ts.type):
        return False
    if any(c.null_count for c in columns):
        return False
    o, h, lo, c, v = (x.cast(pa.float64()) for x in prices)
    bad = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(symbol)), 0)
    for x in (o, h, lo, c):
        bad = pc.or_(bad, pc.invert(pc.and_(pc.is_finite(x), pc.greater(x, 0.0))))
    bad = pc.or_(bad, pc.invert(pc.and_(pc.is_finite(v), pc.greater_equal(v, 0.0))))
    bad = pc.or_(bad, pc.less(h, pc.max_element_wise(o, c, lo)))
    bad = pc.or_(bad, pc.greater(lo, pc.min_element_wise(o, c)))
    return not pc.any(bad).as_py()


def _checked_rows(columns: list[pa.Array]) -> list[Bar] | None:
    """The batch's bars when ``_all_good``; None sends it through the row-by-row path (which
    also names a time that is out of a datetime's range)."""
    if not _all_good(columns):
        return None
    symbols = pc.utf8_trim_whitespace(columns[0]).to_pylist()
    prices = [c.cast(pa.float64()).to_pylist() for c in columns[2:]]
    try:
        return list(map(_checked_bar, symbols, _times(columns[1], strict=True), *prices))
    except (OverflowError, ValueError):
        return None


def _bar(row: tuple[Any, ...]) -> Bar:
    if any(v is None for v in row):
        missing = [name for name, v in zip(COLUMNS, row, strict=True) if v is None]
        raise ValueError(f"null in {', '.join(missing)}")
    symbol, ts, o, h, lo, c, v = row
    return Bar(
        symbol=str(symbol).strip(),
        ts=_ts(ts),
        open=float(o),
        high=float(h),
        low=float(lo),
        close=float(c),
        volume=float(v),
    )


def read_parquet_bars(path: Path, keep: BarFilter | None = None) -> Iterator[Bar]:
    """The bars of a Parquet file (schema above), streamed by record batch; ``BarFileError``
    at the first bad row, with its row number."""
    keep = keep or BarFilter()
    try:
        f = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise BarFileError(path, None, f"cannot be read as Parquet: {exc}") from None
    with f:
        _schema(path, f.schema_arrow)
        order = SymbolOrder(path, ROW)
        row_number = 0
        try:
            batches = f.iter_batches(batch_size=BATCH_ROWS, columns=list(COLUMNS))
            for batch in batches:
                columns = _columns(batch)
                checked = _checked_rows(columns)
                if checked is not None:
                    for bar in checked:
                        row_number += 1
                        order.check(bar, row_number)
                        if keep.keeps(bar):
                            yield bar
                    continue
                for row in _rows(columns):
                    row_number += 1
                    try:
                        bar = _bar(row)
                    except (ValueError, TypeError, OverflowError, OSError, InvalidMarketData) as e:
                        raise BarFileError(path, row_number, str(e), unit=ROW) from None
                    order.check(bar, row_number)
                    if keep.keeps(bar):
                        yield bar
        except (OSError, pa.ArrowInvalid) as exc:
            raise BarFileError(path, None, f"unreadable after row {row_number}: {exc}") from None
