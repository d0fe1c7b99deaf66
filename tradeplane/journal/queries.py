"""Read functions over a journal database connection (the writer's or a read-only reader's).

Each function runs short statements and fetches everything it reads, so no read transaction is
left open to hold back the writer's WAL checkpoints.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from tradeplane.core.orders import OPEN_STATUSES
from tradeplane.core.portfolio import VirtualPortfolio
from tradeplane.journal import ids

_OPEN = tuple(sorted(s.value for s in OPEN_STATUSES))


def _rows(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, tuple(params))
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def tail(conn: sqlite3.Connection, n: int) -> list[dict[str, Any]]:
    """The last ``n`` journal lines, parsed, oldest first."""
    rows = conn.execute(
        "SELECT line FROM events ORDER BY seq DESC LIMIT ?", (max(0, n),)
    ).fetchall()
    return [json.loads(r[0]) for r in reversed(rows)]


def events(
    conn: sqlite3.Connection,
    kinds: Iterable[str] | None = None,
    since_seq: int = 0,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Parsed journal lines with seq > ``since_seq`` (optionally of ``kinds``), oldest first."""
    sql = "SELECT line FROM events WHERE seq > ?"
    params: list[Any] = [since_seq]
    if kinds is not None:
        kind_list = list(kinds)
        sql += f" AND kind IN ({_marks(len(kind_list))})"
        params += kind_list
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [json.loads(r[0]) for r in conn.execute(sql, params).fetchall()]


def events_for(
    conn: sqlite3.Connection, *, intent_id: str | None = None, client_order_id: str | None = None
) -> list[dict[str, Any]]:
    """Every journal line about one intent and/or order, oldest first (for ``trace``).

    Found through ``ref_keys`` (one probe per bucket of 4,096 seqs, see ``ids``) and confirmed
    on the events row; a journal of schema 1 read as it is (before the writer migrated it) is
    searched through its own indexes."""
    clauses, params, keys = [], [], []
    if intent_id is not None:
        clauses.append("e.intent_id = ?")
        params.append(intent_id)
        keys.append(ids.intent_key(intent_id))
    if client_order_id is not None:
        clauses.append("e.client_order_id = ?")
        params.append(client_order_id)
        keys.append(ids.order_key(client_order_id))
    if not clauses:
        return []
    where = " OR ".join(clauses)
    if _schema_version(conn) < 2:
        sql = f"SELECT e.line FROM events AS e WHERE {where} ORDER BY e.seq"
        return [json.loads(r[0]) for r in conn.execute(sql, params).fetchall()]
    sql = (
        "WITH RECURSIVE b(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM b WHERE n < ?)"
        " SELECT e.line FROM events AS e WHERE e.seq IN (SELECT r.seq FROM b"
        f" JOIN ref_keys AS r ON r.bucket = b.n AND r.key IN ({_marks(len(keys))}))"
        f" AND ({where}) ORDER BY e.seq"
    )
    rows = conn.execute(sql, [ids.last_bucket(conn), *keys, *params]).fetchall()
    return [json.loads(r[0]) for r in rows]


def _schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row and str(row[0]).isdigit() else 0


