"""``journal.backup``: a consistent copy of a state dir, also while its journal is written."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import eventually
from tests.unit.journal.factories import DEPLOYMENT, notes, trade
from tradeplane.cli.main import app
from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import OperationalError
from tradeplane.journal.backup import MANIFEST_NAME
from tradeplane.journal.backup import backup as journal_backup
from tradeplane.journal.reader import verify_journal
from tradeplane.journal.store import JournalStore
from tradeplane.venues.sim import snapshot
from tradeplane.venues.sim.venue import SimVenue

backup = partial(journal_backup, check_venue=snapshot.check_not_in_use)

EVENT_COLUMNS = "seq, event_id, kind, ts, deployment, strategy, intent_id, client_order_id, line"


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _events(state_dir: Path) -> list[tuple[object, ...]]:
    return _rows(state_dir / "journal.db", f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq")


def _tables(state_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    db = state_dir / "journal.db"
    names = [r[0] for r in _rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n: sorted(_rows(db, f"SELECT * FROM {n}"), key=repr) for n in sorted(names)}


@pytest.fixture
def stopped(state_dir: Path) -> Path:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(6))
        store.commit(trade(1, "buy", 2.0, 100.0, symbol="AAA"))
        store.commit(notes(4, start=6))
    return state_dir


def _verify_cli(state_dir: Path) -> str:
    result = CliRunner().invoke(app, ["journal", "verify", "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    return result.output


# --- a stopped deployment -----------------------------------------------------------------


def test_backup_of_a_stopped_journal_equals_the_source(stopped: Path, tmp_path: Path) -> None:
    target = tmp_path / "backups" / "b1"
    result = backup(stopped, target, deployment=DEPLOYMENT)

    assert (result.last_seq, result.jsonl_copied_seq, result.deployment) == (12, 12, DEPLOYMENT)
    assert _tables(target) == _tables(stopped)
    assert (target / "journal.jsonl").read_bytes() == (stopped / "journal.jsonl").read_bytes()
    assert "OK hash chain intact to seq 12" in _verify_cli(target)


def test_a_backup_is_private_and_holds_no_lock_wal_or_temp_files(
    stopped: Path, tmp_path: Path
) -> None:
    target = tmp_path / "b"
    backup(stopped, target)

    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    names = sorted(p.name for p in target.iterdir())
    assert names == ["backup_manifest.json", "journal.db", "journal.jsonl"]
    for p in target.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_manifest_names_the_journal_seq_range_and_what_was_copied(
    stopped: Path, tmp_path: Path
) -> None:
    result = backup(stopped, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())

    assert manifest["format"] == "tradeplane-backup"
    assert (manifest["first_seq"], manifest["last_seq"]) == (1, 12)
    assert manifest["genesis"] == result.genesis != ""
    assert [c["name"] for c in manifest["copied"]] == ["journal.db", "journal.jsonl"]


def test_elapsed_time_comes_from_the_injected_clock(stopped: Path, tmp_path: Path) -> None:
    clock = ManualClock()
    start = clock.monotonic()

    def step(_: float) -> None:
        clock.advance(0.5)

    result = backup(stopped, tmp_path / "b", step_pages=1, sleep=step, clock=clock.monotonic)
    assert result.elapsed_s == pytest.approx(clock.monotonic() - start) and result.elapsed_s > 0


# --- the target -----------------------------------------------------------------------------


def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(
    stopped: Path, tmp_path: Path
) -> None:
    target = tmp_path / "b"
    target.mkdir()
    (target / "keep.txt").write_text("mine")

    with pytest.raises(OperationalError, match="is not empty"):
        backup(stopped, target)
    with pytest.raises(OperationalError, match="holds no tradeplane backup"):
        backup(stopped, target, force=True)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_an_empty_target_dir_is_used(stopped: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    assert backup(stopped, tmp_path / "b").last_seq == 12


def test_force_replaces_an_earlier_backup(stopped: Path, tmp_path: Path) -> None:
    target = tmp_path / "b"
    backup(stopped, target)
    with JournalStore.open(stopped, DEPLOYMENT) as store:
        store.commit(notes(3, start=100))

    with pytest.raises(OperationalError, match="is not empty"):
        backup(stopped, target)
    assert backup(stopped, target, force=True).last_seq == 15
    assert len(_events(target)) == 15
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("where", ["same", "inside"])
def test_a_target_in_the_state_dir_is_refused(stopped: Path, where: str) -> None:
    target = stopped if where == "same" else stopped / "backup"
    with pytest.raises(OperationalError, match="a backup goes elsewhere"):
        backup(stopped, target)


def test_another_deployments_journal_is_refused(stopped: Path, tmp_path: Path) -> None:
    (stopped / "drift_state.json").write_text("{}")
    with pytest.raises(OperationalError, match="belongs to deployment"):
        backup(stopped, tmp_path / "b", deployment="other")
    assert list(tmp_path.iterdir()) == [stopped]  # nothing left behind


def test_a_failure_mid_copy_leaves_no_backup_under_the_target_name(
    stopped: Path, tmp_path: Path
) -> None:
    steps = 0

    def crash_on_third_step(_: float) -> None:
        nonlocal steps
        steps += 1
        if steps == 3:
            raise RuntimeError("killed mid-backup")

    with pytest.raises(RuntimeError, match="killed mid-backup"):
        backup(stopped, tmp_path / "b", step_pages=1, sleep=crash_on_third_step)
    assert steps == 3
    assert list(tmp_path.iterdir()) == [stopped]  # neither the target nor a partial copy


def test_a_failed_replacement_keeps_the_earlier_backup(stopped: Path, tmp_path: Path) -> None:
    target = tmp_path / "b"
    backup(stopped, target)
    before = _tables(target)

    def crash(_: float) -> None:
        raise RuntimeError("killed mid-backup")

    with pytest.raises(RuntimeError):
        backup(stopped, target, force=True, step_pages=1, sleep=crash)
    assert _tables(target) == before


# --- the JSONL is made to end exactly where the copied record does ---------------------------


def test_a_torn_and_short_jsonl_is_completed_from_the_record_and_the_source_left_alone(
    stopped: Path, tmp_path: Path
) -> None:
    src_jsonl = stopped / "journal.jsonl"
    full = src_jsonl.read_bytes()
    lines = full.splitlines(keepends=True)
    short = b"".join(lines[:7]) + lines[7][:25]  # seq 1..7, then a torn seq 8
    src_jsonl.write_bytes(short)

    result = backup(stopped, tmp_path / "b")

    assert (result.last_seq, result.jsonl_copied_seq) == (12, 7)
    assert (tmp_path / "b" / "journal.jsonl").read_bytes() == full
    assert "seq 8..12 rebuilt from journal.db" in result.copied[1].note
    assert src_jsonl.read_bytes() == short


def test_a_missing_jsonl_is_rebuilt_from_the_record(stopped: Path, tmp_path: Path) -> None:
    full = (stopped / "journal.jsonl").read_bytes()
    (stopped / "journal.jsonl").unlink()

    assert backup(stopped, tmp_path / "b").jsonl_copied_seq == 0
    assert (tmp_path / "b" / "journal.jsonl").read_bytes() == full


def test_a_jsonl_whose_tail_disagrees_with_the_record_fails_the_backup(
    stopped: Path, tmp_path: Path
) -> None:
    path = stopped / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    tampered = lines[-1].replace(b'"i":9', b'"i":8')
    assert tampered != lines[-1]
    path.write_bytes(b"".join(lines[:-1]) + tampered)

    with pytest.raises(OperationalError, match=r"disagrees with journal\.db"):
        backup(stopped, tmp_path / "b")
    assert list(tmp_path.iterdir()) == [stopped]


# --- while a writer commits as fast as it can ---------------------------------------------


class Writer:
    """The journal store committing batches from a thread until stopped."""

    BATCH = 50

    def __init__(self, state_dir: Path) -> None:
        self.store = JournalStore.open(state_dir, DEPLOYMENT)
        self.stop = threading.Event()
        self.batches = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                start = self.batches * self.BATCH
                self.store.commit(notes(self.BATCH, start=start, prefix="w"))
                self.batches += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()
        self.store.close()
        assert self.error is None, self.error


@pytest.fixture
def writer(state_dir: Path) -> Iterator[Writer]:
    with Writer(state_dir) as w:
        eventually(lambda: w.batches >= 20, what="the writer's first batches")
        yield w


def test_a_backup_taken_while_the_journal_is_written_is_a_consistent_prefix(
    writer: Writer, state_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "b"
    seen_during: list[int] = []

    def step(_: float) -> None:  # each step waits for the writer to commit again meanwhile
        now = writer.batches
        eventually(lambda: writer.batches > now, interval_s=0.005, what="a commit meanwhile")
        seen_during.append(writer.store.last_seq)

    result = backup(state_dir, target, deployment=DEPLOYMENT, step_pages=16, sleep=step)
    writer.finish()

    assert len(seen_during) >= 3 and seen_during[-1] > result.last_seq > 0, seen_during
    # The backup opens through the normal open path (recovery) with nothing to repair.
    with JournalStore.open(target, DEPLOYMENT) as reopened:
        assert (reopened.last_seq, reopened.last_hash) == (result.last_seq, result.last_hash)
    assert f"OK hash chain intact to seq {result.last_seq}" in _verify_cli(target)
    checked = verify_journal(target / "journal.jsonl", deep=True)
    assert checked.ok and checked.lines == checked.last_seq == result.last_seq
    copy, source = _events(target), _events(state_dir)
    assert [r[0] for r in copy] == list(range(1, result.last_seq + 1))
    assert copy == source[: result.last_seq]
    src_lines = (state_dir / "journal.jsonl").read_bytes().splitlines(keepends=True)
    assert (target / "journal.jsonl").read_bytes() == b"".join(src_lines[: result.last_seq])


# --- the other files of a state dir -----------------------------------------------------------


def test_drift_files_cursors_and_closed_bar_chunks_are_copied(
    stopped: Path, tmp_path: Path
) -> None:
    (stopped / "drift_state.json").write_text('{"seq": 5}')
    (stopped / "live_drift.csv").write_text("ts,equity\n1,2\n3,4\n5,")  # a row being appended
    (stopped / "telemetry_cursor.json").write_text('{"seq": 4}')
    (stopped / "alerts_cursor.json").write_text('{"seq": 3}')
    bars = stopped / "bars"
    bars.mkdir()
    (bars / "chunk-000001700000000-00000001.parquet").write_bytes(b"PAR1 closed")
    (bars / "chunk-000001700000000-00000002.parquet.tmp").write_bytes(b"being written")

    result = backup(stopped, tmp_path / "b")
    target = tmp_path / "b"

    assert (target / "drift_state.json").read_text() == '{"seq": 5}'
    assert (target / "live_drift.csv").read_text() == "ts,equity\n1,2\n3,4\n"
    assert (target / "telemetry_cursor.json").read_text() == '{"seq": 4}'
    assert (target / "alerts_cursor.json").read_text() == '{"seq": 3}'  # undelivered alerts
    assert sorted(p.name for p in (target / "bars").iterdir()) == [
        "chunk-000001700000000-00000001.parquet"
    ]
    assert stat.S_IMODE((target / "bars").stat().st_mode) == 0o700
    names = [c.name for c in result.copied]
    assert names[:2] == ["journal.db", "journal.jsonl"] and "bars/" in names


def test_credentials_and_the_lock_are_never_copied_and_each_is_named_with_why(
    stopped: Path, tmp_path: Path
) -> None:
    (stopped / ".env").write_text("OKX_API_SECRET=do-not-copy\n")
    (stopped / "report.html").write_text("<html/>")

    result = backup(stopped, tmp_path / "b")

    assert not (tmp_path / "b" / ".env").exists()
    assert not (tmp_path / "b" / "journal.lock").exists()
    reasons = {s.name: s.reason for s in result.skipped}
    assert "credentials are never copied" in reasons[".env"]
    assert "lock" in reasons["journal.lock"]
    assert "not part of the record" in reasons["report.html"]
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file():
            assert b"do-not-copy" not in path.read_bytes(), path


def _sim_venue(state_dir: Path) -> SimVenue:
    (state_dir / "venue").mkdir(mode=0o700)
    return SimVenue.open(state_dir / "venue" / "sim.db", clock=ManualClock())


def test_a_stopped_sim_venues_book_is_copied(stopped: Path, tmp_path: Path) -> None:
    _sim_venue(stopped).close()

    result = backup(stopped, tmp_path / "b")

    copy = tmp_path / "b" / "venue" / "sim.db"
    assert "venue/sim.db" in [c.name for c in result.copied]
    assert not Path(f"{copy}-wal").exists()  # its WAL folded in
    assert _rows(copy, "SELECT value FROM meta WHERE key = 'format'") == [("tradeplane-sim-venue",)]
    with SimVenue.open(copy, clock=ManualClock()) as reopened:
        assert reopened.positions() == {}


def test_a_running_sim_venues_book_is_skipped_with_the_reason(
    stopped: Path, tmp_path: Path
) -> None:
    with _sim_venue(stopped):
        result = backup(stopped, tmp_path / "b")

    reasons = {s.name: s.reason for s in result.skipped}
    assert "in use by a running deployment" in reasons["venue/sim.db"]
    assert "empty book" in reasons["venue/sim.db"]
    assert not (tmp_path / "b" / "venue").exists()


def test_a_replacement_that_cannot_be_renamed_into_place_puts_the_earlier_backup_back(
    stopped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "b"
    backup(stopped, target)
    before = _tables(target)
    real_rename = os.rename

    def rename(src: object, dst: object) -> None:
        if str(src).startswith(str(tmp_path / ".b.partial-")):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OperationalError, match="No space left on device"):
        backup(stopped, target, force=True)
    assert _tables(target) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_backup_process_sigkilled_mid_copy_leaves_no_backup_and_the_next_one_succeeds(
    stopped: Path, tmp_path: Path
) -> None:
    target = tmp_path / "b"
    started = tmp_path / "started"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tradeplane.journal.backup import backup\n"
        "from tradeplane.venues.sim.snapshot import check_not_in_use\n"
        "def hang(_):\n"
        f"    Path({str(started)!r}).touch()\n"
        "    time.sleep(60)\n"
        f"backup(Path({str(stopped)!r}), Path({str(target)!r}), step_pages=1, sleep=hang, "
        "check_venue=check_not_in_use)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        eventually(started.exists, what="the backup's first step")
    finally:
        proc.kill()
        proc.wait()

    assert not target.exists()
    partial = [p.name for p in tmp_path.iterdir() if p.name.startswith(".b.partial-")]
    assert len(partial) == 1  # never a backup; the runbook says it can be deleted
    assert backup(stopped, target).last_seq == 12
    assert "OK hash chain intact to seq 12" in _verify_cli(target)
