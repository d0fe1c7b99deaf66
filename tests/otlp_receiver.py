"""A real OTLP trace receiver (gRPC + HTTP/protobuf) on loopback, for tests.

In-process::

    with OtlpReceiver() as rx:
        ...  # point an OTLP exporter at rx.grpc_endpoint or rx.http_url + "/v1/traces"
        spans = rx.wait_for(lambda s: len(s) >= 2)

As a separate process (``python tests/otlp_receiver.py --out spans.jsonl``): prints one JSON line
``{"grpc_port": ..., "http_port": ...}`` and appends every received span to ``--out`` as a JSON
line until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

ExportRequest = trace_service_pb2.ExportTraceServiceRequest
ExportResponse = trace_service_pb2.ExportTraceServiceResponse


@dataclasses.dataclass(frozen=True)
class ReceivedSpan:
    """One span as decoded by the receiver (plain Python values only)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str | None
    resource: dict[str, Any] = dataclasses.field(hash=False)
    attributes: dict[str, Any] = dataclasses.field(hash=False)
    events: tuple[tuple[str, int, dict[str, Any]], ...] = dataclasses.field(hash=False)
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    kind: int
    scope: str
    transport: str


def decode_value(value: AnyValue) -> Any:
    """Convert an OTLP ``AnyValue`` into a plain Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [decode_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return getattr(value, which)


def decode_attributes(attrs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: decode_value(kv.value) for kv in attrs}


def decode_request(request: ExportRequest, transport: str) -> list[ReceivedSpan]:
    out: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = decode_attributes(rs.resource.attributes)
        service = resource.get("service.name")
        for ss in rs.scope_spans:
            for sp in ss.spans:
                out.append(
                    ReceivedSpan(
                        trace_id=sp.trace_id.hex(),
                        span_id=sp.span_id.hex(),
                        parent_span_id=sp.parent_span_id.hex() or None,
                        name=sp.name,
                        service=service if isinstance(service, str) else None,
                        resource=resource,
                        attributes=decode_attributes(sp.attributes),
                        events=tuple(
                            (ev.name, ev.time_unix_nano, decode_attributes(ev.attributes))
                            for ev in sp.events
                        ),
                        start_ns=sp.start_time_unix_nano,
                        end_ns=sp.end_time_unix_nano,
                        status_code=int(sp.status.code),
                        status_message=sp.status.message,
                        kind=int(sp.kind),
                        scope=ss.scope.name,
                        transport=transport,
                    )
                )
    return out


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._rx = receiver

    def Export(self, request: ExportRequest, context: grpc.ServicerContext) -> ExportResponse:
        metadata = {k.lower(): str(v) for k, v in context.invocation_metadata()}
        if not self._rx._handle(request, "grpc", metadata):
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver set unavailable")
        return ExportResponse()


class _HttpHandler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr access log
        pass

    def _reply(self, code: int, body: bytes = b"", ctype: str = "application/x-protobuf") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?", 1)[0] != "/v1/traces":
            self._reply(404, b"not found", "text/plain")
            return
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        if ctype != "application/x-protobuf":
            self._reply(415, b"only application/x-protobuf is supported", "text/plain")
            return
        try:
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            request = ExportRequest.FromString(body)
        except Exception as exc:
            self._reply(400, f"bad request: {exc}".encode(), "text/plain")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.server.receiver._handle(request, "http", headers):
            self._reply(200, ExportResponse().SerializeToString())
        else:
            self._reply(503, b"receiver set unavailable", "text/plain")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: OtlpReceiver) -> None:
        super().__init__(("127.0.0.1", 0), _HttpHandler)
        self.receiver = receiver


class OtlpReceiver:
    """OTLP/gRPC and OTLP/HTTP trace receiver on 127.0.0.1 ephemeral ports.

    ``requests`` counts every export request received (accepted or not); ``rejected_requests``
    counts those refused because of ``set_unavailable(True)`` (their spans are dropped).
    """

    def __init__(self, out_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._delay_s = 0.0
        self._unavailable = False
        self._stopping = threading.Event()
        self._out_path = out_path
        self._out: IO[str] | None = None
        self._grpc: grpc.Server | None = None
        self._pool: futures.ThreadPoolExecutor | None = None
        self._http: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self.requests = 0
        self.rejected_requests = 0
        self.request_headers: list[dict[str, str]] = []  # per request: HTTP headers / gRPC metadata
        self.grpc_port = 0
        self.http_port = 0

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> OtlpReceiver:
        if self._grpc is not None:
            raise RuntimeError("OtlpReceiver already started")
        self._stopping.clear()
        if self._out_path is not None:
            self._out = open(self._out_path, "a", encoding="utf-8")  # noqa: SIM115
        self._pool = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-grpc")
        server = grpc.server(self._pool, options=[("grpc.so_reuseport", 0)])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc = server
        self._http = _HttpServer(self)
        self.http_port = int(self._http.server_address[1])
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="otlp-http",
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in set_delay
        if self._grpc is not None:
            self._grpc.stop(grace=0).wait(5)
            self._grpc = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- fault controls ------------------------------------------------------------------------
    def set_delay(self, seconds: float) -> None:
        with self._lock:
            self._delay_s = max(0.0, float(seconds))

    def set_unavailable(self, unavailable: bool) -> None:
        with self._lock:
            self._unavailable = bool(unavailable)

    # -- storage -------------------------------------------------------------------------------
    def _handle(
        self, request: ExportRequest, transport: str, headers: dict[str, str] | None = None
    ) -> bool:
        """Record one export request; False means "answer unavailable"."""
        with self._lock:
            self.requests += 1
            self.request_headers.append(dict(headers or {}))
            delay = self._delay_s
        if delay > 0:
            self._stopping.wait(delay)
        spans = decode_request(request, transport)
        with self._lock:
            if self._unavailable:
                self.rejected_requests += 1
                return False
            self._spans.extend(spans)
            if self._out is not None:
                for span in spans:
                    self._out.write(json.dumps(dataclasses.asdict(span), default=str) + "\n")
                    self._out.flush()
        return True

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def by_trace(self) -> dict[str, list[ReceivedSpan]]:
        out: dict[str, list[ReceivedSpan]] = {}
        for span in self.spans():
            out.setdefault(span.trace_id, []).append(span)
        return out

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout_s: float = 30.0
    ) -> list[ReceivedSpan]:
        """Poll until ``predicate(spans())`` holds; return that snapshot, else AssertionError."""
        deadline = time.monotonic() + timeout_s
        while True:
            snapshot = self.spans()
            if predicate(snapshot):
                return snapshot
            if time.monotonic() >= deadline:
                names = sorted({s.name for s in snapshot})
                raise AssertionError(
                    f"OtlpReceiver: condition not met within {timeout_s}s; have {len(snapshot)} "
                    f"span(s) named {names}; requests={self.requests} "
                    f"rejected={self.rejected_requests}"
                )
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback OTLP trace receiver for tests.")
    parser.add_argument("--out", help="append received spans as JSON lines to this file")
    args = parser.parse_args(argv)
    done = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with OtlpReceiver(out_path=args.out) as rx:
        print(json.dumps({"grpc_port": rx.grpc_port, "http_port": rx.http_port}), flush=True)
        while not done.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
