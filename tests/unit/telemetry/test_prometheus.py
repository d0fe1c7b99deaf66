from __future__ import annotations

import asyncio
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tradeplane.telemetry.metrics import ActorMetrics, MetricPoint
from tradeplane.telemetry.prometheus import (
    CONTENT_TYPE,
    MetricsServer,
    format_value,
    port_candidates,
    render,
)

T = TypeVar("T")
BASE = (("component", "risk"), ("deployment", "dev"))


def counter(name: str, value: float, labels: tuple[tuple[str, str], ...] = BASE) -> MetricPoint:
    return MetricPoint(name, "counter", "help", "1", labels, value=value)


def gauge(name: str, value: float, labels: tuple[tuple[str, str], ...] = BASE) -> MetricPoint:
    return MetricPoint(name, "gauge", "help", "1", labels, value=value)


def samples(text: str) -> dict[str, list[Sample]]:
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def test_render_when_parsed_back_then_same_values_and_labels() -> None:
    metrics = ActorMetrics("broker", "dev", histogram_boundaries={"latency": [0.005, 0.1]})
    metrics.counter("orders.sent", "orders sent").add(3, {"venue": "paper"})
    metrics.up_down_counter("open_orders", "open orders").add(2)
    metrics.gauge("equity", "account equity", "USD", lambda: [(1234.5, {"ccy": "USD"})])
    latency = metrics.histogram("latency", "order latency", "s")
    for value in (0.001, 0.05, 2.0):
        latency.record(value)
    text = render(metrics.snapshot())
    metrics.shutdown()

    families = {f.name: f for f in text_string_to_metric_families(text)}

    assert text.endswith("\n")
    assert families["tradeplane_orders_sent"].type == "counter"
    assert families["tradeplane_orders_sent"].documentation == "orders sent"
    [sent] = families["tradeplane_orders_sent"].samples
    assert sent.name == "tradeplane_orders_sent_total"
    assert sent.value == 3.0
    assert sent.labels == {"component": "broker", "deployment": "dev", "venue": "paper"}
    assert families["tradeplane_open_orders"].type == "gauge"
    assert families["tradeplane_open_orders"].samples[0].value == 2.0
    assert families["tradeplane_equity"].samples[0].labels["ccy"] == "USD"
    assert families["tradeplane_equity"].samples[0].value == 1234.5
    hist = families["tradeplane_latency"]
    assert hist.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.005": 1, "0.1": 2, "+Inf": 3}
    by_suffix = {s.name: s.value for s in hist.samples}
    assert by_suffix["tradeplane_latency_count"] == 3
    assert by_suffix["tradeplane_latency_sum"] == pytest.approx(2.051)


def test_render_when_two_actors_report_same_metric_then_one_family_two_samples() -> None:
    risk = counter("orders", 1.0, (("component", "risk"),))
    broker = counter("orders", 2.0, (("component", "broker"),))

    text = render([risk, broker])

    assert text.count("# TYPE tradeplane_orders_total counter") == 1
    assert text.count("# HELP ") == 1
    assert [(s.labels["component"], s.value) for s in samples(text)["tradeplane_orders"]] == [
        ("risk", 1.0),
        ("broker", 2.0),
    ]


def test_render_when_kinds_conflict_then_first_kind_kept() -> None:
    text = render([gauge("x", 1.0), counter("x", 2.0, (("other", "1"),))])

    assert samples(text) == {"tradeplane_x": [Sample("tradeplane_x", dict(BASE), 1.0)]}


def test_render_when_same_labels_twice_then_first_sample_kept() -> None:
    text = render([gauge("x", 1.0), gauge("x", 2.0)])

    assert [s.value for s in samples(text)["tradeplane_x"]] == [1.0]


def test_render_when_label_values_need_escaping_then_round_trip() -> None:
    nasty = 'a\\b"c\nd'

    text = render([gauge("x", 1.0, (("path", nasty),))])

    assert r'path="a\\b\"c\nd"' in text
    assert samples(text)["tradeplane_x"][0].labels == {"path": nasty}


