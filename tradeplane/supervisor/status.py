"""The supervisor's status: what ``tradeplane status`` and the live view show of a running
deployment, assembled from the children's last heartbeats (no calls, so it never blocks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeplane.protocol.roles import (
    ROLE_BROKER,
    ROLE_DRIFT,
    ROLE_FEED,
    ROLE_JOURNAL,
    ROLE_RISK,
    ROLE_TELEMETRY,
    ROLE_VENUE,
    is_strategy_role,
    strategy_name,
)

if TYPE_CHECKING:
    from tradeplane.supervisor.supervisor import Supervisor


def build_status(sup: Supervisor) -> dict[str, Any]:
    now = sup.clock.monotonic()  # every figure here is a duration; times shown are recorded ones
    children = sup.core.children
    feed = children[ROLE_FEED].last_heartbeat if ROLE_FEED in children else {}
    strategies = {
        strategy_name(role): c.last_heartbeat
        for role, c in children.items()
        if is_strategy_role(role)
    }
    broker = children[ROLE_BROKER].last_heartbeat if ROLE_BROKER in children else {}
    journal = children[ROLE_JOURNAL].last_heartbeat if ROLE_JOURNAL in children else {}
    telemetry = children[ROLE_TELEMETRY].last_heartbeat if ROLE_TELEMETRY in children else {}
    return {
        "deployment": sup.deployment,
        "run_id": sup.run_id,
        "mode": sup.cfg.deployment.mode.value,
        "venue": sup.cfg.venue.kind,
        "state_dir": str(sup.cfg.deployment.resolved_state_dir()),
        "phase": sup.core.phase.value,
        "health": sup.reading.health.value,
        "reason": sup.core.failure or sup.reading.reason,
        "last_bar_age_s": sup.reading.last_bar_age_s,
        "uptime_s": now - sup.started_mono,
        # Set by an instance that Ray restarted: when it re-attached and first ticked after.
        "reattached": None
        if sup.reattached_ts is None
        else {"ts": sup.reattached_ts, "first_tick_ts": sup.first_tick_ts},
        # Which instance acts, in which term, and the standby watching it (None in unit runs).
        "supervisor": sup.succession_status(),
        **sup.placer.status(),
        "recovery": recovery_status(sup, now),
        "children": {
            role: {
                "state": c.state.value,
                "restarts": c.restarts,
                "attempts": sup.core.attempts(role, now),
                "heartbeat_age_s": None
                if c.last_heartbeat_mono is None
                else now - c.last_heartbeat_mono,
                "last_error": c.last_error,
            }
            for role, c in children.items()
        },
        "feed": {
            k: feed.get(k)
            for k in ("bars", "rejected_bars", "next_ts", "inflight", "lagging_ticks", "outbox")
        },
        "broker": {
            k: broker.get(k)
            for k in (
                "connected",
                "resyncing",
                "blocked_by_resync",
                "rejected_venue_messages",
                "orders",
                "open_orders",
                "submits",
                "duplicates_blocked",
                "tick_to_order_ms",
                "venue_errors",
                "last_error",
                "credentials",  # which were found on the broker's node and where, not values
            )
        },
        "risk": {
            k: children[ROLE_RISK].last_heartbeat.get(k)
            for k in (
                "approved",
                "denied",
                "recent_denials",
                "risk",
                "kill_switch_actions",
                "process",
            )
        },
        "reconciliation": sup.recoverer.reconciliation,
        "journal": {
            k: journal.get(k) for k in ("last_seq", "paths", "last_commit_ms", "max_commit_ms")
        }
        | {"identity": sup.identity.status()},
        "telemetry": {
            k: telemetry.get(k)
            for k in (
                "metrics_endpoint",
                "metrics_error",
                "metrics_note",
                "traces_exporter",
                "endpoint",
                "sampling_ratio",
                "queued_spans",
                "exported_spans",
                "dropped_spans",
                "export_failures",
                "last_export_error",
                "alerts",
            )
        }
        if ROLE_TELEMETRY in children
        else None,
        "drift": drift_status(children[ROLE_DRIFT].last_heartbeat)
        if ROLE_DRIFT in children
        else None,
        "strategies": strategies,
        "standbys": sup.standbys.status(),
        "restarts": list(sup.core.restart_log),
        "health_history": [
            {"from": h.previous.value, "to": h.current.value, "reason": h.reason, "ts": h.ts}
            for h in sup.core.health.history[-10:]
        ],
    }


DRIFT_FIELDS = (
    "opening",
    "last_row",
    "return_drift_pct",
    "tracking_error_pct",
    "fill_slippage_bps",
    "shortfall_vs_backtest",
    "active_alerts",
    "alerts_journaled",
    "note",
    "last_error",
)


def drift_status(heartbeat: dict[str, Any]) -> dict[str, Any]:
    """What the drift tracker last reported (``[drift]``): the total's figures and the alerts
    over their thresholds now."""
    return {k: heartbeat.get(k) for k in DRIFT_FIELDS}


def recovery_status(sup: Supervisor, now: float) -> dict[str, Any]:
    """What recovery is doing: idle, recovering (queued or running), exhausted; attempts per
    target inside the window, against the budget."""
    core, cfg = sup.core, sup.cfg.supervisor
    if core.exhausted is not None:
        state = "exhausted"
    elif core.in_progress or core.queue:
        state = "recovering"
    else:
        state = "idle"
    targets = {*core.policy.targets(), *core.queue}
    return {
        "state": state,
        "auto_recover": cfg.auto_recover,
        "in_progress": ", ".join(sorted(core.in_progress)) or None,
        "queued": sorted(core.queue),
        "attempts": {t: core.attempts(t, now) for t in sorted(targets)},
        "max_recovery_attempts": cfg.max_recovery_attempts,
        "strategy_max_restarts": cfg.strategy_max_restarts,
        "recovery_window_s": cfg.recovery_window_s,
        "suspended": list(core.suspended()),
        "exhausted": None if core.exhausted is None else core.exhausted.reason,
        "feed_silence_s": core.feed_silence_s,
        "faults": {
            role: core.children[role].last_heartbeat.get("faults")
            for role in (ROLE_FEED, ROLE_VENUE)
            if role in core.children and core.children[role].last_heartbeat.get("faults")
        },
    }
