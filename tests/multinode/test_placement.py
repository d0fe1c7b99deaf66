"""A deployment across nodes: the record and every role that writes to it before an order leaves
on the state node, strategies spread over the workers, a strategy node lost while orders flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import actor, live_status, running, strategy, wait_for_kind
from tests.integration.invariants import check
from tests.multinode.conftest import Nodes
from tradeplane.journal.reader import JournalReader
from tradeplane.protocol.roles import NAMESPACE, actor_name

STATE_ROLES = ("supervisor", "journal", "telemetry", "venue", "broker", "risk", "reconciler")
STRATEGIES = ("s1", "s2", "s3", "s4")


def spread_config(state: Path, **supervisor: Any) -> Any:
    strategies = [
        strategy(name, "Flipper", ["AAA", "BBB"], every=2) | {"resources": {"tp_strategy": 1}}
        for name in STRATEGIES
    ]
    return make_config(
        state,
        strategies=strategies,
        deployment={"state_node": "tp-role=state"},
        supervisor={"max_recovery_attempts": 10, "strategy_max_restarts": 10, **supervisor},
    )


def node_of(deployment: str, role: str) -> str:
    """Asked of the actor itself, not of the supervisor's record."""
    handle = actor(deployment, role)
    return str(ray.get(handle.node_id.remote(), timeout=10))


def test_deploy_then_state_roles_on_the_state_node_and_strategies_spread_over_workers(
    nodes: Nodes, tmp_path: Path
) -> None:
    nodes.ensure(workers=2)
    cfg = spread_config(tmp_path / "state")
    with running(cfg) as run:
        status = live_status(run.name)
        state_id = nodes.state.node_id
        assert status["state_node"]["node_id"] == state_id
        for role in [*STATE_ROLES[1:], "feed"]:
            assert node_of(run.name, role) == state_id, f"{role} not on the state node"
            assert status["placement"][role]["node_id"] == state_id
        sup = ray.get_actor(actor_name(run.name, "supervisor"), namespace=NAMESPACE)
        assert ray.get(sup.heartbeat.remote(), timeout=10)  # placed by affinity, alive
        workers = {n.node_id for n in nodes.workers}
        on = {s: node_of(run.name, f"strategy/{s}") for s in STRATEGIES}
        assert set(on.values()) <= workers and len(set(on.values())) == 2, on
        head = nodes.cluster.head_node.node_id
        assert head not in {p["node_id"] for p in status["placement"].values()}


@pytest.mark.timeout(300)
def test_strategy_node_lost_while_orders_flow_then_back_elsewhere_and_invariants_hold(
    nodes: Nodes, tmp_path: Path
) -> None:
    nodes.ensure(workers=3)
    state = tmp_path / "state"
    cfg = spread_config(state)
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 3)
        on = {s: node_of(run.name, f"strategy/{s}") for s in STRATEGIES}
        victim = next(n for n in nodes.workers if n.node_id in on.values())
        hosted = sorted(f"strategy/{s}" for s, node in on.items() if node == victim.node_id)
        nodes.lose(victim)

        def lost() -> list[dict[str, Any]]:
            with JournalReader.open(state) as j:
                return [e["data"] for e in j.events(kinds=["node_lost"])]

        found = eventually(lost, timeout_s=60, what="node_lost journaled")
        assert found[0]["node_id"] == victim.node_id and found[0]["roles"] == hosted

        def back() -> bool:
            s = live_status(run.name)
            where = s.get("placement", {})
            return s.get("health") == "ok" and all(
                where.get(r, {}).get("node_id") not in (None, victim.node_id) for r in hosted
            )

        eventually(back, timeout_s=90, what="the lost node's strategies running elsewhere")
        for role in hosted:
            assert node_of(run.name, role) in {n.node_id for n in nodes.workers}
        filled = wait_for_kind(state, "order_filled", 1)
        wait_for_kind(state, "order_filled", filled + 3)
    report = check(state)
    assert not report.problems, report.problems
