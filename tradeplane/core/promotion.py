"""Promotion gates: may a live config trade what its paper deployment traded? Pure: plain data
in (the two configs as dicts, strategy code hashes, the paper journal's records), a verdict per
gate out, each with its evidence. ``tradeplane promote`` gathers the inputs and journals the
verdict.

The gates (each a ``GateResult``):

- ``preflight``: ``preflight --strict`` of the live config, against the live venue (the caller
  runs it and passes its result in).
- ``modes``: the paper config is ``paper`` and the live one ``live``.
- ``clean starts``: each of the paper deployment's last N starts had a clean start-up
  reconciliation. A start is one run of the supervisor (its ``run_id``) that journaled anything
  of its start: the start-up ``reconciliation`` (the first of its run; later ones in the run
  follow a venue reconnect), ``deployment_started``, or ``deployment_failed``. A start that
  failed before reconciling has no clean reconciliation, so it counts against the gate.
- ``last session``: the paper deployment's last session ran in mode ``paper``.
- ``kill switch`` and ``drift alerts``: nothing of either in the last paper session, the
  journal from the first record of the last started run up to its ``deployment_stopped`` or
  ``deployment_failed`` (or the next start, or the end of the journal while it runs). A kill
  switch still active when that session began counts as tripped in it.
- ``strategy code``: the same source (``code_hash`` of each strategy's file) in both configs,
  and the one the last paper session ran (its ``deployment_started`` records the hashes of the
  sources the deployer shipped to the strategy actors).
- ``config``: the configs differ only in size, limits, the venue connection and credentials,
  and the deployment's identity ("a size change, not a system change"); see
  ``promotion_config.ALWAYS_ALLOWED``.

This module reads the paper journal; ``promotion_config`` compares the two configs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tradeplane.core.reconcile import ReconciliationReport
from tradeplane.protocol.events import EventKind

SESSION_KINDS: tuple[EventKind, ...] = (
    EventKind.DEPLOYMENT_STARTED,
    EventKind.DEPLOYMENT_STOPPED,
    EventKind.DEPLOYMENT_FAILED,
    EventKind.RECONCILIATION,
    EventKind.KILL_SWITCH_ACTIVATED,
    EventKind.KILL_SWITCH_CLEARED,
    EventKind.DRIFT_ALERT,
)
"""The journal kinds the gates read from the paper deployment's journal."""

_END_KINDS = (EventKind.DEPLOYMENT_STOPPED, EventKind.DEPLOYMENT_FAILED)


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str
    """One line: why it passed or failed."""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "detail": self.detail,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class PromotionVerdict:
    paper: str
    live: str
    gates: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    @property
    def failures(self) -> list[str]:
        return [f"{g.name}: {g.detail}" for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "paper": self.paper,
            "live": self.live,
            "passed": self.passed,
            "failures": self.failures,
            "checks": [g.to_dict() for g in self.gates],
        }


# --- sessions from the journal ------------------------------------------------------------------


@dataclass
class Start:
    """One supervisor run of the paper deployment, as its journal records it."""

    run_id: str
    first_seq: int
    first_ts: str
    reconciliation: dict[str, Any] | None = None
    """The start-up reconciliation's journal line (the first of the run)."""
    started: dict[str, Any] | None = None
    """The ``deployment_started`` line, if the start got that far."""
    ended: dict[str, Any] | None = None
    """The ``deployment_stopped`` or ``deployment_failed`` line that ended it, if any."""
    last_seq: int | None = None
    """The last seq of its session (None: the journal's end, the run may still go on)."""

    def ended_text(self) -> str:
        if self.ended is None:
            return "not ended (still running, or stopped without a record)"
        reason = (self.ended.get("data") or {}).get("reason")
        return f"{self.ended.get('kind')} at {self.ended.get('ts')} ({reason})"


def starts_from_records(records: Iterable[Mapping[str, Any]]) -> list[Start]:
    """The starts in ``records`` (journal lines of ``SESSION_KINDS``, any order), oldest first,
    each with its session's seq range."""
    lines = sorted(records, key=lambda r: int(r["seq"]))
    by_run: dict[str, Start] = {}
    for line in lines:
        kind = line.get("kind")
        run_id = (line.get("data") or {}).get("run_id")
        if kind not in (EventKind.RECONCILIATION, EventKind.DEPLOYMENT_STARTED, *_END_KINDS):
            continue
        if not isinstance(run_id, str) or not run_id:
            continue
        start = by_run.get(run_id)
        if start is None:
            if kind in _END_KINDS and kind != EventKind.DEPLOYMENT_FAILED:
                continue  # a stop of a run this journal does not show starting
            start = by_run[run_id] = Start(run_id, int(line["seq"]), str(line.get("ts")))
        if kind == EventKind.RECONCILIATION:
            # Only before ``deployment_started``: later ones follow a venue reconnect.
            if start.reconciliation is None and start.started is None:
                start.reconciliation = dict(line)
        elif kind == EventKind.DEPLOYMENT_STARTED and start.started is None:
            start.started = dict(line)
        elif kind in _END_KINDS and start.ended is None:
            start.ended = dict(line)
    starts = sorted(by_run.values(), key=lambda s: s.first_seq)
    for here, after in zip(starts, [*starts[1:], None], strict=True):
        if here.ended is not None:
            here.last_seq = int(here.ended["seq"])
        elif after is not None:
            here.last_seq = after.first_seq - 1
    return starts


def _reconciliation_text(line: Mapping[str, Any]) -> tuple[bool, str]:
    data = line.get("data") or {}
    try:
        report = ReconciliationReport.from_dict(data)
    except ValueError as exc:
        return False, f"unreadable report ({exc})"
    return report.clean, report.summary()


