"""Spans built from journal lines shaped exactly as the journal returns them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tradeplane.journal.records import iso_utc
from tradeplane.telemetry.context import (
    BROKER_FILL,
    BROKER_SUBMIT,
    RISK_CHECK,
    RISK_FLATTEN,
    STRATEGY_INTENT,
    VENUE_ACK,
    TraceContext,
    intent_context,
    risk_check_context,
    run_context,
    span_id,
    submit_context,
)
from tradeplane.telemetry.model import SpanEvent, TraceSpan
from tradeplane.telemetry.spans import SpanBuilder

DEP = "demo"
T0 = 1_700_000_000.0
Event = dict[str, Any]
Run = Callable[..., list[TraceSpan]]


def near(value: float) -> Any:
    """Journal times carry microseconds; parsing them back may move the last float bit."""
    return pytest.approx(value, abs=2e-6)


class Journal:
    """Journal lines in the shape ``JournalReader.events`` returns, seqs in order."""

    def __init__(self) -> None:
        self.lines: list[Event] = []

    def add(
        self,
        kind: str,
        ts: float,
        data: dict[str, Any] | None = None,
        *,
        strategy: str | None = None,
        intent_id: str | None = None,
        client_order_id: str | None = None,
        traceparent: str | None = None,
        event_id: str | None = None,
    ) -> Event:
        seq = len(self.lines) + 1
        line = {
            "seq": seq,
            "ts": iso_utc(ts),
            "kind": kind,
            "deployment": DEP,
            "strategy": strategy,
            "intent_id": intent_id,
            "client_order_id": client_order_id,
            "event_id": event_id or f"{kind}/{seq}",
            "traceparent": traceparent,
            "data": data if data is not None else {},
        }
        self.lines.append(line)
        return line

    def of_order(self, coid: str) -> list[Event]:
        return [e for e in self.lines if e["client_order_id"] == coid]


class Flow:
    """One intent's journal lines, written the way strategy, risk and broker write them."""

    def __init__(
        self,
        journal: Journal,
        n: int,
        *,
        strategy: str = "s1",
        ratio: float = 1.0,
        source: str | None = None,
    ) -> None:
        self.j = journal
        self.strategy = strategy
        self.source = source
        self.intent_id, self.coid = f"i{n}", f"c{n}"
        self.root = intent_context(DEP, self.intent_id, ratio=ratio)
        risk = risk_check_context(self.root.traceparent, self.intent_id)
        assert risk is not None
        self.risk: TraceContext = risk
        submit = submit_context(risk.traceparent, self.coid)
        assert submit is not None
        self.submit: TraceContext = submit
        self.status = "pending_submit"
        self.filled = 0.0

    @property
    def trace_id(self) -> str:
        return self.root.trace_id

    def sid(self, name: str, key: str) -> str:
        return span_id(self.trace_id, name, key)

    def _ids(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "intent_id": self.intent_id,
            "client_order_id": self.coid,
        }

    def _order_data(self, **extra: Any) -> dict[str, Any]:
        return {
            "client_order_id": self.coid,
            "intent_id": self.intent_id,
            "strategy": self.strategy,
            "symbol": "BTC-USDT",
            "side": "buy",
            "quantity": 2.0,
            "order_type": "limit",
            "limit_price": 100.0,
            "status": self.status,
            "filled_quantity": self.filled,
            "avg_fill_price": 100.0 if self.filled else None,
            "fees": 0.0,
            "venue_order_id": None if self.status == "pending_submit" else "v1",
            **extra,
        }

    def intent(self, ts: float, bar_recv_ts: float | None) -> Event:
        data: dict[str, Any] = {
            "intent_id": self.intent_id,
            "client_order_id": self.coid,
            "strategy": self.strategy,
            "symbol": "BTC-USDT",
            "side": "buy",
            "quantity": 2.0,
            "order_type": "limit",
            "limit_price": 100.0,
            "trigger": "bar:1",
            "ts": ts,
            "bar_recv_ts": bar_recv_ts,
        }
        if self.source is not None:
            data["source"] = self.source
            data["reason"] = "kill switch"
        return self.j.add("intent", ts, data, traceparent=self.root.traceparent, **self._ids())

    def carried(self, ts: float, bar_recv_ts: float | None) -> dict[str, Any]:
        """The intent as a decision's record carries it (``actors.records.carried_intent``)."""
        return {
            "ts": ts,
            "trigger": "bar:1",
            "bar_recv_ts": bar_recv_ts,
            "order_type": "limit",
            "traceparent": self.root.traceparent,
        }

    def denied(
        self, ts: float, reason: str, received_ts: float, carried: dict[str, Any] | None = None
    ) -> Event:
        data: dict[str, Any] = {
            "reason": reason,
            "message": "too big",
            "figures": {"value": 200.0},
            "symbol": "BTC-USDT",
            "side": "buy",
            "quantity": 2.0,
            "limit_price": 100.0,
            "received_ts": received_ts,
        }
        if carried is not None:
            data["intent"] = carried
        return self.j.add(
            "order_denied", ts, data, traceparent=self.risk.traceparent, **self._ids()
        )

    def _order(self, kind: str, ts: float, status: str, **extra: Any) -> Event:
        self.status = status
        return self.j.add(
            kind,
            ts,
            self._order_data(**extra),
            traceparent=self.submit.traceparent,
            **self._ids(),
        )

    def submitting(
        self,
        ts: float,
        risk_received: float,
        approved: float,
        broker: float,
        carried: dict[str, Any] | None = None,
    ) -> Event:
        trace = {
            "risk_received_ts": risk_received,
            "approved_ts": approved,
            "broker_received_ts": broker,
        }
        extra: dict[str, Any] = {"trace": trace}
        if carried is not None:
            extra["intent"] = carried
            extra["decision"] = {"decision": "approved", "flatten": self.source == "flatten"}
        return self._order("order_submitting", ts, "pending_submit", **extra)

    def submitted(self, ts: float, sent_ts: float) -> Event:
        return self._order("order_submitted", ts, "submitted", sent_ts=sent_ts)

    def accepted(self, ts: float, received_ts: float) -> Event:
        return self._order("order_accepted", ts, "accepted", received_ts=received_ts)

    def rejected(self, ts: float, reason: str, received_ts: float | None = None) -> Event:
        extra: dict[str, Any] = {"reason": reason}
        if received_ts is not None:
            extra["received_ts"] = received_ts
        return self._order("order_rejected", ts, "rejected", **extra)

    def unknown(self, ts: float, reason: str) -> Event:
        return self._order("order_unknown", ts, "unknown", reason=reason)

    def fill(
        self, ts: float, fill_id: str, quantity: float, fill_ts: float, received_ts: float
    ) -> Event:
        self.filled += quantity
        status = "filled" if self.filled >= 2.0 else "partially_filled"
        fill = {
            "fill_id": fill_id,
            "symbol": "BTC-USDT",
            "side": "buy",
            "quantity": quantity,
            "price": 100.0,
            "fee": 0.05,
            "ts": fill_ts,
            "liquidity": "taker",
            "venue_order_id": "v1",
        }
        return self._order("order_filled", ts, status, fill=fill, received_ts=received_ts)


