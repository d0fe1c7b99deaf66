"""A backtest's outputs are pinned byte for byte: the same bars give the same intents, decisions,
fills and equity after any change made for speed (bar construction, risk marks, the runner,
matching, the writer). The hashes were computed with the code before the speed work (main at
c04c4ec plus the fix for a fill of an order cancelled in the same bar time); a change of
behaviour must show here and be justified, never be absorbed by updating a hash silently.

Three runs of the demo deployment on the seeded sim market cover the paths speed work touches:
market and limit orders with cancels (``demo``), the kill switch with cancels, flattening,
``REDUCING_ONLY`` and ``RATE_LIMIT`` denials (``tight``), and partial fills by participation
(``partial``)."""

from __future__ import annotations

import hashlib
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tradeplane.backtest.run import run_backtest, sim_bars, sim_window
from tradeplane.config.loading import parse_config
from tradeplane.config.models import TradeplaneConfig

ROOT = Path(__file__).resolve().parents[3]
START = datetime(2026, 1, 1, tzinfo=UTC)
OUTPUTS = ("intents.csv", "fills.csv", "equity.csv")

GOLDEN: dict[str, dict[str, str]] = {
    "demo": {
        "intents.csv": "ff285c723e5c7c426e1717d144525ddcc8957d3580afaa2319c28505cf0936cf",
        "fills.csv": "bcb387b88d7d12a4438cd218011c03779f1fca8ede1c4f8576641a072e75da7f",
        "equity.csv": "50829dac1fa0da2e46de2aa5631c05c9c7db689c617b80d224d3b5c90805a2af",
    },
    "tight": {
        "intents.csv": "39e879a192e6699fdbf7794ce9e02289b2a2e79cf174ba25abcfc02e05506aee",
        "fills.csv": "fe622272d48c908365eeac90cee06ed466ab0faed8c4e9489321508e41c8fe0c",
        "equity.csv": "16e54a0706df80fb88028de13819b12db9e5eb9aa0c4ba02e4dc6aa5b7f02ccb",
    },
    "partial": {
        "intents.csv": "4d433b11a666a32a792faadfcf2e22e6f0fa6cd0b5028dbbec96532f100d0a61",
        "fills.csv": "3fdb70ce842f549c6956761f99446306e5433515308d883034890738aaefd863",
        "equity.csv": "9e7d536b5b64027ec71d7fc305b5c096b80d37420188b05f7ac3b4528c805a77",
    },
}
DAYS = {"demo": 1, "tight": 2, "partial": 1}


def demo_config(variant: str) -> TradeplaneConfig:
    raw: dict[str, Any] = tomllib.loads((ROOT / "config" / "demo.toml").read_text("utf-8"))
    if variant == "tight":
        raw["risk"].update(max_drawdown_pct=0.4, kill_switch_flatten=True, max_orders_per_minute=2)
        raw["venue"]["sim"].update(seed=11)
    elif variant == "partial":
        raw["venue"]["sim"].update(max_participation=0.02, seed=5)
    return parse_config(raw, base_dir=ROOT / "config")


@pytest.mark.parametrize("variant", sorted(GOLDEN))
def test_same_bars_then_outputs_identical_byte_for_byte(variant: str, tmp_path: Path) -> None:
    cfg = demo_config(variant)
    first, last = sim_window(cfg, None, START + timedelta(days=DAYS[variant]))

    run_backtest(cfg, bars=sim_bars(cfg, first, last), source="sim", out_dir=tmp_path)

    hashes = {n: hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in OUTPUTS}
    assert hashes == GOLDEN[variant]


def test_tight_variant_exercises_the_kill_switch_flatten_and_denials(tmp_path: Path) -> None:
    # Guards the golden runs' coverage: if the scenario stops reaching these paths, say so.
    cfg = demo_config("tight")
    first, last = sim_window(cfg, None, START + timedelta(days=DAYS["tight"]))

    run = run_backtest(cfg, bars=sim_bars(cfg, first, last), source="sim", out_dir=tmp_path)

    intents = (tmp_path / "intents.csv").read_text("utf-8")
    assert set(run.report["total"]["denials_by_reason"]) == {"REDUCING_ONLY", "RATE_LIMIT"}
    assert "kill-" in intents  # flatten intents of the tripped switch


def test_partial_variant_fills_orders_in_parts(tmp_path: Path) -> None:
    cfg = demo_config("partial")
    first, last = sim_window(cfg, None, START + timedelta(days=DAYS["partial"]))

    run_backtest(cfg, bars=sim_bars(cfg, first, last), source="sim", out_dir=tmp_path)

    fills = (tmp_path / "fills.csv").read_text("utf-8").splitlines()
    assert any(line.split(",")[4].endswith("-2") for line in fills[1:])
