"""RiskActor: approves intents into ``SubmitOrder`` commands or journals ``order_denied``, and
runs the kill switch.

The risk engine is evaluated on every mark, so a daily loss or drawdown trips the kill switch
without waiting for an order. Its state (trading state, kill switch, daily counters, rate
windows, high-water mark) lives in the journal's state table: kill-switch changes are committed
durably before anything acts on them; the rest is written whenever it changed, at most once a
second, and counters are re-derived from the journal's orders on restart, so a restarted actor
resumes with the same figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import replace
from typing import Any

import ray

from tradeplane.actors.common import (
    Outbox,
    SupervisedActor,
    call_journal,
    child_peers,
    process_info,
    query_journal,
    spawn,
)
from tradeplane.actors.gc_tuning import settle_after_start_up
from tradeplane.actors.records import (
    KILL_SWITCH_KEY,
    RECONCILIATION_KEY,
    RECONCILIATION_SCOPE,
    RISK_SCOPE,
    RISK_STATE_KEY,
    denial_record,
    event_record,
    intent_from_row,
    intent_record,
    kill_switch_state,
)
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.clock import SystemClock
from tradeplane.core.errors import OperationalError
from tradeplane.core.exposure import is_flat
from tradeplane.core.flatten import flatten_intents
from tradeplane.core.model import (
    CancelIntent,
    CancelOrder,
    Envelope,
    Fill,
    Intent,
    OrderDenied,
    Side,
)
from tradeplane.core.reconcile import net_positions
from tradeplane.core.risk import (
    KillSwitchActivated,
    KillSwitchCleared,
    RiskDayRolledOver,
    RiskEngine,
)
from tradeplane.core.risk_recovery import CheckOrphan, RiskJournal, RiskRecovery
from tradeplane.core.session import make_calendar
from tradeplane.journal.records import JournalRecord, StateWrite
from tradeplane.protocol.api import BrokerApi
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import ROLE_BROKER, ROLE_RISK
from tradeplane.telemetry.actors import actor_metrics
from tradeplane.telemetry.context import intent_context, risk_check_context

log = logging.getLogger("tradeplane.risk")
DECIDED_MEMORY = 50_000
PERSIST_INTERVAL_S = 1.0
# The feed sends a bar to the strategies and to risk separately; an intent can arrive before
# risk has seen its symbol's first bar. It waits this long for that mark instead of being denied.
FIRST_MARK_WAIT_S = 2.0


def starting_equity(cfg: TradeplaneConfig) -> float:
    return cfg.risk.resolved_starting_equity([s.capital for s in cfg.strategies])


@ray.remote
class RiskActor(SupervisedActor):
    def __init__(self, cfg: TradeplaneConfig, run_id: str, *, epoch: int = 0) -> None:
        self.cfg = cfg
        self.run_id = run_id
        self.deployment = cfg.deployment.name
        self.peers = child_peers(self.deployment, ROLE_RISK, epoch)
        self.outbox = Outbox(self.peers, inflight_limit=cfg.supervisor.inflight_limit)
        clock = SystemClock()
        self.engine = RiskEngine(
            cfg.risk.limits(),
            clock=clock,
            calendar=make_calendar(cfg.session.calendar),
            starting_equity=starting_equity(cfg),
            policy=cfg.risk.kill_switch_policy(),
        )
        self.recovery = RiskRecovery(
            self.engine, clock, recovered_intent_max_age_s=cfg.risk.recovered_intent_max_age_s
        )
        self._decided: deque[str] = deque(maxlen=DECIDED_MEMORY)
        self._decided_set: set[str] = set()
        self._ready = asyncio.Event()
        self._persisted_version = -1
        self._acting = asyncio.Lock()
        self._deciding = asyncio.Lock()  # intents are decided in the order they arrive
        self._first_mark: dict[str, asyncio.Event] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.replayed = 0
        self.orphans = 0
        self.recent_denials: deque[dict[str, Any]] = deque(maxlen=20)
        self.kill_switch_actions: deque[dict[str, Any]] = deque(maxlen=20)
        self.metrics = actor_metrics(cfg, "risk")
        self._decisions = self.metrics.counter("risk_decisions", "Intents decided by risk")
        self.metrics.gauge(
            "trading_state",
            "1 for the current trading state (active, reducing, halted, reconciling)",
            "1",
            lambda: [(1.0, {"state": self.engine.trading_state.value})],
        )
        self.metrics.gauge(
            "kill_switch_active",
            "1 while the kill switch is active",
            "1",
            lambda: [(1.0 if self.engine.kill_switch_active else 0.0, {})],
        )

    # -- start-up ------------------------------------------------------------------------------

    async def ready(self) -> dict[str, Any]:
        if not self._ready.is_set():
            events = await self._restore()
            spawn(self.tasks, self._persist_loop())
            self._tell_broker_trading_state()
            if events:  # e.g. the saved risk day ended while we were down
                await self._act(events)
            settle_after_start_up()
            self._ready.set()
            spawn(self.tasks, self._decide_orphans())
        return {"summary": self.engine.summary()}

    async def _restore(self) -> list[Any]:
        """Read what the journal holds for risk; ``core.risk_recovery`` takes it back."""
        positions = await query_journal(self.peers, "positions")
        orders = await query_journal(self.peers, "orders")
        journal = RiskJournal(
            positions=positions,
            orders=orders,
            risk_state=await query_journal(
                self.peers, "get_state", scope=RISK_SCOPE, key=RISK_STATE_KEY
            ),
            kill_switch=await query_journal(
                self.peers, "get_state", scope=RISK_SCOPE, key=KILL_SWITCH_KEY
            ),
            intents=await query_journal(self.peers, "intents"),
            last_reconciliation=await query_journal(
                self.peers, "get_state", scope=RECONCILIATION_SCOPE, key=RECONCILIATION_KEY
            ),
        )
        where = (
            f"{self.cfg.deployment.resolved_state_dir()}/journal.db "
            f"(state {RISK_SCOPE}/{RISK_STATE_KEY})"
        )
        restored = self.recovery.restore(journal, run_id=self.run_id, where=where)
        for intent_id in restored.decided_intent_ids:
            self._remember(intent_id)
        return restored.events

    async def _decide_orphans(self) -> None:
        """Decide every intent the journal holds without a decision, before any new intent, as
        ``core.risk_recovery`` says: recent ones checked as usual, the rest denied."""
        try:
            rows = await query_journal(
                self.peers, "intents", undecided_only=True, since_ts=self.recovery.orphans_since()
            )
        except OperationalError:
            log.exception("could not read undecided intents")
            return
        async with self._deciding:
            for row in rows:
                intent = intent_from_row(self.deployment, row)
                decision = self.recovery.decide_orphan(intent, self._decided_set)
                if decision is None:
                    continue
                self.orphans += 1
                if isinstance(decision, CheckOrphan):
                    await self._await_first_mark(decision.intent.symbol)
                    await self._decide(decision.intent, received=time.time())
                    continue
                denial = decision.denial
                self._remember(denial.intent.intent_id)
                self._decisions.add(1, {"decision": "denied"})
                check = risk_check_context(denial.intent.traceparent, denial.intent.intent_id)
                record = denial_record(
                    denial,
                    received_ts=time.time(),
                    traceparent=check.traceparent if check else None,
                )
                self.outbox.journal([record], [])
        if rows:
            log.warning("decided %d intent(s) left undecided by a restart", len(rows))

    async def begin_resync(self, reason: str) -> None:
        """The broker lost the venue: deny new intents (``RECONCILING``) until the supervisor
        has reconciled with the reconnected venue and calls ``end_reconciliation``."""
        await self._ready.wait()
        log.warning("venue connection lost (%s): denying new intents until reconciled", reason)
        self.engine.set_reconciling(True)

    async def end_reconciliation(
        self, positions: dict[str, float] | None = None, external_orders: list[Any] | None = None
    ) -> dict[str, Any]:
        """The reconciler is done: adopt the venue's holdings when told to, then trade."""
        await self._ready.wait()
        if positions is not None:
            working = {
                o["client_order_id"] or f"venue:{o.get('venue_order_id')}": (
                    o["symbol"],
                    Side(o["side"]).sign * float(o["remaining"]),
                )
                for o in (external_orders or [])
            }
            self.engine.adopt(positions, working)
        self.engine.set_reconciling(False)
        return self.engine.summary()

    # -- market data and intents ---------------------------------------------------------------

    async def on_bars(self, envelope: Envelope) -> None:
        events: list[Any] = []
        for bar in envelope.payload:
            events.extend(self.engine.mark(bar.symbol, bar.close))
            waiting = self._first_mark.pop(bar.symbol, None)
            if waiting is not None:
                waiting.set()
        if events:
            await self._act(events)

    async def on_intents(self, envelope: Envelope) -> None:
        received = time.time()  # the risk.check span starts here: queueing behind the lock counts
        await self._ready.wait()
        async with self._deciding:
            for item in envelope.payload:
                await self._on_intent(item, received, envelope.sender)

    async def _on_intent(
        self,
        item: Intent | CancelIntent,
        received: float,
        sender: tuple[str, int] | None = None,
    ) -> None:
        if isinstance(item, CancelIntent):
            self.outbox.send_nowait(
                ROLE_BROKER,
                BrokerApi.cancel,
                CancelOrder(item.client_order_id, item.strategy, "strategy", item.ts),
            )
            return
        await self._await_first_mark(item.symbol)
        await self._decide(item, received=received, sender=sender)

    async def _await_first_mark(self, symbol: str) -> None:
        if self.engine.price(symbol) is not None:
            return
        event = self._first_mark.setdefault(symbol, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_MARK_WAIT_S):
                await event.wait()

    async def _decide(
        self,
        intent: Intent,
        *,
        flatten: bool = False,
        received: float | None = None,
        sender: tuple[str, int] | None = None,
    ) -> None:
        received = time.time() if received is None else received
        if intent.intent_id in self._decided_set:
            self.replayed += 1  # a replay after a restart: already approved or denied
            return
        if not flatten:  # a flatten runs inside _act already: no re-entry
            events = self.engine.roll_day_if_due()
            if events:
                await self._act(events)
        decision = self.engine.check(intent, flatten=flatten)
        self._remember(intent.intent_id)
        tripped = [] if flatten else self.engine.drain_events()
        if tripped:  # the check itself found a loss limit crossed: act before anything else
            await self._act(tripped)
        check = risk_check_context(intent.traceparent, intent.intent_id)
        traceparent = check.traceparent if check else None
        self._decisions.add(
            1, {"decision": "denied" if isinstance(decision, OrderDenied) else "approved"}
        )
        if isinstance(decision, OrderDenied):
            self.recent_denials.append(
                {"intent_id": intent.intent_id, "reason": decision.reason, "ts": decision.ts}
            )
            record = denial_record(decision, received_ts=received, traceparent=traceparent)
            self.outbox.journal([record], self._state_writes())
            return
        self.outbox.send_nowait(
            ROLE_BROKER,
            BrokerApi.submit,
            replace(
                decision,
                flatten=flatten,
                traceparent=traceparent,
                received_ts=received,
                approved_by=tuple(self.peers.stamps(sender)),
            ),
        )

    def _remember(self, intent_id: str) -> None:
        if len(self._decided) == self._decided.maxlen:
            self._decided_set.discard(self._decided[0])
        self._decided.append(intent_id)
        self._decided_set.add(intent_id)

    async def on_order_events(
        self, fills: list[Fill], closed: list[str], venue_rejected: list[str] | None = None
    ) -> None:
        await self._ready.wait()
        events: list[Any] = []
        for fill in fills:
            events.extend(self.engine.on_fill(fill))
        for coid in closed:
            self.engine.on_order_closed(coid)
        for coid in venue_rejected or []:
            events.extend(self.engine.on_venue_rejection(coid))
        if events:
            await self._act(events)

    # -- kill switch, rollover and operator commands -------------------------------------------

    async def _act(self, events: list[Any]) -> None:
        """Journal each risk event durably with the state it leads to, then carry it out."""
        async with self._acting:
            if any(isinstance(ev, KillSwitchActivated | KillSwitchCleared) for ev in events):
                # First, before the journal round trip: a submit already queued at the broker
                # must meet the new state before it reaches the venue.
                self._tell_broker_trading_state()
            now = time.time()
            records: list[JournalRecord] = []
            writes: list[StateWrite] = []
            for ev in events:
                data = ev.to_dict()
                if isinstance(ev, KillSwitchActivated):
                    records.append(
                        event_record(self.deployment, EventKind.KILL_SWITCH_ACTIVATED, now, data)
                    )
                    writes.append(
                        kill_switch_state(True, ev.reason, ev.source, now, figures=ev.figures)
                    )
                elif isinstance(ev, KillSwitchCleared):
                    records.append(
                        event_record(self.deployment, EventKind.KILL_SWITCH_CLEARED, now, data)
                    )
                    writes.append(kill_switch_state(False, ev.reason, ev.source, now))
                elif isinstance(ev, RiskDayRolledOver):
                    records.append(
                        event_record(self.deployment, EventKind.RISK_DAY_ROLLED_OVER, now, data)
                    )
            writes.extend(self._state_writes(force=True))
            await call_journal(self.peers, records, writes, retry_s=3600.0)
            for ev in events:
                if isinstance(ev, KillSwitchActivated):
                    log.warning("kill switch activated (%s): %s", ev.source, ev.reason)
                    await self._on_kill_switch(ev)

    async def _on_kill_switch(self, ev: KillSwitchActivated) -> None:
        action: dict[str, Any] = {"ts": time.time(), "reason": ev.reason, "source": ev.source}
        if ev.cancel_orders or ev.flatten:
            self.outbox.send_nowait(ROLE_BROKER, BrokerApi.cancel_all, f"kill switch: {ev.reason}")
            action["cancel_all"] = True
        if ev.flatten:
            action["flatten_orders"] = await self._flatten(f"kill-{ev.ts}", ev.reason)
        self.kill_switch_actions.append(action)

    async def _flatten(self, request_id: str, reason: str) -> int:
        rows = await query_journal(self.peers, "positions")
        await self._catch_up_with(rows)
        intents = [
            replace(
                i, traceparent=intent_context(i.deployment, i.intent_id, ratio=ratio).traceparent
            )
            for i in flatten_intents(self.deployment, rows, request_id=request_id, ts=time.time())
            for ratio in (self.cfg.telemetry.sampling_ratio,)
        ]
        if intents:
            await call_journal(
                self.peers,
                [intent_record(i, {"source": "flatten", "reason": reason}) for i in intents],
            )
        for intent in intents:
            await self._decide(intent, flatten=True)
        return len(intents)

    async def _catch_up_with(self, rows: dict[Any, dict[str, Any]], wait_s: float = 2.0) -> None:
        """Fills reach the journal before they reach risk: wait (bounded) until risk's positions
        match the journal's, so a flatten sized from the journal counts as reducing here too."""
        net = net_positions(rows)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if all(is_flat(self.engine.position(s) - q) for s, q in net.items()):
                return
            await asyncio.sleep(0.02)
        log.warning("flatten: risk's positions still differ from the journal's; sizing by journal")

    async def kill_switch(
        self, active: bool, reason: str, source: str = "operator"
    ) -> dict[str, Any]:
        await self._ready.wait()
        if active:
            events = self.engine.activate_kill_switch(reason, source=source)
        else:
            events = self.engine.clear_kill_switch(reason, source=source)
        if events:
            await self._act(events)
        return self.engine.summary()

    async def flatten(self, reason: str = "operator") -> dict[str, Any]:
        """Cancel every working order, then close every position with market orders."""
        await self._ready.wait()
        self.outbox.send_nowait(ROLE_BROKER, BrokerApi.cancel_all, f"flatten: {reason}")
        sent = await self._flatten(f"op-{time.time():.6f}", reason)
        record = event_record(
            self.deployment,
            EventKind.FLATTEN_REQUESTED,
            time.time(),
            {"reason": reason, "orders": sent},
        )
        await call_journal(self.peers, [record])
        return {"orders": sent, "reason": reason}

    def _tell_broker_trading_state(self) -> None:
        self.outbox.send_nowait(
            ROLE_BROKER,
            BrokerApi.set_trading_state,
            self.engine.trading_state,
            self.engine.summary().get("kill_switch"),
        )

    # -- persistence ---------------------------------------------------------------------------

    def _state_writes(self, *, force: bool = False) -> list[StateWrite]:
        version = self.engine.state_version
        if not force and version == self._persisted_version:
            return []
        self._persisted_version = version
        return [StateWrite(RISK_SCOPE, RISK_STATE_KEY, self.engine.export_state(), time.time())]

    async def _persist_loop(self) -> None:
        while True:
            await asyncio.sleep(PERSIST_INTERVAL_S)
            try:
                events = self.engine.roll_day_if_due()
                if events:
                    await self._act(events)
                writes = self._state_writes()
                if writes:
                    self.outbox.journal([], writes)
            except Exception:  # the loop must outlive one bad round
                log.exception("persisting risk state failed")

    async def persist(self) -> int:
        """Write the risk state now (the supervisor calls this when stopping)."""
        await call_journal(self.peers, [], self._state_writes(force=True))
        return self.engine.state_version

    async def heartbeat(self) -> dict[str, Any]:
        return {
            "role": ROLE_RISK,
            "ts": time.time(),
            "process": process_info(),
            "ready": self._ready.is_set(),
            "approved": self.engine.approved,
            "denied": dict(self.engine.denied),
            "replayed_intents": self.replayed,
            "orphan_intents_decided": self.orphans,
            "recent_denials": list(self.recent_denials),
            "risk": self.engine.summary(),
            "kill_switch_actions": list(self.kill_switch_actions),
            "outbox": self.outbox.stats(),
        }
