"""Pure decisions over the supervisor's core that need no step of their own: the health facts
from the children's last heartbeats, who is told of a restarted child, and what a restarted
supervisor adopts. No IO: the shell gathers the inputs and carries out the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradeplane.cluster.placement import NodeInfo
from tradeplane.core.health import Health, HealthFacts, Phase
from tradeplane.core.watchdog import Lifecycle
from tradeplane.protocol.roles import ROLE_DRIFT
from tradeplane.supervisor.core import SupervisorCore

_ADOPTABLE = (Phase.READY.value, Phase.RUNNING.value)
# Health in which nothing is being detected, recovered or started: the supervisor may tick (and
# heartbeat its children) at the steady cadence. Not ``ready`` or ``waiting_for_data``: right
# after a start, health must reach ``ok`` as soon as the first bars flow.
_STEADY = (Health.OK, Health.IDLE_MARKET_CLOSED)
STEADY_TICK_MAX_S = 2.0


def steady_tick_s(
    monitor_interval_s: float, heartbeat_timeout_s: float, lease_s: float, feed_silence_s: float
) -> float:
    """Seconds between ticks of a steady deployment. Each tick heartbeats every child, so this
    is the idle chatter's cadence; it stays well inside every bound the heartbeats serve: a
    hang is still seen by a heartbeat missed within ``heartbeat_timeout_s`` (at most half of
    it passes before the next one), a lease is renewed at least six times per ``lease_s``, and
    a silent feed is seen within ``feed_silence_s`` plus a twentieth of it. Never faster than
    ``monitor_interval_s`` (the cadence while anything is wrong)."""
    return max(
        monitor_interval_s,
        min(STEADY_TICK_MAX_S, heartbeat_timeout_s / 2, lease_s / 6, feed_silence_s / 20),
    )


def is_steady(core: SupervisorCore, health: Health) -> bool:
    """Nothing to detect or recover right now: running (or ready) and not halted, health
    healthy, every child up and answering its heartbeats."""
    return (
        core.active
        and health in _STEADY
        and not core.down()
        and all(c.hung_since is None for c in core.children.values())
    )


def health_facts(
    core: SupervisorCore, now: float, market_open: bool, mono: float | None = None
) -> HealthFacts:
    """``now`` the wall clock (the calendar, the record), ``mono`` the supervisor's monotonic
    reading (the core's time). The feed's ages come on its own monotonic clock, as of its last
    heartbeat; the supervisor adds what passed on its own since it received it, so no wall
    clock (stepped, or out of sync across nodes) enters feed silence. A feed that stops
    answering ages on: its silence is still seen."""
    feed = core.children.get(core.feed_role)
    broker = core.children.get(core.broker_role)
    fb = feed.last_heartbeat if feed else {}
    bb = broker.last_heartbeat if broker else {}
    heard = feed.last_heartbeat_mono if feed else None
    since_beat = None if mono is None or heard is None else max(0.0, mono - heard)
    return HealthFacts(
        phase=core.phase,
        now=now,
        last_bar_age_s=_aged(fb.get("last_bar_age_s"), since_beat),
        streaming_for_s=_aged(fb.get("streaming_for_s"), since_beat),
        children_down=core.down() if core.phase is not Phase.STARTING else (),
        feed_started=bool(fb.get("streaming")),
        last_bar_recv_ts=fb.get("last_bar_recv_ts"),
        feed_started_ts=fb.get("started_ts"),
        broker_connected=bool(bb.get("connected", True)),
        broker_resyncing=bool(bb.get("resyncing")),
        market_open=market_open,
        feed_silence_s=core.feed_silence_s,
        suspended=core.suspended(),
        drift_alerts=drift_alerts(core),
    )


def _aged(age: Any, since_beat: float | None) -> float | None:
    if since_beat is None or not isinstance(age, int | float) or isinstance(age, bool):
        return None
    return max(0.0, float(age)) + since_beat


def drift_alerts(core: SupervisorCore) -> tuple[str, ...]:
    """What the drift tracker reports over its thresholds (its last heartbeat), if it runs."""
    drift = core.children.get(ROLE_DRIFT)
    active = drift.last_heartbeat.get("active_alerts", ()) if drift else ()
    return tuple(f"{a['strategy']} {a['figure']}" for a in active if isinstance(a, dict))


@dataclass(frozen=True, slots=True)
class Rewiring:
    """After ``role`` restarted: the running siblings that resend to it, and the suspended
    peers it must not send to."""

    siblings: tuple[str, ...]
    suspended: tuple[str, ...]


def rewiring(core: SupervisorCore, role: str) -> Rewiring:
    running = tuple(
        other
        for other, child in core.children.items()
        if other != role and child.state is Lifecycle.RUNNING
    )
    return Rewiring(running, core.suspended())


def adoptable(run: dict[str, Any] | None, run_id: str) -> bool:
    """Whether a restarted supervisor adopts the deployment the journal's run record names:
    this run, started and not over (a fresh deployment, or a stopped or failed one, is not)."""
    if not run:
        return False
    return run.get("run_id") == run_id and run.get("phase") in _ADOPTABLE


@dataclass(frozen=True, slots=True)
class Adoption:
    watch: tuple[str, ...]
    abandon: tuple[str, ...]
    missing: tuple[str, ...]


def adopt(core: SupervisorCore, alive: dict[str, bool], suspended: set[str]) -> Adoption:
    """The run goes on under the restarted supervisor: a strategy suspended before stays
    suspended (its budget was spent), a live child is adopted and watched, a missing one died
    while nobody watched and is recovered like any other death."""
    core.set_phase(Phase.READY)
    core.set_phase(Phase.RUNNING)
    watch, abandon, missing = [], [], []
    for role in core.children:
        if role in suspended:
            core.suspend(role)
            abandon.append(role)
        elif alive.get(role):
            core.running(role)
            watch.append(role)
        else:
            missing.append(role)
    return Adoption(tuple(watch), tuple(abandon), tuple(missing))


@dataclass(frozen=True, slots=True)
class NodeLoss:
    node_id: str
    roles: tuple[str, ...]


def lost_nodes(
    hosted: dict[str, list[str]], nodes: list[NodeInfo], known: set[str]
) -> list[NodeLoss]:
    """Nodes that host (or lately hosted) roles of the deployment and that Ray's node table no
    longer shows alive, each once (``known``: those already reported)."""
    alive = {n.node_id for n in nodes if n.alive}
    return [
        NodeLoss(node, tuple(sorted(roles)))
        for node, roles in sorted(hosted.items())
        if roles and node not in alive and node not in known
    ]
