"""How a deployment stops: no more bars, strategies stopped, everything in flight delivered,
risk state written, the journal flushed and closed, the venue's files released, then the actors
go. A mixin of ``Supervisor`` (kept apart so each module stays small)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from tradeplane.actors.common import (
    ROLE_BROKER,
    ROLE_FEED,
    ROLE_JOURNAL,
    ROLE_RISK,
    ROLE_TELEMETRY,
    ROLE_VENUE,
    STRATEGY_PREFIX,
    Outbox,
    Peers,
    call_journal,
)
from tradeplane.actors.records import event_record
from tradeplane.core.health import HealthReading, Phase
from tradeplane.core.watchdog import Lifecycle
from tradeplane.supervisor.adapter import ChildGone

if TYPE_CHECKING:
    from tradeplane.journal.records import StateWrite
    from tradeplane.supervisor.adapter import ChildAdapter
    from tradeplane.supervisor.core import SupervisorCore
    from tradeplane.supervisor.specs import ChildSpec


class StoppingMixin:
    core: SupervisorCore
    adapter: ChildAdapter
    specs: dict[str, ChildSpec]
    peers: Peers
    outbox: Outbox
    deployment: str
    run_id: str
    watchers: dict[str, asyncio.Task[Any]]
    worker_task: asyncio.Task[Any] | None
    reading: HealthReading

    def status(self) -> dict[str, Any]:
        raise NotImplementedError

    async def status_with_orders(self) -> dict[str, Any]:
        raise NotImplementedError

    async def _observe(self) -> None:
        raise NotImplementedError

    def _run_state(self) -> StateWrite:
        raise NotImplementedError

    # -- stop ----------------------------------------------------------------------------------

    async def stop(self, reason: str = "operator") -> dict[str, Any]:
        if self.core.phase is Phase.STOPPED:
            return self.status()
        self.core.set_phase(Phase.STOPPING)
        if self.worker_task is not None and self.worker_task is not asyncio.current_task():
            # No recovery may bring an actor back while we stop; one half-created is killed
            # with the others by name at the end.
            self.worker_task.cancel()
        calls = [(ROLE_FEED, "stop_streaming")]
        for role in self.specs:
            if role.startswith(STRATEGY_PREFIX):
                calls.append((role, "stop"))
        calls.append((ROLE_RISK, "persist"))
        for role, method in calls:
            with contextlib.suppress(Exception):
                await self.adapter.call(role, method, timeout_s=10.0)
        await self._drain()
        with contextlib.suppress(Exception):
            await self.adapter.call(ROLE_BROKER, "drain", timeout_s=15.0)
        await self._drain()
        summary = await self.status_with_orders()
        self.core.set_phase(Phase.STOPPED)
        await self._observe()
        summary.update(
            phase=self.core.phase.value,
            health=self.reading.health.value,
            reason=self.core.failure or self.reading.reason,
        )
        with contextlib.suppress(Exception):
            await call_journal(
                self.peers,
                [
                    event_record(
                        self.deployment,
                        "deployment_stopped",
                        time.time(),
                        {
                            "reason": reason,
                            "run_id": self.run_id,
                            "orders": summary.get("orders", {}),
                        },
                    )
                ],
                [self._run_state()],
                retry_s=10.0,
            )
            await self.adapter.call(ROLE_JOURNAL, "close", timeout_s=15.0)
        if ROLE_TELEMETRY in self.specs:
            # Everything the run journaled goes to the collector before the actors go
            # (bounded: a down collector cannot hold the stop).
            with contextlib.suppress(Exception):
                await self.adapter.call(ROLE_TELEMETRY, "flush", 10.0, timeout_s=15.0)
                await self.adapter.call(ROLE_TELEMETRY, "close", timeout_s=5.0)
        # Release the venue's files before the processes go: Ray's kill returns before the
        # process has exited, and an operator reading the venue right after must find it free.
        for role in (ROLE_BROKER, ROLE_VENUE):
            if role in self.specs:
                with contextlib.suppress(Exception):
                    await self.adapter.call(role, "close", timeout_s=5.0)
        await self._kill_all()
        return summary

    async def _drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every child has delivered what it holds (outboxes empty)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = False
            for role in self.specs:
                if role == ROLE_JOURNAL:
                    continue
                try:
                    beat = await self.adapter.call(role, "heartbeat", timeout_s=2.0)
                except (ChildGone, TimeoutError):
                    continue
                box = beat.get("outbox", {})
                if box.get("inflight") or box.get("pending_retries"):
                    busy = True
            if not busy and not self.outbox.inflight():
                return
            await asyncio.sleep(0.05)

    async def _kill_all(self) -> None:
        for task in list(self.watchers.values()):
            task.cancel()
        for role in reversed(list(self.specs)):
            with contextlib.suppress(Exception):
                await self.adapter.kill(role)
            child = self.core.children[role]
            if child.state is not Lifecycle.STOPPED:
                with contextlib.suppress(Exception):
                    if child.state is not Lifecycle.STOPPING:
                        child.move(Lifecycle.STOPPING)
                    child.move(Lifecycle.STOPPED)
