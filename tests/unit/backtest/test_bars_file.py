"""Bars files for backtests: the documented schema read row by row, every bad row refused with
its line number, nothing skipped silently (``backtest.bars_file``)."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradeplane.backtest.bars_file import BarFileError, BarFilter, parse_ts, read_csv_bars

HEADER = "symbol,ts,open,high,low,close,volume\n"


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def refused(path: Path) -> BarFileError:
    with pytest.raises(BarFileError) as info:
        list(read_csv_bars(path))
    return info.value


def test_valid_file_then_bars_in_file_order_with_utc_open_times(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "AAA,2026-01-02T14:30:00Z,10,11,9.5,10.5,100\n"
        "BBB,2026-01-02T14:30:00+00:00,20,21,19,20.5,0\n"
        "AAA,1767364260,10.5,10.6,10.1,10.2,50\n",
    )
    bars = list(read_csv_bars(path))
    assert [(b.symbol, b.ts) for b in bars] == [
        ("AAA", datetime(2026, 1, 2, 14, 30, tzinfo=UTC)),
        ("BBB", datetime(2026, 1, 2, 14, 30, tzinfo=UTC)),
        ("AAA", datetime(2026, 1, 2, 14, 31, tzinfo=UTC)),
    ]
    assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (
        10.0,
        11.0,
        9.5,
        10.5,
        100.0,
    )


def test_columns_in_another_order_then_read_by_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "100,10.5,9.5,11,10,2026-01-02T14:30:00Z,AAA\n",
        header="volume,close,low,high,open,ts,symbol\n",
    )
    (bar,) = read_csv_bars(path)
    assert (bar.symbol, bar.open, bar.close, bar.volume) == ("AAA", 10.0, 10.5, 100.0)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("AAA,2026-01-02T14:31:00Z,nan,11,9,10,1", "open must be finite"),
        ("AAA,2026-01-02T14:31:00Z,-1,11,9,10,1", "open must be > 0"),
        ("AAA,2026-01-02T14:31:00Z,10,11,9,10,-5", "volume must be >= 0"),
        ("AAA,2026-01-02T14:31:00Z,10,9,9,10,1", "inconsistent"),
        ("AAA,2026-01-02T14:31:00Z,ten,11,9,10,1", "open 'ten' is not a number"),
        ("AAA,2026-01-02T14:31:00,10,11,9,10,1", "no time zone"),
        ("AAA,yesterday,10,11,9,10,1", "neither ISO-8601 nor epoch seconds"),
        (",2026-01-02T14:31:00Z,10,11,9,10,1", "symbol is empty"),
        ("AAA,2026-01-02T14:31:00Z,10,11,9,10", "wrong number of fields"),
        ("AAA,2026-01-02T14:31:00Z,10,11,9,10,1,7", "wrong number of fields"),
    ],
)
def test_bad_row_then_refused_with_its_line_number(tmp_path: Path, row: str, reason: str) -> None:
    path = write(tmp_path, "AAA,2026-01-02T14:30:00Z,10,11,9,10,1\n" + row + "\n")
    error = refused(path)
    assert error.line == 3 and reason in error.reason, error
    assert f"{path}, line 3" in str(error)


def test_duplicate_bar_then_refused_naming_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "AAA,2026-01-02T14:30:00Z,10,11,9,10,1\n"
        "BBB,2026-01-02T14:30:00Z,10,11,9,10,1\n"
        "AAA,2026-01-02T14:30:00Z,10,11,9,10,1\n",
    )
    error = refused(path)
    assert error.line == 4 and "a duplicate of line 2" in error.reason


def test_out_of_order_bar_then_refused_naming_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "AAA,2026-01-02T14:31:00Z,10,11,9,10,1\nAAA,2026-01-02T14:30:00Z,10,11,9,10,1\n",
    )
    error = refused(path)
    assert error.line == 3 and "out of order after line 2" in error.reason


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("symbol,ts,open,high,low,close\n", "missing ['volume']"),
        ("symbol,ts,open,high,low,close,volume,vwap\n", "unknown ['vwap']"),
        ("symbol,ts,open,high,low,close,volume,open\n", "repeated ['open']"),
        ("", "no header row"),
    ],
)
def test_bad_header_then_refused_at_line_1(tmp_path: Path, header: str, reason: str) -> None:
    error = refused(write(tmp_path, "", header=header))
    assert error.line == 1 and reason in error.reason


def test_filters_then_only_kept_bars_yet_every_row_checked(tmp_path: Path) -> None:
    rows = "".join(
        f"{s},2026-01-02T14:{m:02d}:00Z,10,11,9,10,1\n" for m in range(30, 34) for s in ("A", "B")
    )
    path = write(tmp_path, rows + "A,2026-01-02T14:20:00Z,10,11,9,10,1\n")
    keep = BarFilter(
        symbols=frozenset({"A"}),
        start=datetime(2026, 1, 2, 14, 31, tzinfo=UTC),
        end=datetime(2026, 1, 2, 14, 33, tzinfo=UTC),
    )
    reader = read_csv_bars(path, keep)
    assert [b.ts.minute for b in (next(reader), next(reader))] == [31, 32]
    # The out-of-order last row is outside the filter, and still refused.
    with pytest.raises(BarFileError, match="line 10"):
        next(reader)


def test_missing_or_undecodable_file_then_refused_naming_it(tmp_path: Path) -> None:
    assert "cannot be read" in refused(tmp_path / "nope.csv").reason
    path = tmp_path / "bars.csv"
    path.write_bytes(HEADER.encode() + b"AAA,\xff\xfe,1,1,1,1,1\n")
    assert "not UTF-8" in refused(path).reason


def test_parse_ts_when_offset_not_utc_then_converted_to_utc() -> None:
    assert parse_ts("2026-01-02T15:30:00+01:00") == datetime(2026, 1, 2, 14, 30, tzinfo=UTC)


def test_large_file_then_streamed_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    start = 1_767_364_200
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(20_000):
            f.write(f"AAA,{start + 60 * i},10,11,9,10,1\n")
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_csv_bars(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 2 * 2**20, f"peak {peak} bytes: the file is loaded, not streamed"
