"""Which journal events an operator is told about, the JSON each becomes, and the webhook's
delivery state: a bounded, ordered queue with a backoff per try and the journal seq delivered up
to. Pure: no IO, time comes in as arguments (``tradeplane.telemetry.webhook`` does the POSTs).

Delivery is at least once, in journal order. Each event carries its journal ``event_id`` as an
idempotency key, so a receiver that sees one twice (the sender restarted between a POST and
saving its cursor) can drop the second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradeplane.core.redact import REDACTOR
from tradeplane.core.retry import Backoff
from tradeplane.protocol.events import EventKind

SCHEMA = 1

# Journal kind -> the alert's name. health_changed alerts only for the states in HEALTH_ALERTS.
ALERT_KINDS: Mapping[str, str] = {
    EventKind.KILL_SWITCH_ACTIVATED: "kill_switch_tripped",
    EventKind.RECOVERY_EXHAUSTED: "recovery_exhausted",
    EventKind.JOURNAL_LOST: "journal_lost",
    EventKind.DRIFT_ALERT: "drift_alert",
    EventKind.TELEMETRY_SPANS_DROPPED: "spans_dropped",
    EventKind.HEALTH_CHANGED: "health",
}
HEALTH_ALERTS: Mapping[str, str] = {"failed": "health_failed", "feed_silent": "feed_silent"}


@dataclass(frozen=True, slots=True)
class Alert:
    """One event to POST: ``body`` is the JSON document, ``key`` its idempotency key."""

    seq: int
    key: str
    name: str
    body: dict[str, Any]


def _summary(name: str, deployment: str, data: Mapping[str, Any]) -> str:
    match name:
        case "kill_switch_tripped":
            return f"{deployment}: kill switch tripped ({data.get('source')}: {data.get('reason')})"
        case "health_failed" | "feed_silent":
            return f"{deployment}: health {data.get('health')} ({data.get('reason')})"
        case "recovery_exhausted":
            return f"{deployment}: recovery of {data.get('target')} exhausted: {data.get('reason')}"
        case "journal_lost":
            return f"{deployment}: journal lost, trading halted: {data.get('reason')}"
        case "drift_alert":
            return (
                f"{deployment}: strategy {data.get('strategy')} drifts: {data.get('figure')}"
                f" {data.get('value')} over {data.get('threshold')}"
            )
        case _:
            return f"{deployment}: {data.get('dropped')} trace spans dropped"


def alert_of(line: Mapping[str, Any]) -> Alert | None:
    """The alert a journal line makes, or None when an operator is not told about it."""
    kind, data = line.get("kind"), line.get("data")
    name = ALERT_KINDS.get(kind) if isinstance(kind, str) else None
    if name is None or not isinstance(data, dict):
        return None
    if name == "health":
        name = HEALTH_ALERTS.get(str(data.get("health")))
        if name is None:
            return None
    deployment = str(line.get("deployment") or "")
    body = REDACTOR.redact_obj(
        {
            "schema": SCHEMA,
            "event_id": line.get("event_id"),
            "alert": name,
            "kind": kind,
            "deployment": deployment,
            "strategy": line.get("strategy") or data.get("strategy"),
            "seq": line.get("seq"),
            "ts": line.get("ts"),
            "summary": _summary(name, deployment, data),
            "data": data,
        }
    )
    return Alert(int(line.get("seq") or 0), str(line.get("event_id")), name, body)


@dataclass(slots=True)
class Delivery:
    """The webhook's queue and where it stands. ``cursor`` is where it starts: the journal seq
    up to which every alert was delivered, dropped or refused (``resume_at`` of the run before),
    so a restarted sender re-sends at most what was queued, never everything."""

    max_queue: int
    backoff: Backoff
    cursor: int = 0
    queue: deque[Alert] = field(default_factory=deque)
    urgent: deque[Alert] = field(default_factory=deque)
    """Alerts told directly, not read from the journal (``journal_lost``: the journal may never
    come back to hold it); tried before the queue, not part of the cursor."""
    told: set[str] = field(default_factory=set)
    """Keys of the urgent alerts: the journaled copy, if it comes, is not sent again."""
    next_try: float = 0.0
    delivered: int = 0
    dropped: int = 0
    rejected: int = 0
    failures: int = 0
    last_error: str | None = None
    seen: int = field(init=False)
    """The last journal seq offered."""

    def __post_init__(self) -> None:
        self.seen = self.cursor

    def offer(self, lines: Iterable[Mapping[str, Any]]) -> int:
        """Queue the alerts of journal ``lines`` past what was seen (older or repeated lines
        are ignored, so overlapping reads cannot queue one twice); returns how many were
        dropped to stay within ``max_queue`` (the oldest go)."""
        dropped = 0
        for line in lines:
            seq = int(line.get("seq") or 0)
            if seq <= self.seen:
                continue
            self.seen = seq
            alert = alert_of(line)
            if alert is None or alert.key in self.told:
                continue
            if len(self.queue) >= self.max_queue:
                self.queue.popleft()
                if not self.urgent:  # the dropped one was the head: the next starts afresh
                    self._new_head()
                dropped += 1
            self.queue.append(alert)
        self.dropped += dropped
        return dropped

    def tell(self, line: Mapping[str, Any]) -> bool:
        """Queue the alert of a line that is not (yet) in the journal, ahead of the others;
        False when it makes none or was told already."""
        alert = alert_of(line)
        if alert is None or alert.key in self.told:
            return False
        self.told.add(alert.key)
        self.urgent.append(alert)
        return True

    def resume_at(self) -> int:
        """The seq a restarted sender reads on from: before the oldest alert not delivered."""
        return self.queue[0].seq - 1 if self.queue else self.seen

    def due(self, now: float) -> Alert | None:
        """The alert to try now (the oldest), or None: nothing queued, or its next try is later."""
        head = self._head()
        if head is None or now < self.next_try:
            return None
        return head

    def _head(self) -> Alert | None:
        if self.urgent:
            return self.urgent[0]
        return self.queue[0] if self.queue else None

    def wait_s(self, now: float) -> float | None:
        """Seconds until the next try is due; None with nothing queued."""
        return None if self._head() is None else max(0.0, self.next_try - now)

    def sent(self, alert: Alert) -> None:
        """The receiver took ``alert`` (2xx)."""
        if self._pop(alert):
            self.delivered += 1

    def refused(self, alert: Alert, error: str) -> None:
        """The receiver refused ``alert`` for good (a 4xx that a retry cannot fix): it is
        skipped so it does not block the ones behind it, and counted."""
        if self._pop(alert):
            self.rejected += 1
            self.last_error = error

    def failed(self, alert: Alert, error: str, now: float) -> float:
        """A try failed in a way a retry may fix: the same alert again after the backoff's
        next wait (returned). Order is kept: nothing behind it goes first."""
        self.failures += 1
        self.last_error = error
        wait = self.backoff.next()
        self.next_try = now + wait
        return wait

    def _pop(self, alert: Alert) -> bool:
        queue = self.urgent if self.urgent and self.urgent[0] is alert else self.queue
        if not queue or queue[0] is not alert:
            return False  # dropped meanwhile (the queue overflowed during the POST)
        queue.popleft()
        self._new_head()
        return True

    def _new_head(self) -> None:
        self.backoff.reset()
        self.next_try = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "queued": len(self.queue) + len(self.urgent),
            "delivered": self.delivered,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "failures": self.failures,
            "cursor": self.resume_at(),
            "last_error": self.last_error,
        }