ORDER_ATTRS = {
    "tradeplane.deployment": DEP,
    "tradeplane.strategy": "s1",
    "tradeplane.symbol": "BTC-USDT",
    "tradeplane.side": "buy",
    "tradeplane.quantity": 2.0,
    "tradeplane.price": 100.0,
    "tradeplane.order_type": "limit",
}


def order_attrs(n: int, **extra: Any) -> dict[str, Any]:
    return {
        **ORDER_ATTRS,
        "tradeplane.client_order_id": f"c{n}",
        "tradeplane.intent_id": f"i{n}",
        **{f"tradeplane.{k}": v for k, v in extra.items()},
    }


def by_name(spans: list[TraceSpan]) -> dict[str, list[TraceSpan]]:
    out: dict[str, list[TraceSpan]] = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


def one(spans: list[TraceSpan], name: str) -> TraceSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def assert_well_formed(spans: list[TraceSpan]) -> None:
    for s in spans:
        assert s.start_ts <= s.end_ts, s
        assert s.journal_seq is not None, s


def feed_each(builder: SpanBuilder, lines: list[Event]) -> list[TraceSpan]:
    out: list[TraceSpan] = []
    for line in lines:
        out.extend(builder.feed([line]))
    return out


@pytest.fixture(params=["whole_list", "event_by_event"])
def run(request: pytest.FixtureRequest) -> Run:
    """Build spans from lines with a fresh builder, fed all at once or one line per call."""

    def _run(lines: list[Event], **kw: Any) -> list[TraceSpan]:
        builder = SpanBuilder(**kw)
        if request.param == "whole_list":
            return builder.feed(lines)
        return feed_each(builder, lines)

    return _run


