"""Turning journal values into span attributes and times (shared by the span builders)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from tradeplane.telemetry.context import TraceContext
from tradeplane.telemetry.model import AttributeValue, SpanKind, TraceSpan

Event = dict[str, Any]


def attr(value: Any) -> AttributeValue | None:
    if value is None:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def attrs(**values: Any) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for key, value in values.items():
        v = attr(value)
        if v is not None:
            out[f"tradeplane.{key}"] = v
    return out


def event_ts(ev: Event) -> float:
    """A journal line's time: ISO-8601 UTC in the line, epoch seconds in records."""
    ts = ev.get("ts")
    if isinstance(ts, str):
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    return float(ts) if ts is not None else 0.0


def first_number(*values: Any) -> float:
    """The first of ``values`` that is a finite number (the last one is the fallback)."""
    for v in values[:-1]:
        n = number(v)
        if n is not None:
            return n
    return float(values[-1])


def number(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def root_span(
    ctx: TraceContext,
    name: str,
    component: str,
    start: float,
    end: float,
    attributes: dict[str, AttributeValue],
    ev: Event,
    kind: SpanKind = "internal",
) -> TraceSpan:
    """A trace's root span (its context's own span id, no parent), never ending before it
    starts, naming the journal line that finished it."""
    return TraceSpan(
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        parent_span_id=None,
        name=name,
        component=component,
        start_ts=min(start, end),
        end_ts=end,
        attributes=attributes,
        kind=kind,
        journal_seq=ev.get("seq"),
    )
