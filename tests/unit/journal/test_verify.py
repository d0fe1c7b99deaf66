"""verify_journal: streaming check of the JSONL file, in one process or split across workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.journal.factories import DEPLOYMENT, notes
from tradeplane.core.errors import OperationalError
from tradeplane.journal import reader as reader_module
from tradeplane.journal.reader import verify_journal
from tradeplane.journal.records import GENESIS_HASH, VerifyResult
from tradeplane.journal.store import JournalStore

N = 30


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    with JournalStore.open(tmp_path / "state", DEPLOYMENT) as store:
        for start in range(0, N, 4):
            store.commit(notes(min(4, N - start), start=start))
        return store.jsonl_path


def in_segments(path: Path, n: int) -> VerifyResult:
    """What verify_journal computes with ``n`` workers, without starting processes."""
    bounds = reader_module._segment_bounds(path, path.stat().st_size, n)
    segments = [reader_module._verify_segment(path, *bounds[0], deep=False, anchored=False)]
    segments += [reader_module._verify_segment(path, a, b, deep=False) for a, b in bounds[1:]]
    return reader_module._stitch(segments)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_an_intact_journal_verifies_the_same_in_one_or_many_segments(journal: Path) -> None:
    single = verify_journal(journal, workers=1)
    assert single.ok and single.lines == N and single.last_seq == N
    for n in (2, 3, 7, N, N + 5):
        assert in_segments(journal, n) == single


def test_an_empty_journal_verifies_at_genesis(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"")
    assert verify_journal(path) == VerifyResult(True, 0, None, None, 0, GENESIS_HASH)
    assert in_segments(path, 3).ok


def test_a_missing_file_is_an_operational_error(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match=r"journal\.jsonl does not exist"):
        verify_journal(tmp_path / "journal.jsonl")


@pytest.mark.parametrize("segments", [1, 2, 3, 7])
def test_an_edited_line_anywhere_is_reported_by_its_line_number(
    journal: Path, segments: int
) -> None:
    original = lines_of(journal)
    for k in range(N):
        edited = list(original)
        edited[k] = edited[k].replace(b'"i":', b'"j":')
        journal.write_bytes(b"".join(edited))
        result = in_segments(journal, segments)
        assert (result.ok, result.first_bad_line, result.lines) == (False, k + 1, k), k
        assert result.last_seq == k


@pytest.mark.parametrize("segments", [1, 2, 3, 7])
def test_a_deleted_line_anywhere_is_reported_at_the_line_after_it(
    journal: Path, segments: int
) -> None:
    original = lines_of(journal)
    for k in range(N - 1):  # deleting the last line leaves a valid, shorter chain
        journal.write_bytes(b"".join(original[:k] + original[k + 1 :]))
        result = in_segments(journal, segments)
        assert (result.ok, result.first_bad_line) == (False, k + 1), k
        assert "seq" in (result.reason or "") or "prev" in (result.reason or "")


@pytest.mark.parametrize("segments", [1, 3])
def test_swapped_lines_are_reported(journal: Path, segments: int) -> None:
    lines = lines_of(journal)
    lines[10], lines[11] = lines[11], lines[10]
    journal.write_bytes(b"".join(lines))
    assert in_segments(journal, segments).first_bad_line == 11


def test_a_duplicated_line_is_reported(journal: Path) -> None:
    lines = lines_of(journal)
    journal.write_bytes(b"".join([*lines[:5], lines[4], *lines[5:]]))
    for n in (1, 2, 3):
        assert in_segments(journal, n).first_bad_line == 6


def test_worker_processes_give_the_same_answers(journal: Path) -> None:
    assert verify_journal(journal, workers=3) == verify_journal(journal, workers=1)
    lines = lines_of(journal)
    lines[25] = lines[25].replace(b'"i":25', b'"i":52')
    journal.write_bytes(b"".join(lines))
    result = verify_journal(journal, workers=3, deep=True)
    assert (result.first_bad_line, result.lines) == (26, 25)
    assert "hash mismatch" in (result.reason or "")


def test_a_failed_worker_falls_back_to_checking_in_process(
    journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_worker(*_args: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", "raise SystemExit(3)"], stdout=subprocess.PIPE
        )

    monkeypatch.setattr(reader_module, "_spawn_segment", broken_worker)
    result = verify_journal(journal, workers=3)
    assert result.ok and result.lines == N


def test_a_torn_last_line_is_reported_as_incomplete(journal: Path) -> None:
    data = journal.read_bytes()
    journal.write_bytes(data[:-30])
    for n in (1, 3):
        result = in_segments(journal, n)
        assert result.first_bad_line == N and "no trailing newline" in (result.reason or "")
