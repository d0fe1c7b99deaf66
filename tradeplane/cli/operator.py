"""Operator commands that act on a deployment: kill switch, flatten, cancel-all.

A running deployment is reached through its supervisor on the Ray cluster. The kill switch also
works on a stopped deployment: it is written straight into the state dir's journal (taking the
single-writer lock), so the next start comes up with it active.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tradeplane.actors.records import event_record, kill_switch_state
from tradeplane.core.errors import OperationalError
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
