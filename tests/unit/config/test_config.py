from pathlib import Path

import pytest

from tradeplane.config.loading import ConfigError, load_config, parse_config, read_dotenv
from tradeplane.config.models import Mode

ROOT = Path(__file__).resolve().parents[3]


def minimal(**over: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "deployment": {"name": "t"},
        "strategies": [{"name": "a", "path": "x.py", "class_name": "A"}],
    }
    cfg.update(over)
    return cfg


def test_demo_config_loads_with_absolute_paths() -> None:
    cfg = load_config(ROOT / "config" / "demo.toml")
    assert cfg.deployment.mode is Mode.PAPER
    assert cfg.deployment.state_dir is not None and cfg.deployment.state_dir.is_absolute()
    assert all(s.path.is_file() for s in cfg.strategies)


def test_state_dir_override_wins(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "config" / "demo.toml", state_dir=tmp_path / "x")
    assert cfg.deployment.state_dir == (tmp_path / "x").resolve()


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"risk": {"max_order_value": float("nan")}}, "risk.max_order_value"),
        ({"risk": {"max_order_value": -5}}, "risk.max_order_value"),
        ({"risk": {"max_order_valu": 5}}, "risk.max_order_valu"),
        ({"venue": {"sim": {"speed": float("inf")}}}, "venue.sim.speed"),
        ({"deployment": {"name": "bad name!"}}, "deployment.name"),
        ({"deployment": {"name": "t", "mode": "yolo"}}, "deployment.mode"),
    ],
)
def test_bad_value_then_error_names_the_field(over: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_config(minimal(**over))


def test_strategy_symbol_not_offered_then_error_names_strategy() -> None:
    bad = minimal(strategies=[{"name": "a", "path": "x", "class_name": "A", "symbols": ["ZZZ"]}])
    with pytest.raises(ConfigError, match=r"strategies\.a\.symbols"):
        parse_config(bad)


def test_live_mode_on_sim_venue_then_error() -> None:
    with pytest.raises(ConfigError, match="live"):
        parse_config(minimal(deployment={"name": "t", "mode": "live"}))


def test_config_is_frozen() -> None:
    cfg = parse_config(minimal())
    with pytest.raises(Exception, match="frozen"):
        cfg.deployment.name = "x"  # type: ignore[misc]


def test_missing_strategy_file_then_error_names_path(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[deployment]\nname="t"\n[[strategies]]\nname="a"\npath="nope.py"\nclass_name="A"\n'
    )
    with pytest.raises(ConfigError, match=r"strategies\.a\.path"):
        load_config(f)


def test_invalid_toml_then_error_names_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[deployment\n")
    with pytest.raises(ConfigError, match=r"c\.toml"):
        load_config(f)


def test_dotenv_parses_quotes_export_and_comments(tmp_path: Path) -> None:
    f = tmp_path / ".env"
    f.write_text("# c\nexport A=1\nB=\"two words\"\nC='x'\n")
    assert read_dotenv(f) == {"A": "1", "B": "two words", "C": "x"}


def test_every_field_has_a_docstring() -> None:
    from tradeplane.config import models

    for model in (
        models.DeploymentConfig,
        models.SimVenueConfig,
        models.RiskConfig,
        models.SessionConfig,
        models.JournalConfig,
        models.SupervisorConfig,
        models.StrategyConfig,
        models.PromotionConfig,
    ):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


# -- risk and session ------------------------------------------------------------------------

RISK_FLOATS = (
    "max_order_value",
    "max_order_quantity",
    "max_position_value",
    "max_position_quantity",
    "max_gross_exposure",
    "max_daily_loss",
    "max_drawdown_pct",
    "max_price_deviation_pct",
    "max_data_staleness_s",
    "duplicate_order_window_s",
    "venue_rejection_window_s",
    "starting_equity",
)
RISK_INTS = (
    "max_positions",
    "max_orders_per_second",
    "max_orders_per_minute",
    "max_venue_rejections",
)


@pytest.mark.parametrize("name", RISK_FLOATS + RISK_INTS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), -1, 0])
def test_risk_limit_nan_inf_negative_or_zero_then_error_names_the_field(
    name: str, value: float
) -> None:
    with pytest.raises(ConfigError, match=rf"risk\.{name}"):
        parse_config(minimal(risk={name: value}))


