"""SupervisorActor: creates the deployment's children, watches them, restarts the dead, derives
health and journals every change. One detached named actor per deployment.

Death is noticed the moment Ray knows it (a never-returning call per child), hangs by heartbeat
timeout, a silent feed and a lost venue connection by the health reading. Recovery (``recovery``)
follows dependency order and the watchdog policy; when the policy gives up the deployment halts
fail-closed. Ray restarts the supervisor itself; a restarted supervisor re-attaches to its
children by name while the pipeline keeps trading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import ray

from tradeplane.actors.common import (
    ROLE_BROKER,
    ROLE_FEED,
    ROLE_JOURNAL,
    ROLE_RISK,
    ROLE_VENUE,
    Outbox,
    Peers,
    SupervisedActor,
    call_journal,
    spawn,
    strategy_role,
)
from tradeplane.actors.records import event_record
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.errors import OperationalError, root_cause
from tradeplane.core.health import Health, HealthFacts, HealthReading, Phase
from tradeplane.core.session import make_calendar
from tradeplane.core.watchdog import Lifecycle, RecoveryPolicy
from tradeplane.journal.records import JournalRecord, StateWrite
from tradeplane.supervisor.adapter import ChildAdapter, ChildGone, RayChildAdapter
from tradeplane.supervisor.core import SupervisorCore
from tradeplane.supervisor.recovery import RecoveryMixin
from tradeplane.supervisor.specs import ChildSpec, child_specs
from tradeplane.supervisor.status import build_status
from tradeplane.supervisor.stopping import StoppingMixin
from tradeplane.telemetry.actors import actor_metrics
from tradeplane.venues.sim.faults import FaultSchedule, fault_target

log = logging.getLogger("tradeplane.supervisor")
RUN_SCOPE, RUN_KEY = "supervisor", "run"


class Supervisor(RecoveryMixin, StoppingMixin):
    """The supervision logic over an adapter; the Ray actor below is a thin shell around it."""

    def __init__(
        self, cfg: TradeplaneConfig, run_id: str, sources: dict[str, str], adapter: ChildAdapter
    ) -> None:
        self.cfg = cfg
        self.run_id = run_id
        self.deployment = cfg.deployment.name
        self.specs: dict[str, ChildSpec] = {s.role: s for s in child_specs(cfg, run_id, sources)}
        sup = cfg.supervisor
        self.core = SupervisorCore(
            list(self.specs),
            RecoveryPolicy(
                max_attempts=sup.max_recovery_attempts,
                window_s=sup.recovery_window_s,
                cooldown_s=sup.recovery_cooldown_s,
                backoff_max_s=sup.recovery_backoff_max_s,
                jitter=sup.recovery_jitter,
                auto_recover=sup.auto_recover,
                rng=random.Random(),
            ),
            heartbeat_timeout_s=sup.heartbeat_timeout_s,
            feed_silence_s=cfg.resolved_feed_silence_s(),
            strategy_max_restarts=sup.strategy_max_restarts,
        )
        self.calendar = make_calendar(cfg.session.calendar)
        self.adapter = adapter
        self.peers = Peers(self.deployment)
        self.outbox = Outbox(self.peers)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.watchers: dict[str, asyncio.Task[Any]] = {}
        self.wake = asyncio.Event()
        self.reading = HealthReading(Health.STARTING, "deploying actors")
        self.started_ts = time.time()
        self.loop_task: asyncio.Task[Any] | None = None
        self.worker_task: asyncio.Task[Any] | None = None
        self.recovery_wake = asyncio.Event()
        self.restart_log: list[dict[str, Any]] = []
        self.reconciliation: dict[str, Any] | None = None
        self._resync_task: asyncio.Task[Any] | None = None
        self._halting = False
        self.faults = FaultSchedule(cfg.venue.sim.faults)
        self.feed_started_ts: float | None = None
        self.metrics = actor_metrics(cfg, "supervisor")
        self.metrics.gauge(
            "health_state",
            "1 for the deployment's current health state, 0 for the others",
            "1",
            lambda: [
                (1.0 if h is self.reading.health else 0.0, {"state": h.value}) for h in Health
            ],
        )
        self.metrics.gauge(
            "actors_down",
            "Actors dead, restarting or suspended",
            "1",
            lambda: [(float(len(self.core.down())), {})],
        )

    # -- journal -------------------------------------------------------------------------------

    def journal(
        self, kind: str, data: dict[str, Any], state: list[StateWrite] | None = None
    ) -> None:
        # The run id rides on every supervisor record: its span belongs to that run's trace.
        data = {"run_id": self.run_id, **data}
        record: JournalRecord = event_record(self.deployment, kind, time.time(), data)
        self.outbox.send_nowait(ROLE_JOURNAL, "append", [record], state or [])

    def _run_state(self) -> StateWrite:
        return StateWrite(
            RUN_SCOPE, RUN_KEY, {"run_id": self.run_id, "phase": self.core.phase.value}, time.time()
        )

    # -- deploy --------------------------------------------------------------------------------

    async def deploy(self) -> dict[str, Any]:
        timeout = self.cfg.supervisor.startup_timeout_s
        try:
            # Every child's process boots at once (the slow part: a fresh Python importing the
            # runtime); they then become ready one by one in dependency order, journal first.
            early = [r for r, spec in self.specs.items() if spec.colocate_with is None]
            for role in early:
                self.adapter.create(self.specs[role])
            for role in self.specs:
                await self._create_and_ready(role, timeout, created=role in early)
            await self._reconcile(timeout)
        except Exception as exc:
            if self.core.failure is None:
                self.core.failure = f"start-up failed: {root_cause(exc)}"
            self.core.set_phase(Phase.FAILED)
            await self._observe()
            with contextlib.suppress(Exception):
                await call_journal(
                    self.peers,
                    [
                        event_record(
                            self.deployment,
                            "deployment_failed",
                            time.time(),
                            {"reason": self.core.failure, "run_id": self.run_id},
                        )
                    ],
                    [self._run_state()],
                    retry_s=5.0,
                )
                await self._settle_outbox(5.0)
            await self._kill_all()
            raise
        self.core.set_phase(Phase.READY)
        await call_journal(
            self.peers,
            [
                event_record(
                    self.deployment,
                    "deployment_started",
                    time.time(),
                    {
                        "run_id": self.run_id,
                        "started_ts": self.started_ts,
                        "mode": self.cfg.deployment.mode.value,
                        "venue": self.cfg.venue.kind,
                        "strategies": [s.name for s in self.cfg.strategies],
                        "symbols": list(self.cfg.venue.symbols),
                        "risk_limits_disabled": self.cfg.risk.disabled_limits(),
                        "session_calendar": self.cfg.session.calendar,
                        "reconciliation": (self.reconciliation or {}).get("summary"),
                    },
                )
            ],
            [self._run_state()],
        )
        self._start_loop()
        await self._observe()
        return self.status()

    async def _reconcile(self, timeout_s: float) -> None:
        """Before the first bar: the journal against the venue. A mismatch either stops the
        start (configured) or the venue's holdings are adopted by risk."""
        result = await self._reconcile_once(timeout_s)
        if result["action"] == "block_start":
            self.core.failure = f"reconciliation mismatch: {result['summary']}"
            raise OperationalError(
                self.core.failure
                + " (fail_on_reconciliation_mismatch is set; `tradeplane status` shows the report)"
            )

    async def _settle_outbox(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.outbox.inflight() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _create_and_ready(
        self, role: str, timeout_s: float, *, restart: bool = False, created: bool = False
    ) -> None:
        spec = self.specs[role]
        if not created:
            node_id = None
            if spec.colocate_with is not None:
                node_id = await self.adapter.call(
                    spec.colocate_with, "node_id", timeout_s=timeout_s
                )
            self.adapter.create(spec, node_id)
        try:
            await self.adapter.call(role, "ready", timeout_s=timeout_s)
        except (ChildGone, TimeoutError) as exc:
            cause = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    cause = await self.adapter.wait_for_death(role)
            raise RuntimeError(f"{role} did not become ready: {cause or exc}") from exc
        if restart:
            self.core.restarted(role)
        else:
            self.core.running(role)
        self._watch(role)

    async def start_feed(self) -> dict[str, Any]:
        await self.adapter.call(ROLE_FEED, "start_streaming", timeout_s=10.0)
        self.core.set_phase(Phase.RUNNING)
        self.feed_started_ts = time.time()
        self.journal("feed_started", {}, [self._run_state()])
        await self._observe()
        return self.status()

    async def reattach(self) -> bool:
        """After Ray restarted this actor: adopt the children that are still alive by name."""
        if not self.adapter.attach(ROLE_JOURNAL):
            return False
        try:
            run = await self.adapter.call(
                ROLE_JOURNAL, "query", "get_state", RUN_SCOPE, RUN_KEY, timeout_s=10.0
            )
        except (ChildGone, TimeoutError):
            return False
        if (
            not run
            or run.get("run_id") != self.run_id
            or run.get("phase") not in (Phase.READY.value, Phase.RUNNING.value)
        ):
            return False  # a fresh deployment (or one already over): nothing to adopt
        self.core.set_phase(Phase.READY)
        self.core.set_phase(Phase.RUNNING)
        suspended = await self._suspended_in_run()
        missing = []
        for role in self.specs:
            if role in suspended:  # stays suspended: its budget was spent before we died
                self.core.suspend(role)
                self.outbox.abandon(role)
            elif self.adapter.attach(role):
                self.core.running(role)
                self._watch(role)
            else:
                missing.append(role)
        self.journal("supervisor_reattached", {"run_id": self.run_id, "missing": missing})
        self._start_loop()
        self.wake.set()  # observe at once: health is unknown until the first tick
        for role in missing:  # died while we were down: recovered like any other death
            await self._on_death(role, "not found on re-attach")
        return True

    async def _suspended_in_run(self) -> set[str]:
        """Strategies this run suspended, from the journal (the supervisor's memory is gone)."""
        try:
            started = await self.adapter.call(
                ROLE_JOURNAL, "query", "events", ["deployment_started"], timeout_s=10.0
            )
            since = max(
                (e["seq"] for e in started if e["data"].get("run_id") == self.run_id), default=0
            )
            events = await self.adapter.call(
                ROLE_JOURNAL, "query", "events", ["strategy_suspended"], since, timeout_s=10.0
            )
        except (ChildGone, TimeoutError):
            return set()
        return {strategy_role(e["data"]["strategy"]) for e in events}

    # -- monitoring ----------------------------------------------------------------------------

    def _watch(self, role: str) -> None:
        self._unwatch(role)
        self.watchers[role] = spawn(self.tasks, self._watch_one(role))

    async def _watch_one(self, role: str) -> None:
        cause = await self.adapter.wait_for_death(role)
        await self._on_death(role, cause)

    def _start_loop(self) -> None:
        if self.loop_task is None or self.loop_task.done():
            self.loop_task = spawn(self.tasks, self._loop())
        if self.worker_task is None or self.worker_task.done():
            self.worker_task = spawn(self.tasks, self._recovery_worker())

    async def _loop(self) -> None:
        interval = self.cfg.supervisor.monitor_interval_s
        while self.core.phase in (Phase.READY, Phase.RUNNING):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.wake.wait()
            self.wake.clear()
            try:
                await self._tick()
            except Exception:  # the loop must survive any one bad tick
                log.exception("supervisor tick failed")

    async def _tick(self) -> None:
        now = time.time()
        running = [r for r, c in self.core.children.items() if c.state is Lifecycle.RUNNING]
        timeout = min(self.cfg.supervisor.heartbeat_timeout_s, 2.0)
        results = await asyncio.gather(
            *(self.adapter.call(r, "heartbeat", timeout_s=timeout) for r in running),
            return_exceptions=True,
        )
        for role, result in zip(running, results, strict=True):
            if isinstance(result, dict):
                self.core.on_heartbeat(role, result, now)
            elif isinstance(result, TimeoutError) and self.core.on_heartbeat_missed(role, now):
                await self.adapter.kill(role)  # hung: the death watch restarts it
        if self.core.feed_should_start(ROLE_FEED):
            with contextlib.suppress(ChildGone, TimeoutError):
                await self.adapter.call(ROLE_FEED, "start_streaming", timeout_s=10.0)
        self._check_resync()
        if self.feed_started_ts is not None and self.core.phase is Phase.RUNNING:
            for spec in self.faults.due(now - self.feed_started_ts):
                with contextlib.suppress(Exception):
                    await self.inject_fault(spec.kind, spec.duration_s, spec.model_dump())
        await self._observe()

    async def _observe(self) -> None:
        feed = self.core.children.get(ROLE_FEED)
        broker = self.core.children.get(ROLE_BROKER)
        fb = feed.last_heartbeat if feed else {}
        bb = broker.last_heartbeat if broker else {}
        facts = HealthFacts(
            phase=self.core.phase,
            now=time.time(),
            children_down=self.core.down() if self.core.phase is not Phase.STARTING else (),
            feed_started=bool(fb.get("streaming")),
            last_bar_recv_ts=fb.get("last_bar_recv_ts"),
            feed_started_ts=fb.get("started_ts"),
            broker_connected=bool(bb.get("connected", True)),
            broker_resyncing=bool(bb.get("resyncing")),
            market_open=self.calendar.is_open(time.time()),
            feed_silence_s=self.core.feed_silence_s,
            suspended=self.core.suspended(),
        )
        self.reading, change = self.core.observe_health(facts)
        if change is not None:
            self.journal(
                "health_changed",
                {
                    "component": "deployment",
                    "previous": change.previous.value,
                    "health": change.current.value,
                    "reason": change.reason,
                },
            )
        if self.core.active:
            self._check_feed_silence()

    # -- operator commands ---------------------------------------------------------------------

    async def kill_switch(self, active: bool, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.adapter.call(
            ROLE_RISK, "kill_switch", active, reason, "operator", timeout_s=30.0
        )
        return result

    async def flatten(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.adapter.call(
            ROLE_RISK, "flatten", reason, timeout_s=30.0
        )
        return result

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.adapter.call(
            ROLE_BROKER, "cancel_all", reason, timeout_s=30.0
        )
        await call_journal(
            self.peers,
            [event_record(self.deployment, "cancel_all_requested", time.time(), result)],
        )
        return result

    async def inject_fault(
        self, kind: str, duration_s: float | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Chaos: tell the sim venue (or, for ``silent``, the feed) to misbehave."""
        role = ROLE_FEED if fault_target(kind) == "feed" else ROLE_VENUE
        if role not in self.specs:
            raise OperationalError(f"fault {kind!r} needs the sim venue's own actor (paper mode)")
        extra = {k: v for k, v in (params or {}).items() if k in ("delay_s", "probability")}
        result: dict[str, Any] = await self.adapter.call(
            role, "inject_fault", kind, duration_s, extra, timeout_s=10.0
        )
        self.journal(
            "fault_injected",
            {"kind": kind, "target": role, "duration_s": duration_s, "params": extra},
        )
        return result

    async def clear_faults(self, kind: str | None = None) -> dict[str, Any]:
        cleared = {}
        for role in (ROLE_FEED, ROLE_VENUE):
            if role in self.specs:
                with contextlib.suppress(ChildGone, TimeoutError):
                    cleared[role] = await self.adapter.call(
                        role, "clear_faults", kind, timeout_s=10.0
                    )
        self.journal("faults_cleared", {"kind": kind, "cleared": cleared})
        return cleared

    # -- status --------------------------------------------------------------------------------

    async def status_with_orders(self) -> dict[str, Any]:
        status = self.status()
        if self.core.children[ROLE_JOURNAL].state is Lifecycle.RUNNING:
            with contextlib.suppress(Exception):
                status["orders"] = await self.adapter.call(
                    ROLE_JOURNAL, "query", "order_counts_by_status", timeout_s=2.0
                )
        return status

    def status(self) -> dict[str, Any]:
        return build_status(self)


@ray.remote
class SupervisorActor(SupervisedActor):
    def __init__(self, cfg: TradeplaneConfig, run_id: str, sources: dict[str, str]) -> None:
        self.protect_secrets(cfg)
        self.sup = Supervisor(cfg, run_id, sources, RayChildAdapter(cfg.deployment.name))
        self.metrics = self.sup.metrics  # served through the telemetry actor's endpoint
        self._deploying = False
        self._tasks: set[asyncio.Task[Any]] = set()
        # If Ray restarted us while the deployment ran, its children are still there.
        spawn(self._tasks, self._maybe_reattach())

    async def _maybe_reattach(self) -> None:
        await asyncio.sleep(0)
        if not self._deploying:
            await self.sup.reattach()

    async def deploy(self) -> dict[str, Any]:
        self._deploying = True
        return await self.sup.deploy()

    async def start_feed(self) -> dict[str, Any]:
        return await self.sup.start_feed()

    async def status(self) -> dict[str, Any]:
        return await self.sup.status_with_orders()

    async def stop(self, reason: str = "operator") -> dict[str, Any]:
        return await self.sup.stop(reason)

    async def kill_switch(self, active: bool, reason: str) -> dict[str, Any]:
        return await self.sup.kill_switch(active, reason)

    async def flatten(self, reason: str) -> dict[str, Any]:
        return await self.sup.flatten(reason)

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        return await self.sup.cancel_all(reason)

    async def inject_fault(
        self, kind: str, duration_s: float | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.sup.inject_fault(kind, duration_s, params)

    async def clear_faults(self, kind: str | None = None) -> dict[str, Any]:
        return await self.sup.clear_faults(kind)

    async def venue_holdings(self) -> dict[str, Any]:
        """For ``preflight`` while running: the venue's holdings, asked through the broker."""
        result: dict[str, Any] = await self.sup.adapter.call(
            ROLE_BROKER, "live_holdings", timeout_s=10.0
        )
        return result

    async def heartbeat(self) -> dict[str, Any]:
        return {"role": "supervisor", "ts": time.time(), "phase": self.sup.core.phase.value}
