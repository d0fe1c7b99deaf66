"""Supervisor: the supervision of one deployment over an adapter and a clock, both injected (the
Ray actor in ``actor`` is a thin shell around it; unit tests run it against a fake).

It creates the children, watches them (death the moment the adapter reports it, hangs by heartbeat
timeout, a silent feed and a lost venue connection by the health reading), and hands every
observation to the pure ``SupervisorCore``, carrying out the commands the core returns. Its
collaborators: ``Recoverer`` (restarts, resyncs, suspensions) and ``Stopper`` (the ordered stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tradeplane.actors.common import spawn
from tradeplane.actors.records import event_record
from tradeplane.cluster.placement import NodeInfo
from tradeplane.config.faults import FaultSchedule, fault_target
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.clock import WallStepWatch
from tradeplane.core.errors import OperationalError, root_cause
from tradeplane.core.health import Health, HealthReading, Phase
from tradeplane.core.session import make_calendar
from tradeplane.core.watchdog import Lifecycle, RecoveryPolicy
from tradeplane.journal.records import JournalRecord, StateWrite, iso_utc
from tradeplane.protocol.api import (
    BrokerApi,
    ChildApi,
    FaultTargetApi,
    FeedApi,
    JournalApi,
    RiskApi,
    TelemetryApi,
)
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import (
    ROLE_BROKER,
    ROLE_FEED,
    ROLE_JOURNAL,
    ROLE_RISK,
    ROLE_TELEMETRY,
    ROLE_VENUE,
    Role,
    child_role,
)
from tradeplane.supervisor.adapter import ChildAdapter, ChildGone
from tradeplane.supervisor.clock import Clock
from tradeplane.supervisor.commands import (
    CancelOpenOrders,
    ChildDied,
    Command,
    EndResync,
    HaltFinished,
    HealthRead,
    HeartbeatMissed,
    HeartbeatReceived,
    JournalEvent,
    KillActor,
    Observation,
    Observe,
    Resync,
    Rewire,
    ScheduleWake,
    SetTradingState,
    StartStreaming,
    StopDeployment,
    StopRequested,
    StopStreaming,
    SuspendActor,
    TickEnded,
    WakeRecovery,
)
from tradeplane.supervisor.core import SupervisorCore
from tradeplane.supervisor.derive import health_facts, is_steady, steady_tick_s
from tradeplane.supervisor.identity import Identity, JournalLost
from tradeplane.supervisor.placing import Placer
from tradeplane.supervisor.reattach import RUN_KEY, RUN_SCOPE, reattach
from tradeplane.supervisor.recovery import Recoverer
from tradeplane.supervisor.standbys import Standbys
from tradeplane.supervisor.status import build_status
from tradeplane.supervisor.stopping import Stopper

if TYPE_CHECKING:
    from tradeplane.supervisor.specs import ChildSpec
    from tradeplane.telemetry.metrics import ActorMetrics

log = logging.getLogger("tradeplane.supervisor")
__all__ = ["RUN_KEY", "RUN_SCOPE", "Supervisor"]
# How long a durable supervisor record may wait for the journal before it is queued instead.
DURABLE_RETRY_S = 5.0
# After a re-attach, how long the previous supervisor's standbys may wait for the first tick.
FIRST_TICK_WAIT_S = 10.0


class Supervisor:
    def __init__(
        self,
        cfg: TradeplaneConfig,
        run_id: str,
        specs: list[ChildSpec],
        adapter: ChildAdapter,
        clock: Clock,
        rng: random.Random | None = None,
        state_node: NodeInfo | None = None,
        state_node_lost: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        # The last run's state node was lost (found by `up`): said first thing in the journal.
        self.state_node_lost = state_node_lost
        self.placer = Placer(self, state_node or NodeInfo("", "", alive=True))
        self.run_id = run_id
        self.deployment = cfg.deployment.name
        self.specs: dict[str, ChildSpec] = {s.role: s for s in specs}
        self.adapter = adapter
        self.clock = clock
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
                rng=rng or random.Random(),
            ),
            heartbeat_timeout_s=sup.heartbeat_timeout_s,
            feed_silence_s=cfg.resolved_feed_silence_s(),
            strategy_max_restarts=sup.strategy_max_restarts,
            cancel_orders_on_exhausted=sup.cancel_orders_on_exhausted,
            on_recovery_exhausted=sup.on_recovery_exhausted,
            broker_role=ROLE_BROKER,
            feed_role=ROLE_FEED,
        )
        self.steady_tick_s = steady_tick_s(
            sup.monitor_interval_s,
            sup.heartbeat_timeout_s,
            sup.lease_s,
            cfg.resolved_feed_silence_s(),
        )
        self.calendar = make_calendar(cfg.session.calendar)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.watchers: dict[str, asyncio.Task[Any]] = {}
        self.wake = asyncio.Event()
        self.reading = HealthReading(Health.STARTING, "deploying actors")
        self.started_ts = clock.now()
        self.started_mono = clock.monotonic()  # uptime
        self.wall_watch = WallStepWatch()
        # sha256 of each strategy's source as shipped to its actor (set by the actor shell):
        # journaled with ``deployment_started``, so ``promote`` knows what code a run traded.
        self.strategy_code_hashes: dict[str, str] = {}
        self.loop_task: asyncio.Task[Any] | None = None
        self.journal_failures = 0
        self.faults = FaultSchedule(cfg.venue.sim.faults)
        self.feed_started_mono: float | None = None  # scheduled sim faults count from it
        self.identity = Identity(self)
        self.recoverer = Recoverer(self)
        self.standbys = Standbys(self)
        self.stopper = Stopper(self)
        self.last_stop: dict[str, Any] | None = None
        # After a restart by Ray: when this instance re-attached, and when it first ticked
        # after that (the supervision is back).
        self.reattached_ts: float | None = None
        self.first_tick_ts: float | None = None
        self.ticked = asyncio.Event()
        # Set by the actor shell (``core.succession``): whether this instance still holds the
        # latest term, what it does when it does not, and what status shows of the succession.
        self.still_current: Callable[[], bool] = lambda: True
        self.on_superseded: Callable[[], None] = lambda: None
        self.succession_status: Callable[[], dict[str, Any] | None] = lambda: None

    def start_metrics(self) -> ActorMetrics:
        """The supervisor's own metrics (served through the telemetry actor's endpoint). Not
        made in ``__init__``: the metrics SDK is a good part of a restarted supervisor's
        imports, and its supervision comes first (the actor makes them after the first
        tick)."""
        from tradeplane.telemetry.actors import actor_metrics

        metrics = actor_metrics(self.cfg, "supervisor")
        metrics.gauge(
            "health_state",
            "1 for the deployment's current health state, 0 for the others",
            "1",
            lambda: [
                (1.0 if h is self.reading.health else 0.0, {"state": h.value}) for h in Health
            ],
        )
        metrics.gauge(
            "actors_down",
            "Actors dead, restarting or suspended",
            "1",
            lambda: [(float(len(self.core.down())), {})],
        )
        metrics.gauge(
            "recovery_exhausted",
            "1 while trading is halted because recovery gave up on the target",
            "1",
            self._exhausted_gauge,
        )
        metrics.gauge(
            "journal_lost",
            "1 once the deployment's journal is gone or replaced (trading halted)",
            "1",
            lambda: [(1.0 if self.identity.lost is not None else 0.0, {})],
        )
        return metrics

    def _exhausted_gauge(self) -> list[tuple[float, dict[str, str]]]:
        halt = self.core.halt
        if halt is None or halt.cause != "recovery_exhausted":
            return [(0.0, {})]
        return [(1.0, {"target": halt.target})]

    # -- the core's steps ----------------------------------------------------------------------

    async def handle(self, obs: Observation) -> None:
        await self.execute(self.core.step(obs, self.clock.monotonic()))

    async def execute(self, commands: list[Command]) -> None:
        for cmd in commands:
            await self._carry_out(cmd)

    async def _carry_out(self, cmd: Command) -> None:
        match cmd:
            case JournalEvent(kind, data, durable, run_state):
                state = [self.run_state()] if run_state else []
                if durable:
                    await self.journal_durably(kind, data, state)
                else:
                    self.journal(kind, data, state)
            case KillActor(role):
                await self.kill(role)
            case WakeRecovery():
                self.recoverer.wake.set()
            case Rewire(role):
                self.recoverer.rewire(role)
            case StartStreaming():
                await self._start_streaming()
            case StopStreaming():
                try:
                    await self.adapter.call(5.0, ROLE_FEED, FeedApi.stop_streaming)
                except Exception as exc:
                    # Safe to lose: bars are stopped only to spare work. A feed that cannot be
                    # reached sends nothing, and the halted broker lets no new order out anyway.
                    log.warning("feed did not stop streaming: %s", exc)
            case Resync(decision):
                self.recoverer.start_resync(decision)
            case EndResync(decision, started_ts, summary):
                await self.recoverer.end_resync(decision, started_ts, summary)
            case SuspendActor(role, decision):
                await self.recoverer.suspend(role, decision)
            case SetTradingState(state, kill_switch):
                error = None
                try:
                    await self.adapter.call(
                        5.0, ROLE_BROKER, BrokerApi.set_trading_state, state, kill_switch
                    )
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                await self.handle(HaltFinished(error))  # recorded and retried by the core
            case CancelOpenOrders(reason):
                try:
                    await self.adapter.call(10, ROLE_BROKER, BrokerApi.cancel_all, reason)
                except Exception as exc:
                    # Orders may still work at the venue: the operator must hear of it.
                    log.error("cancel_all after %s failed: %s", reason, exc)
                    self.journal(
                        EventKind.CANCEL_ALL_FAILED, {"reason": reason, "error": str(exc)[:500]}
                    )
            case ScheduleWake(delay_s, then):
                if delay_s <= 0:
                    await self.handle(then)
                else:
                    spawn(self.tasks, self._wake_later(delay_s, then))
            case Observe():
                await self.observe()
            case StopDeployment(reason):
                self.last_stop = await self.stopper.run(reason)

    async def _wake_later(self, delay_s: float, obs: Observation) -> None:
        await self.clock.sleep(delay_s)
        await self.handle(obs)

    async def kill(self, role: str) -> None:
        try:
            await self.adapter.kill(role)
        except Exception as exc:
            # Safe to lose: the child is already known dead or hung, and its restart kills it
            # again by name before creating the new one (a failure there is recovery_failed).
            log.warning("killing %s failed: %s", role, exc)

    async def _start_streaming(self) -> None:
        try:
            await self.adapter.call(10.0, ROLE_FEED, FeedApi.start_streaming)
        except Exception as exc:
            # Safe to lose: desired vs observed, the next tick asks a feed that does not stream
            # again (TickEnded -> StartStreaming).
            log.warning("feed did not start streaming: %s", exc)

    # -- journal -------------------------------------------------------------------------------

    def record(self, kind: EventKind, data: dict[str, Any]) -> JournalRecord:
        # The run id rides on every supervisor record: its span belongs to that run's trace.
        return event_record(
            self.deployment, kind, self.clock.now(), {"run_id": self.run_id, **data}
        )

    def journal(
        self, kind: EventKind, data: dict[str, Any], state: list[StateWrite] | None = None
    ) -> None:
        """Queued: kept and resent by the adapter until the journal acknowledges it."""
        record = self.record(kind, data)
        self.adapter.append([record], state or [])
        if kind is EventKind.JOURNAL_LOST:
            # The journal may never come back to say it: the alert webhook (if any) is told
            # directly, under the record's event id, so the journaled copy is not sent again.
            line = {
                "event_id": record.event_id,
                "kind": record.kind.value,
                "deployment": record.deployment,
                "data": record.data,
                "ts": iso_utc(record.ts),
                "seq": None,
            }
            self.adapter.send(ROLE_TELEMETRY, TelemetryApi.alert_now, line)

    async def journal_durably(
        self, kind: EventKind, data: dict[str, Any], state: list[StateWrite] | None = None
    ) -> bool:
        """Wait for the commit. A journal away for ``DURABLE_RETRY_S`` does not hold up what
        follows (a fail-closed halt must never wait on the journal): the record is queued
        instead, resent until the journal is back, counted and logged; False then."""
        record = self.record(kind, data)
        try:
            await self.adapter.journal([record], state or [], retry_s=DURABLE_RETRY_S)
            return True
        except Exception as exc:
            self.journal_failures += 1
            log.error("journal unreachable, %s queued for when it is back: %s", kind, exc)
            self.adapter.append([record], state or [])  # idempotent by event id
            return False

    def run_state(self) -> StateWrite:
        value = {
            "run_id": self.run_id,
            "phase": self.core.phase.value,
            "state_node_id": self.placer.state_node.node_id,
            "state_node_ip": self.placer.state_node.ip,
        }
        return StateWrite(RUN_SCOPE, RUN_KEY, value, self.clock.now())

    # -- deploy --------------------------------------------------------------------------------

    async def deploy(self) -> dict[str, Any]:
        timeout = self.cfg.supervisor.startup_timeout_s
        try:
            # Every child's process boots at once (the slow part: a fresh Python importing the
            # runtime); they then become ready one by one in dependency order, journal first.
            self.placer.publish_run()
            for spec in self.specs.values():
                node_id = await self.placer.node_for(spec)
                self.adapter.create(spec, node_id, epoch=self.identity.next_epoch(spec.role))
            for role in self.specs:
                await self.start_child(role, timeout, created=True)
                if role == ROLE_JOURNAL and self.state_node_lost is not None:
                    await self.adapter.journal(
                        [self.record(EventKind.STATE_NODE_LOST, self.state_node_lost)],
                        [],
                        retry_s=30.0,
                    )
            await self._reconcile(timeout)
        except Exception as exc:
            if self.core.failure is None:
                self.core.failure = f"start-up failed: {root_cause(exc)}"
            self.core.set_phase(Phase.FAILED)
            await self.observe()
            data = {"reason": self.core.failure}
            await self.journal_durably(EventKind.DEPLOYMENT_FAILED, data, [self.run_state()])
            await self.stopper.settle(5.0)
            await self.stopper.kill_all()
            raise
        self.core.set_phase(Phase.READY)
        started = {
            "started_ts": self.started_ts,
            "mode": self.cfg.deployment.mode.value,
            "venue": self.cfg.venue.kind,
            "strategies": [s.name for s in self.cfg.strategies],
            # Each strategy's starting cash: ``status`` marks its equity from the journal alone.
            "capital": {s.name: s.capital for s in self.cfg.strategies},
            "symbols": list(self.cfg.venue.symbols),
            "risk_limits_disabled": self.cfg.risk.disabled_limits(),
            "session_calendar": self.cfg.session.calendar,
            "strategy_code_hashes": dict(self.strategy_code_hashes),
            "reconciliation": (self.recoverer.reconciliation or {}).get("summary"),
        }
        # A deployment that cannot journal its start does not start (raises after 30 s).
        await self.adapter.journal(
            [self.record(EventKind.DEPLOYMENT_STARTED, started)], [self.run_state()], retry_s=30.0
        )
        self.start_loops()
        self.standbys.refill()
        await self.observe()
        return self.status()

    async def _reconcile(self, timeout_s: float) -> None:
        """Before the first bar: the journal against the venue. A mismatch either stops the
        start (configured) or the venue's holdings are adopted by risk."""
        result = await self.recoverer.reconcile_once(timeout_s)
        if result["action"] == "block_start":
            self.core.failure = f"reconciliation mismatch: {result['summary']}"
            raise OperationalError(
                self.core.failure
                + " (fail_on_reconciliation_mismatch is set; `tradeplane status` shows the report)"
            )

    async def start_child(
        self, role: str, timeout_s: float, *, restart: bool = False, created: bool = False
    ) -> dict[str, float]:
        """Create (or, on a restart, promote a standby to) ``role``'s actor and wait for its
        ``ready``; returns how long each part took (for the recovery's record)."""
        spec = self.specs[role]
        took: dict[str, float] = {}
        begun = self.clock.monotonic()
        if restart and self.core.phase in (Phase.STOPPING, Phase.STOPPED):
            # A restart under way when the stop came: the stop has killed (or will kill) every
            # child by name, and a new one must not outlive it.
            raise OperationalError(f"{role} not restarted: the deployment is stopping")
        ident = self.identity
        if not created:
            node_id = await self.placer.node_for(spec)
            epoch = await ident.new_incarnation(role, timeout_s)
            init = ident.init_args(role, restart)
            # The previous incarnation is dead (the restart killed it and waited) and fenced
            # below ``epoch``: a standby may take its place.
            took["fence_s"] = self.clock.monotonic() - begun
            promotion = "none"
            if restart:
                promotion = await self.standbys.promote(spec, node_id, epoch, init, timeout_s)
            if promotion == "promoted":
                took["promote_s"] = self.clock.monotonic() - begun - took["fence_s"]
            else:
                if promotion == "failed":
                    # Whatever the failed promotion began is fenced below this incarnation.
                    epoch = await ident.new_incarnation(role, timeout_s)
                self.adapter.create(spec, node_id, epoch=epoch, **init)
        else:
            await ident.fence(role, ident.child_epochs[role], timeout_s)
        asked = self.clock.monotonic()
        try:
            answer = await self.adapter.call(timeout_s, child_role(role), ChildApi.ready)
        except (ChildGone, TimeoutError) as exc:
            cause = None
            # Only to name the cause in the error: a child that does not die in 5 s has none.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    cause = await self.adapter.wait_for_death(role)
            if role == ROLE_JOURNAL:
                ident.raise_if_lost(cause)
            raise RuntimeError(f"{role} did not become ready: {cause or exc}") from exc
        if role == ROLE_JOURNAL and (lost := ident.journal_ready(answer)) is not None:
            await self.kill(ROLE_JOURNAL)
            raise JournalLost(f"journal_lost: {lost}")
        took["ready_s"] = self.clock.monotonic() - asked
        if restart:
            self.core.restarted(role)
        else:
            self.core.running(role)
        self.watch(role)
        await self.placer.locate(role)
        return {k: round(v, 3) for k, v in took.items()}

    async def start_feed(self) -> dict[str, Any]:
        await self.adapter.call(10.0, ROLE_FEED, FeedApi.start_streaming)
        self.core.set_phase(Phase.RUNNING)
        self.feed_started_mono = self.clock.monotonic()
        self.journal(EventKind.FEED_STARTED, {}, [self.run_state()])
        await self.observe()
        return self.status()

    async def reattach(self) -> bool:
        """After Ray restarted the supervisor: adopt the children still alive, by name."""
        adopted = await reattach(self)
        if adopted:
            spawn(self.tasks, self._standbys_after_first_tick())
        return adopted

    async def _standbys_after_first_tick(self) -> None:
        """The previous supervisor's standbys are reaped and the pool started afresh once the
        supervision is back: a new standby process (and the lookups and kills before it) must
        not compete with the re-attach's first tick for the node's cores. Not waited for
        longer than ``FIRST_TICK_WAIT_S``: a stop, or ticks that keep failing, must not leave
        the previous standbys running (a stopped deployment's pool starts no new ones)."""
        await self.clock.wait(self.ticked, FIRST_TICK_WAIT_S)
        await self.standbys.adopt_after_reattach()

    # -- monitoring ----------------------------------------------------------------------------

    def watch(self, role: str) -> None:
        self.unwatch(role)
        self.watchers[role] = spawn(self.tasks, self._watch_one(role))

    def unwatch(self, role: str) -> None:
        task = self.watchers.pop(role, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _watch_one(self, role: str) -> None:
        cause = await self.adapter.wait_for_death(role)
        self.wake.set()
        if role in self.placer.placement:
            # Ray reports the actors of a lost node dead once the node is declared dead: read
            # the node table now, while the role still counts as on it, and say it first.
            await self.placer.watch_nodes(force=True)
        await self.handle(ChildDied(role, cause))

    def start_loops(self) -> None:
        if self.loop_task is None or self.loop_task.done():
            self.loop_task = spawn(self.tasks, self._loop())
        self.recoverer.start()

    def tick_interval(self) -> float:
        """Every ``monitor_interval_s`` while anything is wrong or changing; at the slower
        steady cadence while all is well (a death, a restart, an operator command still wake
        the loop at once)."""
        if is_steady(self.core, self.reading.health):
            return self.steady_tick_s
        return self.cfg.supervisor.monitor_interval_s

    async def _loop(self) -> None:
        while self.core.active:
            await self.clock.wait(self.wake, self.tick_interval())
            self.wake.clear()
            if not self.still_current():
                # Another instance took over: acting on would make two supervisors.
                self.on_superseded()
                return
            try:
                await self.tick()
            except Exception:
                # The loop must survive any one bad tick; the next tick observes afresh.
                log.exception("supervisor tick failed")

    async def tick(self) -> None:
        now = self.clock.monotonic()
        self._note_wall_step(now)
        running = [r for r, c in self.core.children.items() if c.state is Lifecycle.RUNNING]
        timeout = min(self.cfg.supervisor.heartbeat_timeout_s, 2.0)
        results = await asyncio.gather(
            *(self.adapter.call(timeout, child_role(r), ChildApi.heartbeat) for r in running),
            return_exceptions=True,
        )
        for role, result in zip(running, results, strict=True):
            if isinstance(result, dict):
                await self.handle(HeartbeatReceived(role, result))
                lost = self.identity.journal_beat(result) if role == ROLE_JOURNAL else None
                if lost is not None:
                    await self.identity.fail_closed(f"journal_lost: {lost}")
            elif isinstance(result, TimeoutError):
                await self.handle(HeartbeatMissed(role))
        await self.placer.watch_nodes()
        await self.handle(TickEnded())
        if self.feed_started_mono is not None and self.core.phase is Phase.RUNNING:
            for spec in self.faults.due(now - self.feed_started_mono):
                try:
                    await self.inject_fault(spec.kind, spec.duration_s, spec.model_dump())
                except Exception:
                    # Chaos only (a scheduled sim fault): the run goes on without it.
                    log.exception("scheduled fault %s not injected", spec.kind)
        await self.observe()
        self.placer.publish_run()
        if self.first_tick_ts is None:
            self.first_tick_ts = self.clock.now()
        self.ticked.set()

    def _note_wall_step(self, mono: float) -> None:
        """Nothing the supervisor decides rests on the wall clock's pace, but the record's
        timestamps jump with it: the operator is told it stepped (and by how much)."""
        step = self.wall_watch.look(self.clock.now(), mono)
        if step is not None:
            log.warning("the wall clock stepped by %+.3fs (NTP? is it in sync?)", step)
            self.journal(EventKind.WALL_CLOCK_STEPPED, {"step_s": round(step, 3)})

    async def observe(self) -> None:
        now = self.clock.now()
        facts = health_facts(self.core, now, self.calendar.is_open(now), self.clock.monotonic())
        self.reading, change = self.core.observe_health(facts)
        await self.handle(HealthRead(self.reading, change))

    # -- operator commands ---------------------------------------------------------------------

    async def stop(self, reason: str = "operator") -> dict[str, Any]:
        commands = self.core.step(StopRequested(reason), self.clock.monotonic())
        if not commands:  # stopped already
            return self.status()
        await self.execute(commands)
        return self.last_stop if self.last_stop is not None else self.status()

    async def kill_switch(self, active: bool, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.adapter.call(
            30.0, ROLE_RISK, RiskApi.kill_switch, active, reason, "operator"
        )
        return result

    async def flatten(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.adapter.call(30.0, ROLE_RISK, RiskApi.flatten, reason)
        return result

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.adapter.call(
            30.0, ROLE_BROKER, BrokerApi.cancel_all, reason
        )
        await self.adapter.journal(
            [self.record(EventKind.CANCEL_ALL_REQUESTED, result)], [], retry_s=30.0
        )
        return result

    async def inject_fault(
        self, kind: str, duration_s: float | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Chaos: tell the sim venue (or, for ``silent``, the feed) to misbehave."""
        role: Role[FaultTargetApi] = ROLE_FEED if fault_target(kind) == "feed" else ROLE_VENUE
        if role not in self.specs:
            raise OperationalError(f"fault {kind!r} needs the sim venue's own actor (paper mode)")
        extra = {k: v for k, v in (params or {}).items() if k in ("delay_s", "probability")}
        result: dict[str, Any] = await self.adapter.call(
            10.0, role, FaultTargetApi.inject_fault, kind, duration_s, extra
        )
        # The operator's command returns once its record is in the journal, so what the CLI
        # reported and what the journal holds agree the moment it returns.
        await self.journal_durably(
            EventKind.FAULT_INJECTED,
            {"kind": kind, "target": role, "duration_s": duration_s, "params": extra},
        )
        return result

    async def clear_faults(self, kind: str | None = None) -> dict[str, Any]:
        cleared: dict[str, int] = {}
        targets: tuple[Role[FaultTargetApi], ...] = (ROLE_FEED, ROLE_VENUE)
        for role in targets:
            if role in self.specs:
                # A dead child holds no faults: its restart starts clean.
                with contextlib.suppress(ChildGone, TimeoutError):
                    cleared[role] = await self.adapter.call(
                        10.0, role, FaultTargetApi.clear_faults, kind
                    )
        await self.journal_durably(EventKind.FAULTS_CLEARED, {"kind": kind, "cleared": cleared})
        return cleared

    # -- status --------------------------------------------------------------------------------

    async def status_with_orders(self) -> dict[str, Any]:
        await self.standbys.refresh()
        status = self.status()
        if self.core.children[ROLE_JOURNAL].state is Lifecycle.RUNNING:
            try:
                status["orders"] = await self.adapter.call(
                    2.0, ROLE_JOURNAL, JournalApi.query, "order_counts_by_status"
                )
            except Exception:
                # Status must answer whatever the journal does; it then shows no order counts.
                log.debug("order counts unavailable", exc_info=True)
        return status

    def status(self) -> dict[str, Any]:
        return build_status(self)
