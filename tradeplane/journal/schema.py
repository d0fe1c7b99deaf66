"""SQLite schema of the journal database and the projections events apply to it.

``events`` is the record (each row holds the exact JSONL line); ``intents``, ``orders``,
``fills`` and ``state`` are projections updated in the same transaction as the event, so they
can never disagree with the record after a crash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradeplane.core.errors import OperationalError
from tradeplane.journal import ids
from tradeplane.journal.records import JournalRecord, StateWrite, dumps_payload
from tradeplane.protocol.events import ORDER_STATUS_KINDS, EventKind

FORMAT = "tradeplane-journal"
# 2: events lost the random-key indexes on event_id, intent_id and client_order_id for the
# seq-bucketed event_keys, ref_keys and id_blooms (``ids``). 1 is migrated on open (``migrate``).
SCHEMA_VERSION = 2
TABLES_V1 = frozenset({"meta", "events", "intents", "orders", "fills", "state"})
TABLES = TABLES_V1 | {"event_keys", "ref_keys", "id_blooms"}
TABLES_BY_VERSION = {1: TABLES_V1, SCHEMA_VERSION: TABLES}

# Statements are split on ";" (so no ";" inside comments).
DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    deployment TEXT NOT NULL,
    strategy TEXT,
    intent_id TEXT,
    client_order_id TEXT,
    line TEXT NOT NULL
);
-- Every index on events is ordered by seq within a few leading values, so it grows at its ends.
CREATE INDEX events_kind ON events (kind, seq);
CREATE TABLE intents (
    intent_id TEXT PRIMARY KEY,
    strategy TEXT,
    symbol TEXT,
    side TEXT,
    quantity REAL,
    order_type TEXT,
    limit_price REAL,
    ts REAL,
    client_order_id TEXT,
    trigger TEXT,
    traceparent TEXT,
    decision TEXT CHECK (decision IS NULL OR decision IN ('approved', 'denied')),
    reason TEXT,
    seq INTEGER NOT NULL
);
-- Undecided intents are what recovery looks for (decided ones leave this small index).
CREATE INDEX intents_undecided ON intents (seq) WHERE decision IS NULL;
-- A restarted strategy reads its intents since its snapshot (ts grows: this grows at its end).
CREATE INDEX intents_ts ON intents (ts);
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY,
    intent_id TEXT,
    strategy TEXT,
    symbol TEXT,
    side TEXT,
    quantity REAL,
    order_type TEXT,
    limit_price REAL,
    status TEXT NOT NULL,
    filled_quantity REAL NOT NULL DEFAULT 0,
    avg_fill_price REAL NOT NULL DEFAULT 0,
    fees REAL NOT NULL DEFAULT 0,
    venue_order_id TEXT,
    reason TEXT,
    created_ts REAL,
    updated_ts REAL,
    seq INTEGER NOT NULL
);
CREATE INDEX orders_status ON orders (status);
CREATE TABLE fills (
    fill_id TEXT PRIMARY KEY,
    client_order_id TEXT,
    intent_id TEXT,
    strategy TEXT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL DEFAULT 0,
    ts REAL,
    liquidity TEXT,
    venue_order_id TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX fills_seq ON fills (seq);
CREATE INDEX fills_order ON fills (client_order_id);
CREATE TABLE state (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
""" + ";\n".join((ids.EVENT_KEYS_DDL, ids.REF_KEYS_DDL, ids.BLOOMS_DDL))


INSERT_EVENT = (
    "INSERT INTO events (seq, event_id, kind, ts, deployment, strategy, intent_id,"
    " client_order_id, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPSERT_STATE = (
    "INSERT INTO state (scope, key, data, ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (scope, key) DO UPDATE SET data = excluded.data, ts = excluded.ts"
)
UPSERT_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def state_params(write: StateWrite) -> tuple[str, str, str, float]:
    for name in ("scope", "key"):
        value = getattr(write, name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"state write: {name} must be a non-empty string, got {value!r}")
    if not isinstance(write.data, dict):
        raise ValueError(f"state write {write.scope}/{write.key}: data must be a dict")
    data = dumps_payload(write.data, kind=f"state {write.scope}/{write.key}")
    return write.scope, write.key, data, float(write.ts)


