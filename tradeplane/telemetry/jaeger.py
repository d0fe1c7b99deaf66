"""Spans as Jaeger JSON (pure conversion, no IO but the caller's file handle).

The document has the shape of Jaeger's query API ``/api/traces``, which is also what the Jaeger
UI's "JSON File" upload (Search page) reads: one ``data`` entry per trace, its spans with
microsecond times, tags and logs, and a ``processes`` table (one process per service, here
``<service_base>-<component>``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from tradeplane.telemetry.model import AttributeValue, TraceSpan, service_name

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_TAG_TYPES = ("string", "bool", "int64", "float64")
_REF_TYPES = ("CHILD_OF", "FOLLOWS_FROM")


def _tag(key: str, value: AttributeValue) -> dict[str, Any]:
    """One Jaeger key/value; NaN, infinities and out-of-range ints become strings."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return {"key": key, "type": "int64", "value": value}
    elif isinstance(value, float) and math.isfinite(value):
        return {"key": key, "type": "float64", "value": value}
    return {"key": key, "type": "string", "value": str(value)}


def _tags(attributes: Mapping[str, AttributeValue]) -> list[dict[str, Any]]:
    return [_tag(k, v) for k, v in attributes.items()]


def _micros(ts: float, what: str) -> int:
    if not math.isfinite(ts):
        raise ValueError(f"{what}: time {ts!r} is not a finite number")
    return round(ts * 1_000_000)


