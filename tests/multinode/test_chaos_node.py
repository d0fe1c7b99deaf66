"""`tradeplane chaos NAME --kill-node` from another process: a worker node hosting strategies
lost at random, the deployment back to ok, and the invariants of DESIGN §3 after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from tests.integration.harness import running, wait_for_kind
from tests.integration.invariants import check
from tests.multinode.conftest import Nodes
from tests.multinode.test_placement import spread_config
from tradeplane.journal.reader import JournalReader

BIN = Path(sys.executable).parent


@pytest.mark.timeout(300)
def test_chaos_kill_node_then_its_strategies_back_elsewhere_and_invariants_hold(
    nodes: Nodes, tmp_path: Path
) -> None:
    nodes.ensure(workers=3)
    state = tmp_path / "state"
    cfg = spread_config(state)
    address = str(ray.get_runtime_context().gcs_address)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 3)
        argv = ["chaos", run.name, "--kill-node", "--seed", "7", "--settle", "90s"]
        chaos = subprocess.run(
            [str(BIN / "tradeplane"), *argv, "--address", address],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            cwd=tmp_path,
        )
        out = chaos.stdout + chaos.stderr
        assert chaos.returncode == 0, out
        flat = " ".join(out.split())  # the console wraps long lines at its width
        assert "lost, declared dead after" in flat and "health ok" in flat, out
        with JournalReader.open(state) as j:
            lost = [e["data"] for e in j.events(kinds=["node_lost"])]
        assert len(lost) == 1 and lost[0]["roles"], lost
        assert all(r.startswith("strategy/") for r in lost[0]["roles"])
        filled = wait_for_kind(state, "order_filled", 1)
        wait_for_kind(state, "order_filled", filled + 3)
    nodes.forget_dead()
    report = check(state)
    assert not report.problems, report.problems
