"""ReconcilerActor: before the first bar of every start, compare what the journal says we hold
with what the venue says, and report every difference.

The broker first settles each order a crash left in submitting/unknown by asking the venue and
catches its event stream up; only then are the two sides compared, so the report is about real
drift, not about events still in flight. The report is journaled as ``reconciliation`` and kept
as state for ``status`` and ``preflight``; the supervisor decides from it whether the start goes
on (adopting the venue's holdings) or stops.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray

from tradeplane.actors.common import (
    SupervisedActor,
    call_journal,
    child_peers,
    process_info,
    query_journal,
)
from tradeplane.actors.records import RECONCILIATION_KEY, RECONCILIATION_SCOPE, event_record
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.reconcile import (
    Holdings,
    expected_from_journal,
    reconcile,
)
from tradeplane.core.reconcile_action import decide
from tradeplane.journal.records import StateWrite
from tradeplane.protocol.api import BrokerApi
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import ROLE_BROKER, ROLE_RECONCILER
from tradeplane.venues.base import holdings_from_venue

log = logging.getLogger("tradeplane.reconciler")


@ray.remote
class ReconcilerActor(SupervisedActor):
    def __init__(self, cfg: TradeplaneConfig, run_id: str, *, epoch: int = 0) -> None:
        self.cfg = cfg
        self.run_id = run_id
        self.deployment = cfg.deployment.name
        self.peers = child_peers(self.deployment, ROLE_RECONCILER, epoch)
        self.last: dict[str, Any] | None = None

    async def ready(self) -> dict[str, Any]:
        return {}

    async def run(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """Reconcile once; returns the report, the action taken and the holdings to adopt."""
        broker = self.peers.remote(ROLE_BROKER)
        if broker is None:
            raise RuntimeError("broker not found: cannot ask the venue")
        live_raw = await broker.call(BrokerApi.reconcile_inputs, timeout_s)
        live: Holdings = holdings_from_venue(live_raw["positions"], live_raw["open_orders"])
        expected = expected_from_journal(
            await query_journal(self.peers, "positions"),
            await query_journal(self.peers, "orders", open_only=True),
        )
        report = reconcile(
            expected,
            live,
            checked_at=time.time(),
            unknown_outcomes_resolved=live_raw["resolutions"],
            venue=self.cfg.venue.kind,
        )
        decision = decide(
            report, live, fail_on_mismatch=self.cfg.supervisor.fail_on_reconciliation_mismatch
        )
        action = decision.action.value  # the wire keeps the plain string
        if not report.clean:
            log.warning("reconciliation mismatch (%s): %s", action, report.summary())
        data = {**report.to_dict(), "run_id": self.run_id, "action": action}
        await call_journal(
            self.peers,
            [event_record(self.deployment, EventKind.RECONCILIATION, report.checked_at, data)],
            [StateWrite(RECONCILIATION_SCOPE, RECONCILIATION_KEY, data, time.time())],
        )
        self.last = {"summary": report.summary(), "clean": report.clean, "action": action}
        return {
            "report": report.to_dict(),
            "summary": report.summary(),
            "lines": report.lines(),
            "action": action,
            "adopt_positions": decision.adopt_positions,
            "external_orders": decision.external_orders,
        }

    async def heartbeat(self) -> dict[str, Any]:
        return {
            "role": ROLE_RECONCILER,
            "ts": time.time(),
            "process": process_info(),
            "last": self.last,
        }
