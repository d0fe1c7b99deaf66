"""Where each role of a deployment may run, decided from the cluster's node table (pure: the
table is given, as ``ray.nodes()`` reports it, so the rules are unit-tested without Ray).

One **state node** per deployment holds its record and everything that must write to it before an
order leaves; it is named by the operator (``[deployment] state_node``: a node id, an IP, a
``key=value`` node label, or a custom resource or label key) or defaults to the node the CLI runs
on. Strategies go where their resources and labels allow, spread over the eligible nodes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tradeplane.core.errors import OperationalError

HEAD_RESOURCE = "node:__internal_head__"
_NODE_ID = re.compile(r"^[0-9a-f]{56}$")


class Where(StrEnum):
    STATE_NODE = "state_node"
    """On the deployment's state node, at every start and restart."""
    NAMED_NODE = "named_node"
    """On the node ``Placement.node`` names, looked up again at every start."""
    SPREAD = "spread"
    """On any live node with ``resources`` and ``labels``, spread over them."""


@dataclass(frozen=True)
class Placement:
    """Where a role's actor is created, at every start."""

    where: Where = Where.STATE_NODE
    node: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


class PlacementError(OperationalError):
    """No live node satisfies a role's placement rules (an operator's decision is needed)."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    ip: str
    alive: bool
    resources: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_head(self) -> bool:
        return HEAD_RESOURCE in self.resources

    def describe(self) -> str:
        return f"{self.ip} ({self.node_id[:12]})"


def nodes_from_table(table: Iterable[Mapping[str, Any]]) -> list[NodeInfo]:
    """``ray.nodes()`` rows as ``NodeInfo``: the latest row per node id (a node that left and
    joined again has one row per life; Ray lists the dead ones too)."""
    out: dict[str, NodeInfo] = {}
    for row in table:
        node_id = str(row.get("NodeID", ""))
        if not node_id:
            continue
        info = NodeInfo(
            node_id=node_id,
            ip=str(row.get("NodeManagerAddress", "")),
            alive=bool(row.get("Alive")),
            resources=dict(row.get("Resources") or {}),
            labels={str(k): str(v) for k, v in (row.get("Labels") or {}).items()},
        )
        if node_id not in out or info.alive:
            out[node_id] = info
    return list(out.values())


def _is_ip(spec: str) -> bool:
    try:
        ipaddress.ip_address(spec)
    except ValueError:
        return False
    return True


def matches(node: NodeInfo, spec: str) -> bool:
    """Whether ``node`` is the one ``spec`` names (see the module docstring for the forms)."""
    spec = spec.strip()
    if _NODE_ID.match(spec):
        return node.node_id == spec
    if _is_ip(spec):
        return node.ip == spec
    if "=" in spec:
        key, _, value = spec.partition("=")
        return node.labels.get(key.strip()) == value.strip()
    return node.resources.get(spec, 0) > 0 or spec in node.labels


def resolve_node(spec: str | None, nodes: Iterable[NodeInfo], default_node_id: str) -> NodeInfo:
    """The one live node ``spec`` names (``None``: the default node). Refuses, naming the
    candidates, when none or several match: the state node must be unambiguous."""
    alive = [n for n in nodes if n.alive]
    if spec is None or not spec.strip():
        found = [n for n in alive if n.node_id == default_node_id]
        what = "the node the CLI runs on"
    else:
        found = [n for n in alive if matches(n, spec)]
        what = f"state_node = {spec!r}"
    if len(found) == 1:
        return found[0]
    if not found:
        known = ", ".join(n.describe() for n in alive) or "none"
        raise PlacementError(f"no live node matches {what} (live nodes: {known})")
    names = ", ".join(n.describe() for n in found)
    raise PlacementError(
        f"{what} matches {len(found)} nodes ({names}): name one by node id, label or resource"
    )


def eligible(
    nodes: Iterable[NodeInfo],
    resources: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[NodeInfo]:
    """Live nodes that can host an actor asking for ``resources`` (totals, not what is free:
    a busy node still qualifies, Ray queues) and carrying every label in ``labels``."""
    out = []
    for n in nodes:
        if not n.alive:
            continue
        if any(n.resources.get(k, 0.0) < v for k, v in (resources or {}).items()):
            continue
        if any(n.labels.get(k) != v for k, v in (labels or {}).items()):
            continue
        out.append(n)
    return out
