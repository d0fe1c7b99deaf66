"""How events update the projections (``intents``, ``orders``, ``fills``, health in ``state``),
a batch at a time.

A batch's records are folded in Python, in seq order, into at most one write per key and
statement, then written with one ``executemany`` per statement: the rows come out exactly as if
each record were applied in turn, at a fraction of the statements. What makes the fold exact:

* a row is inserted only for an id that has none (``ids.RowIds`` finds those that do); for an
  intent that has one, only the decision and reason are coalesced into it, so only the first
  insert of a key in the batch can land, with its values;
* every update an order takes coalesces its fields (a later non-null value wins) and sets
  ``updated_ts`` and ``seq`` (the last record's win), so the updates of one order in a batch
  fold into one; an update for an order that has no row first inserts one (``'unknown'``), so
  applying all inserts before all updates changes nothing;
* a fill whose ``fill_id`` is already journaled (in the database, or earlier in the batch) is a
  duplicate: it neither inserts nor moves its order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from tradeplane.journal import ids
from tradeplane.journal.records import JournalRecord, dumps_payload
from tradeplane.protocol.events import ORDER_STATUS_KINDS, EventKind

# A row's rowid (intents.seq, order_rows.created_seq) is the seq of the record that created it;
# a row that exists is found by ``ids.RowIds`` and updated by that rowid (``schema``).
INSERT_INTENT = (
    "INSERT INTO intents (intent_id, strategy, symbol, side, quantity, order_type,"
    " limit_price, ts, client_order_id, trigger, traceparent, decision, reason, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
DECIDE_INTENT = (
    "UPDATE intents SET decision = coalesce(?, decision), reason = coalesce(?, reason)"
    " WHERE seq = ?"
)
INSERT_ORDER = (
    "INSERT INTO order_rows (client_order_id, intent_id, strategy, symbol, side, quantity,"
    " order_type, limit_price, status, created_ts, updated_ts, seq, created_seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_ORDER = (
    "UPDATE order_rows SET status = coalesce(?, status),"
    " venue_order_id = coalesce(?, venue_order_id),"
    " reason = coalesce(?, reason), filled_quantity = coalesce(?, filled_quantity),"
    " avg_fill_price = coalesce(?, avg_fill_price), fees = coalesce(?, fees),"
    " updated_ts = ?, seq = ? WHERE created_seq = ?"
)
INSERT_FILL = (
    "INSERT INTO fills (fill_id, client_order_id, intent_id, strategy, symbol, side,"
    " quantity, price, fee, ts, liquidity, venue_order_id, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fill_id) DO NOTHING"
)
UPSERT_HEALTH = (
    "INSERT INTO state (scope, key, data, ts) VALUES ('health', ?, ?, ?)"
    " ON CONFLICT (scope, key) DO UPDATE SET data = excluded.data, ts = excluded.ts"
)
_DECISION, _REASON = 11, 12  # positions in an intent row
_COALESCED = 6  # an order update's leading fields, each kept unless a later one is non-null
_LOOKUP_CHUNK = 500  # fill ids per "already journaled?" query


# Values from ``data`` are coerced to plain str/float so enum members or ints bind cleanly.


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _required(record: JournalRecord, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"journal {record.kind!r} {record.event_id!r}: needs {name} (record field or data)"
        )
    return value


def _intent_id(record: JournalRecord) -> str:
    return _required(record, "intent_id", record.intent_id or record.data.get("intent_id"))


def _order_id(record: JournalRecord) -> str:
    coid = record.client_order_id or record.data.get("client_order_id")
    return _required(record, "client_order_id", coid)


class _Batch:
    """The writes a batch folds into (see the module docstring)."""

    __slots__ = (
        "conn",
        "fill_ids",
        "fill_refs",
        "fills",
        "health",
        "intents",
        "new_orders",
        "order_updates",
        "unnamed",
    )

    def __init__(self, conn: sqlite3.Connection, known_fill_ids: set[str]) -> None:
        self.conn = conn
        # The intent and order ids a record carried only in its data: a row it creates needs
        # its own ref_keys row (``ids.RowIds`` finds every row through one at its rowid).
        self.unnamed: tuple[set[str], set[str]] = (set(), set())
        self.intents: dict[str, list[Any]] = {}
        self.new_orders: dict[str, tuple[Any, ...]] = {}
        self.order_updates: dict[str, list[Any]] = {}
        self.fills: list[tuple[Any, ...]] = []
        # ref_keys rows of fills whose order id is only in their data (the store writes the
        # others'), so that every fill is found by its order (``queries.fills``).
        self.fill_refs: list[tuple[int, int, int]] = []
        self.fill_ids = known_fill_ids  # journaled ones, and the batch's as they are taken
        self.health: list[tuple[str, str, float]] = []

    def intent(self, row: list[Any], named: bool) -> None:
        held = self.intents.get(row[0])
        if held is None:
            self.intents[row[0]] = row
            if not named:
                self.unnamed[0].add(row[0])
            return
        for i in (_DECISION, _REASON):
            if row[i] is not None:
                held[i] = row[i]

    def new_order(self, record: JournalRecord, coid: str, status: str, seq: int) -> None:
        if coid in self.new_orders:
            return
        if not record.client_order_id:
            self.unnamed[1].add(coid)
        d = record.data
        self.new_orders[coid] = (
            coid,
            record.intent_id or _s(d.get("intent_id")),
            record.strategy or _s(d.get("strategy")),
            _s(d.get("symbol")),
            _s(d.get("side")),
            _f(d.get("quantity")),
            _s(d.get("order_type")),
            _f(d.get("limit_price")),
            status,
            record.ts,
            record.ts,
            seq,
        )

    def order_update(self, coid: str, update: list[Any]) -> None:
        held = self.order_updates.get(coid)
        if held is None:
            self.order_updates[coid] = update
            return
        for i in range(_COALESCED):
            if update[i] is not None:
                held[i] = update[i]
        held[_COALESCED:] = update[_COALESCED:]

    def write(self, rows: ids.RowIds, last_seq: int) -> None:
        conn = self.conn
        have_intent, have_order = rows.find(conn, list(self.intents), list(self.new_orders))
        new_intents = [r for i, r in self.intents.items() if i not in have_intent]
        if new_intents:
            conn.executemany(INSERT_INTENT, new_intents)
        decisions = [
            (r[_DECISION], r[_REASON], have_intent[i])
            for i, r in self.intents.items()
            if i in have_intent and (r[_DECISION] is not None or r[_REASON] is not None)
        ]
        if decisions:
            conn.executemany(DECIDE_INTENT, decisions)
        new_orders = [(*r, r[-1]) for o, r in self.new_orders.items() if o not in have_order]
        if new_orders:
            conn.executemany(INSERT_ORDER, new_orders)
        created = {**have_order, **{r[0]: r[-1] for r in new_orders}}
        if self.order_updates:
            conn.executemany(
                UPDATE_ORDER, ([*u, created[coid]] for coid, u in self.order_updates.items())
            )
        if self.fills:
            conn.executemany(INSERT_FILL, self.fills)
        refs = self.fill_refs
        unnamed_intents, unnamed_orders = self.unnamed
        b = ids.BUCKET_BITS
        refs += [
            (r[-1] >> b, ids.intent_key(r[0]), r[-1])
            for r in new_intents
            if r[0] in unnamed_intents
        ]
        refs += [
            (r[-1] >> b, ids.order_key(r[0]), r[-1]) for r in new_orders if r[0] in unnamed_orders
        ]
        if refs:
            conn.executemany(ids.INSERT_REF_KEY, refs)
        if self.health:
            conn.executemany(UPSERT_HEALTH, self.health)
        rows.stage(
            conn,
            {r[0]: r[-1] for r in new_intents},
            {r[0]: r[-1] for r in new_orders},
            last_seq,
        )


def _upsert_intent(
    batch: _Batch, record: JournalRecord, seq: int, decision: str | None, reason: str | None
) -> None:
    """Insert the intent from whatever fields the event carries; a later decision only updates.

    A decision event for an intent that was never journaled still leaves a row, so the
    projection never silently loses a decision.
    """
    d = record.data
    # ``order_submitting`` (and ``order_denied``) carry the intent's own fields under "intent":
    # when the strategy's intent record was lost, the row still has its time, trigger and root
    # trace context.
    carried = d.get("intent")
    i: dict[str, Any] = carried if isinstance(carried, dict) else {}
    batch.intent(
        [
            _intent_id(record),
            record.strategy or _s(d.get("strategy")),
            _s(d.get("symbol")),
            _s(d.get("side")),
            _f(d.get("quantity")),
            _s(d.get("order_type")),
            _f(d.get("limit_price")),
            _f(i.get("ts", d.get("ts", record.ts))),
            record.client_order_id or _s(d.get("client_order_id")),
            _s(i.get("trigger", d.get("trigger"))),
            _s(i.get("traceparent")) or record.traceparent or _s(d.get("traceparent")),
            decision,
            reason,
            seq,
        ],
        named=bool(record.intent_id),
    )


def _intent(batch: _Batch, record: JournalRecord, seq: int) -> None:
    _upsert_intent(batch, record, seq, None, None)


def _order_denied(batch: _Batch, record: JournalRecord, seq: int) -> None:
    _upsert_intent(batch, record, seq, "denied", _s(record.data.get("reason")))


def _order_submitting(batch: _Batch, record: JournalRecord, seq: int) -> None:
    batch.new_order(record, _order_id(record), "pending_submit", seq)
    if record.intent_id or record.data.get("intent_id"):
        _upsert_intent(batch, record, seq, "approved", None)


def _order_status(batch: _Batch, record: JournalRecord, seq: int) -> None:
    coid = _order_id(record)
    d = record.data
    # An update for an order the journal never saw submitted (e.g. found by reconciliation)
    # still gets a row, so every order the venue reports is visible in ``orders``.
    batch.new_order(record, coid, "unknown", seq)
    status = record.kind.removeprefix("order_")
    batch.order_update(
        coid,
        [
            status,
            _s(d.get("venue_order_id")),
            _s(d.get("reason")),
            None,
            None,
            None,
            record.ts,
            seq,
        ],
    )


def _order_filled(batch: _Batch, record: JournalRecord, seq: int) -> None:
    d = record.data
    coid = _order_id(record)
    fill = d.get("fill")
    if fill is not None:
        if not isinstance(fill, dict):
            raise ValueError(
                f"journal 'order_filled' {record.event_id!r}: data.fill must be a dict"
            )
        fill_id = _required(record, "data.fill.fill_id", fill.get("fill_id"))
        if fill_id in batch.fill_ids:
            return  # a duplicate fill must not move the order's cumulative figures
        batch.fill_ids.add(fill_id)
        if not record.client_order_id:
            batch.fill_refs.append((seq >> ids.BUCKET_BITS, ids.order_key(coid), seq))
        batch.fills.append(
            (
                fill_id,
                coid,
                record.intent_id or _s(fill.get("intent_id") or d.get("intent_id")),
                record.strategy or _s(fill.get("strategy") or d.get("strategy")),
                _s(fill.get("symbol")),
                _s(fill.get("side")),
                _f(fill.get("quantity")),
                _f(fill.get("price")),
                _f(fill.get("fee")) or 0.0,
                _f(fill.get("ts", record.ts)),
                _s(fill.get("liquidity")),
                _s(fill.get("venue_order_id")),
                seq,
            )
        )
    venue_order_id = d.get("venue_order_id") or (fill or {}).get("venue_order_id")
    batch.new_order(record, coid, "unknown", seq)
    batch.order_update(
        coid,
        [
            _s(d.get("status")),
            _s(venue_order_id),
            None,
            _f(d.get("filled_quantity")),
            _f(d.get("avg_fill_price")),
            _f(d.get("fees")),
            record.ts,
            seq,
        ],
    )


def _health_changed(batch: _Batch, record: JournalRecord, seq: int) -> None:
    component = _required(record, "data.component", record.data.get("component"))
    batch.health.append((component, dumps_payload(record.data, kind=record.kind), record.ts))


def _record_only(batch: _Batch, record: JournalRecord, seq: int) -> None:
    """Kinds that live in ``events`` alone (read back by kind, never projected)."""


Projection = Callable[[_Batch, JournalRecord, int], None]

_PROJECTED: dict[EventKind, Projection] = {
    EventKind.INTENT: _intent,
    EventKind.ORDER_DENIED: _order_denied,
    EventKind.ORDER_SUBMITTING: _order_submitting,
    EventKind.ORDER_FILLED: _order_filled,
    EventKind.HEALTH_CHANGED: _health_changed,
    **dict.fromkeys(ORDER_STATUS_KINDS, _order_status),
}

# Total over ``EventKind``: a kind added to the protocol is journaled by ``_record_only`` until
# it gets a projection; a kind outside it is refused (``project_all``), never silently dropped.
PROJECTIONS: dict[str, Projection] = {k: _PROJECTED.get(k, _record_only) for k in EventKind}


def _journaled_fill_ids(conn: sqlite3.Connection, records: Sequence[JournalRecord]) -> set[str]:
    wanted = []
    for r in records:
        if r.kind == EventKind.ORDER_FILLED:
            fill = r.data.get("fill")
            if isinstance(fill, dict) and isinstance(fill.get("fill_id"), str):
                wanted.append(fill["fill_id"])
    found: set[str] = set()
    for i in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[i : i + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT fill_id FROM fills WHERE fill_id IN ({marks})", chunk)
        found.update(r[0] for r in rows)
    return found


def project_all(
    conn: sqlite3.Connection,
    records: Sequence[JournalRecord],
    first_seq: int,
    rows: ids.RowIds,
) -> None:
    """Apply ``records``, which have consecutive seqs from ``first_seq``, to the projections
    (``rows``: where the intents and orders rows are, staged until the store commits); a kind
    outside ``EventKind`` raises ValueError and nothing is written."""
    batch = _Batch(conn, _journaled_fill_ids(conn, records))
    get = PROJECTIONS.get
    for seq, record in enumerate(records, first_seq):
        fn = get(record.kind)
        if fn is None:
            raise ValueError(f"journal {record.event_id!r}: unknown event kind {record.kind!r}")
        fn(batch, record, seq)
    batch.write(rows, first_seq + len(records) - 1)
