"""Bars -> intents -> orders -> fills on real Ray, checked against the journal and the venue."""

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


def journal_counts(state_dir: Path) -> dict[str, int]:
    try:
        with JournalReader.open(state_dir) as j:
            return j.counts_by_kind()
    except Exception:
        return {}


def status(name: str) -> dict[str, Any]:
    return deployment.status(name) or {}


def test_bars_to_fills_land_in_journal_with_matching_ids(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "state")
    name = cfg.deployment.name
    deployment.deploy(cfg)
    try:
        eventually(lambda: status(name)["health"] == "ok", what="health ok")
        eventually(
            lambda: journal_counts(tmp_path / "state").get("order_filled", 0) >= 20,
            timeout_s=60,
            what="20 fills journaled",
        )
        live = status(name)
        assert live["children"]["broker"]["state"] == "running"
        assert live["strategies"]["flip"]["stats"]["bars"] > 0
    finally:
        summary = deployment.stop(name)
    assert summary["health"] == "stopped"
    rep = check(tmp_path / "state")
    assert rep.problems == []
    assert rep.fills >= 20 and rep.orders <= rep.intents
    kinds = rep.kinds
    for kind in (
        "deployment_started",
        "intent",
        "order_submitting",
        "order_accepted",
        "order_filled",
        "order_cancelled",
        "health_changed",
        "deployment_stopped",
    ):
        assert kinds.get(kind, 0) > 0, f"no {kind} in journal: {kinds}"
    with JournalReader.open(tmp_path / "state") as j:
        filled = [o for o in j.orders() if o["status"] == "filled"]
        for o in filled[:10]:
            (intent,) = [i for i in j.intents() if i["intent_id"] == o["intent_id"]]
            assert intent["client_order_id"] == o["client_order_id"]
            assert intent["decision"] == "approved"
            line_kinds = [e["kind"] for e in j.events_for(client_order_id=o["client_order_id"])]
            assert line_kinds[0] == "intent" and "order_submitting" in line_kinds
            assert line_kinds.index("order_submitting") < line_kinds.index("order_filled")


def test_shadow_mode_then_virtual_fills_and_no_venue_actor(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "state", mode="shadow")
    name = cfg.deployment.name
    deployment.deploy(cfg)
    try:
        eventually(
            lambda: journal_counts(tmp_path / "state").get("order_filled", 0) >= 5,
            timeout_s=60,
            what="virtual fills",
        )
        assert "venue" not in status(name)["children"]
        with pytest.raises(ValueError):
            ray.get_actor(f"{name}/venue", namespace="tradeplane")
    finally:
        deployment.stop(name)
    assert not (tmp_path / "state" / "venue").exists()
    assert (tmp_path / "state" / "shadow" / "venue.db").exists()


def test_risk_limit_then_order_denied_journaled_with_reason(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "state", risk={"max_order_value": 1.0})
    name = cfg.deployment.name
    deployment.deploy(cfg)
    try:
        eventually(
            lambda: journal_counts(tmp_path / "state").get("order_denied", 0) >= 3,
            timeout_s=60,
            what="denials",
        )
    finally:
        deployment.stop(name)
    with JournalReader.open(tmp_path / "state") as j:
        denied = j.events(kinds=["order_denied"])
        assert {d["data"]["reason"] for d in denied} == {"MAX_ORDER_VALUE"}
        assert all(d["data"]["figures"]["limit"] == 1.0 for d in denied)
        assert j.orders() == []


def test_killed_strategy_restarts_without_resubmitting(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = make_config(state)
    name = cfg.deployment.name
    sup = deployment.deploy(cfg)
    try:
        eventually(lambda: journal_counts(state).get("order_submitting", 0) >= 10, timeout_s=60)
        strategy = ray.get_actor(f"{name}/strategy/flip", namespace="tradeplane")
        ray.kill(strategy, no_restart=True)
        eventually(
            lambda: journal_counts(state).get("actor_restarted", 0) >= 1,
            timeout_s=30,
            what="strategy restarted",
        )
        before = journal_counts(state).get("order_submitting", 0)
        eventually(
            lambda: journal_counts(state).get("order_submitting", 0) >= before + 10,
            timeout_s=60,
            what="orders flow again after the restart",
        )
        live = ray.get(sup.status.remote())
        assert live["children"]["strategy/flip"]["restarts"] == 1
        assert live["health"] == "ok"
    finally:
        deployment.stop(name)
    rep = check(state)
    assert rep.problems == []
    assert rep.venue_duplicate_submits == 0
