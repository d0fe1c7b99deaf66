"""RiskActor: approves intents into ``SubmitOrder`` commands or journals ``order_denied``.

It restores exposure from the journal on start (net positions from fills, working orders from open
orders), so a restarted risk actor does not forget what is already at the venue.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import ray

from tradeplane.actors.common import (
    ROLE_BROKER,
    ROLE_JOURNAL,
    ROLE_RISK,
    Outbox,
    Peers,
    SupervisedActor,
    process_info,
    query_journal,
)
from tradeplane.actors.records import denial_record
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.clock import SystemClock
from tradeplane.core.model import (
    CancelIntent,
    CancelOrder,
    Envelope,
    Fill,
    Intent,
    OrderDenied,
    Side,
)
from tradeplane.core.risk import RiskEngine, RiskLimits

DECIDED_MEMORY = 50_000


@ray.remote
class RiskActor(SupervisedActor):
    def __init__(self, cfg: TradeplaneConfig, run_id: str) -> None:
        self.cfg = cfg
        self.deployment = cfg.deployment.name
        self.peers = Peers(self.deployment)
        self.outbox = Outbox(self.peers, inflight_limit=cfg.supervisor.inflight_limit)
        self.engine = RiskEngine(
            RiskLimits(
                max_order_value=cfg.risk.max_order_value,
                max_position_value=cfg.risk.max_position_value,
            ),
            clock=SystemClock(),
        )
        self._decided: deque[str] = deque(maxlen=DECIDED_MEMORY)
        self._decided_set: set[str] = set()
        self._ready = asyncio.Event()
        self.replayed = 0
        self.recent_denials: deque[dict[str, Any]] = deque(maxlen=20)

    async def ready(self) -> dict[str, Any]:
        if not self._ready.is_set():
            positions: dict[str, float] = {}
            for (_strategy, symbol), p in (await query_journal(self.peers, "positions")).items():
                positions[symbol] = positions.get(symbol, 0.0) + float(p["quantity"])
            working: dict[str, tuple[str, float]] = {}
            for o in await query_journal(self.peers, "orders", open_only=True):
                remaining = float(o["quantity"]) - float(o["filled_quantity"] or 0.0)
                working[o["client_order_id"]] = (o["symbol"], Side(o["side"]).sign * remaining)
            self.engine.restore(positions, working)
            for row in await query_journal(self.peers, "intents"):
                if row.get("decision"):
                    self._remember(row["intent_id"])
            self._ready.set()
        return {"positions": len(self.engine._positions), "working": len(self.engine._working)}

    async def on_bars(self, envelope: Envelope) -> None:
        for bar in envelope.payload:
            self.engine.mark(bar.symbol, bar.close)

    async def on_intents(self, envelope: Envelope) -> None:
        await self._ready.wait()
        for item in envelope.payload:
            if isinstance(item, CancelIntent):
                self.outbox.send_nowait(
                    ROLE_BROKER,
                    "cancel",
                    CancelOrder(item.client_order_id, item.strategy, "strategy", item.ts),
                )
                continue
            self._decide(item)

    def _decide(self, intent: Intent) -> None:
        if intent.intent_id in self._decided_set:
            self.replayed += 1  # a replay after a restart: already approved or denied
            return
        decision = self.engine.check(intent)
        self._remember(intent.intent_id)
        if isinstance(decision, OrderDenied):
            self.recent_denials.append(
                {"intent_id": intent.intent_id, "reason": decision.reason, "ts": decision.ts}
            )
            self.outbox.send_nowait(ROLE_JOURNAL, "append", [denial_record(decision)], [])
            return
        self.outbox.send_nowait(ROLE_BROKER, "submit", decision)

    def _remember(self, intent_id: str) -> None:
        if len(self._decided) == self._decided.maxlen:
            self._decided_set.discard(self._decided[0])
        self._decided.append(intent_id)
        self._decided_set.add(intent_id)

    async def on_order_events(self, fills: list[Fill], closed: list[str]) -> None:
        await self._ready.wait()
        for fill in fills:
            self.engine.on_fill(fill)
        for coid in closed:
            self.engine.on_order_closed(coid)

    async def heartbeat(self) -> dict[str, Any]:
        return {
            "role": ROLE_RISK,
            "ts": time.time(),
            "process": process_info(),
            "ready": self._ready.is_set(),
            "approved": self.engine.approved,
            "denied": dict(self.engine.denied),
            "replayed_intents": self.replayed,
            "recent_denials": list(self.recent_denials),
            "outbox": self.outbox.stats(),
        }
