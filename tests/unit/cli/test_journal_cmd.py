"""`tradeplane journal verify|tail|export` against a real journal written by JournalStore."""

from __future__ import annotations

import csv
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.unit.journal.factories import DEPLOYMENT, notes, trade
from tradeplane.cli import journal_cmd
from tradeplane.cli.main import app
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.store import JournalStore

runner = CliRunner()
N = 12  # 10 notes + one order (submitting, filled)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(6))
        store.commit(trade(1, "buy", 2.0, 100.0, symbol="AAA"))
        store.commit(notes(4, start=6))
    return state_dir


def journal(*args: str) -> Result:
    return runner.invoke(app, ["journal", *args])


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# --- verify ---------------------------------------------------------------------------------


def test_verify_an_intact_journal_reports_lines_and_rate_and_exits_0(state: Path) -> None:
    result = journal("verify", "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert f"{N} lines checked in" in result.output and "lines/s" in result.output
    assert f"OK hash chain intact to seq {N}; agrees with journal.db" in result.output


def test_verify_deep_checks_every_line_too(state: Path) -> None:
    result = journal("verify", DEPLOYMENT, "--state-dir", str(state), "--deep")
    assert result.exit_code == 0, result.output
    assert "(deep)" in result.output


def test_verify_a_tampered_line_names_its_line_number_and_exits_1(state: Path) -> None:
    path = state / "journal.jsonl"
    text = lines(path)
    assert '"i":3' in text[3]
    text[3] = text[3].replace('"i":3', '"i":9')
    path.write_text("\n".join(text) + "\n")
    result = journal("verify", "--state-dir", str(state))
    assert result.exit_code == 1
    assert "journal.jsonl line 4: hash mismatch at seq 4" in result.output
    assert "3 lines checked" in result.output


def test_verify_a_journal_jsonl_behind_the_record_names_the_first_missing_line(
    state: Path,
) -> None:
    path = state / "journal.jsonl"
    path.write_text("\n".join(lines(path)[:-2]) + "\n")
    result = journal("verify", "--state-dir", str(state))
    assert result.exit_code == 1
    assert f"journal.jsonl line {N - 1}: missing; journal.db has seq {N - 1}..{N}" in (
        result.output
    )


def test_verify_a_torn_last_line_reports_it_as_the_bad_line(state: Path) -> None:
    path = state / "journal.jsonl"
    with path.open("a") as f:
        f.write('{"client_order_id":null,"data":')
    result = journal("verify", "--state-dir", str(state))
    assert result.exit_code == 1
    assert f"journal.jsonl line {N + 1}: incomplete last line" in result.output


def test_verify_a_valid_chain_that_is_not_this_records_journal_fails(
    state: Path, tmp_path: Path
) -> None:
    with JournalStore.open(tmp_path / "other", DEPLOYMENT) as other:
        other.commit(notes(N, prefix="x"))
    (state / "journal.jsonl").write_bytes((tmp_path / "other" / "journal.jsonl").read_bytes())
    result = journal("verify", "--state-dir", str(state))
    assert result.exit_code == 1
    assert f"journal.jsonl line {N}: hash differs from journal.db's seq {N}" in result.output


# --- which journal ----------------------------------------------------------------------------


def test_a_name_means_the_default_state_dir_under_the_cwd(
    state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".tradeplane").mkdir()
    state.rename(tmp_path / ".tradeplane" / DEPLOYMENT)
    monkeypatch.chdir(tmp_path)
    result = journal("verify", DEPLOYMENT)
    assert result.exit_code == 0, result.output


def test_a_config_file_means_its_state_dir(state: Path, tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text("")
    config = tmp_path / "deploy.toml"
    config.write_text(
        f'[deployment]\nname = "{DEPLOYMENT}"\nstate_dir = "{state}"\n'
        '[[strategies]]\nname = "s"\npath = "s.py"\nclass_name = "S"\n'
    )
    result = journal("tail", "--config", str(config), "-n", "1")
    assert result.exit_code == 0, result.output
    assert result.output.split()[0] == str(N)


def test_a_name_that_is_not_the_journals_deployment_is_refused(state: Path) -> None:
    result = journal("tail", "someone-else", "--state-dir", str(state))
    assert result.exit_code == 1
    assert "belongs to deployment 'demo', not 'someone-else'" in result.output


def test_no_name_state_dir_or_config_is_a_usage_error(state: Path) -> None:
    result = journal("verify")
    assert result.exit_code == 2
    assert "give its NAME, --state-dir DIR or --config FILE" in result.output


def test_a_state_dir_without_a_journal_fails_with_the_reason(tmp_path: Path) -> None:
    result = journal("verify", "--state-dir", str(tmp_path / "nothing"))
    assert result.exit_code == 1
    assert "does not exist" in result.output


# --- tail -----------------------------------------------------------------------------------


def test_tail_shows_the_last_n_events_with_their_fields(state: Path) -> None:
    result = journal("tail", "--state-dir", str(state), "-n", "5")
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert [int(r.split()[0]) for r in rows] == list(range(N - 4, N + 1))
    (filled,) = [r for r in rows if "order_filled" in r]
    assert filled.split()[:6] == [
        "8",
        "2023-11-14T22:13:23.000Z",
        "order_filled",
        "s1",
        "AAA",
        "c1",
    ]
    assert '"status":"filled"' in filled


def test_tail_of_a_kind_shows_only_that_kind(state: Path) -> None:
    result = journal("tail", "--state-dir", str(state), "--kind", "order_submitting", "-k", "x")
    assert result.exit_code == 0, result.output
    assert [r.split()[:3] for r in result.output.splitlines()] == [
        ["7", "2023-11-14T22:13:21.000Z", "order_submitting"]
    ]


def test_tail_json_prints_the_journal_lines_as_json(state: Path) -> None:
    result = journal("tail", "--state-dir", str(state), "-n", "3", "--json")
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.output.splitlines()]
    with JournalReader.open(state) as reader:
        assert printed == reader.tail(3)


def test_tail_follow_prints_new_events_until_ctrl_c(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = iter(range(10))

    def next_poll(_interval: float) -> None:
        poll = next(polls)
        if poll == 0:  # a writer appends while we follow
            with JournalStore.open(state, DEPLOYMENT) as store:
                store.commit(notes(3, start=100))
        elif poll == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(journal_cmd, "_sleep", next_poll)
    result = journal("tail", "--state-dir", str(state), "-n", "1", "--follow", "--json")
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.output.splitlines()]
    assert [e["seq"] for e in printed] == [N, N + 1, N + 2, N + 3]
    assert [e["data"] for e in printed[1:]] == [{"i": 100}, {"i": 101}, {"i": 102}]


# --- export ---------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "out"
    d.mkdir()
    yield d
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]  # no temp file left


