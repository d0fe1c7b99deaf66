from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Iterator

import pytest

from tradeplane.telemetry.metrics import ActorMetrics, MetricPoint


@pytest.fixture
def metrics() -> Iterator[ActorMetrics]:
    m = ActorMetrics("risk", "dev")
    yield m
    m.shutdown()


def by_name(points: list[MetricPoint], name: str) -> list[MetricPoint]:
    return [p for p in points if p.name == name]


def test_snapshot_when_counter_added_then_point_with_labels(metrics: ActorMetrics) -> None:
    orders = metrics.counter("orders", "orders sent")
    orders.add(2, {"venue": "paper"})
    orders.add(1, {"venue": "paper"})
    orders.add(5, {"venue": "live"})

    points = {p.label_dict()["venue"]: p for p in by_name(metrics.snapshot(), "orders")}

    assert points["paper"].kind == "counter"
    assert points["paper"].value == 3.0
    assert points["live"].value == 5.0
    assert points["paper"].labels == (
        ("component", "risk"),
        ("deployment", "dev"),
        ("venue", "paper"),
    )
    assert points["paper"].description == "orders sent"
    assert points["paper"].unit == "1"


def test_snapshot_when_taken_twice_then_counter_is_cumulative(metrics: ActorMetrics) -> None:
    metrics.counter("orders", "orders sent").add(2)
    metrics.snapshot()
    metrics.counter("orders", "orders sent").add(3)

    [point] = by_name(metrics.snapshot(), "orders")

    assert point.value == 5.0


def test_counter_when_asked_twice_then_same_instrument(metrics: ActorMetrics) -> None:
    assert metrics.counter("orders", "x") is metrics.counter("orders", "x")
    with pytest.raises(ValueError, match="already a counter"):
        metrics.histogram("orders", "x", "s")


def test_snapshot_when_up_down_counter_then_gauge_point(metrics: ActorMetrics) -> None:
    open_orders = metrics.up_down_counter("open_orders", "open orders")
    open_orders.add(4)
    open_orders.add(-6)

    [point] = by_name(metrics.snapshot(), "open_orders")

    assert point.kind == "gauge"
    assert point.value == -2.0


def test_snapshot_when_gauge_callback_then_each_observation_is_a_point(
    metrics: ActorMetrics,
) -> None:
    metrics.gauge("queue_depth", "queued", "1", lambda: [(3, {"q": "a"}), (7.5, {"q": "b"})])

    points = {p.label_dict()["q"]: p for p in by_name(metrics.snapshot(), "queue_depth")}

    assert points["a"].kind == "gauge"
    assert points["a"].value == 3.0
    assert points["b"].value == 7.5


def test_snapshot_when_gauge_callback_raises_then_other_metrics_still_collected(
    metrics: ActorMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> list[tuple[float, dict[str, str]]]:
        raise RuntimeError("feed gone")

    metrics.counter("orders", "orders sent").add(1)
    metrics.gauge("broken", "always fails", "1", broken)
    metrics.gauge("healthy", "fine", "1", lambda: [(1.0, {})])

    with caplog.at_level(logging.WARNING):
        points = metrics.snapshot()
        again = metrics.snapshot()

    assert {p.name for p in points} == {"orders", "healthy"}
    assert {p.name for p in again} == {"orders", "healthy"}
    assert sum("broken" in r.getMessage() for r in caplog.records) == 1


def test_snapshot_when_gauge_value_not_finite_then_dropped(metrics: ActorMetrics) -> None:
    metrics.gauge("g", "g", "1", lambda: [(math.nan, {"k": "nan"}), (1.0, {"k": "ok"})])

    assert [p.label_dict()["k"] for p in by_name(metrics.snapshot(), "g")] == ["ok"]


def test_snapshot_when_histogram_declared_then_cumulative_buckets() -> None:
    metrics = ActorMetrics("broker", "dev", histogram_boundaries={"latency": [0.01, 0.1, 1.0]})
    try:
        latency = metrics.histogram("latency", "order latency", "s")
        for value in (0.005, 0.05, 0.07, 0.5, 3.0):
            latency.record(value, {"venue": "paper"})

        [point] = by_name(metrics.snapshot(), "latency")
    finally:
        metrics.shutdown()

    assert point.kind == "histogram"
    assert point.unit == "s"
    assert point.buckets == ((0.01, 1), (0.1, 3), (1.0, 4), (math.inf, 5))
    assert point.count == 5
    assert point.sum == pytest.approx(3.625)
    assert point.value is None
    assert point.label_dict() == {"component": "broker", "deployment": "dev", "venue": "paper"}


def test_histogram_when_boundaries_given_late_then_used(metrics: ActorMetrics) -> None:
    metrics.histogram("fill_ratio", "fill ratio", "1", boundaries=[0.5, 1.0]).record(0.7)

    [point] = by_name(metrics.snapshot(), "fill_ratio")

    assert point.buckets == ((0.5, 0), (1.0, 1), (math.inf, 1))


def test_histogram_when_boundaries_not_increasing_then_value_error(
    metrics: ActorMetrics,
) -> None:
    with pytest.raises(ValueError, match="increasing"):
        metrics.histogram("h", "h", "s", boundaries=[1.0, 0.5])
    with pytest.raises(ValueError, match="increasing"):
        ActorMetrics("risk", "dev", histogram_boundaries={"h": [0.1, math.inf]})


def test_snapshot_when_instance_given_then_actor_label_and_resource() -> None:
    metrics = ActorMetrics("strategy", "prod", service_base="tp", instance="s-1")
    try:
        metrics.counter("bars", "bars").add(1, {"component": "spoofed"})
        [point] = metrics.snapshot()
        resource = metrics.resource.attributes
    finally:
        metrics.shutdown()

    assert point.label_dict() == {"actor": "s-1", "component": "strategy", "deployment": "prod"}
    assert resource["service.name"] == "tp-strategy"
    assert resource["tradeplane.deployment"] == "prod"
    assert resource["service.namespace"] == "prod"


def test_snapshot_when_pickled_then_round_trips(metrics: ActorMetrics) -> None:
    metrics.counter("orders", "orders").add(1)
    metrics.histogram("lat", "lat", "s", boundaries=[1.0]).record(0.5)
    points = metrics.snapshot()

    assert pickle.loads(pickle.dumps(points)) == points


def test_snapshot_when_nothing_recorded_or_shut_down_then_empty() -> None:
    metrics = ActorMetrics("risk", "dev")
    assert metrics.snapshot() == []
    metrics.counter("orders", "orders").add(1)
    metrics.shutdown()
    metrics.shutdown()

    assert metrics.snapshot() == []


def test_providers_are_independent_per_actor() -> None:
    a, b = ActorMetrics("risk", "dev"), ActorMetrics("broker", "dev")
    try:
        a.counter("orders", "orders").add(1)
        assert b.snapshot() == []
        assert [p.value for p in a.snapshot()] == [1.0]
    finally:
        a.shutdown()
        b.shutdown()
