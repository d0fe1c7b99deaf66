"""The example deployment files in ``config/``: each loads through the CLI's loader with no
environment at all, is the kind of deployment its name promises, names strategies that exist and
run with the parameters given, carries no credentials, passes ``tradeplane preflight`` offline
(IB against the fake TWS), and is listed in README."""

from __future__ import annotations

import math
import re
import tomllib
import types
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.standins.tws import FakeTws
from tradeplane.cli.preflight import run_preflight
from tradeplane.config.loading import load_config
from tradeplane.config.models import Mode, TradeplaneConfig
from tradeplane.config.venues import IB_LIVE_PORTS
from tradeplane.core.clock import ManualClock
from tradeplane.core.model import Bar
from tradeplane.core.strategy import Strategy, StrategyRunner

ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = ROOT / "config"
EXAMPLES = sorted(CONFIG_DIR.glob("*.toml"))


@dataclass(frozen=True)
class Expected:
    mode: Mode
    venue: str
    feed: str
    calendar: str


EXPECTED = {
    "demo.toml": Expected(Mode.PAPER, "sim", "venue", "24/7"),
    "shadow-okx.toml": Expected(Mode.SHADOW, "sim", "okx", "24/7"),
    "shadow-binance.toml": Expected(Mode.SHADOW, "sim", "binance", "24/7"),
    "paper-ib.toml": Expected(Mode.PAPER, "ib", "venue", "XNYS"),
    "live-ib.toml": Expected(Mode.LIVE, "ib", "venue", "XNYS"),
    "multi-strategy.toml": Expected(Mode.PAPER, "sim", "venue", "24/7"),
}
# How each market-data source spells an instrument: a misspelt one never gets a bar.
SYMBOL_SPELLING = {
    "okx": re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$"),  # BTC-USDT
    "binance": re.compile(r"^[A-Z0-9]+$"),  # BTCUSDT
}
TUESDAY_16_UTC = datetime(2026, 11, 24, 16, 0, tzinfo=UTC).timestamp()  # NYSE open
SECRET_WORDS = re.compile(r"key|secret|passphrase|password|token|credential", re.IGNORECASE)


def load(path: Path) -> TradeplaneConfig:
    # No environment: what the file alone says, as on a machine with nothing set.
    return load_config(path, env={})


def strategy_class(path: Path, class_name: str) -> type[Strategy]:
    module = types.ModuleType(f"example_{path.stem}")
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    cls = module.__dict__.get(class_name)
    assert isinstance(cls, type) and issubclass(cls, Strategy), f"{path}: no {class_name}"
    return cls


def params_read(path: Path) -> set[str]:
    """The parameters a strategy file reads (``self.params.get("name", ...)``)."""
    return set(re.findall(r"params\.get\(\s*[\"'](\w+)[\"']", path.read_text(encoding="utf-8")))


def wave(symbol: str, n: int, base: float) -> list[Bar]:
    """1-minute bars on a +/-5 % sine: every example strategy trades on it."""
    start = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        close = base * (1 + 0.05 * math.sin(i / 6))
        prev = base * (1 + 0.05 * math.sin((i - 1) / 6))
        out.append(
            Bar(
                symbol,
                start + timedelta(minutes=i),
                prev,
                max(prev, close) * 1.001,
                min(prev, close) * 0.999,
                close,
                1_000.0,
            )
        )
    return out


