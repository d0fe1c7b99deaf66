"""What a correct set of exported traces looks like, checked against the journal."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.otlp_receiver import ReceivedSpan
from tradeplane.journal.reader import JournalReader
from tradeplane.telemetry.context import parse_traceparent

ATTRS = ("deployment", "strategy", "symbol", "side", "quantity", "client_order_id", "intent_id")


@dataclass
class Expected:
    """Per trace id: the intent, its denial reason or its fill ids (from the journal)."""

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    denied: dict[str, str] = field(default_factory=dict)
    fills: dict[str, set[str]] = field(default_factory=dict)

    def complete(self, spans: list[ReceivedSpan]) -> bool:
        """Every denied and every filled intent has all its spans (for ``wait_for``)."""
        ids = {(s.trace_id, s.name, s.attributes.get("tradeplane.fill_id")) for s in spans}
        for trace in self.denied:
            if (trace, "risk.check", None) not in ids:
                return False
        for trace, fills in self.fills.items():
            if not all((trace, "broker.fill", f) in ids for f in fills):
                return False
            if not all((trace, n, None) in ids for n in ("broker.submit", "venue.ack")):
                return False
        return True


def expected_from_journal(state_dir: Path) -> Expected:
    out = Expected()
    with JournalReader.open(state_dir) as j:
        by_coid: dict[str, str] = {}
        for ev in j.events(kinds=["intent"]):
            ctx = parse_traceparent(ev["traceparent"])
            assert ctx is not None, f"intent {ev['intent_id']} journaled without trace context"
            out.intents[ctx.trace_id] = ev
            by_coid[ev["client_order_id"]] = ctx.trace_id
        # The strategy's intent record is journaled off the critical path, so a SIGKILLed
        # strategy can lose it; the decision's record (risk's denial, the broker's durable
        # submit) carries the intent and its root trace context, and the exporter builds the
        # root span from that. The expectation must do the same.
        for ev in j.events(kinds=["order_denied", "order_submitting"]):
            coid = ev["client_order_id"]
            if coid not in by_coid:
                carried = ev["data"].get("intent") or {}
                ctx = parse_traceparent(carried.get("traceparent"))
                assert ctx is not None, f"{ev['kind']} {coid} carries no intent trace context"
                out.intents[ctx.trace_id] = ev
                by_coid[coid] = ctx.trace_id
            if ev["kind"] == "order_denied":
                out.denied[by_coid[coid]] = ev["data"]["reason"]
        for f in j.fills():
            out.fills.setdefault(by_coid[f["client_order_id"]], set()).add(f["fill_id"])
    return out


def check_traces(expected: Expected, received: list[ReceivedSpan], service_base: str) -> None:
    """Each filled intent: a complete tree with correct parents and attributes; each denied
    intent ends at ``risk.check`` with its reason. Duplicates (at-least-once) are allowed."""
    traces: dict[str, dict[str, ReceivedSpan]] = defaultdict(dict)
    for s in received:
        traces[s.trace_id][s.span_id] = s
    problems: list[str] = []
    for trace, intent in expected.intents.items():
        if trace not in expected.denied and trace not in expected.fills:
            continue
        spans = list(traces.get(trace, {}).values())
        named: dict[str, list[ReceivedSpan]] = defaultdict(list)
        for s in spans:
            named[s.name].append(s)
        where = f"intent {intent['intent_id']} (trace {trace})"
        roots = named.get("strategy.intent", [])
        if len(roots) != 1 or roots[0].parent_span_id is not None:
            problems.append(f"{where}: root strategy.intent missing or not a root: {roots}")
            continue
        root = roots[0]
        if root.service != f"{service_base}-strategy":
            problems.append(f"{where}: root service {root.service}")
        for key in ATTRS:
            want = intent.get(key) if key not in ("symbol", "side", "quantity") else None
            want = want if want is not None else intent["data"].get(key)
            got = root.attributes.get(f"tradeplane.{key}")
            if got != want:
                problems.append(f"{where}: attribute {key} = {got!r}, journal {want!r}")
        checks = named.get("risk.check", [])
        if len(checks) != 1 or checks[0].parent_span_id != root.span_id:
            problems.append(f"{where}: risk.check not a single child of the root: {checks}")
            continue
        check = checks[0]
        if trace in expected.denied:
            reason = expected.denied[trace]
            if check.attributes.get("tradeplane.decision") != "denied":
                problems.append(f"{where}: denied intent's risk.check decision {check.attributes}")
            if check.attributes.get("tradeplane.reason") != reason:
                problems.append(f"{where}: reason {check.attributes.get('tradeplane.reason')}")
            if set(named) != {"strategy.intent", "risk.check"}:
                problems.append(f"{where}: denied intent has more spans: {sorted(named)}")
            continue
        submits = named.get("broker.submit", [])
        if len(submits) != 1 or submits[0].parent_span_id != check.span_id:
            problems.append(f"{where}: broker.submit not a single child of risk.check")
            continue
        submit = submits[0]
        acks = named.get("venue.ack", [])
        if len(acks) != 1 or acks[0].parent_span_id != submit.span_id:
            problems.append(f"{where}: venue.ack not a single child of broker.submit: {acks}")
        fills = named.get("broker.fill", [])
        got_fills = {f.attributes.get("tradeplane.fill_id") for f in fills}
        if got_fills != expected.fills[trace] or len(fills) != len(got_fills):
            problems.append(
                f"{where}: fills {sorted(map(str, got_fills))}, journal "
                f"{sorted(expected.fills[trace])}"
            )
        if any(f.parent_span_id != submit.span_id for f in fills):
            problems.append(f"{where}: a broker.fill is not a child of broker.submit")
        for s in spans:
            if s.end_ns < s.start_ns:
                problems.append(f"{where}: {s.name} ends before it starts")
    assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} problems)"
