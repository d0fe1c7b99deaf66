"""Prometheus text exposition (format 0.0.4) of ``MetricPoint`` values, and the HTTP endpoint.

``render`` groups points from many actors into one family per metric name and has
``prometheus_client`` write them (``PointsCollector`` is a custom collector over a list of
points); ``MetricsServer`` serves whatever an injected ``collect()`` coroutine returns on
``GET /metrics``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from tradeplane.telemetry.metrics import MetricPoint

_log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def port_candidates(configured: int, previous: int | None) -> list[int]:
    """Ports the metrics endpoint tries, in order: the configured one; when it is taken (by
    another deployment on this node, say: two with the default 9464), the port this deployment
    served on before (so a restart keeps Prometheus's target), then any free port (0). Whatever
    it binds is journaled and shown by ``status`` and ``preflight``."""
    out = [configured]
    if configured != 0:
        if previous and previous != configured:
            out.append(previous)
        out.append(0)
    return out


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


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (``NaN``, ``±Inf``, Go's float spelling)."""
    return str(floatToGoString(value))


def _labels(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for key, value in pairs:
        seen.setdefault(_label_name(key), value)
    return seen


def _add_samples(family: Metric, point: MetricPoint) -> None:
    name = family.name
    if family.type == "counter":
        if point.value is not None:
            family.add_sample(f"{name}_total", _labels(point.labels), point.value)
        return
    if family.type != "histogram":
        if point.value is not None:
            family.add_sample(name, _labels(point.labels), point.value)
        return
    base = [(k, v) for k, v in point.labels if _label_name(k) != "le"]
    for bound, count in point.buckets:
        family.add_sample(f"{name}_bucket", _labels([*base, ("le", format_value(bound))]), count)
    if not point.buckets or not math.isinf(point.buckets[-1][0]):
        family.add_sample(f"{name}_bucket", _labels([*base, ("le", "+Inf")]), point.count or 0)
    family.add_sample(f"{name}_sum", _labels(base), point.sum or 0.0)
    family.add_sample(f"{name}_count", _labels(base), point.count or 0)


class PointsCollector(Collector):
    """A ``prometheus_client`` collector over ``MetricPoint`` values gathered from many actors.

    Points are grouped by (sanitized, prefixed) name in first-seen order; a point whose kind
    differs from the first point of its name is skipped, as is a repeated label set.
    """

    def __init__(self, points: Iterable[MetricPoint], *, prefix: str = "tradeplane_") -> None:
        self.points = points
        self.prefix = prefix

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        seen: dict[str, set[tuple[tuple[str, str], ...]]] = {}
        for point in self.points:
            name = _metric_name(point.name, self.prefix)
            if point.kind == "counter" and name.endswith("_total"):
                name = name.removesuffix("_total")
            family = families.get(name)
            if family is None:
                family = families[name] = Metric(name, point.description, point.kind)
                seen[name] = set()
            elif family.type != point.kind:
                _log.debug("skipping %s point of %s: family is a %s", point.kind, name, family.type)
                continue
            if point.labels in seen[name]:
                continue
            seen[name].add(point.labels)
            _add_samples(family, point)
        yield from families.values()


def render(points: Iterable[MetricPoint], *, prefix: str = "tradeplane_") -> str:
    """Prometheus text for ``points``: one ``# HELP``/``# TYPE`` block per metric name."""
    return generate_latest(PointsCollector(points, prefix=prefix)).decode("utf-8")


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
