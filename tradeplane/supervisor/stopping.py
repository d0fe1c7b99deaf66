"""Stopper: how a deployment stops. No more bars, strategies stopped, everything in flight
delivered, risk state written, the journal flushed and closed, the venue's files released, then
the actors go. Each step is bounded and best effort so one stuck child cannot hold the stop;
what a step could not do is recorded (``errors`` in ``deployment_stopped`` and the summary)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from tradeplane.actors.common import (
    ROLE_BROKER,
    ROLE_FEED,
    ROLE_JOURNAL,
    ROLE_RISK,
    ROLE_TELEMETRY,
    ROLE_VENUE,
    STRATEGY_PREFIX,
)
from tradeplane.core.health import Phase
from tradeplane.supervisor.adapter import ChildGone

if TYPE_CHECKING:
    from tradeplane.supervisor.supervisor import Supervisor

log = logging.getLogger("tradeplane.supervisor")


class Stopper:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.core = sup.core
        self.adapter = sup.adapter
        self.clock = sup.clock

    async def _step(
        self, errors: dict[str, str], role: str, method: str, *args: Any, timeout_s: float = 10.0
    ) -> bool:
        try:
            await self.adapter.call(role, method, *args, timeout_s=timeout_s)
        except Exception as exc:
            errors[f"{role}.{method}"] = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("stop: %s.%s failed: %s", role, method, exc)
            return False
        return True

    async def run(self, reason: str) -> dict[str, Any]:
        """The phase is already ``stopping`` (the core's step)."""
        self.sup.recoverer.cancel()
        errors: dict[str, str] = {}
        calls = [(ROLE_FEED, "stop_streaming")]
        calls += [(role, "stop") for role in self.sup.specs if role.startswith(STRATEGY_PREFIX)]
        calls.append((ROLE_RISK, "persist"))
        for role, method in calls:
            await self._step(errors, role, method)
        await self.drain()
        await self._step(errors, ROLE_BROKER, "drain", timeout_s=15.0)
        await self.drain()
        summary = await self.sup.status_with_orders()
        self.core.set_phase(Phase.STOPPED)
        await self.sup.observe()
        summary.update(
            phase=self.core.phase.value,
            health=self.sup.reading.health.value,
            reason=self.core.failure or self.sup.reading.reason,
        )
        stopped = {"reason": reason, "orders": summary.get("orders", {})}
        if errors:
            stopped["errors"] = dict(errors)
        if await self.sup.journal_durably("deployment_stopped", stopped, [self.sup.run_state()]):
            await self._step(errors, ROLE_JOURNAL, "close", timeout_s=15.0)
        else:
            # The journal is away: the stop goes on (nothing may keep trading), and the
            # operator is told the record of this stop is missing.
            errors["journal"] = "unreachable: deployment_stopped not recorded"
        # Everything the run journaled goes to the collector before the actors go (bounded: a
        # down collector cannot hold the stop).
        if ROLE_TELEMETRY in self.sup.specs and await self._step(
            errors, ROLE_TELEMETRY, "flush", 10.0, timeout_s=15.0
        ):
            await self._step(errors, ROLE_TELEMETRY, "close", timeout_s=5.0)
        # Release the venue's files before the processes go: Ray's kill returns before the
        # process has exited, and an operator reading the venue right after must find it free.
        for role in (ROLE_BROKER, ROLE_VENUE):
            if role in self.sup.specs:
                await self._step(errors, role, "close", timeout_s=5.0)
        not_killed = await self.kill_all()
        if not_killed:
            errors["kill"] = ", ".join(not_killed)
        if errors:
            summary["stop_errors"] = errors
        return summary

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every child has delivered what it holds (outboxes empty)."""
        deadline = self.clock.now() + timeout_s
        while self.clock.now() < deadline:
            busy = False
            for role in self.sup.specs:
                if role == ROLE_JOURNAL:
                    continue
                try:
                    beat = await self.adapter.call(role, "heartbeat", timeout_s=2.0)
                except (ChildGone, TimeoutError):
                    continue  # a dead or hung child delivers nothing more: nothing to wait for
                box = beat.get("outbox", {})
                if box.get("inflight") or box.get("pending_retries"):
                    busy = True
            if not busy and not self.adapter.inflight():
                return
            await self.clock.sleep(0.05)

    async def settle(self, timeout_s: float) -> None:
        """Wait (bounded) until the supervisor's own sends are acknowledged."""
        deadline = self.clock.now() + timeout_s
        while self.adapter.inflight() and self.clock.now() < deadline:
            await self.clock.sleep(0.02)

    async def kill_all(self) -> list[str]:
        """Every child goes, last first; returns the roles whose kill failed (logged)."""
        for task in list(self.sup.watchers.values()):
            # The death watch that saw the last failure may be the one running this stop.
            if task is not asyncio.current_task():
                task.cancel()
        failed = []
        for role in reversed(list(self.sup.specs)):
            try:
                await self.adapter.kill(role)
            except Exception as exc:
                failed.append(role)
                log.error("stop: killing %s failed: %s", role, exc)
            self.core.stopped(role)
        return failed
