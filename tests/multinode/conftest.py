"""A Ray cluster of several nodes on 127.0.0.1 (``ray.cluster_utils.Cluster``): a head that
carries no tradeplane actor, one state node (resource ``tp_state``, label ``tp-role=state``)
and strategy workers (resource ``tp_strategy``, label ``zone``). These tests are about Ray
itself, so they run last in the session (tests/conftest.py orders them) and replace the shared
single-node instance with this cluster.

Every node runs on this machine and shares its disk: a journal started on the wrong node would
find the state dir all the same, so the tests check where each actor runs, not just that the
deployment works.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# How fast Ray declares a node dead: the runbook's recommended settings (the defaults take
# about 30 s); bench/nodes.py measures both.
HEALTH_CHECK = {
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}
NODE = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024, "node_ip_address": "127.0.0.1"}
_zones = itertools.count()


@dataclass
class Nodes:
    cluster: Any
    state: Any = None
    workers: list[Any] = field(default_factory=list)

    def add_state(self) -> Any:
        self.state = self.cluster.add_node(
            **NODE, resources={"tp_state": 1.0}, labels={"tp-role": "state"}
        )
        self.cluster.wait_for_nodes()
        return self.state

    def add_worker(self) -> Any:
        zone = f"z{next(_zones)}"
        node = self.cluster.add_node(**NODE, resources={"tp_strategy": 8.0}, labels={"zone": zone})
        self.workers.append(node)
        self.cluster.wait_for_nodes()
        return node

    def lose(self, node: Any) -> None:
        """A loss, not a drain: the raylet is killed, Ray finds out by missed health checks."""
        if node in self.workers:
            self.workers.remove(node)
        if node is self.state:
            self.state = None
        self.cluster.remove_node(node, allow_graceful=False)

    def forget_dead(self) -> None:
        """Nodes lost behind the fixture's back (a chaos kill): cleaned up and forgotten."""
        import ray

        if not ray.is_initialized():  # the cluster is being built: nothing lost yet
            return
        alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        for node in [*self.workers, self.state]:
            if node is not None and node.node_id not in alive:
                with contextlib.suppress(Exception):
                    self.lose(node)
                self.cluster.worker_nodes.discard(node)  # gone, even if cleaning up failed

    def ensure(self, workers: int = 2) -> None:
        self.forget_dead()  # whatever an earlier test lost, even one that failed half-way
        if self.state is None:
            self.add_state()
        while len(self.workers) < workers:
            self.add_worker()


@pytest.fixture(scope="session")
def nodes() -> Iterator[Nodes]:
    import ray
    from ray.cluster_utils import Cluster

    from tradeplane.protocol.roles import NAMESPACE

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # Every node on loopback. Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when first imported,
    # perhaps before tradeplane set it: with it on, Ray rewrites 127.0.0.1 to the host's IP.
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    if ray.is_initialized():
        ray.shutdown()  # the shared single-node instance: no test after these needs it
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**NODE, "include_dashboard": False, "_system_config": HEALTH_CHECK},
    )
    found = Nodes(cluster)
    found.ensure(workers=2)
    # Not ``deployment.connect``: it opts this process into token auth when a token file
    # exists, and nodes added later (they inherit this environment) would then demand a token
    # the cluster's other components never send.
    ray.init(
        address=cluster.address,
        _node_ip_address="127.0.0.1",
        namespace=NAMESPACE,
        log_to_driver=False,
    )
    try:
        yield found
    finally:
        ray.shutdown()
        cluster.shutdown()
