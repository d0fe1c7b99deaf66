"""Tick-to-order latency as the broker sees it: raw samples for status and the benchmarks, and
the same figure as an OpenTelemetry histogram for the Prometheus endpoint.

The total runs from the feed publishing the bar to the order leaving for the venue (after
``order_submitting`` is durable). Its stages add up to it exactly, so a benchmark can say where
the time goes; the venue call itself follows the total and is kept apart."""

from __future__ import annotations

from collections import deque
from typing import Any

from tradeplane.core.model import SubmitOrder
from tradeplane.telemetry.metrics import ActorMetrics

LATENCY_SAMPLES = 100_000
STAGES = (
    "bar_to_intent",  # feed publishes -> strategy emits (one hop, the strategy's own work)
    "intent_to_approved",  # strategy emits -> risk approves (one hop, queueing, the checks)
    "approved_to_broker",  # risk approves -> broker receives (one hop)
    "journal_commit",  # broker receives -> order_submitting durable (journal round trip, fsync)
    "durable_to_sent",  # durable -> the venue call starts (the halt gate)
)


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


class TickToOrder:
    def __init__(self, metrics: ActorMetrics) -> None:
        self.total_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        # Per stage, in the order of ``STAGES``, ms; they add up to the total.
        self.stages_ms: deque[tuple[float, ...]] = deque(maxlen=LATENCY_SAMPLES)
        # The venue call (request out -> the venue client returned), after the total.
        self.venue_call_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        # When the broker got each order (wall clock), to line a slow stage up with what else
        # ran then (``JournalActor.commit_trace``).
        self.received_ts: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._histogram = metrics.histogram(
            "tick_to_order_seconds",
            "From the bar's arrival to the order leaving for the venue",
            "s",
        )

    def record(self, cmd: SubmitOrder, entered: float, durable: float, sent: float) -> None:
        """An order leaves: ``entered`` when the broker got it, ``durable`` when the journal
        acknowledged its ``order_submitting``, ``sent`` now."""
        intent = cmd.intent
        if intent.bar_recv_ts is None:
            return
        self._histogram.record(sent - intent.bar_recv_ts)
        self.total_ms.append((sent - intent.bar_recv_ts) * 1000.0)
        self.stages_ms.append(
            (
                (intent.ts - intent.bar_recv_ts) * 1000.0,
                (cmd.approved_ts - intent.ts) * 1000.0,
                (entered - cmd.approved_ts) * 1000.0,
                (durable - entered) * 1000.0,
                (sent - durable) * 1000.0,
            )
        )
        self.received_ts.append(entered)

    def record_venue_call(self, sent: float, returned: float) -> None:
        self.venue_call_ms.append((returned - sent) * 1000.0)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.total_ms)
        return {
            "n": len(lat),
            "p50": percentile(lat, 0.50),
            "p95": percentile(lat, 0.95),
            "p99": percentile(lat, 0.99),
        }

    def samples(self, clear: bool = False) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {
            "total_ms": list(self.total_ms),
            "stages": list(STAGES),
            "stages_ms": list(self.stages_ms),
            "venue_call_ms": list(self.venue_call_ms),
            "received_ts": list(self.received_ts),
        }
        if clear:
            self.received_ts.clear()
            self.total_ms.clear()
            self.stages_ms.clear()
            self.venue_call_ms.clear()
        return out
