"""The chaos suite: actors killed and the venue misbehaving while a strategy trades every bar on
the sim venue; afterwards the journal and the venue must agree (DESIGN §3) and every death,
recovery and health change must be in the journal."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.chaos.invariants import check_chaos
from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import (
    Running,
    actor,
    journal_counts,
    live_status,
    recovery_events,
    running,
    wait_for_kind,
)
from tradeplane.journal.reader import JournalReader
from tradeplane.supervisor.chaos import kill_actor
from tradeplane.venues.sim.snapshot import sim_venue_db

pytestmark = pytest.mark.usefixtures("ray_session")

KINDS = ("strategy/flip", "risk", "broker", "feed", "journal", "venue", "supervisor")


def fills(state: Path) -> int:
    return journal_counts(state).get("order_filled", 0)


def back_to_ok(run: Running, role: str, restarts_before: int, reattached_before: int) -> None:
    """The kill was noticed (a restart counted, or the supervisor re-attached), health is ok
    again, and orders fill again."""

    def noticed() -> bool:
        if role == "supervisor":
            return journal_counts(run.state_dir).get("supervisor_reattached", 0) > reattached_before
        child = live_status(run.name).get("children", {}).get(role, {})
        return int(child.get("restarts", 0)) > restarts_before

    eventually(noticed, timeout_s=60, what=f"{role} kill noticed")
    eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=60, what="ok")
    wait_for_kind(run.state_dir, "order_filled", fills(run.state_dir) + 3)


@pytest.mark.parametrize("mode", ["sigkill", "ray-kill"])
def test_every_actor_kind_killed_twice_while_orders_flow_then_invariants_hold(
    mode: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    cfg = make_config(state, supervisor={"max_recovery_attempts": 10})
    kills: list[dict[str, Any]] = []
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 5)
        for _ in range(2):
            for role in KINDS:
                child = live_status(run.name).get("children", {}).get(role, {})
                restarts = int(child.get("restarts", 0))
                reattached = journal_counts(state).get("supervisor_reattached", 0)
                result = kill_actor(run.name, role, mode)
                assert result["ok"], result
                kills.append(result)
                back_to_ok(run, role, restarts, reattached)
        final = live_status(run.name)
    assert final["phase"] == "running" and final["recovery"]["state"] == "idle"
    rep = check_chaos(state, kills=kills, final_status=final)
    assert rep.problems == []
    assert rep.orders > 50 and rep.fills > 30


def recovered(state: Path, target: str) -> bool:
    events = recovery_events(state).get(target, [])
    return bool(events) and events[-1] == "recovery_succeeded"


def test_each_venue_fault_then_detected_recovered_and_invariants_hold(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = make_config(state, supervisor={"feed_silence_s": 2.0, "max_recovery_attempts": 10})
    with running(cfg) as run:
        sup = run.supervisor
        wait_for_kind(state, "order_filled", 5)

        # A dropped connection: broker_disconnected, new orders gated, reconciled, trading on.
        ray.get(sup.inject_fault.remote("drop_connection", 2.0, {}))
        eventually(lambda: recovered(state, "venue_connection"), timeout_s=60, what="resync")
        eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=30)
        wait_for_kind(state, "order_filled", fills(state) + 3)

        # A silent feed: feed_silent, then the broker/feed pair restarted.
        ray.get(sup.inject_fault.remote("silent", None, {}))
        eventually(lambda: recovered(state, "feed_silence"), timeout_s=60, what="pair restart")
        eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=30)
        wait_for_kind(state, "order_filled", fills(state) + 3)

        # Acks held past the broker's call timeout: the outcome is never guessed (the venue's
        # own events settle those orders) and the timeout counts as a lost connection, so the
        # broker resyncs once more before trading on.
        ray.get(sup.inject_fault.remote("delay_acks", 1.0, {"delay_s": 6.0}))
        eventually(
            lambda: recovery_events(state)["venue_connection"].count("recovery_succeeded") >= 2,
            timeout_s=60,
            what="resync after the held-back acks",
        )
        eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=60)
        wait_for_kind(state, "order_filled", fills(state) + 3)

        for kind in ("duplicate_fills", "reject_orders", "malformed"):
            ray.get(sup.inject_fault.remote(kind, 1.5, {}))
            wait_for_kind(state, "order_filled", fills(state) + 10)
        eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=30)
        final = live_status(run.name)

    rep = check_chaos(state, final_status=final)
    assert rep.problems == []
    with JournalReader.open(state) as j:
        kinds = j.counts_by_kind()
        changes = [e["data"]["health"] for e in j.events(kinds=["health_changed"])]
        denied = [e["data"]["reason"] for e in j.events(kinds=["order_denied"])]
        rejected = [o.get("reason") or "" for o in j.orders() if o["status"] == "rejected"]
        resyncs = _windows(j, "venue_connection")
    assert "broker_disconnected" in changes and "feed_silent" in changes
    assert "RECONCILING" in denied or any(r.startswith("RECONCILING") for r in rejected)
    assert any(r == "INJECTED_REJECT" for r in rejected)
    assert kinds.get("venue_message_rejected", 0) >= 1
    assert len(resyncs) >= 2
    for window in resyncs:
        _nothing_sent_during(state, window)


def _windows(j: JournalReader, target: str) -> list[tuple[float, float]]:
    """Each resync, from its attempt to its success: the venue must receive nothing new."""
    out, start = [], None
    for e in j.events(kinds=["recovery_attempt", "recovery_succeeded"]):
        if e["data"]["target"] != target:
            continue
        if e["kind"] == "recovery_attempt":
            start = epoch(e)
        elif start is not None:
            out.append((start, epoch(e)))
            start = None
    return out


def epoch(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"]).timestamp()


def _nothing_sent_during(state: Path, window: tuple[float, float]) -> None:
    """No order left the broker inside ``window``: every order the venue received in it was let
    through the broker's gate before the window began (``sent_ts``, journaled with
    ``order_submitted``; it can still reach a busy venue a few ms later). An order the venue has
    but the journal has no send time for counts as sent inside."""
    import sqlite3

    conn = sqlite3.connect(f"file:{sim_venue_db(state)}?mode=ro", uri=True)
    try:
        created = conn.execute("SELECT client_order_id, created_ts FROM orders").fetchall()
    finally:
        conn.close()
    with JournalReader.open(state) as j:
        sent = {
            e["client_order_id"]: e["data"].get("sent_ts")
            for e in j.events(kinds=["order_submitted"])
        }
    start, end = window
    arrived = [coid for coid, ts in created if start < float(ts) < end]
    during = [coid for coid in arrived if sent.get(coid) is None or float(sent[coid]) >= start]
    assert during == [], f"{len(during)} order(s) left the broker while resyncing or halted"


def test_child_dying_on_every_start_then_fail_closed_within_attempts_and_nothing_sent_after(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(state, supervisor={"max_recovery_attempts": 2, "recovery_cooldown_s": 0.05})
    kills: list[dict[str, Any]] = []
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 5)

        def killed_until_failed() -> bool:
            status = live_status(run.name)
            if status.get("phase") == "failed":
                return True
            kills.append(kill_actor(run.name, "risk", "ray-kill", timeout_s=1.0))
            return False

        eventually(killed_until_failed, timeout_s=90, interval_s=0.02, what="fail-closed")
        final = live_status(run.name)
        assert final["health"] == "failed"
        assert final["recovery"]["state"] == "exhausted"
        assert "max_recovery_attempts 2" in final["reason"]
        eventually(
            lambda: (
                live_status(run.name)["children"]["feed"]["state"] == "running"
                and not _streaming(run)
            ),
            timeout_s=10,
        )
    with JournalReader.open(state) as j:
        exhausted = j.events(kinds=["recovery_exhausted"])
        attempts = [
            e for e in j.events(kinds=["recovery_attempt"]) if e["data"]["target"] == "risk"
        ]
        failed = j.events(kinds=["deployment_failed"])
    assert len(exhausted) == 1 and exhausted[0]["data"]["target"] == "risk"
    assert len(attempts) == 2  # the configured attempts, then the halt
    assert failed and failed[-1]["seq"] > exhausted[0]["seq"]
    halt_ts = epoch(exhausted[0])
    _nothing_sent_during(state, (halt_ts, float("inf")))
    rep = check_chaos(state, kills=[k for k in kills if k["ok"]])
    assert rep.problems == []


def _streaming(run: Running) -> bool:
    beat = ray.get(actor(run.name, "feed").heartbeat.remote(), timeout=5)
    return bool(beat.get("streaming"))
