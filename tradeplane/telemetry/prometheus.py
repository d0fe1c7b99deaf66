"""Prometheus text exposition (format 0.0.4) of ``MetricPoint`` values, and the HTTP endpoint.

``render`` groups points from many actors into one family per metric name; ``MetricsServer``
serves whatever an injected ``collect()`` coroutine returns on ``GET /metrics``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

from tradeplane.telemetry.metrics import MetricKind, MetricPoint

_log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def _metric_name(name: str, prefix: str) -> str:
    clean = _INVALID_NAME.sub("_", name)
    if not clean.startswith(prefix):
        clean = prefix + clean
    if not clean or clean[0].isdigit():
        clean = "_" + clean
    return clean


def _label_name(name: str) -> str:
    clean = _INVALID_LABEL.sub("_", name)
    return "_" + clean if not clean or clean[0].isdigit() else clean


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: shortest round-trip repr, ``NaN``, ``±Inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    seen: dict[str, str] = {}
    for key, value in pairs:
        seen.setdefault(_label_name(key), value)
    if not seen:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in seen.items()) + "}"


@dataclass
class _Family:
    name: str
    kind: MetricKind
    help: str
    points: list[MetricPoint] = field(default_factory=list)
    seen: set[tuple[tuple[str, str], ...]] = field(default_factory=set)


def _family_lines(family: _Family) -> list[str]:
    name, kind = family.name, family.kind
    exposed = f"{name}_total" if kind == "counter" else name
    lines = [f"# HELP {exposed} {_escape_help(family.help)}", f"# TYPE {exposed} {kind}"]
    for point in family.points:
        if kind != "histogram":
            if point.value is not None:
                lines.append(f"{exposed}{_labels(point.labels)} {format_value(point.value)}")
            continue
        base = [(k, v) for k, v in point.labels if _label_name(k) != "le"]
        for bound, count in point.buckets:
            lines.append(f"{name}_bucket{_labels([*base, ('le', format_value(bound))])} {count}")
        if not point.buckets or not math.isinf(point.buckets[-1][0]):
            lines.append(f"{name}_bucket{_labels([*base, ('le', '+Inf')])} {point.count or 0}")
        lines.append(f"{name}_sum{_labels(base)} {format_value(point.sum or 0.0)}")
        lines.append(f"{name}_count{_labels(base)} {point.count or 0}")
    return lines


def render(points: Iterable[MetricPoint], *, prefix: str = "tradeplane_") -> str:
    """Prometheus text for ``points``: one ``# HELP``/``# TYPE`` block per metric name.

    Points are grouped by (sanitized, prefixed) name in first-seen order; a point whose kind
    differs from the first point of its name is skipped, as is a repeated label set.
    """
    families: dict[str, _Family] = {}
    for point in points:
        name = _metric_name(point.name, prefix)
        if point.kind == "counter" and name.endswith("_total"):
            name = name.removesuffix("_total")
        family = families.get(name)
        if family is None:
            family = families[name] = _Family(name, point.kind, point.description)
        elif family.kind != point.kind:
            _log.debug("skipping %s point of %s: family is a %s", point.kind, name, family.kind)
            continue
        if point.labels in family.seen:
            continue
        family.seen.add(point.labels)
        family.points.append(point)
    lines = [line for family in families.values() for line in _family_lines(family)]
    return "\n".join(lines) + "\n" if lines else ""


Collect = Callable[[], Awaitable[str]]


class MetricsServer:
    """``GET /metrics`` (the text ``collect()`` returns), ``GET /`` and ``/healthz``; else 404.

    A ``collect()`` that raises answers 500 with a one-line message; the traceback goes to the
    log only.
    """

    def __init__(self, collect: Collect, *, shutdown_timeout: float = 5.0) -> None:
        self._collect = collect
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Bind exactly ``host``:``port`` (0 picks a free port); return the bound address."""
        if self._runner is not None:
            raise RuntimeError("metrics server already started")
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._health)
        app.router.add_get("/healthz", self._health)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            sockname = runner.addresses[0]
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                exc.errno, f"cannot bind metrics server to {host}:{port}: {exc.strerror or exc}"
            ) from exc
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.address = (str(sockname[0]), int(sockname[1]))
        return self.address

    async def stop(self) -> None:
        runner, self._runner, self.address = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        try:
            text = await self._collect()
        except Exception as exc:
            _log.exception("metrics collection failed")
            return web.Response(
                status=500,
                text=f"metrics collection failed: {type(exc).__name__}\n",
                content_type="text/plain",
            )
        return web.Response(body=text.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(text="tradeplane telemetry: ok\n", content_type="text/plain")
