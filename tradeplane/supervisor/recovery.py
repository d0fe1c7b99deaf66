"""Recoverer: carries out what the core decided about recovery. Restarts of dead actors (queued,
one at a time, dependencies first), the broker/feed pair after feed silence, a resync after the
venue connection came back, strategy suspension. Each outcome goes back to the core as an
observation; the core decides what follows (another attempt, suspension, the fail-closed halt).

Every attempt is journaled when it starts (``recovery_attempt``) and again with its result
(``recovery_succeeded`` / ``recovery_failed``); a spent budget is ``recovery_exhausted``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from tradeplane.actors.common import spawn
from tradeplane.cluster.placement import PlacementError
from tradeplane.core.watchdog import Lifecycle, RecoveryDecision
from tradeplane.protocol.api import BrokerApi, ChildApi, ReconcilerApi, RiskApi
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import (
    ROLE_BROKER,
    ROLE_RECONCILER,
    ROLE_RISK,
    ROLE_VENUE,
    child_role,
    is_strategy_role,
    strategy_name,
)
from tradeplane.supervisor.commands import RecoveryFinished, ResyncEnded, ResyncFinished
from tradeplane.supervisor.core import VENUE_CONNECTION, Recovery
from tradeplane.supervisor.derive import rewiring
from tradeplane.supervisor.identity import JournalLost
from tradeplane.supervisor.standbys import REFILL_DELAY_S

if TYPE_CHECKING:
    from tradeplane.supervisor.supervisor import Supervisor

log = logging.getLogger("tradeplane.supervisor")


class Recoverer:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.core = sup.core
        self.adapter = sup.adapter
        self.clock = sup.clock
        self.wake = asyncio.Event()
        self.worker: asyncio.Task[Any] | None = None
        self.resync_task: asyncio.Task[Any] | None = None
        self.reconciliation: dict[str, Any] | None = None

    def start(self) -> None:
        if self.worker is None or self.worker.done():
            self.worker = spawn(self.sup.tasks, self._work())

    def cancel(self) -> None:
        """No recovery may bring an actor back while the deployment stops; one half-created is
        killed with the others by name at the end."""
        if self.worker is not None and self.worker is not asyncio.current_task():
            self.worker.cancel()

    # -- restarts ------------------------------------------------------------------------------

    async def _work(self) -> None:
        """Carries out queued recoveries, dependencies first: one at a time, except strategies
        due together (a lost node's), which are restarted side by side."""
        while self.core.active:
            recoveries, wait_s = self.core.next_recoveries(self.clock.monotonic())
            if not recoveries or wait_s > 0:
                # Woken early by a new failure, which may outrank the one we were waiting for.
                self.wake.clear()
                await self.clock.wait(self.wake, wait_s or None)
                continue
            await asyncio.gather(*(self._run(recovery) for recovery in recoveries))

    async def _run(self, recovery: Recovery) -> None:
        try:
            await self._restart(recovery)
        except Exception:
            # A bug, not a failed restart (that is reported as RecoveryFinished): the worker
            # must outlive it, and the dead child is still down, so health says so.
            log.exception("recovery of %s failed unexpectedly", recovery.target)
        finally:
            self.core.end(recovery.target)

    async def _restart(self, rec: Recovery) -> None:
        self.core.begin(rec)
        self.journal_attempt(rec.target, rec.roles, rec.attempt, rec.max_attempts, rec.cause)
        await self.sup.observe()
        started, started_wall = self.clock.monotonic(), self.clock.now()
        phases: dict[str, float] = {}
        error: str | None = None
        unplaceable = False
        try:
            for role in rec.roles:
                # Cancel the death watch first: a planned kill is not another failure.
                self.sup.unwatch(role)
                await self.adapter.kill(role)
            phases["kill_s"] = round(self.clock.monotonic() - started, 3)
            for role in rec.roles:
                begun = self.clock.monotonic()
                timeout = self.sup.cfg.supervisor.startup_timeout_s
                parts = await self.sup.start_child(role, timeout, restart=True)
                phases[f"{role}_ready_s"] = round(self.clock.monotonic() - begun, 3)
                # Where that went: fencing the old one, promoting a standby (absent: created
                # afresh), the new actor's own ``ready``.
                phases |= {f"{role}_{part}": value for part, value in parts.items()}
        except PlacementError as exc:
            error, unplaceable = str(exc), True
        except JournalLost as exc:
            # Not a failed attempt to retry: a journal that is not this run's must never be
            # replaced by a fresh one. Fail closed at once.
            await self.sup.identity.fail_closed(str(exc))
            self.sup.wake.set()
            return
        except Exception as exc:
            error = str(exc)
        kept = phases if error is None else {}
        done = RecoveryFinished(
            rec.target,
            rec.roles,
            rec.attempt,
            rec.cause,
            started,
            error,
            kept,
            unplaceable,
            started_wall=started_wall,
        )
        await self.sup.handle(done)
        self.sup.wake.set()
        # A standby used (or found dead) is replaced once the recovery is over, not during it.
        self.sup.standbys.refill(REFILL_DELAY_S)

    def rewire(self, role: str) -> None:
        """Siblings resend what the restarted actor never got, and the newcomer learns which
        strategies are suspended; the next tick brings it to the desired state (a restarted
        feed is told to stream there)."""
        plan = rewiring(self.core, role)
        try:
            for other in plan.siblings:
                if role == ROLE_VENUE and other == self.core.broker_role:
                    spawn(self.sup.tasks, self._venue_replaced(other))
                else:
                    self.adapter.send(child_role(other), ChildApi.rewire, role)
            for gone in plan.suspended:
                self.adapter.send(child_role(role), ChildApi.forget_peer, gone)
            self.adapter.resend(role)
        except Exception:
            # Safe to lose: every sender's outbox also retries on its own until delivered.
            log.exception("rewiring after %s restart failed", role)

    async def _venue_replaced(self, broker: str) -> None:
        """The broker reaches the new venue when told of it; the loop looks at its heartbeat
        as soon as it has (connected, resyncing: the resync starts), not at its next tick."""
        try:
            await self.adapter.call(2.0, child_role(broker), ChildApi.rewire, ROLE_VENUE)
        except Exception as exc:
            # Safe to lose: the broker's stream reaches the venue on its own, the tick sees it.
            log.warning("broker not told of the new venue: %s", exc)
        self.sup.wake.set()

    def journal_attempt(
        self, target: str, roles: tuple[str, ...], attempt: int, max_attempts: int, cause: str
    ) -> None:
        self.sup.journal(
            EventKind.RECOVERY_ATTEMPT,
            {
                "target": target,
                "roles": list(roles),
                "attempt": attempt,
                "max_attempts": max_attempts,
                "window_s": self.sup.cfg.supervisor.recovery_window_s,
                "cause": cause,
            },
        )

    # -- strategy suspension -------------------------------------------------------------------

    async def suspend(self, role: str, decision: RecoveryDecision) -> None:
        """A strategy out of restarts: nobody sends to it any more and its working orders are
        cancelled; the other strategies trade on."""
        if not is_strategy_role(role):  # non-critical (telemetry): just say so
            self.sup.journal(EventKind.ACTOR_SUSPENDED, {"role": role, "reason": decision.reason})
            log.error("%s suspended: %s", role, decision.reason)
            return
        strategy = strategy_name(role)
        self.adapter.abandon(role)
        for other, child in self.core.children.items():
            if child.state is Lifecycle.RUNNING:
                self.adapter.send(child_role(other), ChildApi.forget_peer, role)
        cancelled: dict[str, Any] = {}
        cancel_error: dict[str, str] = {}
        try:
            cancelled = await self.adapter.call(
                10, ROLE_BROKER, BrokerApi.cancel_all, f"strategy {strategy} suspended", strategy
            )
        except Exception as exc:
            # Its orders may still work at the venue: said in the record, not swallowed.
            cancel_error = {"cancel_error": f"{type(exc).__name__}: {exc}"[:500]}
        self.sup.journal(
            EventKind.STRATEGY_SUSPENDED,
            {
                "strategy": strategy,
                "attempts": decision.attempt,
                "max_restarts": decision.max_attempts,
                "reason": decision.reason,
                "last_error": self.core.children[role].last_error,
                "orders_cancelled": cancelled.get("cancel_requested", 0),
            }
            | cancel_error,
        )
        log.error("strategy %s suspended: %s", strategy, decision.reason)

    # -- venue connection ----------------------------------------------------------------------

    def start_resync(self, decision: RecoveryDecision) -> None:
        self.resync_task = spawn(self.sup.tasks, self._resync(decision))

    async def _resync(self, decision: RecoveryDecision) -> None:
        await self.clock.sleep(decision.delay_s)
        timeout = self.sup.cfg.supervisor.startup_timeout_s
        self.journal_attempt(
            VENUE_CONNECTION,
            (ROLE_BROKER, ROLE_RECONCILER, ROLE_RISK),
            decision.attempt,
            decision.max_attempts,
            "venue connection lost and back: reconcile before trading resumes",
        )
        started = self.clock.monotonic()
        try:
            result = await self.reconcile_once(timeout)
        except Exception as exc:
            await self.sup.handle(ResyncFinished(decision, started, error=str(exc)))
            return
        await self.sup.handle(ResyncFinished(decision, started, result=result))

    async def end_resync(self, decision: RecoveryDecision, started_ts: float, summary: Any) -> None:
        timeout = self.sup.cfg.supervisor.startup_timeout_s
        error = None
        try:
            await self.adapter.call(timeout, ROLE_BROKER, BrokerApi.end_resync)
        except Exception as exc:
            error = f"end_resync: {type(exc).__name__}: {exc}"
        await self.sup.handle(ResyncEnded(decision, started_ts, summary, error))
        self.sup.wake.set()

    async def reconcile_once(self, timeout_s: float) -> dict[str, Any]:
        """The journal against the venue; unless the mismatch blocks, risk adopts the venue's
        holdings and trades again."""
        result: dict[str, Any] = await self.adapter.call(
            timeout_s, ROLE_RECONCILER, ReconcilerApi.run, timeout_s
        )
        self.reconciliation = {k: result.get(k) for k in ("summary", "action", "lines")} | {
            "clean": result["report"]["clean"],
            "checked_at": result["report"]["checked_at"],
        }
        if result["action"] != "block_start":
            await self.adapter.call(
                timeout_s,
                ROLE_RISK,
                RiskApi.end_reconciliation,
                result["adopt_positions"],
                result["external_orders"],
            )
        return result
