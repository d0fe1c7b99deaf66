"""Session fixtures: one Ray instance (bound to 127.0.0.1) shared by the integration and chaos
suites; the hypothesis profile every suite runs with."""

from __future__ import annotations

import contextlib
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


# The suites that run on the session's shared Ray: one pytest process runs them all, in order.
RAY_SUITES = ("integration", "chaos")
# Tests that start a Ray cluster of their own (``ray start``, ``ray.cluster_utils.Cluster``): under
# xdist they run on the other process, beside the shared Ray's suites, not after them.
OWN_CLUSTER = (
    "tests/multinode/",
    "tests/integration/test_cluster_cli.py",
    "tests/integration/test_ray_cluster_auth.py",
)
# Under xdist, the pure tests run at this niceness, the tests with a cluster of their own at the
# second (see pytest_runtest_setup).
PURE_TESTS_NICENESS = 10
OWN_CLUSTER_NICENESS = 5


def on_shared_ray(nodeid: str) -> bool:
    parts = nodeid.split("/")
    in_suite = len(parts) > 1 and parts[0] == "tests" and parts[1] in RAY_SUITES
    return in_suite and not on_own_cluster(nodeid)


def on_own_cluster(nodeid: str) -> bool:
    return nodeid.startswith(OWN_CLUSTER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Multi-node tests last: they replace the shared single-node Ray with a cluster."""
    items.sort(key=lambda item: "multinode" in item.nodeid.split("/"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test`` runs ``pytest -n 2 --dist loadscope``: every test on the shared Ray in one
    work unit, so one worker runs them in collection order on its own Ray, while the other takes
    the pure tests module by module, then the tests that bring their own cluster. Two shared-Ray
    suites side by side on a 2-core machine starve each other's actors. (pytest-xdist's own
    ``loadgroup`` cannot do it: its group marks are lost under pytest 9.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedRayTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "shared-ray" if on_shared_ray(nodeid) else nodeid.split("::", 1)[0]

    return SharedRayTogether(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under xdist, the tests beside the shared Ray's suites (which are the run's critical path)
    yield the CPU to them. The pure tests yield most: they only wait a little longer. A test
    with a cluster of its own yields less (its processes inherit the niceness): its nodes answer
    Ray's health checks on a clock too. Only root may lower a niceness again."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or on_shared_ray(item.nodeid):
        return
    wanted = OWN_CLUSTER_NICENESS if on_own_cluster(item.nodeid) else PURE_TESTS_NICENESS
    if os.getpriority(os.PRIO_PROCESS, 0) != wanted:
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, 0, wanted)


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
