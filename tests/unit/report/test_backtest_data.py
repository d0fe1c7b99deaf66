"""A backtest's output dir to the report's data (``tradeplane.report.backtest_data``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.report_samples import T0, backtest_report_doc
from tradeplane.core.errors import OperationalError
from tradeplane.report.backtest_data import (
    baseline_total,
    read_backtest_dir,
    read_backtest_report,
)


def test_the_reports_curves_are_read_total_first(backtest_dir: Path) -> None:
    data = read_backtest_dir(backtest_dir)
    assert [s.name for s in data.equity] == ["total", "s1"]
    assert data.equity[0].ts[0] == T0
    assert data.equity[0].values[0] == 150_000.0
    assert len(data.equity[0]) == 50  # from the JSON, not the 30 rows of equity.csv


def test_without_the_json_equity_comes_from_equity_csv(tmp_path: Path) -> None:
    from tests.report_samples import write_backtest_dir

    data = read_backtest_dir(write_backtest_dir(tmp_path / "bt", with_json=False))
    assert [s.name for s in data.equity] == ["total", "s1"]
    assert len(data.equity[0]) == 30
    assert data.equity[0].values[-1] == 150_058.0
    assert any("backtest_report.json is not in" in n for n in data.notes)


def test_fills_and_their_prices_come_from_fills_csv(backtest_dir: Path) -> None:
    data = read_backtest_dir(backtest_dir)
    assert len(data.fills) == 10
    assert data.price_source == "fills"
    assert data.prices["AAA"].values[:3] == (100.0, 101.0, 102.0)
    assert [f.side for f in data.fills[:2]] == ["buy", "sell"]


def test_denials_and_figures_come_from_the_total_block(backtest_dir: Path) -> None:
    data = read_backtest_dir(backtest_dir)
    assert data.denials == {"max_position": 2}
    facts = dict(data.facts)
    assert facts["Sharpe / Sortino"] == "1.40 / -"  # null Sortino shown as a dash
    assert facts["max drawdown"] == "0.20%"


def test_report_missing_a_field_then_refused_naming_it(tmp_path: Path) -> None:
    doc = backtest_report_doc()
    del doc["total"]["sharpe"]
    (tmp_path / "backtest_report.json").write_text(json.dumps(doc))
    with pytest.raises(OperationalError, match=r"total\.sharpe"):
        read_backtest_report(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"kind": "other"}', "kind: expected 'backtest_report'")],
)
def test_a_file_that_is_not_a_report_is_an_operational_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "backtest_report.json"
    path.write_text(content)
    with pytest.raises(OperationalError, match=message):
        read_backtest_report(path)


def test_a_missing_report_or_dir_says_so(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="does not exist"):
        read_backtest_report(tmp_path / "nope.json")
    with pytest.raises(OperationalError, match="is not a directory"):
        read_backtest_dir(tmp_path / "nope")


def test_the_baseline_is_the_reports_total_curve(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(backtest_report_doc(n=5)))
    curve, source = baseline_total(path)
    assert curve is not None and curve.name == "baseline" and len(curve) == 5
    assert source == str(path)


def test_prices_come_from_the_bars_csv_the_report_names(tmp_path: Path) -> None:
    from tests.report_samples import iso, write_backtest_dir

    bt = write_backtest_dir(tmp_path / "bt")
    rows = "".join(
        f"{sym},{iso(T0 + 60 * i)},10,20,9,{10 + i},100\n"
        for i in range(5)
        for sym in ("AAA", "ZZZ")
    )
    (bt / "bars.csv").write_text("symbol,ts,open,high,low,close,volume\n" + rows)
    doc = json.loads((bt / "backtest_report.json").read_text())
    doc["bars"]["source"] = "bars.csv"
    (bt / "backtest_report.json").write_text(json.dumps(doc))
    data = read_backtest_dir(bt)
    assert data.price_source == "the bars file's closes"
    assert list(data.prices) == ["AAA"]  # only the symbols traded
    assert data.prices["AAA"].values == (10.0, 11.0, 12.0, 13.0, 14.0)
    assert data.prices["AAA"].ts[0] == T0 + 60  # at the first bar's close


def test_a_bad_or_missing_bars_file_falls_back_to_fill_prices_saying_why(tmp_path: Path) -> None:
    from tests.report_samples import write_backtest_dir

    bt = write_backtest_dir(tmp_path / "bt")
    doc = json.loads((bt / "backtest_report.json").read_text())
    doc["bars"]["source"] = "gone.csv"
    (bt / "backtest_report.json").write_text(json.dumps(doc))
    data = read_backtest_dir(bt)
    assert data.price_source == "fills"
    assert any("gone.csv is not there" in n for n in data.notes)
    (bt / "gone.csv").write_text("symbol,ts,open,high,low,close,volume\nAAA,never,1,1,1,1,1\n")
    data = read_backtest_dir(bt)
    assert data.price_source == "fills"
    assert any("line 2" in n for n in data.notes)
