"""The supervisor holds its journal's identity and hands each child incarnation an epoch: a
journal restarted for the run must be that journal or the deployment fails closed
(journal_lost); a replacement is fenced at the journal before it is created."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.unit.supervisor.fakes import FakeAdapter, FakeClock, eventually, settle, supervisor
from tradeplane.core.health import Health, Phase
from tradeplane.core.run_record import JournalIdentity, RunRecord
from tradeplane.core.watchdog import Lifecycle
from tradeplane.protocol.states import TradingState
from tradeplane.supervisor.supervisor import Supervisor

LOST = "failed while starting: JournalLostError: journal_lost: /s: no journal files where it was"


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


async def running(**cfg: Any) -> tuple[Supervisor, FakeAdapter, FakeClock]:
    sup, adapter, clock = supervisor(**cfg)
    adapter.journal_ready = {"genesis": "g" * 64, "last_seq": 10, "epoch": 1, "max_fence": 0}
    await sup.deploy()
    await sup.start_feed()
    await sup.tick()
    return sup, adapter, clock


def test_deploy_then_identity_held_in_memory_and_run_record_and_each_child_fenced() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        ident = sup.identity.expected
        assert ident == JournalIdentity("g" * 64, 1, 10)
        assert adapter.run is not None and adapter.run.journal == ident
        assert adapter.run.epoch == max(adapter.epochs.values())
        assert "journal" not in adapter.fences
        assert {r: adapter.fences[r] for r in adapter.epochs if r != "journal"} == {
            r: e for r, e in adapter.epochs.items() if r != "journal"
        }
        assert adapter.inits["journal"] == {}  # a cold start expects no journal in particular

    run(scenario)


def test_journal_heartbeat_then_last_acknowledged_seq_follows_it() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running()
        adapter.beats["journal"] = {"genesis": "g" * 64, "last_seq": 42}
        await clock.advance(2.0)
        await sup.tick()
        assert sup.identity.expected is not None and sup.identity.expected.last_seq == 42
        assert adapter.run is not None and adapter.run.journal is not None
        assert adapter.run.journal.last_seq == 42

    run(scenario)


def test_child_restart_then_fenced_at_its_new_epoch_before_it_is_created() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        first = adapter.epochs["risk"]
        adapter.crash("risk")
        await eventually(lambda: sup.core.children["risk"].restarts == 1, "risk back")
        assert adapter.epochs["risk"] > first
        assert adapter.fenced_at_create["risk"] == adapter.epochs["risk"]

    run(scenario)


def test_journal_restart_then_created_expecting_the_runs_journal() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        adapter.crash("journal")
        await eventually(lambda: sup.core.children["journal"].restarts == 1, "journal back")
        assert adapter.inits["journal"] == {"expect": JournalIdentity("g" * 64, 1, 10)}

    run(scenario)


def test_restarted_journal_not_the_runs_then_journal_lost_halted_failed_and_never_retried() -> None:
    async def scenario() -> None:
        sup, adapter, clock = await running(max_recovery_attempts=5)
        adapter.create_failures["journal"] = 10
        adapter.create_cause["journal"] = LOST
        adapter.crash("journal")
        await eventually(lambda: sup.core.phase is Phase.FAILED, "failed closed")
        await settle()
        reason = "journal_lost: /s: no journal files where it was"
        status = sup.status()
        assert status["health"] == Health.FAILED.value and status["reason"] == reason
        assert status["journal"]["identity"]["lost"] == reason
        assert sup.core.children["journal"].state is Lifecycle.GAVE_UP
        halts = adapter.method_calls("broker", "set_trading_state")
        assert halts[-1][0] is TradingState.HALTED and halts[-1][1]["reason"] == "journal_lost"
        assert adapter.run is not None and adapter.run.failure == reason
        assert adapter.run.phase == "failed"
        for _ in range(5):  # no retry loop that could one day open an empty journal
            await clock.advance(60.0)
        assert adapter.created.count("journal") == 2

    run(scenario)


def test_journal_heartbeat_with_another_genesis_then_journal_lost() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        adapter.beats["journal"] = {"genesis": "h" * 64, "last_seq": 50}
        await sup.tick()
        await settle()
        assert sup.core.phase is Phase.FAILED
        assert "genesis changed" in (sup.core.failure or "")

    run(scenario)


def test_restarted_supervisor_then_epochs_continue_above_the_run_record() -> None:
    async def scenario() -> None:
        sup, adapter, _ = supervisor()
        ident = JournalIdentity("g" * 64, 3, 99)
        adapter.run = RunRecord("d", "run-1", "running", "", "", "", journal=ident, epoch=10**15)
        sup.identity.restore("run-1")
        assert sup.identity.expected == ident
        assert sup.identity.next_epoch("risk") == 10**15 + 1
        other, _, _ = supervisor(adapter=adapter)
        other.identity.restore("run-2")  # another run's record: nothing inherited
        assert other.identity.expected is None

    run(scenario)


def test_stop_after_journal_lost_then_nothing_waits_on_the_lost_journal() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        adapter.create_failures["journal"] = 1
        adapter.create_cause["journal"] = LOST
        adapter.crash("journal")
        await eventually(lambda: sup.core.phase is Phase.FAILED, "failed closed")
        summary = await sup.stop("operator")
        assert summary["stop_errors"]["journal"].startswith("deployment_stopped not recorded")
        assert adapter.method_calls("strategy/a", "stop") == []
        assert adapter.method_calls("risk", "persist") == []
        assert sup.core.phase is Phase.STOPPED

    run(scenario)


def _gauge(sup: Supervisor, name: str) -> list[tuple[float, dict[str, str]]]:
    points = [p for p in sup.start_metrics().snapshot() if p.name == name]
    return [(float(p.value or 0.0), p.label_dict()) for p in points]


def test_journal_lost_then_the_journal_lost_gauge_reads_one_and_recovery_exhausted_zero() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        assert [v for v, _ in _gauge(sup, "journal_lost")] == [0.0]
        adapter.beats["journal"] = {"genesis": "h" * 64, "last_seq": 50}
        await sup.tick()
        await settle()
        assert [v for v, _ in _gauge(sup, "journal_lost")] == [1.0]
        assert [v for v, _ in _gauge(sup, "recovery_exhausted")] == [0.0]

    run(scenario)


def test_journal_lost_then_the_alert_webhook_told_directly_under_the_records_event_id() -> None:
    async def scenario() -> None:
        sup, adapter, _ = await running()
        adapter.beats["journal"] = {"genesis": "h" * 64, "last_seq": 50}
        await sup.tick()
        await settle()
        [(_, _, (line,))] = [s for s in adapter.sent if s[1] == "alert_now"]
        [journaled] = [r for r in adapter.records if r["kind"] == "journal_lost"]
        assert line["event_id"] == journaled["event_id"] and line["kind"] == "journal_lost"
        assert line["deployment"] == "t" and "genesis changed" in line["data"]["reason"]

    run(scenario)
