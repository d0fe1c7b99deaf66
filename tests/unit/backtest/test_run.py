"""A backtest assembled from a config: strategies loaded as live loads them, the sim market or a
bars file as the source (merged by time), outputs streamed (``backtest.run``, ``outputs``)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tradeplane.backtest.bars_file import BarFileError, BarFilter
from tradeplane.backtest.run import (
    StrategyLoadError,
    engine_from_config,
    file_bars,
    merge_by_time,
    run_backtest,
    sim_bars,
    sim_window,
)
from tradeplane.config.loading import parse_config
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.model import Bar
from tradeplane.venues.sim.market import MarketSimulator

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def config(**strategy: object) -> TradeplaneConfig:
    return parse_config(
        {
            "deployment": {"name": "bt"},
            "venue": {"sim": {"symbols": ["AAA", "BBB"], "seed": 3}},
            "risk": {"max_positions": 1},
            "strategies": [
                {
                    "name": "sma",
                    "path": str(EXAMPLES / "sma_cross.py"),
                    "class_name": "SmaCross",
                    "params": {"fast": 2, "slow": 4, "quantity": 30},
                    **strategy,
                }
            ],
        }
    )


def csv_file(tmp_path: Path, rows: list[tuple[str, int, float]]) -> Path:
    path = tmp_path / "bars.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["symbol", "ts", "open", "high", "low", "close", "volume"])
        for symbol, minute, price in rows:
            ts = (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
            w.writerow([symbol, ts, price, price + 1, price - 1, price, 100])
    return path


def test_engine_from_config_then_the_configs_names_capital_and_limits() -> None:
    eng = engine_from_config(config(capital=5_000.0))
    assert eng.deployment == "bt"
    assert [(s.name, s.symbols, s.capital) for s in eng.specs] == [("sma", ("AAA", "BBB"), 5e3)]
    assert type(eng.specs[0].strategy).__name__ == "SmaCross"
    assert eng.specs[0].strategy.params == {"fast": 2, "slow": 4, "quantity": 30}


def test_strategy_file_missing_then_load_error_names_the_strategy(tmp_path: Path) -> None:
    with pytest.raises(StrategyLoadError, match=r"strategy sma .*FileNotFoundError"):
        engine_from_config(config(path=str(tmp_path / "nope.py")))


def test_sim_source_then_the_bars_the_sim_market_streams_for_the_config() -> None:
    cfg = config()
    start, end = sim_window(cfg, T0 + timedelta(seconds=30), T0 + timedelta(minutes=4))
    market = MarketSimulator(["AAA", "BBB"], seed=3, start=T0 + timedelta(minutes=1))
    expected = [b for _ in range(3) for b in market.next_bars()]
    assert start == T0 + timedelta(minutes=1)  # rounded up to a bar boundary
    assert list(sim_bars(cfg, start, end)) == expected


def test_file_grouped_by_symbol_then_merged_by_time_in_symbol_order(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path, [("BBB", 0, 20.0), ("BBB", 1, 21.0), ("AAA", 0, 10.0), ("AAA", 1, 11.0)]
    )
    bars = list(file_bars(path, ("AAA", "BBB"), BarFilter()))
    assert [(b.symbol, b.ts.minute) for b in bars] == [
        ("AAA", 0),
        ("BBB", 0),
        ("AAA", 1),
        ("BBB", 1),
    ]


def test_file_with_a_bad_row_then_refused_with_its_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, [("AAA", 0, 10.0), ("AAA", 1, 11.0)])
    path.write_text(path.read_text() + "AAA,2026-01-05T00:02:00Z,x,1,1,1,1\n")
    with pytest.raises(BarFileError, match="line 4"):
        list(file_bars(path, ("AAA",), BarFilter()))


def test_unknown_file_kind_then_refused(tmp_path: Path) -> None:
    with pytest.raises(BarFileError, match="no reader"):
        file_bars(tmp_path / "bars.xlsx", ("AAA",), BarFilter())


def test_merge_by_time_then_ties_in_source_order() -> None:
    def bars(symbol: str) -> list[Bar]:
        return [Bar(symbol, T0 + timedelta(minutes=m), 1.0, 1.0, 1.0, 1.0, 1.0) for m in (0, 1)]

    merged = merge_by_time([bars("B"), bars("A")])
    assert [b.symbol for b in merged] == ["B", "A", "B", "A"]


def test_run_then_outputs_streamed_and_report_written(tmp_path: Path) -> None:
    cfg = config()
    start, end = sim_window(cfg, T0, T0 + timedelta(minutes=60))
    out = tmp_path / "out"

    run = run_backtest(cfg, bars=sim_bars(cfg, start, end), source="sim", out_dir=out)

    with (out / "equity.csv").open() as f:
        equity = list(csv.DictReader(f))
    assert len(equity) == 60 * 2  # one row per bar time for the strategy, one for the total
    assert {r["strategy"] for r in equity} == {"sma", "total"}
    with (out / "intents.csv").open() as f:
        intents = list(csv.DictReader(f))
    with (out / "fills.csv").open() as f:
        fills = list(csv.DictReader(f))
    assert intents and fills
    denied = [r for r in intents if r["decision"] == "denied"]
    assert denied and {r["reason"] for r in denied} == {"MAX_POSITIONS"}
    report = json.loads((out / "backtest_report.json").read_text())
    assert report["kind"] == "backtest_report" and report["deployment"] == "bt"
    assert report["bars"]["count"] == 120 and report["bars"]["symbols"] == ["AAA", "BBB"]
    total = report["total"]
    assert total["denials_by_reason"] == {"MAX_POSITIONS": len(denied)}
    assert total["fills"] == len(fills) and total["intents"] == len(intents)
    assert total["final_equity"] == pytest.approx(float(equity[-1]["equity"]))
    assert datetime.fromisoformat(total["equity_curve"][0][0]) == start
    assert all(isinstance(total[k], float) for k in ("sharpe", "sortino", "annualised_volatility"))
    assert run.summary()["final_equity"] == total["final_equity"]


def test_run_twice_then_identical_outputs(tmp_path: Path) -> None:
    cfg = config()
    start, end = sim_window(cfg, T0, T0 + timedelta(minutes=30))
    for name in ("a", "b"):
        run_backtest(cfg, bars=sim_bars(cfg, start, end), source="sim", out_dir=tmp_path / name)
    for output in ("equity.csv", "fills.csv", "intents.csv"):
        assert (tmp_path / "a" / output).read_bytes() == (tmp_path / "b" / output).read_bytes()