def filled_journal() -> tuple[Journal, Flow]:
    """Intent 1: approved, submitted, accepted, then filled in two parts."""
    j = Journal()
    f = Flow(j, 1)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)
    f.submitted(T0 + 0.007, sent_ts=T0 + 0.006)
    f.accepted(T0 + 0.008, received_ts=T0 + 0.009)
    f.fill(T0 + 0.0101, "f1", 1.5, fill_ts=T0 + 0.010, received_ts=T0 + 0.011)
    f.fill(T0 + 0.0121, "f2", 0.5, fill_ts=T0 + 0.012, received_ts=T0 + 0.013)
    return j, f


# -- the intent carried by its decision (the intent record is journaled off the critical path) --


def carried_journal(*, intent_record: str) -> tuple[Journal, Flow]:
    """Intent 1 approved with ``order_submitting`` carrying the intent; the intent record itself
    ``before`` it (as usual), ``after`` it, or ``lost``."""
    j = Journal()
    f = Flow(j, 1)
    carried = f.carried(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    if intent_record == "before":
        f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, T0 + 0.003, T0 + 0.004, T0 + 0.0045, carried=carried)
    if intent_record == "after":
        f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitted(T0 + 0.007, sent_ts=T0 + 0.006)
    return j, f


@pytest.mark.parametrize("intent_record", ["before", "after", "lost"])
def test_intent_carried_by_order_submitting_then_one_root_the_same_wherever_the_intent_record(
    run: Run, intent_record: str
) -> None:
    j, f = carried_journal(intent_record=intent_record)

    spans = run(j.lines)

    roots = [s for s in spans if s.name == STRATEGY_INTENT]
    assert len(roots) == 1
    [root] = roots
    assert root.span_id == f.root.span_id and root.parent_span_id is None
    assert (root.start_ts, root.end_ts) == (near(T0 + 0.001), near(T0 + 0.002))
    assert root.attributes == order_attrs(1, trigger="bar:1")
    assert [s.name for s in spans if s.name != STRATEGY_INTENT] == [RISK_CHECK, BROKER_SUBMIT]
    assert one(spans, RISK_CHECK).parent_span_id == f.root.span_id
    assert_well_formed(spans)


def test_intent_record_lost_when_restarted_with_lookup_then_root_from_order_submitting() -> None:
    j, f = carried_journal(intent_record="lost")
    builder = SpanBuilder(lookup=j.of_order)

    spans = builder.feed(j.lines)

    assert one(spans, STRATEGY_INTENT).span_id == f.root.span_id


def test_intent_record_lost_when_denied_then_root_from_the_denial(run: Run) -> None:
    j = Journal()
    f = Flow(j, 2)
    f.denied(T0 + 0.004, "max_order_value", T0 + 0.003, f.carried(T0 + 0.002, T0 + 0.001))

    spans = run(j.lines)

    assert [s.name for s in spans] == [STRATEGY_INTENT, RISK_CHECK]
    assert spans[0].span_id == f.root.span_id
    assert (spans[0].start_ts, spans[0].end_ts) == (near(T0 + 0.001), near(T0 + 0.002))
    assert spans[1].parent_span_id == f.root.span_id


def test_flatten_intent_carried_by_order_submitting_then_risk_flatten_root(run: Run) -> None:
    j = Journal()
    f = Flow(j, 3, source="flatten")
    f.submitting(T0 + 0.005, T0 + 0.003, T0 + 0.004, T0 + 0.0045, f.carried(T0 + 0.002, None))

    spans = run(j.lines)

    assert [s.name for s in spans] == [RISK_FLATTEN, RISK_CHECK]


# -- a filled intent -----------------------------------------------------------------------------


def test_filled_intent_then_one_span_per_step_in_journal_order(run: Run) -> None:
    j, f = filled_journal()

    spans = run(j.lines)

    assert [s.name for s in spans] == [
        STRATEGY_INTENT,
        RISK_CHECK,
        BROKER_SUBMIT,
        VENUE_ACK,
        BROKER_FILL,
        BROKER_FILL,
    ]
    assert [s.journal_seq for s in spans] == [1, 2, 3, 4, 5, 6]
    assert {s.trace_id for s in spans} == {f.trace_id}
    assert len({s.span_id for s in spans}) == 6
    assert_well_formed(spans)


def test_filled_intent_then_parents_chain_to_the_root(run: Run) -> None:
    j, f = filled_journal()

    spans = by_name(run(j.lines))

    [root], [risk], [submit], [ack] = (
        spans[STRATEGY_INTENT],
        spans[RISK_CHECK],
        spans[BROKER_SUBMIT],
        spans[VENUE_ACK],
    )
    assert root.span_id == f.root.span_id and root.parent_span_id is None
    assert risk.span_id == f.risk.span_id and risk.parent_span_id == f.root.span_id
    assert submit.span_id == f.submit.span_id and submit.parent_span_id == f.risk.span_id
    assert ack.span_id == f.sid(VENUE_ACK, "c1") and ack.parent_span_id == f.submit.span_id
    assert [s.span_id for s in spans[BROKER_FILL]] == [
        f.sid(BROKER_FILL, "f1"),
        f.sid(BROKER_FILL, "f2"),
    ]
    assert {s.parent_span_id for s in spans[BROKER_FILL]} == {f.submit.span_id}


