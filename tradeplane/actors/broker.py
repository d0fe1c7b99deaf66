"""BrokerActor: submits each client order id at most once, after the journal holds
``order_submitting``, and turns the venue's ordered event stream into journaled order events.

After a restart it rebuilds its orders from the journal, resumes the venue stream from the cursor
committed with the last events it journaled, and asks the venue about every order still in
``pending_submit`` or ``unknown`` before closing any of them. It never guesses an outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

import ray
from tenacity import wait_exponential

from tradeplane.actors.broker_resolution import Resolver
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
from tradeplane.actors.records import (
    KILL_SWITCH_KEY,
    RISK_SCOPE,
    order_record,
    submitting_record,
)
from tradeplane.actors.rejections import BoundedRejections
from tradeplane.actors.venue import LocalVenueClient, RayVenueClient, open_sim_venue
from tradeplane.config.models import Mode, TradeplaneConfig
from tradeplane.config.settings import with_node_credentials
from tradeplane.core.clock import SystemClock
from tradeplane.core.errors import StaleEpochError, TransientError
from tradeplane.core.execution import ExecutionCore, OrderEvent
from tradeplane.core.halt_gate import HoldCause, gate_state, held_back, restored_trading_state
from tradeplane.core.lease import SupervisionLease
from tradeplane.core.model import CancelOrder, Envelope, Fill, SubmitOrder
from tradeplane.core.retry import failure, retrying
from tradeplane.core.venue_events import check_venue_event, describe_raw
from tradeplane.journal.records import JournalRecord, StateWrite
from tradeplane.protocol.api import RiskApi, StrategyApi
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import ROLE_BROKER, ROLE_RISK, ROLE_VENUE, strategy_role
from tradeplane.protocol.states import TradingState
from tradeplane.telemetry.actors import actor_metrics
from tradeplane.telemetry.context import submit_context
from tradeplane.telemetry.latency import TickToOrder
from tradeplane.venues.base import VenueClient, VenueOrderRequest
from tradeplane.venues.sim.snapshot import sim_venue_db

CURSOR_SCOPE, CURSOR_KEY = "broker", "venue_cursor"


def _rejection_data(source: str, reason: str, ev: object) -> dict[str, Any]:
    return {"source": source, "reason": reason, "message": describe_raw(ev)}


log = logging.getLogger("tradeplane.broker")


@ray.remote
class BrokerActor(SupervisedActor):
    def __init__(self, cfg: TradeplaneConfig, run_id: str, *, epoch: int = 0) -> None:
        # Credentials are read here, on this node, never received (actor arguments are kept by
        # Ray's GCS); the venue clients below find them in cfg.venue.credentials.
        cfg, self.credentials = with_node_credentials(cfg)
        self.protect_secrets(cfg)
        self.cfg = cfg
        self.deployment = cfg.deployment.name
        self.run_id = run_id
        self.mode = cfg.deployment.mode
        self.peers = child_peers(self.deployment, ROLE_BROKER, epoch)
        self.outbox = Outbox(self.peers, inflight_limit=cfg.supervisor.inflight_limit)
        self.core = ExecutionCore(SystemClock())
        self.venue: VenueClient
        if self.mode is Mode.SHADOW:
            shadow_db = sim_venue_db(cfg.deployment.resolved_state_dir(), shadow=True)
            self.venue = LocalVenueClient(open_sim_venue(shadow_db, cfg.venue.sim))
        elif cfg.venue.kind == "ib":
            from tradeplane.venues.ib.venue import IbVenueClient

            self.venue = IbVenueClient(cfg.venue.ib)
        else:
            self.venue = RayVenueClient(self.peers)
        self.cursor = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self._in_submit: set[str] = set()
        self._attempts: dict[str, asyncio.Event] = {}  # submits being journaled, by order id
        self._unjournaled: list[tuple[OrderEvent, dict[str, Any]]] = []
        # Each open order's broker.submit span (its traceparent), for the records that follow.
        self._traceparents: dict[str, str] = {}
        self._ready = asyncio.Event()
        self.submits = 0
        self.venue_errors = 0
        self.last_error: str | None = None
        self.restored_open = 0
        self.resolver = Resolver(
            self.core,
            self.venue,
            grace_s=cfg.supervisor.unconfirmed_grace_s,
            in_submit=self._in_submit,
            venue_failed=self._venue_failed,
            journal_events=self._journal_events,
        )
        self.trading_state = TradingState.ACTIVE
        # Nothing leaves once the supervisor has been away for lease_s (see core.lease).
        # On the monotonic clock: a wall step must neither lapse it nor keep it alive.
        self.lease = SupervisionLease(cfg.supervisor.lease_s, time.monotonic())
        self.blocked_unsupervised = 0
        self.kill_switch: dict[str, Any] | None = None
        self.blocked_by_kill_switch = 0
        # Set when the venue connection is lost; cleared by the supervisor once the reconnected
        # venue has been reconciled. Nothing is sent meanwhile (DESIGN §3.5).
        self.resyncing = False
        self.resync_reason: str | None = None
        # Set when the supervisor replaced the venue: the stream's backoff ends at once.
        self._venue_replaced = asyncio.Event()
        self.blocked_by_resync = 0
        self.rejected_messages = 0
        # A venue sending garbage must not grow the journal without bound.
        self.rejections = BoundedRejections(self.deployment, cfg.journal)
        self.metrics = actor_metrics(cfg, "broker")
        self.tick_to_order = TickToOrder(self.metrics)
        self._orders_sent = self.metrics.counter("orders_sent", "Orders sent to the venue")
        self.metrics.gauge(
            "venue_connected",
            "1 while the broker's venue connection is up",
            "1",
            lambda: [(1.0 if self.venue.connected else 0.0, {})],
        )
        self.metrics.gauge(
            "open_orders",
            "Orders working at the venue (as the broker knows them)",
            "1",
            lambda: [(float(len(self.core.orders.open_orders())), {})],
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def ready(self) -> dict[str, Any]:
        if not self._ready.is_set():
            await self._restore()
            await self.venue.open(self.cursor)
            spawn(self.tasks, self.venue.maintain())
            spawn(self.tasks, self._stream_loop())
            spawn(self.tasks, self.resolver.loop())
            spawn(self.tasks, watch_lease(self.lease, ROLE_BROKER))
            settle_after_start_up()
            self._ready.set()
        self.lease.renew(time.monotonic())
        return {"open_orders": len(self.core.orders.open_orders()), "cursor": self.cursor}

    async def _restore(self) -> None:
        rows = await query_journal(self.peers, "orders")
        fills = await query_journal(self.peers, "fills")
        by_order: dict[str, list[str]] = {}
        for f in fills:
            by_order.setdefault(f["client_order_id"], []).append(f["fill_id"])
        for r in rows:
            r["fill_ids"] = by_order.get(r["client_order_id"], [])
        self.core.restore(rows)
        kill = await query_journal(self.peers, "get_state", scope=RISK_SCOPE, key=KILL_SWITCH_KEY)
        state, active_kill = restored_trading_state(kill)
        self.trading_state, self.kill_switch = state, active_kill
        cursor = await query_journal(self.peers, "get_state", scope=CURSOR_SCOPE, key=CURSOR_KEY)
        self.cursor = int(cursor["seq"]) if cursor else 0
        self.restored_open = len(self.core.orders.open_orders())

    # -- commands ------------------------------------------------------------------------------

    async def submit(self, cmd: SubmitOrder) -> bool:
        """Returns False for a client order id already known (never sent twice)."""
        await self._ready.wait()
        entered = time.time()
        coid = cmd.intent.client_order_id
        begun = self.core.begin_submit(cmd)
        attempt = self._attempts.get(coid)
        if begun is None and attempt is not None:
            # The same order approved again (by a replaced risk's successor) while the first
            # attempt is still being journaled: that attempt's outcome decides. Refused (stale
            # epoch), it is forgotten and this one goes ahead; otherwise this is a duplicate.
            await attempt.wait()
            begun = self.core.begin_submit(cmd)
        if begun is None:
            existing = self.core.orders.get(coid)
            if existing is not None and existing.is_terminal:
                self.outbox.send_nowait(ROLE_RISK, RiskApi.on_order_events, [], [coid])
            return False
        self._in_submit.add(coid)
        self._attempts[coid] = asyncio.Event()
        # Where this submit will go, fixed before it is journaled: it is sent to that venue
        # incarnation or not at all, so a restarted venue's "not here" can settle it at once.
        incarnation = self.venue.incarnation
        if incarnation is not None:
            self.resolver.submitted_to[coid] = incarnation
        try:
            span = submit_context(cmd.traceparent, coid)
            if span is not None:
                self._traceparents[coid] = span.traceparent
            # The one record on the critical path, so it carries the intent and risk's decision
            # too: the strategy's intent record is journaled off the path and may be lost.
            record = submitting_record(
                self.deployment,
                begun,
                cmd,
                broker_received_ts=entered,
                traceparent=self._traceparents.get(coid),
                venue_incarnation=incarnation,
            )
            # Durable before anything leaves: a crash after this line is resolved by asking.
            # A replaced broker, or an order approved by a replaced risk: refused here
            # (StaleEpochError), so it never reaches the venue, and the broker stops itself.
            try:
                await call_journal(self.peers, [record], vouched=cmd.approved_by)
                durable = time.time()
            except StaleEpochError:
                self.core.forget_unsent(coid)
                self.resolver.forget([coid])
                log.error("order %s refused by the journal (stale epoch): not sent", coid)
                return False
            intent = cmd.intent
            blocked = self._held_back(cmd)
            if blocked is not None:
                await self._journal_events([self.core.close_unconfirmed(coid, blocked)])
                return True
            # Tick to order spans processes (the feed's receipt, the strategy's intent, risk's
            # approval): wall times by nature. The venue call is this process's own: monotonic.
            sent, sent_mono = time.time(), time.monotonic()
            self.tick_to_order.record(cmd, entered, durable, sent)
            req = VenueOrderRequest(
                client_order_id=coid,
                symbol=intent.symbol,
                side=intent.side,
                quantity=intent.quantity,
                order_type=intent.order_type,
                limit_price=intent.limit_price,
                venue_incarnation=incarnation,
            )
            self.submits += 1
            self._orders_sent.add(1)
            try:
                await self.venue.submit(req)
                self.tick_to_order.record_venue_call(sent_mono, time.monotonic())
            except TransientError as exc:
                self._venue_failed(exc)
                await self._journal_events([self.core.unknown(coid, f"SUBMIT_UNCONFIRMED: {exc}")])
                return True
            submitted = self.core.submitted(coid)
            if submitted is not None:
                # Not worth a journal round trip of its own: it rides with the next stream commit
                # (within a second); the venue's own events for the order follow it there.
                self._unjournaled.append((submitted, {"sent_ts": sent}))
            if self.core.take_deferred_cancel(coid):
                await self._send_cancel(coid)
            return True
        finally:
            self._in_submit.discard(coid)
            self._attempts.pop(coid).set()

    def _held_back(self, cmd: SubmitOrder) -> str | None:
        """Why an order approved earlier and still queued here may not leave now, or None
        (the rule: ``core.halt_gate``)."""
        now = time.monotonic()
        held = held_back(
            cmd,
            self.trading_state,
            resyncing=self.resyncing,
            resync_reason=self.resync_reason,
            unsupervised_s=self.lease.silent_s(now) if self.lease.lapsed(now) else None,
        )
        if held is None:
            return None
        if held.cause is HoldCause.UNSUPERVISED:
            self.blocked_unsupervised += 1
        elif held.cause is HoldCause.RESYNCING:
            self.blocked_by_resync += 1
        else:
            self.blocked_by_kill_switch += 1
        return held.reason

    async def set_trading_state(
        self, state: TradingState, kill_switch: dict[str, Any] | None
    ) -> None:
        # A value that is no trading state gates as HALTED: garbled, it holds orders back.
        self.trading_state, self.kill_switch = gate_state(state), kill_switch

    def _venue_failed(self, exc: Exception) -> None:
        """A venue call failed. A lost connection starts a resync: nothing is sent until the
        supervisor has reconciled with the venue again, and risk denies new intents with
        ``RECONCILING`` meanwhile."""
        self.venue_errors += 1
        self.last_error = str(exc)
        if not self.venue.connected and not self.resyncing:
            self.resyncing, self.resync_reason = True, str(exc)[:200]
            self.outbox.send_nowait(ROLE_RISK, RiskApi.begin_resync, self.resync_reason)

    async def end_resync(self) -> dict[str, Any]:
        """The supervisor reconciled with the reconnected venue: orders may leave again."""
        was, self.resyncing, self.resync_reason = self.resyncing, False, None
        return {"was_resyncing": was, "connected": self.venue.connected}

    async def cancel(self, cmd: CancelOrder) -> bool:
        await self._ready.wait()
        return await self._send_cancel(cmd.client_order_id)

    async def _send_cancel(self, coid: str) -> bool:
        event, send_now = self.core.request_cancel(coid)
        if event is not None:
            await self._journal_events([event])
        if not send_now:
            return event is not None
        try:
            await self.venue.cancel(coid)
        except TransientError as exc:
            self._venue_failed(exc)
        return True

    async def on_bars(self, envelope: Envelope) -> None:
        """Shadow mode: the in-process venue matches against the live bars."""
        self.venue.on_bars(envelope.payload)

    # -- venue stream --------------------------------------------------------------------------

    async def rewire(self, role: str | None = None) -> int:
        """A sibling was restarted. A replaced venue is reached at once, so that the resync
        (which the supervisor starts when the heartbeat says connected) and the stream start
        now, not at the stream's next backoff (up to 0.5 s later)."""
        resent = await super().rewire(role)
        if role == ROLE_VENUE:
            self._venue_replaced.set()
            try:
                await self.venue.last_seq()
            except TransientError as exc:
                self._venue_failed(exc)  # the stream keeps trying on its own
        return resent

    async def _stream_backoff(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._venue_replaced.wait()
        self._venue_replaced.clear()

    async def _stream_loop(self) -> None:
        # Each poll starts its waits over: 0.05 s, doubling to 0.5 s while the venue fails.
        poll = retrying(
            wait_exponential(0.05, max=0.5),
            on=(TransientError,),
            before_sleep=lambda rs: self._venue_failed(failure(rs)),
            sleep=self._stream_backoff,
        )
        while True:
            events: list[Any] = await poll(self.venue.events_since, self.cursor, 500, 1.0)
            received = time.time()
            events = await self._screen(events)
            pending, self._unjournaled = self._unjournaled, []
            if not events and not pending:
                continue
            order_events: list[tuple[OrderEvent, int | None, dict[str, Any]]] = [
                (p, None, extra) for p, extra in pending
            ]
            for ev in events:
                order_events.extend(
                    (oe, ev.seq, {"received_ts": received})
                    for oe in self.core.apply_venue_event(ev)
                )
            journaled = [
                (oe, seq)
                for oe, seq, _ in order_events
                if oe.kind != EventKind.ORDER_FILL_DUPLICATE
            ]
            records = [
                order_record(
                    self.deployment,
                    oe,
                    venue_seq=seq,
                    traceparent=self._traceparents.get(oe.order.client_order_id),
                    extra=extra,
                )
                for oe, seq, extra in order_events
                if oe.kind != EventKind.ORDER_FILL_DUPLICATE
            ]
            rejected = [
                oe.order.client_order_id
                for oe, seq in journaled
                if seq is not None and oe.kind == EventKind.ORDER_REJECTED
            ]
            state = []
            if events:
                last = events[-1].seq
                state.append(StateWrite(CURSOR_SCOPE, CURSOR_KEY, {"seq": last}, time.time()))
            # Records and cursor commit together: a restart resumes exactly after them.
            seqs = await call_journal(self.peers, records, state, retry_s=3600.0)
            if events:
                self.cursor = events[-1].seq
            self._notify([oe for oe, _ in journaled], seqs, rejected)

    async def _screen(self, events: list[Any]) -> list[Any]:
        """Malformed venue messages are journaled (bounded) with the reason and skipped; the
        well-formed ones pass unchanged, so one bad message neither stops nor loses the stream."""
        good = []
        bad: list[JournalRecord] = []
        source = self.cfg.venue.kind
        for ev in events:
            reason = check_venue_event(ev)
            if reason is None:
                good.append(ev)
                continue
            self.rejected_messages += 1
            # Described only if journaled: in a flood each one costs a count, not a repr.
            describe = functools.partial(_rejection_data, source, reason, ev)
            bad.extend(self.rejections.rejected(source, reason, describe))
        # Messages the venue adapter itself refused to act on (IB: defaulted fields).
        take_rejected = getattr(self.venue, "take_rejected", None)
        for reason, raw in take_rejected() if take_rejected is not None else ():
            self.rejected_messages += 1
            data = {"source": source, "reason": reason, "message": raw}
            bad.extend(self.rejections.rejected(source, reason, data))
        if bad:
            await call_journal(self.peers, bad)
        return good

    def _notify(
        self,
        events: list[OrderEvent],
        seqs: list[int] | None = None,
        venue_rejected: list[str] | None = None,
    ) -> None:
        """Tell risk (exposure) and each strategy (``on_fill``, with the fill's journal seq)."""
        seq_of = seqs or [0] * len(events)
        fills = [
            (q, e.fill)
            for e, q in zip(events, seq_of, strict=True)
            if e.kind == EventKind.ORDER_FILLED and e.fill is not None
        ]
        closed = [e.order.client_order_id for e in events if e.order.is_terminal]
        for coid in closed:
            self._traceparents.pop(coid, None)
        self.resolver.forget(closed)
        if fills or closed:
            self.outbox.send_nowait(
                ROLE_RISK,
                RiskApi.on_order_events,
                [f for _, f in fills],
                closed,
                venue_rejected or [],
            )
        by_strategy: dict[str, list[tuple[int, Fill]]] = {}
        for q, f in fills:
            by_strategy.setdefault(f.strategy, []).append((q, f))
        for strategy, strategy_fills in by_strategy.items():
            self.outbox.send_nowait(strategy_role(strategy), StrategyApi.on_fills, strategy_fills)

    async def _journal_events(self, events: list[OrderEvent | None]) -> None:
        real = [e for e in events if e is not None]
        if not real:
            return
        records: list[JournalRecord] = [
            order_record(
                self.deployment, e, traceparent=self._traceparents.get(e.order.client_order_id)
            )
            for e in real
        ]
        seqs = await call_journal(self.peers, records)
        self._notify(real, seqs)

    async def live_holdings(self) -> dict[str, Any]:
        """The venue's positions and open orders as it reports them now (read-only)."""
        return {
            "positions": await self.venue.positions(),
            "open_orders": await self.venue.open_orders(),
        }

    async def cancel_all(
        self, reason: str = "operator", strategy: str | None = None
    ) -> dict[str, Any]:
        """Cancel every open order (kill switch, operator, recovery exhausted), or only one
        strategy's (it was suspended); returns how many were asked."""
        await self._ready.wait()
        coids = [
            o.client_order_id
            for o in self.core.orders.open_orders()
            if strategy is None or o.strategy == strategy
        ]
        sent = 0
        for coid in coids:
            if await self._send_cancel(coid):
                sent += 1
        return {"open": len(coids), "cancel_requested": sent, "reason": reason}

    # -- observation ---------------------------------------------------------------------------

    async def heartbeat(self) -> dict[str, Any]:
        summaries = self.rejections.due()  # a flood that stopped is summarised all the same
        if summaries:
            self.outbox.journal(summaries, [])
        lease = renew_lease(self.lease, ROLE_BROKER)
        return {
            "lease": lease | {"blocked": self.blocked_unsupervised},
            "role": ROLE_BROKER,
            "ts": time.time(),
            "process": process_info(),
            "mode": self.mode.value,
            "connected": self.venue.connected,
            "ready": self._ready.is_set(),
            "cursor": self.cursor,
            "orders": len(self.core.orders),
            "open_orders": len(self.core.orders.open_orders()),
            "submits": self.submits,
            "duplicates_blocked": self.core.duplicates_blocked,
            "unmatched_venue_events": self.core.unmatched_events,
            "venue_errors": self.venue_errors,
            "last_error": self.last_error,
            "restored_open_orders": self.restored_open,
            "trading_state": self.trading_state,
            "blocked_by_kill_switch": self.blocked_by_kill_switch,
            "resyncing": self.resyncing,
            "blocked_by_resync": self.blocked_by_resync,
            "rejected_venue_messages": self.rejected_messages,
            "rejected_venue_messages_not_journaled": self.rejections.suppressed,
            "tick_to_order_ms": self.tick_to_order.summary(),
            "outbox": self.outbox.stats(),
            "credentials": self.credentials.summary(),
        }

    async def reconcile_inputs(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """For the start-up reconciliation: settle every order left in submitting/unknown by
        asking the venue (never guessing), catch the event stream up with the venue, then report
        the venue's live positions and open orders."""
        await self._ready.wait()
        return await self.resolver.reconcile_inputs(lambda: self.cursor, timeout_s)

    async def latency_samples(self, clear: bool = False) -> dict[str, list[Any]]:
        return self.tick_to_order.samples(clear)

    async def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until no submit is half done, every order in submitting/unknown has been
        settled by asking the venue, and the journal has every order event."""
        deadline = time.monotonic() + timeout_s
        while self._in_submit and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # An order a crash left in submitting/unknown is settled by asking the venue before we
        # stop (within the grace period), so the journal does not end on an open question.
        while time.monotonic() < deadline and await self.resolver.resolve_once():
            await asyncio.sleep(0.1)
        # And everything the venue has said so far is journaled (the stream caught up).
        with contextlib.suppress(TransientError):
            target = await self.venue.last_seq()
            while self.cursor < target and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        return not self._in_submit

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        self.venue.close()
