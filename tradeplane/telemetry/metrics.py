"""In-process OpenTelemetry metrics for one actor, read back as plain picklable points.

Each actor owns an ``ActorMetrics``: a private (never global) SDK ``MeterProvider`` with an
``InMemoryMetricReader``. The telemetry actor calls ``snapshot()`` remotely and gets
``MetricPoint`` values (frozen dataclasses, no SDK objects) that
:func:`tradeplane.telemetry.prometheus.render` turns into Prometheus text.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    ObservableGauge,
    Observation,
    UpDownCounter,
)

from tradeplane.telemetry.model import service_name

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import Metric

_log = logging.getLogger(__name__)

MetricKind = Literal["counter", "gauge", "histogram"]
Labels = tuple[tuple[str, str], ...]
GaugeCallback = Callable[[], Iterable[tuple[float, Mapping[str, str]]]]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One sample (counter/gauge) or one histogram series, with its labels sorted by key.

    ``buckets`` holds ``(upper bound, cumulative count)`` pairs, the last bound ``math.inf``;
    it is empty for counters and gauges, whose number is ``value``.
    """

    name: str
    kind: MetricKind
    description: str
    unit: str
    labels: Labels
    value: float | None = None
    buckets: tuple[tuple[float, int], ...] = ()
    sum: float | None = None
    count: int | None = None

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def _check_boundaries(name: str, boundaries: Sequence[float]) -> tuple[float, ...]:
    bounds = tuple(float(b) for b in boundaries)
    if not all(math.isfinite(b) for b in bounds) or any(
        a >= b for a, b in itertools.pairwise(bounds)
    ):
        raise ValueError(f"histogram {name!r}: boundaries must be finite and increasing: {bounds}")
    return bounds


def _label_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return ",".join(_label_value(v) for v in value)
    return str(value)


