"""Recovery that is not a plain restart: a raising strategy is isolated (restarted up to its own
limit, then suspended) while the others trade on."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import live_status, running, strategy, wait_for_kind
from tests.integration.invariants import check
from tradeplane.journal.reader import JournalReader

pytestmark = pytest.mark.usefixtures("ray_session")


def test_strategy_raising_on_every_start_then_suspended_and_others_keep_trading(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(
        state,
        strategies=[
            strategy("good", "Flipper", ["AAA"]),
            strategy("bad", "Crasher", ["BBB"], crash_at=6),
        ],
        supervisor={"strategy_max_restarts": 1, "max_recovery_attempts": 3},
    )
    with running(cfg) as run:
        wait_for_kind(state, "strategy_suspended", 1)
        status = live_status(run.name)
        assert status["children"]["strategy/bad"]["state"] == "suspended"
        assert status["recovery"]["suspended"] == ["strategy/bad"]
        assert status["phase"] == "running"
        eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=30)
        assert "strategy/bad" in live_status(run.name)["reason"]
        good_fills = _fills(state, "good")
        eventually(
            lambda: _fills(state, "good") >= good_fills + 5, timeout_s=30, what="good trades on"
        )
        # A restarted supervisor reads the suspension back from the journal: no fresh budget.
        ray.kill(run.supervisor, no_restart=False)
        wait_for_kind(state, "supervisor_reattached", 1)
        eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=30)
        assert live_status(run.name)["children"]["strategy/bad"]["state"] == "suspended"
        good_fills = _fills(state, "good")
        eventually(lambda: _fills(state, "good") >= good_fills + 5, timeout_s=30)
    with JournalReader.open(state) as j:
        errors = j.events(kinds=["strategy_error"])
        suspended = j.events(kinds=["strategy_suspended"])
        bad_orders = j.orders(strategy="bad")
        kinds = j.counts_by_kind()
    # The first failure and one per restart (its own limit, not the deployment's), each
    # journaled before the actor went.
    assert len(errors) == 2 and all(
        "planned failure at bar 6" in e["data"]["error"] for e in errors
    )
    assert suspended[0]["data"]["strategy"] == "bad" and suspended[0]["data"]["attempts"] == 1
    assert kinds.get("recovery_exhausted", 0) == 0 and kinds.get("deployment_failed", 0) == 0
    assert len({o["intent_id"] for o in bad_orders}) == len(bad_orders)  # no replay resubmitted
    assert all(o["status"] != "accepted" for o in bad_orders)  # its working orders cancelled
    assert check(state).problems == []


def _fills(state: Path, strategy: str) -> int:
    with JournalReader.open(state) as j:
        return len(j.fills(strategy=strategy))
