"""Where the supervisor puts each role, and what it does when a node is lost (fake adapter and
clock: the node table is a list the test edits)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.supervisor.fakes import STATE_NODE, FakeAdapter, eventually, settle, supervisor
from tradeplane.cluster.placement import NodeInfo, Placement, Where
from tradeplane.core.watchdog import Lifecycle
from tradeplane.supervisor.supervisor import Supervisor

WORKER = "b" * 56
SPREAD = {"strategy/a": Placement(Where.SPREAD, resources={"tp_strategy": 1.0})}


async def running_spread() -> tuple[Supervisor, FakeAdapter]:
    sup, adapter, _ = supervisor(placements=SPREAD, strategy_max_restarts=5)
    adapter.node_table.append(NodeInfo(WORKER, "10.0.0.2", True, {"tp_strategy": 2.0}))
    adapter.lands_on["strategy/a"] = WORKER
    await sup.deploy()
    await sup.start_feed()
    await sup.tick()
    return sup, adapter


def lose_worker(adapter: FakeAdapter) -> None:
    i = next(i for i, n in enumerate(adapter.node_table) if n.node_id == WORKER)
    adapter.node_table[i] = NodeInfo(WORKER, "10.0.0.2", False, {"tp_strategy": 2.0})
    adapter.crash("strategy/a", "node died")


def test_deploy_then_state_roles_pinned_to_the_state_node_and_strategies_spread() -> None:
    async def scenario() -> None:
        sup, adapter = await running_spread()
        assert adapter.created_on.pop("strategy/a") is None  # Ray spreads it
        assert set(adapter.created_on.values()) == {STATE_NODE}
        placement = sup.status()["placement"]
        assert placement["strategy/a"] == {"node_id": WORKER, "node_ip": "10.0.0.2"}
        assert placement["journal"] == {"node_id": STATE_NODE, "node_ip": "10.0.0.1"}
        assert sup.status()["state_node"] == {"node_id": STATE_NODE, "node_ip": "10.0.0.1"}
        run = adapter.runs[-1]
        assert run.state_node_id == STATE_NODE and run.placement["strategy/a"] == WORKER

    asyncio.run(scenario())


def test_node_lost_then_journaled_once_with_the_roles_it_hosted() -> None:
    async def scenario() -> None:
        sup, adapter = await running_spread()
        adapter.node_table.append(NodeInfo("c" * 56, "10.0.0.3", True, {"tp_strategy": 2.0}))
        adapter.lands_on["strategy/a"] = "c" * 56
        lose_worker(adapter)
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "strategy back")
        lost = adapter.events("node_lost")
        assert lost == [
            {"run_id": "run-1", "node_id": WORKER, "node_ip": "10.0.0.2"}
            | {"roles": ["strategy/a"], "state_node": False}
        ]
        assert sup.status()["placement"]["strategy/a"]["node_ip"] == "10.0.0.3"
        assert sup.status()["lost_nodes"][0]["node_id"] == WORKER
        await sup.tick()
        assert len(adapter.events("node_lost")) == 1

    asyncio.run(scenario())


def test_strategy_no_live_node_can_take_then_suspended_at_once_as_unplaceable() -> None:
    async def scenario() -> None:
        sup, adapter = await running_spread()
        lose_worker(adapter)
        await eventually(lambda: "strategy_suspended" in adapter.kinds(), "suspended")
        await settle()
        child = sup.core.children["strategy/a"]
        assert child.state is Lifecycle.SUSPENDED
        suspended: dict[str, Any] = adapter.events("strategy_suspended")[0]
        assert suspended["reason"].startswith("strategy_unplaceable: no live node can take")
        assert [e["attempt"] for e in adapter.events("recovery_attempt")] == [1]
        assert adapter.created.count("strategy/a") == 1  # never created where it cannot run
        assert sup.core.phase.value == "running"  # the other strategies trade on

    asyncio.run(scenario())


def test_head_unreachable_then_said_once_shown_in_status_and_trading_goes_on() -> None:
    async def scenario() -> None:
        sup, adapter, clock = supervisor()
        await sup.deploy()
        await sup.start_feed()
        adapter.head_down = True
        for _ in range(3):
            await clock.advance(1.5)
            await sup.tick()
        assert len(adapter.events("head_unreachable")) == 1
        assert sup.status()["head_unreachable_since"] is not None
        assert sup.status()["health"] == "ok"  # the supervisor still reaches its children
        assert not adapter.method_calls("broker", "set_trading_state")
        adapter.head_down = False
        await clock.advance(1.5)
        await sup.tick()
        assert adapter.events("head_reachable")[0]["away_s"] >= 4.5
        assert sup.status()["head_unreachable_since"] is None

    asyncio.run(scenario())


def test_node_declared_dead_after_its_strategy_moved_then_node_lost_still_names_it() -> None:
    """On a lost machine the actors die with it and may be restarted elsewhere before Ray's
    health checks declare the node dead (seen in bench/nodes.py with Ray's defaults)."""

    async def scenario() -> None:
        sup, adapter = await running_spread()
        adapter.node_table.append(NodeInfo("c" * 56, "10.0.0.3", True, {"tp_strategy": 2.0}))
        adapter.lands_on["strategy/a"] = "c" * 56
        adapter.crash("strategy/a", "worker died")  # the node is still alive in the table
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "strategy back")
        assert adapter.events("node_lost") == []
        i = next(i for i, n in enumerate(adapter.node_table) if n.node_id == WORKER)
        adapter.node_table[i] = NodeInfo(WORKER, "10.0.0.2", False)  # now Ray declares it dead
        await sup.placer.watch_nodes(force=True)
        lost = adapter.events("node_lost")
        assert [(e["node_id"], e["roles"]) for e in lost] == [(WORKER, ["strategy/a"])]

    asyncio.run(scenario())
