"""StrategyActor: runs one user strategy over its bars and sends its intents to risk.

On start it restores its last snapshot, remembers every intent the journal holds for it (so a
snapshot older than the crash cannot lead to a second submission), applies fills it missed, calls
``on_start``, and replays the bars it missed from the feed. Replayed bars re-derive the same intent
ids, which are never emitted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
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
    renew_lease,
    spawn,
    watch_lease,
)
from tradeplane.actors.gc_tuning import settle_after_start_up
from tradeplane.actors.records import event_record, intent_record
from tradeplane.config.models import StrategyConfig, TradeplaneConfig
from tradeplane.core.clock import SystemClock
from tradeplane.core.errors import StrategyError
from tradeplane.core.lease import SupervisionLease
from tradeplane.core.model import Bar, Envelope, Fill, Side
from tradeplane.core.strategy import Emitted, StrategyRunner, load_strategy_class
from tradeplane.journal.records import StateWrite
from tradeplane.protocol.api import FeedApi, RiskApi
from tradeplane.protocol.events import STRATEGY_SNAPSHOT_SCOPE, EventKind, MessageKind
from tradeplane.protocol.roles import ROLE_FEED, ROLE_RISK, strategy_role
from tradeplane.telemetry.actors import actor_metrics
from tradeplane.telemetry.context import intent_context

__all__ = ["StrategyActor", "load_strategy_class"]  # the loader lives in core (backtests use it)

log = logging.getLogger("tradeplane.strategy")
REPLAY_MARGIN_S = 60.0  # clock noise between a snapshot and the intents journaled after it


@ray.remote
class StrategyActor(SupervisedActor):
    def __init__(
        self,
        cfg: TradeplaneConfig,
        strategy_cfg: StrategyConfig,
        source: str,
        run_id: str,
        *,
        epoch: int = 0,
    ) -> None:
        self.cfg = cfg
        self.scfg = strategy_cfg
        self.deployment = cfg.deployment.name
        self.role = strategy_role(strategy_cfg.name)
        self.peers = child_peers(self.deployment, self.role, epoch)
        self.outbox = Outbox(self.peers, inflight_limit=cfg.supervisor.inflight_limit)
        cls = load_strategy_class(source, str(strategy_cfg.path), strategy_cfg.class_name)
        self.runner = StrategyRunner(
            cls(**strategy_cfg.params),
            deployment=self.deployment,
            name=strategy_cfg.name,
            run_id=run_id,
            clock=SystemClock(),
            starting_cash=strategy_cfg.capital,
            symbols=cfg.strategy_symbols(strategy_cfg),
        )
        self._ready = asyncio.Event()
        self._last_snapshot = 0.0
        self.recent_intents: deque[dict[str, Any]] = deque(maxlen=20)
        self.errors: deque[str] = deque(maxlen=20)
        self.replayed_bars = 0
        self._failure: str | None = None
        self._isolating = False
        self.metrics = actor_metrics(cfg, "strategy", instance=strategy_cfg.name)
        self._bars_seen = self.metrics.counter("strategy_bars", "Bars a strategy received")
        self._labels = {"strategy": strategy_cfg.name}
        # On a node of its own, a strategy may outlive the state node: then it emits nothing.
        # On the monotonic clock: a wall step must neither lapse it nor keep it alive.
        self.lease = SupervisionLease(cfg.supervisor.lease_s, time.monotonic())
        self.unsupervised_intents = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    async def ready(self) -> dict[str, Any]:
        if self._ready.is_set():
            return self._summary()
        name = self.scfg.name
        snap = await query_journal(self.peers, "get_state", scope=STRATEGY_SNAPSHOT_SCOPE, key=name)
        if snap:
            self.runner.restore(snap)
        # Intents emitted after the snapshot are in the journal (they were written with or
        # after it): remember them so replayed bars cannot emit them again.
        since = (snap["taken_ts"] - REPLAY_MARGIN_S) if snap else None
        journaled = await query_journal(self.peers, "intents", strategy=name, since_ts=since)
        self.runner.remember_intents(row["intent_id"] for row in journaled)
        missed = await query_journal(
            self.peers, "fills", strategy=name, since_seq=self.runner.fill_seq
        )
        out = Emitted()
        for row in missed:
            fill = _fill_from_row(row, name)
            out.extend(self._guard(lambda f=fill, q=row["seq"]: self.runner.on_fill(f, q)))
        out.extend(self._guard(self.runner.start))
        await self._isolate_if_failed()
        await self._emit(out, force_snapshot=True)
        settle_after_start_up()
        self._ready.set()
        self.lease.renew(time.monotonic())
        spawn(self._tasks, watch_lease(self.lease, self.role))
        await self._replay_missed_bars()
        return self._summary()

    async def _replay_missed_bars(self) -> None:
        feed = self.peers.remote(ROLE_FEED)
        if feed is None:
            return
        since = {s: t.isoformat() for s, t in self.runner.last_bar_ts.items()}
        try:
            async with asyncio.timeout(10.0):
                symbols = list(self.runner.symbols)
                bars: list[Bar] = await feed.call(FeedApi.bars_since, symbols, since)
        except (ray.exceptions.RayActorError, TimeoutError):
            return
        if bars:
            self.replayed_bars += len(bars)
            await self._on_bars(bars, None)

    async def stop(self) -> dict[str, Any]:
        await self._ready.wait()
        out = self._guard(self.runner.stop)
        if self._failure is None:  # a failed stop hook leaves the last good snapshot
            await self._emit(out, force_snapshot=True)
        return self._summary()

    # -- inputs --------------------------------------------------------------------------------

    async def on_bars(self, envelope: Envelope) -> None:
        await self._ready.wait()
        await self._on_bars(envelope.payload, envelope.ts_recv)

    async def _on_bars(self, bars: list[Bar], recv_ts: float | None) -> None:
        self._bars_seen.add(len(bars), self._labels)
        out = self._guard(lambda: self.runner.on_bars(bars, recv_ts))
        await self._isolate_if_failed()
        await self._emit(out)

    async def on_fills(self, fills: list[tuple[int, Fill]]) -> None:
        """Fills with their journal seq, in journal order."""
        await self._ready.wait()
        out = Emitted()
        for seq, fill in fills:
            out.extend(self._guard(lambda f=fill, q=seq: self.runner.on_fill(f, q or None)))
        await self._isolate_if_failed()
        await self._emit(out, force_snapshot=True)

    def _guard(self, call: Any) -> Emitted:
        """Run a strategy callback; a raise is remembered (the first one) for ``_isolate``.
        Once one has raised, no further callback runs in this actor."""
        if self._failure is not None:
            return Emitted()
        try:
            result: Emitted = call()
            return result
        except StrategyError as exc:
            self.errors.append(str(exc))
            if self._failure is None:
                self._failure = str(exc)
            return Emitted()

    async def _isolate_if_failed(self) -> None:
        """A strategy that raised is isolated: its error is journaled durably, then this actor
        exits without emitting or snapshotting anything from the failed callback. The supervisor
        restarts it from its last snapshot (up to ``strategy_max_restarts``, then suspends it);
        the other strategies never notice."""
        if self._failure is None:
            return
        if self._isolating:
            # Another call is already journaling the failure and ending this actor; this one
            # must neither emit nor return (its sender resends it to the restarted actor).
            await asyncio.Event().wait()
        self._isolating = True
        record = event_record(
            self.deployment,
            EventKind.STRATEGY_ERROR,
            time.time(),
            {"error": self._failure, "action": "restart"},
            strategy=self.scfg.name,
        )
        with contextlib.suppress(Exception):
            # What earlier callbacks emitted is delivered first, so the restart replays nothing
            # that risk has already seen under a different journal state.
            deadline = time.monotonic() + 5.0
            while (self.outbox.inflight() or self.outbox.pending_retries()) and (
                time.monotonic() < deadline
            ):
                await asyncio.sleep(0.01)
            await call_journal(self.peers, [record], retry_s=10.0)
        log.error("strategy %s raised, exiting for a restart: %s", self.scfg.name, self._failure)
        try:
            ray.actor.exit_actor()
        finally:
            os._exit(1)  # exit_actor raises to unwind; should it return, leave anyway

    async def _emit(self, out: Emitted, *, force_snapshot: bool = False) -> None:
        if self.lease.lapsed(time.monotonic()):
            # Nobody is there to decide, journal or send them: dropped, counted, said in the
            # heartbeat. The strategy's state resumes from its last snapshot when a new
            # deployment (after `up`) replaces this actor.
            self.unsupervised_intents += len(out.intents)
            return
        ratio = self.cfg.telemetry.sampling_ratio
        # Each intent is the root of its own trace; the context rides in the intent itself.
        out.intents[:] = [
            replace(
                i, traceparent=intent_context(i.deployment, i.intent_id, ratio=ratio).traceparent
            )
            for i in out.intents
        ]
        now = time.time()
        if not out:
            self._journal_emitted(out, now, force_snapshot)
            return
        first = out.intents[0].intent_id if out.intents else f"cancel-{now}"
        env = Envelope(
            event_id=f"intents/{self.scfg.name}/{first}",
            kind=MessageKind.INTENTS,
            ts_event=now,
            ts_recv=now,
            payload=[*out.intents, *out.cancels],
            traceparent=out.intents[0].traceparent if out.intents else None,
            deployment=self.deployment,
            strategy=self.scfg.name,
            sender=self.peers.writer,
        )
        if self.outbox.has_room(ROLE_RISK):
            # Risk first: only the broker's order_submitting (which carries the intent, its
            # decision and its trace context) must be durable before an order leaves. The intent
            # record and the snapshot follow at once, off the critical path, with no await in
            # between (so no other callback's state gets into this snapshot); an intent they
            # never record is still known from its decision, or emitted again by a restart.
            self.outbox.send_nowait(ROLE_RISK, RiskApi.on_intents, env)
            self._journal_emitted(out, now, force_snapshot)
            return
        # Risk is behind (backpressure): the intents are journaled before waiting, so a snapshot
        # another callback takes meanwhile never covers an intent known nowhere else.
        self._journal_emitted(out, now, force_snapshot)
        await self.outbox.send(ROLE_RISK, RiskApi.on_intents, env)

    def _journal_emitted(self, out: Emitted, now: float, force_snapshot: bool) -> None:
        """Journal the intents (for the record) and, when due, the snapshot; without waiting."""
        records = []
        for intent in out.intents:
            records.append(intent_record(intent))
            self.recent_intents.append(
                {
                    "intent_id": intent.intent_id,
                    "symbol": intent.symbol,
                    "side": intent.side.value,
                    "quantity": intent.quantity,
                    "limit_price": intent.limit_price,
                    "ts": intent.ts,
                }
            )
        state: list[StateWrite] = []
        if out or force_snapshot or now - self._last_snapshot >= self.scfg.snapshot_interval_s:
            try:
                state.append(
                    StateWrite(STRATEGY_SNAPSHOT_SCOPE, self.scfg.name, self.runner.snapshot(), now)
                )
                self._last_snapshot = now
            except StrategyError as exc:
                self.errors.append(str(exc))
        if records or state:
            self.outbox.journal(records, state)

    # -- observation ---------------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        p = self.runner.portfolio
        return {
            "strategy": self.scfg.name,
            "positions": {
                s: {
                    "quantity": pos.quantity,
                    "avg_price": pos.avg_price,
                    "realized_pnl": pos.realized_pnl,
                }
                for s, pos in p.positions().items()
            },
            "pnl": p.summary(),
            "stats": {
                "bars": self.runner.stats.bars,
                "duplicate_bars": self.runner.stats.duplicate_bars,
                "out_of_order_bars": self.runner.stats.out_of_order_bars,
                "intents": self.runner.stats.intents,
                "replayed_intents": self.runner.stats.replayed_intents,
                "replayed_bars": self.replayed_bars,
                "errors": self.runner.stats.errors,
            },
        }

    async def heartbeat(self) -> dict[str, Any]:
        lapsed = self.lease.lapsed(time.monotonic())
        lease = renew_lease(self.lease, self.role)
        return {
            "lease": lease | {"lapsed": lapsed, "dropped_intents": self.unsupervised_intents},
            "role": self.role,
            "ts": time.time(),
            "process": process_info(),
            "ready": self._ready.is_set(),
            **self._summary(),
            "recent_intents": list(self.recent_intents),
            "recent_errors": list(self.errors),
            "outbox": self.outbox.stats(),
        }


def _fill_from_row(row: dict[str, Any], strategy: str) -> Fill:
    return Fill(
        fill_id=row["fill_id"],
        client_order_id=row["client_order_id"],
        intent_id=row["intent_id"],
        strategy=strategy,
        symbol=row["symbol"],
        side=Side(row["side"]),
        quantity=float(row["quantity"]),
        price=float(row["price"]),
        fee=float(row["fee"]),
        ts=float(row["ts"]),
        venue_order_id=row.get("venue_order_id"),
        liquidity=row.get("liquidity") or "taker",
    )
