"""How the supervisor recovers: restarts of dead actors, the broker/feed pair after feed silence,
a resync after the venue connection came back, strategy suspension, and the fail-closed halt
when the policy gives up. A mixin of ``Supervisor`` (kept apart so each module stays small).

Every attempt is journaled when it starts (``recovery_attempt``) and again with its result
(``recovery_succeeded`` / ``recovery_failed``); a spent budget is ``recovery_exhausted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from tradeplane.actors.common import (
    ROLE_BROKER,
    ROLE_FEED,
    ROLE_RECONCILER,
    ROLE_RISK,
    STRATEGY_PREFIX,
    Outbox,
    Peers,
    call_journal,
    spawn,
)
from tradeplane.actors.records import event_record
from tradeplane.core.health import Health, HealthReading, Phase
from tradeplane.core.watchdog import Lifecycle, RecoveryDecision
from tradeplane.supervisor.core import FEED_SILENCE, VENUE_CONNECTION, Recovery

if TYPE_CHECKING:
    from tradeplane.config.models import TradeplaneConfig
    from tradeplane.journal.records import StateWrite
    from tradeplane.supervisor.adapter import ChildAdapter
    from tradeplane.supervisor.core import SupervisorCore
    from tradeplane.supervisor.specs import ChildSpec

log = logging.getLogger("tradeplane.supervisor")


class RecoveryMixin:
    cfg: TradeplaneConfig
    core: SupervisorCore
    adapter: ChildAdapter
    specs: dict[str, ChildSpec]
    peers: Peers
    outbox: Outbox
    deployment: str
    run_id: str
    reading: HealthReading
    tasks: set[asyncio.Task[Any]]
    watchers: dict[str, asyncio.Task[Any]]
    wake: asyncio.Event
    recovery_wake: asyncio.Event
    restart_log: list[dict[str, Any]]
    reconciliation: dict[str, Any] | None
    _resync_task: asyncio.Task[Any] | None
    _halting: bool

    if TYPE_CHECKING:  # provided by Supervisor and StoppingMixin

        def journal(
            self, kind: str, data: dict[str, Any], state: list[StateWrite] | None = None
        ) -> None: ...

        def _run_state(self) -> StateWrite: ...

        async def _observe(self) -> None: ...

        async def _create_and_ready(
            self, role: str, timeout_s: float, *, restart: bool
        ) -> None: ...

        async def stop(self, reason: str = "operator") -> dict[str, Any]: ...

    # -- failures in ---------------------------------------------------------------------------

    async def _on_death(self, role: str, cause: str) -> None:
        decision = self.core.on_death(role, time.time(), cause)
        self.wake.set()
        if decision is None:
            return
        self.journal(
            "actor_died",
            {"role": role, "cause": cause, "attempt": decision.attempt, "retry": decision.retry},
        )
        await self._after_decision(decision, (role,))

    async def _after_decision(self, decision: RecoveryDecision, roles: tuple[str, ...]) -> None:
        if decision.retry:
            self.recovery_wake.set()
        elif self.core.exhausted is not None:
            await self._halt(decision)
        else:
            for role in roles:
                if self.core.children[role].state is Lifecycle.SUSPENDED:
                    await self._suspend(role, decision)
        await self._observe()

    def _check_feed_silence(self) -> None:
        """Called on each health reading: a silent feed while the market is open gets the
        broker/feed pair restarted through the policy (once queued, not again)."""
        if self.reading.health is not Health.FEED_SILENT or not self.core.silence_recovery_due():
            return
        pair = tuple(r for r in (ROLE_BROKER, ROLE_FEED) if r in self.specs)
        decision = self.core.on_fault(FEED_SILENCE, time.time(), self.reading.reason, pair)
        spawn(self.tasks, self._after_decision(decision, pair))

    # -- the recovery worker -------------------------------------------------------------------

    async def _recovery_worker(self) -> None:
        """Carries out queued recoveries one at a time, dependencies first."""
        while self.core.active:
            recovery, wait_s = self.core.next_recovery(time.time())
            if recovery is None or wait_s > 0:
                # Woken early by a new failure, which may outrank the one we were waiting for.
                self.recovery_wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s or None):
                        await self.recovery_wake.wait()
                continue
            try:
                await self._carry_out(recovery)
            except Exception:  # the worker must outlive any one recovery
                log.exception("recovery of %s failed unexpectedly", recovery.target)
            finally:
                self.core.end()

    async def _carry_out(self, rec: Recovery) -> None:
        self.core.begin(rec)
        self._journal_attempt(rec.target, rec.roles, rec.attempt, rec.max_attempts, rec.cause)
        await self._observe()
        started = time.time()
        phases: dict[str, float] = {}
        try:
            for role in rec.roles:
                # Cancel the death watch first: a planned kill is not another failure.
                self._unwatch(role)
                await self.adapter.kill(role)
            phases["kill_s"] = round(time.time() - started, 3)
            for role in rec.roles:
                begun = time.time()
                await self._create_and_ready(
                    role, self.cfg.supervisor.startup_timeout_s, restart=True
                )
                phases[f"{role}_ready_s"] = round(time.time() - begun, 3)
        except Exception as exc:
            self.journal(
                "recovery_failed",
                {"target": rec.target, "attempt": rec.attempt, "error": str(exc)[:500]},
            )
            for role in rec.roles:
                if self.core.children[role].state is not Lifecycle.RUNNING:
                    with contextlib.suppress(Exception):
                        await self.adapter.kill(role)
                    await self._on_death(role, f"restart failed: {exc}")
            return
        for role in rec.roles:
            self._rewire(role)
        if ROLE_FEED in rec.roles and self.core.phase is Phase.RUNNING:
            # Not left to the next tick: every moment without bars is a moment not trading.
            with contextlib.suppress(Exception):
                await self.adapter.call(ROLE_FEED, "start_streaming", timeout_s=10.0)
        took = time.time() - started
        self.restart_log.append(
            {"target": rec.target, "roles": list(rec.roles), "cause": rec.cause, "ts": started}
            | {"took_s": took}
        )
        del self.restart_log[:-50]
        self.journal(
            "recovery_succeeded",
            {
                "target": rec.target,
                "roles": list(rec.roles),
                "attempt": rec.attempt,
                "took_s": round(took, 3),
                "phases": phases,
            },
        )
        self.wake.set()

    def _rewire(self, role: str) -> None:
        """Siblings resend what the restarted actor never got, and the newcomer learns which
        strategies are suspended; the next tick brings it to the desired state (a restarted
        feed is told to stream there)."""
        try:
            for other, child in self.core.children.items():
                if other != role and child.state is Lifecycle.RUNNING:
                    self.adapter.send(other, "rewire", role)
            for gone in self.core.suspended():
                self.adapter.send(role, "forget_peer", gone)
            self.outbox.resend(role)
        except Exception:  # best effort: each outbox also retries on its own
            log.exception("rewiring after %s restart failed", role)

    def _unwatch(self, role: str) -> None:
        task = self.watchers.pop(role, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _journal_attempt(
        self, target: str, roles: tuple[str, ...], attempt: int, max_attempts: int, cause: str
    ) -> None:
        self.journal(
            "recovery_attempt",
            {
                "target": target,
                "roles": list(roles),
                "attempt": attempt,
                "max_attempts": max_attempts,
                "window_s": self.cfg.supervisor.recovery_window_s,
                "cause": cause,
            },
        )

    # -- strategy suspension -------------------------------------------------------------------

    async def _suspend(self, role: str, decision: RecoveryDecision) -> None:
        """A strategy out of restarts: nobody sends to it any more and its working orders are
        cancelled; the other strategies trade on."""
        if not role.startswith(STRATEGY_PREFIX):  # non-critical (telemetry): just say so
            self.journal("actor_suspended", {"role": role, "reason": decision.reason})
            log.error("%s suspended: %s", role, decision.reason)
            return
        strategy = role[len(STRATEGY_PREFIX) :]
        self.outbox.abandon(role)
        for other, child in self.core.children.items():
            if child.state is Lifecycle.RUNNING:
                self.adapter.send(other, "forget_peer", role)
        cancelled: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            cancelled = await self.adapter.call(
                ROLE_BROKER, "cancel_all", f"strategy {strategy} suspended", strategy, timeout_s=10
            )
        self.journal(
            "strategy_suspended",
            {
                "strategy": strategy,
                "attempts": decision.attempt,
                "max_restarts": decision.max_attempts,
                "reason": decision.reason,
                "last_error": self.core.children[role].last_error,
                "orders_cancelled": cancelled.get("cancel_requested", 0),
            },
        )
        log.error("strategy %s suspended: %s", strategy, decision.reason)

    # -- venue connection ----------------------------------------------------------------------

    def _check_resync(self) -> None:
        """The broker lost the venue and reached it again: reconcile before trading resumes."""
        beat = self.core.children[ROLE_BROKER].last_heartbeat if ROLE_BROKER in self.specs else {}
        if not (beat.get("resyncing") and beat.get("connected")):
            return
        if self._resync_task is not None and not self._resync_task.done():
            return
        if self.core.phase is not Phase.RUNNING or self.core.exhausted is not None:
            return
        decision = self.core.on_fault(VENUE_CONNECTION, time.time(), "venue reconnected")
        if not decision.retry:
            spawn(self.tasks, self._after_decision(decision, ()))
            return
        self._resync_task = spawn(self.tasks, self._resync(decision))

    async def _resync(self, decision: RecoveryDecision) -> None:
        await asyncio.sleep(decision.delay_s)
        timeout = self.cfg.supervisor.startup_timeout_s
        self._journal_attempt(
            VENUE_CONNECTION,
            (ROLE_BROKER, ROLE_RECONCILER, ROLE_RISK),
            decision.attempt,
            decision.max_attempts,
            "venue connection lost and back: reconcile before trading resumes",
        )
        started = time.time()
        try:
            result = await self._reconcile_once(timeout)
        except Exception as exc:
            self.journal(
                "recovery_failed",
                {"target": VENUE_CONNECTION, "attempt": decision.attempt, "error": str(exc)[:500]},
            )
            return
        if result["action"] == "block_start":
            reason = f"reconciliation mismatch after reconnect: {result['summary']}"
            await self._halt(decision, reason=reason)
            return
        await self.adapter.call(ROLE_BROKER, "end_resync", timeout_s=timeout)
        self.journal(
            "recovery_succeeded",
            {
                "target": VENUE_CONNECTION,
                "attempt": decision.attempt,
                "took_s": round(time.time() - started, 3),
                "reconciliation": result["summary"],
            },
        )
        self.wake.set()

    async def _reconcile_once(self, timeout_s: float) -> dict[str, Any]:
        """The journal against the venue; unless the mismatch blocks, risk adopts the venue's
        holdings and trades again."""
        result: dict[str, Any] = await self.adapter.call(
            ROLE_RECONCILER, "run", timeout_s, timeout_s=timeout_s
        )
        self.reconciliation = {k: result.get(k) for k in ("summary", "action", "lines")} | {
            "clean": result["report"]["clean"],
            "checked_at": result["report"]["checked_at"],
        }
        if result["action"] != "block_start":
            await self.adapter.call(
                ROLE_RISK,
                "end_reconciliation",
                result["adopt_positions"],
                result["external_orders"],
                timeout_s=timeout_s,
            )
        return result

    # -- giving up -----------------------------------------------------------------------------

    async def _halt(self, decision: RecoveryDecision, *, reason: str | None = None) -> None:
        """Fail closed: journal why, stop the bars (so no new intent), hold back everything
        queued at the broker, cancel working orders where configured; then health ``failed``,
        or a full stop when so configured."""
        if self._halting:
            return
        self._halting = True
        why = reason or self.core.failure or decision.reason
        self.core.failure = why
        sup = self.cfg.supervisor
        with contextlib.suppress(Exception):
            await call_journal(
                self.peers,
                [
                    event_record(
                        self.deployment,
                        "recovery_exhausted",
                        time.time(),
                        {
                            "target": decision.target,
                            "attempts": decision.attempt,
                            "max_attempts": decision.max_attempts,
                            "window_s": sup.recovery_window_s,
                            "reason": why,
                            "then": sup.on_recovery_exhausted,
                        },
                    )
                ],
                retry_s=5.0,
            )
        with contextlib.suppress(Exception):
            await self.adapter.call(ROLE_FEED, "stop_streaming", timeout_s=5.0)
        halted = {"active": True, "reason": "recovery_exhausted", "source": "supervisor"}
        with contextlib.suppress(Exception):
            await self.adapter.call(
                ROLE_BROKER, "set_trading_state", "halted", halted, timeout_s=5.0
            )
        if sup.cancel_orders_on_exhausted:
            with contextlib.suppress(Exception):
                await self.adapter.call(
                    ROLE_BROKER, "cancel_all", "recovery exhausted", timeout_s=10
                )
        self.core.set_phase(Phase.FAILED)
        self.recovery_wake.set()
        self.journal("deployment_failed", {"reason": why}, [self._run_state()])
        await self._observe()
        log.error("deployment %s halted: %s", self.deployment, why)
        if sup.on_recovery_exhausted == "stopped":
            await self.stop(f"recovery exhausted: {why}")
