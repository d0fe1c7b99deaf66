"""Session fixtures: one Ray instance (bound to 127.0.0.1) shared by the integration and chaos
suites; the hypothesis profile every suite runs with."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so a failure in CI is the failure you get
# again at your desk; `--hypothesis-profile explore` draws fresh ones (and prints how to replay).
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("repeatable")


# The suites that run on Ray: one pytest process runs them all, in order, on one Ray instance.
RAY_SUITES = ("integration", "chaos", "multinode")
# Under xdist, the worker running the pure tests runs at this niceness (see pytest_runtest_setup).
PURE_TESTS_NICENESS = 10
_niced = False


def runs_on_ray(nodeid: str) -> bool:
    parts = nodeid.split("/")
    return len(parts) > 1 and parts[0] == "tests" and parts[1] in RAY_SUITES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Multi-node tests last: they replace the shared single-node Ray with a cluster."""
    items.sort(key=lambda item: "multinode" in item.nodeid.split("/"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test`` runs ``pytest -n 2 --dist loadscope``: every Ray test in one work unit, so
    one worker runs them in collection order on its own Ray, while the other takes the pure
    tests module by module. Two Ray suites side by side on a 2-core machine starve each other's
    actors, and the multi-node tests would shut a Ray down under the other worker's tests.
    (pytest-xdist's own ``loadgroup`` cannot do it: its group marks are lost under pytest 9.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class RaySuitesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "ray" if runs_on_ray(nodeid) else nodeid.split("::", 1)[0]

    return RaySuitesTogether(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """An xdist worker running the pure tests yields the CPU to the Ray suites beside it: their
    actors are watched by the clock (heartbeats, feed silence, recovery deadlines), the pure
    tests only wait a little longer."""
    if os.environ.get("PYTEST_XDIST_WORKER") and not runs_on_ray(item.nodeid):
        global _niced
        if not _niced:
            os.nice(PURE_TESTS_NICENESS)
            _niced = True


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
