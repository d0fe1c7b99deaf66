"""What a chaos run must leave true, read from durable state after the deployment stopped: the
DESIGN §3 checks of ``tests.integration.invariants`` plus what only a chaos run can break —
every order settled or reported open by reconciliation, every kill answered by a journaled death
and recovery, every health change journaled in an unbroken chain."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.integration.invariants import Report, check
from tradeplane.core.reconcile import expected_from_journal, reconcile
from tradeplane.journal.reader import JournalReader
from tradeplane.venues.sim.snapshot import read_sim_holdings, sim_venue_db

OPEN_OR_TERMINAL = {"accepted", "partially_filled", "pending_cancel", "submitted"} | {
    "filled",
    "cancelled",
    "rejected",
    "expired",
}
RESULTS = ("recovery_succeeded", "recovery_failed")


def check_chaos(
    state: Path,
    *,
    kills: list[dict[str, Any]] | None = None,
    final_status: dict[str, Any] | None = None,
) -> Report:
    rep = check(state)
    with JournalReader.open(state) as j:
        orders = j.orders()
        positions = j.positions()
        open_orders = j.orders(open_only=True)
        events = j.events(
            kinds=[
                "health_changed",
                "recovery_attempt",
                *RESULTS,
                "actor_died",
                "supervisor_reattached",
                "deployment_started",
            ]
        )
        undecided = j.intents(undecided_only=True)
        risk_gone = any(
            e["data"].get("target") == "risk" for e in j.events(kinds=["recovery_exhausted"])
        )
    # Risk that died holding an intent must decide it once restarted; only a risk that was
    # never brought back (its recovery exhausted) leaves intents without a decision.
    for i in [] if risk_gone else undecided:
        rep.fail(f"intent {i['intent_id']} ({i['strategy']} {i['symbol']}) never decided")
    _orders_settled(rep, state, orders, positions, open_orders)
    _recoveries_journaled(rep, events, kills or [])
    _health_chain(rep, events, final_status)
    return rep


def _orders_settled(
    rep: Report,
    state: Path,
    orders: list[dict[str, Any]],
    positions: dict[Any, Any],
    open_orders: list[dict[str, Any]],
) -> None:
    """Every accepted order ends terminal, or is open at the venue and reported so."""
    for o in orders:
        if o["status"] not in OPEN_OR_TERMINAL:
            rep.fail(f"order {o['client_order_id']} left {o['status']} (never settled)")
    holdings = read_sim_holdings(sim_venue_db(state))
    report = reconcile(
        expected_from_journal(positions, open_orders),
        holdings,
        checked_at=time.time(),
        venue="sim",
    )
    if not report.clean:
        rep.fail(f"reconciliation after the run: {report.summary()}")


def _recoveries_journaled(
    rep: Report, events: list[dict[str, Any]], kills: list[dict[str, Any]]
) -> None:
    """Each attempt has a result; each kill that landed has its journaled death (or, for the
    supervisor, its re-attach)."""
    pending: Counter[str] = Counter()
    for e in events:
        if e["kind"] == "recovery_attempt":
            pending[e["data"]["target"]] += 1
        elif e["kind"] in RESULTS:
            pending[e["data"]["target"]] -= 1
    for target, n in pending.items():
        if n != 0:
            rep.fail(f"recovery of {target}: {n} attempt(s) without a journaled result")
    died = Counter(e["data"]["role"] for e in events if e["kind"] == "actor_died")
    reattached = sum(1 for e in events if e["kind"] == "supervisor_reattached")
    landed = Counter(k["role"] for k in kills if k.get("ok"))
    for role, n in landed.items():
        seen = reattached if role == "supervisor" else died[role]
        if seen < n:
            rep.fail(f"{n} kill(s) of {role} landed but {seen} journaled")


def _health_chain(
    rep: Report, events: list[dict[str, Any]], final_status: dict[str, Any] | None
) -> None:
    """Health changes form one chain per supervisor incarnation (each ``previous`` is the last
    journaled ``health``), and the live history the supervisor held is all in the journal."""
    last: str | None = None
    seen: Counter[tuple[str, str]] = Counter()
    for e in events:
        if e["kind"] in ("supervisor_reattached", "deployment_started"):
            last = None  # a new incarnation starts its tracker afresh
            continue
        if e["kind"] != "health_changed":
            continue
        d = e["data"]
        if last is not None and d["previous"] != last and d["previous"] != "starting":
            rep.fail(f"health change {d['previous']} -> {d['health']} after {last}: one missing")
        last = d["health"]
        seen[(d["previous"], d["health"])] += 1
    if final_status:
        live = Counter((h["from"], h["to"]) for h in final_status.get("health_history", []))
        for change, n in live.items():
            if seen[change] < n:
                rep.fail(f"health change {change} x{n} held live but journaled x{seen[change]}")
