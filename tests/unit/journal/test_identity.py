"""The store opened against the identity a running deployment expects, and its epoch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.unit.journal.factories import DEPLOYMENT, notes
from tradeplane.core.errors import JournalLostError, StaleEpochError
from tradeplane.core.fencing import FENCE_SCOPE
from tradeplane.core.run_record import JournalIdentity
from tradeplane.journal.records import StateWrite
from tradeplane.journal.store import JournalStore


def written(state_dir: Path, n: int = 3) -> JournalIdentity:
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False) as store:
        store.commit(notes(n))
        return store.identity()


def test_genesis_is_drawn_when_the_journal_is_created_and_stays_with_it(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False) as store:
        genesis = store.genesis
        assert len(genesis) == 64
        store.commit(notes(2))
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False) as store:
        assert store.genesis == genesis


def test_journal_written_before_genesis_was_kept_then_genesis_is_its_first_lines_hash(
    state_dir: Path,
) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False) as store:
        store.commit(notes(2))
        first = store.jsonl_path.read_text().splitlines()[0]
        store.conn.execute("DELETE FROM meta WHERE key = 'genesis'")
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False) as store:
        assert store.genesis and f'"hash":"{store.genesis}"' in first


def test_expected_journal_when_its_state_dir_is_gone_then_lost_and_nothing_created(
    tmp_path: Path, state_dir: Path
) -> None:
    ident = written(state_dir)
    state_dir.rename(tmp_path / "moved")
    with pytest.raises(JournalLostError, match=r"journal_lost: .*no journal files"):
        JournalStore.open(state_dir, DEPLOYMENT, expect=ident)
    assert not state_dir.exists()


def test_expected_journal_when_another_journal_is_there_then_lost(tmp_path: Path) -> None:
    ident = written(tmp_path / "a")
    written(tmp_path / "b")
    with pytest.raises(JournalLostError, match="different journal"):
        JournalStore.open(tmp_path / "b", DEPLOYMENT, expect=ident)


def test_expected_journal_when_lines_acknowledged_are_missing_then_lost(state_dir: Path) -> None:
    ident = written(state_dir, 3)
    ahead = JournalIdentity(ident.genesis, ident.epoch, ident.last_seq + 1)
    with pytest.raises(JournalLostError, match="3 lines but 4 were acknowledged"):
        JournalStore.open(state_dir, DEPLOYMENT, expect=ahead)
    with JournalStore.open(state_dir, DEPLOYMENT, expect=ident) as store:  # not left locked
        assert store.last_seq == 3


def test_journal_epoch_not_newer_than_the_recorded_one_then_refused(state_dir: Path) -> None:
    JournalStore.open(state_dir, DEPLOYMENT, fsync=False, epoch=5).close()
    for epoch in (4, 5):
        with pytest.raises(StaleEpochError, match="not newer"):
            JournalStore.open(state_dir, DEPLOYMENT, fsync=False, epoch=epoch)
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False, epoch=6) as store:
        assert store.epoch == 6


def test_journal_overtaken_by_a_newer_epoch_then_commits_nothing(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False, epoch=5) as store:
        store.commit(notes(1))
        # A newer journal took the same files over (what the lock keeps from happening on one
        # node, and a shared file system could let through).
        other = sqlite3.connect(store.db_path)
        other.execute("UPDATE meta SET value = '6' WHERE key = 'journal_epoch'")
        other.commit()
        other.close()
        with pytest.raises(StaleEpochError, match="replaced by epoch 6"):
            store.commit(notes(1, start=1))
        assert store.last_seq == 1


def test_fences_survive_a_reopen(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False) as store:
        store.commit([], [StateWrite(FENCE_SCOPE, "broker", {"epoch": 12}, 0.0)])
        assert store.fences == {"broker": 12}
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False) as store:
        assert store.fences == {"broker": 12}
