"""Writing bars files (``backtest.bars_out``): by extension, de-duplicated and in order, the
file published only once complete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tradeplane.backtest.bars_file import read_csv_bars
from tradeplane.backtest.bars_out import BarWriter
from tradeplane.backtest.bars_parquet import read_parquet_bars
from tradeplane.core.model import Bar

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)


def bars(first: int, last: int, symbol: str = "AAA") -> list[Bar]:
    return [
        Bar(symbol, T0 + timedelta(minutes=m), 10.0, 11.0 + m, 9.0, 10.25 + m / 3, 1.5)
        for m in range(first, last)
    ]


@pytest.mark.parametrize(
    ("name", "read"), [("b.csv", read_csv_bars), ("b.parquet", read_parquet_bars)]
)
def test_overlapping_pages_then_each_bar_once_read_back_equal(
    tmp_path: Path, name: str, read: object
) -> None:
    out = tmp_path / name
    with BarWriter(out) as writer:
        writer.write(bars(0, 5))
        writer.write(bars(3, 8))  # pages overlapping by two bars
    assert writer.written == 8 and writer.dropped == 2
    assert list(read(out)) == bars(0, 8)  # type: ignore[operator]


def test_failure_mid_fetch_then_no_file_and_no_temp_left(tmp_path: Path) -> None:
    out = tmp_path / "b.parquet"
    with pytest.raises(RuntimeError), BarWriter(out) as writer:
        writer.write(bars(0, 5))
        raise RuntimeError("venue went away")
    assert list(tmp_path.iterdir()) == []


def test_unknown_extension_then_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.parquet"):
        BarWriter(tmp_path / "b.json")


def test_read_bars_file_then_reader_chosen_by_extension(tmp_path: Path) -> None:
    from tradeplane.backtest.bars_file import read_bars_file

    for name in ("b.csv", "b.parquet"):
        with BarWriter(tmp_path / name) as writer:
            writer.write(bars(0, 3))
        assert list(read_bars_file(tmp_path / name)) == bars(0, 3)
