"""Deployment health, derived from observed facts and a clock, never set optimistically.

``derive_health`` is a pure function of ``HealthFacts``; ``HealthTracker`` records changes and
checks each against the transition table (a stopped deployment cannot become ``ok`` again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tradeplane.core.statemachine import TransitionTable


class Health(StrEnum):
    STARTING = "starting"
    READY = "ready"
    WAITING_FOR_DATA = "waiting_for_data"
    OK = "ok"
    FEED_SILENT = "feed_silent"
    IDLE_MARKET_CLOSED = "idle_market_closed"
    BROKER_DISCONNECTED = "broker_disconnected"
    RECOVERING = "recovering"
    STOPPED = "stopped"
    FAILED = "failed"


class Phase(StrEnum):
    """What the supervisor is doing with the deployment (desired state)."""

    STARTING = "starting"
    READY = "ready"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


_LIVE = frozenset(
    {
        Health.READY,
        Health.WAITING_FOR_DATA,
        Health.OK,
        Health.FEED_SILENT,
        Health.IDLE_MARKET_CLOSED,
        Health.BROKER_DISCONNECTED,
        Health.RECOVERING,
    }
)

HEALTH = TransitionTable[Health](
    "health",
    {
        Health.STARTING: frozenset(_LIVE | {Health.STOPPED, Health.FAILED}),
        **{h: frozenset((_LIVE - {h}) | {Health.STOPPED, Health.FAILED}) for h in _LIVE},
        Health.STOPPED: frozenset(),
        Health.FAILED: frozenset({Health.STOPPED}),
    },
)


@dataclass(frozen=True, slots=True)
class HealthFacts:
    phase: Phase
    now: float
    children_down: tuple[str, ...] = ()
    feed_started: bool = False
    last_bar_recv_ts: float | None = None
    feed_started_ts: float | None = None
    # Measured on monotonic clocks (the feed's own, plus the supervisor's since it heard from
    # the feed): preferred over the wall timestamps above, which a wall-clock step, or clocks
    # out of sync across nodes, would skew.
    last_bar_age_s: float | None = None
    streaming_for_s: float | None = None
    broker_connected: bool = True
    broker_resyncing: bool = False
    market_open: bool = True
    feed_silence_s: float = 30.0
    suspended: tuple[str, ...] = ()
    drift_alerts: tuple[str, ...] = ()  # "<strategy> <figure>" over its [drift] threshold


@dataclass(frozen=True, slots=True)
class HealthReading:
    health: Health
    reason: str
    last_bar_age_s: float | None = None


def _bar_age(f: HealthFacts) -> float | None:
    if f.last_bar_age_s is not None:
        return max(0.0, f.last_bar_age_s)
    # Only a wall-clock age is known (a feed that reports none): cross-process, so it needs the
    # clocks in sync; a negative one (a clock stepped back, or skew) reads as just now.
    return None if f.last_bar_recv_ts is None else max(0.0, f.now - f.last_bar_recv_ts)


def _streaming_for(f: HealthFacts) -> float:
    if f.streaming_for_s is not None:
        return f.streaming_for_s
    return 0.0 if f.feed_started_ts is None else f.now - f.feed_started_ts


def derive_health(f: HealthFacts) -> HealthReading:
    age = _bar_age(f)
    if f.phase is Phase.FAILED:
        return HealthReading(Health.FAILED, "deployment failed", age)
    if f.phase is Phase.STOPPED:
        return HealthReading(Health.STOPPED, "deployment stopped", age)
    if f.phase is Phase.STARTING:
        return HealthReading(Health.STARTING, "deploying actors", age)
    if f.children_down:
        return HealthReading(Health.RECOVERING, f"down: {', '.join(f.children_down)}", age)
    if f.phase is Phase.STOPPING:
        return HealthReading(Health.RECOVERING, "stopping", age)
    if not f.broker_connected:
        return HealthReading(Health.BROKER_DISCONNECTED, "broker not connected to venue", age)
    if f.broker_resyncing:
        return HealthReading(Health.RECOVERING, "broker resyncing with the venue", age)
    if f.phase is Phase.READY or not f.feed_started:
        return HealthReading(Health.READY, "all actors up, feed not started", age)
    if not f.market_open:
        return HealthReading(Health.IDLE_MARKET_CLOSED, "market closed", age)
    if age is None:
        waited = _streaming_for(f)
        if waited > f.feed_silence_s:
            return HealthReading(Health.FEED_SILENT, f"no bar since feed start {waited:.1f}s ago")
        return HealthReading(Health.WAITING_FOR_DATA, "feed started, no bar yet")
    if age > f.feed_silence_s:
        return HealthReading(
            Health.FEED_SILENT, f"last bar {age:.1f}s ago > feed_silence_s {f.feed_silence_s}", age
        )
    # Drift is not the pipeline's health (it stays ok), but the reason says it.
    drift = f"; drift alert: {', '.join(f.drift_alerts)}" if f.drift_alerts else ""
    if f.suspended:
        # Still ok: the other strategies trade; the reason says who does not.
        suspended = ", ".join(f.suspended)
        return HealthReading(Health.OK, f"bars flowing; suspended: {suspended}{drift}", age)
    return HealthReading(Health.OK, f"bars flowing, all actors up{drift}", age)


@dataclass(slots=True)
class HealthChange:
    previous: Health
    current: Health
    reason: str
    ts: float


@dataclass(slots=True)
class HealthTracker:
    current: Health = Health.STARTING
    since_ts: float = 0.0
    history: list[HealthChange] = field(default_factory=list)

    def observe(self, reading: HealthReading, now: float) -> HealthChange | None:
        if reading.health is self.current:
            return None
        HEALTH.check(self.current, reading.health)
        change = HealthChange(self.current, reading.health, reading.reason, now)
        self.current, self.since_ts = reading.health, now
        self.history.append(change)
        del self.history[:-100]
        return change