def check_meta(
    conn: sqlite3.Connection, db_path: Path, deployment: str | None, *, older_ok: bool = False
) -> dict[str, str]:
    """The database must be a tradeplane journal of a known schema (and of ``deployment``).
    ``older_ok``: an older schema this code migrates (``TABLES_BY_VERSION``) is accepted too;
    the writer then migrates it, a reader reads it as it is. A newer one is always refused."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            raise OperationalError(
                f"{db_path} is not a tradeplane journal (no meta table; tables: "
                f"{sorted(tables) or 'none'}): refusing to start"
            )
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise OperationalError(f"{db_path} cannot be read as a journal: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise OperationalError(
            f"{db_path} is not a tradeplane journal (format {meta.get('format')!r}): "
            "refusing to start"
        )
    raw = meta.get("schema_version", "")
    version = int(raw) if raw.isdigit() else None
    if version is not None and version > SCHEMA_VERSION:
        raise OperationalError(
            f"{db_path} has journal schema version {version}, newer than the {SCHEMA_VERSION} "
            "this tradeplane reads (written by a newer release): refusing to start; run it "
            "with that release or newer"
        )
    if version not in TABLES_BY_VERSION or (version != SCHEMA_VERSION and not older_ok):
        raise OperationalError(
            f"{db_path} has journal schema version {raw!r}; this tradeplane reads "
            f"{SCHEMA_VERSION} and migrates {sorted(set(TABLES_BY_VERSION) - {SCHEMA_VERSION})}:"
            " refusing to start"
        )
    if deployment is not None and meta.get("deployment") != deployment:
        raise OperationalError(
            f"{db_path} belongs to deployment {meta.get('deployment')!r}, not {deployment!r}: "
            "refusing to start (each deployment needs its own state_dir)"
        )
    missing = TABLES_BY_VERSION[version] - tables
    if missing:
        raise OperationalError(f"{db_path} is a damaged journal: missing tables {sorted(missing)}")
    return meta


# --- projections ------------------------------------------------------------------------------
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


def _upsert_intent(
    conn: sqlite3.Connection,
    record: JournalRecord,
    seq: int,
    decision: str | None,
    reason: str | None,
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
    conn.execute(
        "INSERT INTO intents (intent_id, strategy, symbol, side, quantity, order_type,"
        " limit_price, ts, client_order_id, trigger, traceparent, decision, reason, seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (intent_id) DO UPDATE SET"
        " decision = coalesce(excluded.decision, decision),"
        " reason = coalesce(excluded.reason, reason)",
        (
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
        ),
    )


def _intent(conn: sqlite3.Connection, record: JournalRecord, seq: int) -> None:
    _upsert_intent(conn, record, seq, None, None)


def _order_denied(conn: sqlite3.Connection, record: JournalRecord, seq: int) -> None:
    _upsert_intent(conn, record, seq, "denied", _s(record.data.get("reason")))


def _order_submitting(conn: sqlite3.Connection, record: JournalRecord, seq: int) -> None:
    d = record.data
    coid = _order_id(record)
    conn.execute(
        "INSERT INTO orders (client_order_id, intent_id, strategy, symbol, side, quantity,"
        " order_type, limit_price, status, created_ts, updated_ts, seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending_submit', ?, ?, ?)"
        " ON CONFLICT (client_order_id) DO NOTHING",
        (
            coid,
            record.intent_id or _s(d.get("intent_id")),
            record.strategy or _s(d.get("strategy")),
            _s(d.get("symbol")),
            _s(d.get("side")),
            _f(d.get("quantity")),
            _s(d.get("order_type")),
            _f(d.get("limit_price")),
            record.ts,
            record.ts,
            seq,
        ),
    )
    if record.intent_id or d.get("intent_id"):
        _upsert_intent(conn, record, seq, "approved", None)


def _ensure_order(conn: sqlite3.Connection, record: JournalRecord, coid: str, seq: int) -> None:
    """An update for an order the journal never saw submitted (e.g. found by reconciliation)
    still gets a row, so every order the venue reports is visible in ``orders``."""
    d = record.data
    conn.execute(
        "INSERT INTO orders (client_order_id, intent_id, strategy, symbol, side, quantity,"
        " order_type, limit_price, status, created_ts, updated_ts, seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'unknown', ?, ?, ?)"
        " ON CONFLICT (client_order_id) DO NOTHING",
        (
            coid,
            record.intent_id or _s(d.get("intent_id")),
            record.strategy or _s(d.get("strategy")),
            _s(d.get("symbol")),
            _s(d.get("side")),
            _f(d.get("quantity")),
            _s(d.get("order_type")),
            _f(d.get("limit_price")),
            record.ts,
            record.ts,
            seq,
        ),
    )


def _order_status(conn: sqlite3.Connection, record: JournalRecord, seq: int) -> None:
    coid = _order_id(record)
    status = record.kind.removeprefix("order_")
    d = record.data
    params = (status, _s(d.get("venue_order_id")), _s(d.get("reason")), record.ts, seq, coid)
    sql = (
        "UPDATE orders SET status = ?, venue_order_id = coalesce(?, venue_order_id),"
        " reason = coalesce(?, reason), updated_ts = ?, seq = ? WHERE client_order_id = ?"
    )
    if conn.execute(sql, params).rowcount == 0:
        _ensure_order(conn, record, coid, seq)
        conn.execute(sql, params)


def _order_filled(conn: sqlite3.Connection, record: JournalRecord, seq: int) -> None:
    d = record.data
    coid = _order_id(record)
    fill = d.get("fill")
    if fill is not None:
        if not isinstance(fill, dict):
            raise ValueError(
                f"journal 'order_filled' {record.event_id!r}: data.fill must be a dict"
            )
        fill_id = _required(record, "data.fill.fill_id", fill.get("fill_id"))
        cur = conn.execute(
            "INSERT INTO fills (fill_id, client_order_id, intent_id, strategy, symbol, side,"
            " quantity, price, fee, ts, liquidity, venue_order_id, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fill_id) DO NOTHING",
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
            ),
        )
        if cur.rowcount == 0:
            return  # a duplicate fill must not move the order's cumulative figures
    venue_order_id = d.get("venue_order_id") or (fill or {}).get("venue_order_id")
    params = (
        _s(d.get("status")),
        _f(d.get("filled_quantity")),
        _f(d.get("avg_fill_price")),
        _f(d.get("fees")),
        _s(venue_order_id),
        record.ts,
        seq,
        coid,
    )
    sql = (
        "UPDATE orders SET status = coalesce(?, status),"
        " filled_quantity = coalesce(?, filled_quantity),"
        " avg_fill_price = coalesce(?, avg_fill_price), fees = coalesce(?, fees),"
        " venue_order_id = coalesce(?, venue_order_id), updated_ts = ?, seq = ?"
        " WHERE client_order_id = ?"
    )
    if conn.execute(sql, params).rowcount == 0:
        _ensure_order(conn, record, coid, seq)
        conn.execute(sql, params)


def _health_changed(conn: sqlite3.Connection, record: JournalRecord, seq: int) -> None:
    component = _required(record, "data.component", record.data.get("component"))
    data = dumps_payload(record.data, kind=record.kind)
    conn.execute(UPSERT_STATE, ("health", component, data, record.ts))


Projection = Callable[[sqlite3.Connection, JournalRecord, int], None]

_PROJECTED: dict[EventKind, Projection] = {
    EventKind.INTENT: _intent,
    EventKind.ORDER_DENIED: _order_denied,
    EventKind.ORDER_SUBMITTING: _order_submitting,
    EventKind.ORDER_FILLED: _order_filled,
    EventKind.HEALTH_CHANGED: _health_changed,
    **dict.fromkeys(ORDER_STATUS_KINDS, _order_status),
}


def _record_only(conn: sqlite3.Connection, record: JournalRecord, seq: int) -> None:
    """Kinds that live in ``events`` alone (read back by kind, never projected)."""


# Total over ``EventKind``: a kind added to the protocol is journaled by ``_record_only`` until
# it gets a projection; a kind outside it is refused (``project``), never silently dropped.
PROJECTIONS: dict[str, Projection] = {k: _PROJECTED.get(k, _record_only) for k in EventKind}


def _unknown(record: JournalRecord) -> ValueError:
    return ValueError(f"journal {record.event_id!r}: unknown event kind {record.kind!r}")


def project(conn: sqlite3.Connection, record: JournalRecord, seq: int) -> None:
    """Apply one event to the projections; a kind outside ``EventKind`` raises."""
    fn = PROJECTIONS.get(record.kind)
    if fn is None:
        raise _unknown(record)
    fn(conn, record, seq)


def project_all(conn: sqlite3.Connection, records: list[JournalRecord], first_seq: int) -> None:
    """``project`` each of ``records``, which have consecutive seqs from ``first_seq``."""
    get = PROJECTIONS.get
    for seq, record in enumerate(records, first_seq):
        fn = get(record.kind)
        if fn is None:
            raise _unknown(record)
        fn(conn, record, seq)
