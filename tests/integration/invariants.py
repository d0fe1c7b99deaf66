"""Checks of DESIGN §3 that read only durable state: the journal and the venue's own record.

Used after integration and chaos runs, once the deployment has stopped.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeplane.core import ids
from tradeplane.journal.reader import JournalReader, verify_journal

TERMINAL = {"filled", "cancelled", "rejected", "expired"}


@dataclass
class Report:
    journal_lines: int = 0
    intents: int = 0
    orders: int = 0
    fills: int = 0
    venue_orders: int = 0
    venue_duplicate_submits: int = 0
    problems: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)

    def fail(self, message: str) -> None:
        self.problems.append(message)


def venue_rows(state_dir: Path) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, Any]]:
    path = state_dir / "venue" / "sim.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        orders = [dict(r) for r in conn.execute("SELECT * FROM orders")]
        positions = {r["symbol"]: r["quantity"] for r in conn.execute("SELECT * FROM positions")}
        meta = {r["key"]: r["value"] for r in conn.execute("SELECT * FROM meta")}
    finally:
        conn.close()
    return orders, positions, meta


def check(state_dir: Path, *, venue_stats: dict[str, int] | None = None) -> Report:
    rep = Report()
    verdict = verify_journal(state_dir / "journal.jsonl")
    rep.journal_lines = verdict.lines
    if not verdict.ok:
        rep.fail(f"journal verify failed at line {verdict.first_bad_line}: {verdict.reason}")
    with JournalReader.open(state_dir) as j:
        intents = {r["intent_id"]: r for r in j.intents()}
        orders = {r["client_order_id"]: r for r in j.orders()}
        fills = j.fills()
        positions = j.positions()
        rep.kinds = j.counts_by_kind()
        if j.last_seq != verdict.lines:
            rep.fail(f"db last_seq {j.last_seq} != jsonl lines {verdict.lines}")
    rep.intents, rep.orders, rep.fills = len(intents), len(orders), len(fills)

    # 1. No intent produces two orders; every order comes from a journaled intent.
    per_intent = Counter(o["intent_id"] for o in orders.values())
    for iid, n in per_intent.items():
        if n > 1:
            rep.fail(f"intent {iid} has {n} orders")
    for coid, o in orders.items():
        if ids.client_order_id(o["intent_id"]) != coid:
            rep.fail(f"order {coid} not derived from its intent {o['intent_id']}")
        if o["intent_id"] not in intents:
            rep.fail(f"order {coid} has no journaled intent")
    for f in fills:
        o = orders.get(f["client_order_id"])
        if o is None:
            rep.fail(f"fill {f['fill_id']} for unknown order {f['client_order_id']}")
        elif o["intent_id"] != f["intent_id"]:
            rep.fail(f"fill {f['fill_id']} intent {f['intent_id']} != order's {o['intent_id']}")

    # The venue's own record: no order twice, none missing from the journal, same outcome.
    v_orders, v_positions, v_meta = venue_rows(state_dir)
    rep.venue_orders = len(v_orders)
    stats = venue_stats or json.loads(v_meta.get("stats") or "{}")
    rep.venue_duplicate_submits = int(stats.get("duplicate_submits", 0))
    if rep.venue_duplicate_submits:
        rep.fail(f"venue saw {rep.venue_duplicate_submits} repeated client order ids")
    for vo in v_orders:
        coid = vo["client_order_id"]
        jo = orders.get(coid)
        if jo is None:
            rep.fail(f"venue order {coid} missing from the journal")
            continue
        # 2. Terminal at the venue => the same terminal state in the journal.
        if vo["status"] in TERMINAL and jo["status"] != vo["status"]:
            rep.fail(f"{coid}: venue {vo['status']} but journal {jo['status']}")
        if abs(float(vo["filled_quantity"]) - float(jo["filled_quantity"] or 0)) > 1e-9:
            rep.fail(
                f"{coid}: filled venue {vo['filled_quantity']} journal {jo['filled_quantity']}"
            )
    venue_coids = {vo["client_order_id"] for vo in v_orders}
    for coid, jo in orders.items():
        if coid not in venue_coids and jo["status"] not in ("rejected",):
            rep.fail(f"journal order {coid} ({jo['status']}) never reached the venue")

    # 3. Journal positions equal venue positions.
    net: dict[str, float] = {}
    for (_strategy, symbol), p in positions.items():
        net[symbol] = net.get(symbol, 0.0) + float(p["quantity"])
    for symbol in set(net) | set(v_positions):
        a, b = net.get(symbol, 0.0), float(v_positions.get(symbol, 0.0))
        if abs(a - b) > 1e-9:
            rep.fail(f"position {symbol}: journal {a} venue {b}")
    return rep
