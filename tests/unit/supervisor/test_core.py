import pytest

from tradeplane.core.errors import IllegalTransition
from tradeplane.core.health import Health, HealthFacts, Phase
from tradeplane.core.watchdog import Lifecycle, RecoveryPolicy
from tradeplane.supervisor.core import FEED_SILENCE, SupervisorCore

ROLES = ["journal", "venue", "broker", "risk", "strategy/a", "feed"]


def new_core(max_attempts: int = 2, strategy_max_restarts: int = 1) -> SupervisorCore:
    return SupervisorCore(
        ROLES,
        RecoveryPolicy(max_attempts, 60.0, cooldown_s=1.0, jitter=0.0),
        heartbeat_timeout_s=5.0,
        feed_silence_s=30.0,
        strategy_max_restarts=strategy_max_restarts,
    )


def core(max_attempts: int = 2, strategy_max_restarts: int = 1) -> SupervisorCore:
    c = new_core(max_attempts, strategy_max_restarts)
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


def test_child_death_then_recovery_queued_and_child_down() -> None:
    c = core()
    d = c.on_death("broker", 1.0, "killed")
    assert d is not None and d.retry and d.delay_s == 0.0
    assert c.children["broker"].state is Lifecycle.DEAD
    assert c.down() == ("broker",)
    rec, wait = c.next_recovery(1.0)
    assert rec is not None and rec.roles == ("broker",) and wait == 0.0


def test_recovery_carried_out_then_running_with_restart_counted() -> None:
    c = core()
    c.on_death("broker", 1.0, "killed")
    rec, _ = c.next_recovery(5.0)
    assert rec is not None
    c.begin(rec)
    assert c.children["broker"].state is Lifecycle.RESTARTING and c.in_progress == "broker"
    c.restarted("broker")
    c.end()
    assert c.children["broker"].restarts == 1 and c.down() == ()
    assert c.next_recovery(5.0) == (None, 0.0)


def test_second_death_report_for_same_child_then_ignored() -> None:
    c = core()
    c.on_death("broker", 1.0, "killed")
    assert c.on_death("broker", 1.1, "again") is None


def test_restart_fails_then_counted_as_another_failure() -> None:
    c = core()
    c.on_death("risk", 1.0, "x")
    rec, _ = c.next_recovery(9.0)
    assert rec is not None
    c.begin(rec)
    d = c.on_death("risk", 9.5, "restart failed")
    assert d is not None and d.retry and d.attempt == 2 and d.delay_s == 1.0
    rec, wait = c.next_recovery(10.0)
    assert rec is not None and wait == pytest.approx(0.5)


def test_recovery_budget_exhausted_then_gave_up_and_deployment_exhausted() -> None:
    c = core(max_attempts=1)
    c.on_death("risk", 1.0, "x")
    rec, _ = c.next_recovery(9.0)
    assert rec is not None
    c.begin(rec)
    c.restarted("risk")
    d = c.on_death("risk", 2.0, "x")
    assert d is not None and not d.retry
    assert c.children["risk"].state is Lifecycle.GAVE_UP
    assert c.exhausted is d and c.failure and "recovery exhausted" in c.failure


def test_strategy_out_of_restarts_then_suspended_and_deployment_not_exhausted() -> None:
    c = core(max_attempts=5, strategy_max_restarts=1)
    c.on_death("strategy/a", 1.0, "raised")
    rec, _ = c.next_recovery(9.0)
    assert rec is not None
    c.begin(rec)
    c.restarted("strategy/a")
    d = c.on_death("strategy/a", 2.0, "raised again")
    assert d is not None and not d.retry and d.max_attempts == 1
    assert c.children["strategy/a"].state is Lifecycle.SUSPENDED
    assert c.exhausted is None and c.failure is None
    assert c.suspended() == ("strategy/a",) and c.down() == ()


def test_suspension_read_back_after_supervisor_restart_then_suspended_not_down() -> None:
    c = new_core()
    c.set_phase(Phase.READY)
    c.suspend("strategy/a")
    assert c.suspended() == ("strategy/a",) and "strategy/a" not in c.down()
    assert c.on_death("strategy/a", 1.0, "gone") is None  # never restarted again


def test_several_dead_then_dependencies_first_even_when_due_later() -> None:
    c = core(max_attempts=5)
    c.on_death("feed", 0.0, "x")
    c.on_death("strategy/a", 0.0, "x")
    c.on_death("broker", 0.0, "x")
    c.on_death("broker", 0.0, "x")  # already dead: ignored
    c.policy.on_failure("journal", 0.0)  # the journal's budget is partly spent: waits longer
    c.on_death("journal", 0.0, "x")
    order = []
    while True:
        rec, _ = c.next_recovery(100.0)
        if rec is None:
            break
        c.begin(rec)
        for role in rec.roles:
            c.restarted(role)
        c.end()
        order.append(rec.target)
    assert order == ["journal", "broker", "strategy/a", "feed"]


def test_feed_silent_then_broker_feed_pair_queued_once() -> None:
    c = core()
    assert c.silence_recovery_due()
    d = c.on_fault(FEED_SILENCE, 1.0, "no bar", ("broker", "feed"))
    assert d.retry and not c.silence_recovery_due()
    rec, _ = c.next_recovery(5.0)
    assert rec is not None and rec.roles == ("broker", "feed")
    c.begin(rec)
    assert c.children["broker"].state is Lifecycle.RESTARTING
    assert not c.silence_recovery_due()  # still running
    c.restarted("broker")
    c.restarted("feed")
    c.end()
    assert c.silence_recovery_due()


def test_faults_past_budget_then_exhausted() -> None:
    c = core(max_attempts=1)
    assert c.on_fault("venue_connection", 1.0, "reconnected").retry
    d = c.on_fault("venue_connection", 2.0, "reconnected")
    assert not d.retry and c.exhausted is d and not c.silence_recovery_due()


def test_death_while_stopping_then_no_restart() -> None:
    c = core()
    c.set_phase(Phase.STOPPING)
    assert c.on_death("feed", 1.0, "x") is None


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
    ready = new_core()
    for r in ROLES:
        ready.running(r)
    ready.set_phase(Phase.READY)
    ready.on_heartbeat("feed", {"streaming": False}, 1.0)
    assert not ready.feed_should_start("feed")
    failed = core()
    failed.on_heartbeat("feed", {"streaming": False}, 1.0)
    failed.set_phase(Phase.FAILED)
    assert not failed.feed_should_start("feed")
