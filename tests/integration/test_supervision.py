"""The supervisor restarts dead children and re-attaches after its own restart, while orders
flow; afterwards the journal and the venue still agree (DESIGN §3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import (
    actor,
    journal_counts,
    live_status,
    recovery_events,
    running,
    wait_for_kind,
)
from tests.integration.invariants import check

pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.mark.parametrize("role", ["broker", "risk", "journal", "venue", "feed"])
def test_killed_child_restarts_and_invariants_hold(role: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running(make_config(state)) as run:
        wait_for_kind(state, "order_filled", 5)
        ray.kill(actor(run.name, role), no_restart=True)

        def back() -> bool:
            live = live_status(run.name)
            restarts = live.get("children", {}).get(role, {}).get("restarts")
            return restarts == 1 and live.get("health") == "ok"

        eventually(back, timeout_s=60, what=f"{role} back")
        before = wait_for_kind(state, "order_filled", 0)
        wait_for_kind(state, "order_filled", before + 5)  # fills continue after the restart
    assert check(state).problems == []
    assert journal_counts(state).get("actor_died") == 1
    by_target = recovery_events(state)
    assert by_target[role] == ["recovery_attempt", "recovery_succeeded"]
    if role in ("venue", "broker"):  # the broker lost the venue: reconciled before trading on
        assert by_target.get("venue_connection", [])[-1:] in ([], ["recovery_succeeded"])


def test_killed_supervisor_reattaches_and_pipeline_keeps_trading(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running(make_config(state)) as run:
        wait_for_kind(state, "order_filled", 5)
        ray.kill(run.supervisor, no_restart=False)  # Ray restarts it; children must not notice
        assert wait_for_kind(state, "supervisor_reattached", 1) == 1
        after = live_status(run.name)
        assert after["phase"] == "running"
        assert all(c["restarts"] == 0 for c in after["children"].values())
        before = wait_for_kind(state, "order_filled", 0)
        wait_for_kind(state, "order_filled", before + 5)
        eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=30)
    assert check(state).problems == []
