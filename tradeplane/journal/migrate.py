"""Bringing a journal written by an older release to the current schema, on the writer's open.

Crash-safe and resumable, one version at a time; the journal's identity (genesis, epoch, last
seq) and every event row are kept as they are (``line`` holds the hash chain, which does not
change). The log says when it starts, how far it got and when it ends (WARNING), and ``meta``
keeps ``migrated_from_version`` and ``migrated_ts``.

* 1 -> 2: the events are first copied, ``COPY_ROWS`` at a time, each in its own transaction,
  into ``events_v2`` (a scratch table beside the untouched ``events``), with their
  ``event_keys`` and ``ref_keys`` rows; an open after a crash or a kill carries on after the
  last copied seq. One last transaction then swaps ``events_v2`` in, builds what else schema 2
  has, and sets ``schema_version``: until it commits the journal is a schema-1 journal with
  extra tables, after it a schema-2 one.
* 2 -> 3, one transaction: every fill gets the ``ref_keys`` row of its order at its seq (the
  writer of schema 2 wrote none for a fill whose order id was only in its data), and the index
  ``fills_order`` is dropped.
* 3 -> 4, one transaction: ``intents`` is rebuilt with its ``seq`` as rowid (each record creates
  at most one intent and an intent's ``seq`` never moves, so it is unique), ``orders`` becomes
  ``order_rows`` keyed by ``created_seq`` (recovered: the first order event naming the order in
  its ``client_order_id``, or the row's ``seq`` when that is earlier or there is none; unique
  for the same reason) behind the view ``orders``; every row gets its ``ref_keys`` row at its
  rowid and every closed block its ``row_blooms`` filter (``ids.RowIds``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradeplane.journal import ids, schema
from tradeplane.protocol.events import ORDER_STATUS_KINDS, EventKind

log = logging.getLogger(__name__)

COPY_ROWS = 100_000  # events per transaction of the copy
_COLUMNS = "seq, event_id, kind, ts, deployment, strategy, intent_id, client_order_id, line"
_ID_TABLES = ("event_keys", "ref_keys", "id_blooms")
_NEW_IN_V4 = frozenset({"order_rows", "row_blooms", "orders_status"})
_ORDER_KINDS = tuple(
    sorted(
        str(k) for k in {EventKind.ORDER_SUBMITTING, EventKind.ORDER_FILLED, *ORDER_STATUS_KINDS}
    )
)
_INTENT_COLUMNS = (
    "intent_id, strategy, symbol, side, quantity, order_type, limit_price, ts, client_order_id,"
    " trigger, traceparent, decision, reason, seq"
)
_ORDER_COLUMNS = (
    "client_order_id, intent_id, strategy, symbol, side, quantity, order_type, limit_price,"
    " status, filled_quantity, avg_fill_price, fees, venue_order_id, reason, created_ts,"
    " updated_ts, seq"
)


def migrate(conn: sqlite3.Connection, db_path: Path, version: int) -> None:
    """Migrate from schema ``version`` (one ``check_meta`` accepted with ``older_ok``)."""
    if version == schema.SCHEMA_VERSION:
        return
    if version not in (1, 2, 3):
        raise ValueError(f"no migration from journal schema version {version}")
    conn.create_function("tp_event_key", 1, ids.event_key, deterministic=True)
    conn.create_function("tp_intent_key", 1, ids.intent_key, deterministic=True)
    conn.create_function("tp_order_key", 1, ids.order_key, deterministic=True)
    if version == 1:
        _from_v1(conn, db_path)
    for step_from, step in ((2, _v2_to_v3), (3, _v3_to_v4)):
        if version > step_from:
            continue
        t0 = time.monotonic()
        _in_transaction(conn, _marked(step, step_from + 1, version))
        log.warning(
            "%s: journal migrated from schema version %d to %d (%.1f s)",
            db_path,
            step_from,
            step_from + 1,
            time.monotonic() - t0,
        )


def _marked(
    step: Callable[[sqlite3.Connection], None], version: int, from_version: int
) -> Callable[[sqlite3.Connection], None]:
    """``step``, then the journal marked as of schema ``version``, in the step's transaction."""

    def run(conn: sqlite3.Connection) -> None:
        step(conn)
        conn.executemany(
            schema.UPSERT_META,
            (
                ("schema_version", str(version)),
                ("migrated_from_version", str(from_version)),
                ("migrated_ts", str(time.time())),
            ),
        )

    return run


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"INSERT OR IGNORE INTO ref_keys (bucket, key, seq) SELECT seq >> {ids.BUCKET_BITS},"
        " tp_order_key(client_order_id), seq FROM fills WHERE client_order_id IS NOT NULL"
    )
    conn.execute("DROP INDEX IF EXISTS fills_order")


