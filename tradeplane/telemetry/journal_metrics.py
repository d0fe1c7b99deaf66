"""Counters derived from the journal: what was traded, as the journal says it.

Intents, order events, denials by reason, fills and recovery attempts are counted from journal
lines, not inside the actors that caused them, so they equal the journal by construction and
survive any actor's restart. On start they are seeded with one grouped query per metric; after
that each new line adds to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from tradeplane.protocol.events import EventKind
from tradeplane.telemetry.metrics import ActorMetrics


class _Reader(Protocol):
    def grouped_counts(
        self, kinds: Iterable[str], fields: Iterable[str], upto_seq: int
    ) -> list[tuple[Any, ...]]: ...


@dataclass(frozen=True)
class JournalCounter:
    name: str
    description: str
    kinds: tuple[str, ...]
    fields: tuple[str, ...]
    """Journal line fields (``strategy``, ``data.reason``) that become the labels."""
    labels: tuple[str, ...]
    with_kind: str | None = None
    """Label carrying the event's kind (without its ``order_`` / ``recovery_`` prefix)."""


ORDER_KINDS = (
    EventKind.ORDER_SUBMITTING,
    EventKind.ORDER_SUBMITTED,
    EventKind.ORDER_ACCEPTED,
    EventKind.ORDER_PARTIALLY_FILLED,
    EventKind.ORDER_FILLED,
    EventKind.ORDER_PENDING_CANCEL,
    EventKind.ORDER_CANCELLED,
    EventKind.ORDER_CANCEL_REJECTED,
    EventKind.ORDER_REJECTED,
    EventKind.ORDER_EXPIRED,
    EventKind.ORDER_UNKNOWN,
)

COUNTERS = (
    JournalCounter(
        "intents", "Intents journaled", (EventKind.INTENT,), ("strategy",), ("strategy",)
    ),
    JournalCounter(
        "risk_denials",
        "Intents denied by risk",
        (EventKind.ORDER_DENIED,),
        ("data.reason",),
        ("reason",),
    ),
    JournalCounter(
        "order_events", "Order events journaled, by kind", ORDER_KINDS, (), (), with_kind="event"
    ),
    JournalCounter(
        "fills",
        "Fills journaled",
        (EventKind.ORDER_FILLED,),
        ("strategy", "data.symbol"),
        ("strategy", "symbol"),
    ),
    JournalCounter(
        "recovery_attempts",
        "Recovery attempts started by the supervisor",
        (EventKind.RECOVERY_ATTEMPT,),
        ("data.target",),
        ("target",),
    ),
    JournalCounter(
        "recovery_results",
        "Recovery attempts finished, by outcome",
        (EventKind.RECOVERY_SUCCEEDED, EventKind.RECOVERY_FAILED, EventKind.RECOVERY_EXHAUSTED),
        ("data.target",),
        ("target",),
        with_kind="outcome",
    ),
    JournalCounter(
        "reconciliations",
        "Reconciliations against the venue, by the action taken (none: clean)",
        (EventKind.RECONCILIATION,),
        ("data.action",),
        ("action",),
    ),
    JournalCounter(
        "health_changes",
        "Deployment health changes, by the new state",
        (EventKind.HEALTH_CHANGED,),
        ("data.health",),
        ("health",),
    ),
)


def _field(event: dict[str, Any], name: str) -> Any:
    if name.startswith("data."):
        data = event.get("data")
        return data.get(name[5:]) if isinstance(data, dict) else None
    return event.get(name)


def _label(value: Any) -> str:
    return "" if value is None else str(value)


def _kind_label(kind: str) -> str:
    return kind.removeprefix("order_").removeprefix("recovery_")


class JournalCounters:
    def __init__(self, metrics: ActorMetrics) -> None:
        self._instruments = {c.name: metrics.counter(c.name, c.description) for c in COUNTERS}
        self._by_kind: dict[str, list[JournalCounter]] = {}
        for c in COUNTERS:
            for k in c.kinds:
                self._by_kind.setdefault(k, []).append(c)
        self._spans = {
            "exported": metrics.counter("telemetry_spans_exported", "Spans the collector took"),
            "dropped": metrics.counter(
                "telemetry_spans_dropped", "Spans dropped: the collector was down or slow"
            ),
            "failures": metrics.counter("telemetry_export_failures", "Failed export calls"),
        }
        self._span_totals = {"exported": 0, "dropped": 0, "failures": 0}
        for counter in self._spans.values():
            # Served at 0 from the start: an alert on their increase sees the first drop.
            counter.add(0)

    def _labels(self, c: JournalCounter, kind: str, values: Iterable[Any]) -> dict[str, str]:
        labels = {name: _label(v) for name, v in zip(c.labels, values, strict=True)}
        if c.with_kind:
            labels[c.with_kind] = _kind_label(kind)
        return labels

    def seed(self, reader: _Reader, upto_seq: int) -> None:
        """Count everything the journal holds up to ``upto_seq`` (one grouped query each)."""
        for c in COUNTERS:
            for row in reader.grouped_counts(c.kinds, c.fields, upto_seq):
                kind, *values, n = row
                self._instruments[c.name].add(int(n), self._labels(c, kind, values))

    def count(self, events: Iterable[dict[str, Any]]) -> None:
        for ev in events:
            kind = ev.get("kind")
            if not isinstance(kind, str):
                continue
            for c in self._by_kind.get(kind, ()):
                values = [_field(ev, f) for f in c.fields]
                self._instruments[c.name].add(1, self._labels(c, kind, values))

    def spans(self, exported: int, dropped: int, failures: int) -> None:
        """The shipper's running totals; counters only ever grow by the difference."""
        for key, total in (("exported", exported), ("dropped", dropped), ("failures", failures)):
            fresh = total - self._span_totals[key]
            if fresh > 0:
                self._spans[key].add(fresh)
                self._span_totals[key] = total
