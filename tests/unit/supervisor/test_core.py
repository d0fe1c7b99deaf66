from typing import Any

import pytest

from tradeplane.core.errors import IllegalTransition
from tradeplane.core.health import Health, HealthFacts, Phase
from tradeplane.core.watchdog import Lifecycle, RecoveryPolicy
from tradeplane.supervisor.commands import (
    ChildDied,
    EndResync,
    HaltFinished,
    HaltIssued,
    HaltRetryDue,
    JournalEvent,
    RecoveryFinished,
    Resync,
    ResyncEnded,
    ResyncFinished,
    ScheduleWake,
    SetTradingState,
    StopRequested,
    TickEnded,
)
from tradeplane.supervisor.core import FEED_SILENCE, SupervisorCore
from tradeplane.supervisor.model import HALTED

ROLES = ["journal", "venue", "broker", "risk", "strategy/a", "feed"]


def new_core(
    max_attempts: int = 2, strategy_max_restarts: int = 1, roles: list[str] | None = None
) -> SupervisorCore:
    return SupervisorCore(
        roles or ROLES,
        RecoveryPolicy(max_attempts, 60.0, cooldown_s=1.0, jitter=0.0),
        heartbeat_timeout_s=5.0,
        feed_silence_s=30.0,
        strategy_max_restarts=strategy_max_restarts,
    )


def core(
    max_attempts: int = 2, strategy_max_restarts: int = 1, roles: list[str] | None = None
) -> SupervisorCore:
    c = new_core(max_attempts, strategy_max_restarts, roles)
    for r in roles or ROLES:
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
    assert c.children["broker"].state is Lifecycle.RESTARTING and c.in_progress == {"broker"}
    c.restarted("broker")
    c.end("broker")
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
        c.end(rec.target)
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
    c.end(rec.target)
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


# -- the step function: observations in, commands out ---------------------------------------------


def kinds_of(commands: list[Any]) -> list[str]:
    return [type(c).__name__ for c in commands]


def exhausted_core() -> tuple[SupervisorCore, list[Any]]:
    c = core(max_attempts=0)
    return c, c.step(ChildDied("risk", "killed"), 1.0)


def test_death_with_budget_left_then_journaled_and_recovery_woken() -> None:
    c = core()
    cmds = c.step(ChildDied("broker", "killed"), 1.0)
    assert kinds_of(cmds) == ["JournalEvent", "WakeRecovery", "Observe"]
    assert cmds[0] == JournalEvent(
        "actor_died", {"role": "broker", "cause": "killed", "attempt": 1, "retry": True}
    )


def test_budget_spent_then_broker_halted_first_exhaustion_journaled_durably_and_phase_failed() -> (
    None
):
    c, cmds = exhausted_core()
    names = kinds_of(cmds)
    journaled = [c.kind if isinstance(c, JournalEvent) else None for c in cmds]
    exhausted = journaled.index("recovery_exhausted")
    # The broker is halted before anything else (the journal write and stopping the bars may
    # take a while, and nothing queued may leave meanwhile); then why, durably.
    assert cmds[0] == JournalEvent(
        "actor_died", {"role": "risk", "cause": "killed", "attempt": 0, "retry": False}
    )
    assert names.index("SetTradingState") == 1
    assert exhausted == 2 and cmds[exhausted].durable
    assert names.index("SetTradingState") < names.index("StopStreaming")
    # Cancelling is configured per deployment (off in this core; the Supervisor tests cover it).
    assert "CancelOpenOrders" not in names
    # No recovery from the give-up on; failed once the halt is issued.
    assert c.halt is not None and not c.active and c.next_recovery(9.0) == (None, 0.0)
    assert ScheduleWake(0.0, HaltIssued()) in cmds
    failed, _ = c.step(HaltIssued(), 2.0)
    assert c.phase is Phase.FAILED
    assert failed.kind == "deployment_failed" and failed.run_state


def test_halt_refused_then_recorded_and_retried_with_bounded_backoff() -> None:
    c, _ = exhausted_core()
    delays = []
    for _ in range(8):
        failed, wake = c.step(HaltFinished("TimeoutError"), 2.0)
        assert failed.kind == "halt_failed" and isinstance(wake, ScheduleWake)
        delays.append(wake.delay_s)
        assert c.step(HaltRetryDue(), 2.0) == [SetTradingState("halted", dict(HALTED))]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    (succeeded,) = c.step(HaltFinished(None), 3.0)
    assert succeeded == JournalEvent("halt_succeeded", {"attempts": 9})
    assert c.step(HaltRetryDue(), 4.0) == []


