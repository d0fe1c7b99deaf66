"""A live deployment's journal, read read-only, to a report's plain data.

One pass over the journal's events in seq order, a page at a time (memory bounded by what the
report keeps, not by the journal's size). Every time is the journal's event time, when the
deployment received or decided the thing: a sim venue's bar times run faster than the wall clock,
so bar open times and fill times would not share an axis with health or drift.

Equity is rebuilt from the fills with the virtual portfolio's own arithmetic (the journal's
``positions`` use it too), marked at every journaled close (bars or bar summaries) and fill price.
Each strategy's capital is the config's when given, else its last snapshot's starting cash; its
last point is marked at that snapshot's marks, so the curve ends where the strategy's own books
(and ``tradeplane run``'s summary) do, though bar summaries are up to 10 s old. Without either
source of capital the curves are P&L from 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from tradeplane.core.portfolio import VirtualPortfolio
from tradeplane.journal.reader import JournalReader
from tradeplane.protocol.events import STRATEGY_SNAPSHOT_SCOPE, EventKind
from tradeplane.report.model import (
    FillMark,
    HealthChange,
    Incident,
    ReportData,
    Series,
    downsample,
    named,
    total_return,
)
from tradeplane.telemetry.latency import percentile
from tradeplane.telemetry.span_values import event_ts

STAGES = ("bar to intent", "intent to approved", "approved to broker", "broker to sent")
"""Tick to order's stages as the journal records them (``telemetry.latency.STAGES`` with the
journal commit and the halt gate together: ``order_submitting`` does not carry the durable time)."""
PAGE = 5000
TOTAL = "total"
_FILL_KINDS = (EventKind.ORDER_FILLED, EventKind.ORDER_PARTIALLY_FILLED)
INCIDENT_KINDS = (
    EventKind.DEPLOYMENT_STARTED,
    EventKind.DEPLOYMENT_STOPPED,
    EventKind.ACTOR_DIED,
    EventKind.RECOVERY_EXHAUSTED,
    EventKind.STRATEGY_SUSPENDED,
    EventKind.KILL_SWITCH_ACTIVATED,
    EventKind.KILL_SWITCH_CLEARED,
    EventKind.NODE_LOST,
)
_KINDS = (
    EventKind.BAR,
    EventKind.BAR_SUMMARY,
    *_FILL_KINDS,
    EventKind.ORDER_DENIED,
    EventKind.HEALTH_CHANGED,
    EventKind.ORDER_SUBMITTING,
    EventKind.ORDER_SUBMITTED,
    *INCIDENT_KINDS,
)


def journal_events(reader: JournalReader, kinds: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Events of ``kinds`` in seq order, fetched a page at a time."""
    since = 0
    while True:
        page = reader.events(kinds, since_seq=since, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        since = int(page[-1]["seq"])


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _event_time(event: dict[str, Any]) -> float | None:
    try:
        ts = event_ts(event)
    except (TypeError, ValueError):
        return None
    return ts if ts > 0 else None


def _detail(data: dict[str, Any]) -> str:
    """A short line of what an incident's record says (its role, strategy or reason)."""
    parts = [str(data[k]) for k in ("role", "strategy", "reason") if data.get(k)]
    return ": ".join(parts)[:200]


class _Equity:
    """Per-strategy virtual portfolios marked as the journal goes; a point per marking event."""

    def __init__(self, capital: Mapping[str, float]) -> None:
        self.capital = dict(capital)
        self.books: dict[str, VirtualPortfolio] = {}
        self.ts: list[float] = []
        self.points: dict[str, list[float]] = {}

    def book(self, strategy: str) -> VirtualPortfolio:
        if strategy not in self.books:
            self.books[strategy] = VirtualPortfolio(self.capital.get(strategy, 0.0))
            # A strategy seen late was flat (at its capital) until then.
            self.points[strategy] = [self.books[strategy].equity] * len(self.ts)
        return self.books[strategy]

    def mark(self, symbol: str, price: float) -> None:
        for b in self.books.values():
            b.mark(symbol, price)

    def record(self, ts: float) -> None:
        if self.ts and ts <= self.ts[-1]:
            # One point per journal time: the bars of one batch share their arrival time, and
            # with ``bars = "all"`` a point per bar would grow with the symbols for nothing.
            for name, b in self.books.items():
                self.points[name][-1] = b.equity
            return
        self.ts.append(ts)
        for name, b in self.books.items():
            self.points[name].append(b.equity)

    def series(self) -> list[Series]:
        if not self.books or not self.ts:
            return []
        total = [sum(vals) for vals in zip(*self.points.values(), strict=True)]
        out = [named(downsample(self.ts, total), TOTAL)]
        for name in sorted(self.points):
            out.append(named(downsample(self.ts, self.points[name]), name))
        return out


class JournalExtractor:
    """Feed it journal events in seq order (``feed``); ``result`` is the report's data."""

    def __init__(self, capital: Mapping[str, float] | None = None) -> None:
        self.equity = _Equity(capital or {})
        self.capital_known = bool(capital)
        self.prices: dict[str, tuple[list[float], list[float]]] = {}
        self.price_kinds: set[str] = set()
        self.fills: list[FillMark] = []
        self._fill_ids: set[str] = set()
        self.denials: dict[str, int] = {}
        self.health: list[HealthChange] = []
        self.incidents: list[Incident] = []
        # Per order sent: the bar's arrival and the intent, approval and broker times.
        self._pending: dict[str, tuple[float, float | None, float | None, float | None]] = {}
        self.tick_to_order_ms: list[float] = []
        # Per order, ms: bar -> intent, intent -> approved, approved -> broker, broker -> sent
        # (the journal commit and the halt gate): ``STAGES`` below, adding up to the total.
        self.stages_ms: list[tuple[float, ...]] = []
        self.started: dict[str, Any] = {}
        self.first_ts: float | None = None
        for strategy in capital or {}:
            self.equity.book(strategy)

    def feed(self, event: dict[str, Any]) -> None:
        kind, data = event.get("kind"), event.get("data") or {}
        ts = _event_time(event)
        if ts is None or not isinstance(data, dict):
            return
        if self.first_ts is None:
            self.first_ts = ts
        if kind == EventKind.BAR:
            self._price(ts, data.get("symbol"), data.get("close"), "bars")
            self.equity.record(ts)
        elif kind == EventKind.BAR_SUMMARY:
            for symbol, s in (data.get("symbols") or {}).items():
                self._price(ts, symbol, (s or {}).get("close"), "bar summaries")
            self.equity.record(ts)
        elif kind in _FILL_KINDS:
            self._fill(ts, event, data.get("fill"))
        elif kind == EventKind.ORDER_DENIED:
            reason = str(data.get("reason") or "unknown")
            self.denials[reason] = self.denials.get(reason, 0) + 1
        elif kind == EventKind.HEALTH_CHANGED:
            self.health.append(
                HealthChange(
                    ts,
                    str(data.get("health") or "unknown"),
                    str(data.get("previous") or ""),
                    str(data.get("reason") or ""),
                )
            )
        elif kind == EventKind.ORDER_SUBMITTING:
            self._submitting(event, data)
        elif kind == EventKind.ORDER_SUBMITTED:
            self._submitted(event, data)
        if kind in INCIDENT_KINDS:
            self.incidents.append(Incident(ts, str(kind), _detail(data)))
        if kind == EventKind.DEPLOYMENT_STARTED and not self.started:
            self.started = data

    def _submitting(self, event: dict[str, Any], data: dict[str, Any]) -> None:
        intent, trace = data.get("intent") or {}, data.get("trace") or {}
        recv = _num(intent.get("bar_recv_ts"))
        coid = event.get("client_order_id")
        if recv is not None and isinstance(coid, str):
            self._pending[coid] = (
                recv,
                _num(intent.get("ts")),
                _num(trace.get("approved_ts")),
                _num(trace.get("broker_received_ts")),
            )

    def _submitted(self, event: dict[str, Any], data: dict[str, Any]) -> None:
        """Tick to order as the broker measures it (``telemetry.latency``): the bar's arrival
        to the order leaving for the venue, both journaled with the order."""
        marks = self._pending.pop(str(event.get("client_order_id")), None)
        sent = _num(data.get("sent_ts"))
        if marks is None or sent is None:
            return
        self.tick_to_order_ms.append((sent - marks[0]) * 1000.0)
        times = [t for t in (*marks, sent) if t is not None]
        if len(times) == len(marks) + 1:
            self.stages_ms.append(tuple((b - a) * 1000.0 for a, b in itertools.pairwise(times)))

    def _price(self, ts: float, symbol: Any, close: Any, source: str) -> None:
        price = _num(close)
        if not isinstance(symbol, str) or price is None or price <= 0:
            return
        t, v = self.prices.setdefault(symbol, ([], []))
        t.append(ts)
        v.append(price)
        self.price_kinds.add(source)
        self.equity.mark(symbol, price)

    def _fill(self, ts: float, event: dict[str, Any], fill: Any) -> None:
        if not isinstance(fill, dict):
            return
        fill_id, symbol = fill.get("fill_id"), fill.get("symbol")
        qty, price, fee = _num(fill.get("quantity")), _num(fill.get("price")), _num(fill.get("fee"))
        if fill_id in self._fill_ids or not isinstance(symbol, str) or qty is None or not price:
            return  # a fill journaled twice counts once, as in the journal's fills table
        self._fill_ids.add(str(fill_id))
        strategy = str(event.get("strategy") or "")
        side = "sell" if fill.get("side") == "sell" else "buy"
        self.fills.append(FillMark(ts, strategy, symbol, side, qty, price))
        book = self.equity.book(strategy)
        book.apply(symbol, qty if side == "buy" else -qty, price, fee or 0.0)
        self.equity.mark(symbol, price)
        self.equity.record(ts)

    def end_at_snapshots(self, snapshots: Mapping[str, dict[str, Any]]) -> None:
        """A last point marked at the strategies' own last marks (when taken after the last)."""
        taken = []
        for snap in sorted(snapshots.values(), key=lambda s: _num(s.get("taken_ts")) or 0.0):
            ts = _num(snap.get("taken_ts"))
            marks = snap["portfolio"].get("marks")
            for symbol, price in (marks if isinstance(marks, dict) else {}).items():
                p = _num(price)
                if isinstance(symbol, str) and p is not None and p > 0:
                    self.equity.mark(symbol, p)
            if ts is not None:
                taken.append(ts)
        if taken and (not self.equity.ts or max(taken) > self.equity.ts[-1]):
            self.equity.record(max(taken))

    def result(self, title: str, source: str, last_ts: float | None) -> ReportData:
        data = ReportData(title=title, source=source, kind="live")
        data.equity = self.equity.series()
        data.equity_is_pnl = not self.capital_known
        if self.price_kinds:
            data.prices = {
                s: named(downsample(t, v), s) for s, (t, v) in sorted(self.prices.items())
            }
            data.price_source = " and ".join(sorted(self.price_kinds))
        else:
            by_symbol: dict[str, tuple[list[float], list[float]]] = {}
            for f in self.fills:
                t, v = by_symbol.setdefault(f.symbol, ([], []))
                t.append(f.ts)
                v.append(f.price)
            data.prices = {s: named(downsample(t, v), s) for s, (t, v) in sorted(by_symbol.items())}
            data.price_source = "fills"
        data.fills = self.fills
        data.denials = dict(sorted(self.denials.items(), key=lambda kv: (-kv[1], kv[0])))
        data.health = self.health
        data.health_until = last_ts
        data.incidents = self.incidents
        data.tick_to_order_ms = self.tick_to_order_ms
        return data


def read_journal(
    reader: JournalReader, *, capital: Mapping[str, float] | None = None
) -> ReportData:
    """The report's data from a deployment's journal (opened read-only by the caller)."""
    snapshots = {
        name: snap
        for name, snap in reader.states(STRATEGY_SNAPSHOT_SCOPE).items()
        if isinstance(snap.get("portfolio"), dict)
    }
    known = dict(capital or {})
    for name, snap in snapshots.items():
        start = _num(snap["portfolio"].get("starting_cash"))
        if name not in known and start is not None:
            known[name] = start
    ex = JournalExtractor(known)
    for event in journal_events(reader, _KINDS):
        ex.feed(event)
    ex.end_at_snapshots(snapshots)
    tail = reader.tail(1)
    last_ts = _event_time(tail[0]) if tail else None
    name = reader.deployment or reader.state_dir.name
    data = ex.result(f"tradeplane report: {name}", str(reader.state_dir), last_ts)
    data.facts = _facts(reader, ex, data, last_ts)
    if data.equity_is_pnl:
        data.notes.append(
            "No strategy snapshot in the journal names the strategies' capital: equity is shown "
            "as P&L from 0 (give --config to start each curve at the strategy's capital)."
        )
    return data


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _facts(
    reader: JournalReader, ex: JournalExtractor, data: ReportData, last_ts: float | None
) -> list[tuple[str, str]]:
    s = ex.started
    lat = sorted(ex.tick_to_order_ms)
    facts = [
        ("deployment", reader.deployment or "-"),
        ("mode / venue", f"{s.get('mode', '-')} / {s.get('venue', '-')}"),
        ("strategies", ", ".join(map(str, s.get("strategies") or sorted(ex.equity.books)))),
        ("journal", f"{reader.last_seq} events, {_when(ex.first_ts)} to {_when(last_ts)}"),
        (
            "orders",
            ", ".join(f"{k} {v}" for k, v in sorted(reader.order_counts_by_status().items()))
            or "none",
        ),
        ("fills", str(len(ex.fills))),
        ("denials", str(sum(ex.denials.values()))),
        ("health now", ex.health[-1].health if ex.health else "-"),
    ]
    if lat:
        p50, p95, p99 = (percentile(lat, q) for q in (0.5, 0.95, 0.99))
        facts.append(
            (
                "tick to order",
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms (n={len(lat)})",
            )
        )
    if ex.stages_ms:
        medians = [percentile(sorted(col), 0.5) or 0.0 for col in zip(*ex.stages_ms, strict=True)]
        stages = ", ".join(f"{n} {m:.1f} ms" for n, m in zip(STAGES, medians, strict=True))
        facts.append(("its stages, p50", stages))
    total = data.equity[0] if data.equity else None
    if total is not None and not data.equity_is_pnl:
        ret = total_return(total)
        if ret is not None:
            facts.append(("live total return", f"{ret:+.2%}"))
    return facts
