"""Session fixtures: one Ray instance (bound to 127.0.0.1) shared by the integration and chaos
suites; the hypothesis profile every suite runs with."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so a failure in CI is the failure you get
# again at your desk; `--hypothesis-profile explore` draws fresh ones (and prints how to replay).
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("repeatable")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Multi-node tests last: they replace the shared single-node Ray with a cluster."""
    items.sort(key=lambda item: "multinode" in item.nodeid.split("/"))


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
