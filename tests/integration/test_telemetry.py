"""Traces and metrics of real deployments, received by a real OTLP/gRPC receiver on loopback and
scraped from the real Prometheus endpoint."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import (
    live_status,
    recovery_events,
    running,
    strategy,
    wait_for_kind,
)
from tests.integration.tracing import check_traces, expected_from_journal
from tests.otlp_receiver import OtlpReceiver
from tradeplane.config.models import TradeplaneConfig
from tradeplane.journal.reader import JournalReader
from tradeplane.supervisor.chaos import kill_actor

pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


def traced_config(state: Path, rx: OtlpReceiver, **telemetry: Any) -> TradeplaneConfig:
    """Two strategies: ``flip`` trades small (approved, filled), ``big`` asks for more than
    ``max_order_quantity`` (denied)."""
    return make_config(
        state,
        strategies=[
            strategy("flip", "Flipper", ["AAA", "BBB"], every=1, limit_every=3),
            strategy("big", "Flipper", ["AAA"], every=2, quantity=500),
        ],
        risk={"max_order_quantity": 100},
        telemetry={
            "traces_exporter": "otlp-grpc",
            "otlp_endpoint": rx.grpc_url,
            "export_interval_s": 0.1,
            "metrics_port": 0,
            **telemetry,
        },
    )


def metrics_url(state: Path) -> str:
    with JournalReader.open(state) as j:
        started = j.events(kinds=["telemetry_started"])
    assert started, "telemetry_started not journaled"
    return str(started[-1]["data"]["metrics"])


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def by(samples: list[tuple[dict[str, str], float]], *labels: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for lab, value in samples:
        key = tuple(lab.get(name, "") for name in labels)
        out[key] = out.get(key, 0.0) + value
    return out


def test_demo_run_then_every_filled_and_denied_intent_has_its_trace(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    state = tmp_path / "state"
    with running(traced_config(state, receiver)):
        wait_for_kind(state, "order_filled", 12)
        wait_for_kind(state, "order_denied", 3)
    expected = expected_from_journal(state)
    assert expected.fills and expected.denied
    receiver.wait_for(expected.complete, timeout_s=30)
    check_traces(expected, receiver.spans(), "tradeplane")
    # Export is at least once (a batch whose answer was late is sent again, as check_traces
    # allows): a span is counted once per (trace, span) id.
    distinct = {(s.trace_id, s.span_id): s for s in receiver.spans()}
    names = Counter(s.name for s in distinct.values())
    assert names["supervisor.run"] == 1 and names["supervisor.health"] >= 1


def test_broker_strategy_and_exporter_sigkilled_then_no_finished_intent_loses_a_span(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    state = tmp_path / "state"
    cfg = traced_config(state, receiver)
    with running(cfg):
        wait_for_kind(state, "order_filled", 6)
        for role in ("broker", "strategy/flip", "telemetry"):
            kill_actor(cfg.deployment.name, role, mode="sigkill")
            eventually(
                lambda r=role: "recovery_succeeded" in recovery_events(state).get(r, []),
                timeout_s=60,
                what=f"{role} recovered",
            )
        filled = wait_for_kind(state, "order_filled", 1)
        wait_for_kind(state, "order_filled", filled + 6)
    expected = expected_from_journal(state)
    receiver.wait_for(expected.complete, timeout_s=30)
    check_traces(expected, receiver.spans(), "tradeplane")
    recovery = [s for s in receiver.spans() if s.name == "supervisor.recovery"]
    assert {s.attributes["tradeplane.target"] for s in recovery} >= {"broker", "strategy/flip"}


@pytest.mark.parametrize("restarted", [False, True], ids=["first", "after_sigkill"])
def test_prometheus_endpoint_scraped_then_counters_agree_with_journal(
    tmp_path: Path, restarted: bool
) -> None:
    """``after_sigkill``: the telemetry actor is killed mid-run; the new one seeds its counters
    from the journal, and they still agree with it."""
    state = tmp_path / "state"
    with OtlpReceiver() as rx, running(cfg := traced_config(state, rx)):
        wait_for_kind(state, "order_filled", 8)
        wait_for_kind(state, "order_denied", 2)
        if restarted:
            kill_actor(cfg.deployment.name, "telemetry", mode="sigkill")
            wait_for_kind(state, "telemetry_started", 2)
            eventually(
                lambda: live_status(cfg.deployment.name).get("health") == "ok",
                timeout_s=30,
                what="health ok again after the telemetry restart",
            )
        url = metrics_url(state)
        assert url.startswith("http://127.0.0.1:")
        with JournalReader.open(state) as j:
            orders_before = sum(j.order_counts_by_status().values())
        got = scrape(url)
        with JournalReader.open(state) as j:
            orders_after = sum(j.order_counts_by_status().values())
            upto = int(got["tradeplane_telemetry_counted_seq"][0][1])
            events = [e for e in j.events() if e["seq"] <= upto]
    kinds = Counter(e["kind"] for e in events)
    if restarted:  # the counters were seeded, not counted line by line
        assert kinds["order_filled"] >= 8
    assert by(got["tradeplane_intents_total"], "strategy") == {
        (s,): float(n)
        for s, n in Counter(e["strategy"] for e in events if e["kind"] == "intent").items()
    }
    assert by(got["tradeplane_risk_denials_total"], "reason") == {
        (r,): float(n)
        for r, n in Counter(
            e["data"]["reason"] for e in events if e["kind"] == "order_denied"
        ).items()
    }
    assert sum(v for _, v in got["tradeplane_fills_total"]) == kinds["order_filled"]
    order_events = by(got["tradeplane_order_events_total"], "event")
    assert order_events[("filled",)] == kinds["order_filled"]
    assert order_events[("submitting",)] == kinds["order_submitting"]
    orders = sum(v for _, v in got["tradeplane_orders"])
    assert orders_before <= orders <= orders_after
    # Live metrics from the actors themselves.
    assert sum(v for _, v in got["tradeplane_bars_received_total"]) > 0
    assert got["tradeplane_tick_to_order_seconds_count"][0][1] > 0
    health = {lab["state"]: v for lab, v in got["tradeplane_health_state"]}
    assert sum(health.values()) == 1 and health["ok"] == 1
    ages = {lab["symbol"]: v for lab, v in got["tradeplane_last_bar_age_seconds"]}
    assert set(ages) == {"AAA", "BBB"} and all(0 <= a < 10 for a in ages.values())
    up = {lab["role"]: v for lab, v in got["tradeplane_actor_up"]}
    assert up and all(v == 1 for v in up.values()), up


@pytest.mark.parametrize("fault", ["down", "slow"])
def test_collector_down_or_slow_then_trading_goes_on_and_dropped_spans_are_counted_and_journaled(
    tmp_path: Path, receiver: OtlpReceiver, fault: str
) -> None:
    state = tmp_path / "state"
    if fault == "down":
        receiver.set_unavailable(True)
    else:
        receiver.set_delay(3.0)  # past the export timeout: every call times out
    cfg = traced_config(state, receiver, max_queue_spans=5, export_timeout_s=0.5)
    with running(cfg):
        wait_for_kind(state, "order_filled", 10)
        wait_for_kind(state, "telemetry_spans_dropped", 1)
    with JournalReader.open(state) as j:
        warning = j.events(kinds=["telemetry_spans_dropped"])[0]["data"]
    assert warning["dropped"] > 0 and warning["queue_limit"] == 5
    assert warning["endpoint"] == receiver.grpc_url
    if fault == "down":
        assert receiver.spans() == []


def test_sampling_ratio_zero_then_no_intent_spans_but_context_journaled_and_supervisor_traced(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    state = tmp_path / "state"
    with running(traced_config(state, receiver, sampling_ratio=0.0)):
        wait_for_kind(state, "order_filled", 3)
    receiver.wait_for(lambda spans: any(s.name == "supervisor.run" for s in spans))
    names = {s.name for s in receiver.spans()}
    assert names and all(n.startswith("supervisor.") for n in names), names
    with JournalReader.open(state) as j:
        flags = {e["traceparent"][-2:] for e in j.events(kinds=["intent"])}
        reach = j.counts_by_kind()
    assert flags == {"00"}  # context kept (for `tradeplane trace`), sampled out
    assert reach["order_filled"] >= 3
