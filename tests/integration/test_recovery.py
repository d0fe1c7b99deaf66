"""Recovery that is not a plain restart: a raising strategy is isolated (restarted up to its own
limit, then suspended) while the others trade on."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import actor, live_status, running, strategy, wait_for_kind
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


def test_risk_died_holding_intents_then_restarted_risk_decides_each_recent_sent_old_expired(
    tmp_path: Path,
) -> None:
    """Risk's approvals and denials are fire-and-forget: killed with an intent in hand, it
    leaves that intent journaled with no decision. The restarted risk must decide it."""
    from tradeplane.actors.records import intent_record
    from tradeplane.core.model import Intent, OrderType, Side
    from tradeplane.supervisor.chaos import kill_actor
    from tradeplane.telemetry.context import intent_context

    state = tmp_path / "state"
    cfg = make_config(state, strategies=[strategy("quiet", "BuyOnce", ["AAA"], quantity=1)])
    name = cfg.deployment.name

    def orphan(iid: str, age_s: float) -> Intent:
        import time

        return Intent(
            intent_id=iid,
            client_order_id=f"tp{iid}",
            deployment=name,
            strategy="quiet",
            symbol="AAA",
            side=Side.BUY,
            quantity=1.0,
            order_type=OrderType.MARKET,
            limit_price=None,
            ts=time.time() - age_s,
            trigger="test:orphan",
            traceparent=intent_context(name, iid).traceparent,
        )

    with running(cfg):
        wait_for_kind(state, "order_filled", 1)
        journal = actor(name, "journal")
        recent, old = orphan("a" * 24, 0.0), orphan("b" * 24, 60.0)
        kill_actor(name, "risk", mode="sigkill")
        ray.get(journal.append.remote([intent_record(recent), intent_record(old)], []))
        wait_for_kind(state, "order_denied", 1)
        eventually(
            lambda: _order_status(state, recent.client_order_id) == "filled",
            timeout_s=30,
            what="the recent orphan approved, sent and filled",
        )
    with JournalReader.open(state) as j:
        denied = {e["intent_id"]: e["data"] for e in j.events(kinds=["order_denied"])}
        undecided = j.intents(undecided_only=True)
    assert denied[old.intent_id]["reason"] == "INTENT_EXPIRED"
    assert recent.intent_id not in denied
    assert undecided == []


def _order_status(state: Path, coid: str) -> str | None:
    with JournalReader.open(state) as j:
        rows = [o for o in j.orders() if o["client_order_id"] == coid]
    return rows[0]["status"] if rows else None
