"""Tick-to-order latency as the broker sees it: raw samples for status and the benchmarks, and
the same figure as an OpenTelemetry histogram for the Prometheus endpoint."""

from __future__ import annotations

from collections import deque
from typing import Any

from tradeplane.core.model import SubmitOrder
from tradeplane.telemetry.metrics import ActorMetrics

LATENCY_SAMPLES = 100_000


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


class TickToOrder:
    def __init__(self, metrics: ActorMetrics) -> None:
        self.total_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        # Per stage (bar->intent, intent->approved, approved->broker, broker->sent), ms.
        self.stages_ms: deque[tuple[float, float, float, float]] = deque(maxlen=LATENCY_SAMPLES)
        self._histogram = metrics.histogram(
            "tick_to_order_seconds",
            "From the bar's arrival to the order leaving for the venue",
            "s",
        )

    def record(self, cmd: SubmitOrder, entered: float, sent: float) -> None:
        """An order leaves: ``entered`` when the broker got it, ``sent`` now."""
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
                (sent - entered) * 1000.0,
            )
        )

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
            "stages_ms": list(self.stages_ms),
        }
        if clear:
            self.total_ms.clear()
            self.stages_ms.clear()
        return out
