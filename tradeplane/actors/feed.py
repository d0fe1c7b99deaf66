"""FeedActor: produces closed bars and pushes them to every subscriber.

The sim source is paced by the configured speed and continues the simulator's exact sequence
after a restart (its snapshot is journaled), so bars a restarted feed sends again are identical
and dropped by their receivers. Recent bars are kept per symbol so a restarted strategy can
replay what it missed. Pushes go through an ``Outbox``: a slow subscriber makes the feed wait
(counted as backpressure) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import ray

from tradeplane.actors.common import (
    Outbox,
    SupervisedActor,
    child_peers,
    process_info,
    query_journal,
    spawn,
)
from tradeplane.actors.records import event_record
from tradeplane.actors.rejections import BoundedRejections
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.clock import SystemClock
from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.model import Bar, BarBatch, Envelope
from tradeplane.journal.records import JournalRecord, StateWrite
from tradeplane.protocol.api import BarSubscriberApi, JournalApi
from tradeplane.protocol.events import EventKind, MessageKind
from tradeplane.protocol.roles import ROLE_FEED, ROLE_JOURNAL, Role
from tradeplane.telemetry.actors import actor_metrics
from tradeplane.venues.sim import MarketSimulator
from tradeplane.venues.sim.faults import FaultBook, FaultKind
from tradeplane.venues.sources import external_source

FEED_SCOPE, SIM_KEY, LAST_BARS_KEY = "feed", "sim", "last_bars"
SNAPSHOT_EVERY_S = 1.0
# At most this many of the simulator's ticks in one push when the feed is behind schedule.
MAX_TICKS_PER_PUSH = 16
STREAM_STOP_S = 10.0
HISTORY_STEP = timedelta(minutes=1)  # the 1-minute bars of the venues with REST history
log = logging.getLogger("tradeplane.feed")


def sim_start(now: float, interval_s: int, history_bars: int) -> datetime:
    aligned = int(now // interval_s) * interval_s
    return datetime.fromtimestamp(aligned - history_bars * interval_s, tz=UTC)


@ray.remote
class FeedActor(SupervisedActor):
    def __init__(
        self,
        cfg: TradeplaneConfig,
        run_id: str,
        subscribers: dict[str, list[str] | None],
        *,
        epoch: int = 0,
    ) -> None:
        self.cfg = cfg
        self.deployment = cfg.deployment.name
        self.sim_cfg = cfg.venue.sim
        # role -> symbols it wants (None: all)
        self.subscribers: dict[Role[BarSubscriberApi], frozenset[str] | None] = {
            Role(role): None if symbols is None else frozenset(symbols)
            for role, symbols in subscribers.items()
        }
        self.peers = child_peers(self.deployment, ROLE_FEED, epoch)
        self.outbox = Outbox(self.peers, inflight_limit=cfg.supervisor.inflight_limit)
        self.sim: MarketSimulator | None = None
        self.ring: dict[str, deque[Bar]] = {
            s: deque(maxlen=max(1, cfg.supervisor.replay_bars)) for s in cfg.venue.symbols
        }
        self.tasks: set[asyncio.Task[Any]] = set()
        self._stream: asyncio.Task[Any] | None = None
        self._first_pass = asyncio.Event()
        self.streaming = False
        # Wall times for the record and status; the ages the supervisor judges silence by are
        # measured on this process's monotonic clock (a wall step must not fake or hide one).
        self.started_ts: float | None = None
        self.started_mono: float | None = None
        self.last_bar_recv_ts: float | None = None
        self.last_bar_recv_mono: float | None = None
        self.last_recv_by_symbol: dict[str, float] = {}  # monotonic
        self.bars = 0
        self.metrics = actor_metrics(cfg, "feed")
        self._bars_received = self.metrics.counter("bars_received", "Bars published, by symbol")
        self._bars_rejected = self.metrics.counter("bars_rejected", "Malformed bars rejected")
        self.metrics.gauge(
            "last_bar_age_seconds",
            "Seconds since the last bar of each symbol arrived",
            "s",
            lambda: [
                (time.monotonic() - t, {"symbol": s}) for s, t in self.last_recv_by_symbol.items()
            ],
        )
        self.rejected_bars = 0
        self.rejected_messages = 0
        # A venue sending garbage must not grow the journal without bound.
        self.rejections = BoundedRejections(self.deployment, cfg.journal)
        self._last_bar_ts: dict[str, str] = {}
        self.lagging_ticks = 0
        # Throttles, on the monotonic clock (a wall step back must not hold them off).
        self._last_snapshot = float("-inf")
        self._summary_due = float("-inf")
        self._summary_counts: dict[str, int] = {}  # bars per symbol since the last summary
        self._summary_last: dict[str, Bar] = {}
        # In memory only: restarting the feed is how the supervisor recovers from silence.
        self.faults = FaultBook(SystemClock(), seed=self.sim_cfg.seed, target="feed")
        # OKX or Binance public data instead of the simulator (None: the simulator).
        self.source = external_source(cfg)

    async def ready(self) -> dict[str, Any]:
        if self.source is not None:
            # A restarted feed resumes after the last bar it delivered: the source backfills
            # the gap over REST and never hands a bar twice.
            last = await query_journal(self.peers, "get_state", scope=FEED_SCOPE, key=LAST_BARS_KEY)
            if last:
                self.source.resume_after(
                    {s: datetime.fromisoformat(ts) for s, ts in last.get("bars", {}).items()}
                )
            return {"source": self.cfg.feed.kind}
        if self.sim is None:
            snap = await query_journal(self.peers, "get_state", scope=FEED_SCOPE, key=SIM_KEY)
            if snap:
                self.sim = MarketSimulator.restore(snap)
            else:
                self.sim = MarketSimulator(
                    list(self.sim_cfg.symbols),
                    seed=self.sim_cfg.seed,
                    start=sim_start(
                        time.time(), self.sim_cfg.bar_interval_s, self.sim_cfg.history_bars
                    ),
                    interval_s=self.sim_cfg.bar_interval_s,
                    initial_prices=self.sim_cfg.initial_prices,
                )
        return {"next_ts": self.sim.next_ts.isoformat()}

    async def inject_fault(
        self, kind: str, duration_s: float | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Make the feed misbehave (chaos testing: ``silent``); returns what is now active."""
        return self.faults.inject(kind, duration_s, **(params or {}))

    async def clear_faults(self, kind: str | None = None) -> int:
        return self.faults.clear(kind)

    async def start_streaming(self) -> bool:
        if self._stream is None or self._stream.done():
            self.streaming = True
            self.started_ts, self.started_mono = time.time(), time.monotonic()
            self._first_pass.clear()
            run = self._run() if self.source is None else self._run_source()
            self._stream = spawn(self.tasks, run)
            # Answer once the first bars are out, so the supervisor's next look at this feed
            # (right after a restart) already sees data flowing; bounded, a silent source
            # must not hold the caller.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._first_pass.wait()
        return True

    async def stop_streaming(self) -> dict[str, Any]:
        self.streaming = False
        if self._stream is not None:
            self._stream.cancel()
            # Bounded: a source that ignores its cancellation must not hold the stop forever.
            done, _ = await asyncio.wait({self._stream}, timeout=STREAM_STOP_S)
            if not done:
                log.error(
                    "feed: the source did not stop within %ss of its cancellation", STREAM_STOP_S
                )
        self._journal_snapshot(force=True)
        self._journal_rejection_summaries(final=True)
        return {"bars": self.bars}

    async def _run(self) -> None:
        assert self.sim is not None
        period = self.sim_cfg.bar_interval_s / self.sim_cfg.speed
        due = time.monotonic()
        while self.streaming:
            ticks = 1
            # Silent: the simulator does not advance either, so no bar is lost, only late.
            if not self.faults.hit(FaultKind.SILENT):
                bars = self.sim.next_bars()
                # Behind schedule (an unpaced or catching-up sim): the ticks already due go out
                # in one push, so the per-call cost is paid once per batch, not once per tick.
                # On schedule it is one tick per push, as soon as it is due.
                now = time.monotonic()
                while ticks < MAX_TICKS_PER_PUSH and due + ticks * period <= now:
                    bars.extend(self.sim.next_bars())
                    ticks += 1
                # The simulator's bars were checked when it built them, in this process.
                await self._publish(bars, checked=True)
            self._first_pass.set()
            due += ticks * period
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                if delay < -10 * period:
                    # Far behind (backpressure or a stall): do not burst to catch up.
                    self.lagging_ticks += 1
                    due = time.monotonic()
                await asyncio.sleep(0)

    async def _run_source(self) -> None:
        """An external source: it paces itself (bars arrive as they close)."""
        assert self.source is not None
        self._first_pass.set()  # nothing to wait for: a bar comes when the minute closes
        await self.source.run(_FeedSink(self))

    async def on_source_bars(self, bars: list[Bar]) -> None:
        if self.faults.hit(FaultKind.SILENT):
            return  # chaos: a silent feed drops what arrives (the source backfills later)
        await self._publish(bars)
        now = time.time()
        for bar in bars:
            self._last_bar_ts[bar.symbol] = bar.ts.isoformat()
        self.outbox.journal(
            [],
            [StateWrite(FEED_SCOPE, LAST_BARS_KEY, {"bars": dict(self._last_bar_ts)}, now)],
        )

    def on_source_rejected(self, reason: str, raw: str) -> None:
        self.rejected_messages += 1
        source = self.cfg.feed.kind
        data = {"source": source, "reason": reason, "message": raw}
        records = self.rejections.rejected(source, reason, data)
        if records:
            self.outbox.journal(records, [])

    def _journal_rejection_summaries(self, *, final: bool = False) -> None:
        records = self.rejections.final() if final else self.rejections.due()
        if records:
            self.outbox.journal(records, [])

    def _checked(self, bars: list[Bar], recv: float) -> list[Bar]:
        """The bars that pass the check again at the edge (bars from any source); each one
        that fails is counted and journaled as rejected."""
        good: list[Bar] = []
        for bar in bars:
            try:
                bar.__post_init__()
            except InvalidMarketData as exc:
                self.rejected_bars += 1
                self._bars_rejected.add(1)
                record = event_record(
                    self.deployment, EventKind.BAR_REJECTED, recv, {"reason": str(exc)}
                )
                self.outbox.journal([record], [])
                continue
            good.append(bar)
        return good

    async def _publish(self, bars: list[Bar], *, checked: bool = False) -> None:
        recv = time.time()
        good = bars if checked else self._checked(bars, recv)
        if not good:
            return
        recv_mono = time.monotonic()
        self.bars += len(good)
        self.last_bar_recv_ts, self.last_bar_recv_mono = recv, recv_mono
        per_symbol: dict[str, int] = {}
        ring, last_recv = self.ring, self.last_recv_by_symbol
        for bar in good:
            ring[bar.symbol].append(bar)
            last_recv[bar.symbol] = recv_mono
            per_symbol[bar.symbol] = per_symbol.get(bar.symbol, 0) + 1
        for symbol, n in per_symbol.items():  # one metric update per symbol, not per bar
            self._bars_received.add(n, {"symbol": symbol})
        for role, symbols in self.subscribers.items():
            subset = good if symbols is None else [b for b in good if b.symbol in symbols]
            if not subset:
                continue
            env = Envelope(
                event_id=f"bars/{subset[0].ts.isoformat()}",
                kind=MessageKind.BARS,
                ts_event=subset[0].ts_epoch,
                ts_recv=recv,
                payload=BarBatch(subset),
                deployment=self.deployment,
            )
            await self.outbox.send(role, BarSubscriberApi.on_bars, env)
        self._journal_bars(good, recv)
        self._journal_snapshot()

    def _journal_bars(self, bars: list[Bar], recv: float) -> None:
        if self.cfg.journal.bars == "all":
            # Recorded as columnar chunks by the journal actor, on the state node; the journal
            # itself gets only the summaries below (one event per bar would cost its throughput).
            self.outbox.send_nowait(
                ROLE_JOURNAL, JournalApi.record_bars, BarBatch(bars), self.peers.stamps()
            )
        # Per bar only a count and the last bar; the summary's text is made once per interval.
        counts, last = self._summary_counts, self._summary_last
        for b in bars:
            counts[b.symbol] = counts.get(b.symbol, 0) + 1
            last[b.symbol] = b
        if (mono := time.monotonic()) >= self._summary_due:
            self._summary_due = mono + self.cfg.journal.bar_summary_interval_s
            summary = {
                s: {"bars": n, "last_ts": last[s].ts.isoformat(), "close": last[s].close}
                for s, n in counts.items()
            }
            record: JournalRecord = event_record(
                self.deployment, EventKind.BAR_SUMMARY, recv, {"symbols": summary}
            )
            self.outbox.journal([record], [])
            self._summary_counts, self._summary_last = {}, {}

    def _journal_snapshot(self, force: bool = False) -> None:
        now, mono = time.time(), time.monotonic()
        if self.sim is None or (not force and mono - self._last_snapshot < SNAPSHOT_EVERY_S):
            return
        self._last_snapshot = mono
        self.outbox.journal(
            [],
            [StateWrite(FEED_SCOPE, SIM_KEY, self.sim.snapshot(), now)],
        )

    async def bars_since(self, symbols: list[str], since: dict[str, str]) -> list[Bar]:
        """Bars kept in memory newer than ``since[symbol]`` (all kept bars when absent)."""
        out: list[Bar] = []
        for symbol in symbols:
            cutoff = since.get(symbol)
            cut = datetime.fromisoformat(cutoff) if cutoff else None
            out.extend(b for b in self.ring.get(symbol, ()) if cut is None or b.ts > cut)
        out.sort(key=lambda b: (b.ts, b.symbol))
        return BarBatch(out)

    async def history_since(
        self, symbols: list[str], since: dict[str, str], lookback_s: float
    ) -> list[Bar]:
        """Bars after ``since[symbol]`` for the recorded bars a restarted journal lost: the
        ones kept in memory and, before them, what the venue's REST history has that the feed
        no longer keeps (OKX, Binance; the simulator's bars are all kept, IB's are not
        refetched here), only within the last ``lookback_s``: what the journal can have lost,
        never bars from before this run that no strategy saw. Best effort: a venue that does
        not answer leaves the hole, logged."""
        from tradeplane.venues.history import missing_after  # aiohttp: not on the feed's start

        out = list(await self.bars_since(symbols, since))
        fetch = getattr(self.source, "history", None)
        if fetch is None:
            return BarBatch(out)
        now = datetime.now(UTC)
        for symbol in symbols:
            cutoff = since.get(symbol)
            if not cutoff:
                continue
            cut = datetime.fromisoformat(cutoff)
            kept = [b.ts for b in self.ring.get(symbol, ()) if b.ts > cut]
            stretch = missing_after(cut, kept, now, HISTORY_STEP)
            if stretch is None:
                continue
            stretch = (max(stretch[0], now - timedelta(seconds=lookback_s)), stretch[1])
            if stretch[0] >= stretch[1]:
                continue
            try:
                out.extend(await fetch(symbol, *stretch))
            except Exception as exc:
                log.warning("feed: %s history %s..%s not fetched: %s", symbol, *stretch, exc)
        out.sort(key=lambda b: (b.ts, b.symbol))
        return BarBatch(out)

    async def heartbeat(self) -> dict[str, Any]:
        mono = time.monotonic()
        self._journal_rejection_summaries()  # a flood that stopped is summarised all the same
        return {
            "role": ROLE_FEED,
            "ts": time.time(),
            "process": process_info(),
            "streaming": self.streaming,
            "started_ts": self.started_ts,
            "last_bar_recv_ts": self.last_bar_recv_ts,
            "last_bar_age_s": None
            if self.last_bar_recv_mono is None
            else mono - self.last_bar_recv_mono,
            "streaming_for_s": None if self.started_mono is None else mono - self.started_mono,
            "bars": self.bars,
            "rejected_bars": self.rejected_bars,
            "lagging_ticks": self.lagging_ticks,
            "next_ts": self.sim.next_ts.isoformat() if self.sim else None,
            "outbox": self.outbox.stats(),
            "inflight": {role: self.outbox.inflight(role) for role in self.subscribers},
            "faults": self.faults.describe(),
            "source": None if self.source is None else self.source.state.as_dict(),
            "rejected_messages": self.rejected_messages,
            "rejected_messages_not_journaled": self.rejections.suppressed,
        }


class _FeedSink:
    """Where an external source hands its bars and rejections: back into the feed actor."""

    def __init__(self, feed: Any) -> None:
        self.feed = feed

    async def bars(self, bars: list[Bar]) -> None:
        await self.feed.on_source_bars(bars)

    async def rejected(self, reason: str, raw: str) -> None:
        self.feed.on_source_rejected(reason, raw)
