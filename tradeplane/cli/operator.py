"""Operator commands that act on a deployment: kill switch, flatten, cancel-all.
``kill_switch_all`` sets the kill switch of every deployment running on the cluster at once.

A running deployment is reached through its supervisor on the Ray cluster. The kill switch also
works on a stopped deployment: it is written straight into the state dir's journal (taking the
single-writer lock), so the next start comes up with it active.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeplane.actors.records import event_record, kill_switch_state
from tradeplane.core.errors import OperationalError, root_cause
from tradeplane.journal.files import DB_NAME
from tradeplane.journal.store import JournalStore
from tradeplane.protocol.api import Method, P, R, SupervisorApi
from tradeplane.protocol.events import EventKind


def find_running(name: str, address: str | None) -> Any | None:
    """The deployment's supervisor handle, or None when no cluster or no such deployment."""
    from tradeplane.supervisor import deployment

    try:
        deployment.connect(address or "auto")
    except Exception:
        return None
    return deployment.find_supervisor(name)


def call_running(
    sup: Any, method: Method[SupervisorApi, P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Call ``method`` on a running deployment's supervisor and wait (at most a minute)."""
    return call_running_within(60.0, sup, method, *args, **kwargs)


def call_running_within(
    timeout_s: float,
    sup: Any,
    method: Method[SupervisorApi, P, R],
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    import ray

    result: R = ray.get(getattr(sup, method.__name__).remote(*args, **kwargs), timeout=timeout_s)
    return result


def set_kill_switch_offline(
    state_dir: Path, name: str, *, active: bool, reason: str
) -> dict[str, Any]:
    """Write the kill switch into a stopped deployment's journal (durable, hash-chained)."""
    if not (state_dir / DB_NAME).is_file():
        raise OperationalError(
            f"no journal at {state_dir / DB_NAME}: is {name!r} the deployment's name "
            f"(or pass --state-dir)?"
        )
    try:
        store = JournalStore.open(state_dir, name)
    except OperationalError as exc:
        raise OperationalError(
            f"{exc}\nthe deployment seems to be running but is not reachable through Ray: "
            f"pass --address of its cluster"
        ) from exc
    now = time.time()
    kind = EventKind.KILL_SWITCH_ACTIVATED if active else EventKind.KILL_SWITCH_CLEARED
    state = kill_switch_state(active, reason, "operator", now, offline=True)
    value = dict(state.data)
    try:
        seqs = store.commit([event_record(name, kind, now, dict(value))], [state])
    finally:
        store.close()
    return {"kill_switch": value, "journal_seq": seqs[-1] if seqs else None}


@dataclass(frozen=True)
class KillSwitchOutcome:
    deployment: str
    trading_state: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def kill_switch_all(
    address: str | None, *, active: bool, reason: str, timeout_s: float = 60.0
) -> list[KillSwitchOutcome]:
    """Set (or clear) the kill switch of every deployment running on the cluster. Every
    supervisor is asked at once, so one that hangs delays none of the others; each answer (or
    failure) is reported. Raises OperationalError when the cluster cannot be reached."""
    import ray

    from tradeplane.supervisor import deployment

    try:
        deployment.connect(address or "auto")
    except Exception as exc:
        raise OperationalError(f"no Ray cluster to reach ({type(exc).__name__}: {exc})") from exc
    asked: dict[str, Any] = {}
    out: dict[str, KillSwitchOutcome] = {}
    for name in deployment.list_deployments():
        sup = deployment.find_supervisor(name)
        if sup is None:
            continue  # stopped since it was listed
        try:
            asked[name] = getattr(sup, SupervisorApi.kill_switch.__name__).remote(active, reason)
        except Exception as exc:
            out[name] = KillSwitchOutcome(name, None, f"{type(exc).__name__}: {exc}"[:300])
    deadline = time.monotonic() + timeout_s
    for name, ref in asked.items():
        try:
            summary = ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
        except Exception as exc:
            cause = root_cause(exc)
            out[name] = KillSwitchOutcome(name, None, f"{type(cause).__name__}: {cause}"[:300])
            continue
        state = str(summary.get("trading_state"))
        confirmed = (summary.get("kill_switch") or {}).get("active") is active
        out[name] = KillSwitchOutcome(
            name, state, None if confirmed else f"kill switch not confirmed (trading state {state})"
        )
    return [out[name] for name in sorted(out)]
