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
        models.JournalConfig,
        models.SupervisorConfig,
        models.StrategyConfig,
    ):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"
