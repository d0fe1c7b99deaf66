"""Bringing a journal written by an older release to the current schema, on the writer's open.

One transaction per migration, so a crash in the middle leaves the journal as it was, and the
next open starts it again. Every event row is copied as it is (``line`` holds the hash chain,
which does not change) and the journal's identity (genesis, epoch, last seq) is kept. The log
says so at WARNING, and ``meta`` keeps ``migrated_from_version`` and ``migrated_ts``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from tradeplane.journal import ids, schema

log = logging.getLogger(__name__)

_COLUMNS = "seq, event_id, kind, ts, deployment, strategy, intent_id, client_order_id, line"


def migrate(conn: sqlite3.Connection, db_path: Path, version: int) -> None:
    """Migrate from schema ``version`` (one ``check_meta`` accepted with ``older_ok``)."""
    if version == schema.SCHEMA_VERSION:
        return
    if version != 1:
        raise ValueError(f"no migration from journal schema version {version}")
    t0 = time.monotonic()
    log.warning(
        "%s: journal schema version 1 found; migrating to version %d (one transaction: a crash "
        "leaves version 1, migrated again on the next open)",
        db_path,
        schema.SCHEMA_VERSION,
    )
    conn.create_function("tp_event_key", 1, ids.event_key, deterministic=True)
    conn.create_function("tp_intent_key", 1, ids.intent_key, deterministic=True)
    conn.create_function("tp_order_key", 1, ids.order_key, deterministic=True)
    conn.execute("BEGIN IMMEDIATE")
    try:
        lines = _v1_to_v2(conn)
        conn.executemany(
            schema.UPSERT_META,
            (
                ("schema_version", str(schema.SCHEMA_VERSION)),
                ("migrated_from_version", str(version)),
                ("migrated_ts", str(time.time())),
            ),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    log.warning(
        "%s: journal migrated from schema version 1 to %d (%d lines kept, %.1f s)",
        db_path,
        schema.SCHEMA_VERSION,
        lines,
        time.monotonic() - t0,
    )


def _v1_to_v2(conn: sqlite3.Connection) -> int:
    """events without its unique event_id and hashed-id indexes (SQLite drops a UNIQUE only by
    rebuilding the table), the id tables of ``ids`` filled from it, and every other table or
    index of schema 2 that schema 1 lacks."""
    for index in ("events_kind", "events_intent", "events_order"):
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    conn.execute("ALTER TABLE events RENAME TO events_v1")
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    for statement in schema.DDL.split(";"):
        text = "\n".join(x for x in statement.splitlines() if not x.startswith("--")).strip()
        if text and text.split()[2] not in existing:  # CREATE TABLE|INDEX <name>
            conn.execute(text)
    conn.execute(f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM events_v1 ORDER BY seq")
    conn.execute("DROP TABLE events_v1")
    b = ids.BUCKET_BITS
    conn.execute(
        f"INSERT INTO event_keys (bucket, key, seq) SELECT seq >> {b}, tp_event_key(event_id), seq"
        " FROM events"
    )
    conn.execute(
        f"INSERT OR IGNORE INTO ref_keys (bucket, key, seq)"
        f" SELECT seq >> {b}, tp_intent_key(intent_id), seq FROM events"
        " WHERE intent_id IS NOT NULL"
        f" UNION ALL SELECT seq >> {b}, tp_order_key(client_order_id), seq FROM events"
        " WHERE client_order_id IS NOT NULL"
    )
    last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    for block in range((last + 1) >> ids.BLOCK_BITS):  # every complete block gets its filter
        conn.execute(
            "INSERT INTO id_blooms (block, bits) VALUES (?, ?)",
            (block, ids.bloom(ids.block_keys(conn, block))),
        )
    return last