def test_every_use_in_design_has_an_example() -> None:
    assert sorted(p.name for p in EXAMPLES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_as_the_deployment_its_name_promises(path: Path) -> None:
    cfg = load(path)
    want = EXPECTED[path.name]
    assert cfg.deployment.mode is want.mode
    assert cfg.venue.kind == want.venue
    assert cfg.feed.kind == want.feed
    assert cfg.session.calendar == want.calendar
    assert cfg.deployment.name == path.stem
    assert cfg.deployment.state_dir is not None and cfg.deployment.state_dir.is_absolute()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_symbols_spelt_as_the_feed_spells_them(path: Path) -> None:
    cfg = load(path)
    spelling = SYMBOL_SPELLING.get(cfg.feed.kind)
    if spelling is None:
        pytest.skip("the venue's own feed: any symbol it offers")
    assert all(spelling.match(s) for s in cfg.venue.symbols), cfg.venue.symbols


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_feed_silence_outlasts_a_bar(path: Path) -> None:
    """Silence shorter than the bar interval would restart a healthy feed between two bars."""
    cfg = load(path)
    sim = cfg.venue.kind == "sim" and cfg.feed.kind == "venue"
    bar_interval_s = cfg.venue.sim.bar_interval_s / cfg.venue.sim.speed if sim else 60.0
    assert cfg.resolved_feed_silence_s() > bar_interval_s


def test_ib_example_is_a_paper_connection() -> None:
    ib = load(CONFIG_DIR / "paper-ib.toml").venue.ib
    assert ib.live is False
    assert ib.port not in IB_LIVE_PORTS


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_strategies_resolve_and_take_their_params(path: Path) -> None:
    cfg = load(path)
    assert cfg.strategies
    for s in cfg.strategies:
        assert s.path.is_file(), s.path
        assert s.path.is_relative_to(ROOT / "examples"), "examples use the shipped strategies"
        cls = strategy_class(s.path, s.class_name)
        unknown = set(s.params) - params_read(s.path)
        assert not unknown, f"{s.name}: {s.class_name} never reads {sorted(unknown)}"
        cls(**s.params)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_strategies_trade_on_a_price_wave(path: Path) -> None:
    cfg = load(path)
    for s in cfg.strategies:
        runner = StrategyRunner(
            strategy_class(s.path, s.class_name)(**s.params),
            deployment=cfg.deployment.name,
            name=s.name,
            run_id="r1",
            clock=ManualClock(),
            starting_cash=s.capital,
            symbols=cfg.strategy_symbols(s),
        )
        runner.start()
        intents = []
        for symbol in cfg.strategy_symbols(s):
            intents += runner.on_bars(wave(symbol, 120, 100.0)).intents
        assert runner.stats.errors == 0
        assert intents, f"{s.name} never traded"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_carries_no_credentials(path: Path) -> None:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))

    def keys(node: Any) -> list[str]:
        if isinstance(node, list):
            return [k for item in node for k in keys(item)]
        if isinstance(node, dict):
            return [k for name, child in node.items() for k in [name, *keys(child)]]
        return []

    assert not [k for k in keys(raw) if SECRET_WORDS.search(k)]
    creds = load(path).venue.credentials
    assert creds.model_dump() == dict.fromkeys(type(creds).model_fields)


def test_examples_can_run_side_by_side() -> None:
    configs = [load(p) for p in EXAMPLES]
    names = [c.deployment.name for c in configs]
    ports = [c.telemetry.metrics_port for c in configs]
    assert len(set(names)) == len(names)
    assert len(set(ports)) == len(ports), ports


def test_readme_lists_every_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Example configurations", 1)
    assert len(section) == 2, "README has no 'Example configurations' section"
    listed = section[1].split("\n## ", 1)[0]
    for path in EXAMPLES:
        assert f"config/{path.name}" in listed, path.name


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if EXPECTED[p.name].venue == "sim"], ids=lambda p: p.name
)
def test_sim_example_passes_preflight(path: Path, tmp_path: Path) -> None:
    cfg = load_config(path, state_dir=tmp_path / "state", env={})
    result = run_preflight(cfg, "sim", now=TUESDAY_16_UTC)
    assert result.ready, result.reasons()
    assert not (tmp_path / "state").exists()  # preflight never writes


def test_ib_example_passes_preflight_against_the_fake_tws(tmp_path: Path) -> None:
    with FakeTws() as fake:
        env = {"IB_PORT": str(fake.port)}  # as an operator points it at their TWS
        cfg = load_config(CONFIG_DIR / "paper-ib.toml", state_dir=tmp_path / "state", env=env)
        result = run_preflight(cfg, "ib", now=TUESDAY_16_UTC)
    assert result.ready, result.reasons()
    venue = next(c for c in result.checks if c.name == "venue")
    assert "DU1234567 (paper)" in venue.detail


def test_live_ib_example_passes_preflight_strict_against_a_live_account(tmp_path: Path) -> None:
    with FakeTws(accounts=("U1234567",)) as fake:
        env = {"IB_PORT": str(fake.port)}
        cfg = load_config(CONFIG_DIR / "live-ib.toml", state_dir=tmp_path / "state", env=env)
        result = run_preflight(cfg, "ib", strict=True, now=TUESDAY_16_UTC)
    assert result.ready, result.reasons
    venue = next(c for c in result.checks if c.name == "venue")
    assert "U1234567 (live)" in venue.detail


def test_live_ib_example_is_a_size_change_of_paper_ib() -> None:
    from tradeplane.cli.promote_cmd import code_hashes
    from tradeplane.core import promotion_config as promotion

    live, paper = load(CONFIG_DIR / "live-ib.toml"), load(CONFIG_DIR / "paper-ib.toml")
    assert live.promotion.paper_config == Path("paper-ib.toml")
    allowed = promotion.allowed_patterns(
        live.promotion.size_params, live.promotion.allowed_differences
    )
    diff = promotion.check_config_diff(
        paper.model_dump(mode="json"), live.model_dump(mode="json"), allowed
    )
    assert diff.passed, diff.detail
    assert {d["path"] for d in diff.evidence["allowed"]} >= {
        "strategies.index_sma.params.quantity",
        "strategies.iwm_mean_reversion.params.max_position",
        "risk.max_daily_loss",
        "venue.ib.live",
    }
    assert code_hashes(paper) == code_hashes(live)
