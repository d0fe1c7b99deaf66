"""Shipping finished spans to a collector through the OpenTelemetry SDK's exporters.

``SpanShipper`` is the bounded queue between the journal and the collector: spans wait there
while the collector is down or slow; past ``max_queue_spans`` the oldest are dropped and counted
(the telemetry actor journals the count). Export calls are blocking and bounded by
``export_timeout_s``; the actor runs them off its event loop.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.re import parse_env_headers

from tradeplane import __version__
from tradeplane.config.telemetry import TelemetryConfig
from tradeplane.core.redact import install_log_redaction, register_secrets
from tradeplane.telemetry.model import TraceSpan, service_name

log = logging.getLogger("tradeplane.telemetry")
SCOPE = InstrumentationScope("tradeplane", __version__)
_KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
_STATUS = {"unset": StatusCode.UNSET, "ok": StatusCode.OK, "error": StatusCode.ERROR}
_NS = 1_000_000_000


class Resources:
    """One OpenTelemetry resource per actor kind (``service.name`` = ``<base>-<kind>``) and
    deployment: ``service.namespace`` is the deployment, so the services of two deployments on
    one cluster (and one collector) stay apart."""

    def __init__(self, base: str, deployment: str) -> None:
        self.base = base
        self.deployment = deployment
        self._cache: dict[str, Resource] = {}

    def __call__(self, component: str) -> Resource:
        res = self._cache.get(component)
        if res is None:
            res = Resource.create(
                {
                    "service.name": service_name(self.base, component),
                    "service.namespace": self.deployment,
                    "service.version": __version__,
                    "deployment.environment.name": self.deployment,
                    "tradeplane.deployment": self.deployment,
                }
            )
            self._cache[component] = res
        return res


def _ns(ts: float) -> int:
    """Epoch seconds to ns, exact to the microsecond the journal keeps."""
    return round(ts * 1_000_000) * 1000


def to_readable(span: TraceSpan, resource: Resource) -> ReadableSpan:
    """Our finished span as the SDK's ``ReadableSpan``, which every SDK exporter takes."""
    flags = TraceFlags(TraceFlags.SAMPLED)
    ctx = SpanContext(int(span.trace_id, 16), int(span.span_id, 16), False, flags)
    parent = (
        SpanContext(int(span.trace_id, 16), int(span.parent_span_id, 16), False, flags)
        if span.parent_span_id
        else None
    )
    attrs: dict[str, Any] = dict(span.attributes)
    if span.journal_seq is not None:
        attrs["tradeplane.journal_seq"] = span.journal_seq
    return ReadableSpan(
        name=span.name,
        context=ctx,
        parent=parent,
        resource=resource,
        attributes=attrs,
        events=[Event(e.name, dict(e.attributes), _ns(e.ts)) for e in span.events],
        kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
        status=Status(_STATUS[span.status], span.status_message),
        start_time=_ns(span.start_ts),
        end_time=_ns(span.end_ts),
        instrumentation_scope=SCOPE,
    )


HEADER_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
"""Where OTLP export headers come from, the traces-specific one first (OpenTelemetry's rule)."""


def otlp_headers(env: Mapping[str, str]) -> dict[str, str]:
    """The headers sent with every OTLP export (``key=value,key2=value2``, values URL-encoded
    or not), from ``env``. They usually hold a hosted collector's API key, so they are a
    credential: read on the telemetry actor's node, where the exporter is built, and never part
    of the config or of an actor's arguments."""
    for name in HEADER_VARIABLES:
        raw = (env.get(name) or "").strip()
        if raw:
            return dict(parse_env_headers(raw, liberal=True))
    return {}


def node_export_headers(state_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """OTLP export headers on the telemetry actor's node: its environment (the one Ray workers
    inherit from ``ray start`` there) over the state dir's ``.env``. Their values are registered
    with this process's redactor, so no log line or status of the actor carries them."""
    from tradeplane.config.loading import ConfigError, read_dotenv

    try:
        dotenv = read_dotenv(state_dir / ".env")
    except ConfigError as exc:  # spans are not worth a crash loop; the message has no value
        log.warning("OTLP headers: %s ignored: %s", state_dir / ".env", exc)
        dotenv = {}
    headers = otlp_headers({**dotenv, **environ})
    if headers:
        register_secrets(headers.values())
        install_log_redaction()
    return headers


def make_exporter(
    cfg: TelemetryConfig, headers: Mapping[str, str] | None = None
) -> SpanExporter | None:
    """The configured SDK exporter (None for ``none``); its calls never outlast the timeout.
    ``headers`` (``otlp_headers``) go with every OTLP request."""
    kind = cfg.traces_exporter
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter(service_name=cfg.service_name)
    endpoint = cfg.resolved_endpoint()
    if kind == "otlp-grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(
            endpoint=endpoint,
            insecure=endpoint.startswith("http://"),
            headers=dict(headers or {}),
            timeout=cfg.export_timeout_s,
            retryable_error_codes=(),  # we retry ourselves, holding the spans in our queue
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(
        endpoint=endpoint, timeout=cfg.export_timeout_s, headers=dict(headers or {})
    )


@dataclass(frozen=True, slots=True)
class ShipResult:
    exported: int
    failed: bool
    error: str | None = None


class SpanShipper:
    def __init__(
        self,
        exporter: SpanExporter,
        resources: Callable[[str], Resource],
        *,
        batch_spans: int,
        max_queue_spans: int,
    ) -> None:
        self.exporter = exporter
        self.resources = resources
        self.batch_spans = batch_spans
        self.max_queue_spans = max_queue_spans
        self._queue: deque[TraceSpan] = deque()
        self.exported = 0
        self.dropped = 0
        self.failures = 0
        self.last_error: str | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, spans: Iterable[TraceSpan]) -> int:
        """Queue spans; returns how many old ones had to be dropped to stay within bound."""
        self._queue.extend(spans)
        over = len(self._queue) - self.max_queue_spans
        for _ in range(max(0, over)):
            self._queue.popleft()
        self.dropped += max(0, over)
        return max(0, over)

    def oldest_seq(self) -> int | None:
        """Journal seq of the oldest span still waiting (the exporter resumes from there)."""
        for span in self._queue:
            if span.journal_seq is not None:
                return span.journal_seq
        return None

    def ship_once(self) -> ShipResult:
        """Export one batch (blocking, bounded by the exporter's timeout). A failed batch stays
        queued, in order, for the next call."""
        if not self._queue:
            return ShipResult(0, False)
        batch = [self._queue[i] for i in range(min(self.batch_spans, len(self._queue)))]
        error: str | None = None
        try:
            result = self.exporter.export(
                [to_readable(s, self.resources(s.component)) for s in batch]
            )
        except Exception as exc:  # an exporter bug must not end the export loop
            result, error = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        else:
            error = None if result is SpanExportResult.SUCCESS else "collector refused or timed out"
        if result is not SpanExportResult.SUCCESS:
            self.failures += 1
            self.last_error = error
            return ShipResult(0, True, error)
        for _ in batch:
            self._queue.popleft()
        self.exported += len(batch)
        return ShipResult(len(batch), False)

    def shutdown(self) -> None:
        try:
            self.exporter.shutdown()
        except Exception:  # shutting down must not raise out of a stop
            log.exception("span exporter shutdown failed")
