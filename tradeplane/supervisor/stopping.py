"""Stopper: how a deployment stops. No more bars, strategies stopped, everything in flight
delivered, risk state written, the journal flushed and closed, the venue's files released, then
the actors go. Each step is bounded and best effort so one stuck child cannot hold the stop;
what a step could not do is recorded (``errors`` in ``deployment_stopped`` and the summary)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from tradeplane.core.health import Phase
from tradeplane.protocol.api import (
    A,
    BrokerApi,
    ChildApi,
    DriftApi,
    FeedApi,
    JournalApi,
    Method,
    P,
    RiskApi,
    StrategyApi,
    TelemetryApi,
    VenueApi,
)
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import (
    ROLE_BROKER,
    ROLE_DRIFT,
    ROLE_FEED,
    ROLE_JOURNAL,
    ROLE_RISK,
    ROLE_TELEMETRY,
    ROLE_VENUE,
    Role,
    child_role,
    is_strategy_role,
    strategy_name,
    strategy_role,
)
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
        self,
        errors: dict[str, str],
        timeout_s: float,
        role: Role[A],
        method: Method[A, P, Any],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> bool:
        try:
            await self.adapter.call(timeout_s, role, method, *args, **kwargs)
        except Exception as exc:
            name = method.__name__
            errors[f"{role}.{name}"] = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("stop: %s.%s failed: %s", role, name, exc)
            return False
        return True

    async def run(self, reason: str) -> dict[str, Any]:
        """The phase is already ``stopping`` (the core's step)."""
        self.sup.recoverer.cancel()
        errors: dict[str, str] = {}
        await self._step(errors, 10.0, ROLE_FEED, FeedApi.stop_streaming)
        lost = self.sup.identity.lost
        if lost is None:  # with the journal lost nothing more can be delivered: no waiting
            for role in self.sup.specs:
                if is_strategy_role(role):
                    strategy = strategy_role(strategy_name(role))
                    await self._step(errors, 10.0, strategy, StrategyApi.stop)
            await self._step(errors, 10.0, ROLE_RISK, RiskApi.persist)
            await self.drain()
            await self._step(errors, 15.0, ROLE_BROKER, BrokerApi.drain)
            await self.drain()
            if ROLE_DRIFT in self.sup.specs:
                # Its last round (and any alert it raises) before deployment_stopped.
                await self._step(errors, 15.0, ROLE_DRIFT, DriftApi.flush)
        summary = await self.sup.status_with_orders()
        self.core.set_phase(Phase.STOPPED)
        await self.sup.observe()
        # The run record says so now, not at a next tick that will not come: the standby reads
        # it and does not take over from the acting instance when that one goes at the end.
        self.sup.placer.publish_run()
        summary.update(
            phase=self.core.phase.value,
            health=self.sup.reading.health.value,
            reason=self.core.failure or self.sup.reading.reason,
        )
        stopped = {"reason": reason, "orders": summary.get("orders", {})}
        if errors:
            stopped["errors"] = dict(errors)
        if lost is not None:
            errors["journal"] = f"deployment_stopped not recorded: {lost}"
        elif await self._settled() and await self.sup.journal_durably(
            EventKind.DEPLOYMENT_STOPPED, stopped, [self.sup.run_state()]
        ):
            await self._step(errors, 15.0, ROLE_JOURNAL, JournalApi.close)
        else:
            # The journal is away: the stop goes on (nothing may keep trading), and the
            # operator is told the record of this stop is missing.
            errors["journal"] = "unreachable: deployment_stopped not recorded"
        # Everything the run journaled goes to the collector before the actors go (bounded: a
        # down collector cannot hold the stop).
        if ROLE_TELEMETRY in self.sup.specs and await self._step(
            errors, 15.0, ROLE_TELEMETRY, TelemetryApi.flush, 10.0
        ):
            await self._step(errors, 5.0, ROLE_TELEMETRY, TelemetryApi.close)
        # Release the venue's files before the processes go: Ray's kill returns before the
        # process has exited, and an operator reading the venue right after must find it free.
        if ROLE_BROKER in self.sup.specs:
            await self._step(errors, 5.0, ROLE_BROKER, BrokerApi.close)
        if ROLE_VENUE in self.sup.specs:
            await self._step(errors, 5.0, ROLE_VENUE, VenueApi.close)
        not_killed = await self.kill_all()
        if not_killed:
            errors["kill"] = ", ".join(not_killed)
        if errors:
            summary["stop_errors"] = errors
        return summary

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every child has delivered what it holds (outboxes empty)."""
        deadline = self.clock.monotonic() + timeout_s
        while self.clock.monotonic() < deadline:
            busy = False
            for role in self.sup.specs:
                if role == ROLE_JOURNAL:
                    continue
                try:
                    beat = await self.adapter.call(2.0, child_role(role), ChildApi.heartbeat)
                except (ChildGone, TimeoutError):
                    continue  # a dead or hung child delivers nothing more: nothing to wait for
                box = beat.get("outbox", {})
                if box.get("inflight") or box.get("pending_retries"):
                    busy = True
            if not busy and not self.adapter.inflight():
                return
            await self.clock.sleep(0.05)

    async def _settled(self, timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until the records sent without waiting, the stop's own health change
        among them, are answered: ``deployment_stopped`` must be the run's last record, and its
        durable write goes by another path that could overtake them. A journal that does not
        answer is the durable write's to report. Always true (it reads as a step of the chain)."""
        await self.settle(timeout_s)
        return True

    async def settle(self, timeout_s: float) -> None:
        """Wait (bounded) until the supervisor's own sends are acknowledged."""
        deadline = self.clock.monotonic() + timeout_s
        while self.adapter.inflight() and self.clock.monotonic() < deadline:
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
        await self.sup.standbys.kill_all()
        return failed
