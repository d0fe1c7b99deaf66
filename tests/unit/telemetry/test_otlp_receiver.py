"""The loopback OTLP receiver, driven by the real OpenTelemetry SDK exporters."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.helpers import eventually
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

SERVICE = "tradeplane-test"
RECEIVER_SCRIPT = Path(__file__).resolve().parents[2] / "otlp_receiver.py"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


def _provider(exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _emit_parent_and_child(provider: TracerProvider) -> tuple[str, str, str]:
    """Emit parent + child spans; return (trace_id, parent_span_id, child_span_id) as hex."""
    tracer = provider.get_tracer("tests.otlp_receiver")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("order.count", 3)
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_attribute("venue", "paper")
            child.set_attribute("price", 101.25)
            child.set_attribute("live", False)
            child.set_attribute("tags", ["a", "b"])
            child.add_event("order.sent", {"qty": 5})
            child.set_status(Status(StatusCode.ERROR, "boom"))
    pctx, cctx = parent.get_span_context(), child.get_span_context()
    return (
        format(pctx.trace_id, "032x"),
        format(pctx.span_id, "016x"),
        format(cctx.span_id, "016x"),
    )


def _assert_parent_child(
    spans: list[ReceivedSpan], ids: tuple[str, str, str], transport: str
) -> None:
    trace_id, parent_id, child_id = ids
    by_name = {s.name: s for s in spans}
    parent, child = by_name["parent"], by_name["child"]
    assert parent.trace_id == child.trace_id == trace_id
    assert len(trace_id) == 32 and trace_id == trace_id.lower()
    assert parent.span_id == parent_id and child.span_id == child_id
    assert parent.parent_span_id is None
    assert child.parent_span_id == parent_id
    assert parent.service == child.service == SERVICE
    assert parent.resource["service.name"] == SERVICE
    assert parent.attributes == {"order.count": 3}
    assert child.attributes == {
        "venue": "paper",
        "price": 101.25,
        "live": False,
        "tags": ["a", "b"],
    }
    assert len(child.events) == 1
    ev_name, ev_time, ev_attrs = child.events[0]
    assert ev_name == "order.sent" and ev_attrs == {"qty": 5}
    assert child.start_ns <= ev_time <= child.end_ns
    assert parent.start_ns <= child.start_ns <= child.end_ns <= parent.end_ns
    assert child.status_code == 2 and child.status_message == "boom"  # STATUS_CODE_ERROR
    assert parent.kind == 2 and child.kind == 3  # SPAN_KIND_SERVER, SPAN_KIND_CLIENT
    assert parent.scope == child.scope == "tests.otlp_receiver"
    assert parent.transport == child.transport == transport


def test_grpc_export_when_sdk_sends_spans_then_received_with_parent_ids(
    receiver: OtlpReceiver,
) -> None:
    provider = _provider(GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True))
    try:
        ids = _emit_parent_and_child(provider)
    finally:
        provider.shutdown()
    spans = receiver.wait_for(lambda s: len(s) >= 2, timeout_s=5)
    _assert_parent_child(spans, ids, "grpc")
    assert receiver.requests == 2 and receiver.rejected_requests == 0
    assert receiver.grpc_url == f"http://{receiver.grpc_endpoint}"


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_http_export_when_sdk_sends_protobuf_then_received_with_parent_ids(
    receiver: OtlpReceiver, compression: Compression
) -> None:
    exporter = HttpSpanExporter(endpoint=receiver.http_url + "/v1/traces", compression=compression)
    provider = _provider(exporter)
    try:
        ids = _emit_parent_and_child(provider)
    finally:
        provider.shutdown()
    spans = receiver.wait_for(lambda s: len(s) >= 2, timeout_s=5)
    _assert_parent_child(spans, ids, "http")


def test_by_trace_when_two_traces_then_grouped_and_clear_empties(receiver: OtlpReceiver) -> None:
    provider = _provider(GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True))
    try:
        first = _emit_parent_and_child(provider)
        second = _emit_parent_and_child(provider)
    finally:
        provider.shutdown()
    receiver.wait_for(lambda s: len(s) >= 4, timeout_s=5)
    grouped = receiver.by_trace()
    assert set(grouped) == {first[0], second[0]}
    assert all(sorted(s.name for s in v) == ["child", "parent"] for v in grouped.values())
    receiver.clear()
    assert receiver.spans() == []


def test_grpc_export_when_unavailable_then_failure_and_nothing_stored(
    receiver: OtlpReceiver,
) -> None:
    receiver.set_unavailable(True)
    exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=1)
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    finished: list[ReadableSpan] = []

    class _Capture(SimpleSpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            finished.append(span)

    provider.add_span_processor(_Capture(exporter))
    try:
        with provider.get_tracer("tests").start_as_current_span("dropped"):
            pass
        assert exporter.export(finished) is SpanExportResult.FAILURE
        assert receiver.rejected_requests >= 1
        assert receiver.spans() == []

        receiver.set_unavailable(False)
        assert exporter.export(finished) is SpanExportResult.SUCCESS
        spans = receiver.wait_for(lambda s: len(s) == 1, timeout_s=5)
        assert spans[0].name == "dropped"
    finally:
        provider.shutdown()


def test_http_export_when_unavailable_then_503_failure_and_nothing_stored(
    receiver: OtlpReceiver,
) -> None:
    receiver.set_unavailable(True)
    exporter = HttpSpanExporter(endpoint=receiver.http_url + "/v1/traces", timeout=1)
    provider = _provider(exporter)
    try:
        _emit_parent_and_child(provider)
    finally:
        provider.shutdown()
    assert receiver.rejected_requests >= 1
    assert receiver.spans() == []


def test_delay_when_set_then_export_answers_late(receiver: OtlpReceiver) -> None:
    receiver.set_delay(0.4)
    provider = _provider(GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True))
    try:
        started = time.monotonic()
        with provider.get_tracer("tests").start_as_current_span("slow"):
            pass
        elapsed = time.monotonic() - started
    finally:
        provider.shutdown()
    assert elapsed >= 0.4
    assert [s.name for s in receiver.wait_for(lambda s: len(s) == 1, timeout_s=5)] == ["slow"]


def test_stop_when_export_is_delayed_then_releases_the_held_request() -> None:
    rx = OtlpReceiver().start()
    rx.set_delay(30)
    exporter = GrpcSpanExporter(endpoint=rx.grpc_endpoint, insecure=True, timeout=2)
    provider = _provider(exporter)
    tracer = provider.get_tracer("tests")

    def _emit() -> None:
        with tracer.start_as_current_span("stuck"):
            pass

    worker = threading.Thread(target=_emit, daemon=True)
    worker.start()
    eventually(lambda: rx.requests >= 1, timeout_s=5, what="export request reached receiver")
    assert rx.spans() == []  # held by the 30 s delay
    rx.stop()
    # stop() woke the held handler rather than leaving it asleep for 30 s (how long stop()
    # takes is measured by bench/promptness.py).
    eventually(
        lambda: [s.name for s in rx.spans()] == ["stuck"],
        timeout_s=10,
        what="held request released",
    )
    worker.join(5)
    provider.shutdown()


def test_wait_for_when_condition_never_met_then_assertion_lists_spans(
    receiver: OtlpReceiver,
) -> None:
    provider = _provider(GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True))
    try:
        with provider.get_tracer("tests").start_as_current_span("only-one"):
            pass
    finally:
        provider.shutdown()
    receiver.wait_for(lambda s: len(s) == 1, timeout_s=5)
    with pytest.raises(AssertionError, match=r"1 span\(s\) named \['only-one'\]"):
        receiver.wait_for(lambda s: len(s) >= 2, timeout_s=0.1)


def test_main_when_run_as_subprocess_then_prints_ports_and_writes_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "spans.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(RECEIVER_SCRIPT), "--out", str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ports = json.loads(proc.stdout.readline())
        assert set(ports) == {"grpc_port", "http_port"}
        endpoint = f"http://127.0.0.1:{ports['http_port']}/v1/traces"
        provider = _provider(HttpSpanExporter(endpoint=endpoint))
        try:
            ids = _emit_parent_and_child(provider)
        finally:
            provider.shutdown()
        lines = eventually(
            lambda: (
                out.exists()
                and len(out.read_text().splitlines()) >= 2
                and out.read_text().splitlines()
            ),
            timeout_s=10,
            what="two spans in --out file",
        )
        records = {r["name"]: r for r in map(json.loads, lines)}
        assert records["child"]["parent_span_id"] == ids[1]
        assert records["child"]["trace_id"] == ids[0]
        assert records["parent"]["service"] == SERVICE
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