def _v3_to_v4(conn: sqlite3.Connection) -> None:
    b = ids.BUCKET_BITS
    for index in ("intents_undecided", "intents_ts", "orders_status"):
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    conn.execute("ALTER TABLE intents RENAME TO intents_v3")
    conn.execute(_ddl("intents"))
    conn.execute(
        f"INSERT INTO intents ({_INTENT_COLUMNS}) SELECT {_INTENT_COLUMNS} FROM intents_v3"
        " ORDER BY seq"
    )
    conn.execute("DROP TABLE intents_v3")
    conn.execute(_ddl("order_rows"))
    kinds = ",".join("?" * len(_ORDER_KINDS))
    conn.execute(
        "WITH firsts AS (SELECT client_order_id AS coid, min(seq) AS seq FROM events NOT INDEXED"
        f" WHERE client_order_id IS NOT NULL AND kind IN ({kinds}) GROUP BY client_order_id)"
        f" INSERT INTO order_rows ({_ORDER_COLUMNS}, created_seq)"
        f" SELECT {', '.join('o.' + c.strip() for c in _ORDER_COLUMNS.split(','))},"
        " min(o.seq, coalesce(f.seq, o.seq)) FROM orders AS o"
        " LEFT JOIN firsts AS f ON f.coid = o.client_order_id ORDER BY 18",
        _ORDER_KINDS,
    )
    conn.execute("DROP TABLE orders")
    for name in ("intents_undecided", "intents_ts", "orders_status", "orders", "row_blooms"):
        conn.execute(_ddl(name))
    conn.execute(
        f"INSERT OR IGNORE INTO ref_keys (bucket, key, seq) SELECT seq >> {b},"
        " tp_intent_key(intent_id), seq FROM intents"
    )
    conn.execute(
        f"INSERT OR IGNORE INTO ref_keys (bucket, key, seq) SELECT created_seq >> {b},"
        " tp_order_key(client_order_id), created_seq FROM order_rows"
    )
    last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    conn.executemany(
        "INSERT INTO row_blooms (block, bits) VALUES (?, ?)",
        (
            (block, ids.bloom(ids.row_keys(conn, block)))
            for block in range((last + 1) >> ids.BLOCK_BITS)
        ),
    )


def _from_v1(conn: sqlite3.Connection, db_path: Path) -> None:
    t0 = time.monotonic()
    last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    log.warning(
        "%s: journal schema version 1 found (%d lines); migrating to version 2, then %d "
        "(resumable: a crash or a kill leaves a schema-1 journal that the next open goes on "
        "migrating)",
        db_path,
        last,
        schema.SCHEMA_VERSION,
    )
    _in_transaction(conn, _create_scratch)
    while True:
        copied = _in_transaction(conn, _copy_chunk)
        if copied >= last:
            break
        log.warning("%s: migration copied %d of %d lines", db_path, copied, last)
    _in_transaction(conn, _swap_in)
    log.warning(
        "%s: journal migrated from schema version 1 to 2 (%d lines kept, %.1f s)",
        db_path,
        last,
        time.monotonic() - t0,
    )


