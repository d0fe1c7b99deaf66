"""Shipping spans through the SDK's exporters: conversion, the bounded queue, exporter choice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

from tradeplane.config.telemetry import TelemetryConfig
from tradeplane.telemetry.export import (
    Resources,
    ShipResult,
    SpanShipper,
    make_exporter,
    node_export_headers,
    otlp_headers,
    to_readable,
)
from tradeplane.telemetry.model import SpanEvent, TraceSpan

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT = "00f067aa0ba902b7"
CHILD = "b7ad6b7169203331"
T0 = 1_700_000_000.0
NS = 1_000_000_000


def ns(ts: float) -> Any:
    """Float seconds near 1.7e9 carry ~0.2 µs; nanoseconds agree to well under a microsecond."""
    return pytest.approx(round(ts * 1_000_000) * 1000, abs=1000)


def span(seq: int | None, component: str = "broker", name: str = "broker.submit") -> TraceSpan:
    return TraceSpan(
        trace_id=TRACE,
        span_id=f"{seq or 0:016x}" if seq else CHILD,
        parent_span_id=ROOT,
        name=f"{name}#{seq}",
        component=component,
        start_ts=T0,
        end_ts=T0 + 0.001,
        journal_seq=seq,
    )


class FakeExporter(SpanExporter):
    """Records the batches it took; can be told to refuse them or to raise."""

    def __init__(self) -> None:
        self.batches: list[list[ReadableSpan]] = []
        self.calls = 0
        self.result = SpanExportResult.SUCCESS
        self.error: Exception | None = None
        self.shutdown_error: Exception | None = None
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.result is SpanExportResult.SUCCESS:
            self.batches.append(list(spans))
        return self.result

    def shutdown(self) -> None:
        self.shut_down = True
        if self.shutdown_error is not None:
            raise self.shutdown_error

    def names(self) -> list[list[str]]:
        return [[s.name for s in batch] for batch in self.batches]


def shipper(
    exporter: SpanExporter, *, batch_spans: int = 2, max_queue_spans: int = 100
) -> SpanShipper:
    return SpanShipper(
        exporter,
        Resources("tradeplane", "demo"),
        batch_spans=batch_spans,
        max_queue_spans=max_queue_spans,
    )


# -- to_readable ---------------------------------------------------------------------------------


def test_to_readable_when_child_span_then_ids_parent_times_and_attributes() -> None:
    ours = TraceSpan(
        trace_id=TRACE,
        span_id=CHILD,
        parent_span_id=ROOT,
        name="broker.submit",
        component="broker",
        start_ts=T0 + 0.25,
        end_ts=T0 + 0.5,
        attributes={"tradeplane.client_order_id": "c1", "tradeplane.quantity": 2.0},
        events=(SpanEvent("order_denied", T0 + 0.375, {"tradeplane.reason": "max"}),),
        status="error",
        status_message="insufficient balance",
        kind="client",
        journal_seq=7,
    )

    rs = to_readable(ours, Resources("tradeplane", "demo")("broker"))

    assert rs.name == "broker.submit"
    assert rs.context is not None and rs.parent is not None
    assert rs.context.trace_id == int(TRACE, 16)
    assert rs.context.span_id == int(CHILD, 16)
    assert rs.context.trace_flags.sampled
    assert not rs.context.is_remote
    assert rs.parent.trace_id == int(TRACE, 16)
    assert rs.parent.span_id == int(ROOT, 16)
    assert rs.start_time == ns(T0 + 0.25)
    assert rs.end_time == ns(T0 + 0.5)
    assert dict(rs.attributes or {}) == {
        "tradeplane.client_order_id": "c1",
        "tradeplane.quantity": 2.0,
        "tradeplane.journal_seq": 7,
    }
    assert rs.status.status_code is StatusCode.ERROR
    assert rs.status.description == "insufficient balance"
    assert rs.kind is SpanKind.CLIENT
    [event] = rs.events
    assert event.name == "order_denied"
    assert event.timestamp == ns(T0 + 0.375)
    assert dict(event.attributes or {}) == {"tradeplane.reason": "max"}
    assert rs.resource.attributes["service.name"] == "tradeplane-broker"
    assert rs.resource.attributes["tradeplane.deployment"] == "demo"
    assert rs.instrumentation_scope is not None
    assert rs.instrumentation_scope.name == "tradeplane"


def test_to_readable_when_root_span_without_seq_then_no_parent_and_no_seq_attribute() -> None:
    ours = TraceSpan(TRACE, ROOT, None, "strategy.intent", "strategy", T0, T0, kind="producer")

    rs = to_readable(ours, Resources("paper", "demo")("strategy"))

    assert rs.parent is None
    assert "tradeplane.journal_seq" not in (rs.attributes or {})
    assert rs.status.status_code is StatusCode.UNSET
    assert rs.kind is SpanKind.PRODUCER
    assert rs.start_time == rs.end_time == ns(T0)
    assert rs.resource.attributes["service.name"] == "paper-strategy"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("internal", SpanKind.INTERNAL),
        ("server", SpanKind.SERVER),
        ("client", SpanKind.CLIENT),
        ("producer", SpanKind.PRODUCER),
        ("consumer", SpanKind.CONSUMER),
    ],
)
def test_to_readable_when_kind_given_then_sdk_kind(kind: Any, expected: SpanKind) -> None:
    ours = TraceSpan(TRACE, CHILD, ROOT, "x", "venue", T0, T0, kind=kind, status="ok")

    rs = to_readable(ours, Resources("tradeplane", "demo")("venue"))

    assert rs.kind is expected
    assert rs.status.status_code is StatusCode.OK


def test_resources_when_asked_twice_then_same_resource_per_component() -> None:
    resources = Resources("tradeplane", "demo")

    assert resources("broker") is resources("broker")
    assert resources("risk").attributes["service.name"] == "tradeplane-risk"


# -- SpanShipper ---------------------------------------------------------------------------------


def test_ship_when_queue_longer_than_batch_then_batches_in_order() -> None:
    exporter = FakeExporter()
    s = shipper(exporter, batch_spans=2)
    s.add(span(i) for i in range(1, 6))

    results = [s.ship_once() for _ in range(3)]

    assert results == [ShipResult(2, False), ShipResult(2, False), ShipResult(1, False)]
    assert exporter.names() == [
        ["broker.submit#1", "broker.submit#2"],
        ["broker.submit#3", "broker.submit#4"],
        ["broker.submit#5"],
    ]
    assert s.exported == 5
    assert len(s) == 0
    assert s.failures == 0


def test_ship_when_queue_empty_then_no_export_call() -> None:
    exporter = FakeExporter()
    s = shipper(exporter)

    assert s.ship_once() == ShipResult(0, False)
    assert exporter.calls == 0


def test_ship_when_batch_spans_components_then_each_span_gets_its_service() -> None:
    exporter = FakeExporter()
    s = shipper(exporter, batch_spans=10)
    s.add([span(1, "strategy"), span(2, "risk"), span(3, "venue")])

    s.ship_once()

    [batch] = exporter.batches
    assert [r.resource.attributes["service.name"] for r in batch] == [
        "tradeplane-strategy",
        "tradeplane-risk",
        "tradeplane-venue",
    ]
    assert [r.context.span_id for r in batch if r.context] == [1, 2, 3]


def test_ship_when_export_fails_then_spans_stay_queued_in_order_and_failure_counted() -> None:
    exporter = FakeExporter()
    exporter.result = SpanExportResult.FAILURE
    s = shipper(exporter, batch_spans=2)
    s.add(span(i) for i in range(1, 4))

    result = s.ship_once()

    assert result.failed and result.exported == 0
    assert result.error == "collector refused or timed out"
    assert s.failures == 1 and s.last_error == result.error
    assert len(s) == 3 and s.oldest_seq() == 1 and s.exported == 0

    exporter.result = SpanExportResult.SUCCESS
    assert s.ship_once() == ShipResult(2, False)
    assert s.ship_once() == ShipResult(1, False)
    assert exporter.names() == [["broker.submit#1", "broker.submit#2"], ["broker.submit#3"]]
    assert s.failures == 1 and s.exported == 3


def test_ship_when_exporter_raises_then_caught_counted_and_spans_kept() -> None:
    exporter = FakeExporter()
    exporter.error = RuntimeError("boom")
    s = shipper(exporter)
    s.add([span(1), span(2)])

    result = s.ship_once()

    assert result == ShipResult(0, True, "RuntimeError: boom")
    assert s.failures == 1 and s.last_error == "RuntimeError: boom"
    assert len(s) == 2 and s.oldest_seq() == 1

    exporter.error = None
    assert s.ship_once() == ShipResult(2, False)


def test_add_when_beyond_max_queue_then_oldest_dropped_and_counted() -> None:
    s = shipper(FakeExporter(), max_queue_spans=3)

    assert s.add([span(1), span(2)]) == 0
    assert s.add([span(3), span(4), span(5)]) == 2
    assert s.add([span(6)]) == 1

    assert s.dropped == 3
    assert len(s) == 3
    assert s.oldest_seq() == 4


def test_add_when_one_batch_exceeds_max_queue_then_only_newest_kept() -> None:
    exporter = FakeExporter()
    s = shipper(exporter, batch_spans=10, max_queue_spans=2)

    assert s.add(span(i) for i in range(1, 6)) == 3

    s.ship_once()
    assert exporter.names() == [["broker.submit#4", "broker.submit#5"]]


def test_oldest_seq_when_empty_then_none_and_spans_without_seq_are_passed_over() -> None:
    s = shipper(FakeExporter())
    assert s.oldest_seq() is None

    s.add([span(None), span(9), span(4)])

    assert s.oldest_seq() == 9


def test_shutdown_when_exporter_raises_then_caught() -> None:
    exporter = FakeExporter()
    exporter.shutdown_error = RuntimeError("stuck")

    shipper(exporter).shutdown()

    assert exporter.shut_down


# -- make_exporter -------------------------------------------------------------------------------


def test_make_exporter_when_none_then_none() -> None:
    assert make_exporter(TelemetryConfig(traces_exporter="none")) is None


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("console", ConsoleSpanExporter),
        ("otlp-grpc", GrpcSpanExporter),
        ("otlp-http", HttpSpanExporter),
    ],
)
def test_make_exporter_when_kind_given_then_that_sdk_exporter(
    kind: Any, expected: type[SpanExporter]
) -> None:
    exporter = make_exporter(
        TelemetryConfig(traces_exporter=kind, otlp_endpoint="http://127.0.0.1:1")
    )
    try:
        assert type(exporter) is expected
    finally:
        if exporter is not None:
            exporter.shutdown()


# -- OTLP headers (a credential, from the telemetry actor's node) -------------------------------

API_KEY = "k3y-Secret/+value"


def test_otlp_headers_when_traces_variable_set_then_it_wins_over_general() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=general",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "X-Api-Key=traces,x-team=ops",
    }
    assert otlp_headers(env) == {"x-api-key": "traces", "x-team": "ops"}
    assert otlp_headers({"OTEL_EXPORTER_OTLP_HEADERS": "a=1, b=x%3Dy"}) == {"a": "1", "b": "x=y"}
    assert otlp_headers({"OTEL_EXPORTER_OTLP_HEADERS": "  "}) == {}


@pytest.mark.parametrize("kind", ["otlp-grpc", "otlp-http"])
def test_make_exporter_when_headers_given_then_each_request_carries_them(kind: Any) -> None:
    from tests.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as rx:
        url = rx.grpc_url if kind == "otlp-grpc" else rx.http_url
        exporter = make_exporter(
            TelemetryConfig(traces_exporter=kind, otlp_endpoint=url),
            otlp_headers({"OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={API_KEY}"}),
        )
        assert exporter is not None
        try:
            shipper = SpanShipper(
                exporter, Resources("svc", "demo"), batch_spans=10, max_queue_spans=10
            )
            shipper.add([span(1)])
            assert shipper.ship_once() == ShipResult(1, False)
        finally:
            exporter.shutdown()
        assert rx.request_headers and rx.request_headers[0].get("x-api-key") == API_KEY


def test_telemetry_config_never_carries_otlp_headers() -> None:
    from tradeplane.config.env import OverrideVars

    env = {"OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={API_KEY}"}
    assert API_KEY not in repr(OverrideVars.of(env).by_variable())
    assert not any("HEADERS" in str(f.alias) for f in OverrideVars.model_fields.values())


def test_node_export_headers_when_in_state_dir_env_then_read_and_redacted(
    tmp_path: Any,
) -> None:
    from tradeplane.core.redact import redact

    (tmp_path / ".env").write_text(f"OTEL_EXPORTER_OTLP_HEADERS=x-api-key={API_KEY}\n")
    assert node_export_headers(tmp_path, {}) == {"x-api-key": API_KEY}
    assert API_KEY not in redact(f"collector said: bad key {API_KEY}")
    # The node's environment wins over the state dir's file.
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=from-env"}
    assert node_export_headers(tmp_path, env) == {"x-api-key": "from-env"}


def test_node_export_headers_when_none_anywhere_then_empty(tmp_path: Any) -> None:
    assert node_export_headers(tmp_path, {}) == {}


def test_resources_of_two_deployments_differ_by_service_namespace() -> None:
    demo, prod = (
        Resources("tradeplane", "demo")("broker"),
        Resources("tradeplane", "prod")("broker"),
    )
    assert demo.attributes["service.namespace"] == "demo"
    assert prod.attributes["service.namespace"] == "prod"
    assert demo.attributes["tradeplane.deployment"] == "demo"
