"""The promotion gates over the paper journal (starts, the last session) and the verdict."""

from __future__ import annotations

import itertools
from typing import Any

from tradeplane.core import promotion
from tradeplane.core.promotion import (
    Start,
    check_clean_starts,
    check_drift_alerts,
    check_kill_switch,
    check_session_mode,
    last_session,
    starts_from_records,
)
from tradeplane.core.reconcile import ReconciliationReport
from tradeplane.protocol.events import EventKind


class Journal:
    """Journal lines as the reader returns them, in seq order."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._seq = itertools.count(1)

    def add(self, kind: EventKind, **data: Any) -> dict[str, Any]:
        seq = next(self._seq)
        line = {"seq": seq, "kind": str(kind), "ts": f"2026-12-01T10:{seq:02d}:00.000000Z"}
        line["data"] = data
        self.lines.append(line)
        return line

    def start(self, run_id: str, *, clean: bool = True, mode: str = "paper") -> None:
        self.reconciliation(run_id, clean=clean)
        self.add(EventKind.DEPLOYMENT_STARTED, run_id=run_id, mode=mode)

    def reconciliation(self, run_id: str, *, clean: bool = True) -> None:
        missing = [] if clean else [{"symbol": "SPY", "expected": 10.0}]
        report = ReconciliationReport(1.0, clean, missing, [], [], [], [], [], venue="ib")
        self.add(EventKind.RECONCILIATION, **report.to_dict(), run_id=run_id, action="adopt")

    def stop(self, run_id: str) -> None:
        self.add(EventKind.DEPLOYMENT_STOPPED, run_id=run_id, reason="operator")

    def session(self, run_id: str, *, clean: bool = True) -> None:
        self.start(run_id, clean=clean)
        self.stop(run_id)

    def starts(self) -> list[Start]:
        return starts_from_records(self.lines)


def clean_history(n: int = 3) -> Journal:
    j = Journal()
    for i in range(n):
        j.session(f"run-{i}")
    return j


# --- clean starts ------------------------------------------------------------------------------


def test_promote_when_last_starts_reconciled_clean_then_passes() -> None:
    gate = check_clean_starts(clean_history(3).starts(), 3)
    assert gate.passed, gate
    assert [s["run_id"] for s in gate.evidence["starts"]] == ["run-0", "run-1", "run-2"]
    assert all(s["summary"] == "clean" for s in gate.evidence["starts"])


def test_promote_when_fewer_starts_than_required_then_fails() -> None:
    gate = check_clean_starts(clean_history(2).starts(), 3)
    assert not gate.passed
    assert gate.detail == "only 2 start(s) journaled, 3 required"


def test_promote_when_one_of_the_last_starts_had_a_reconciliation_mismatch_then_fails() -> None:
    j = clean_history(2)
    j.session("run-bad", clean=False)
    gate = check_clean_starts(j.starts(), 3)
    assert not gate.passed
    assert "run run-bad" in gate.detail and "SPY" in gate.detail, gate.detail
    assert [s["clean"] for s in gate.evidence["starts"]] == [True, True, False]


def test_promote_when_a_mismatch_is_older_than_the_last_n_starts_then_passes() -> None:
    j = Journal()
    j.session("old", clean=False)
    for i in range(3):
        j.session(f"run-{i}")
    assert check_clean_starts(j.starts(), 3).passed


def test_promote_when_a_start_failed_before_reconciling_then_fails() -> None:
    j = clean_history(2)
    j.add(EventKind.DEPLOYMENT_FAILED, run_id="run-x", reason="start-up failed: client id in use")
    gate = check_clean_starts(j.starts(), 3)
    assert not gate.passed
    assert "no start-up reconciliation" in gate.detail and "client id in use" in gate.detail


def test_promote_when_a_start_was_blocked_by_a_mismatch_then_fails() -> None:
    j = clean_history(2)
    j.reconciliation("blocked", clean=False)
    j.add(EventKind.DEPLOYMENT_FAILED, run_id="blocked", reason="reconciliation mismatch")
    gate = check_clean_starts(j.starts(), 3)
    assert not gate.passed and "run blocked" in gate.detail


def test_promote_when_a_resync_reconciliation_mid_run_then_only_the_start_up_one_counts() -> None:
    j = clean_history(2)
    j.start("run-2")
    j.reconciliation("run-2", clean=False)  # after a venue reconnect
    j.stop("run-2")
    gate = check_clean_starts(j.starts(), 3)
    assert gate.passed, gate


def test_promote_when_a_start_journaled_no_start_up_reconciliation_then_fails() -> None:
    j = clean_history(2)
    j.add(EventKind.DEPLOYMENT_STARTED, run_id="run-2", mode="paper")
    j.reconciliation("run-2")  # clean, but after the start: a resync's, not the start's
    j.stop("run-2")
    gate = check_clean_starts(j.starts(), 3)
    assert not gate.passed
    assert gate.evidence["starts"][-1]["summary"] == "no start-up reconciliation"


def test_promote_when_a_reconciliation_report_is_unreadable_then_fails() -> None:
    j = clean_history(2)
    j.add(EventKind.RECONCILIATION, run_id="odd", clean=True)
    j.add(EventKind.DEPLOYMENT_STARTED, run_id="odd", mode="paper")
    gate = check_clean_starts(j.starts(), 3)
    assert not gate.passed and "unreadable report" in gate.detail


def test_starts_ignore_records_without_a_run_id_and_stops_of_unseen_runs() -> None:
    j = Journal()
    j.add(EventKind.RECONCILIATION, clean=True)  # no run id: not a start
    j.stop("never-started")
    j.session("run-0")
    assert [s.run_id for s in j.starts()] == ["run-0"]


# --- the last session ---------------------------------------------------------------------------


def test_promote_when_kill_switch_tripped_in_last_session_then_fails() -> None:
    j = clean_history(2)
    j.start("run-2")
    j.add(EventKind.KILL_SWITCH_ACTIVATED, source="risk", reason="MAX_DAILY_LOSS")
    j.add(EventKind.KILL_SWITCH_CLEARED, source="operator", reason="reviewed")
    j.stop("run-2")
    starts = j.starts()
    gate = check_kill_switch(j.lines, last_session(starts))
    assert not gate.passed
    assert "tripped 1 time(s)" in gate.detail and "MAX_DAILY_LOSS" in gate.detail
    assert gate.evidence["activations"][0]["source"] == "risk"


def test_promote_when_kill_switch_tripped_only_in_an_earlier_session_then_passes() -> None:
    j = Journal()
    j.start("run-0")
    j.add(EventKind.KILL_SWITCH_ACTIVATED, source="risk", reason="MAX_DRAWDOWN")
    j.stop("run-0")
    j.add(EventKind.KILL_SWITCH_CLEARED, source="operator", reason="reviewed")  # offline
    j.session("run-1")
    gate = check_kill_switch(j.lines, last_session(j.starts()))
    assert gate.passed, gate


def test_promote_when_kill_switch_was_still_active_as_the_last_session_began_then_fails() -> None:
    j = Journal()
    j.add(EventKind.KILL_SWITCH_ACTIVATED, source="operator", reason="desk halt")
    j.session("run-0")
    gate = check_kill_switch(j.lines, last_session(j.starts()))
    assert not gate.passed
    assert "active when the last session began" in gate.detail and "desk halt" in gate.detail


def test_promote_when_kill_switch_tripped_after_the_last_session_stopped_then_not_counted() -> None:
    j = clean_history(1)
    j.add(EventKind.KILL_SWITCH_ACTIVATED, source="operator", reason="weekend")
    gate = check_kill_switch(j.lines, last_session(j.starts()))
    assert gate.passed  # preflight --strict is what refuses an active switch on the live side


def test_promote_when_last_session_is_still_running_then_it_runs_to_the_journal_end() -> None:
    j = clean_history(1)
    j.start("run-1")
    j.add(EventKind.KILL_SWITCH_ACTIVATED, source="risk", reason="MAX_DAILY_LOSS")
    session = last_session(j.starts())
    assert session is not None and session.run_id == "run-1" and session.last_seq is None
    assert not check_kill_switch(j.lines, session).passed


def test_promote_when_a_crashed_session_has_no_stop_then_it_ends_at_the_next_start() -> None:
    j = Journal()
    j.start("crashed")
    j.session("run-1")
    starts = j.starts()
    assert starts[0].last_seq == starts[1].first_seq - 1


def test_promote_when_drift_alert_raised_in_last_session_then_fails() -> None:
    j = clean_history(2)
    j.start("run-2")
    j.add(
        EventKind.DRIFT_ALERT,
        strategy="index_sma",
        figure="tracking_error_pct",
        value=3.2,
        threshold=2.0,
    )
    j.stop("run-2")
    gate = check_drift_alerts(j.lines, last_session(j.starts()))
    assert not gate.passed
    assert "index_sma tracking_error_pct 3.2 past 2.0" in gate.detail
    assert gate.evidence["alerts"][0]["threshold"] == 2.0


def test_promote_when_drift_alert_only_in_an_earlier_session_then_passes() -> None:
    j = Journal()
    j.start("run-0")
    j.add(EventKind.DRIFT_ALERT, strategy="s", figure="x", value=1, threshold=0.5)
    j.stop("run-0")
    j.session("run-1")
    assert check_drift_alerts(j.lines, last_session(j.starts())).passed


def test_promote_when_no_paper_session_journaled_then_session_gates_fail() -> None:
    j = Journal()
    j.add(EventKind.DEPLOYMENT_FAILED, run_id="r", reason="start-up failed")
    session = last_session(j.starts())
    assert session is None
    assert not check_kill_switch(j.lines, session).passed
    assert not check_drift_alerts(j.lines, session).passed
    assert check_session_mode(session) is None


def test_promote_when_last_session_ran_in_shadow_then_fails() -> None:
    j = Journal()
    j.start("run-0", mode="shadow")
    j.stop("run-0")
    gate = check_session_mode(last_session(j.starts()))
    assert gate is not None and not gate.passed and "'shadow'" in gate.detail


def test_session_code_hashes_come_from_its_deployment_started() -> None:
    A = "a" * 64
    j = Journal()
    j.reconciliation("r")
    j.add(EventKind.DEPLOYMENT_STARTED, run_id="r", mode="paper", strategy_code_hashes={"s": A})
    assert promotion.session_code_hashes(last_session(j.starts())) == {"s": A}
    assert promotion.session_code_hashes(last_session(clean_history(1).starts())) is None
    assert promotion.session_code_hashes(None) is None


def test_verdict_passes_only_when_every_gate_passed() -> None:
    ok = promotion.GateResult("a", True, "fine")
    bad = promotion.GateResult("b", False, "broken")
    assert promotion.PromotionVerdict("p", "l", (ok,)).passed
    verdict = promotion.PromotionVerdict("p", "l", (ok, bad))
    assert not verdict.passed and verdict.failures == ["b: broken"]
    assert not promotion.PromotionVerdict("p", "l", ()).passed