def orders(
    conn: sqlite3.Connection, *, strategy: str | None = None, open_only: bool = False
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM orders WHERE 1"
    params: list[Any] = []
    if strategy is not None:
        sql += " AND strategy = ?"
        params.append(strategy)
    if open_only:
        sql += f" AND status IN ({_marks(len(_OPEN))})"
        params += _OPEN
    return _rows(conn, sql + " ORDER BY seq", params)


def order_counts_by_status(conn: sqlite3.Connection, strategy: str | None = None) -> dict[str, int]:
    if strategy is None:
        rows = conn.execute("SELECT status, count(*) FROM orders GROUP BY status")
    else:
        rows = conn.execute(
            "SELECT status, count(*) FROM orders WHERE strategy = ? GROUP BY status", (strategy,)
        )
    return dict(rows.fetchall())


def fills(
    conn: sqlite3.Connection,
    *,
    strategy: str | None = None,
    client_order_id: str | None = None,
    since_seq: int = 0,
) -> list[dict[str, Any]]:
    """Fills with seq > ``since_seq``, oldest first. Those of one order are found through
    ``ref_keys`` (one probe per bucket from ``since_seq`` on, confirmed on the fills row): from
    schema 3 fills have no index on their order id (``schema``)."""
    sql = "SELECT * FROM fills WHERE seq > ?"
    params: list[Any] = [since_seq]
    if strategy is not None:
        sql += " AND strategy = ?"
        params.append(strategy)
    if client_order_id is not None:
        sql += " AND client_order_id = ?"
        params.append(client_order_id)
        if _schema_version(conn) >= 3:
            sql = (
                "WITH RECURSIVE b(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM b WHERE n < ?)"
                f" {sql} AND seq IN (SELECT r.seq FROM b"
                " JOIN ref_keys AS r ON r.bucket = b.n AND r.key = ?)"
            )
            first = max(since_seq, 0) >> ids.BUCKET_BITS
            params = [first, ids.last_bucket(conn), *params, ids.order_key(client_order_id)]
    return _rows(conn, sql + " ORDER BY seq", params)


def positions(
    conn: sqlite3.Connection, *, strategy: str | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Net positions per (strategy, symbol) from the fills in journal order.

    The arithmetic is the virtual portfolio's, so the journal and a strategy's own books agree:
    signed quantity (short < 0), average entry price, realized P&L (before fees) and fees.
    Flat positions stay in the result because their realized P&L still matters.
    """
    sql = "SELECT strategy, symbol, side, quantity, price, fee FROM fills"
    params: tuple[Any, ...] = ()
    if strategy is not None:
        sql += " WHERE strategy = ?"
        params = (strategy,)
    books: dict[str, VirtualPortfolio] = {}
    totals: dict[tuple[str, str], list[float]] = {}  # [fill count, fees]
    for strat, symbol, side, qty, price, fee in conn.execute(sql + " ORDER BY seq", params):
        strat = strat or ""
        signed = qty if side == "buy" else -qty
        books.setdefault(strat, VirtualPortfolio(0.0)).apply(symbol, signed, price, fee or 0.0)
        t = totals.setdefault((strat, symbol), [0, 0.0])
        t[0] += 1
        t[1] += fee or 0.0
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (strat, symbol), (n, fees) in totals.items():
        pos = books[strat].position(symbol)
        out[(strat, symbol)] = {
            "strategy": strat,
            "symbol": symbol,
            "quantity": pos.quantity,
            "avg_price": pos.avg_price,
            "realized_pnl": pos.realized_pnl,
            "fees": fees,
            "fills": int(n),
        }
    return out


def intents(
    conn: sqlite3.Connection,
    *,
    strategy: str | None = None,
    undecided_only: bool = False,
    since_ts: float | None = None,
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM intents WHERE 1"
    params: list[Any] = []
    if since_ts is not None:
        sql += " AND ts >= ?"
        params.append(since_ts)
    if strategy is not None:
        sql += " AND strategy = ?"
        params.append(strategy)
    if undecided_only:
        sql += " AND decision IS NULL"
    # From schema 4 ``seq`` is the rowid, and ordering by it would have SQLite walk the whole
    # table in rowid order rather than read the few recent rows through ``intents_ts`` and sort
    # them: ``+seq`` keeps the order and leaves the index to the time range.
    order = " ORDER BY +seq" if since_ts is not None and not undecided_only else " ORDER BY seq"
    return _rows(conn, sql + order, params)


def get_state(conn: sqlite3.Connection, scope: str, key: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT data FROM state WHERE scope = ? AND key = ?", (scope, key)
    ).fetchone()
    return None if row is None else json.loads(row[0])


def states(conn: sqlite3.Connection, scope: str) -> dict[str, dict[str, Any]]:
    rows = conn.execute("SELECT key, data FROM state WHERE scope = ? ORDER BY key", (scope,))
    return {k: json.loads(d) for k, d in rows.fetchall()}


def counts_by_kind(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())


def meta(conn: sqlite3.Connection) -> dict[str, Any]:
    out: dict[str, Any] = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    for key in ("last_seq", "schema_version"):
        if key in out:
            out[key] = int(out[key])
    return out


def last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM events").fetchone()
    return int(row[0] or 0)


def grouped_counts(
    conn: sqlite3.Connection, kinds: Iterable[str], fields: Iterable[str], upto_seq: int
) -> list[tuple[Any, ...]]:
    """``(kind, field values..., count)`` for events of ``kinds`` up to ``upto_seq``, grouped by
    the given top-level or ``data.`` fields of the journal line (for metric counters)."""
    kinds = list(kinds)
    cols = []
    for f in fields:  # field names come from our code, never from input; checked all the same
        if not f.replace(".", "").replace("_", "").isalnum():
            raise ValueError(f"bad field name {f!r}")
        cols.append(f"json_extract(line, '$.{f}')")
    select = ", ".join(["kind", *cols, "count(*)"])
    group = ", ".join(str(i) for i in range(1, len(cols) + 2))
    sql = (
        f"SELECT {select} FROM events WHERE kind IN ({_marks(len(kinds))}) AND seq <= ?"
        f" GROUP BY {group}"
    )
    return [tuple(r) for r in conn.execute(sql, [*kinds, upto_seq]).fetchall()]
