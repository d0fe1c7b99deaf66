from __future__ import annotations

import itertools
import json
import math
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import CORRUPTION_SEEDS, eventually, garbage, seed_id
from tests.unit.journal.factories import DEPLOYMENT, notes, rec
from tradeplane import durable
from tradeplane.core.errors import OperationalError
from tradeplane.journal import queries, schema
from tradeplane.journal.reader import verify_journal
from tradeplane.journal.records import GENESIS_HASH, StateWrite
from tradeplane.journal.store import JournalStore

REPO = Path(__file__).resolve().parents[3]


def jsonl(store: JournalStore) -> list[dict]:
    return [json.loads(line) for line in store.jsonl_path.read_text().splitlines()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- sequence, chain, idempotency -------------------------------------------------------------


def test_seq_is_gap_free_and_the_chain_verifies_across_batches_and_reopen(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.last_seq == 0
        assert store.commit(notes(3)) == [1, 2, 3]
        assert store.commit(notes(2, start=3)) == [4, 5]
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.last_seq == 5
        assert store.commit(notes(1, start=5)) == [6]
        lines = jsonl(store)
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[0]["prev"] == GENESIS_HASH
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(lines))
    result = verify_journal(state_dir / "journal.jsonl", deep=True)
    assert result.ok and result.lines == 6 and result.last_hash == lines[-1]["hash"]


def test_commit_same_event_id_twice_then_one_line(store: JournalStore) -> None:
    first = store.commit([rec("e1", data={"v": 1})])
    again = store.commit([rec("e1", data={"v": 1})])
    assert first == again == [1]
    assert len(jsonl(store)) == 1 and store.last_seq == 1


def test_duplicate_event_id_within_a_batch_gets_the_first_seq(store: JournalStore) -> None:
    assert store.commit([rec("a"), rec("b"), rec("a"), rec("c")]) == [1, 2, 1, 3]
    assert [line["event_id"] for line in jsonl(store)] == ["a", "b", "c"]


def test_retried_batch_with_new_records_appends_only_the_new_ones(store: JournalStore) -> None:
    store.commit(notes(3))
    assert store.commit(notes(5)) == [1, 2, 3, 4, 5]
    assert [line["seq"] for line in jsonl(store)] == [1, 2, 3, 4, 5]


def test_duplicate_event_id_after_reopen_is_a_noop(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(2))
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.commit(notes(3)) == [1, 2, 3]
        assert len(jsonl(store)) == 3


def test_bad_record_fails_the_whole_batch_and_changes_nothing(store: JournalStore) -> None:
    store.commit(notes(1))
    batch = [*notes(2, start=1), rec("bad", "order_filled", {"price": math.nan})]
    with pytest.raises(ValueError, match=r"'order_filled'.*data\.price"):
        store.commit(batch)
    assert store.last_seq == 1 and len(jsonl(store)) == 1
    assert queries.last_seq(store.conn) == 1
    assert store.commit(notes(1, start=1)) == [2]
    assert verify_journal(store.jsonl_path).ok


def test_record_of_another_deployment_is_refused(store: JournalStore) -> None:
    with pytest.raises(ValueError, match="other"):
        store.commit([rec("e1", deployment="other")])
    assert store.last_seq == 0


def test_state_writes_upsert_in_the_same_commit_and_stay_out_of_the_jsonl(
    store: JournalStore,
) -> None:
    store.commit(notes(1), [StateWrite("risk", "daily", {"orders": 1}, 1.0)])
    store.commit([], [StateWrite("risk", "daily", {"orders": 2}, 2.0)])
    store.commit([], [StateWrite("strategy_snapshot", "s1", {"cash": 10.5}, 3.0)])
    assert queries.get_state(store.conn, "risk", "daily") == {"orders": 2}
    assert queries.states(store.conn, "strategy_snapshot") == {"s1": {"cash": 10.5}}
    assert queries.get_state(store.conn, "risk", "nope") is None
    assert len(jsonl(store)) == 1 and store.last_seq == 1


def test_state_write_with_non_finite_value_is_a_value_error(store: JournalStore) -> None:
    with pytest.raises(ValueError, match=r"state risk/k.*data\.x"):
        store.commit(notes(1), [StateWrite("risk", "k", {"x": math.inf}, 1.0)])
    assert store.last_seq == 0


def test_empty_commit_returns_nothing(store: JournalStore) -> None:
    assert store.commit([]) == []
    assert store.last_seq == 0


def test_commit_writes_its_lines_but_leaves_the_jsonl_sync_to_a_thread_and_close(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sync = durable.fsync_file
    on_caller: list[bool] = []  # one entry per fdatasync of the JSONL: made by the caller?
    caller = threading.current_thread()
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        inode = store.jsonl_path.stat().st_ino

        def recording_sync(fd: int) -> None:
            if os.fstat(fd).st_ino == inode:
                on_caller.append(threading.current_thread() is caller)
            real_sync(fd)

        monkeypatch.setattr(durable, "fsync_file", recording_sync)
        store.commit(notes(3))
        store.commit(notes(2, start=3))
        assert [line["seq"] for line in jsonl(store)] == [1, 2, 3, 4, 5]  # written at commit
        assert True not in on_caller  # the SQLite commit is the ack; the mirror syncs later
    assert on_caller[-1] is True  # close syncs what is left


def test_jsonl_sync_that_fails_then_retried_by_its_thread_without_another_commit(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sync = durable.fsync_file
    attempts: list[bool] = []  # one entry per fdatasync of the JSONL: did it succeed?
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        inode = store.jsonl_path.stat().st_ino

        def failing_once(fd: int) -> None:
            if os.fstat(fd).st_ino == inode:
                if not attempts:
                    attempts.append(False)
                    raise OSError(5, "Input/output error")
                attempts.append(True)
            real_sync(fd)

        monkeypatch.setattr(durable, "fsync_file", failing_once)
        store.commit(notes(2))
        # No further commit wakes the thread: the failed sync is retried on its own.
        eventually(lambda: True in attempts, timeout_s=5, what="the JSONL sync retried")
        assert attempts[0] is False


def test_commit_after_close_is_refused(state_dir: Path) -> None:
    store = JournalStore.open(state_dir, DEPLOYMENT)
    store.close()
    store.close()  # idempotent
    with pytest.raises(OperationalError, match="closed"):
        store.commit(notes(1))


def test_meta_marks_the_database_as_this_deployments_journal(store: JournalStore) -> None:
    store.commit(notes(2))
    meta = queries.meta(store.conn)
    assert meta["format"] == "tradeplane-journal" and meta["deployment"] == DEPLOYMENT
    assert meta["schema_version"] == schema.SCHEMA_VERSION and meta["last_seq"] == 2
    assert meta["last_hash"] == store.last_hash == jsonl(store)[-1]["hash"]


# --- permissions -------------------------------------------------------------------------------


def test_state_dir_is_0700_and_every_file_0600_including_wal_and_shm(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a permissive umask must not widen anything
    try:
        state_dir = tmp_path / "a" / "state"
        with JournalStore.open(state_dir, DEPLOYMENT) as store:
            store.commit(notes(3))
            assert mode(state_dir) == 0o700
            names = {p.name for p in state_dir.iterdir()}
            assert {"journal.db-wal", "journal.db-shm"} <= names
            for path in state_dir.iterdir():
                assert mode(path) == 0o600, path.name
    finally:
        os.umask(old_umask)


def test_existing_files_with_loose_modes_are_tightened(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(1))
    for name in ("journal.db", "journal.jsonl", "journal.lock"):
        os.chmod(state_dir / name, 0o644)
    with JournalStore.open(state_dir, DEPLOYMENT):
        for name in ("journal.db", "journal.jsonl", "journal.lock"):
            assert mode(state_dir / name) == 0o600, name


# --- single writer -------------------------------------------------------------------------


def test_second_writer_in_the_same_process_is_refused_naming_the_holder(
    store: JournalStore, state_dir: Path
) -> None:
    with pytest.raises(OperationalError, match=rf"in use.*pid {os.getpid()}"):
        JournalStore.open(state_dir, DEPLOYMENT)
    assert store.commit(notes(1)) == [1]  # the refused open did not disturb the holder


def test_close_releases_the_lock(state_dir: Path) -> None:
    JournalStore.open(state_dir, DEPLOYMENT).close()
    JournalStore.open(state_dir, DEPLOYMENT).close()


_HOLDER = """
import sys
from tradeplane.journal.store import JournalStore
store = JournalStore.open(sys.argv[1], "demo")
store.commit([])
print("ready", flush=True)
sys.stdin.read()
"""


def test_lock_is_released_when_the_holder_is_killed_with_sigkill(state_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(state_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(OperationalError, match=rf"in use.*pid {proc.pid}"):
            JournalStore.open(state_dir, DEPLOYMENT)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdin:
            proc.stdin.close()
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.commit(notes(1)) == [1]


# --- fail closed on foreign or damaged files -------------------------------------------------


def _make_journal(state_dir: Path, n: int = 50) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(n))


def test_db_of_another_deployment_is_refused_naming_file_and_deployment(state_dir: Path) -> None:
    _make_journal(state_dir)
    with pytest.raises(OperationalError, match=r"journal\.db belongs to deployment 'demo'"):
        JournalStore.open(state_dir, "other")


def test_foreign_sqlite_database_is_refused_and_left_untouched(state_dir: Path) -> None:
    state_dir.mkdir()
    db = state_dir / "journal.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(OperationalError, match=r"journal\.db is not a tradeplane journal"):
        JournalStore.open(state_dir, DEPLOYMENT)
    assert db.read_bytes() == before
    assert not (state_dir / "journal.jsonl").exists()


def test_sqlite_file_with_a_different_meta_format_is_refused(state_dir: Path) -> None:
    state_dir.mkdir()
    conn = sqlite3.connect(state_dir / "journal.db")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    conn.commit()
    conn.close()
    with pytest.raises(OperationalError, match="format 'something-else'"):
        JournalStore.open(state_dir, DEPLOYMENT)


@pytest.mark.parametrize("seed", CORRUPTION_SEEDS, ids=seed_id)
def test_garbage_bytes_are_refused_naming_the_file(state_dir: Path, seed: int) -> None:
    state_dir.mkdir()
    (state_dir / "journal.db").write_bytes(garbage(seed, 8192))
    with pytest.raises(OperationalError, match=r"journal\.db is not a SQLite database"):
        JournalStore.open(state_dir, DEPLOYMENT)


@pytest.mark.parametrize("keep", ["half_pages", "odd_bytes"])
def test_truncated_db_is_refused_naming_the_file(state_dir: Path, keep: str) -> None:
    _make_journal(state_dir, n=2000)
    db = state_dir / "journal.db"
    assert not (state_dir / "journal.db-wal").exists()  # checkpointed at close
    size = db.stat().st_size
    cut = (size // 2) // 4096 * 4096 if keep == "half_pages" else size - 1000
    os.truncate(db, cut)
    with pytest.raises(OperationalError, match=r"journal\.db is truncated"):
        JournalStore.open(state_dir, DEPLOYMENT)


def test_newer_schema_version_is_refused(state_dir: Path) -> None:
    _make_journal(state_dir)
    conn = sqlite3.connect(state_dir / "journal.db")
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(OperationalError, match="schema version 99, newer than the 4"):
        JournalStore.open(state_dir, DEPLOYMENT)


def test_meta_disagreeing_with_the_events_is_refused(state_dir: Path) -> None:
    _make_journal(state_dir)
    conn = sqlite3.connect(state_dir / "journal.db")
    conn.execute("DELETE FROM events WHERE seq = 50")
    conn.commit()
    conn.close()
    with pytest.raises(OperationalError, match=r"journal\.db is inconsistent"):
        JournalStore.open(state_dir, DEPLOYMENT)


def test_lost_db_beside_a_populated_jsonl_is_refused_not_recreated(state_dir: Path) -> None:
    _make_journal(state_dir)
    (state_dir / "journal.db").unlink()
    with pytest.raises(OperationalError, match=r"journal\.jsonl has journal lines"):
        JournalStore.open(state_dir, DEPLOYMENT)
    assert not (state_dir / "journal.db").exists()


def test_empty_db_left_by_a_crash_during_creation_is_initialised(state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / "journal.db").touch(mode=0o600)
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.commit(notes(1)) == [1]


def test_state_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_text("x")
    with pytest.raises(OperationalError, match="not a directory"):
        JournalStore.open(path, DEPLOYMENT)
