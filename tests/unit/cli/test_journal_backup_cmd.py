"""``tradeplane journal backup NAME --to DIR``: what it prints, and how it fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.unit.journal.factories import DEPLOYMENT, notes, trade
from tradeplane.cli.main import app
from tradeplane.journal.store import JournalStore

runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(6))
        store.commit(trade(1, "buy", 2.0, 100.0, symbol="AAA"))
    (state_dir / ".env").write_text("OKX_API_KEY=abc\n")
    return state_dir


def journal(*args: str) -> Result:
    return runner.invoke(app, ["journal", *args])


def test_backup_prints_the_seq_range_sizes_and_time_and_what_it_left_out(
    state: Path, tmp_path: Path
) -> None:
    result = journal("backup", DEPLOYMENT, "--state-dir", str(state), "--to", str(tmp_path / "b"))

    assert result.exit_code == 0, result.output
    assert f"backed up {DEPLOYMENT} (seq 1..8, " in result.output
    assert " in " in result.output and "s\n" in result.output
    assert "copied   journal.db" in result.output
    assert "copied   journal.jsonl" in result.output
    assert "skipped  .env" in result.output and "credentials are never copied" in result.output
    assert "abc" not in result.output


def test_backup_json_is_one_object_for_scripts(state: Path, tmp_path: Path) -> None:
    result = journal("backup", "--state-dir", str(state), "--to", str(tmp_path / "b"), "--json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["deployment"], out["first_seq"], out["last_seq"]) == (DEPLOYMENT, 1, 8)
    assert out["total_bytes"] == sum(c["bytes"] for c in out["copied"]) > 0
    assert out["elapsed_s"] >= 0 and out["target"] == str(tmp_path / "b")


def test_backup_into_a_non_empty_dir_exits_1_and_says_why(state: Path, tmp_path: Path) -> None:
    target = tmp_path / "b"
    target.mkdir()
    (target / "x").write_text("x")

    result = journal("backup", "--state-dir", str(state), "--to", str(target))

    assert result.exit_code == 1
    assert "is not empty: refusing" in result.output
    assert [p.name for p in target.iterdir()] == ["x"]


def test_backup_of_a_state_dir_without_a_journal_exits_1(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = journal("backup", "--state-dir", str(tmp_path / "empty"), "--to", str(tmp_path / "b"))

    assert result.exit_code == 1
    assert "no journal in" in result.output
    assert not (tmp_path / "b").exists()


def test_backup_of_a_state_dir_not_on_this_machine_says_where_to_run_it(tmp_path: Path) -> None:
    result = journal(
        "backup", "--state-dir", str(tmp_path / "nowhere"), "--to", str(tmp_path / "b")
    )

    assert result.exit_code == 1
    assert "run the backup on the node that holds it" in result.output


def test_backup_needs_a_target(state: Path) -> None:
    result = journal("backup", "--state-dir", str(state))
    assert result.exit_code == 2


def test_a_backup_moved_elsewhere_is_a_state_dir_that_verifies_and_reopens(
    state: Path, tmp_path: Path
) -> None:
    assert journal("backup", "--state-dir", str(state), "--to", str(tmp_path / "b")).exit_code == 0
    restored = tmp_path / "other-machine" / DEPLOYMENT
    shutil.copytree(tmp_path / "b", restored)

    verified = journal("verify", DEPLOYMENT, "--state-dir", str(restored))
    assert verified.exit_code == 0, verified.output
    assert "OK hash chain intact to seq 8" in verified.output
    with JournalStore.open(restored, DEPLOYMENT) as reopened:
        assert reopened.last_seq == 8
        reopened.commit(notes(1, start=50))
    assert journal("verify", "--state-dir", str(restored)).exit_code == 0