class ActorMetrics:
    """The metrics of one actor: OTel instruments in, ``MetricPoint`` snapshots out.

    ``histogram_boundaries`` declares bucket boundaries by instrument name up front (they
    become SDK views, which only a new provider accepts); ``histogram(..., boundaries=...)``
    for a name not declared there passes them as the instrument's bucket advisory instead.
    """

    def __init__(
        self,
        component: str,
        deployment: str,
        *,
        service_base: str = "tradeplane",
        instance: str | None = None,
        histogram_boundaries: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.component = component
        self.deployment = deployment
        self.instance = instance
        attributes: dict[str, str] = {
            "service.name": service_name(service_base, component),
            "service.namespace": deployment,
            "tradeplane.deployment": deployment,
            "tradeplane.component": component,
        }
        if instance is not None:
            attributes["service.instance.id"] = instance
        # The SDK is imported by the actor that keeps metrics, not with this module: a process
        # that only loads an actor's class (the supervisor, for a handle to it) needs none of it.
        from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
        from opentelemetry.sdk.metrics import Histogram as SdkHistogram
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
        from opentelemetry.sdk.resources import Resource

        self._declared: dict[str, tuple[float, ...]] = {
            name: _check_boundaries(name, bounds)
            for name, bounds in (histogram_boundaries or {}).items()
        }
        views = [
            View(
                instrument_type=SdkHistogram,
                instrument_name=name,
                aggregation=ExplicitBucketHistogramAggregation(list(bounds)),
            )
            for name, bounds in self._declared.items()
        ]
        self.resource = Resource.create(attributes)
        self._reader = InMemoryMetricReader()
        self._provider = MeterProvider(
            metric_readers=[self._reader],
            resource=self.resource,
            exemplar_filter=AlwaysOffExemplarFilter(),
            shutdown_on_exit=False,
            views=views,
        )
        self._meter = self._provider.get_meter(f"tradeplane.{component}")
        self._base_labels: dict[str, str] = {"component": component, "deployment": deployment}
        if instance is not None:
            self._base_labels["actor"] = instance
        self._instruments: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()
        self._failed_gauges: set[str] = set()
        self._closed = False

    def _instrument(self, name: str, kind: str, create: Callable[[], Any]) -> Any:
        """The cached instrument ``name``, created by ``create`` the first time."""
        with self._lock:
            found = self._instruments.get(name)
            if found is None:
                found = self._instruments[name] = (kind, create())
            elif found[0] != kind:
                raise ValueError(f"metric {name!r} is already a {found[0]}, not a {kind}")
            return found[1]

    def counter(self, name: str, description: str, unit: str = "1") -> Counter:
        create = self._meter.create_counter
        return self._instrument(
            name, "counter", lambda: create(name, unit=unit, description=description)
        )

    def up_down_counter(self, name: str, description: str, unit: str = "1") -> UpDownCounter:
        create = self._meter.create_up_down_counter
        return self._instrument(
            name, "up_down_counter", lambda: create(name, unit=unit, description=description)
        )

    def histogram(
        self, name: str, description: str, unit: str, boundaries: Sequence[float] | None = None
    ) -> Histogram:
        advisory = None
        if boundaries is not None and name not in self._declared:
            advisory = list(_check_boundaries(name, boundaries))

        def create() -> Histogram:
            return self._meter.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=advisory
            )

        return self._instrument(name, "histogram", create)

    def gauge(
        self, name: str, description: str, unit: str, callback: GaugeCallback
    ) -> ObservableGauge:
        """An observable gauge read by ``callback`` at each snapshot.

        A callback that raises is logged and adds nothing to that snapshot; other metrics are
        unaffected. Non-finite values are dropped. Asking again for a known name returns the
        existing gauge and ignores the new callback.
        """

        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            try:
                values = [(float(v), dict(labels)) for v, labels in callback()]
            except Exception:
                # Full traceback once per gauge; a callback that keeps failing stays quiet.
                level = logging.DEBUG if name in self._failed_gauges else logging.WARNING
                self._failed_gauges.add(name)
                _log.log(level, "gauge callback for %s failed", name, exc_info=True)
                return []
            return [Observation(v, labels) for v, labels in values if math.isfinite(v)]

        def create() -> ObservableGauge:
            return self._meter.create_observable_gauge(name, [observe], unit, description)

        return self._instrument(name, "gauge", create)

    def snapshot(self) -> list[MetricPoint]:
        """Collect every instrument now and return plain points (empty after ``shutdown``)."""
        if self._closed:
            return []
        data = self._reader.get_metrics_data()
        if data is None:
            return []
        points: list[MetricPoint] = []
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points.extend(self._convert(metric))
        return points

    def _labels(self, attributes: Mapping[str, Any] | None) -> Labels:
        merged = {k: _label_value(v) for k, v in (attributes or {}).items()}
        merged.update(self._base_labels)
        return tuple(sorted(merged.items()))

    def _convert(self, metric: Metric) -> Iterable[MetricPoint]:
        from opentelemetry.sdk.metrics.export import Gauge as GaugeData
        from opentelemetry.sdk.metrics.export import Histogram as HistogramData
        from opentelemetry.sdk.metrics.export import Sum as SumData

        data = metric.data
        name, description, unit = metric.name, metric.description or "", metric.unit or ""
        if isinstance(data, SumData | GaugeData):
            kind: MetricKind = (
                "counter" if isinstance(data, SumData) and data.is_monotonic else "gauge"
            )
            for dp in data.data_points:
                labels = self._labels(dp.attributes)
                yield MetricPoint(name, kind, description, unit, labels, value=float(dp.value))
        elif isinstance(data, HistogramData):
            for hp in data.data_points:
                cumulative, buckets = 0, []
                for bound, n in zip(hp.explicit_bounds, hp.bucket_counts, strict=False):
                    cumulative += n
                    buckets.append((float(bound), cumulative))
                buckets.append((math.inf, int(hp.count)))
                labels = self._labels(hp.attributes)
                yield MetricPoint(
                    name,
                    "histogram",
                    description,
                    unit,
                    labels,
                    buckets=tuple(buckets),
                    sum=float(hp.sum),
                    count=int(hp.count),
                )
        else:
            _log.debug("skipping metric %s of unsupported type %s", metric.name, type(data))

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._provider.shutdown()
        except Exception:
            _log.warning("metrics provider shutdown failed", exc_info=True)
