"""A running deployment never trades on a journal that is not its own, and a replaced actor can
neither write nor trade (DESIGN §4b): the journal's identity and the writers' epochs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import actor, heartbeat, live_status, running, wait_for_kind
from tradeplane.actors.broker import BrokerActor
from tradeplane.actors.common import child_options
from tradeplane.cluster import kv
from tradeplane.core.ids import client_order_id
from tradeplane.core.model import Intent, OrderType, Side, SubmitOrder

pytestmark = pytest.mark.usefixtures("ray_session")


def venue_submits(name: str) -> int:
    return int(ray.get(actor(name, "venue").stats.remote(), timeout=10).get("submits", 0))


def supervisor_ticks_past(name: str, seconds: float) -> None:
    """Wait until the supervisor has lived ``seconds`` more (its own clock, observed)."""
    start = live_status(name)["uptime_s"]
    eventually(lambda: live_status(name).get("uptime_s", 0) > start + seconds, timeout_s=30)


def test_state_dir_moved_and_journal_killed_then_journal_lost_failed_and_nothing_reaches_venue(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with running(make_config(state)) as run:
        wait_for_kind(state, "order_filled", 3)
        eventually(
            lambda: (live_status(run.name).get("journal", {}).get("identity") or {}).get(
                "last_seq"
            ),
            what="the journal's identity held by the supervisor",
        )
        pid = heartbeat(run.name, "journal")["process"]["pid"]
        state.rename(tmp_path / "moved")  # the record is gone from where the journal was
        os.kill(pid, signal.SIGKILL)

        eventually(lambda: live_status(run.name).get("health") == "failed", timeout_s=60)
        status = live_status(run.name)
        assert status["reason"].startswith("journal_lost: ")
        assert "no journal files" in status["reason"]
        assert status["journal"]["identity"]["lost"] == status["reason"]
        assert status["children"]["journal"]["state"] == "gave_up"
        record = kv.get_run(run.name)
        assert record is not None and record.failure == status["reason"]
        assert record.phase == "failed"
        submits = venue_submits(run.name)
        supervisor_ticks_past(run.name, 3.0)  # the flipper would have ordered every bar
        assert venue_submits(run.name) == submits
        assert not state.exists()  # no fresh journal was started in its place
        restarts = status["children"]["journal"]["restarts"]
        assert restarts == 0 and status["recovery"]["queued"] == []


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def intent(name: str, n: int) -> Intent:
    intent_id = f"stale-{n}"
    return Intent(
        intent_id=intent_id,
        client_order_id=client_order_id(intent_id),
        deployment=name,
        strategy="flip",
        symbol="AAA",
        side=Side.BUY,
        quantity=1.0,
        order_type=OrderType.MARKET,
        limit_price=None,
        ts=time.time(),
        trigger=f"test:{n}",
    )


def test_replaced_actors_resumed_then_their_writes_refused_and_no_order_of_theirs_leaves(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(state)
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 3)
        status = live_status(run.name)
        epochs = status["journal"]["identity"]["epochs"]
        # The broker as a cut-off node would leave it when its replacement starts: same epoch,
        # still running, reaching the journal and the venue (under another name, so that the
        # supervisor's kill of the replaced broker does not reach it).
        options = child_options(run.name, "broker") | {"name": f"{run.name}/broker-cut-off"}
        old = BrokerActor.options(**options).remote(cfg, status["run_id"], epoch=epochs["broker"])
        ray.get(old.ready.remote(), timeout=60)
        pid = ray.get(old.heartbeat.remote(), timeout=10)["process"]["pid"]
        order = SubmitOrder(intent(run.name, 1), time.time(), None)
        with stopped(pid):
            pending = old.submit.remote(order)  # taken up only once it runs again
            ray.kill(actor(run.name, "broker"), no_restart=True)
            eventually(lambda: restarts(run.name, "broker") == 1, timeout_s=60)
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(pending, timeout=30)  # refused by the journal, it stopped itself
        assert heartbeat(run.name, "journal")["refused"].get("broker", 0) >= 1
        assert not at_venue(run.name, order)

        # An order approved by a replaced risk, or asked for by a replaced strategy (any epoch
        # below its fence), reaching the current broker: refused, never sent; the broker goes on.
        ray.kill(actor(run.name, "risk"), no_restart=True)
        eventually(lambda: restarts(run.name, "risk") == 1, timeout_s=60)
        epochs = live_status(run.name)["journal"]["identity"]["epochs"]
        old_risk = status["journal"]["identity"]["epochs"]["risk"]
        stale = {
            "risk": (("risk", old_risk),),
            "strategy/flip": (
                ("risk", epochs["risk"]),
                ("strategy/flip", epochs["strategy/flip"] - 1),
            ),
        }
        broker = actor(run.name, "broker")
        for n, (role, stamps) in enumerate(stale.items(), 2):
            refused = heartbeat(run.name, "journal")["refused"].get(role, 0)
            order = SubmitOrder(intent(run.name, n), time.time(), None, approved_by=stamps)
            assert ray.get(broker.submit.remote(order), timeout=30) is False
            assert not at_venue(run.name, order)
            assert heartbeat(run.name, "journal")["refused"].get(role) == refused + 1
        before = wait_for_kind(state, "order_filled", 0)
        wait_for_kind(state, "order_filled", before + 3)  # the replacements trade on
    assert run.summary["health"] == "stopped"


def restarts(name: str, role: str) -> int | None:
    return live_status(name).get("children", {}).get(role, {}).get("restarts")


def at_venue(name: str, order: SubmitOrder) -> bool:
    return ray.get(actor(name, "venue").order.remote(order.intent.client_order_id)) is not None