def test_filled_intent_then_root_span_runs_from_bar_to_intent(run: Run) -> None:
    j, _ = filled_journal()

    root = one(run(j.lines), STRATEGY_INTENT)

    assert root.component == "strategy"
    assert root.kind == "producer"
    assert (root.start_ts, root.end_ts) == (near(T0 + 0.001), near(T0 + 0.002))
    assert root.attributes == order_attrs(1, trigger="bar:1")
    assert root.status == "unset"
    assert root.journal_seq == 1


def test_filled_intent_then_risk_check_runs_from_received_to_approved(run: Run) -> None:
    j, _ = filled_journal()

    risk = one(run(j.lines), RISK_CHECK)

    assert risk.component == "risk"
    assert (risk.start_ts, risk.end_ts) == (near(T0 + 0.003), near(T0 + 0.004))
    assert risk.attributes == order_attrs(1, decision="approved")
    assert risk.events == ()
    assert risk.journal_seq == 2


def test_filled_intent_then_submit_runs_from_broker_received_to_submitted(run: Run) -> None:
    j, _ = filled_journal()

    submit = one(run(j.lines), BROKER_SUBMIT)

    assert submit.component == "broker"
    assert submit.kind == "client"
    assert (submit.start_ts, submit.end_ts) == (near(T0 + 0.0045), near(T0 + 0.007))
    assert submit.status == "ok" and submit.status_message is None
    assert submit.attributes == order_attrs(1, outcome="submitted")
    assert submit.journal_seq == 3


def test_filled_intent_then_venue_ack_runs_from_sent_to_received(run: Run) -> None:
    j, _ = filled_journal()

    ack = one(run(j.lines), VENUE_ACK)

    assert ack.component == "venue"
    assert ack.kind == "server"
    assert (ack.start_ts, ack.end_ts) == (near(T0 + 0.006), near(T0 + 0.009))
    assert ack.status == "unset"
    assert ack.attributes == {
        **order_attrs(1, venue_order_id="v1", acknowledged_by="accepted"),
        "tradeplane.venue_ts": near(T0 + 0.008),
    }
    assert ack.journal_seq == 4


def test_filled_intent_then_each_fill_runs_from_venue_fill_time_to_received(run: Run) -> None:
    j, _ = filled_journal()

    first, second = by_name(run(j.lines))[BROKER_FILL]

    assert (first.start_ts, first.end_ts) == (near(T0 + 0.010), near(T0 + 0.011))
    assert (second.start_ts, second.end_ts) == (near(T0 + 0.012), near(T0 + 0.013))
    assert first.component == second.component == "broker"
    assert first.kind == "consumer"
    assert first.attributes == order_attrs(
        1,
        fill_id="f1",
        fill_quantity=1.5,
        fill_price=100.0,
        fee=0.05,
        liquidity="taker",
        filled_quantity=1.5,
    )
    assert second.attributes["tradeplane.fill_id"] == "f2"
    assert second.attributes["tradeplane.filled_quantity"] == 2.0
    assert (first.journal_seq, second.journal_seq) == (5, 6)


def test_filled_intent_when_fed_whole_or_line_by_line_then_same_spans() -> None:
    j, _ = filled_journal()
    denied = Flow(j, 2)
    denied.intent(T0 + 1.0, bar_recv_ts=T0 + 0.9)
    denied.denied(T0 + 1.2, "max_order_value", received_ts=T0 + 1.1)

    assert SpanBuilder().feed(j.lines) == feed_each(SpanBuilder(), j.lines)


def test_event_after_the_order_closed_then_no_second_submit_or_ack_span() -> None:
    j, f = filled_journal()
    builder = SpanBuilder()
    builder.feed(j.lines)
    late = f._order("order_cancel_rejected", T0 + 0.02, "filled", reason="already filled")

    assert builder.feed([late]) == []


def test_venue_rejection_after_unknown_then_venue_ack_with_the_error(run: Run) -> None:
    j = Journal()
    f = Flow(j, 7)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)
    f.unknown(T0 + 0.006, "SUBMIT_UNCONFIRMED: timeout")
    f.rejected(T0 + 0.008, "NOT_RECEIVED_BY_VENUE", received_ts=T0 + 0.009)

    spans = run(j.lines)

    assert [s.name for s in spans] == [STRATEGY_INTENT, RISK_CHECK, BROKER_SUBMIT, VENUE_ACK]
    assert spans[3].status == "error" and spans[3].status_message == "NOT_RECEIVED_BY_VENUE"