def test_drawdown_over_100_pct_then_error_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_drawdown_pct"):
        parse_config(minimal(risk={"max_drawdown_pct": 100.5}))
    assert parse_config(minimal(risk={"max_drawdown_pct": 100})).risk.max_drawdown_pct == 100


def test_fractional_order_rate_then_error_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_orders_per_second"):
        parse_config(minimal(risk={"max_orders_per_second": 1.5}))


@pytest.mark.parametrize(
    ("risk", "match"),
    [
        ({"allowed_symbols": []}, "allowed_symbols"),
        ({"allowed_symbols": ["AAA", "AAA"]}, r"risk\.allowed_symbols"),
        ({"blocked_symbols": [""]}, r"risk\.blocked_symbols"),
        ({"allowed_symbols": ["AAA"], "blocked_symbols": ["AAA"]}, "blocked_symbols"),
        ({"kill_switch_flatten": "maybe"}, r"risk\.kill_switch_flatten"),
    ],
)
def test_bad_symbol_lists_or_flags_then_error(risk: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(minimal(risk=risk))


def test_risk_defaults_are_all_limits_off_and_a_reducing_kill_switch() -> None:
    from tradeplane.config.models import RiskConfig

    r = RiskConfig()
    assert r.kill_switch_cancel_orders and not r.kill_switch_flatten
    assert r.kill_switch_allow_reducing and r.venue_rejection_window_s == 60
    assert set(r.disabled_limits()) == set(RiskConfig.LIMIT_FIELDS)
    assert "max_daily_loss" not in RiskConfig(max_daily_loss=5).disabled_limits()
    assert "blocked_symbols" not in RiskConfig(blocked_symbols=("X",)).disabled_limits()


def test_risk_config_maps_onto_engine_limits_and_policy() -> None:
    from tradeplane.core.risk import TradingState

    cfg = parse_config(
        minimal(
            risk={
                "max_daily_loss": 500,
                "max_orders_per_second": 3,
                "allowed_symbols": ["AAA"],
                "kill_switch_allow_reducing": False,
                "max_venue_rejections": 4,
            }
        )
    )
    limits = cfg.risk.limits()
    assert limits.max_daily_loss == 500 and limits.max_orders_per_second == 3
    assert limits.allowed_symbols == ("AAA",)
    policy = cfg.risk.kill_switch_policy()
    assert policy.tripped_state is TradingState.HALTED and policy.max_venue_rejections == 4


def test_starting_equity_defaults_to_the_strategies_capital() -> None:
    cfg = parse_config(minimal())
    assert cfg.risk.resolved_starting_equity(s.capital for s in cfg.strategies) == 100_000
    cfg = parse_config(minimal(risk={"starting_equity": 5000}))
    assert cfg.risk.resolved_starting_equity([1.0]) == 5000


def test_every_risk_and_session_field_docstring_states_its_default() -> None:
    from tradeplane.config.models import PromotionConfig, RiskConfig, SessionConfig

    for model in (RiskConfig, SessionConfig, PromotionConfig):
        for name, field in model.model_fields.items():
            assert "Default" in (field.description or ""), f"{model.__name__}.{name}"


def test_session_calendar_defaults_to_24_7_and_accepts_an_exchange_code() -> None:
    assert parse_config(minimal()).session.calendar == "24/7"
    assert parse_config(minimal(session={"calendar": "XNYS"})).session.calendar == "XNYS"


def test_unknown_session_calendar_then_error_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"session\.calendar.*unknown calendar 'NYSEX'"):
        parse_config(minimal(session={"calendar": "NYSEX"}))
