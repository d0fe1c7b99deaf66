"""The safety layer on real Ray: kill switch, persisted risk state, start-up reconciliation,
status while a deployment writes, and a corrupted state file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import (
    actor,
    journal_counts,
    live_status,
    running,
    strategy,
    wait_for_kind,
)
from tradeplane.cli.main import app
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.model import OrderType, Side
from tradeplane.journal.reader import JournalReader
from tradeplane.supervisor import deployment
from tradeplane.venues.sim import SimVenue, VenueOrderRequest

pytestmark = pytest.mark.usefixtures("ray_session")
cli = CliRunner()


def risk_summary(name: str) -> dict[str, Any]:
    return (live_status(name).get("risk") or {}).get("risk") or {}


def events(state: Path, kind: str) -> list[dict[str, Any]]:
    with JournalReader.open(state) as j:
        return list(j.events(kinds=[kind]))


def test_kill_switch_trips_on_a_mark_without_any_order_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(
        state,
        strategies=[strategy("once", "BuyOnce", ["AAA"], quantity=100)],
        symbols=("AAA",),
        venue={
            "sim": {
                "symbols": ["AAA"],
                "speed": 600.0,
                "history_bars": 0,
                "seed": 3,
                "taker_fee_bps": 0.0,
                "slippage_bps": 0.0,
            }
        },
        risk={"max_drawdown_pct": 0.0005, "kill_switch_allow_reducing": False},
    )
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 1)
        wait_for_kind(state, "kill_switch_activated", 1)
        eventually(lambda: risk_summary(run.name).get("trading_state") == "halted")
    (tripped,) = events(state, "kill_switch_activated")
    assert tripped["data"]["source"] == "risk" and tripped["data"]["reason"] == "max_drawdown"
    assert tripped["data"]["figures"]["drawdown_pct"] > 0.0005
    counts = journal_counts(state)
    # The only order is the strategy's one buy: the trip came from marking the position.
    assert counts.get("order_submitting") == 1 and counts.get("order_denied", 0) == 0

    # Same deployment and state dir, the limit relaxed so that nothing trips it anew: the switch
    # is still on, because only an operator clears it.
    relaxed = cfg.model_copy(
        update={"risk": cfg.risk.model_copy(update={"max_drawdown_pct": 50.0})}
    )
    with running(relaxed) as run:
        eventually(lambda: risk_summary(run.name).get("trading_state") == "halted")
        assert risk_summary(run.name)["kill_switch"]["active"] is True
        result = cli.invoke(app, ["kill-switch", "off", run.name, "--reason", "reviewed"])
        assert result.exit_code == 0, result.output
        eventually(lambda: risk_summary(run.name).get("trading_state") == "active")
    assert len(events(state, "kill_switch_cleared")) == 1


def test_manual_kill_switch_then_working_orders_cancelled_and_new_risk_denied(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(
        state,
        strategies=[
            strategy("acc", "Accumulator", ["AAA"], quantity=1),
            strategy("rest", "BuyOnce", ["BBB"], quantity=5, limit_fraction=0.5),
        ],
    )
    with running(cfg) as run:
        wait_for_kind(state, "order_accepted", 3)
        wait_for_kind(state, "order_filled", 3)
        result = cli.invoke(app, ["kill-switch", "on", run.name, "--reason", "operator test"])
        assert result.exit_code == 0, result.output
        with JournalReader.open(state) as j:
            resting = [o for o in j.orders() if o["strategy"] == "rest"]
        assert len(resting) == 1
        coid = resting[0]["client_order_id"]

        def resting_cancelled() -> bool:
            with JournalReader.open(state) as j:
                return any(
                    o["status"] == "cancelled" for o in j.orders() if o["client_order_id"] == coid
                )

        eventually(resting_cancelled, what="the resting order cancelled by the kill switch")
        wait_for_kind(state, "order_denied", 3)
        (activated,) = events(state, "kill_switch_activated")
        with JournalReader.open(state) as j:
            after = [o for o in j.orders() if o["created_ts"] > activated["data"]["ts"]]
            denied = list(j.events(kinds=["order_denied"]))
        # Nothing risk-increasing reached the venue after the switch: every later order was
        # stopped at the broker (approved before the switch, still queued) and never sent.
        assert all(
            o["status"] == "rejected" and o["reason"].startswith("TRADING_") for o in after
        ), after
        assert {d["data"]["reason"] for d in denied} <= {"REDUCING_ONLY", "TRADING_HALTED"}
        fills_before = journal_counts(state).get("order_filled", 0)

        cli.invoke(app, ["kill-switch", "off", run.name, "--reason", "resume"])
        wait_for_kind(state, "order_filled", fills_before + 3)


def tamper_venue(state: Path) -> None:
    """The venue changes behind tradeplane's back: an order placed by hand."""
    from tradeplane.core.clock import SystemClock

    with SimVenue.open(state / "venue" / "sim.db", clock=SystemClock()) as venue:
        venue.submit(
            VenueOrderRequest(
                client_order_id="manual-1",
                symbol="AAA",
                side=Side.BUY,
                quantity=7.0,
                order_type=OrderType.LIMIT,
                limit_price=1.0,
            )
        )


