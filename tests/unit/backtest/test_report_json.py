"""``backtest_report.json`` on disk (``backtest.report_json``): written atomically and read back
equal; a malformed or wrong-schema file refused with the field named; the config hash covers what
changes a result and nothing else; the code hash is the source file's."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest

from tradeplane.backtest.report_builder import ReportAccumulator
from tradeplane.backtest.report_json import (
    REPORT_FILE,
    BacktestReport,
    BarsInfo,
    ReportError,
    config_hash,
    load_report,
    strategy_code_hash,
    strategy_code_hashes,
    utc,
    write_report,
)
from tradeplane.config.models import TradeplaneConfig

T0 = 1_767_225_600.0


def a_report() -> BacktestReport:
    acc = ReportAccumulator(["a", "b"], [100.0, 50.0])
    for i, (ea, eb) in enumerate([(100.0, 50.0), (90.0, 51.0), (95.0, 49.0)]):
        acc.add(T0 + 60.0 * i, (ea, eb), (i > 0, False))
    acc.add_denial("a", "max_position_value")
    bars = BarsInfo(
        source="sim",
        first_ts=utc(T0),
        last_ts=utc(T0 + 120.0),
        count=3,
        symbols=("AAA",),
        interval_s=60.0,
    )
    return acc.finish(
        deployment="demo",
        config_hash="0" * 64,
        strategy_code_hashes={"a": "1" * 64, "b": "2" * 64},
        bars=bars,
        calendar="24/7",
    )


def written(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    path = write_report(tmp_path / REPORT_FILE, a_report())
    return path, orjson.loads(path.read_bytes())


def rewrite(path: Path, doc: Any) -> Path:
    path.write_bytes(orjson.dumps(doc))
    return path


def refusal(path: Path) -> ReportError:
    with pytest.raises(ReportError) as info:
        load_report(path)
    return info.value


def test_written_report_then_loads_equal_with_mode_0644_and_no_temp_left(tmp_path: Path) -> None:
    report = a_report()
    path = write_report(tmp_path / REPORT_FILE, report)
    assert load_report(path) == report
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == [REPORT_FILE]


def test_written_report_then_has_the_documented_top_level_fields(tmp_path: Path) -> None:
    _, doc = written(tmp_path)
    assert list(doc) == [
        "schema",
        "kind",
        "generated_at",
        "deployment",
        "config_hash",
        "strategy_code_hashes",
        "bars",
        "calendar",
        "periods_per_year",
        "strategies",
        "total",
    ]
    assert (doc["schema"], doc["kind"]) == (1, "backtest_report")
    assert set(doc["strategies"]) == {"a", "b"}
    assert set(doc["total"]) == {
        "starting_equity", "final_equity", "total_return", "annualised_volatility", "sharpe",
        "sortino", "max_drawdown", "max_drawdown_duration_s", "turnover", "exposure", "intents",
        "orders", "fills", "trades", "fees", "denials_by_reason", "equity_curve",
    }  # fmt: skip
    assert doc["strategies"]["a"]["denials_by_reason"] == {"max_position_value": 1}
    assert doc["total"]["equity_curve"][0] == ["2026-01-01T00:00:00Z", 150.0]


def test_rewriting_then_the_old_file_is_replaced_whole(tmp_path: Path) -> None:
    path, _ = written(tmp_path)
    write_report(path, a_report())
    assert load_report(path).deployment == "demo"


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d.update(schema=2), "schema", "version 2 is not supported"),
        (lambda d: d.update(kind="drift"), "kind", "expected 'backtest_report'"),
        (lambda d: d.pop("total"), "total", "Field required"),
        (lambda d: d["strategies"]["a"].update(sharpe="1.2"), "strategies.a.sharpe", "number"),
        (lambda d: d["total"].update(max_drawdown=-0.1), "total.max_drawdown", "greater than"),
        (lambda d: d["bars"].update(count=-1), "bars.count", "greater than"),
        (lambda d: d.update(config_hash="xyz"), "config_hash", "pattern"),
        (lambda d: d.update(surprise=1), "surprise", "Extra inputs"),
        (
            lambda d: d["total"]["equity_curve"].append(["2020-01-01T00:00:00Z", 1.0]),
            "total.equity_curve",
            "strictly increasing",
        ),
        (
            lambda d: d["total"].update(
                equity_curve=[
                    [f"2026-01-01T00:00:{i // 100:02}.{i % 100:02}Z", 1.0] for i in range(2001)
                ]
            ),
            "total.equity_curve",
            "at most 2000",
        ),
        (lambda d: d["bars"].update(first_ts="2026-01-01T00:00:00"), "bars.first_ts", "timezone"),
        (lambda d: d["strategy_code_hashes"].pop("b"), None, "exactly the report's strategies"),
    ],
)
def test_malformed_report_then_refused_naming_the_field(
    tmp_path: Path, mutate: Any, field: str | None, reason: str
) -> None:
    path, doc = written(tmp_path)
    mutate(doc)
    err = refusal(rewrite(path, doc))
    assert err.field == field
    assert reason in err.reason
    assert str(err).startswith(str(path))


def test_nan_in_the_file_then_refused_as_invalid_json(tmp_path: Path) -> None:
    path, _ = written(tmp_path)
    text, replaced = re.subn(r'"fees": [0-9.e+-]+', '"fees": NaN', path.read_text(), count=1)
    assert replaced == 1
    path.write_text(text)
    assert "not valid JSON" in refusal(path).reason


def test_not_a_report_then_refused(tmp_path: Path) -> None:
    assert "cannot read" in refusal(tmp_path / "missing.json").reason
    assert "expected a JSON object" in refusal(rewrite(tmp_path / "list.json", [1])).reason
    (tmp_path / "torn.json").write_text('{"schema": 1, "kind": "backt')
    assert "not valid JSON" in refusal(tmp_path / "torn.json").reason


def config(**changes: Any) -> TradeplaneConfig:
    raw: dict[str, Any] = {
        "deployment": {"name": "demo", "state_dir": "/tmp/x"},
        "venue": {"sim": {"symbols": ["AAA", "BBB"], "taker_fee_bps": 5.0}},
        "risk": {"max_order_value": 1000.0},
        "strategies": [
            {
                "name": "sma",
                "path": "/tmp/sma.py",
                "class_name": "Sma",
                "symbols": ["AAA"],
                "capital": 10_000.0,
                "params": {"fast": 5, "slow": 20},
            }
        ],
    }
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[leaf] = value
    return TradeplaneConfig.model_validate(raw)


def test_config_hash_then_stable_and_hex() -> None:
    digest = config_hash(config())
    assert digest == config_hash(config())
    assert len(digest) == 64 and int(digest, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"strategies__0__params": {"fast": 6, "slow": 20}},
        {"strategies__0__capital": 20_000.0},
        {"strategies__0__symbols": ["AAA", "BBB"]},
        {"strategies__0__class_name": "Other"},
        {"risk__max_order_value": 2000.0},
        {"risk__max_positions": 3},
        {"venue__sim__taker_fee_bps": 6.0},
        {"venue__sim__slippage_bps": 2.0},
        {"venue__sim__max_participation": 0.1},
        {"deployment__starting_cash": 5.0},
        {"session__calendar": "XNYS"},
    ],
)
def test_config_hash_when_a_result_affecting_field_changes_then_differs(
    change: dict[str, Any],
) -> None:
    assert config_hash(config(**change)) != config_hash(config())


@pytest.mark.parametrize(
    "change",
    [
        {"deployment__state_dir": "/elsewhere"},
        {"deployment__name": "other"},
        {"deployment__mode": "shadow"},
        {"venue__credentials__api_key": "k"},
        {"strategies__0__path": "/moved/sma.py"},
        {"supervisor__heartbeat_timeout_s": 9.0},
        {"journal__fsync": False},
    ],
)
def test_config_hash_when_an_unrelated_field_changes_then_same(change: dict[str, Any]) -> None:
    assert config_hash(config(**change)) == config_hash(config())


def test_config_hash_then_param_order_does_not_matter() -> None:
    assert config_hash(config(strategies__0__params={"slow": 20, "fast": 5})) == config_hash(
        config()
    )


def test_strategy_code_hash_then_sha256_of_the_file(tmp_path: Path) -> None:
    source = tmp_path / "sma.py"
    source.write_bytes(b"class Sma: ...\n")
    assert strategy_code_hash(source) == hashlib.sha256(b"class Sma: ...\n").hexdigest()
    cfg = config(strategies__0__path=str(source))
    assert strategy_code_hashes(cfg) == {"sma": strategy_code_hash(source)}
    source.write_bytes(b"class Sma: pass\n")
    assert strategy_code_hashes(cfg)["sma"] != hashlib.sha256(b"class Sma: ...\n").hexdigest()


def test_code_hash_then_the_one_a_deployment_records_and_promote_compares(tmp_path: Path) -> None:
    from tradeplane.core.promotion_config import code_hash

    path = tmp_path / "s.py"
    path.write_bytes(b"class S:\r\n    pass\r\n")  # CRLF: read as the deployer reads it
    assert strategy_code_hash(path) == code_hash(path.read_text(encoding="utf-8"))
