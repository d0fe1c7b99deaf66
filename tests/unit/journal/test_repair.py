"""Start-up repair of journal.jsonl against journal.db (the record), and tamper detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.journal.factories import DEPLOYMENT, notes
from tradeplane.core.errors import OperationalError, TransientError
from tradeplane.journal import store as store_module
from tradeplane.journal.reader import verify_journal
from tradeplane.journal.store import JournalStore


def make(state_dir: Path, n: int) -> bytes:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        for start in range(0, n, 7):
            store.commit(notes(min(7, n - start), start=start))
    return (state_dir / "journal.jsonl").read_bytes()


def keep_lines(path: Path, n: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:n]))


def reopen_and_check(state_dir: Path, expected: bytes) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.jsonl_path.read_bytes() == expected
        # the repaired file keeps extending the same chain
        assert store.commit(notes(1, start=10_000)) == [store.last_seq]
    result = verify_journal(state_dir / "journal.jsonl", deep=True)
    assert result.ok, result


@pytest.mark.parametrize("missing", [1, 5, 30])
def test_lines_missing_at_the_end_are_reappended_from_the_db(state_dir: Path, missing: int) -> None:
    original = make(state_dir, 30)
    keep_lines(state_dir / "journal.jsonl", 30 - missing)
    reopen_and_check(state_dir, original)


def test_a_deleted_jsonl_is_rebuilt_from_the_db(state_dir: Path) -> None:
    original = make(state_dir, 12)
    (state_dir / "journal.jsonl").unlink()
    reopen_and_check(state_dir, original)


@pytest.mark.parametrize("keep", [20, 0])
def test_a_torn_half_line_is_cut_and_the_rest_reappended(state_dir: Path, keep: int) -> None:
    original = make(state_dir, 20)
    path = state_dir / "journal.jsonl"
    lines = original.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep]) + lines[min(keep, 19)][:57])
    reopen_and_check(state_dir, original)


def test_a_torn_tail_of_zero_bytes_is_cut(state_dir: Path) -> None:
    original = make(state_dir, 10)
    path = state_dir / "journal.jsonl"
    keep_lines(path, 8)
    with open(path, "ab") as f:
        f.write(b"\0" * 300)  # what a lost delayed allocation leaves behind
    reopen_and_check(state_dir, original)


def test_jsonl_with_more_lines_than_the_db_is_refused(state_dir: Path, tmp_path: Path) -> None:
    longer = make(tmp_path / "other", 12)
    make(state_dir, 10)
    found = longer + b'{"client_order_id":null,"da'  # and a torn line
    (state_dir / "journal.jsonl").write_bytes(found)
    with pytest.raises(OperationalError, match=r"journal\.jsonl.*seq 12.*more lines"):
        JournalStore.open(state_dir, DEPLOYMENT)
    assert (state_dir / "journal.jsonl").read_bytes() == found  # refused before any repair


def test_open_reads_only_the_tail_of_the_jsonl(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = len(make(state_dir, 3000))
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        read.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.last_seq == 3000
    assert 0 < sum(read) <= 2 * 64 * 1024 < size


def test_jsonl_whose_last_line_disagrees_with_the_db_is_refused(state_dir: Path) -> None:
    make(state_dir, 10)
    path = state_dir / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"i":9', b'"i":8')
    path.write_bytes(b"".join(lines))
    with pytest.raises(OperationalError, match=r"journal\.jsonl.*line 10.*disagrees"):
        JournalStore.open(state_dir, DEPLOYMENT)
    assert path.read_bytes() == b"".join(lines)  # fail closed: nothing rewritten


def test_jsonl_whose_last_line_is_not_a_journal_line_is_refused(state_dir: Path) -> None:
    make(state_dir, 3)
    with open(state_dir / "journal.jsonl", "ab") as f:
        f.write(b"hello\n")
    with pytest.raises(OperationalError, match=r"journal\.jsonl: last complete line"):
        JournalStore.open(state_dir, DEPLOYMENT)


def test_an_edited_middle_line_is_reported_by_line_number(state_dir: Path) -> None:
    make(state_dir, 40)
    path = state_dir / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[16] = lines[16].replace(b'"i":16', b'"i":61')
    path.write_bytes(b"".join(lines))
    for deep in (False, True):
        result = verify_journal(path, deep=deep)
        assert not result.ok and result.first_bad_line == 17 and result.lines == 16
        assert "hash mismatch" in (result.reason or "")


def test_verify_reports_a_torn_last_line(state_dir: Path) -> None:
    original = make(state_dir, 5)
    path = state_dir / "journal.jsonl"
    path.write_bytes(original[:-10])
    result = verify_journal(path)
    assert (
        not result.ok
        and result.first_bad_line == 5
        and "no trailing newline" in (result.reason or "")
    )


def test_failed_append_is_repaired_by_the_next_commit(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_all = store_module.write_all

    def torn_write(fd: int, data: bytes) -> int:
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(3))
        monkeypatch.setattr(store_module, "write_all", torn_write)
        with pytest.raises(TransientError, match="repaired"):
            store.commit(notes(3, start=3))
        assert store.last_seq == 6  # the batch is in the record
        monkeypatch.setattr(store_module, "write_all", real_write_all)
        assert store.commit(notes(3, start=3)) == [4, 5, 6]  # the idempotent retry
        assert store.commit(notes(1, start=6)) == [7]
    result = verify_journal(state_dir / "journal.jsonl", deep=True)
    assert result.ok and result.lines == 7
