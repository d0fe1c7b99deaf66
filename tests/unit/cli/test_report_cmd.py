"""`tradeplane report` against a journal written by JournalStore and a hand-written backtest dir."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner, Result

from tests.report_samples import write_backtest_dir, write_journal
from tradeplane.cli.main import app


def report(*args: str) -> Result:
    return CliRunner().invoke(app, ["report", *args])


def test_report_of_a_state_dir_writes_a_private_page_and_prints_its_path(tmp_path: Path) -> None:
    state = write_journal(tmp_path / "state")
    out = tmp_path / "r" / "report.html"
    result = report("--state-dir", str(state), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(str(out.resolve()))
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_without_out_the_page_goes_in_the_state_dir(tmp_path: Path) -> None:
    state = write_journal(tmp_path / "state")
    result = report("--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert (state / "report.html").is_file()


def test_report_of_a_backtest_dir_with_pngs(tmp_path: Path) -> None:
    bt = write_backtest_dir(tmp_path / "bt")
    result = report("--backtest", str(bt), "--png", str(tmp_path / "png"))
    assert result.exit_code == 0, result.output
    assert (bt / "report.html").is_file()
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["denials.png", "drawdown.png", "equity.png", "fills.png"]
    assert all((tmp_path / "png" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_a_baseline_is_named_in_the_page(tmp_path: Path) -> None:
    state = write_journal(tmp_path / "state")
    bt = write_backtest_dir(tmp_path / "bt")
    result = report("--state-dir", str(state), "--baseline", str(bt / "backtest_report.json"))
    assert result.exit_code == 0, result.output
    assert "baseline total return" in (state / "report.html").read_text()


def test_a_missing_journal_exits_1_saying_so(tmp_path: Path) -> None:
    result = report("--state-dir", str(tmp_path / "nothing"))
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_a_backtest_and_a_deployment_together_exit_2(tmp_path: Path) -> None:
    result = report("demo", "--backtest", str(tmp_path))
    assert result.exit_code == 2
    assert "either --backtest DIR or a deployment" in result.output


def test_a_bad_baseline_exits_1_naming_it(tmp_path: Path) -> None:
    state = write_journal(tmp_path / "state")
    result = report("--state-dir", str(state), "--baseline", str(tmp_path / "none.json"))
    assert result.exit_code == 1
    assert "none.json does not exist" in result.output


def test_a_baseline_for_a_backtest_report_exits_2(tmp_path: Path) -> None:
    result = report("--backtest", str(tmp_path), "--baseline", str(tmp_path / "r.json"))
    assert result.exit_code == 2
    assert "--baseline is for a deployment's report" in result.output


def test_capital_from_the_config_starts_each_curve_at_it(tmp_path: Path) -> None:
    state = write_journal(tmp_path / "state")
    config = tmp_path / "demo.toml"
    config.write_text(
        '[deployment]\nname = "demo"\nmode = "paper"\n[venue]\nkind = "sim"\n'
        '[[strategies]]\nname = "s1"\npath = "x.py"\nclass_name = "X"\ncapital = 1000.0\n'
    )
    (tmp_path / "x.py").write_text("")
    out = tmp_path / "r.html"
    result = report("--config", str(config), "--state-dir", str(state), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "P&amp;L from 0" not in out.read_text()  # capital known: no P&L-only note
