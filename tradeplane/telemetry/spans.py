"""Spans from journal events (pure: no IO; the journal lookup is injected).

Tracing costs the trading path nothing but a few ids: each actor writes what a span needs (its
times, its trace context) into the journal records it writes anyway, durably, before it acts.
The exporter turns those records into spans. So a SIGKILLed actor loses no finished span, and a
down collector never touches an order.

Per intent (DESIGN §6)::

    strategy.intent                       intent record (bar received -> intent emitted)
      risk.check                          order_denied, or order_submitting (approved)
        broker.submit                     order_submitting -> order_submitted
          venue.ack                       order sent -> order_accepted (or a venue rejection)
          broker.fill (one per fill)      venue fill time -> broker journaled it

Per supervisor run: ``supervisor.run`` with ``supervisor.health``, ``supervisor.recovery`` and
one span per other supervisor event as children.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tradeplane.protocol.events import EventKind
from tradeplane.telemetry.context import (
    BROKER_FILL,
    BROKER_SUBMIT,
    RISK_CHECK,
    RISK_FLATTEN,
    STRATEGY_INTENT,
    VENUE_ACK,
    TraceContext,
    intent_context,
    parse_traceparent,
    span_id,
)
from tradeplane.telemetry.model import AttributeValue, SpanEvent, SpanStatus, TraceSpan
from tradeplane.telemetry.span_values import Event, root_span
from tradeplane.telemetry.span_values import attrs as _attrs
from tradeplane.telemetry.span_values import event_ts as _event_ts
from tradeplane.telemetry.span_values import first_number as _first
from tradeplane.telemetry.span_values import number as _num
from tradeplane.telemetry.supervisor_spans import SUPERVISOR_KINDS, SupervisorTrace

Lookup = Callable[[str], list[Event]]
"""All journal events of one client order id, in journal order (to rebuild a forgotten order)."""

# Orders kept after they close too (a late event still finds its spans' state); beyond this the
# lookup rebuilds an order from the journal.
_ORDER_MEMORY = 10_000


@dataclass(slots=True)
class _Order:
    ctx: TraceContext  # the intent's root span
    coid: str
    attrs: dict[str, AttributeValue]
    submit_start: float | None = None
    sent_ts: float | None = None
    submit_done: bool = False
    acked: bool = False
    root_done: bool = False  # the intent's root span was built (from whichever record)


class SpanBuilder:
    """Feed journal events in journal order; get back the spans they finish.

    ``lookup`` (optional) returns an order's earlier events when the builder starts in the middle
    of the journal (a restarted exporter), so a fill still finds its trace."""

    def __init__(
        self,
        *,
        lookup: Lookup | None = None,
        run_id: str | None = None,
        include_unsampled: bool = False,
    ) -> None:
        self._lookup = lookup
        self._all = include_unsampled  # offline tools show every intent, sampled or not
        self._orders: OrderedDict[str, _Order] = OrderedDict()
        self._supervisor = SupervisorTrace(run_id)
        self._skipped = 0  # events of traces that are unsampled or have no context

    @property
    def skipped(self) -> int:
        return self._skipped + self._supervisor.skipped

    # -- entry point ---------------------------------------------------------------------------

    def feed(self, events: Iterable[Event]) -> list[TraceSpan]:
        out: list[TraceSpan] = []
        for ev in events:
            out.extend(self._one(ev))
        return out

    def _one(self, ev: Event) -> list[TraceSpan]:
        kind = ev.get("kind")
        if kind == EventKind.INTENT:
            return self._intent(ev)
        if kind == EventKind.ORDER_DENIED:
            return self._denied(ev)
        if isinstance(kind, str) and kind.startswith("order_"):
            return self._order_event(ev, kind)
        if kind == EventKind.DEPLOYMENT_STARTED:
            return self._supervisor.run_started(ev)
        if kind in SUPERVISOR_KINDS:
            return self._supervisor.event(ev, kind)
        return []

    # -- the intent's trace --------------------------------------------------------------------

    def _intent(self, ev: Event) -> list[TraceSpan]:
        ctx = parse_traceparent(ev.get("traceparent"))
        data = ev.get("data") or {}
        coid = ev.get("client_order_id") or data.get("client_order_id")
        if ctx is None or not coid:
            self._skipped += 1
            return []
        attrs = _attrs(
            deployment=ev.get("deployment"),
            strategy=ev.get("strategy") or data.get("strategy"),
            symbol=data.get("symbol"),
            side=data.get("side"),
            quantity=data.get("quantity"),
            price=data.get("limit_price"),
            order_type=data.get("order_type"),
            client_order_id=coid,
            intent_id=ev.get("intent_id"),
        )
        # The intent record is journaled off the critical path: the decision that carried the
        # intent may be in the journal first, and its root span built from it already.
        order = self._orders.get(coid)
        if order is not None and order.root_done:
            return []
        if order is None:
            order = _Order(ctx, coid, attrs)
        order.root_done = True
        self._remember(order)
        if not ctx.sampled and not self._all:
            self._skipped += 1
            return []
        flatten = data.get("source") == "flatten"
        end = _event_ts(ev)
        start = _first(data.get("bar_recv_ts"), end)
        extra = _attrs(trigger=data.get("trigger"), reason=data.get("reason"))
        return [_intent_root(ctx, flatten, start, end, {**attrs, **extra}, ev)]

    def _carried_root(self, order: _Order, ev: Event) -> list[TraceSpan]:
        """The intent's root span from the intent a decision's record carries, when the intent
        record itself has not been seen (lost, or later in the journal). Built from the same
        times as the intent record's, so a builder that starts between the two and builds it
        again (no lookup) produces the same span."""
        data = ev.get("data") or {}
        carried = data.get("intent")
        if order.root_done or not isinstance(carried, dict):
            return []
        ctx = parse_traceparent(carried.get("traceparent"))
        if ctx is None or ctx.trace_id != order.ctx.trace_id:
            return []
        order.root_done = True
        decision = data.get("decision")
        flatten = isinstance(decision, dict) and bool(decision.get("flatten"))
        end = _first(carried.get("ts"), _event_ts(ev))
        start = _first(carried.get("bar_recv_ts"), end)
        attrs = {
            **order.attrs,
            **_attrs(order_type=carried.get("order_type"), trigger=carried.get("trigger")),
        }
        return [_intent_root(ctx, flatten, start, end, attrs, ev)]

    def _denied(self, ev: Event) -> list[TraceSpan]:
        order = self._order(ev)
        if order is None:
            return []
        data = ev.get("data") or {}
        end = _event_ts(ev)
        start = _first(data.get("received_ts"), end)
        reason = data.get("reason")
        return [
            *self._carried_root(order, ev),
            self._risk_span(
                order,
                ev,
                start,
                end,
                _attrs(decision="denied", reason=reason, message=data.get("message")),
                events=(SpanEvent(EventKind.ORDER_DENIED, end, _attrs(reason=reason)),),
            ),
        ]

    def _risk_span(
        self,
        order: _Order,
        ev: Event,
        start: float,
        end: float,
        extra: dict[str, AttributeValue],
        events: tuple[SpanEvent, ...] = (),
    ) -> TraceSpan:
        """``risk.check``: a child of the intent's root, whether it approved or denied."""
        sid = span_id(order.ctx.trace_id, RISK_CHECK, _intent_key(ev, order))
        return self._span(
            order,
            RISK_CHECK,
            sid,
            order.ctx.span_id,
            "risk",
            start,
            end,
            ev,
            extra=extra,
            events=events,
        )

    def _order_event(self, ev: Event, kind: str) -> list[TraceSpan]:
        order = self._order(ev)
        if order is None:
            return []
        data = ev.get("data") or {}
        ts = _event_ts(ev)
        received = _first(data.get("received_ts"), ts)
        out: list[TraceSpan] = []
        if kind == EventKind.ORDER_SUBMITTING:
            trace = data.get("trace") or {}
            start = _first(trace.get("risk_received_ts"), ts)
            end = _first(trace.get("approved_ts"), start)
            out.extend(self._carried_root(order, ev))
            out.append(self._risk_span(order, ev, start, end, _attrs(decision="approved")))
            order.submit_start = _first(trace.get("broker_received_ts"), ts)
            return out
        # A rejection before the submit span closed is the broker's (held back, never received
        # by the venue): it ends broker.submit. One after it is the venue's answer: venue.ack.
        submitted_before = order.submit_done
        if not order.submit_done and kind != EventKind.ORDER_PENDING_CANCEL:
            out.append(self._submit_span(order, ev, kind, ts, data))
        if kind == EventKind.ORDER_SUBMITTED:
            sent = _num(data.get("sent_ts"))
            order.sent_ts = sent if sent is not None else order.sent_ts
        elif kind in (EventKind.ORDER_ACCEPTED, EventKind.ORDER_FILLED) and not order.acked:
            out.append(self._ack_span(order, ev, received, error=None))
        elif kind == EventKind.ORDER_REJECTED and not order.acked and submitted_before:
            out.append(self._ack_span(order, ev, received, error=data.get("reason") or "rejected"))
        if kind == EventKind.ORDER_FILLED and isinstance(data.get("fill"), dict):
            out.append(self._fill_span(order, ev, data["fill"], received))
        return out

    def _submit_span(
        self, order: _Order, ev: Event, kind: str, ts: float, data: dict[str, Any]
    ) -> TraceSpan:
        order.submit_done = True
        start = order.submit_start if order.submit_start is not None else ts
        status: SpanStatus = "ok"
        message = None
        if kind == EventKind.ORDER_REJECTED:
            status, message = "error", str(data.get("reason") or "rejected")
        elif kind == EventKind.ORDER_UNKNOWN:
            status, message = "error", str(data.get("reason") or "unknown")
        return self._span(
            order,
            BROKER_SUBMIT,
            span_id(order.ctx.trace_id, BROKER_SUBMIT, order.coid),
            span_id(order.ctx.trace_id, RISK_CHECK, _intent_key(ev, order)),
            "broker",
            start,
            ts,
            ev,
            extra=_attrs(outcome=kind.removeprefix("order_")),
            status=status,
            message=message,
            kind="client",
        )

    def _ack_span(
        self, order: _Order, ev: Event, received: float, *, error: str | None
    ) -> TraceSpan:
        order.acked = True
        data = ev.get("data") or {}
        start = _first(order.sent_ts, order.submit_start, received)
        return self._span(
            order,
            VENUE_ACK,
            span_id(order.ctx.trace_id, VENUE_ACK, order.coid),
            span_id(order.ctx.trace_id, BROKER_SUBMIT, order.coid),
            "venue",
            start,
            received,
            ev,
            extra=_attrs(
                venue_order_id=data.get("venue_order_id"),
                venue_ts=_event_ts(ev),
                acknowledged_by=str(ev.get("kind", "")).removeprefix("order_"),
            ),
            status="error" if error else "unset",
            message=error,
            kind="server",
        )

    def _fill_span(
        self, order: _Order, ev: Event, fill: dict[str, Any], received: float
    ) -> TraceSpan:
        fill_id = str(fill.get("fill_id"))
        start = _first(fill.get("ts"), received)
        return self._span(
            order,
            BROKER_FILL,
            span_id(order.ctx.trace_id, BROKER_FILL, fill_id),
            span_id(order.ctx.trace_id, BROKER_SUBMIT, order.coid),
            "broker",
            start,
            max(start, received),
            ev,
            extra=_attrs(
                fill_id=fill_id,
                fill_quantity=fill.get("quantity"),
                fill_price=fill.get("price"),
                fee=fill.get("fee"),
                liquidity=fill.get("liquidity"),
                filled_quantity=(ev.get("data") or {}).get("filled_quantity"),
            ),
            kind="consumer",
        )

    def _span(
        self,
        order: _Order,
        name: str,
        sid: str,
        parent: str,
        component: str,
        start: float,
        end: float,
        ev: Event,
        *,
        extra: dict[str, AttributeValue] | None = None,
        events: tuple[SpanEvent, ...] = (),
        status: SpanStatus = "unset",
        message: str | None = None,
        kind: Any = "internal",
    ) -> TraceSpan:
        return TraceSpan(
            trace_id=order.ctx.trace_id,
            span_id=sid,
            parent_span_id=parent,
            name=name,
            component=component,
            start_ts=min(start, end),
            end_ts=end,
            attributes={**order.attrs, **(extra or {})},
            events=events,
            status=status,
            status_message=message,
            kind=kind,
            journal_seq=ev.get("seq"),
        )

    # -- the order's trace context -------------------------------------------------------------

    def _order(self, ev: Event) -> _Order | None:
        """The order (and its intent's context) an event belongs to; None when its trace is not
        sampled or has no context (the event is then skipped)."""
        data = ev.get("data") or {}
        coid = ev.get("client_order_id") or data.get("client_order_id")
        if not coid:
            return None
        order = self._orders.get(coid)
        if order is None:
            order = self._rebuild(coid, ev)
        if order is None or not (order.ctx.sampled or self._all):
            self._skipped += 1
            return None
        self._orders.move_to_end(coid)
        return order

    def _rebuild(self, coid: str, ev: Event) -> _Order | None:
        """An order this builder never saw start: replay its earlier events from the journal
        (without emitting), or, with no lookup, derive its context from the event itself."""
        if self._lookup is not None:
            earlier = [e for e in self._lookup(coid) if e.get("seq", 0) < ev.get("seq", 0)]
            replay = SpanBuilder(run_id=self._supervisor.run_id, include_unsampled=self._all)
            replay.feed(earlier)
            order = replay._orders.get(coid)
            if order is not None:
                self._remember(order)
                return order
        ctx = parse_traceparent(ev.get("traceparent"))
        intent_id = ev.get("intent_id")
        if ctx is None or not intent_id:
            return None
        root = intent_context(str(ev.get("deployment")), str(intent_id))
        data = ev.get("data") or {}
        attrs = _attrs(
            deployment=ev.get("deployment"),
            strategy=ev.get("strategy"),
            symbol=data.get("symbol"),
            side=data.get("side"),
            quantity=data.get("quantity"),
            price=data.get("limit_price"),
            client_order_id=coid,
            intent_id=intent_id,
        )
        order = _Order(TraceContext(root.trace_id, root.span_id, ctx.sampled), coid, attrs)
        # Without the order's history its earlier spans cannot be rebuilt, and re-emitting them
        # from this event would overwrite the real ones (same ids): only what follows is built.
        kind = str(ev.get("kind"))
        order.submit_done = kind != EventKind.ORDER_SUBMITTING
        order.acked = kind not in (
            EventKind.ORDER_SUBMITTING,
            EventKind.ORDER_SUBMITTED,
            EventKind.ORDER_UNKNOWN,
        )
        self._remember(order)
        return order

    def _remember(self, order: _Order) -> None:
        self._orders[order.coid] = order
        self._orders.move_to_end(order.coid)
        while len(self._orders) > _ORDER_MEMORY:
            self._orders.popitem(last=False)


def _intent_key(ev: Event, order: _Order) -> str:
    return str(ev.get("intent_id") or order.attrs.get("tradeplane.intent_id") or "")


def _intent_root(
    ctx: TraceContext,
    flatten: bool,
    start: float,
    end: float,
    attributes: dict[str, AttributeValue],
    ev: Event,
) -> TraceSpan:
    """An intent's trace root: risk's flatten (risk made the intent) or the strategy's intent,
    from its own record or from the one a decision's record carries."""
    return root_span(
        ctx,
        RISK_FLATTEN if flatten else STRATEGY_INTENT,
        "risk" if flatten else "strategy",
        start,
        end,
        attributes,
        ev,
        kind="producer",
    )
