"""The supervisor restarts dead children and re-attaches after its own restart, while orders
flow; afterwards the journal and the venue still agree (DESIGN §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.invariants import check
from tradeplane.journal.reader import JournalReader
from tradeplane.supervisor import deployment

pytestmark = pytest.mark.usefixtures("ray_session")


def counts(state: Path) -> dict[str, int]:
    try:
        with JournalReader.open(state) as j:
            return j.counts_by_kind()
    except Exception:
        return {}


def live(name: str) -> dict[str, Any]:
    try:
        return deployment.status(name, timeout_s=5) or {}
    except Exception:
        return {}


@pytest.mark.parametrize("role", ["broker", "risk", "journal", "venue", "feed"])
def test_killed_child_restarts_and_invariants_hold(role: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = make_config(state)
    name = cfg.deployment.name
    deployment.deploy(cfg)
    try:
        eventually(lambda: counts(state).get("order_filled", 0) >= 5, timeout_s=60)
        ray.kill(ray.get_actor(f"{name}/{role}", namespace="tradeplane"), no_restart=True)
        eventually(
            lambda: (
                live(name).get("children", {}).get(role, {}).get("restarts") == 1
                and live(name).get("health") == "ok"
            ),
            timeout_s=60,
            what=f"{role} back",
        )
        before = counts(state).get("order_filled", 0)
        eventually(
            lambda: counts(state).get("order_filled", 0) >= before + 5,
            timeout_s=60,
            what="fills continue after the restart",
        )
    finally:
        deployment.stop(name)
    rep = check(state)
    assert rep.problems == []
    assert counts(state).get("actor_restarted") == 1


def test_killed_supervisor_reattaches_and_pipeline_keeps_trading(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = make_config(state)
    name = cfg.deployment.name
    sup = deployment.deploy(cfg)
    try:
        eventually(lambda: counts(state).get("order_filled", 0) >= 5, timeout_s=60)
        ray.kill(sup, no_restart=False)  # Ray restarts it; its children must not notice
        eventually(lambda: counts(state).get("supervisor_reattached", 0) == 1, timeout_s=60)
        after = live(name)
        assert after["phase"] == "running"
        assert all(c["restarts"] == 0 for c in after["children"].values())
        before = counts(state).get("order_filled", 0)
        eventually(lambda: counts(state).get("order_filled", 0) >= before + 5, timeout_s=60)
        eventually(lambda: live(name).get("health") == "ok", timeout_s=30)
    finally:
        deployment.stop(name)
    assert check(state).problems == []
