"""The cluster's node table, read from Ray's control plane (GCS)."""

from __future__ import annotations

import ray

from tradeplane.cluster.placement import NodeInfo, nodes_from_table


def cluster_nodes() -> list[NodeInfo]:
    """Every node Ray knows, dead ones included (``alive`` says which)."""
    return nodes_from_table(ray.nodes())


def current_node_id() -> str:
    """The node this process runs on (a driver: the node whose raylet it attached to)."""
    return str(ray.get_runtime_context().get_node_id())