def check_clean_starts(starts: Sequence[Start], required: int) -> GateResult:
    """The last ``required`` starts each had a clean start-up reconciliation."""
    name = "clean starts"
    last = list(starts)[-required:]
    evidence: list[dict[str, Any]] = []
    bad: list[str] = []
    for start in last:
        row: dict[str, Any] = {"run_id": start.run_id, "ts": start.first_ts}
        if start.reconciliation is None:
            ended = start.ended or {}
            failed = ended.get("kind") == EventKind.DEPLOYMENT_FAILED and start.started is None
            why = f" (start failed: {(ended.get('data') or {}).get('reason')})" if failed else ""
            row.update(clean=False, summary=f"no start-up reconciliation{why}")
        else:
            clean, summary = _reconciliation_text(start.reconciliation)
            row.update(
                clean=clean,
                summary=summary,
                seq=start.reconciliation.get("seq"),
                action=(start.reconciliation.get("data") or {}).get("action"),
            )
        evidence.append(row)
        if not row["clean"]:
            bad.append(f"run {start.run_id} at {start.first_ts}: {row['summary']}")
    data = {"required": required, "journaled_starts": len(starts), "starts": evidence}
    if len(starts) < required:
        return GateResult(
            name,
            False,
            f"only {len(starts)} start(s) journaled, {required} required",
            data,
        )
    if bad:
        return GateResult(
            name, False, f"{len(bad)} of the last {required} not clean: {'; '.join(bad)}", data
        )
    return GateResult(name, True, f"the last {required} start-up reconciliations clean", data)


def last_session(starts: Sequence[Start]) -> Start | None:
    """The last start that became a session (journaled ``deployment_started``)."""
    return next((s for s in reversed(starts) if s.started is not None), None)


def _session_text(session: Start) -> dict[str, Any]:
    return {
        "run_id": session.run_id,
        "started": (session.started or {}).get("ts"),
        "mode": ((session.started or {}).get("data") or {}).get("mode"),
        "ended": session.ended_text(),
        "seq_range": [session.first_seq, session.last_seq],
    }


def _in_session(line: Mapping[str, Any], session: Start) -> bool:
    seq = int(line["seq"])
    return seq >= session.first_seq and (session.last_seq is None or seq <= session.last_seq)


def check_session_mode(session: Start | None) -> GateResult | None:
    """The last session ran in paper mode (None when there is no session: other gates say so)."""
    if session is None:
        return None
    mode = ((session.started or {}).get("data") or {}).get("mode")
    data = _session_text(session)
    if mode != "paper":
        return GateResult("last session", False, f"it ran in mode {mode!r}, not 'paper'", data)
    return GateResult("last session", True, f"paper, started {data['started']}", data)


def check_kill_switch(records: Iterable[Mapping[str, Any]], session: Start | None) -> GateResult:
    """No kill switch tripped in the last session, nor active when it began."""
    name = "kill switch"
    if session is None:
        return GateResult(name, False, "no paper session journaled", {})
    lines = sorted(
        (
            r
            for r in records
            if r.get("kind") in (EventKind.KILL_SWITCH_ACTIVATED, EventKind.KILL_SWITCH_CLEARED)
        ),
        key=lambda r: int(r["seq"]),
    )
    before = [r for r in lines if int(r["seq"]) < session.first_seq]
    tripped = [
        _kill_switch_row(r)
        for r in lines
        if r.get("kind") == EventKind.KILL_SWITCH_ACTIVATED and _in_session(r, session)
    ]
    data: dict[str, Any] = {"session": _session_text(session), "activations": tripped}
    if before and before[-1].get("kind") == EventKind.KILL_SWITCH_ACTIVATED:
        carried = _kill_switch_row(before[-1])
        data["active_at_start"] = carried
        return GateResult(
            name,
            False,
            f"active when the last session began (since {carried['ts']}: {carried['reason']})",
            data,
        )
    if tripped:
        first = tripped[0]
        return GateResult(
            name,
            False,
            f"tripped {len(tripped)} time(s) in the last session, first at {first['ts']} "
            f"({first['source']}: {first['reason']})",
            data,
        )
    return GateResult(name, True, "not tripped in the last session", data)


def _kill_switch_row(line: Mapping[str, Any]) -> dict[str, Any]:
    data = line.get("data") or {}
    return {
        "seq": line.get("seq"),
        "ts": line.get("ts"),
        "source": data.get("source"),
        "reason": data.get("reason"),
    }


def check_drift_alerts(records: Iterable[Mapping[str, Any]], session: Start | None) -> GateResult:
    """No ``drift_alert`` in the last session."""
    name = "drift alerts"
    if session is None:
        return GateResult(name, False, "no paper session journaled", {})
    alerts = []
    for r in sorted(records, key=lambda r: int(r["seq"])):
        if r.get("kind") == EventKind.DRIFT_ALERT and _in_session(r, session):
            data = r.get("data") or {}
            alerts.append(
                {"seq": r.get("seq"), "ts": r.get("ts")}
                | {k: data.get(k) for k in ("strategy", "figure", "value", "threshold")}
            )
    evidence = {"session": _session_text(session), "alerts": alerts}
    if alerts:
        first = alerts[0]
        return GateResult(
            name,
            False,
            f"{len(alerts)} raised in the last session, first at {first['ts']}: "
            f"{first['strategy']} {first['figure']} {first['value']} past {first['threshold']}",
            evidence,
        )
    return GateResult(name, True, "none in the last session", evidence)


def session_code_hashes(session: Start | None) -> dict[str, Any] | None:
    """The strategy code hashes the session's ``deployment_started`` recorded (None: none)."""
    data = ((session.started or {}).get("data") or {}) if session is not None else {}
    hashes = data.get("strategy_code_hashes")
    return dict(hashes) if isinstance(hashes, Mapping) else None
