"""Recovery by standby on a real Ray instance: a killed child's role is taken over by the
deployment's standby (the very actor that stood by), a new standby takes its place, and no
standby is ever called before its promotion; with standbys off, the role is created afresh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import actor, journal_counts, live_status, running, wait_for_kind
from tests.integration.invariants import check
from tradeplane.cluster.names import current_name, standby_names
from tradeplane.protocol.roles import NAMESPACE, actor_name
from tradeplane.supervisor.chaos import kill_actor

pytestmark = pytest.mark.usefixtures("ray_session")


def ready_standbys(name: str) -> list[dict[str, Any]]:
    pool = (live_status(name).get("standbys") or {}).get("pool") or []
    return [s for s in pool if s.get("ready")]


def standby_info(standby_name: str) -> dict[str, Any]:
    handle = ray.get_actor(standby_name, namespace=NAMESPACE)
    info: dict[str, Any] = ray.get(handle.standby_info.remote(), timeout=10)
    return info


def fills(state: Path) -> int:
    return journal_counts(state).get("order_filled", 0)


def trades_on(state: Path, more: int = 3) -> None:
    before = fills(state)
    eventually(lambda: fills(state) >= before + more, timeout_s=30, what=f"{more} more fills")


def recovered(name: str, role: str, restarts: int) -> bool:
    status = live_status(name)
    child = (status.get("children") or {}).get(role) or {}
    return (
        child.get("state") == "running"
        and child.get("restarts") == restarts
        and status.get("health") == "ok"
    )


def test_child_killed_then_the_standby_takes_its_role_and_a_new_one_stands_by(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(state)
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 3)
        [standby] = eventually(lambda: ready_standbys(run.name), timeout_s=60, what="standby")
        standby_id = ray.get_actor(standby["name"], namespace=NAMESPACE)._actor_id.hex()
        # The pipeline trades and the standby hears nothing: any call would be refused and
        # counted, and it plays no role.
        trades_on(state)
        info = standby_info(standby["name"])
        assert info["role"] is None and info["refused_calls"] == 0

        assert kill_actor(run.name, "risk", "sigkill")["ok"]
        eventually(lambda: recovered(run.name, "risk", 1), timeout_s=30, what="risk back")
        # The role is played by the very actor that stood by, found by the role's name.
        assert current_name(run.name, "risk") == standby["name"]
        assert actor(run.name, "risk")._actor_id.hex() == standby_id
        assert standby_info(standby["name"])["role"] == "risk"
        assert live_status(run.name)["standbys"]["promoted"] == 1
        [done] = [e for e in _events(state, "recovery_succeeded") if e["data"]["target"] == "risk"]
        assert "risk_promote_s" in done["data"]["phases"]

        # A new standby stands by, and the deployment trades through the promoted risk.
        [new] = eventually(
            lambda: [s for s in ready_standbys(run.name) if s["name"] != standby["name"]],
            timeout_s=60,
            what="a new standby",
        )
        trades_on(state)
        info = standby_info(new["name"])
        assert info["role"] is None and info["refused_calls"] == 0
    # Gone with the deployment: no standby outlives it.
    eventually(lambda: standby_names(run.name) == [], timeout_s=15, what="standbys gone")
    assert check(state).problems == []


def test_standbys_off_then_killed_child_created_afresh_under_its_own_name(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(state, supervisor={"standbys": False})
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 3)
        before = actor(run.name, "risk")._actor_id.hex()
        assert kill_actor(run.name, "risk", "sigkill")["ok"]
        eventually(lambda: recovered(run.name, "risk", 1), timeout_s=30, what="risk back")
        assert current_name(run.name, "risk") == actor_name(run.name, "risk")
        assert actor(run.name, "risk")._actor_id.hex() != before
        standbys = live_status(run.name)["standbys"]
        assert standbys["enabled"] is False and standbys["pool"] == []
        assert standby_names(run.name) == []
        trades_on(state)
    assert check(state).problems == []


def _events(state: Path, kind: str) -> list[dict[str, Any]]:
    from tradeplane.journal.reader import JournalReader

    with JournalReader.open(state) as j:
        events: list[dict[str, Any]] = j.events(kinds=[kind])
    return events