def with_strict(cfg: TradeplaneConfig, strict: bool) -> TradeplaneConfig:
    sup = cfg.supervisor.model_copy(update={"fail_on_reconciliation_mismatch": strict})
    return cfg.model_copy(update={"supervisor": sup})


def test_reconciliation_mismatch_when_strict_then_start_fails_else_venue_adopted(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(state)
    with running(cfg):
        wait_for_kind(state, "order_filled", 5)
    (first,) = events(state, "reconciliation")
    assert first["data"]["clean"] is True

    tamper_venue(state)
    with pytest.raises(Exception, match="reconciliation mismatch"):
        deployment.deploy(with_strict(cfg, True))
    reports = events(state, "reconciliation")
    assert len(reports) == 2 and reports[-1]["data"]["action"] == "block_start"
    (unexpected,) = reports[-1]["data"]["unexpected_orders"]
    assert unexpected["client_order_id"] == "manual-1"
    (failed,) = events(state, "deployment_failed")
    assert "reconciliation mismatch" in failed["data"]["reason"]
    with JournalReader.open(state) as j:
        assert (j.get_state("health", "deployment") or {}).get("health") == "failed"

    with running(with_strict(cfg, False)) as run:
        eventually(lambda: live_status(run.name).get("health") == "ok")
        rec = live_status(run.name)["reconciliation"]
        assert rec["clean"] is False and rec["action"] == "adopt_venue"
    assert events(state, "reconciliation")[-1]["data"]["action"] == "adopt_venue"


def test_status_while_deployment_writes_then_reads_without_blocking_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running(make_config(state)) as run:
        wait_for_kind(state, "order_filled", 3)
        seqs = []
        for _ in range(3):
            result = cli.invoke(
                app, ["status", run.name, "--state-dir", str(state), "--json", "--tail", "5"]
            )
            assert result.exit_code == 0, result.output
            snapshot = json.loads(result.stdout)["state"]
            assert snapshot["kill_switch"]["active"] is False
            assert snapshot["reconciliation"]["clean"] is True
            seqs.append(snapshot["last_seq"])
            wait_for_kind(state, "order_filled", journal_counts(state)["order_filled"] + 1)
        assert seqs == sorted(seqs) and seqs[0] < seqs[-1]  # the writer kept going


def test_corrupted_journal_then_start_refused_naming_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = make_config(state)
    with running(cfg):
        wait_for_kind(state, "order_filled", 1)
    db = state / "journal.db"
    raw = bytearray(db.read_bytes())
    raw[:16] = b"not a database!!"
    db.write_bytes(bytes(raw))
    with pytest.raises(Exception, match=r"journal\.db") as refused:
        deployment.deploy(cfg)
    assert "\x1b[" not in str(refused.value) and "Traceback" not in str(refused.value)


def crash_left_order_submitting(state: Path, name: str) -> str:
    """What a broker killed between journaling ``order_submitting`` and calling the venue
    leaves behind: an order the journal has and the venue never saw."""
    from tradeplane.actors.records import order_record
    from tradeplane.core import ids
    from tradeplane.core.clock import SystemClock
    from tradeplane.core.execution import ExecutionCore
    from tradeplane.core.model import Intent, SubmitOrder
    from tradeplane.journal.store import JournalStore

    iid = ids.intent_id(name, "flip", "crash-test", 0)
    intent = Intent(
        iid,
        ids.client_order_id(iid),
        name,
        "flip",
        "AAA",
        Side.BUY,
        3.0,
        OrderType.MARKET,
        None,
        0.0,
        "crash-test",
    )
    event = ExecutionCore(SystemClock()).begin_submit(SubmitOrder(intent, 0.0, 100.0))
    assert event is not None
    with JournalStore.open(state, name) as store:
        store.commit([order_record(name, event)], [])
    return intent.client_order_id


def test_order_left_submitting_by_a_crash_then_resolved_by_asking_the_venue_at_start(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    cfg = make_config(state)
    with running(cfg):
        wait_for_kind(state, "order_filled", 1)
    coid = crash_left_order_submitting(state, cfg.deployment.name)
    with running(cfg) as run:
        eventually(lambda: live_status(run.name).get("health") == "ok")
    report = events(state, "reconciliation")[-1]["data"]
    (resolved,) = report["unknown_outcomes_resolved"]
    assert resolved["client_order_id"] == coid
    assert resolved["outcome"] == "rejected NOT_RECEIVED_BY_VENUE"
    assert report["clean"] is True  # settled by asking, so nothing is left to differ
    with JournalReader.open(state) as j:
        (order,) = [o for o in j.orders() if o["client_order_id"] == coid]
    assert order["status"] == "rejected" and order["reason"] == "NOT_RECEIVED_BY_VENUE"


def venue_positions(state: Path) -> dict[str, float]:
    from tradeplane.venues.sim.snapshot import read_sim_holdings

    return {s: q for s, q in read_sim_holdings(state / "venue" / "sim.db").positions.items() if q}


def test_flatten_and_cancel_all_then_venue_flat_with_no_open_orders(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = make_config(
        state,
        strategies=[
            strategy("once", "BuyOnce", ["AAA"], quantity=10),
            strategy("rest", "BuyOnce", ["BBB"], quantity=5, limit_fraction=0.5),
        ],
    )
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 1)
        wait_for_kind(state, "order_accepted", 2)
        result = cli.invoke(app, ["cancel-all", run.name, "--reason", "test"])
        assert result.exit_code == 0 and "1 cancel(s) sent" in result.output, result.output
        wait_for_kind(state, "order_cancelled", 1)
        result = cli.invoke(app, ["flatten", run.name, "--reason", "end of test"])
        assert result.exit_code == 0 and "1 flatten order(s)" in result.output, result.output
        wait_for_kind(state, "order_filled", 2)
    assert venue_positions(state) == {}
    with JournalReader.open(state) as j:
        assert j.orders(open_only=True) == []
        assert all(abs(p["quantity"]) < 1e-9 for p in j.positions().values())


def test_kill_switch_configured_to_flatten_then_positions_closed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = make_config(
        state,
        strategies=[strategy("once", "BuyOnce", ["AAA", "BBB"], quantity=10)],
        risk={"kill_switch_flatten": True},
    )
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 2)
        cli.invoke(app, ["kill-switch", "on", run.name, "--reason", "flatten test"])
        wait_for_kind(state, "order_filled", 4)
        eventually(lambda: risk_summary(run.name).get("trading_state") == "reducing")
    assert venue_positions(state) == {}


def test_risk_actor_killed_then_resumes_with_same_counters_hwm_and_kill_switch(
    tmp_path: Path,
) -> None:
    import ray

    state = tmp_path / "state"
    cfg = make_config(
        state,
        strategies=[strategy("acc", "Accumulator", ["AAA"], quantity=1)],
        risk={"max_orders_per_minute": 100_000, "max_daily_loss": 1e9},
    )
    with running(cfg) as run:
        wait_for_kind(state, "order_filled", 10)
        cli.invoke(app, ["kill-switch", "on", run.name, "--reason", "before the crash"])
        eventually(lambda: risk_summary(run.name).get("trading_state") == "reducing")
        before = risk_summary(run.name)
        old_pid = live_status(run.name)["risk"]["process"]["pid"]
        ray.kill(actor(run.name, "risk"), no_restart=True)

        def new_risk_pid() -> bool:
            process = (live_status(run.name).get("risk") or {}).get("process") or {}
            return process.get("pid") not in (None, old_pid)

        eventually(new_risk_pid, what="a new risk actor reporting")
        after = risk_summary(run.name)
    assert after["trading_state"] == "reducing"
    assert after["kill_switch"]["reason"] == "before the crash"
    assert after["orders_today"] >= before["orders_today"] > 0
    assert after["high_water_mark"] == pytest.approx(before["high_water_mark"], rel=1e-3)
    assert after["risk_day"] == before["risk_day"]
