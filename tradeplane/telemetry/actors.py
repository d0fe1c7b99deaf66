"""The metrics each actor kind keeps in-process (served by the telemetry actor's endpoint)."""

from __future__ import annotations

from typing import Any

from tradeplane.telemetry.metrics import ActorMetrics

# Tick-to-order is a few ms on one host, tens when the journal fsyncs on a slow disk.
TICK_TO_ORDER_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


def actor_metrics(cfg: Any, component: str, instance: str | None = None) -> ActorMetrics:
    """``cfg`` is the deployment's ``TradeplaneConfig``."""
    return ActorMetrics(
        component,
        cfg.deployment.name,
        service_base=cfg.telemetry.service_name,
        instance=instance,
        histogram_boundaries={"tick_to_order_seconds": TICK_TO_ORDER_BUCKETS_S},
    )
