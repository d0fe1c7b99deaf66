import pytest

from tradeplane.core.errors import IllegalTransition
from tradeplane.core.health import Health, HealthFacts, Phase
from tradeplane.core.watchdog import Lifecycle, RestartPolicy
from tradeplane.supervisor.core import SupervisorCore

ROLES = ["journal", "venue", "broker", "risk", "strategy/a", "feed"]


def core(max_restarts: int = 2) -> SupervisorCore:
    c = SupervisorCore(
        ROLES, RestartPolicy(max_restarts, 60.0), heartbeat_timeout_s=5.0, feed_silence_s=30.0
    )
    for r in ROLES:
        c.running(r)
    c.set_phase(Phase.READY)
    c.set_phase(Phase.RUNNING)
    return c


def test_supervisor_core_imports_no_ray() -> None:
    import ast
    import inspect

    import tradeplane.supervisor.core

    tree = ast.parse(inspect.getsource(tradeplane.supervisor.core))
    names = {
        a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    } | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(str(m).startswith("ray") for m in names)


def test_child_death_then_restart_decision_and_restarting_state() -> None:
    c = core()
    d = c.on_death("broker", 1.0, "killed")
    assert d is not None and d.restart
    assert c.children["broker"].state is Lifecycle.RESTARTING
    assert c.down() == ("broker",)


def test_second_death_report_for_same_child_then_ignored() -> None:
    c = core()
    c.on_death("broker", 1.0, "killed")
    c.children["broker"].state = Lifecycle.DEAD
    assert c.on_death("broker", 1.1, "again") is None


def test_restart_budget_exhausted_then_gave_up_with_failure_reason() -> None:
    c = core(max_restarts=1)
    c.on_death("risk", 1.0, "x")
    c.running("risk")
    d = c.on_death("risk", 2.0, "x")
    assert d is not None and not d.restart
    assert c.children["risk"].state is Lifecycle.GAVE_UP and c.failure


def test_death_while_stopping_then_no_restart() -> None:
    c = core()
    c.set_phase(Phase.STOPPING)
    assert c.on_death("feed", 1.0, "x") is None


def test_restart_order_follows_dependencies() -> None:
    assert core().restart_order(["feed", "strategy/a", "journal", "broker"]) == [
        "journal",
        "broker",
        "strategy/a",
        "feed",
    ]


def test_missed_heartbeats_then_hung_after_timeout() -> None:
    c = core()
    assert not c.on_heartbeat_missed("risk", 10.0)
    assert not c.on_heartbeat_missed("risk", 14.0)
    assert c.on_heartbeat_missed("risk", 15.0)
    c.on_heartbeat("risk", {}, 16.0)
    assert not c.on_heartbeat_missed("risk", 17.0)


def test_health_change_is_reported_once() -> None:
    c = core()
    f = HealthFacts(Phase.RUNNING, 100.0, feed_started=True, last_bar_recv_ts=99.0)
    _, change = c.observe_health(f)
    assert change is not None and change.current is Health.OK
    assert c.observe_health(f)[1] is None


def test_stopped_deployment_cannot_run_again() -> None:
    c = core()
    c.set_phase(Phase.STOPPING)
    c.set_phase(Phase.STOPPED)
    with pytest.raises(IllegalTransition):
        c.set_phase(Phase.RUNNING)


def test_running_feed_reporting_not_streaming_then_should_start() -> None:
    c = core()
    c.on_heartbeat("feed", {"streaming": False}, 1.0)
    assert c.feed_should_start("feed")
    c.on_heartbeat("feed", {"streaming": True}, 2.0)
    assert not c.feed_should_start("feed")


def test_feed_not_started_while_ready_or_failed_or_without_a_heartbeat() -> None:
    fresh = core()
    assert not fresh.feed_should_start("feed")  # no heartbeat yet: nothing observed
    ready = SupervisorCore(
        ROLES, RestartPolicy(2, 60.0), heartbeat_timeout_s=5.0, feed_silence_s=30.0
    )
    for r in ROLES:
        ready.running(r)
    ready.set_phase(Phase.READY)
    ready.on_heartbeat("feed", {"streaming": False}, 1.0)
    assert not ready.feed_should_start("feed")
    failed = core()
    failed.on_heartbeat("feed", {"streaming": False}, 1.0)
    failed.set_phase(Phase.FAILED)
    assert not failed.feed_should_start("feed")
