"""The ``[drift]`` section: thresholds with units in their names, the recorded bars it needs,
and a baseline path read relative to the config file."""

from pathlib import Path

import pytest

from tradeplane.config.loading import ConfigError, load_config, parse_config


def minimal(**over: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "deployment": {"name": "t"},
        "journal": {"bars": "all"},
        "strategies": [{"name": "a", "path": "x.py", "class_name": "A"}],
        "drift": {"max_return_drift_pct": 2.0},
    }
    cfg.update(over)
    return cfg


def test_no_drift_section_then_not_tracked() -> None:
    cfg = parse_config({k: v for k, v in minimal().items() if k != "drift"})
    assert cfg.drift is None


def test_drift_section_then_defaults_documented_and_thresholds_kept() -> None:
    drift = parse_config(minimal()).drift
    assert drift is not None
    assert (drift.snapshot_interval_s, drift.max_return_drift_pct) == (60.0, 2.0)
    assert drift.max_tracking_error_pct is None and drift.max_fill_slippage_bps is None


def test_drift_without_recorded_bars_then_error_names_journal_bars() -> None:
    with pytest.raises(ConfigError, match=r'bars = "all"'):
        parse_config(minimal(journal={"bars": "summary"}))


@pytest.mark.parametrize(
    ("drift", "field"),
    [
        ({"max_return_drift_pct": -1}, "drift.max_return_drift_pct"),
        ({"snapshot_interval_s": 0}, "drift.snapshot_interval_s"),
        ({"max_slippage": 3}, "drift.max_slippage"),
    ],
)
def test_bad_drift_value_then_error_names_the_field(drift: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_config(minimal(drift=drift))


def test_strategy_named_total_with_drift_then_refused() -> None:
    bad = minimal(strategies=[{"name": "total", "path": "x.py", "class_name": "A"}])
    with pytest.raises(ConfigError, match="total"):
        parse_config(bad)


def test_baseline_path_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text("")
    (tmp_path / "c.toml").write_text(
        '[deployment]\nname = "t"\n[journal]\nbars = "all"\n'
        '[drift]\nbaseline = "runs/base/backtest_report.json"\n'
        '[[strategies]]\nname = "a"\npath = "s.py"\nclass_name = "A"\n'
    )
    drift = load_config(tmp_path / "c.toml").drift
    assert drift is not None
    assert drift.baseline == (tmp_path / "runs/base/backtest_report.json").resolve()