def test_export_jsonl_writes_the_journals_own_lines_to_a_0600_file(
    state: Path, out_dir: Path
) -> None:
    out = out_dir / "all.jsonl"
    result = journal("export", "--state-dir", str(state), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"exported {N} events" in result.output
    assert mode(out) == 0o600
    assert out.read_text() == (state / "journal.jsonl").read_text()


def test_export_csv_with_kind_and_since_seq_writes_those_rows(state: Path, out_dir: Path) -> None:
    out = out_dir / "notes.csv"
    result = journal(
        "export",
        "--state-dir",
        str(state),
        "--out",
        str(out),
        "--format",
        "csv",
        "--kind",
        "bar_summary",
        "--kind",
        "order_filled",
        "--since-seq",
        "6",
    )
    assert result.exit_code == 0, result.output
    assert "exported 5 events" in result.output
    assert mode(out) == 0o600
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["seq"]) for r in rows] == [8, 9, 10, 11, 12]
    filled = rows[0]
    assert (filled["kind"], filled["strategy"], filled["symbol"]) == ("order_filled", "s1", "AAA")
    assert json.loads(filled["data"])["fill"]["price"] == 100.0
    assert rows[1]["strategy"] == "" and json.loads(rows[1]["data"]) == {"i": 6}


def test_export_replaces_an_existing_file_atomically_and_makes_it_private(
    state: Path, out_dir: Path
) -> None:
    out = out_dir / "x.jsonl"
    out.write_text("old\n")
    out.chmod(0o644)
    result = journal("export", "--state-dir", str(state), "--out", str(out), "-k", "order_filled")
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    assert [json.loads(line)["kind"] for line in lines(out)] == ["order_filled"]


def test_export_needs_an_out_file(state: Path) -> None:
    result = journal("export", "--state-dir", str(state))
    assert result.exit_code == 2
    assert "--out" in result.output
