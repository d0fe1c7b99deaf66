"""The span values tradeplane builds from its journal (pure data: no OpenTelemetry SDK, no IO).

A ``TraceSpan`` is finished by construction: it is built from journal records that say when it
started and ended, so it can be exported (OTLP), printed (``tradeplane trace``) or written as
Jaeger JSON from the same value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AttributeValue = str | int | float | bool
SpanStatus = Literal["unset", "ok", "error"]
SpanKind = Literal["internal", "server", "client", "producer", "consumer"]


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """Something that happened at one instant inside a span (a health change, a denial)."""

    name: str
    ts: float
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """One finished span. Ids are lowercase hex (trace 32, span 16); times epoch seconds.

    ``component`` is the actor kind that did the work (``strategy``, ``risk``, ``broker``,
    ``venue``, ``supervisor``); exporters turn it into the service name
    ``{service_name}-{component}``.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    component: str
    start_ts: float
    end_ts: float
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    status: SpanStatus = "unset"
    status_message: str | None = None
    kind: SpanKind = "internal"
    journal_seq: int | None = None
    """The journal line that finished this span (where ``tradeplane trace`` points)."""

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_ts - self.start_ts)


def service_name(base: str, component: str) -> str:
    """The OpenTelemetry ``service.name`` of an actor kind: one service per kind in Jaeger."""
    return f"{base}-{component}"