# -- risk's denial -------------------------------------------------------------------------------


def test_denied_intent_then_risk_check_with_reason_and_a_denial_event(run: Run) -> None:
    j = Journal()
    f = Flow(j, 2)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.denied(T0 + 0.004, "max_order_value", received_ts=T0 + 0.003)

    spans = run(j.lines)

    assert [s.name for s in spans] == [STRATEGY_INTENT, RISK_CHECK]
    risk = spans[1]
    assert risk.trace_id == f.trace_id
    assert risk.span_id == f.risk.span_id
    assert risk.parent_span_id == f.root.span_id
    assert risk.component == "risk"
    assert (risk.start_ts, risk.end_ts) == (near(T0 + 0.003), near(T0 + 0.004))
    assert risk.attributes == order_attrs(
        2, decision="denied", reason="max_order_value", message="too big"
    )
    [event] = risk.events
    assert event.name == "order_denied"
    assert event.ts == near(T0 + 0.004)
    assert event.attributes == {"tradeplane.reason": "max_order_value"}
    assert risk.journal_seq == 2


def test_denied_intent_without_received_time_then_risk_check_is_an_instant(run: Run) -> None:
    j = Journal()
    f = Flow(j, 2)
    f.intent(T0 + 0.002, bar_recv_ts=None)
    line = f.denied(T0 + 0.004, "stale_data", received_ts=0.0)
    line["data"]["received_ts"] = None

    root, risk = run(j.lines)

    assert root.start_ts == root.end_ts == near(T0 + 0.002)
    assert risk.start_ts == risk.end_ts == near(T0 + 0.004)


# -- orders that fail ----------------------------------------------------------------------------


def test_order_blocked_by_broker_then_submit_span_has_error_and_no_venue_ack(run: Run) -> None:
    j = Journal()
    f = Flow(j, 3)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)
    f.rejected(T0 + 0.006, "insufficient balance")

    spans = run(j.lines)

    assert [s.name for s in spans] == [STRATEGY_INTENT, RISK_CHECK, BROKER_SUBMIT]
    submit = spans[2]
    assert submit.span_id == f.submit.span_id
    assert submit.parent_span_id == f.risk.span_id
    assert submit.status == "error"
    assert submit.status_message == "insufficient balance"
    assert (submit.start_ts, submit.end_ts) == (near(T0 + 0.0045), near(T0 + 0.006))
    assert submit.attributes["tradeplane.outcome"] == "rejected"
    assert submit.journal_seq == 3


def test_order_rejected_by_venue_after_submitted_then_venue_ack_has_error(run: Run) -> None:
    j = Journal()
    f = Flow(j, 4)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)
    f.submitted(T0 + 0.007, sent_ts=T0 + 0.006)
    f.rejected(T0 + 0.008, "post-only would cross", received_ts=T0 + 0.009)

    spans = run(j.lines)

    assert [s.name for s in spans] == [STRATEGY_INTENT, RISK_CHECK, BROKER_SUBMIT, VENUE_ACK]
    submit, ack = spans[2], spans[3]
    assert submit.status == "ok"
    assert ack.status == "error"
    assert ack.status_message == "post-only would cross"
    assert ack.parent_span_id == f.submit.span_id
    assert (ack.start_ts, ack.end_ts) == (near(T0 + 0.006), near(T0 + 0.009))
    assert ack.attributes["tradeplane.acknowledged_by"] == "rejected"
    assert ack.journal_seq == 4


def test_order_unknown_then_submit_span_has_error(run: Run) -> None:
    j = Journal()
    f = Flow(j, 5)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)
    f.unknown(T0 + 2.0, "submit timed out")

    spans = run(j.lines)

    assert [s.name for s in spans] == [STRATEGY_INTENT, RISK_CHECK, BROKER_SUBMIT]
    submit = spans[2]
    assert submit.status == "error"
    assert submit.status_message == "submit timed out"
    assert (submit.start_ts, submit.end_ts) == (near(T0 + 0.0045), near(T0 + 2.0))
    assert submit.attributes["tradeplane.outcome"] == "unknown"