def _in_transaction(conn: sqlite3.Connection, step: Callable[[sqlite3.Connection], Any]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        out = step(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return int(out or 0)


def _ddl_statements() -> dict[str, str]:
    """The current schema's CREATE statements by the name of what they create (table, index or
    view), in order, comments left out."""
    out = {}
    for statement in schema.DDL.split(";"):
        text = "\n".join(x for x in statement.splitlines() if not x.startswith("--")).strip()
        if text:
            out[text.split()[2]] = text  # CREATE TABLE|INDEX|VIEW <name>
    return out


def _ddl(name: str) -> str:
    """The current schema's CREATE statement of table, index or view ``name``."""
    return _ddl_statements()[name]


def _create_scratch(conn: sqlite3.Connection) -> None:
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    if "events_v2" not in existing:
        conn.execute(_ddl("events").replace("CREATE TABLE events", "CREATE TABLE events_v2", 1))
    for table in _ID_TABLES:
        if table not in existing:
            conn.execute(_ddl(table))


def _copy_chunk(conn: sqlite3.Connection) -> int:
    """Copy the next ``COPY_ROWS`` events into events_v2 with their id rows; the last seq
    copied."""
    done = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events_v2").fetchone()[0])
    upto = done + COPY_ROWS
    conn.execute(
        f"INSERT INTO events_v2 ({_COLUMNS}) SELECT {_COLUMNS} FROM events"
        " WHERE seq > ? AND seq <= ? ORDER BY seq",
        (done, upto),
    )
    b = ids.BUCKET_BITS
    span = (done, upto)
    conn.execute(
        f"INSERT INTO event_keys (bucket, key, seq) SELECT seq >> {b}, tp_event_key(event_id), seq"
        " FROM events WHERE seq > ? AND seq <= ?",
        span,
    )
    conn.execute(
        f"INSERT OR IGNORE INTO ref_keys (bucket, key, seq)"
        f" SELECT seq >> {b}, tp_intent_key(intent_id), seq FROM events"
        " WHERE seq > ? AND seq <= ? AND intent_id IS NOT NULL"
        f" UNION ALL SELECT seq >> {b}, tp_order_key(client_order_id), seq FROM events"
        " WHERE seq > ? AND seq <= ? AND client_order_id IS NOT NULL",
        span + span,
    )
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM events_v2").fetchone()[0])


def _swap_in(conn: sqlite3.Connection) -> None:
    """events_v2 becomes events; what else schema 2 has that schema 1 lacks is created (from
    the current DDL: what schemas 3 and 4 changed is done by ``_v2_to_v3`` and ``_v3_to_v4``,
    which follow)."""
    copied = conn.execute("SELECT count(*), coalesce(max(seq), 0) FROM events_v2").fetchone()
    found = conn.execute("SELECT count(*), coalesce(max(seq), 0) FROM events").fetchone()
    if tuple(copied) != tuple(found):  # the copy is checked, never assumed
        raise sqlite3.DatabaseError(f"migration copied {tuple(copied)} of events {tuple(found)}")
    conn.execute("DROP TABLE events")  # and its indexes
    conn.execute("ALTER TABLE events_v2 RENAME TO events")
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    for name, text in _ddl_statements().items():
        if name not in existing and name not in _NEW_IN_V4:
            conn.execute(text)
    last = int(found[1])
    for block in range((last + 1) >> ids.BLOCK_BITS):  # every complete block gets its filter
        conn.execute(
            "INSERT INTO id_blooms (block, bits) VALUES (?, ?)",
            (block, ids.bloom(ids.block_keys(conn, block))),
        )
    conn.executemany(
        schema.UPSERT_META,
        (
            ("schema_version", "2"),
            ("migrated_from_version", "1"),
            ("migrated_ts", str(time.time())),
        ),
    )
