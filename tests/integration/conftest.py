"""Integration fixtures: one Ray instance (bound to 127.0.0.1) for the whole session."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tradeplane.config.loading import parse_config
from tradeplane.config.models import TradeplaneConfig

HERE = Path(__file__).resolve().parent
_names = itertools.count()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    import ray

    from tradeplane.supervisor import deployment

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # A custom resource lets placement tests pin strategy actors as a multi-node cluster would.
    deployment.connect(None, resources={"tp_strategy_slot": 4})
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_session: None) -> str:
    import ray

    return str(ray.get_runtime_context().gcs_address)


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