def test_order_unknown_then_accepted_then_one_submit_and_an_ack_from_broker_received(
    run: Run,
) -> None:
    j = Journal()
    f = Flow(j, 5)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)
    f.unknown(T0 + 2.0, "submit timed out")
    f.accepted(T0 + 2.5, received_ts=T0 + 2.6)

    spans = run(j.lines)

    assert [s.name for s in spans] == [STRATEGY_INTENT, RISK_CHECK, BROKER_SUBMIT, VENUE_ACK]
    ack = spans[3]
    assert ack.status == "unset"
    assert (ack.start_ts, ack.end_ts) == (near(T0 + 0.0045), near(T0 + 2.6))


def test_fill_without_prior_accepted_then_venue_ack_once_at_the_first_fill(run: Run) -> None:
    j = Journal()
    f = Flow(j, 6)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)
    f.submitted(T0 + 0.007, sent_ts=T0 + 0.006)
    f.fill(T0 + 0.0101, "f1", 1.0, fill_ts=T0 + 0.010, received_ts=T0 + 0.011)
    f.fill(T0 + 0.0121, "f2", 1.0, fill_ts=T0 + 0.012, received_ts=T0 + 0.013)

    spans = run(j.lines)

    assert [s.name for s in spans] == [
        STRATEGY_INTENT,
        RISK_CHECK,
        BROKER_SUBMIT,
        VENUE_ACK,
        BROKER_FILL,
        BROKER_FILL,
    ]
    ack = spans[3]
    assert ack.journal_seq == 4
    assert ack.parent_span_id == f.submit.span_id
    assert (ack.start_ts, ack.end_ts) == (near(T0 + 0.006), near(T0 + 0.011))
    assert ack.attributes["tradeplane.acknowledged_by"] == "filled"
    assert [s.journal_seq for s in spans[4:]] == [4, 5]
    assert_well_formed(spans)


# -- sampling ------------------------------------------------------------------------------------


def unsampled_journal() -> tuple[Journal, Flow]:
    j = Journal()
    f = Flow(j, 7, ratio=0.0)
    f.intent(T0 + 0.002, bar_recv_ts=T0 + 0.001)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)
    f.submitted(T0 + 0.007, sent_ts=T0 + 0.006)
    f.accepted(T0 + 0.008, received_ts=T0 + 0.009)
    f.fill(T0 + 0.0101, "f1", 2.0, fill_ts=T0 + 0.010, received_ts=T0 + 0.011)
    return j, f


def test_unsampled_intent_then_no_spans_and_every_line_skipped() -> None:
    j, f = unsampled_journal()
    assert f.root.traceparent.endswith("-00")
    builder = SpanBuilder()

    spans = builder.feed(j.lines)

    assert spans == []
    assert builder.skipped == len(j.lines)


def test_unsampled_intent_when_include_unsampled_then_all_spans(run: Run) -> None:
    j, f = unsampled_journal()

    spans = run(j.lines, include_unsampled=True)

    assert [s.name for s in spans] == [
        STRATEGY_INTENT,
        RISK_CHECK,
        BROKER_SUBMIT,
        VENUE_ACK,
        BROKER_FILL,
    ]
    assert {s.trace_id for s in spans} == {f.trace_id}


def test_intent_without_traceparent_then_its_order_is_skipped() -> None:
    j, _ = filled_journal()
    for line in j.lines:
        line["traceparent"] = None
    builder = SpanBuilder()

    assert builder.feed(j.lines) == []
    assert builder.skipped == len(j.lines)


# -- a restarted exporter ------------------------------------------------------------------------


def test_restart_when_lookup_given_then_fill_span_equals_the_uninterrupted_one() -> None:
    j, _ = filled_journal()
    expected = SpanBuilder().feed(j.lines)
    last_fill = j.lines[-1]
    calls: list[str] = []

    def lookup(coid: str) -> list[Event]:
        calls.append(coid)
        return j.of_order(coid)  # the whole order, later lines included, as the journal has it

    spans = SpanBuilder(lookup=lookup).feed([last_fill])

    assert calls == ["c1"]
    assert spans == [expected[-1]]


def test_restart_when_lookup_given_then_venue_ack_keeps_the_sent_time() -> None:
    j, _ = filled_journal()
    expected = SpanBuilder().feed(j.lines)
    accepted = j.lines[3]

    spans = SpanBuilder(lookup=j.of_order).feed(j.lines[3:])

    assert accepted["kind"] == "order_accepted"
    assert spans == expected[3:]


@pytest.mark.parametrize("restart_at", range(8))
def test_restart_at_any_line_when_lookup_given_then_same_spans_as_uninterrupted(
    restart_at: int,
) -> None:
    j, _ = filled_journal()
    denied = Flow(j, 2)
    denied.intent(T0 + 1.0, bar_recv_ts=T0 + 0.9)
    denied.denied(T0 + 1.2, "max_order_value", received_ts=T0 + 1.1)
    uninterrupted = SpanBuilder().feed(j.lines)

    spans = SpanBuilder(lookup=j.of_order).feed(j.lines[restart_at:])

    assert spans == [s for s in uninterrupted if (s.journal_seq or 0) > restart_at]


