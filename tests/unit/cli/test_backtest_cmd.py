"""``tradeplane backtest``: a config and a bars file (or the sim market) in, the outputs and one
summary out; a bad config or bars file exits 2 naming what is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner, Result

from tradeplane.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
runner = CliRunner()

CONFIG = """
[deployment]
name = "clibt"

[venue.sim]
symbols = ["AAA", "BBB"]
seed = 5

[[strategies]]
name = "sma"
path = "{path}"
class_name = "SmaCross"
params = {{ fast = 2, slow = 3, quantity = 5 }}
"""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "bt.toml"
    path.write_text(CONFIG.format(path=EXAMPLES / "sma_cross.py"), encoding="utf-8")
    return path


def write_bars(tmp_path: Path, extra: str = "") -> Path:
    lines = ["symbol,ts,open,high,low,close,volume"]
    prices = [10, 11, 12, 11, 10, 9, 10, 11, 12, 13]
    for symbol, scale in (("AAA", 1), ("BBB", 2)):  # grouped by symbol, not by time
        for minute, p in enumerate(prices):
            price = p * scale
            lines.append(
                f"{symbol},2026-01-05T00:{minute:02d}:00Z,{price},{price + 1},"
                f"{price - 1},{price},100"
            )
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def backtest(*args: str) -> Result:
    return runner.invoke(app, ["backtest", *args])


def test_csv_bars_with_json_then_outputs_and_one_summary_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = backtest(
        str(write_config(tmp_path)),
        "--bars",
        str(write_bars(tmp_path)),
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip())
    assert summary["bars"]["count"] == 20 and summary["bars"]["symbols"] == ["AAA", "BBB"]
    assert summary["fills"] > 0
    for name in ("equity.csv", "fills.csv", "intents.csv", "backtest_report.json"):
        assert (out / name).is_file()


def test_range_options_then_only_bars_inside(tmp_path: Path) -> None:
    result = backtest(
        str(write_config(tmp_path)),
        "--bars",
        str(write_bars(tmp_path)),
        "--out",
        str(tmp_path / "out"),
        "--from",
        "2026-01-05T00:02:00Z",
        "--to",
        "2026-01-05T00:05:00Z",
        "--json",
    )
    assert result.exit_code == 0, result.output
    bars = json.loads(result.stdout)["bars"]
    assert bars["count"] == 6
    assert datetime.fromisoformat(bars["first_ts"]) == datetime(2026, 1, 5, 0, 2, tzinfo=UTC)


def test_sim_market_default_then_runs_offline(tmp_path: Path) -> None:
    result = backtest(
        str(write_config(tmp_path)),
        "--out",
        str(tmp_path / "out"),
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-01T00:30:00Z",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["bars"]["count"] == 60 and summary["bars"]["source"] == "sim:seed=5"


def test_bad_bars_file_then_exit_2_with_its_line(tmp_path: Path) -> None:
    bars = write_bars(tmp_path, extra="AAA,2026-01-05T00:10:00Z,1,0.5,1,1,1\n")
    result = backtest(
        str(write_config(tmp_path)), "--bars", str(bars), "--out", str(tmp_path / "out")
    )
    assert result.exit_code == 2
    assert "line 22" in result.output and "inconsistent" in result.output


def test_bad_config_then_exit_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[deployment]\nname = "x"\n[venue.sim]\nseed = "many"\n', encoding="utf-8")
    result = backtest(str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "venue.sim.seed" in result.output


def test_bad_time_option_then_exit_2(tmp_path: Path) -> None:
    result = backtest(str(write_config(tmp_path)), "--from", "2026-01-05T00:00:00")
    assert result.exit_code == 2 and "--from" in result.output


def test_missing_bars_file_then_exit_2_and_nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = backtest(
        str(write_config(tmp_path)), "--bars", str(tmp_path / "no.csv"), "--out", str(out)
    )
    assert result.exit_code == 2 and "not found" in result.output
    assert not out.exists()
