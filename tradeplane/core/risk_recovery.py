"""How a restarted risk takes back its state from the journal's record, and what it decides for
each intent its predecessor left without a decision.

Pure: the risk actor reads the journal into a ``RiskJournal`` and carries out what comes back;
time comes from the injected clock.

Orphans: intents the journal holds with no decision. The risk that had them died before its
approval reached the broker or its denial reached the journal (sends are fire-and-forget, and
the strategy counted them delivered). Each gets a decision before any new intent: one at most
``risk.recovered_intent_max_age_s`` old is checked as usual (the broker drops a second submit of
an order it already has); an older one is denied ``INTENT_EXPIRED``, never sent late. A flatten
order is never re-sent on its own, whatever its age: the operator or the kill switch asks again.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tradeplane.core.clock import Clock
from tradeplane.core.errors import OperationalError
from tradeplane.core.flatten import FLATTEN_TRIGGER_PREFIX, cash_flow_from_positions
from tradeplane.core.model import Intent, OrderDenied, Side
from tradeplane.core.orders import OPEN_STATUSES, OrderStatus
from tradeplane.core.reconcile import net_positions
from tradeplane.core.risk import RiskEngine, RiskEvent

ORPHAN_LOOKBACK_S = 2 * 86_400.0
ORPHAN_FUTURE_TOLERANCE_S = 5.0
"""An orphan's age is the wall clock's across processes (and nodes: the strategy stamped it).
Synced clocks disagree by far less than this; an intent dated further in the future (this
clock stepped back since, or the strategy's node ahead) has no age to trust: expired, not
sent as if it were fresh."""
"""How far back a restarted risk looks for intents left without a decision."""
ORDER_HISTORY_S = 2 * 86_400.0
"""How far back the journal's orders re-seed the rate windows and today's order count."""


@dataclass(frozen=True, slots=True)
class RiskJournal:
    """What a restarting risk reads from the journal (rows as the journal returns them)."""

    positions: Mapping[tuple[str, str], Mapping[str, Any]]
    """Per (strategy, symbol) position rows."""
    orders: Sequence[Mapping[str, Any]]
    risk_state: Mapping[str, Any] | None = None
    """The risk engine's last ``export_state()``."""
    kill_switch: Mapping[str, Any] | None = None
    intents: Sequence[Mapping[str, Any]] = ()
    last_reconciliation: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Restored:
    events: list[RiskEvent] = field(default_factory=list)
    """Risk events the restore caused (e.g. the saved risk day ended while risk was down)."""
    decided_intent_ids: list[str] = field(default_factory=list)
    """Intents the journal already holds a decision for: a replay of one is ignored."""


@dataclass(frozen=True, slots=True)
class CheckOrphan:
    """Recent enough: check it like a new intent."""

    intent: Intent


@dataclass(frozen=True, slots=True)
class ExpireOrphan:
    """Too old (or a flatten): journal this denial, never send it."""

    denial: OrderDenied


OrphanDecision = CheckOrphan | ExpireOrphan


def open_working(orders: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, float]]:
    """Each open order's symbol and remaining signed quantity, by client order id."""
    working: dict[str, tuple[str, float]] = {}
    for o in orders:
        if OrderStatus(o["status"]) not in OPEN_STATUSES:
            continue
        remaining = float(o["quantity"]) - float(o["filled_quantity"] or 0.0)
        working[o["client_order_id"]] = (o["symbol"], Side(o["side"]).sign * remaining)
    return working


class RiskRecovery:
    def __init__(self, engine: RiskEngine, clock: Clock, *, recovered_intent_max_age_s: float):
        self.engine = engine
        self.clock = clock
        self.max_age_s = recovered_intent_max_age_s

    def restore(self, journal: RiskJournal, *, run_id: str, where: str) -> Restored:
        """Resume the engine from the journal's record. ``where`` names the risk state's place
        for the operator when it is unusable (start refused, ``OperationalError``)."""
        rows = journal.positions
        self.engine.restore(
            net_positions(rows),
            open_working(journal.orders),
            cash_flow=cash_flow_from_positions(rows.values()),
        )
        events: list[RiskEvent] = []
        if journal.risk_state:
            try:
                events = self.engine.restore_state(journal.risk_state)
            except ValueError as exc:
                raise OperationalError(
                    f"risk state in {where} is unusable, refusing to start: {exc}"
                ) from exc
        # Orders are journaled before they leave, so the journal is the floor for the counters.
        since = self.clock.now() - ORDER_HISTORY_S
        self.engine.restore_order_history(
            [
                float(o["created_ts"])
                for o in journal.orders
                if o.get("created_ts") is not None and float(o["created_ts"]) >= since
            ]
        )
        if journal.kill_switch is not None:
            self.apply_persisted_kill_switch(journal.kill_switch)
        last = journal.last_reconciliation
        # A restart inside a run that already reconciled trades at once; a new start waits.
        self.engine.set_reconciling(not (last and last.get("run_id") == run_id))
        decided = [row["intent_id"] for row in journal.intents if row.get("decision")]
        return Restored(events, decided)

    def apply_persisted_kill_switch(self, kill: Mapping[str, Any]) -> None:
        """The journal's kill-switch record wins over the engine's restored state."""
        active = bool(kill.get("active"))
        if active and not self.engine.kill_switch_active:
            self.engine.activate_kill_switch(
                str(kill.get("reason") or "restored"), source=str(kill.get("source") or "operator")
            )
        elif not active and self.engine.kill_switch_active:
            self.engine.clear_kill_switch(str(kill.get("reason") or "cleared"), source="operator")

    def orphans_since(self) -> float:
        """The oldest intent time a restarted risk looks at for orphans."""
        return self.clock.now() - ORPHAN_LOOKBACK_S

    def decide_orphan(
        self, intent: Intent | None, decided: Container[str]
    ) -> OrphanDecision | None:
        """What to do with one undecided intent, judged now; None when there is nothing to do
        (unreadable, or decided meanwhile)."""
        if intent is None or intent.intent_id in decided:
            return None
        age = self.clock.now() - intent.ts
        fresh = -ORPHAN_FUTURE_TOLERANCE_S <= age <= self.max_age_s
        if fresh and not intent.trigger.startswith(FLATTEN_TRIGGER_PREFIX):
            return CheckOrphan(intent)
        return ExpireOrphan(self.engine.expire(intent, age, self.max_age_s))