def test_restart_without_lookup_then_fill_ids_derive_from_the_event_itself() -> None:
    j, f = filled_journal()
    last_fill = j.lines[-1]

    fill = one(SpanBuilder().feed([last_fill]), BROKER_FILL)

    assert fill.trace_id == f.trace_id
    assert fill.span_id == f.sid(BROKER_FILL, "f2")
    assert fill.parent_span_id == f.submit.span_id
    assert (fill.start_ts, fill.end_ts) == (near(T0 + 0.012), near(T0 + 0.013))
    assert fill.attributes["tradeplane.intent_id"] == "i1"
    assert fill.attributes["tradeplane.client_order_id"] == "c1"
    assert fill.attributes["tradeplane.strategy"] == "s1"
    assert fill.attributes["tradeplane.symbol"] == "BTC-USDT"


def test_restart_without_lookup_when_event_unsampled_then_skipped() -> None:
    j, _ = unsampled_journal()
    builder = SpanBuilder()

    assert builder.feed([j.lines[-1]]) == []
    assert builder.skipped == 1


def test_restart_when_lookup_finds_nothing_then_ids_derive_from_the_event() -> None:
    j, f = filled_journal()

    fill = one(SpanBuilder(lookup=lambda _coid: []).feed([j.lines[-1]]), BROKER_FILL)

    assert fill.span_id == f.sid(BROKER_FILL, "f2")
    assert fill.parent_span_id == f.submit.span_id


# -- flatten -------------------------------------------------------------------------------------


def test_flatten_intent_then_risk_flatten_root(run: Run) -> None:
    j = Journal()
    f = Flow(j, 8, source="flatten")
    f.intent(T0 + 0.002, bar_recv_ts=None)
    f.submitting(T0 + 0.005, risk_received=T0 + 0.003, approved=T0 + 0.004, broker=T0 + 0.0045)

    root, risk = run(j.lines)

    assert root.name == "risk.flatten"
    assert root.component == "risk"
    assert root.parent_span_id is None
    assert root.span_id == f.root.span_id
    assert root.attributes["tradeplane.reason"] == "kill switch"
    assert risk.name == RISK_CHECK and risk.parent_span_id == f.root.span_id


# -- the supervisor's run ------------------------------------------------------------------------


def supervisor_journal() -> Journal:
    j = Journal()
    started = {
        "run_id": "r1",
        "started_ts": T0,
        "mode": "paper",
        "venue": "sim",
        "strategies": ["s1", "s2"],
    }
    j.add("deployment_started", T0 + 1.0, started, event_id="started")
    health = {
        "component": "deployment",
        "previous": "starting",
        "health": "healthy",
        "reason": "all children running",
    }
    j.add("health_changed", T0 + 2.0, health, event_id="hc1")
    attempt = {"target": "broker", "roles": ["broker"], "attempt": 1, "cause": "died"}
    j.add("recovery_attempt", T0 + 5.0, attempt, event_id="ra1")
    ok = {"target": "broker", "roles": ["broker"], "attempt": 1, "took_s": 1.9}
    j.add("recovery_succeeded", T0 + 7.0, ok, event_id="rs1")
    j.add("recovery_attempt", T0 + 8.0, {**attempt, "attempt": 2}, event_id="ra2")
    failed = {"target": "broker", "attempt": 2, "error": "actor did not start"}
    j.add("recovery_failed", T0 + 9.5, failed, event_id="rf2")
    return j


def test_deployment_started_then_supervisor_run_root(run: Run) -> None:
    j = supervisor_journal()
    ctx = run_context(DEP, "r1")

    root = run(j.lines)[0]

    assert root.name == "supervisor.run"
    assert root.component == "supervisor"
    assert (root.trace_id, root.span_id, root.parent_span_id) == (ctx.trace_id, ctx.span_id, None)
    assert (root.start_ts, root.end_ts) == (near(T0), near(T0 + 1.0))
    assert root.attributes == {
        "tradeplane.deployment": DEP,
        "tradeplane.run_id": "r1",
        "tradeplane.mode": "paper",
        "tradeplane.venue": "sim",
        "tradeplane.strategies": "s1,s2",
    }
    assert root.journal_seq == 1