def test_halt_refused_while_broker_dead_then_recorded_and_given_up() -> None:
    c, _ = exhausted_core()
    c.children["broker"].move(Lifecycle.DEAD)
    (failed,) = c.step(HaltFinished("ChildGone"), 2.0)
    assert failed.kind == "halt_failed" and failed.data["retry_in_s"] is None
    assert "broker is down" in failed.data["given_up"]
    assert c.step(HaltRetryDue(), 3.0) == []


def test_broker_restart_finishing_after_give_up_then_halted_before_rewired() -> None:
    c = core(max_attempts=1)
    c.on_death("broker", 1.0, "x")
    rec, _ = c.next_recovery(1.0)
    assert rec is not None
    c.begin(rec)  # the broker's restart is under way...
    c.step(ChildDied("journal", "x"), 1.5)
    journal, _ = c.next_recovery(1.5)
    assert journal is not None and journal.target == "journal"
    c.begin(journal)
    c.restarted("journal")
    c.step(ChildDied("journal", "again"), 1.6)  # ...when the journal's budget is spent
    assert c.halt is not None
    c.restarted("broker")
    cmds = c.step(RecoveryFinished("broker", ("broker",), 1, "x", 1.0), 2.0)
    assert kinds_of(cmds)[:2] == ["SetTradingState", "Rewire"]


def test_stop_requested_then_stopping_and_once_stopped_nothing_more() -> None:
    c = core()
    assert kinds_of(c.step(StopRequested("operator"), 1.0)) == ["WakeRecovery", "StopDeployment"]
    assert c.phase is Phase.STOPPING
    c.set_phase(Phase.STOPPED)
    assert c.step(StopRequested("again"), 2.0) == []


def test_restarted_feed_then_told_to_stream_and_success_journaled() -> None:
    c = core()
    c.on_death("feed", 1.0, "x")
    rec, _ = c.next_recovery(1.0)
    assert rec is not None
    c.begin(rec)
    c.restarted("feed")
    cmds = c.step(RecoveryFinished("feed", ("feed",), 1, "x", 1.0, phases={"kill_s": 0.1}), 3.0)
    assert kinds_of(cmds) == ["Rewire", "StartStreaming", "JournalEvent"]
    assert cmds[-1].data["took_s"] == 2.0 and c.restart_log[-1]["target"] == "feed"


def test_venue_back_then_one_resync_until_it_finishes() -> None:
    c = core()
    c.on_heartbeat("broker", {"resyncing": True, "connected": True}, 1.0)
    (resync,) = c.step(TickEnded(), 1.0)
    assert isinstance(resync, Resync)
    assert c.step(TickEnded(), 2.0) == []  # one at a time
    result = {"action": "adopt", "summary": "clean"}
    (end,) = c.step(ResyncFinished(resync.decision, 2.0, result=result), 3.0)
    assert isinstance(end, EndResync)
    (ok,) = c.step(ResyncEnded(resync.decision, 2.0, "clean"), 4.0)
    assert ok.kind == "recovery_succeeded" and not c.resync_running


def test_mismatch_after_reconnect_then_fail_closed() -> None:
    c = core()
    c.on_heartbeat("broker", {"resyncing": True, "connected": True}, 1.0)
    (resync,) = c.step(TickEnded(), 1.0)
    result = {"action": "block_start", "summary": "2 differences"}
    cmds = c.step(ResyncFinished(resync.decision, 2.0, result=result), 3.0)
    assert "SetTradingState" in kinds_of(cmds)
    assert c.failure == "reconciliation mismatch after reconnect: 2 differences"


def test_strategies_due_together_then_recovered_side_by_side_state_roles_one_at_a_time() -> None:
    c = core(roles=["journal", "broker", "strategy/a", "strategy/b", "feed"])
    for role in ("strategy/a", "strategy/b", "broker"):
        c.on_death(role, 1.0, "node lost")
    first, _ = c.next_recoveries(5.0)
    assert [r.target for r in first] == ["broker"]  # the state role first, alone
    c.begin(first[0])
    c.restarted("broker")
    c.end("broker")
    both, _ = c.next_recoveries(5.0)
    assert sorted(r.target for r in both) == ["strategy/a", "strategy/b"]
    for rec in both:
        c.begin(rec)
    assert c.in_progress == {"strategy/a", "strategy/b"}
