"""Counters derived from the journal equal what the journal holds, seeded once then counted on."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.journal.factories import (
    DEPLOYMENT,
    T0,
    denied,
    filled,
    intent,
    rec,
    status,
    submitting,
)
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.records import JournalRecord
from tradeplane.journal.store import JournalStore
from tradeplane.telemetry.journal_metrics import JournalCounters
from tradeplane.telemetry.metrics import ActorMetrics

Key = tuple[str, tuple[tuple[str, str], ...]]
BASE_LABELS = {"component", "deployment"}


def fill(n: int, fill_id: str, quantity: float, *, strategy: str, order_status: str) -> Any:
    """A fill line as the broker writes it: the order's fields (symbol too) and the fill."""
    r = filled(
        n,
        fill_id,
        quantity,
        100.0,
        cumulative=quantity,
        avg=100.0,
        order_status=order_status,
        strategy=strategy,
        symbol="ETH-USDT" if strategy == "s2" else "BTC-USDT",
    )
    return dataclasses.replace(r, data={**r.data, "symbol": r.data["fill"]["symbol"]})


def supervisor(event_id: str, kind: str, **data: Any) -> Any:
    return rec(event_id, kind, data, ts=T0 + 10)


def first_batch() -> list[JournalRecord]:
    return [
        intent(1, strategy="s1"),
        submitting(1, strategy="s1"),
        status(1, "order_submitted", strategy="s1"),
        status(1, "order_accepted", strategy="s1"),
        fill(1, "f1", 1.0, strategy="s1", order_status="partially_filled"),
        intent(2, strategy="s1"),
        denied(2, "max_order_value", strategy="s1"),
        intent(3, strategy="s2"),
        denied(3, "stale_data", strategy="s2"),
        supervisor("ra1", "recovery_attempt", target="broker", attempt=1),
        supervisor("rs1", "recovery_succeeded", target="broker", attempt=1, took_s=0.5),
        supervisor("h1", "health_changed", component="deployment", health="degraded"),
    ]


def second_batch() -> list[JournalRecord]:
    return [
        fill(1, "f2", 1.0, strategy="s1", order_status="filled"),
        intent(4, strategy="s2"),
        submitting(4, strategy="s2"),
        status(4, "order_submitted", strategy="s2"),
        fill(4, "f4", 2.0, strategy="s2", order_status="filled"),
        intent(5, strategy="s1"),
        denied(5, "max_order_value", strategy="s1"),
        intent(6, strategy="s2"),
        status(6, "order_rejected", strategy="s2", reason="post-only"),
        supervisor("ra2", "recovery_attempt", target="feed", attempt=1),
        supervisor("rf2", "recovery_failed", target="feed", attempt=1, error="boom"),
        supervisor("ra3", "recovery_attempt", target="feed", attempt=2),
        supervisor("rs3", "recovery_succeeded", target="feed", attempt=2, took_s=0.2),
        supervisor("h2", "health_changed", component="deployment", health="healthy"),
    ]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def metrics() -> Iterator[ActorMetrics]:
    m = ActorMetrics("telemetry", "dep")
    yield m
    m.shutdown()


def write(state_dir: Path, *batches: list[JournalRecord]) -> list[int]:
    """Commit each batch; returns the journal's last seq after each one."""
    ends: list[int] = []
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        for batch in batches:
            store.commit(batch)
            ends.append(store.last_seq)
    return ends


def counter_points(metrics: ActorMetrics) -> dict[Key, float]:
    out: dict[Key, float] = {}
    for p in metrics.snapshot():
        if p.kind != "counter" or p.name.startswith("telemetry_"):
            continue
        labels = tuple((k, v) for k, v in p.labels if k not in BASE_LABELS)
        assert p.value is not None
        if p.value:
            out[(p.name, labels)] = p.value
    return out


def journal_counts(events: list[dict[str, Any]]) -> dict[Key, float]:
    """The same counts, computed line by line straight from the journal."""
    c: Counter[Key] = Counter()
    for e in events:
        kind, data = e["kind"], e["data"]
        if kind == "intent":
            c[("intents", (("strategy", e["strategy"] or ""),))] += 1
        if kind == "order_denied":
            c[("risk_denials", (("reason", data.get("reason") or ""),))] += 1
        if kind.startswith("order_") and kind != "order_denied":
            c[("order_events", (("event", kind.removeprefix("order_")),))] += 1
        if kind == "order_filled":
            labels = (("strategy", e["strategy"] or ""), ("symbol", data.get("symbol") or ""))
            c[("fills", labels)] += 1
        if kind == "recovery_attempt":
            c[("recovery_attempts", (("target", data["target"]),))] += 1
        if kind in ("recovery_succeeded", "recovery_failed", "recovery_exhausted"):
            outcome = kind.removeprefix("recovery_")
            c[("recovery_results", (("outcome", outcome), ("target", data["target"])))] += 1
        if kind == "health_changed":
            c[("health_changes", (("health", data["health"]),))] += 1
    return {k: float(v) for k, v in c.items()}


