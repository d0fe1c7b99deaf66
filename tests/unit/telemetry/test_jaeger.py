"""Jaeger JSON export: the shape the Jaeger UI's "JSON File" upload and ``/api/traces`` use."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest

from tradeplane.telemetry.jaeger import jaeger_traces, parse_jaeger_json, write_jaeger_json
from tradeplane.telemetry.model import SpanEvent, TraceSpan

T1 = "0af7651916cd43dd8448eb211c80319c"
T2 = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = 1_700_000_000.0


def span(
    name: str,
    component: str,
    sid: str,
    parent: str | None = None,
    *,
    trace: str = T1,
    start: float = 0.0,
    end: float = 0.001,
    **kw: Any,
) -> TraceSpan:
    return TraceSpan(trace, sid, parent, name, component, T0 + start, T0 + end, **kw)


def intent_trace(trace: str = T1, offset: float = 0.0) -> list[TraceSpan]:
    return [
        span("broker.submit", "broker", "c" * 16, "b" * 16, trace=trace, start=offset + 0.002),
        span("strategy.intent", "strategy", "a" * 16, trace=trace, start=offset),
        span("risk.check", "risk", "b" * 16, "a" * 16, trace=trace, start=offset + 0.001),
        span("broker.fill", "broker", "d" * 16, "c" * 16, trace=trace, start=offset + 0.003),
    ]


def round_trip(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    fh = io.StringIO()
    write_jaeger_json(doc, fh)
    return parse_jaeger_json(fh.getvalue())


def tags(span_json: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {t["key"]: (t["type"], t["value"]) for t in span_json["tags"]}


def test_export_when_two_traces_then_one_entry_each_with_processes() -> None:
    spans = intent_trace(T2, offset=5.0) + intent_trace(T1)
    doc = jaeger_traces(spans, resource={"host.name": "box1"})
    assert [e["traceID"] for e in doc["data"]] == [T1, T2]  # earliest start first
    assert {k: doc[k] for k in ("total", "limit", "offset", "errors")} == {
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }
    for entry in doc["data"]:
        assert entry["warnings"] is None
        services = {p["serviceName"] for p in entry["processes"].values()}
        assert services == {"tradeplane-strategy", "tradeplane-risk", "tradeplane-broker"}
        assert sorted(entry["processes"]) == ["p1", "p2", "p3"]
        for proc in entry["processes"].values():
            assert proc["tags"] == [{"key": "host.name", "type": "string", "value": "box1"}]
        by_pid = {s["processID"] for s in entry["spans"]}
        assert by_pid == set(entry["processes"])
    assert set(round_trip(doc)) == {T1, T2}


def test_export_when_service_base_given_then_process_names_use_it() -> None:
    doc = jaeger_traces(intent_trace(), service_base="paper")
    names = {p["serviceName"] for p in doc["data"][0]["processes"].values()}
    assert names == {"paper-strategy", "paper-risk", "paper-broker"}


def test_export_then_spans_sorted_by_start_with_parent_references() -> None:
    [entry] = jaeger_traces(intent_trace())["data"]
    names = [s["operationName"] for s in entry["spans"]]
    assert names == ["strategy.intent", "risk.check", "broker.submit", "broker.fill"]
    root, risk, submit, fill = entry["spans"]
    assert root["references"] == []
    assert risk["references"] == [{"refType": "CHILD_OF", "traceID": T1, "spanID": "a" * 16}]
    assert fill["references"][0]["spanID"] == submit["spanID"] == "c" * 16
    assert all(s["flags"] == 1 and s["warnings"] is None for s in entry["spans"])


def test_export_then_times_are_integer_microseconds() -> None:
    s = span("risk.check", "risk", "b" * 16, start=0.000002, end=0.25)
    [out] = jaeger_traces([s])["data"][0]["spans"]
    assert out["startTime"] == 1_700_000_000_000_002
    assert isinstance(out["startTime"], int) and isinstance(out["duration"], int)
    assert out["duration"] == 249_998


def test_export_when_end_before_start_then_duration_zero() -> None:
    s = span("venue.ack", "venue", "e" * 16, start=1.0, end=0.5)
    [out] = jaeger_traces([s])["data"][0]["spans"]
    assert out["duration"] == 0


def test_export_then_tag_types_match_python_values() -> None:
    attrs = {"s": "x", "b": True, "i": 3, "f": 1.5, "big": 1 << 70}
    s = span("strategy.intent", "strategy", "a" * 16, attributes=attrs)
    got = tags(jaeger_traces([s])["data"][0]["spans"][0])
    assert got == {
        "s": ("string", "x"),
        "b": ("bool", True),
        "i": ("int64", 3),
        "f": ("float64", 1.5),
        "big": ("string", str(1 << 70)),
    }


def test_export_when_status_kind_and_seq_set_then_standard_tags() -> None:
    s = span(
        "venue.ack",
        "venue",
        "e" * 16,
        status="error",
        status_message="rejected: margin",
        kind="client",
        journal_seq=42,
    )
    got = tags(jaeger_traces([s])["data"][0]["spans"][0])
    assert got["span.kind"] == ("string", "client")
    assert got["otel.status_code"] == ("string", "ERROR")
    assert got["error"] == ("bool", True)
    assert got["otel.status_description"] == ("string", "rejected: margin")
    assert got["tradeplane.journal_seq"] == ("int64", 42)


def test_export_when_internal_and_unset_then_no_extra_tags() -> None:
    s = span("risk.check", "risk", "b" * 16, attributes={"tradeplane.decision": "approved"})
    assert tags(jaeger_traces([s])["data"][0]["spans"][0]) == {
        "tradeplane.decision": ("string", "approved")
    }
    ok = span("risk.check", "risk", "b" * 16, status="ok")
    assert tags(jaeger_traces([ok])["data"][0]["spans"][0]) == {
        "otel.status_code": ("string", "OK")
    }


def test_export_when_events_then_logs_with_event_field() -> None:
    ev = SpanEvent("health_changed", T0 + 0.0005, {"from": "ok", "to": "degraded"})
    s = span("supervisor.health", "supervisor", "f" * 16, events=(ev,))
    [log] = jaeger_traces([s])["data"][0]["spans"][0]["logs"]
    assert log["timestamp"] == 1_700_000_000_000_500
    assert log["fields"] == [
        {"key": "event", "type": "string", "value": "health_changed"},
        {"key": "from", "type": "string", "value": "ok"},
        {"key": "to", "type": "string", "value": "degraded"},
    ]


def test_export_when_nan_attribute_then_string_and_valid_json() -> None:
    ev = SpanEvent("mark", T0, {"inf": float("-inf")})
    s = span("broker.fill", "broker", "d" * 16, attributes={"px": float("nan")}, events=(ev,))
    doc = jaeger_traces([s], resource={"r": float("inf")})
    out = doc["data"][0]["spans"][0]
    assert tags(out)["px"] == ("string", "nan")
    assert out["logs"][0]["fields"][1] == {"key": "inf", "type": "string", "value": "-inf"}
    assert doc["data"][0]["processes"]["p1"]["tags"][0]["value"] == "inf"
    fh = io.StringIO()
    write_jaeger_json(doc, fh)  # allow_nan=False would raise on a raw NaN
    assert "NaN" not in fh.getvalue()
    assert round_trip(doc)[T1][0]["spanID"] == "d" * 16


def test_export_when_duplicate_span_id_then_last_wins() -> None:
    first = span("broker.submit", "broker", "c" * 16, attributes={"n": 1})
    second = span("broker.submit", "broker", "c" * 16, attributes={"n": 2})
    [out] = jaeger_traces([first, second])["data"][0]["spans"]
    assert tags(out)["n"] == ("int64", 2)


def test_export_when_no_spans_then_empty_data() -> None:
    doc = jaeger_traces([])
    assert doc["data"] == []
    assert round_trip(doc) == {}


@pytest.mark.parametrize(
    ("trace", "sid", "parent"),
    [("xyz", "a" * 16, None), (T1, "A" * 16, None), (T1, "a" * 16, "short")],
)
def test_export_when_malformed_ids_then_value_error(trace: str, sid: str, parent: str) -> None:
    with pytest.raises(ValueError, match="hex"):
        jaeger_traces([span("x", "risk", sid, parent, trace=trace)])


def test_export_when_time_not_finite_then_value_error() -> None:
    s = TraceSpan(T1, "a" * 16, None, "x", "risk", float("nan"), T0)
    with pytest.raises(ValueError, match="finite"):
        jaeger_traces([s])


def test_write_then_unicode_kept_and_newline_terminated() -> None:
    s = span("strategy.intent", "strategy", "a" * 16, attributes={"tradeplane.symbol": "ÄPFEL"})
    fh = io.StringIO()
    write_jaeger_json(jaeger_traces([s]), fh)
    assert "ÄPFEL" in fh.getvalue() and fh.getvalue().endswith("\n")
    assert json.loads(fh.getvalue())["data"][0]["traceID"] == T1


def _valid() -> dict[str, Any]:
    ev = SpanEvent("denied", T0, {"tradeplane.reason": "max_position"})
    spans = [*intent_trace(), span("x", "risk", "e" * 16, "b" * 16, events=(ev,))]
    return jaeger_traces(spans)


def _break(path: str, value: Any) -> str:
    doc = copy.deepcopy(_valid())
    *keys, last = path.split(".")
    node: Any = doc
    for k in keys:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ("data", {}, r"\$"),
        ("data.0.traceID", "abc", r"data\[0\]\.traceID"),
        ("data.0.processes", [], r"processes"),
        ("data.0.processes.p1", {"tags": []}, r"serviceName"),
        ("data.0.spans", None, r"spans"),
        ("data.0.spans.0", "span", r"spans\[0\]"),
        ("data.0.spans.0.traceID", "f" * 32, r"traceID"),
        ("data.0.spans.0.spanID", "xyz", r"spanID"),
        ("data.0.spans.0.operationName", "", r"operationName"),
        ("data.0.spans.0.startTime", 1.5, r"startTime"),
        ("data.0.spans.0.duration", -1, r"duration"),
        ("data.0.spans.0.startTime", True, r"startTime"),
        ("data.0.spans.0.processID", "p9", r"processID"),
        ("data.0.spans.1.references", [{"refType": "PARENT"}], r"references\[0\]"),
        ("data.0.spans.0.tags", [{"key": "k", "type": "int64", "value": "1"}], r"value"),
        ("data.0.spans.0.tags", [{"key": "k", "type": "binary", "value": ""}], r"type"),
        ("data.0.spans.4.logs", [{"timestamp": 1, "fields": "x"}], r"fields"),
        ("data.0.spans.4.logs", [{"fields": []}], r"timestamp"),
    ],
)
def test_parse_when_document_malformed_then_value_error(path: str, value: Any, match: str) -> None:
    assert parse_jaeger_json(json.dumps(_valid()))  # the unbroken document parses
    with pytest.raises(ValueError, match=match):
        parse_jaeger_json(_break(path, value))


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"data": [1]}', '{"data": [], "x": NaN}', "null"],
)
def test_parse_when_not_a_trace_document_then_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a Jaeger trace document"):
        parse_jaeger_json(text)


def test_parse_when_trace_listed_twice_then_value_error() -> None:
    doc = _valid()
    doc["data"].append(copy.deepcopy(doc["data"][0]))
    with pytest.raises(ValueError, match="twice"):
        parse_jaeger_json(json.dumps(doc))


def test_parse_then_returns_spans_by_trace_id() -> None:
    doc = jaeger_traces(intent_trace(T1) + intent_trace(T2, offset=1.0))
    got = round_trip(doc)
    assert [s["operationName"] for s in got[T2]] == [
        "strategy.intent",
        "risk.check",
        "broker.submit",
        "broker.fill",
    ]
    assert got[T1] == doc["data"][0]["spans"]
