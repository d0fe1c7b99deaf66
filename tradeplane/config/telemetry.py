"""The ``[telemetry]`` config section and the standard OpenTelemetry environment variables that
override it.

The variables are read once, where the config is loaded (the CLI's process), and travel inside
the config to every actor: Ray workers do not inherit the operator's shell environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from tradeplane.config.base import FrozenModel

TracesExporter = Literal["otlp-grpc", "otlp-http", "console", "none"]
DEFAULT_OTLP_ENDPOINT = {"otlp-grpc": "http://127.0.0.1:4317", "otlp-http": "http://127.0.0.1:4318"}


class TelemetryConfig(FrozenModel):
    traces_exporter: TracesExporter = "none"
    """Where spans go: ``otlp-grpc`` (Jaeger and any OTLP collector, port 4317), ``otlp-http``
    (4318), ``console`` (the telemetry actor's log) or ``none``. Trace context is journaled
    either way, so ``tradeplane trace`` works without a collector. Default ``none``;
    ``OTEL_TRACES_EXPORTER`` overrides it."""
    otlp_endpoint: str | None = None
    """Collector base URL. Default ``http://127.0.0.1:4317`` for gRPC, ``http://127.0.0.1:4318``
    for HTTP, where ``/v1/traces`` is always appended (as for ``OTEL_EXPORTER_OTLP_ENDPOINT``,
    which overrides it)."""
    sampling_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of intents traced, decided once per intent from its trace id (OpenTelemetry's
    TraceIdRatioBased rule). Default 1.0; ``OTEL_TRACES_SAMPLER_ARG`` overrides it."""
    service_name: str = Field(default="tradeplane", min_length=1, max_length=100)
    """Base service name: each actor kind reports as ``<service_name>-<kind>``
    (``tradeplane-strategy``, ``tradeplane-broker`` ...). Default ``tradeplane``;
    ``OTEL_SERVICE_NAME`` overrides it."""
    export_timeout_s: float = Field(default=2.0, gt=0, le=30)
    """Longest one export call may take before it counts as failed. Default 2."""
    export_interval_s: float = Field(default=0.25, gt=0, le=60)
    """How often the exporter reads new journal lines. While it finds none the wait doubles,
    up to 2 s (or this, when longer), so an idle deployment's first span after a quiet spell
    leaves up to 2 s later. Default 0.25."""
    export_batch_spans: int = Field(default=512, ge=1, le=100_000)
    """Most spans per export call. Default 512."""
    max_queue_spans: int = Field(default=20_000, ge=1)
    """Spans waiting for a down or slow collector; beyond this the oldest are dropped, counted
    and journaled (``telemetry_spans_dropped``). Default 20,000."""
    metrics_port: int | None = Field(default=9464, ge=0, le=65535)
    """Port of the Prometheus endpoint (``/metrics``); 0 picks a free one, unset turns it off.
    When it is taken (another deployment on the node), the endpoint serves on the port it used
    before, else on a free one; ``tradeplane status`` shows the one in use. Default 9464."""
    metrics_host: str = "127.0.0.1"
    """Address the Prometheus endpoint binds. Default 127.0.0.1 (loopback only)."""

    @field_validator("otlp_endpoint")
    @classmethod
    def _url_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return v.rstrip("/")

    @property
    def enabled(self) -> bool:
        """Whether the deployment runs a telemetry actor at all."""
        return self.traces_exporter != "none" or self.metrics_port is not None

    def resolved_endpoint(self) -> str:
        """The collector URL the exporter talks to (for HTTP, the full ``/v1/traces`` URL)."""
        if self.traces_exporter not in DEFAULT_OTLP_ENDPOINT:
            return ""
        base = self.otlp_endpoint or DEFAULT_OTLP_ENDPOINT[self.traces_exporter]
        # As OTEL_EXPORTER_OTLP_ENDPOINT is specified: the base URL, the signal's path appended.
        return f"{base}/v1/traces" if self.traces_exporter == "otlp-http" else base


_PROTOCOLS = {"grpc": "otlp-grpc", "http/protobuf": "otlp-http"}
_SAMPLERS_ALWAYS = {
    "always_on": 1.0,
    "always_off": 0.0,
    "parentbased_always_on": 1.0,
    "parentbased_always_off": 0.0,
}
_SAMPLERS_RATIO = ("traceidratio", "parentbased_traceidratio")


class EnvError(ValueError):
    """A standard OpenTelemetry variable with a value tradeplane cannot honour."""


def otel_env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``[telemetry]`` fields set by the standard OpenTelemetry variables in ``env``.

    Raises ``EnvError`` naming the variable when a value cannot be honoured."""
    out: dict[str, Any] = {}
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip().lower()
    if protocol and protocol not in _PROTOCOLS:
        raise EnvError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: supported are grpc and http/protobuf"
        )
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        if "," in exporter:
            raise EnvError(f"OTEL_TRACES_EXPORTER={exporter!r}: give one exporter, not a list")
        if exporter == "otlp":
            out["traces_exporter"] = _PROTOCOLS.get(protocol or "grpc")
        elif exporter in ("otlp-grpc", "otlp-http", "console", "none"):
            out["traces_exporter"] = exporter
        else:
            raise EnvError(
                f"OTEL_TRACES_EXPORTER={exporter!r}: supported are otlp, console and none"
            )
    elif protocol:
        out["_protocol"] = _PROTOCOLS[protocol]  # applies if the file chose an OTLP exporter
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EnvError(
                f"OTEL_EXPORTER_OTLP_ENDPOINT={endpoint!r}: must be an http:// or https:// URL"
            )
        out["otlp_endpoint"] = endpoint
    service = env.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        out["service_name"] = service
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    arg = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if sampler in _SAMPLERS_ALWAYS:
        out["sampling_ratio"] = _SAMPLERS_ALWAYS[sampler]
    elif sampler and sampler not in _SAMPLERS_RATIO:
        raise EnvError(
            f"OTEL_TRACES_SAMPLER={sampler!r}: supported are always_on, always_off, "
            "traceidratio and their parentbased_ forms"
        )
    if arg and sampler not in _SAMPLERS_ALWAYS:
        try:
            ratio = float(arg)
        except ValueError:
            raise EnvError(f"OTEL_TRACES_SAMPLER_ARG={arg!r}: must be a number in [0, 1]") from None
        if not 0.0 <= ratio <= 1.0:
            raise EnvError(f"OTEL_TRACES_SAMPLER_ARG={arg!r}: must be a number in [0, 1]")
        out["sampling_ratio"] = ratio
    return out


def apply_otel_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    """Overlay the OpenTelemetry variables onto a raw config mapping's ``telemetry`` table."""
    overrides = otel_env_overrides(env)
    if not overrides:
        return
    section = raw.setdefault("telemetry", {})
    if not isinstance(section, dict):
        return  # the model validation names the bad table
    protocol = overrides.pop("_protocol", None)
    if protocol and section.get("traces_exporter") in DEFAULT_OTLP_ENDPOINT:
        section["traces_exporter"] = protocol
    section.update(overrides)
