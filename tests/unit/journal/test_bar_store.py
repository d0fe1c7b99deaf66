"""Recorded bars: closed Parquet chunks written atomically, at most the open chunk lost to a
crash, and a reader that merges chunks by time (``journal.bar_store``,
``backtest.bars_recorded``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tradeplane.backtest.bars_file import BarFileError, BarFilter
from tradeplane.backtest.bars_parquet import read_parquet_bars
from tradeplane.backtest.bars_recorded import read_recorded_bars
from tradeplane.core.model import Bar
from tradeplane.journal.bar_store import (
    BarRecorder,
    bars_dir,
    chunks,
    last_recorded,
    read_chunks,
)

T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)


def bar(symbol: str, minute: int, close: float = 10.0) -> Bar:
    return Bar(symbol, T0 + timedelta(minutes=minute), 10.0, 11.0, 9.0, close, 1.0)


def minutes(symbols: tuple[str, ...], first: int, last: int) -> list[Bar]:
    return [bar(s, m) for m in range(first, last) for s in symbols]


def recorder(state_dir: Path, max_bars: int = 4, interval_s: float = 60.0) -> BarRecorder:
    return BarRecorder(bars_dir(state_dir), max_bars=max_bars, interval_s=interval_s)


def keys(bars: list[Bar]) -> list[tuple[str, int]]:
    return [(b.symbol, int((b.ts - T0).total_seconds() // 60)) for b in bars]


def test_chunk_full_then_closed_file_and_the_rest_stays_open(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=4)
    written = rec.add(minutes(("A", "B"), 0, 3), now=0.0)
    assert len(written) == 1 and rec.open_bars == 2
    assert keys(list(read_recorded_bars(tmp_path))) == [("A", 0), ("B", 0), ("A", 1), ("B", 1)]


def test_open_chunk_then_the_bars_not_yet_closed_in_chunk_order(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=4)
    rec.add(minutes(("B", "A"), 0, 3), now=0.0)  # B first: the order the feed delivered
    assert keys(rec.open_chunk()) == [("B", 2), ("A", 2)]
    closed = keys(list(read_recorded_bars(tmp_path)))
    assert closed + keys(rec.open_chunk()) == keys(minutes(("B", "A"), 0, 3))


def test_chunk_older_than_interval_then_closed_on_next_add_or_roll(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=100, interval_s=10.0)
    assert rec.add([bar("A", 0)], now=0.0) == []
    assert not rec.due(9.9) and rec.due(10.0)
    assert len(rec.add([bar("A", 1)], now=10.0)) == 1
    rec.add([bar("A", 2)], now=11.0)
    assert rec.roll() is not None and rec.roll() is None  # nothing open: no empty chunk
    assert len(chunks(bars_dir(tmp_path))) == 2


def test_reading_across_chunks_then_one_series_in_time_then_symbol_order(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=3)
    rec.add(minutes(("A", "B", "C"), 0, 4), now=0.0)
    assert len(chunks(bars_dir(tmp_path))) == 4
    assert keys(list(read_recorded_bars(tmp_path))) == keys(minutes(("A", "B", "C"), 0, 4))


def test_filter_then_only_kept_symbols_and_times(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=2)
    rec.add(minutes(("A", "B"), 0, 5), now=0.0)
    keep = BarFilter(frozenset({"B"}), T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    assert keys(list(read_recorded_bars(tmp_path, keep))) == [("B", 1), ("B", 2)]


def test_torn_temp_file_then_ignored_by_reader_and_removed_by_next_writer(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=2)
    rec.add(minutes(("A",), 0, 2), now=0.0)
    torn = bars_dir(tmp_path) / ".chunk-001767364320000-00000002.parquet.tmp"
    torn.write_bytes(b"PAR1\x00\x01half a chunk")
    assert keys(list(read_recorded_bars(tmp_path))) == [("A", 0), ("A", 1)]
    recorder(tmp_path)
    assert not torn.exists()


def test_killed_writer_then_only_open_chunk_lost_and_gaps_name_where_to_refill(
    tmp_path: Path,
) -> None:
    rec = recorder(tmp_path, max_bars=4)
    rec.add(minutes(("A", "B"), 0, 3), now=0.0)  # minutes 0-1 closed, minute 2 open
    del rec  # SIGKILL: the open chunk is gone
    after = recorder(tmp_path, max_bars=4)
    assert last_recorded(bars_dir(tmp_path)) == {"A": T0 + timedelta(minutes=1)} | {
        "B": T0 + timedelta(minutes=1)
    }
    live = minutes(("A", "B"), 4, 5)
    assert after.gaps(live) == {"A": T0 + timedelta(minutes=1), "B": T0 + timedelta(minutes=1)}
    after.add(live, now=1.0)
    assert after.gaps(minutes(("A", "B"), 5, 6)) == {}  # only the first bars after an open
    # The history asked for: more than the gap (overlapping both sides); only the gap is kept.
    after.add(minutes(("A", "B"), 0, 5), now=2.0, refill=True)
    after.roll()
    assert keys(list(read_recorded_bars(tmp_path))) == keys(minutes(("A", "B"), 0, 5))


def test_refill_arriving_after_a_roll_then_still_merged_in_time_order(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=2)
    rec.add(minutes(("A",), 0, 2), now=0.0)
    after = recorder(tmp_path, max_bars=2)
    live = minutes(("A",), 5, 7)
    after.gaps(live)
    after.add(live, now=0.0)  # closes a chunk starting at minute 5
    after.add(minutes(("A",), 2, 5), now=0.0, refill=True)
    after.roll()
    assert keys(list(read_recorded_bars(tmp_path))) == keys(minutes(("A",), 0, 7))


def test_bars_sent_again_then_recorded_once(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=3)
    rec.add(minutes(("A",), 0, 4), now=0.0)
    rec.add(minutes(("A",), 2, 5), now=0.0)  # a restarted feed re-sends from its snapshot
    rec.roll()
    assert keys(list(read_recorded_bars(tmp_path))) == keys(minutes(("A",), 0, 5))
    assert rec.bars_dropped == 2


def test_chunk_files_private_and_never_under_a_temp_name(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=1)
    rec.add([bar("A", 0)], now=0.0)
    files = list(bars_dir(tmp_path).iterdir())
    assert [f.name for f in files] == [chunks(bars_dir(tmp_path))[0].path.name]
    assert files[0].stat().st_mode & 0o777 == 0o600


def test_damaged_chunk_then_refused_not_skipped(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=1)
    rec.add([bar("A", 0), bar("A", 1)], now=0.0)
    chunks(bars_dir(tmp_path))[1].path.write_bytes(b"not parquet")
    with pytest.raises(BarFileError):
        list(read_recorded_bars(tmp_path))


def test_nothing_recorded_then_refused_with_how_to_record(tmp_path: Path) -> None:
    with pytest.raises(BarFileError, match='bars = "all"'):
        read_recorded_bars(tmp_path)


def test_many_chunks_then_opened_one_at_a_time(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=2)
    rec.add(minutes(("A",), 0, 40), now=0.0)
    opened: list[Path] = []

    def read(path: Path) -> Iterator[Bar]:
        opened.append(path)
        return read_parquet_bars(path)

    merged = read_chunks(bars_dir(tmp_path), read)
    first = [next(merged) for _ in range(3)]
    assert keys(first) == [("A", 0), ("A", 1), ("A", 2)] and len(opened) == 2
    assert len(list(merged)) == 37 and len(opened) == 20


def test_damaged_chunk_then_writer_still_opens_after_the_readable_ones(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bars=1)
    rec.add([bar("A", 0), bar("A", 1)], now=0.0)
    chunks(bars_dir(tmp_path))[1].path.write_bytes(b"not parquet")
    assert recorder(tmp_path).floor == {"A": T0}
