"""The state node lost while orders flow: nothing more reaches the venue, the strategies left on
other nodes notice and emit nothing; when a state node is back, `up` on the same state dir says
what it found, reaps the old run's actors, reconciles and resumes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.helpers import eventually
from tests.integration.harness import actor, live_status, running, wait_for_kind
from tests.integration.invariants import check
from tests.multinode.conftest import Nodes
from tests.multinode.test_placement import STRATEGIES, node_of, spread_config
from tradeplane.cluster.nodes import cluster_nodes
from tradeplane.journal.reader import JournalReader
from tradeplane.supervisor import deployment

LEASE_S = 4.0


def venue_orders(state: Path) -> int:
    conn = sqlite3.connect(f"file:{state / 'venue' / 'sim.db'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
    finally:
        conn.close()


def strategy_beat(name: str, strategy: str) -> dict[str, Any]:
    handle = actor(name, f"strategy/{strategy}")
    beat: dict[str, Any] = ray.get(handle.heartbeat.remote(), timeout=10)
    return beat


@pytest.mark.timeout(300)
def test_state_node_lost_then_fail_closed_and_up_resumes_clean(
    nodes: Nodes, tmp_path: Path
) -> None:
    nodes.ensure(workers=2)
    state = tmp_path / "state"
    cfg = spread_config(state, lease_s=LEASE_S)
    run = running(cfg)
    live = run.__enter__()
    try:
        wait_for_kind(state, "order_filled", 3)
        old = {s: node_of(live.name, f"strategy/{s}") for s in STRATEGIES}
        lost_node = nodes.state.node_id
        nodes.lose(nodes.state)
        eventually(
            lambda: lost_node not in {n.node_id for n in cluster_nodes() if n.alive},
            timeout_s=60,
            what="the state node declared dead",
        )
        sent = venue_orders(state)
        # The strategies outlived it, on their own nodes: they notice, and emit nothing.
        time.sleep(LEASE_S + 1.0)  # the lease is a span of time: let it pass, then look
        for s in STRATEGIES:
            assert strategy_beat(live.name, s)["lease"]["lapsed"], s
        assert venue_orders(state) == sent  # nothing more reached the venue
        assert not live_status(live.name)  # no supervisor answers

        nodes.add_state()
        sup = deployment.deploy(cfg)
        live.supervisor = sup
        with JournalReader.open(state) as j:
            lost = [e["data"] for e in j.events(kinds=["state_node_lost"])]
        assert len(lost) == 1 and lost[0]["state_node_id"] == lost_node
        assert sorted(lost[0]["reaped"]) == sorted(f"strategy/{s}" for s in STRATEGIES)
        for s in STRATEGIES:  # new actors, on live workers
            assert not strategy_beat(live.name, s)["lease"]["lapsed"]
            assert node_of(live.name, f"strategy/{s}") in {n.node_id for n in nodes.workers}
        assert set(old.values()) <= {n.node_id for n in nodes.workers}
        eventually(lambda: live_status(live.name).get("health") == "ok", timeout_s=60, what="ok")
        filled = wait_for_kind(state, "order_filled", 1)
        wait_for_kind(state, "order_filled", filled + 3)
        assert live_status(live.name)["state_node"]["node_id"] == nodes.state.node_id
    finally:
        run.__exit__(None, None, None)
    report = check(state)
    assert not report.problems, report.problems
