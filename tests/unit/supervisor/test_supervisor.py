"""``Supervisor`` against a fake adapter and a fake clock: death and restart, exhaustion to a
fail-closed stop, a halt the broker refuses, the journal unreachable, re-attach. No Ray, no
sleeping: time moves when the test advances it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.unit.supervisor.fakes import (
    STATE_NODE,
    FakeAdapter,
    FakeClock,
    eventually,
    settle,
    supervisor,
)
from tradeplane.core.health import Health, Phase
from tradeplane.core.watchdog import Lifecycle
from tradeplane.supervisor.supervisor import Supervisor


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


async def running(**cfg: Any) -> tuple[Supervisor, FakeAdapter, FakeClock]:
    sup, adapter, clock = supervisor(**cfg)
    await sup.deploy()
    await sup.start_feed()
    await sup.tick()  # the first heartbeats: health known
    return sup, adapter, clock


async def exhaust_risk(sup: Supervisor, adapter: FakeAdapter) -> None:
    """With one attempt allowed: the risk actor dies, is restarted, dies again."""
    adapter.crash("risk")
    await eventually(lambda: sup.core.children["risk"].restarts == 1, "first restart")
    adapter.crash("risk")
    await eventually(lambda: sup.core.phase is not Phase.RUNNING, "gave up")
    await settle()


def test_deploy_then_every_child_created_running_and_start_journaled() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        assert all(c.state is Lifecycle.RUNNING for c in sup.core.children.values())
        assert adapter.kinds()[0] == "deployment_started" and "feed_started" in adapter.kinds()
        assert adapter.state[("supervisor", "run")] == {
            "run_id": "run-1",
            "phase": "running",
            "state_node_id": STATE_NODE,
            "state_node_ip": "10.0.0.1",
        }
        assert sup.status()["health"] == Health.OK.value

    run(scenario)


def test_child_dies_then_restarted_rewired_and_each_step_journaled() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        adapter.crash("risk", "worker died")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert adapter.created.count("risk") == 2
        risk = sup.core.children["risk"]
        assert risk.state is Lifecycle.RUNNING and risk.restarts == 1
        assert adapter.events("actor_died") == [
            {"run_id": "run-1", "role": "risk", "cause": "worker died", "attempt": 1}
            | {"retry": True}
        ]
        assert adapter.events("recovery_attempt")[0]["target"] == "risk"
        assert ("broker", "rewire", ("risk",)) in adapter.sent
        assert sup.core.down() == () and sup.status()["restarts"][0]["target"] == "risk"

    run(scenario)


def test_restart_fails_then_recorded_and_tried_again_after_cooldown() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(max_recovery_attempts=3)
        adapter.create_failures["risk"] = 1
        adapter.crash("risk")
        await eventually(lambda: "recovery_failed" in adapter.kinds(), "failed restart")
        assert sup.core.children["risk"].state is Lifecycle.DEAD
        await clock.advance(1.0)  # the second attempt waits recovery_cooldown_s
        await eventually(lambda: sup.core.children["risk"].state is Lifecycle.RUNNING)
        assert [e["attempt"] for e in adapter.events("recovery_attempt")] == [1, 2]

    run(scenario)


def test_restarts_exhausted_then_halted_fail_closed_and_health_failed() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running(max_recovery_attempts=1)
        await exhaust_risk(sup, adapter)
        assert sup.core.phase is Phase.FAILED
        assert sup.status()["health"] == Health.FAILED.value
        exhausted = adapter.events("recovery_exhausted")
        assert len(exhausted) == 1 and exhausted[0]["target"] == "risk"
        assert adapter.method_calls("feed", "stop_streaming")
        assert adapter.method_calls("broker", "set_trading_state") == [
            ("halted", {"active": True, "reason": "recovery_exhausted", "source": "supervisor"})
        ]
        assert adapter.method_calls("broker", "cancel_all") == [("recovery exhausted",)]
        assert "halt_failed" not in adapter.kinds()
        assert adapter.state[("supervisor", "run")]["phase"] == "failed"
        assert sup.status()["recovery"]["state"] == "exhausted"

    run(scenario)


def test_restarts_exhausted_then_recovery_exhausted_gauge_names_the_target() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running(max_recovery_attempts=1)

        def exhausted() -> list[tuple[float, dict[str, str]]]:
            points = sup.start_metrics().snapshot()
            return [
                (float(p.value or 0.0), p.label_dict())
                for p in points
                if p.name == "recovery_exhausted"
            ]

        assert [v for v, _ in exhausted()] == [0.0]
        await exhaust_risk(sup, adapter)
        [(value, labels)] = exhausted()
        assert value == 1.0 and labels["target"] == "risk"

    run(scenario)


def test_exhausted_then_broker_halted_before_the_exhaustion_is_journaled_durably() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running(max_recovery_attempts=1)
        order: list[str] = []
        journal, call = adapter.journal, adapter.call

        async def journal_spy(records: list[Any], state: list[Any], *, retry_s: float) -> None:
            await journal(records, state, retry_s=retry_s)
            order.extend(r.kind for r in records)

        async def call_spy(timeout_s: float, role: str, method: Any, *args: Any) -> Any:
            order.append(method.__name__)
            return await call(timeout_s, role, method, *args)

        adapter.journal, adapter.call = journal_spy, call_spy  # type: ignore[method-assign]
        await exhaust_risk(sup, adapter)
        # Fail closed first (DESIGN §4): the durable write waits behind the broker's own
        # commits, and an approval already on its way must not leave meanwhile.
        assert order.index("set_trading_state") < order.index("recovery_exhausted")

    run(scenario)


def test_restarts_exhausted_with_stop_configured_then_stopped_and_actors_gone() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running(max_recovery_attempts=1, on_recovery_exhausted="stopped")
        await exhaust_risk(sup, adapter)
        await eventually(lambda: sup.core.phase is Phase.STOPPED, "stopped")
        assert sup.status()["health"] == Health.STOPPED.value
        assert adapter.kinds()[-1] == "deployment_stopped"
        assert "recovery exhausted" in adapter.events("deployment_stopped")[0]["reason"]
        assert adapter.children == {}
        assert all(c.state is Lifecycle.STOPPED for c in sup.core.children.values())

    run(scenario)


def test_halt_refused_by_broker_then_recorded_retried_with_backoff_until_it_holds() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(max_recovery_attempts=1)
        adapter.fail("broker", "set_trading_state", 2, TimeoutError())
        await exhaust_risk(sup, adapter)
        failed = adapter.events("halt_failed")
        assert [(f["attempt"], f["retry_in_s"]) for f in failed] == [(1, 0.5)]
        assert "TimeoutError" in failed[0]["error"]
        await clock.advance(0.5)
        failed = adapter.events("halt_failed")
        assert [(f["attempt"], f["retry_in_s"]) for f in failed] == [(1, 0.5), (2, 1.0)]
        await clock.advance(0.5)
        assert len(adapter.method_calls("broker", "set_trading_state")) == 2  # not yet due
        await clock.advance(0.5)
        assert len(adapter.method_calls("broker", "set_trading_state")) == 3
        assert adapter.events("halt_succeeded")[0]["attempts"] == 3
        assert sup.core.halt is not None and sup.core.halt.confirmed
        await clock.advance(60.0)
        assert len(adapter.method_calls("broker", "set_trading_state")) == 3

    run(scenario)


def test_halt_while_broker_dead_then_failure_recorded_and_not_retried() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(max_recovery_attempts=0)
        adapter.crash("broker")
        await eventually(lambda: "halt_failed" in adapter.kinds(), "halt failure recorded")
        (failed,) = adapter.events("halt_failed")
        assert failed["retry_in_s"] is None and "broker is down" in failed["given_up"]
        await clock.advance(60.0)
        assert len(adapter.method_calls("broker", "set_trading_state")) == 1
        assert sup.core.phase is Phase.FAILED

    run(scenario)


def test_journal_unreachable_at_halt_then_halt_goes_on_and_records_kept_until_back() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running(max_recovery_attempts=1)
        adapter.journal_up = False
        await exhaust_risk(sup, adapter)
        # Fail closed never waits on the journal...
        assert adapter.method_calls("broker", "set_trading_state")
        assert sup.core.phase is Phase.FAILED
        assert sup.journal_failures == 1
        # ...and loses nothing: every record waits for it, then lands once.
        assert adapter.undelivered() > 0 and "recovery_exhausted" not in adapter.kinds()
        adapter.journal_back()
        kinds = adapter.kinds()
        assert kinds.count("recovery_exhausted") == 1 and kinds.count("deployment_failed") == 1
        assert adapter.state[("supervisor", "run")]["phase"] == "failed"

    run(scenario)


def test_journal_dies_then_records_kept_and_delivered_after_its_restart() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        adapter.crash("journal")
        await eventually(lambda: sup.core.children["journal"].restarts == 1, "journal back")
        await settle()
        kinds = adapter.kinds()
        # Written while it was down (its death, the attempt), delivered on its rewire.
        assert {"actor_died", "recovery_attempt", "recovery_succeeded"} <= set(kinds)
        assert adapter.undelivered() == 0

    run(scenario)


def test_stop_when_health_record_still_in_flight_then_deployment_stopped_is_last() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        adapter.hold_appends = True  # the stop's health change is sent, not yet answered
        stop = asyncio.ensure_future(sup.stop("operator"))
        ticks = 0
        while not stop.done():
            await clock.advance(0.01)
            ticks += 1
            if ticks % 3 == 0 or "deployment_stopped" in adapter.kinds():
                adapter.release_appends()  # answered a little later, as Ray may
        await stop
        adapter.release_appends()
        kinds = adapter.kinds()
        assert kinds[-1] == "deployment_stopped", kinds[-3:]
        assert adapter.events("health_changed")[-1]["health"] == "stopped"

    run(scenario)


def test_stop_with_journal_unreachable_then_stops_and_says_the_record_is_missing() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        adapter.journal_up = False
        summary = await sup.stop("operator")
        assert summary["phase"] == "stopped"
        assert "deployment_stopped" in summary["stop_errors"]["journal"]
        assert adapter.children == {}
        assert adapter.method_calls("journal", "close") == []

    run(scenario)


def test_supervisor_restarted_then_reattaches_to_live_children_by_name() -> None:
    async def scenario() -> None:
        first, adapter, clock = await running()
        for task in list(first.tasks):
            task.cancel()
        await settle()
        created = list(adapter.created)
        second, _, _ = supervisor(clock, adapter)
        assert await second.reattach()
        assert adapter.created == created  # nothing created again
        assert second.core.phase is Phase.RUNNING
        assert all(c.state is Lifecycle.RUNNING for c in second.core.children.values())
        assert adapter.events("supervisor_reattached")[0]["missing"] == []
        # It watches them: a death now is recovered.
        adapter.crash("risk")
        await eventually(lambda: second.core.children["risk"].restarts == 1, "restart")

    run(scenario)


def test_reattach_then_suspended_strategy_stays_suspended_and_missing_child_recovered() -> None:
    async def scenario() -> None:
        first, adapter, clock = await running(strategy_max_restarts=0)
        adapter.crash("strategy/a")
        await eventually(lambda: "strategy_suspended" in adapter.kinds(), "suspended")
        for task in list(first.tasks):
            task.cancel()
        await settle()
        del adapter.children["feed"]  # died while no supervisor watched
        second, _, _ = supervisor(clock, adapter, strategy_max_restarts=0)
        assert await second.reattach()
        assert second.core.children["strategy/a"].state is Lifecycle.SUSPENDED
        assert "strategy/a" in adapter.abandoned
        assert adapter.events("supervisor_reattached")[0]["missing"] == ["feed"]
        await eventually(lambda: second.core.children["feed"].state is Lifecycle.RUNNING)
        assert adapter.created.count("strategy/a") == 1

    run(scenario)


def test_supervisor_and_journal_lost_together_then_reattached_and_journal_recovered() -> None:
    async def scenario() -> None:
        first, adapter, clock = await running()
        await first.tick()  # the run record published as running
        for task in list(first.tasks):
            task.cancel()
        await settle()
        del adapter.children["journal"]  # gone with the supervisor
        second, _, _ = supervisor(clock, adapter)
        assert await second.reattach()  # from the run record: never left idle
        await eventually(lambda: second.core.children["journal"].state is Lifecycle.RUNNING)
        assert adapter.created.count("journal") == 2
        await eventually(lambda: adapter.events("supervisor_reattached"), "queued, then sent")
        assert adapter.events("supervisor_reattached")[0]["missing"] == ["journal"]
        assert second.core.phase is Phase.RUNNING

    run(scenario)


def test_reattach_to_a_failed_run_then_nothing_adopted() -> None:
    async def scenario() -> None:
        first, adapter, clock = await running(max_recovery_attempts=0)
        adapter.crash("risk")
        await eventually(lambda: first.core.phase is Phase.FAILED)
        await settle()
        second, _, _ = supervisor(clock, adapter)
        assert not await second.reattach()
        assert second.core.phase is Phase.STARTING

    run(scenario)


def test_hung_child_then_killed_after_heartbeat_timeout_and_restarted() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(heartbeat_timeout_s=3.0)
        adapter.fail("venue", "heartbeat", 100, TimeoutError())
        for _ in range(5):
            await clock.advance(1.0)  # one monitor tick per second
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "restart")
        assert "venue" in adapter.killed
        assert adapter.events("actor_died")[0]["role"] == "venue"
        assert sup.core.children["venue"].restarts == 1

    run(scenario)


def test_venue_replaced_then_broker_told_by_call_and_resync_starts_without_waiting_a_tick() -> None:
    async def scenario() -> None:
        _, adapter, _ = await running()
        adapter.beats["broker"] = {"resyncing": True, "connected": False}
        adapter.crash("venue")
        await eventually(lambda: "recovery_succeeded" in adapter.kinds(), "venue replaced")
        # The broker reaches the new venue when told (a call, waited for, not a message)...
        adapter.beats["broker"] = {"resyncing": True, "connected": True}
        await eventually(lambda: adapter.method_calls("broker", "rewire") == [("venue",)])
        assert ("broker", "rewire", ("venue",)) not in adapter.sent
        # ...and the supervisor looks at once: the resync runs with the clock standing still.
        await eventually(lambda: adapter.method_calls("reconciler", "run") != [], "resync")
        await eventually(lambda: adapter.method_calls("broker", "end_resync") != [], "resync end")

    run(scenario)


def test_supervisor_logic_imports_no_ray_directly() -> None:
    """Only the adapter, the actor shell and the child specs talk to Ray."""
    import ast
    from pathlib import Path

    import tradeplane.supervisor

    folder = Path(tradeplane.supervisor.__file__).parent
    for name in ("supervisor", "recovery", "stopping", "reattach", "clock", "derive", "halting"):
        tree = ast.parse((folder / f"{name}.py").read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m == "ray" or m.startswith("ray.") for m in modules), name


def test_steady_deployment_then_heartbeats_at_the_steady_cadence_not_every_monitor_tick() -> None:
    async def scenario() -> None:
        # monitor 0.25 s; steady cadence min(2, 5/2, 15/6, 60/20) = 2 s
        sup, adapter, clock = await running(monitor_interval_s=0.25, feed_silence_s=60.0)
        assert sup.status()["health"] == Health.OK.value
        assert sup.tick_interval() == 2.0
        before = len(adapter.method_calls("risk", "heartbeat"))
        for _ in range(40):
            await clock.advance(0.25)  # 10 s
        beats = len(adapter.method_calls("risk", "heartbeat")) - before
        assert 4 <= beats <= 6  # every 2 s, not 40 times

    run(scenario)


def test_missed_heartbeat_then_back_to_the_monitor_cadence_until_answered() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(monitor_interval_s=0.25, feed_silence_s=60.0)
        for _ in range(12):  # settled into the steady cadence
            await clock.advance(0.25)
        assert sup.tick_interval() == 2.0
        adapter.fail("venue", "heartbeat", 1, TimeoutError())
        venue = sup.core.children["venue"]
        for _ in range(8):  # the next steady tick misses the venue's beat
            await clock.advance(0.25)
            if venue.hung_since is not None:
                break
        assert venue.hung_since is not None
        assert sup.tick_interval() == 0.25
        await clock.advance(0.25)  # the next beat, a monitor tick later, is answered
        await eventually(lambda: venue.hung_since is None, "answered")
        assert sup.tick_interval() == 2.0

    run(scenario)


def test_child_down_then_ticks_at_the_monitor_cadence() -> None:
    async def scenario() -> None:
        sup, _, _ = await running(monitor_interval_s=0.25, feed_silence_s=60.0)
        sup.core.children["risk"].move(Lifecycle.DEAD)  # seen dead, not yet restarted
        assert sup.tick_interval() == 0.25

    run(scenario)


def test_supervisor_restarted_then_status_says_when_it_reattached_and_first_ticked() -> None:
    async def scenario() -> None:
        first, adapter, clock = await running()
        for task in list(first.tasks):
            task.cancel()
        await settle()
        assert first.status()["reattached"] is None  # a fresh deployment
        second, _, _ = supervisor(clock, adapter)
        assert await second.reattach()
        await eventually(second.ticked.is_set, "the first tick after re-attaching")
        reattached = second.status()["reattached"]
        assert reattached == {"ts": clock.now(), "first_tick_ts": clock.now()}

    run(scenario)


def test_deployed_feed_not_yet_started_then_ticks_at_the_monitor_cadence() -> None:
    async def scenario() -> None:
        sup, _, _ = supervisor(monitor_interval_s=0.25, feed_silence_s=60.0)
        await sup.deploy()
        assert sup.status()["health"] == Health.READY.value
        assert sup.tick_interval() == 0.25  # ok must follow the first bars at once

    run(scenario)


def test_fault_injected_then_the_command_returns_only_after_its_record_is_committed() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        awaited: list[str] = []
        journal = adapter.journal

        async def journal_spy(records: list[Any], state: list[Any], *, retry_s: float) -> None:
            await journal(records, state, retry_s=retry_s)
            awaited.extend(r.kind for r in records)

        adapter.journal = journal_spy  # type: ignore[method-assign]
        await sup.inject_fault("reject_orders", 1.0)
        await sup.clear_faults("reject_orders")
        assert awaited == ["fault_injected", "faults_cleared"]

    run(scenario)


def heartbeats(adapter: FakeAdapter) -> int:
    return sum(1 for _, method, _ in adapter.calls if method == "heartbeat")


def test_instance_whose_term_was_overtaken_then_stops_acting_before_its_next_tick() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        current = [True]
        gone: list[bool] = []
        sup.still_current = lambda: current[0]
        sup.on_superseded = lambda: gone.append(True)
        sup.start_loops()
        adapter.crash("risk")  # a death while it still acts: recovered as ever
        await eventually(lambda: sup.core.children["risk"].restarts == 1, "restart")
        assert gone == []
        current[0] = False  # another instance claimed the next term
        beats = heartbeats(adapter)
        sup.wake.set()
        await clock.advance(5.0)
        assert gone == [True]
        assert sup.loop_task is not None and sup.loop_task.done()
        assert heartbeats(adapter) == beats  # no tick once it knew

    run(scenario)


def test_status_then_shows_the_succession_the_actor_shell_reports() -> None:
    async def scenario() -> None:
        sup, _, _ = await running()
        assert sup.status()["supervisor"] is None  # no shell: no succession
        shown = {"name": "t/supervisor", "term": 1, "standby": None}
        sup.succession_status = lambda: shown
        assert sup.status()["supervisor"] == shown

    run(scenario)
