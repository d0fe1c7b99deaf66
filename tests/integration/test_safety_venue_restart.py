"""A sim venue killed with orders in flight (DESIGN §3: at most once, never guessed): each such
order is either found at the restarted venue or closed ``NOT_RECEIVED_BY_VENUE``, never both,
and a closed one is one the venue never placed. The grace period is set to an hour, so an order
closed here was closed by the restarted venue's final answer, not by waiting."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import actor, heartbeat, live_status, running, wait_for_kind
from tests.integration.invariants import check, venue_rows
from tradeplane.core.unconfirmed import NOT_RECEIVED
from tradeplane.journal.reader import JournalReader

pytestmark = pytest.mark.usefixtures("ray_session")

OPEN_QUESTIONS = ("pending_submit", "unknown")


def healthy(name: str) -> bool:
    return live_status(name).get("health") == "ok"


def kill_venue_with_a_submit_in_flight(name: str, *, placed: bool) -> None:
    """SIGKILL the venue while the broker waits on a submit to it: ``placed``, the venue has
    placed the order and holds back its answer; otherwise the venue is stopped, so the submit
    waits unprocessed in its queue."""
    eventually(lambda: healthy(name), timeout_s=60, what="health ok before the kill")
    pid = heartbeat(name, "venue")["process"]["pid"]
    submits = heartbeat(name, "broker")["submits"]
    if placed:
        ray.get(actor(name, "venue").inject_fault.remote("delay_acks", None, {"delay_s": 4.0}))
    else:
        os.kill(pid, signal.SIGSTOP)
    eventually(
        lambda: heartbeat(name, "broker")["submits"] > submits,
        timeout_s=30,
        what="a submit sent to the venue",
    )
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: venue_pid(name) not in (None, pid), timeout_s=30, what="venue back")


def venue_pid(name: str) -> int | None:
    try:
        return int(heartbeat(name, "venue")["process"]["pid"])
    except (ValueError, ray.exceptions.RayError):  # no venue actor, or it is dying
        return None


def open_questions(state: Path) -> list[str]:
    with JournalReader.open(state) as j:
        return [o["client_order_id"] for o in j.orders() if o["status"] in OPEN_QUESTIONS]


def test_venue_killed_with_orders_in_flight_then_each_found_or_closed_never_both(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(state, supervisor={"feed_silence_s": 10.0, "unconfirmed_grace_s": 3600.0})
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 3)
        for placed in (False, True, False):
            kill_venue_with_a_submit_in_flight(run.name, placed=placed)
        eventually(lambda: healthy(run.name), timeout_s=60, what="health ok after the kills")
        eventually(lambda: not open_questions(state), timeout_s=30, what="every order settled")

    rep = check(state)
    assert rep.problems == []
    with JournalReader.open(state) as j:
        orders = {o["client_order_id"]: o for o in j.orders()}
        fills = j.fills()
        in_flight = {
            e["client_order_id"]
            for e in j.events(kinds=["order_unknown"])
            if e.get("client_order_id")
        }
    venue_orders, _, _ = venue_rows(state)
    at_venue = {v["client_order_id"]: v for v in venue_orders}
    filled = {f["client_order_id"] for f in fills}
    closed = {c for c, o in orders.items() if o.get("reason") == NOT_RECEIVED}
    found = in_flight - closed
    assert closed, "a submit the stopped venue never ran: closed by the restarted venue's answer"
    for coid in at_venue:
        # Placed before a kill (its answer lost with the venue): known to the journal, settled,
        # never closed as never received. The venue's events may have told the broker before
        # the kill, or the restarted venue's answer after it.
        assert coid in orders and orders[coid]["status"] not in OPEN_QUESTIONS, coid
        assert orders[coid].get("reason") != NOT_RECEIVED, coid
    for coid in closed:
        # Closed never-received: the venue never placed it and nothing of it was filled.
        assert coid not in at_venue and coid not in filled, coid
    for coid in found:
        assert coid in at_venue and orders[coid]["status"] not in OPEN_QUESTIONS, coid
    per_intent: dict[str, Any] = {}
    for o in orders.values():
        per_intent.setdefault(o["intent_id"], []).append(o["client_order_id"])
    assert all(len(coids) == 1 for coids in per_intent.values())
