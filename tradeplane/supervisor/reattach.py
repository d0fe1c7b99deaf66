"""A restarted supervisor re-attaches to its deployment: the children are detached named actors,
so they outlived it and kept trading. It reads the run's state and the strategies it suspended
from the journal (its memory is gone) and adopts the live children by name; a child missing by
now is recovered like any other death."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tradeplane.protocol.api import ChildApi, JournalApi
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import ROLE_JOURNAL, is_strategy_role, strategy_role
from tradeplane.supervisor.adapter import ChildGone
from tradeplane.supervisor.commands import ChildDied
from tradeplane.supervisor.derive import adopt, adoptable

if TYPE_CHECKING:
    from tradeplane.supervisor.supervisor import Supervisor

RUN_SCOPE, RUN_KEY = "supervisor", "run"


async def reattach(sup: Supervisor) -> bool:
    """False when there is nothing to adopt: a fresh deployment, or one over. The run's state
    is read from the journal; when the journal went down with the supervisor, from the run
    record in Ray's key-value store (never an idle deployment nobody watches: the journal is
    then found missing and recovered like any other death)."""
    adapter, core = sup.adapter, sup.core
    # The journal's identity and the epochs handed out live on in the run record: a journal
    # restarted from here on must be the same one, and new incarnations are fenced above all.
    sup.identity.restore(sup.run_id)
    # While the journal answers, the children that cannot have been suspended (only strategies
    # can) are looked up: Ray loads each one's actor class to make its handle.
    others = [r for r in sup.specs if r != ROLE_JOURNAL and not is_strategy_role(r)]
    (run, ready, suspended), found = await asyncio.gather(
        _run_from_journal(sup), adapter.attach_all(others)
    )
    journal_there = run is not None
    if not journal_there:
        record = adapter.read_run()
        if record is not None and record.deployment == sup.deployment:
            run = {"run_id": record.run_id, "phase": record.phase}
    if not adoptable(run, sup.run_id):
        return False
    found |= await adapter.attach_all(
        [r for r in sup.specs if r not in found and r not in suspended]
    )
    alive = {r: found[r] for r in sup.specs if r not in suspended}
    adoption = adopt(core, alive, suspended)
    lost = sup.identity.journal_ready(ready) if ready is not None else None
    if lost is not None:  # the journal running now is not this run's: trade on nothing
        sup.start_loops()
        await sup.identity.fail_closed(f"journal_lost: {lost}")
        return True
    for role in adoption.abandon:
        adapter.abandon(role)
    for role in adoption.watch:
        sup.watch(role)
    missing = list(adoption.missing)
    sup.journal(EventKind.SUPERVISOR_REATTACHED, {"run_id": sup.run_id, "missing": missing})
    sup.reattached_ts = sup.clock.now()
    sup.start_loops()
    sup.wake.set()  # observe at once: health is unknown until the first tick
    for role in missing:  # died while we were down: recovered like any other death
        await sup.handle(ChildDied(role, "not found on re-attach"))
    return True


async def _run_from_journal(
    sup: Supervisor,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, set[str]]:
    """The run's state as the journal holds it, the journal's ``ready`` answer (its identity)
    and the strategies this run suspended; (None, None, empty) when no journal answers. The
    questions go at once, not one after another: the pipeline is unsupervised until this is
    done."""
    if not sup.adapter.attach(ROLE_JOURNAL):
        return None, None, set()
    asked = asyncio.gather(
        sup.adapter.call(10.0, ROLE_JOURNAL, JournalApi.query, "get_state", RUN_SCOPE, RUN_KEY),
        sup.adapter.call(10.0, ROLE_JOURNAL, ChildApi.ready),
        suspended_in_run(sup),
    )
    try:
        run, ready, suspended = await asked
    except (ChildGone, TimeoutError):
        return None, None, set()
    return run or {}, ready, suspended


async def suspended_in_run(sup: Supervisor) -> set[str]:
    """Strategies this run suspended, from the journal."""
    try:
        started, events = await asyncio.gather(
            sup.adapter.call(
                10.0, ROLE_JOURNAL, JournalApi.query, "events", [EventKind.DEPLOYMENT_STARTED]
            ),
            sup.adapter.call(
                10.0, ROLE_JOURNAL, JournalApi.query, "events", [EventKind.STRATEGY_SUSPENDED]
            ),
        )
    except (ChildGone, TimeoutError):
        # Without the journal nothing is known suspended: a suspended strategy's actor is gone,
        # so it is found missing and goes through the policy again (bounded by its budget).
        return set()
    since = max((e["seq"] for e in started if e["data"].get("run_id") == sup.run_id), default=0)
    return {strategy_role(e["data"]["strategy"]) for e in events if e["seq"] > since}
