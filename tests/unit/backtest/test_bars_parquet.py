"""Bars from Parquet for backtests: the CSV schema with Arrow types, streamed by record batch,
every bad row refused with its row number (``backtest.bars_parquet``)."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tradeplane.backtest.bars_file import BarFileError, BarFilter
from tradeplane.backtest.bars_parquet import read_parquet_bars

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)


def columns(n: int = 3, symbols: tuple[str, ...] = ("AAA",)) -> dict[str, list[Any]]:
    rows = [(s, T0 + timedelta(minutes=i)) for i in range(n) for s in symbols]
    return {
        "symbol": [s for s, _ in rows],
        "ts": [t for _, t in rows],
        "open": [10.0] * len(rows),
        "high": [11.0] * len(rows),
        "low": [9.0] * len(rows),
        "close": [10.5] * len(rows),
        "volume": [100.0] * len(rows),
    }


def write(
    tmp_path: Path,
    cols: dict[str, list[Any]],
    types: dict[str, pa.DataType] | None = None,
    row_group_size: int | None = None,
) -> Path:
    types = {"ts": pa.timestamp("us", tz="UTC"), **(types or {})}
    table = pa.table({k: pa.array(v, type=types.get(k)) for k, v in cols.items()})
    path = tmp_path / "bars.parquet"
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def refused(path: Path) -> BarFileError:
    with pytest.raises(BarFileError) as info:
        list(read_parquet_bars(path))
    return info.value


def test_timestamp_utc_column_then_bars_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, columns(2, ("AAA", "BBB")))
    bars = list(read_parquet_bars(path))
    assert [(b.symbol, b.ts) for b in bars] == [
        ("AAA", T0),
        ("BBB", T0),
        ("AAA", T0 + timedelta(minutes=1)),
        ("BBB", T0 + timedelta(minutes=1)),
    ]
    assert bars[0].ts.tzinfo is not None and bars[0].ts.utcoffset() == timedelta(0)
    assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (
        10.0,
        11.0,
        9.0,
        10.5,
        100.0,
    )


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamp_units_and_other_zones_then_utc_instants(tmp_path: Path, unit: str) -> None:
    path = write(tmp_path, columns(2), {"ts": pa.timestamp(unit, tz="America/New_York")})
    assert [b.ts for b in read_parquet_bars(path)] == [T0, T0 + timedelta(minutes=1)]


def test_epoch_seconds_and_iso_text_columns_then_read(tmp_path: Path) -> None:
    cols = columns(2)
    cols["ts"] = [int(t.timestamp()) for t in cols["ts"]]
    epoch = write(tmp_path, cols, {"ts": pa.int64()})
    assert [b.ts for b in read_parquet_bars(epoch)] == [T0, T0 + timedelta(minutes=1)]
    cols["ts"] = ["2026-01-02T14:30:00Z", "2026-01-02T14:31:00+00:00"]
    iso = write(tmp_path, cols, {"ts": pa.string()})
    assert [b.ts for b in read_parquet_bars(iso)] == [T0, T0 + timedelta(minutes=1)]


def test_dictionary_symbols_and_integer_prices_then_read(tmp_path: Path) -> None:
    cols = columns(2)
    cols["volume"] = [5, 6]
    path = write(
        tmp_path, cols, {"symbol": pa.dictionary(pa.int32(), pa.string()), "volume": pa.int64()}
    )
    assert [(b.symbol, b.volume) for b in read_parquet_bars(path)] == [("AAA", 5.0), ("AAA", 6.0)]


def test_timestamp_without_zone_then_refused(tmp_path: Path) -> None:
    cols = columns(2)
    cols["ts"] = [t.replace(tzinfo=None) for t in cols["ts"]]
    error = refused(write(tmp_path, cols, {"ts": pa.timestamp("us")}))
    assert "without a time zone" in str(error)


def test_iso_text_without_zone_then_refused_with_its_row(tmp_path: Path) -> None:
    cols = columns(2)
    cols["ts"] = ["2026-01-02T14:30:00Z", "2026-01-02T14:31:00"]
    error = refused(write(tmp_path, cols, {"ts": pa.string()}))
    assert error.line == 2 and "row 2" in str(error) and "no time zone" in str(error)


def test_missing_or_extra_column_then_refused(tmp_path: Path) -> None:
    cols = columns(1)
    del cols["volume"]
    assert "missing ['volume']" in str(refused(write(tmp_path, cols)))
    cols = {**columns(1), "vwap": [1.0]}
    assert "unknown ['vwap']" in str(refused(write(tmp_path, cols)))


def test_wrong_column_type_then_refused(tmp_path: Path) -> None:
    cols = columns(1)
    cols["close"] = ["10.5"]
    assert "column close is string" in str(refused(write(tmp_path, cols)))


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("close", None, "null in close"),
        ("symbol", None, "null in symbol"),
        ("high", 8.0, "inconsistent"),
        ("open", -1.0, "open"),
        ("volume", float("nan"), "volume"),
        ("symbol", "", "symbol is empty"),
    ],
)
def test_bad_value_then_refused_with_row_number_never_skipped(
    tmp_path: Path, column: str, value: Any, reason: str
) -> None:
    cols = columns(5)
    cols[column][3] = value
    error = refused(write(tmp_path, cols, row_group_size=2))  # row 4 is in the second group
    assert error.line == 4 and "row 4" in str(error) and reason in str(error)


def test_bad_row_after_good_ones_then_good_ones_yielded_first(tmp_path: Path) -> None:
    cols = columns(3)
    cols["close"][2] = None
    reader = read_parquet_bars(write(tmp_path, cols))
    assert next(reader).ts == T0 and next(reader).ts == T0 + timedelta(minutes=1)
    with pytest.raises(BarFileError):
        next(reader)


def test_duplicate_or_out_of_order_bar_of_a_symbol_then_refused_with_both_rows(
    tmp_path: Path,
) -> None:
    cols = columns(3, ("AAA", "BBB"))  # rows: A0 B0 A1 B1 A2 B2
    cols["ts"][4] = cols["ts"][2]  # A2 -> A1's time
    error = refused(write(tmp_path, cols, row_group_size=3))
    assert error.line == 5 and "a duplicate of row 3" in str(error)
    cols = columns(3, ("AAA", "BBB"))
    cols["ts"][5] = T0 - timedelta(minutes=1)
    assert "out of order after row 4" in str(refused(write(tmp_path, cols)))


def test_filter_then_only_kept_bars_but_every_row_checked(tmp_path: Path) -> None:
    cols = columns(4, ("AAA", "BBB"))
    path = write(tmp_path, cols)
    keep = BarFilter(frozenset({"BBB"}), T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    assert [(b.symbol, b.ts) for b in read_parquet_bars(path, keep)] == [
        ("BBB", T0 + timedelta(minutes=1)),
        ("BBB", T0 + timedelta(minutes=2)),
    ]
    cols["close"][0] = None  # a filtered-out row is still checked
    with pytest.raises(BarFileError):
        list(read_parquet_bars(write(tmp_path, cols), keep))


def test_not_parquet_then_refused(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    path.write_text("symbol,ts\n")
    assert "cannot be read as Parquet" in str(refused(path))
    assert "cannot be read" in str(refused(tmp_path / "absent.parquet"))


def test_many_row_groups_then_memory_flat(tmp_path: Path) -> None:
    n = 200_000
    start = int(T0.timestamp())
    table = pa.table(
        {
            "symbol": pa.array(["AAA"] * n),
            "ts": pa.array([start + 60 * i for i in range(n)], type=pa.int64()),
            "open": pa.array([10.0] * n),
            "high": pa.array([11.0] * n),
            "low": pa.array([9.0] * n),
            "close": pa.array([10.5] * n),
            "volume": pa.array([1.0] * n),
        }
    )
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=20_000)
    del table
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_parquet_bars(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    # Python-side peak: a record batch's worth of rows, not the file (~200k Bars > 40 MB).
    assert peak < 16 * 1024 * 1024


def test_timestamp_beyond_year_9999_then_refused_with_its_row(tmp_path: Path) -> None:
    cols = columns(2)
    micros = [int(t.timestamp() * 1_000_000) for t in cols["ts"]]
    micros[1] = 300_000_000_000 * 1_000_000  # year ~11000
    cols["ts"] = micros
    error = refused(write(tmp_path, cols, {"ts": pa.timestamp("us", tz="UTC")}))
    assert error.line == 2


def test_good_batches_and_a_bad_one_then_rows_numbered_across_both_paths(tmp_path: Path) -> None:
    cols = columns(40_000)  # three record batches; the bad row is in the third
    cols["low"][35_000] = 12.0
    error = refused(write(tmp_path, cols))
    assert error.line == 35_001 and "inconsistent" in str(error)
