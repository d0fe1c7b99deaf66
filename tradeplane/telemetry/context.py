"""W3C trace context for intents (pure: no OpenTelemetry SDK, no IO).

Every id is derived, not drawn: an intent's trace id is a hash of its deployment and intent id,
and each span's id a hash of the trace id, the span's name and what it is about (the client
order id, the fill id). A replayed intent therefore lands in the same trace, and the exporter can
rebuild any span's parent from the journal alone, after any actor was killed.

The sampling decision is made once, at the root, from the trace id (the same rule as
OpenTelemetry's ``TraceIdRatioBased``), and travels in the ``traceparent`` flags.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

VERSION = "00"
SAMPLED = 0x01
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16
_LOWER_64 = (1 << 64) - 1

# Span names: one trace per intent (DESIGN §6), one per supervisor run.
STRATEGY_INTENT = "strategy.intent"
RISK_FLATTEN = "risk.flatten"
RISK_CHECK = "risk.check"
BROKER_SUBMIT = "broker.submit"
VENUE_ACK = "venue.ack"
BROKER_FILL = "broker.fill"
SUPERVISOR_RUN = "supervisor.run"


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        return f"{VERSION}-{self.trace_id}-{self.span_id}-{SAMPLED if self.sampled else 0:02x}"

    def child(self, name: str, key: str = "") -> TraceContext:
        """The context of this trace's span ``name`` about ``key`` (deterministic)."""
        return TraceContext(self.trace_id, span_id(self.trace_id, name, key), self.sampled)


def parse_traceparent(value: str | None) -> TraceContext | None:
    """A valid W3C ``traceparent`` (version 00) as a context, or None for anything else."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip().lower())
    if m is None:
        return None
    trace, span, flags = m.groups()
    if trace == _INVALID_TRACE or span == _INVALID_SPAN:
        return None
    return TraceContext(trace, span, bool(int(flags, 16) & SAMPLED))


def _hex(raw: str, n: int) -> str:
    digest = hashlib.sha256(raw.encode()).hexdigest()[:n]
    return digest if digest.strip("0") else "1".rjust(n, "0")  # all-zero ids are invalid


def trace_id_for(deployment: str, key: str) -> str:
    """The trace id of an intent (``key`` its intent id) or of a run (``run:<run id>``)."""
    return _hex(f"{deployment}\x1f{key}", 32)


def span_id(trace_id: str, name: str, key: str = "") -> str:
    return _hex(f"{trace_id}\x1f{name}\x1f{key}", 16)


def sampled(trace_id: str, ratio: float) -> bool:
    """OpenTelemetry's ``TraceIdRatioBased`` rule: the lower 64 bits below ratio·2^64."""
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    return (int(trace_id, 16) & _LOWER_64) < round(ratio * (1 << 64))


def intent_context(deployment: str, intent_id: str, *, ratio: float = 1.0) -> TraceContext:
    """The root span of an intent's trace (``strategy.intent``)."""
    trace = trace_id_for(deployment, intent_id)
    return TraceContext(trace, span_id(trace, STRATEGY_INTENT, intent_id), sampled(trace, ratio))


def run_context(deployment: str, run_id: str) -> TraceContext:
    """The root span of a supervisor run's trace (always sampled: it is small)."""
    trace = trace_id_for(deployment, f"run:{run_id}")
    return TraceContext(trace, span_id(trace, SUPERVISOR_RUN, run_id), True)


def risk_check_context(intent_traceparent: str | None, intent_id: str) -> TraceContext | None:
    parent = parse_traceparent(intent_traceparent)
    return parent.child(RISK_CHECK, intent_id) if parent else None


def submit_context(risk_traceparent: str | None, client_order_id: str) -> TraceContext | None:
    parent = parse_traceparent(risk_traceparent)
    return parent.child(BROKER_SUBMIT, client_order_id) if parent else None
