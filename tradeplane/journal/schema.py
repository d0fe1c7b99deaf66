"""SQLite schema of the journal database.

``events`` is the record (each row holds the exact JSONL line); ``intents``, ``orders``,
``fills`` and ``state`` are projections updated in the same transaction as the event
(``projections``), so they can never disagree with the record after a crash.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tradeplane.core.errors import OperationalError
from tradeplane.journal import ids
from tradeplane.journal.records import StateWrite, dumps_payload

FORMAT = "tradeplane-journal"
# 2: events lost the random-key indexes on event_id, intent_id and client_order_id for the
# seq-bucketed event_keys, ref_keys and id_blooms (``ids``).
# 3: fills lost their index on client_order_id (random inserts, a page written per fill on a big
# journal); a fill is found by its order through ref_keys, which holds the order's key at the
# fill's seq even when the order id is only in the fill's data (``projections``).
# 4: intents and orders lost their primary keys on the hashed intent and client order id (random
# inserts: about 160 of a batch's 370 written pages on a big journal). A row's rowid is the seq
# of the record that created it, so inserts append, and a row is found by its id through the
# in-memory window and the Bloom filters of ``ids.RowIds``; ``orders`` became a view of
# ``order_rows``, whose ``created_seq`` is that rowid (an order's ``seq`` moves with each update).
# 1, 2 and 3 are migrated on open (``migrate``).
SCHEMA_VERSION = 4
TABLES_V1 = frozenset({"meta", "events", "intents", "orders", "fills", "state"})
TABLES_V2 = TABLES_V1 | {"event_keys", "ref_keys", "id_blooms"}
TABLES = TABLES_V2 | {"order_rows", "row_blooms"}  # ``orders`` is a view from 4 on
TABLES_BY_VERSION = {1: TABLES_V1, 2: TABLES_V2, 3: TABLES_V2, SCHEMA_VERSION: TABLES}

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
    intent_id TEXT NOT NULL,
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
    seq INTEGER PRIMARY KEY
);
-- Undecided intents are what recovery looks for (decided ones leave this small index).
CREATE INDEX intents_undecided ON intents (seq) WHERE decision IS NULL;
-- A restarted strategy reads its intents since its snapshot (ts grows: this grows at its end).
CREATE INDEX intents_ts ON intents (ts);
CREATE TABLE order_rows (
    client_order_id TEXT NOT NULL,
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
    seq INTEGER NOT NULL,
    created_seq INTEGER PRIMARY KEY
);
CREATE INDEX orders_status ON order_rows (status);
-- What every reader sees: an order's row as it always was (``created_seq`` is the writer's).
CREATE VIEW orders AS SELECT client_order_id, intent_id, strategy, symbol, side, quantity,
    order_type, limit_price, status, filled_quantity, avg_fill_price, fees, venue_order_id,
    reason, created_ts, updated_ts, seq FROM order_rows;
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
-- Fills of one order: through ref_keys and this index (``queries.fills``).
CREATE INDEX fills_seq ON fills (seq);
CREATE TABLE state (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
""" + ";\n".join((ids.EVENT_KEYS_DDL, ids.REF_KEYS_DDL, ids.BLOOMS_DDL, ids.ROW_BLOOMS_DDL))


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
        tables = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        }
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