def test_health_changed_then_health_span_under_the_run_with_an_event(run: Run) -> None:
    j = supervisor_journal()
    ctx = run_context(DEP, "r1")

    health = one(run(j.lines), "supervisor.health")

    assert health.trace_id == ctx.trace_id
    assert health.parent_span_id == ctx.span_id
    assert health.span_id == span_id(ctx.trace_id, "supervisor.health", "hc1")
    assert health.start_ts == health.end_ts == near(T0 + 2.0)
    assert health.attributes == {
        "tradeplane.deployment": DEP,
        "tradeplane.run_id": "r1",
        "tradeplane.health": "healthy",
        "tradeplane.previous": "starting",
        "tradeplane.reason": "all children running",
    }
    assert health.events == (
        SpanEvent(
            "health_changed",
            health.end_ts,
            {
                "tradeplane.health": "healthy",
                "tradeplane.previous": "starting",
                "tradeplane.reason": "all children running",
            },
        ),
    )
    assert health.journal_seq == 2


def test_recovery_succeeded_then_recovery_span_from_attempt_to_success_ok(run: Run) -> None:
    j = supervisor_journal()
    ctx = run_context(DEP, "r1")

    ok, _failed = by_name(run(j.lines))["supervisor.recovery"]

    assert ok.parent_span_id == ctx.span_id
    assert (ok.start_ts, ok.end_ts) == (near(T0 + 5.0), near(T0 + 7.0))
    assert ok.status == "ok" and ok.status_message is None
    assert ok.attributes["tradeplane.target"] == "broker"
    assert ok.attributes["tradeplane.attempt"] == 1
    assert ok.attributes["tradeplane.outcome"] == "succeeded"
    assert ok.attributes["tradeplane.took_s"] == 1.9
    assert ok.journal_seq == 4


def test_recovery_failed_then_recovery_span_has_error(run: Run) -> None:
    j = supervisor_journal()

    _ok, failed = by_name(run(j.lines))["supervisor.recovery"]

    assert (failed.start_ts, failed.end_ts) == (near(T0 + 8.0), near(T0 + 9.5))
    assert failed.status == "error"
    assert failed.status_message == "actor did not start"
    assert failed.attributes["tradeplane.outcome"] == "failed"
    assert failed.journal_seq == 6


def test_recovery_attempt_then_its_own_span_under_the_run(run: Run) -> None:
    j = supervisor_journal()
    ctx = run_context(DEP, "r1")

    attempts = by_name(run(j.lines))["supervisor.recovery_attempt"]

    assert [a.journal_seq for a in attempts] == [3, 5]
    assert {a.parent_span_id for a in attempts} == {ctx.span_id}
    assert attempts[0].attributes["tradeplane.cause"] == "died"


def test_supervisor_run_when_fed_whole_or_line_by_line_then_same_spans() -> None:
    j = supervisor_journal()

    spans = SpanBuilder().feed(j.lines)

    assert spans == feed_each(SpanBuilder(), j.lines)
    assert [s.name for s in spans] == [
        "supervisor.run",
        "supervisor.health",
        "supervisor.recovery_attempt",
        "supervisor.recovery",
        "supervisor.recovery_attempt",
        "supervisor.recovery",
    ]
    assert_well_formed(spans)


def test_recovery_succeeded_without_seen_attempt_then_start_from_took_s() -> None:
    j = supervisor_journal()
    success = j.lines[3]

    [span] = SpanBuilder(run_id="r1").feed([success])

    assert span.name == "supervisor.recovery"
    assert (span.start_ts, span.end_ts) == (near(T0 + 7.0 - 1.9), near(T0 + 7.0))
    assert span.parent_span_id == run_context(DEP, "r1").span_id


def test_supervisor_event_before_any_run_then_skipped() -> None:
    j = supervisor_journal()
    builder = SpanBuilder()

    assert builder.feed([j.lines[1]]) == []
    assert builder.skipped == 1


def test_halt_failed_then_an_error_span_under_the_run_naming_the_error(run: Run) -> None:
    j = supervisor_journal()
    refused = {"error": "ChildGone: broker: dead", "attempt": 1, "retry_in_s": 0.5}
    j.add("halt_failed", T0 + 10.0, refused, event_id="hf1")
    j.add("halt_succeeded", T0 + 11.0, {"attempts": 2}, event_id="hs1")

    spans = run(j.lines)
    failed, succeeded = (
        one(spans, "supervisor.halt_failed"),
        one(spans, "supervisor.halt_succeeded"),
    )

    assert failed.parent_span_id == succeeded.parent_span_id == run_context(DEP, "r1").span_id
    assert (failed.status, failed.status_message) == ("error", "ChildGone: broker: dead")
    assert succeeded.status != "error"
