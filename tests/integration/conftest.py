"""Integration helpers: a deployment config for tests (the shared Ray fixture is in
tests/conftest.py)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from tradeplane.config.loading import parse_config
from tradeplane.config.models import TradeplaneConfig

HERE = Path(__file__).resolve().parent
_names = itertools.count()


def make_config(
    state_dir: Path,
    *,
    strategies: list[dict[str, Any]] | None = None,
    mode: str = "paper",
    symbols: tuple[str, ...] = ("AAA", "BBB"),
    speed: float = 600.0,
    **sections: dict[str, Any],
) -> TradeplaneConfig:
    name = f"it{os.getpid()}-{next(_names)}"
    raw: dict[str, Any] = {
        "deployment": {"name": name, "mode": mode, "state_dir": str(state_dir)},
        "venue": {
            "kind": "sim",
            "sim": {"symbols": list(symbols), "speed": speed, "history_bars": 0, "seed": 3},
        },
        "supervisor": {"feed_silence_s": 10.0},
        # A free port each: deployments of one test session must not fight over 9464.
        "telemetry": {"metrics_port": 0},
        "strategies": strategies
        or [
            {
                "name": "flip",
                "path": str(HERE / "strategies" / "flipper.py"),
                "class_name": "Flipper",
                "params": {"every": 1, "limit_every": 3},
            }
        ],
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return parse_config(raw, source="test")