def _span_json(span: TraceSpan, process_id: str) -> dict[str, Any]:
    where = f"span {span.name!r} ({span.trace_id}/{span.span_id})"
    if not _TRACE_ID.match(span.trace_id) or not _SPAN_ID.match(span.span_id):
        raise ValueError(f"{where}: ids must be lowercase hex, 32 (trace) and 16 (span) chars")
    if span.parent_span_id is not None and not _SPAN_ID.match(span.parent_span_id):
        raise ValueError(f"{where}: parent span id {span.parent_span_id!r} is not 16 hex chars")
    start = _micros(span.start_ts, where)
    attrs: dict[str, AttributeValue] = dict(span.attributes)
    if span.kind != "internal":
        attrs["span.kind"] = span.kind
    if span.status == "error":
        attrs["otel.status_code"] = "ERROR"
        attrs["error"] = True
    elif span.status == "ok":
        attrs["otel.status_code"] = "OK"
    if span.status_message:
        attrs["otel.status_description"] = span.status_message
    if span.journal_seq is not None:
        attrs["tradeplane.journal_seq"] = span.journal_seq
    refs = []
    if span.parent_span_id is not None:
        ref = {"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_span_id}
        refs.append(ref)
    logs = [
        {
            "timestamp": _micros(ev.ts, f"{where} event {ev.name!r}"),
            "fields": [_tag("event", ev.name), *_tags(ev.attributes)],
        }
        for ev in sorted(span.events, key=lambda e: e.ts)
    ]
    return {
        "traceID": span.trace_id,
        "spanID": span.span_id,
        "flags": 1,
        "operationName": span.name,
        "references": refs,
        "startTime": start,
        "duration": max(0, _micros(span.end_ts, where) - start),
        "tags": _tags(attrs),
        "logs": logs,
        "processID": process_id,
        "warnings": None,
    }


def jaeger_traces(
    spans: Iterable[TraceSpan],
    *,
    service_base: str = "tradeplane",
    resource: Mapping[str, AttributeValue] | None = None,
) -> dict[str, Any]:
    """The ``/api/traces``-shaped document of ``spans`` (a later duplicate span id wins).

    Traces are ordered by their earliest span start, spans by start time; ``resource``
    attributes (host, deployment ...) become tags of every process.
    Raises ``ValueError`` for a span with malformed ids or non-finite times."""
    by_trace: dict[str, dict[str, TraceSpan]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, {})[span.span_id] = span
    resource_tags = _tags({k: v for k, v in (resource or {}).items() if k != "service.name"})
    entries: list[tuple[float, dict[str, Any]]] = []
    for trace_id, members in by_trace.items():
        ordered = sorted(members.values(), key=lambda s: s.start_ts)
        pids: dict[str, str] = {}
        out_spans = []
        for span in ordered:
            pid = pids.setdefault(span.component, f"p{len(pids) + 1}")
            out_spans.append(_span_json(span, pid))
        processes = {
            pid: {"serviceName": service_name(service_base, comp), "tags": list(resource_tags)}
            for comp, pid in pids.items()
        }
        entry = {"traceID": trace_id, "spans": out_spans, "processes": processes, "warnings": None}
        entries.append((ordered[0].start_ts, entry))
    entries.sort(key=lambda e: e[0])
    data = [e for _, e in entries]
    return {"data": data, "total": 0, "limit": 0, "offset": 0, "errors": None}


def write_jaeger_json(doc: dict[str, Any], fh: TextIO) -> None:
    """Write ``doc`` as strict JSON (UTF-8 text, no NaN) with a final newline."""
    json.dump(doc, fh, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    fh.write("\n")


def _check(ok: bool, path: str, msg: str) -> None:
    if not ok:
        raise ValueError(f"not a Jaeger trace document: {path}: {msg}")


def _check_tags(tags: Any, path: str) -> None:
    _check(isinstance(tags, list), path, "expected a list of tags")
    for i, tag in enumerate(tags):
        p = f"{path}[{i}]"
        _check(isinstance(tag, dict) and isinstance(tag.get("key"), str), p, "expected {key,...}")
        kind, value = tag.get("type"), tag.get("value")
        _check(kind in _TAG_TYPES, f"{p}.type", f"expected one of {_TAG_TYPES}, got {kind!r}")
        ok = {
            "string": isinstance(value, str),
            "bool": isinstance(value, bool),
            "int64": isinstance(value, int) and not isinstance(value, bool),
            "float64": isinstance(value, int | float) and not isinstance(value, bool),
        }[kind]
        _check(ok, f"{p}.value", f"{value!r} does not match type {kind}")


def _check_int(value: Any, path: str) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    _check(ok, path, f"expected a non-negative integer (microseconds), got {value!r}")


def _is_id(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.match(value) is not None


def _no_constant(name: str) -> Any:
    raise ValueError(f"not a Jaeger trace document: {name} is not valid JSON")


def _check_span(span: Any, trace_id: str, processes: dict[str, Any], sp: str) -> None:
    _check(isinstance(span, dict), sp, "expected an object")
    _check(span.get("traceID") == trace_id, f"{sp}.traceID", "differs from its trace's traceID")
    sid = span.get("spanID")
    _check(_is_id(sid, _SPAN_ID), f"{sp}.spanID", f"expected 16 lowercase hex chars, got {sid!r}")
    name = span.get("operationName")
    _check(isinstance(name, str) and bool(name), f"{sp}.operationName", "expected a name")
    _check_int(span.get("startTime"), f"{sp}.startTime")
    _check_int(span.get("duration"), f"{sp}.duration")
    _check(span.get("processID") in processes, f"{sp}.processID", "not in the trace's processes")
    _check_tags(span.get("tags", []), f"{sp}.tags")
    refs = span.get("references", [])
    _check(isinstance(refs, list), f"{sp}.references", "expected a list")
    for r, ref in enumerate(refs):
        ok = isinstance(ref, dict) and ref.get("refType") in _REF_TYPES
        ok = ok and _is_id(ref.get("traceID"), _TRACE_ID) and _is_id(ref.get("spanID"), _SPAN_ID)
        _check(ok, f"{sp}.references[{r}]", "expected {refType, traceID, spanID}")
    logs = span.get("logs", [])
    _check(isinstance(logs, list), f"{sp}.logs", "expected a list")
    for g, log in enumerate(logs):
        _check(isinstance(log, dict), f"{sp}.logs[{g}]", "expected an object")
        _check_int(log.get("timestamp"), f"{sp}.logs[{g}].timestamp")
        _check_tags(log.get("fields"), f"{sp}.logs[{g}].fields")


def parse_jaeger_json(text: str) -> dict[str, list[dict[str, Any]]]:
    """Trace id -> spans of a Jaeger JSON document; ``ValueError`` saying what is wrong."""
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a Jaeger trace document: invalid JSON ({exc})") from None
    ok = isinstance(doc, dict) and isinstance(doc.get("data"), list)
    _check(ok, "$", "expected an object with a data list")
    out: dict[str, list[dict[str, Any]]] = {}
    for t, entry in enumerate(doc["data"]):
        p = f"data[{t}]"
        _check(isinstance(entry, dict), p, "expected an object")
        trace_id = entry.get("traceID")
        msg = f"expected 32 lowercase hex chars, got {trace_id!r}"
        _check(_is_id(trace_id, _TRACE_ID), f"{p}.traceID", msg)
        _check(trace_id not in out, f"{p}.traceID", f"trace {trace_id} appears twice")
        procs, spans = entry.get("processes"), entry.get("spans")
        _check(isinstance(procs, dict), f"{p}.processes", "expected an object")
        for pid, proc in procs.items():
            pp = f"{p}.processes.{pid}"
            ok = isinstance(proc, dict) and isinstance(proc.get("serviceName"), str)
            _check(ok and bool(proc["serviceName"]), pp, "expected {serviceName, tags}")
            _check_tags(proc.get("tags", []), f"{pp}.tags")
        _check(isinstance(spans, list), f"{p}.spans", "expected a list")
        for s, span in enumerate(spans):
            _check_span(span, trace_id, procs, f"{p}.spans[{s}]")
        out[trace_id] = spans
    return out