def test_seed_then_count_later_events_then_counters_equal_the_journal(
    state_dir: Path, metrics: ActorMetrics
) -> None:
    seeded_to, _ = write(state_dir, first_batch(), second_batch())
    counters = JournalCounters(metrics)

    with JournalReader.open(state_dir) as reader:
        counters.seed(reader, seeded_to)
        counters.count(reader.events(since_seq=seeded_to))
        everything = reader.events()

    assert counter_points(metrics) == journal_counts(everything)


def test_seed_then_counters_hold_only_lines_up_to_the_seed_seq(
    state_dir: Path, metrics: ActorMetrics
) -> None:
    seeded_to, _ = write(state_dir, first_batch(), second_batch())
    counters = JournalCounters(metrics)

    with JournalReader.open(state_dir) as reader:
        counters.seed(reader, seeded_to)
        up_to_seed = reader.events(limit=seeded_to)

    assert [e["seq"] for e in up_to_seed] == list(range(1, seeded_to + 1))
    assert counter_points(metrics) == journal_counts(up_to_seed)


def test_seed_then_known_figures(state_dir: Path, metrics: ActorMetrics) -> None:
    seeded_to, _ = write(state_dir, first_batch(), second_batch())
    counters = JournalCounters(metrics)

    with JournalReader.open(state_dir) as reader:
        counters.seed(reader, seeded_to)
        counters.count(reader.events(since_seq=seeded_to))

    points = counter_points(metrics)
    assert points[("intents", (("strategy", "s1"),))] == 3
    assert points[("intents", (("strategy", "s2"),))] == 3
    assert points[("risk_denials", (("reason", "max_order_value"),))] == 2
    assert points[("risk_denials", (("reason", "stale_data"),))] == 1
    assert points[("fills", (("strategy", "s1"), ("symbol", "BTC-USDT")))] == 2
    assert points[("fills", (("strategy", "s2"), ("symbol", "ETH-USDT")))] == 1
    assert points[("order_events", (("event", "filled"),))] == 3
    assert points[("order_events", (("event", "submitting"),))] == 2
    assert points[("order_events", (("event", "rejected"),))] == 1
    assert points[("recovery_attempts", (("target", "broker"),))] == 1
    assert points[("recovery_attempts", (("target", "feed"),))] == 2
    assert points[("recovery_results", (("outcome", "succeeded"), ("target", "broker")))] == 1
    assert points[("recovery_results", (("outcome", "succeeded"), ("target", "feed")))] == 1
    assert points[("recovery_results", (("outcome", "failed"), ("target", "feed")))] == 1
    assert points[("health_changes", (("health", "healthy"),))] == 1


def test_seed_of_everything_then_same_as_counting_every_line(
    state_dir: Path, metrics: ActorMetrics
) -> None:
    _, last = write(state_dir, first_batch(), second_batch())
    counted = ActorMetrics("telemetry", "dep")
    try:
        with JournalReader.open(state_dir) as reader:
            JournalCounters(metrics).seed(reader, last)
            JournalCounters(counted).count(reader.events())

        assert counter_points(metrics) == counter_points(counted)
    finally:
        counted.shutdown()


def test_seed_at_zero_then_count_everything_then_counters_equal_the_journal(
    state_dir: Path, metrics: ActorMetrics
) -> None:
    write(state_dir, first_batch(), second_batch())
    counters = JournalCounters(metrics)

    with JournalReader.open(state_dir) as reader:
        counters.seed(reader, 0)
        assert counter_points(metrics) == {}
        counters.count(reader.events())
        everything = reader.events()

    assert counter_points(metrics) == journal_counts(everything)


def test_count_when_lines_of_other_kinds_then_ignored(metrics: ActorMetrics) -> None:
    counters = JournalCounters(metrics)

    counters.count([{"kind": "note", "data": {}}, {"kind": None}, {"data": {}}])

    assert counter_points(metrics) == {}


def test_span_totals_when_reported_twice_then_counters_grow_by_the_difference(
    metrics: ActorMetrics,
) -> None:
    counters = JournalCounters(metrics)

    counters.spans(exported=10, dropped=0, failures=1)
    counters.spans(exported=25, dropped=3, failures=1)

    values = {p.name: p.value for p in metrics.snapshot() if p.name.startswith("telemetry_")}
    assert values["telemetry_spans_exported"] == 25
    assert values["telemetry_spans_dropped"] == 3
    assert values["telemetry_export_failures"] == 1


def test_span_counters_when_nothing_dropped_yet_then_served_at_zero(metrics: ActorMetrics) -> None:
    JournalCounters(metrics)

    values = {p.name: p.value for p in metrics.snapshot() if p.name.startswith("telemetry_")}
    assert values["telemetry_spans_dropped"] == 0
    assert values["telemetry_spans_exported"] == 0