def test_render_when_names_invalid_then_sanitized_and_prefixed() -> None:
    points = [
        counter("tp.orders_total", 1.0),
        gauge("tradeplane_queue-depth", 2.0),
        gauge("x", 3.0, (("bad.key", "v"),)),
    ]

    text = render(points)

    parsed = samples(text)
    assert set(parsed) == {"tradeplane_tp_orders", "tradeplane_queue_depth", "tradeplane_x"}
    assert parsed["tradeplane_tp_orders"][0].name == "tradeplane_tp_orders_total"
    assert "_total_total" not in text
    assert parsed["tradeplane_x"][0].labels == {"bad_key": "v"}


def test_render_when_help_has_newline_then_escaped() -> None:
    point = MetricPoint("x", "gauge", "line1\nline2 \\", "1", (), value=1.0)

    text = render([point])

    assert "# HELP tradeplane_x line1\\nline2 \\\\\n" in text
    assert next(iter(text_string_to_metric_families(text))).documentation == "line1\nline2 \\"


def test_format_value_when_special_floats_then_prometheus_spelling() -> None:
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(0.1) == "0.1"
    assert float(format_value(1 / 3)) == 1 / 3


def test_render_when_no_points_then_empty_text() -> None:
    assert render([]) == ""


# --- MetricsServer -------------------------------------------------------------------------


class LoopThread:
    """An asyncio loop in a background thread, so the test can scrape with blocking urllib."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


def get(port: int, path: str) -> tuple[int, str, str]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def test_server_when_scraped_then_200_and_parseable_text(loop_thread: LoopThread) -> None:
    async def collect() -> str:
        return render([counter("orders", 4.0), gauge("equity", 10.5)])

    server = MetricsServer(collect)
    host, port = loop_thread.run(server.start())
    try:
        status, ctype, body = get(port, "/metrics")
        health = get(port, "/healthz")
        root = get(port, "/")
    finally:
        loop_thread.run(server.stop())

    assert host == "127.0.0.1"
    assert port > 0
    assert (status, ctype) == (200, CONTENT_TYPE)
    assert samples(body)["tradeplane_orders"][0].value == 4.0
    assert samples(body)["tradeplane_equity"][0].value == 10.5
    assert health[0] == root[0] == 200


def test_server_when_unknown_path_then_404(loop_thread: LoopThread) -> None:
    async def collect() -> str:
        return ""

    server = MetricsServer(collect)
    _, port = loop_thread.run(server.start())
    try:
        status, _, _ = get(port, "/nope")
    finally:
        loop_thread.run(server.stop())

    assert status == 404


def test_server_when_collect_raises_then_500_one_line(loop_thread: LoopThread) -> None:
    async def collect() -> str:
        raise RuntimeError("secret detail\nTraceback")

    server = MetricsServer(collect)
    _, port = loop_thread.run(server.start())
    try:
        status, _, body = get(port, "/metrics")
    finally:
        loop_thread.run(server.stop())

    assert status == 500
    assert body == "metrics collection failed: RuntimeError\n"


def test_server_when_port_taken_then_oserror_names_address(loop_thread: LoopThread) -> None:
    async def collect() -> str:
        return ""

    first, second = MetricsServer(collect), MetricsServer(collect)
    _, port = loop_thread.run(first.start())
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            loop_thread.run(second.start(port=port))
    finally:
        loop_thread.run(first.stop())
        loop_thread.run(second.stop())


def test_server_when_stopped_then_connection_refused(loop_thread: LoopThread) -> None:
    async def collect() -> str:
        return ""

    server = MetricsServer(collect)
    _, port = loop_thread.run(server.start())
    loop_thread.run(server.stop())

    with pytest.raises(urllib.error.URLError):
        get(port, "/healthz")


# --- port allocation ---------------------------------------------------------------------


def test_the_configured_port_is_tried_first_then_the_one_served_before_then_any_free_one() -> None:
    assert port_candidates(9464, None) == [9464, 0]
    assert port_candidates(9464, 41234) == [9464, 41234, 0]
    assert port_candidates(9464, 9464) == [9464, 0]


def test_port_zero_means_any_free_port_and_nothing_else() -> None:
    assert port_candidates(0, 41234) == [0]
