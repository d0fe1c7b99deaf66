"""Every kind of record the journal holds. A writer, a projection, a span builder or a metric that
names a kind names it here, so a typo is an ``AttributeError`` at import, and the journal refuses
a record whose kind is not listed rather than storing what nobody will read.
"""

from __future__ import annotations

from enum import StrEnum

# The journal's state scope of each strategy's snapshot (keyed by strategy name): written by the
# strategy actor, read back by it after a restart and by parity and the report.
STRATEGY_SNAPSHOT_SCOPE = "strategy_snapshot"


class EventKind(StrEnum):
    # -- intents and risk decisions
    INTENT = "intent"
    ORDER_DENIED = "order_denied"
    # -- the order lifecycle (broker); ``order_<status>`` updates the order's status
    ORDER_SUBMITTING = "order_submitting"
    ORDER_SUBMITTED = "order_submitted"
    ORDER_ACCEPTED = "order_accepted"
    ORDER_PARTIALLY_FILLED = "order_partially_filled"
    ORDER_FILLED = "order_filled"
    ORDER_PENDING_CANCEL = "order_pending_cancel"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_CANCEL_REJECTED = "order_cancel_rejected"
    ORDER_REJECTED = "order_rejected"
    ORDER_EXPIRED = "order_expired"
    ORDER_UNKNOWN = "order_unknown"
    ORDER_FILL_DUPLICATE = "order_fill_duplicate"
    CANCEL_ALL_REQUESTED = "cancel_all_requested"
    FLATTEN_REQUESTED = "flatten_requested"
    # -- market data
    BAR = "bar"
    BAR_REJECTED = "bar_rejected"
    BAR_SUMMARY = "bar_summary"
    VENUE_MESSAGE_REJECTED = "venue_message_rejected"
    VENUE_MESSAGES_SUPPRESSED = "venue_messages_suppressed"
    """Rejected venue messages counted but not journaled one by one (past
    ``journal.venue_rejections_per_window`` in one ``journal.venue_rejection_window_s``).
    Payload: ``source``, ``window_s``, ``journaled`` (journaled one by one in that window),
    ``suppressed`` (counted only) and ``reasons`` (suppressed ones by reason)."""
    # -- the safety layer
    KILL_SWITCH_ACTIVATED = "kill_switch_activated"
    KILL_SWITCH_CLEARED = "kill_switch_cleared"
    RISK_DAY_ROLLED_OVER = "risk_day_rolled_over"
    RECONCILIATION = "reconciliation"
    DRIFT_ALERT = "drift_alert"
    """Live performance crossed a ``[drift]`` threshold (raised by the drift tracker). Payload:
    ``strategy`` (a strategy name, or ``"total"``), ``figure`` (what drifted, named as its
    threshold is, e.g. ``"return_drift_pct"``, ``"tracking_error_pct"``,
    ``"fill_slippage_bps"``), ``value`` (the measured figure, in the threshold's unit) and
    ``threshold`` (the configured limit it crossed). A drift alert in the paper deployment's
    last session blocks ``tradeplane promote``."""
    PROMOTION_CHECKED = "promotion_checked"
    """``tradeplane promote`` judged a live config against its paper deployment; journaled in
    the live deployment's state dir whatever the verdict. Payload: ``passed``, ``to``
    (``"live"``), ``live`` and ``paper`` (deployment names), ``live_config`` and
    ``paper_config`` (paths and sha256 of the files), ``strategy_code_hashes`` and ``checks``
    (each ``name``, ``passed``, ``detail``, ``evidence``)."""
    # -- strategies
    STRATEGY_ERROR = "strategy_error"
    STRATEGY_SUSPENDED = "strategy_suspended"
    # -- supervision
    DEPLOYMENT_STARTED = "deployment_started"
    DEPLOYMENT_FAILED = "deployment_failed"
    DEPLOYMENT_STOPPED = "deployment_stopped"
    SUPERVISOR_REATTACHED = "supervisor_reattached"
    FEED_STARTED = "feed_started"
    HEALTH_CHANGED = "health_changed"
    ACTOR_DIED = "actor_died"
    ACTOR_SUSPENDED = "actor_suspended"
    RECOVERY_ATTEMPT = "recovery_attempt"
    RECOVERY_SUCCEEDED = "recovery_succeeded"
    RECOVERY_FAILED = "recovery_failed"
    RECOVERY_EXHAUSTED = "recovery_exhausted"
    JOURNAL_LOST = "journal_lost"
    HALT_FAILED = "halt_failed"
    HALT_SUCCEEDED = "halt_succeeded"
    CANCEL_ALL_FAILED = "cancel_all_failed"
    NODE_LOST = "node_lost"
    STATE_NODE_LOST = "state_node_lost"
    HEAD_UNREACHABLE = "head_unreachable"
    HEAD_REACHABLE = "head_reachable"
    WALL_CLOCK_STEPPED = "wall_clock_stepped"
    FAULT_INJECTED = "fault_injected"
    FAULTS_CLEARED = "faults_cleared"
    # -- telemetry
    TELEMETRY_STARTED = "telemetry_started"
    TELEMETRY_SPANS_DROPPED = "telemetry_spans_dropped"
    TELEMETRY_ENDPOINT_FAILED = "telemetry_endpoint_failed"


class MessageKind(StrEnum):
    """What an ``Envelope`` between actors carries (not journaled as such)."""

    BARS = "bars"
    INTENTS = "intents"


class VenueEventKind(StrEnum):
    """What a venue reports about an order (``VenueEvent.kind``); the broker's core turns each
    into the journal's ``EventKind`` of the order's new status."""

    ORDER_ACCEPTED = "order_accepted"
    ORDER_REJECTED = "order_rejected"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_FILLED = "order_filled"
    ORDER_EXPIRED = "order_expired"
    CANCEL_REJECTED = "cancel_rejected"


KINDS_BY_VALUE: dict[str, EventKind] = {k.value: k for k in EventKind}
"""Every kind by its value: the one lookup of whether a string names a kind."""


def event_kind(value: object) -> EventKind:
    """``value`` as an ``EventKind``; ``ValueError`` naming it when no such kind exists."""
    kind = KINDS_BY_VALUE.get(value) if isinstance(value, str) else None
    if kind is None:
        raise ValueError(f"unknown event kind {value!r}")
    return kind


ORDER_STATUS_KINDS = frozenset(
    {
        EventKind.ORDER_SUBMITTED,
        EventKind.ORDER_ACCEPTED,
        EventKind.ORDER_PARTIALLY_FILLED,
        EventKind.ORDER_PENDING_CANCEL,
        EventKind.ORDER_CANCELLED,
        EventKind.ORDER_REJECTED,
        EventKind.ORDER_EXPIRED,
        EventKind.ORDER_UNKNOWN,
    }
)
"""Kinds that only move an order's status (``order_<status>``); fills and submits have their own
projection, and a refused cancel leaves the status as it was."""
