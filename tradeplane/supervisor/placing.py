"""Where the supervisor puts each role and what it learns from Ray's node table: the state node
(every state role, at every start), strategies spread by their resources and labels, the loss of
a node (journaled with the roles it hosted), and the run record every node can read."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tradeplane.cluster.placement import (
    NodeInfo,
    Placement,
    PlacementError,
    Where,
    eligible,
    resolve_node,
)
from tradeplane.protocol.api import ChildApi
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import child_role
from tradeplane.supervisor.derive import lost_nodes

if TYPE_CHECKING:
    from tradeplane.supervisor.specs import ChildSpec
    from tradeplane.supervisor.supervisor import Supervisor

log = logging.getLogger("tradeplane.supervisor")
NODE_TABLE_INTERVAL_S = 1.0
# How long a node a role left is still said to have hosted it (Ray declares a lost node dead
# within seconds to a minute, depending on its health-check settings).
DEPARTED_S = 120.0


class Placer:
    def __init__(self, sup: Supervisor, state_node: NodeInfo) -> None:
        self.sup = sup
        # Where the record lives (chosen at ``up``); every state role is created there.
        self.state_node = state_node
        self.placement: dict[str, str] = {}  # role -> node id of its current actor
        self.node_ips: dict[str, str] = {state_node.node_id: state_node.ip}
        self.lost_nodes: dict[str, dict[str, Any]] = {}  # node id -> what was lost with it
        # node id -> role -> when it left (the supervisor's monotonic clock)
        self.departed: dict[str, dict[str, float]] = {}
        self.published: dict[str, Any] | None = None
        self.read_ts = float("-inf")  # when the node table was last read (monotonic)
        self.head_lost_since: float | None = None
        self.head_lost_mono = 0.0

    async def node_for(self, spec: ChildSpec) -> str | None:
        """The node ``spec``'s actor must be created on (None: Ray spreads it over the eligible
        nodes). Raises ``PlacementError`` when no live node can take it."""
        where: Placement = spec.placement
        if where.where is Where.STATE_NODE:
            return self.state_node.node_id or None
        nodes = await self.nodes()
        if where.where is Where.NAMED_NODE:
            return resolve_node(where.node, nodes, self.state_node.node_id).node_id
        if not eligible(nodes, where.resources, where.labels):
            wants = {"resources": where.resources, "labels": where.labels}
            raise PlacementError(f"no live node can take {spec.role} ({wants})")
        return None

    async def nodes(self) -> list[NodeInfo]:
        nodes = await self.sup.adapter.nodes()
        self.node_ips.update({n.node_id: n.ip for n in nodes})
        return nodes

    async def locate(self, role: str) -> None:
        """Which node ``role``'s new actor landed on (for status, and to know what a node's
        loss takes with it)."""
        try:
            node = await self.sup.adapter.call(5.0, child_role(role), ChildApi.node_id)
        except Exception as exc:
            # Safe to lose: status shows the role unplaced until its next start; its death is
            # still watched directly.
            log.warning("node of %s unknown: %s", role, exc)
            return
        if isinstance(node, str) and node:
            before = self.placement.get(role)
            if before is not None and before != node:
                # Its actor may have died with its node before Ray declared the node dead: the
                # node's loss, when it comes, still names it.
                self.departed.setdefault(before, {})[role] = self.sup.clock.monotonic()
            self.placement[role] = node

    async def watch_nodes(self, *, force: bool = False) -> None:
        """Node loss is read from Ray's node table and journaled with the roles it hosted; the
        roles' deaths arrive through their death watches and go through the policy. Read at
        most every ``NODE_TABLE_INTERVAL_S`` from the tick (Ray itself takes seconds to declare
        a node dead), at once when a child died."""
        now = self.sup.clock.monotonic()  # intervals here; the records take the wall clock
        if not force and now - self.read_ts < NODE_TABLE_INTERVAL_S:
            return
        self.read_ts = now
        try:
            nodes = await self.nodes()
        except Exception as exc:
            await self._control_plane_away(exc)
            return
        if self.head_lost_since is not None:
            away = round(now - self.head_lost_mono, 1)
            self.head_lost_since = None
            log.warning("Ray's control plane (the head) answers again after %.1fs", away)
            self.sup.journal(EventKind.HEAD_REACHABLE, {"away_s": away})
        for loss in lost_nodes(self.hosted(now), nodes, set(self.lost_nodes)):
            data = {
                "node_id": loss.node_id,
                "node_ip": self.node_ips.get(loss.node_id, ""),
                "roles": list(loss.roles),
                "state_node": loss.node_id == self.state_node.node_id,
            }
            self.lost_nodes[loss.node_id] = data | {"ts": self.sup.clock.now()}
            log.error("node %s lost with %s", data["node_ip"] or loss.node_id, data["roles"])
            await self.sup.journal_durably(EventKind.NODE_LOST, data)

    def hosted(self, now: float) -> dict[str, list[str]]:
        """Node -> the roles it hosts, and those that left it within ``DEPARTED_S`` (a node's
        actors die with it, and may be restarted elsewhere before Ray declares it dead)."""
        out: dict[str, list[str]] = {}
        for role, node in self.placement.items():
            out.setdefault(node, []).append(role)
        for node, roles in list(self.departed.items()):
            recent = {r: ts for r, ts in roles.items() if now - ts <= DEPARTED_S}
            if not recent:
                del self.departed[node]
                continue
            self.departed[node] = recent
            out.setdefault(node, []).extend(r for r in recent if r not in out[node])
        return out

    async def _control_plane_away(self, exc: Exception) -> None:
        """The node table does not answer: Ray's head is lost or cut off. Trading goes on while
        this supervisor can still reach its children (actor calls do not pass the head); Ray
        ends every worker if the head stays away, and then the broker's lease stops trading."""
        if self.head_lost_since is not None:
            return
        self.head_lost_since = self.sup.clock.now()  # shown in status
        self.head_lost_mono = self.sup.clock.monotonic()  # how long it was away
        error = f"{type(exc).__name__}: {exc}"[:300]
        log.error("Ray's control plane (the head) does not answer: %s", error)
        self.sup.journal(EventKind.HEAD_UNREACHABLE, {"error": error})

    def status(self) -> dict[str, Any]:
        return {
            "state_node": {"node_id": self.state_node.node_id, "node_ip": self.state_node.ip},
            "placement": {
                role: {"node_id": node, "node_ip": self.node_ips.get(node, "")}
                for role, node in sorted(self.placement.items())
            },
            "lost_nodes": list(self.lost_nodes.values()),
            "head_unreachable_since": self.head_lost_since,
        }

    def run_fields(self) -> dict[str, Any]:
        """What the run record says of where the run is (its identity and epochs are the
        ``Identity``'s to write)."""
        return {
            "phase": self.sup.core.phase.value,
            "state_node_id": self.state_node.node_id,
            "state_node_ip": self.state_node.ip,
            "state_dir": str(self.sup.cfg.deployment.resolved_state_dir()),
            "placement": dict(sorted(self.placement.items())),
        }

    def publish_run(self) -> None:
        """Into the run record in Ray's key-value store, where any node's CLI finds it;
        written when it changed."""
        fields = self.run_fields()
        if fields == self.published:
            return
        try:
            self.sup.adapter.update_run(self.sup.run_id, **fields)
        except Exception as exc:
            # Safe to lose for now: the next tick writes it again (it is compared to the last
            # one written, which stays the old one).
            log.warning("run record not published: %s", exc)
            return
        self.published = fields
