"""Standbys against the fake adapter: promoted on a death after the old incarnation is fenced,
replaced after use, skipped where the role may not run, fallen back from when none fits or the
promotion fails, gone with the deployment. No Ray, no sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.unit.supervisor.fakes import STATE_NODE, FakeAdapter, FakeClock, eventually, supervisor
from tradeplane.cluster.placement import NodeInfo, Placement, Where
from tradeplane.core.watchdog import Lifecycle
from tradeplane.supervisor.standbys import (
    REFILL_DELAY_S,
    Standby,
    pick,
    standby_nodes,
)
from tradeplane.supervisor.supervisor import FIRST_TICK_WAIT_S, Supervisor

OTHER_NODE = "b" * 56


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


async def running(
    placements: dict[str, Placement] | None = None,
    nodes: list[NodeInfo] | None = None,
    **cfg: Any,
) -> tuple[Supervisor, FakeAdapter, FakeClock]:
    clock = FakeClock()
    adapter = FakeAdapter(clock)
    if nodes is not None:
        adapter.node_table = nodes
    sup, adapter, clock = supervisor(clock, adapter, placements=placements, **cfg)
    await sup.deploy()
    await sup.start_feed()
    await sup.tick()
    return sup, adapter, clock


def ready_pool(sup: Supervisor) -> list[Standby]:
    return [s for s in sup.standbys.pool.values() if s.ready]


# -- the choice (pure) -------------------------------------------------------------------------


def test_pinned_role_then_only_a_ready_standby_on_its_own_node() -> None:
    on_state = Standby("d/standby/1", STATE_NODE, ready=True)
    elsewhere = Standby("d/standby/2", OTHER_NODE, ready=True)
    starting = Standby("d/standby/3", STATE_NODE, ready=False)
    pinned = Placement(Where.STATE_NODE)
    assert pick([elsewhere, on_state], pinned, STATE_NODE, []) is on_state
    assert pick([elsewhere, starting], pinned, STATE_NODE, []) is None


def test_spread_role_then_a_standby_on_a_node_its_labels_allow() -> None:
    nodes = [
        NodeInfo(STATE_NODE, "10.0.0.1", alive=True, labels={"tp-role": "state"}),
        NodeInfo(OTHER_NODE, "10.0.0.2", alive=True, labels={"gpu": "yes"}),
    ]
    on_state = Standby("d/standby/1", STATE_NODE, ready=True)
    on_gpu = Standby("d/standby/2", OTHER_NODE, ready=True)
    anywhere = Placement(Where.SPREAD)
    wants_gpu = Placement(Where.SPREAD, labels={"gpu": "yes"})
    assert pick([on_state], anywhere, None, nodes) is on_state
    assert pick([on_state], wants_gpu, None, nodes) is None
    assert pick([on_state, on_gpu], wants_gpu, None, nodes) is on_gpu


def test_spread_role_reserving_resources_then_never_a_standby() -> None:
    nodes = [NodeInfo(STATE_NODE, "10.0.0.1", alive=True, resources={"CPU": 2.0})]
    standby = Standby("d/standby/1", STATE_NODE, ready=True)
    reserving = Placement(Where.SPREAD, resources={"CPU": 1.0})
    assert pick([standby], reserving, None, nodes) is None


def test_standby_nodes_are_the_state_node_and_a_separate_feed_node() -> None:
    assert standby_nodes(STATE_NODE, None) == [STATE_NODE]
    assert standby_nodes(STATE_NODE, STATE_NODE) == [STATE_NODE]
    assert standby_nodes(STATE_NODE, OTHER_NODE) == [STATE_NODE, OTHER_NODE]


# -- the supervisor with standbys --------------------------------------------------------------


def test_deploy_then_one_standby_started_on_the_state_node() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        await eventually(lambda: ready_pool(sup), "standby ready")
        assert list(adapter.standby_nodes.values()) == [STATE_NODE]
        status = sup.status()["standbys"]
        assert status["enabled"] and status["pool"][0]["ready"]
        assert status["rss_bytes"] == 1000 and status["pool"][0]["pid"] == 1

    run(scenario)


def test_child_dies_then_standby_promoted_with_a_fenced_new_epoch_and_replaced_after() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        [standby] = await eventually(lambda: ready_pool(sup), "standby ready")
        first_epoch = adapter.epochs["broker"]
        adapter.crash("broker", "worker died")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert adapter.promoted == [("broker", standby.name)]
        assert "broker" in adapter.killed  # the old one is dead before the standby takes over
        epoch = adapter.epochs["broker"]
        assert epoch > first_epoch
        assert adapter.fenced_at_create["broker"] == epoch  # fenced before it could act
        assert sup.core.children["broker"].state is Lifecycle.RUNNING
        [done] = adapter.events("recovery_succeeded")
        assert "broker_promote_s" in done["phases"]
        assert sup.status()["standbys"]["promoted"] == 1
        # Replaced once the recovery is over, by a new standby on the same node.
        await clock.advance(REFILL_DELAY_S)
        [replacement] = await eventually(lambda: ready_pool(sup), "replacement ready")
        assert replacement.name != standby.name and replacement.node_id == STATE_NODE

    run(scenario)


def test_standbys_off_then_none_started_and_the_dead_child_created_afresh() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running(standbys=False)
        adapter.crash("risk")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert adapter.standbys == {} and adapter.promoted == []
        assert adapter.created.count("risk") == 2
        assert sup.status()["standbys"]["enabled"] is False

    run(scenario)


def test_no_standby_ready_then_created_afresh_and_counted() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        [standby] = await eventually(lambda: ready_pool(sup), "standby ready")
        standby.ready = False  # still importing
        adapter.crash("risk")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert adapter.promoted == [] and adapter.created.count("risk") == 2
        assert sup.status()["standbys"]["fallbacks"] == 1

    run(scenario)


def test_promotion_fails_then_standby_killed_and_role_created_afresh_above_its_epoch() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        [standby] = await eventually(lambda: ready_pool(sup), "standby ready")
        adapter.promote_failures = 1
        adapter.crash("risk")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert standby.name in adapter.killed_standbys
        assert adapter.promoted == [] and adapter.created.count("risk") == 2
        # A fresh incarnation, fenced above whatever the failed promotion began.
        assert adapter.fences["risk"] == adapter.epochs["risk"]
        assert len([a for a in adapter.method_calls("journal", "fence") if a[0] == "risk"]) == 3

    run(scenario)


def test_dead_standby_then_dropped_and_replaced_and_never_promoted() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        [standby] = await eventually(lambda: ready_pool(sup), "standby ready")
        adapter.standbys[standby.name].die("node lost")
        await eventually(lambda: standby.name not in sup.standbys.pool, "dropped")
        adapter.crash("risk")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert adapter.promoted == [] and adapter.created.count("risk") == 2
        await clock.advance(10.0)
        await eventually(lambda: ready_pool(sup), "replacement ready")

    run(scenario)


def test_strategy_reserving_resources_then_created_afresh_not_promoted() -> None:
    async def scenario() -> None:
        where = {"strategy/a": Placement(Where.SPREAD, resources={"GPU": 1.0})}
        nodes = [NodeInfo(STATE_NODE, "10.0.0.1", alive=True, resources={"GPU": 1.0})]
        sup, adapter, _ = await running(placements=where, nodes=nodes)
        await eventually(lambda: ready_pool(sup), "standby ready")
        adapter.crash("strategy/a")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert adapter.promoted == [] and adapter.created.count("strategy/a") == 2

    run(scenario)


def test_reattach_then_no_first_tick_then_previous_standbys_still_reaped_after_a_while() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        [old] = await eventually(lambda: ready_pool(sup), "standby ready")
        restarted, _, _ = supervisor(clock=clock, adapter=adapter)

        async def failing_tick() -> None:
            raise RuntimeError("every tick fails")

        restarted.tick = failing_tick  # type: ignore[method-assign]
        assert await restarted.reattach()
        await clock.advance(FIRST_TICK_WAIT_S - 1.0)
        assert old.name not in adapter.killed_standbys  # still waiting for the first tick
        await clock.advance(2.0)
        await eventually(lambda: old.name in adapter.killed_standbys, "old standby reaped")
        assert not restarted.ticked.is_set()

    run(scenario)


def test_stop_then_standbys_killed_with_the_deployment() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        [standby] = await eventually(lambda: ready_pool(sup), "standby ready")
        await sup.stop()
        assert standby.name in adapter.killed_standbys
        assert sup.standbys.pool == {}
        await clock.advance(10.0)
        assert adapter.standbys == {}  # none started after the stop

    run(scenario)


def test_reattach_then_standbys_of_the_previous_supervisor_reaped_after_the_first_tick() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        [old] = await eventually(lambda: ready_pool(sup), "standby ready")
        await clock.advance(3.0)  # Ray restarts a supervisor in a few seconds
        restarted, _, _ = supervisor(clock=clock, adapter=adapter)
        ticked_when_reaped: list[bool] = []
        kill_standby = adapter.kill_standby

        async def kill_and_note(name: str) -> None:
            ticked_when_reaped.append(restarted.ticked.is_set())
            await kill_standby(name)

        adapter.kill_standby = kill_and_note  # type: ignore[method-assign]
        assert await restarted.reattach()
        await eventually(lambda: old.name in adapter.killed_standbys, "old standby reaped")
        assert ticked_when_reaped == [True]  # off the re-attach's path
        [new] = await eventually(lambda: ready_pool(restarted), "new standby ready")
        assert new.name != old.name

    run(scenario)
