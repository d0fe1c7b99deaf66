"""Session fixtures: one Ray instance (bound to 127.0.0.1) shared by the integration and chaos
suites."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


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
