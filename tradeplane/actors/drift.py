"""DriftActor: live drift against a shadow backtest and a baseline (``[drift]``, issue 16).

It runs on the state node beside the journal and reads what the deployment records: the journal
(read-only, like the telemetry actor) for intents and fills, and the recorded bars (the closed
chunks in ``<state_dir>/bars/`` and, through the journal actor, the open one). Every
``poll_interval_s`` a round gives what arrived to the drift session (``backtest.drift_session``),
which writes ``live_drift.csv``, ``live_performance.json`` and its own state. Alerts are
journaled as ``drift_alert`` (ids deterministic: a replay journals none twice), reported in the
heartbeat (status and the health reason read them) and are Prometheus gauges.

Nothing on the trading path waits for it. It is non-critical: out of restarts it is suspended
and trading goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import ray

from tradeplane.actors.common import SupervisedActor, call_journal, child_peers, process_info
from tradeplane.actors.common import spawn as spawn_task
from tradeplane.actors.records import event_record
from tradeplane.backtest.bars_file import BarFilter
from tradeplane.backtest.bars_parquet import read_parquet_bars
from tradeplane.backtest.drift import DriftThresholds, DriftTracker
from tradeplane.backtest.drift_files import DriftFiles
from tradeplane.backtest.drift_journal import DRIFT_KINDS, JournalInputs
from tradeplane.backtest.drift_model import BaselineFigures, DriftAlert
from tradeplane.backtest.drift_session import DriftSession, open_session
from tradeplane.backtest.engine import group_by_time
from tradeplane.backtest.report_json import config_hash, load_report
from tradeplane.backtest.run import engine_from_config
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.model import Bar
from tradeplane.core.session import make_calendar
from tradeplane.journal.bar_store import bars_dir, chunks, read_chunks
from tradeplane.journal.reader import JournalReader
from tradeplane.protocol.api import JournalApi
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import ROLE_DRIFT, ROLE_JOURNAL
from tradeplane.telemetry.metrics import ActorMetrics

log = logging.getLogger("tradeplane.drift")
READ_PAGE = 5000
OPEN_RETRY_S = 5.0  # a failed opening is retried, doubling up to the max
OPEN_RETRY_MAX_S = 300.0
YEAR_S = 365.25 * 86_400.0


@ray.remote
class DriftActor(SupervisedActor):
    def __init__(
        self, cfg: TradeplaneConfig, run_id: str, sources: dict[str, str], *, epoch: int = 0
    ) -> None:
        assert cfg.drift is not None, "the drift actor runs only with [drift]"
        self.cfg, self.dcfg = cfg, cfg.drift
        self.deployment = cfg.deployment.name
        self.run_id = run_id
        self.sources = sources
        self.state_dir = Path(cfg.deployment.resolved_state_dir())
        self.peers = child_peers(self.deployment, ROLE_DRIFT, epoch)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.metrics = ActorMetrics("drift", self.deployment)
        self.session: DriftSession | None = None
        self.reader: JournalReader | None = None
        self._chunks_read: set[str] = set()
        self._held: list[Bar] = []  # bars not settled yet, given at a later round
        self._first_seen: dict[datetime, float] = {}  # a held bar time -> when first seen
        self._ready = asyncio.Event()  # opened: the session exists and rounds run
        self._opening: asyncio.Task[None] | None = None
        self._round_lock = asyncio.Lock()
        self.last_error: str | None = None
        self.alerts_journaled = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def ready(self) -> dict[str, Any]:
        """Answers at once. Opening replays the recorded bars through the shadow, which takes
        time in proportion to the history (about 10 s per million bars): it goes on in the
        background, so a long history holds neither the deployment's start nor a restart past
        ``startup_timeout_s``. Until it is done the heartbeat says ``opening``."""
        if self._opening is None:
            self._gauges()
            self._opening = spawn_task(self.tasks, self._start())
        return self._summary()

    async def _start(self) -> None:
        delay = OPEN_RETRY_S
        while True:
            try:
                self.session = await asyncio.to_thread(self._open)
                break
            except Exception as exc:  # a file the operator must fix, or a transient read error
                self.last_error = f"opening: {type(exc).__name__}: {exc}"[:300]
                log.exception("drift: opening failed; retried in %.0f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, OPEN_RETRY_MAX_S)
        self.last_error = None
        self._ready.set()
        spawn_task(self.tasks, self._loop())

    def _open(self) -> DriftSession:
        self.reader = reader = self._open_reader()
        session = open_session(
            self._session, self._recorded, lambda: (reader.events(DRIFT_KINDS), reader.last_seq)
        )
        if session.note:
            log.warning("drift: %s", session.note)
        return session

    def _session(self) -> DriftSession:
        """A fresh tracker and session: the shadow built from the config, nothing fed yet."""
        cfg, dcfg = self.cfg, self.dcfg
        calendar = make_calendar(cfg.session.calendar)
        shadow = engine_from_config(cfg, sources=self.sources)
        tracker = DriftTracker(
            capital={s.name: s.capital for s in cfg.strategies},
            shadow=shadow,
            bar_interval_s=cfg.bar_length_s(),
            interval_s=dcfg.snapshot_interval_s,
            intervals_per_year=YEAR_S / dcfg.snapshot_interval_s,
            risk_day=calendar.risk_day,
            thresholds=DriftThresholds(
                dcfg.max_return_drift_pct,
                dcfg.max_tracking_error_pct,
                dcfg.max_fill_slippage_bps,
                dcfg.alert_on_intent_mismatch,
            ),
            baseline=self._baseline(),
            match_lag_s=dcfg.match_lag_s,
        )
        return DriftSession(
            tracker, DriftFiles(self.state_dir), JournalInputs(cfg.venue.kind), config_hash(cfg)
        )

    def _baseline(self) -> BaselineFigures | None:
        path = self.dcfg.baseline
        if path is None:
            return None
        report = load_report(path)
        return BaselineFigures.from_report(report)

    def _open_reader(self) -> JournalReader:
        return JournalReader.open_when_there(self.state_dir, deployment=self.deployment)

    async def flush(self) -> dict[str, Any]:
        """One last round (the deployment stops): everything recorded is in the files. Still
        opening, there is nothing to flush: the next start opens again from the saved state."""
        if self._ready.is_set():
            await self._round(final=True)
        return self._summary()

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        if self.reader is not None:
            self.reader.close()

    # -- rounds --------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                await self._round()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad round must not end tracking
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("drift round failed")
            await asyncio.sleep(self.dcfg.poll_interval_s)

    async def _round(self, *, final: bool = False) -> None:
        async with self._round_lock:
            assert self.session is not None and self.reader is not None
            session = self.session
            open_bars = await self._open_chunk_bars()
            lines = await asyncio.to_thread(self.reader.events, DRIFT_KINDS, session.seq, READ_PAGE)
            alerts = await asyncio.to_thread(self._apply, open_bars, lines, final)
            if alerts:
                await self._journal_alerts(alerts)

    def _apply(
        self, open_bars: Sequence[Bar], lines: list[dict[str, Any]], final: bool
    ) -> list[DriftAlert]:
        """Bars are given ``settle_s`` after they were first seen (all of them when ``final``):
        by then the fills they made are journaled, so a row does not count a fill on one side
        only because the journal told of it a little later than the bars were recorded."""
        assert self.session is not None
        since = self.session.bar_ts
        fresh: dict[tuple[str, datetime], Bar] = {}
        for bar in [*self._held, *self._new_chunk_bars(since), *open_bars]:
            fresh.setdefault((bar.symbol, bar.ts), bar)  # the open chunk is read every round
        now = time.monotonic()
        ready: list[Bar] = []
        self._held = []
        for bar in sorted(fresh.values(), key=lambda b: b.ts):
            seen = self._first_seen.setdefault(bar.ts, now)
            settled = final or now - seen >= self.dcfg.settle_s
            if settled and not self._held:
                ready.append(bar)
            else:
                self._held.append(bar)  # and every later one, so bar times stay in order
        held = {b.ts for b in self._held}
        self._first_seen = {t: v for t, v in self._first_seen.items() if t in held}
        alerts = self.session.round(list(group_by_time(ready)), lines)
        if final and self.session.bar_ts is not None:
            alerts += self.session.close_rows(self.session.bar_ts)
        return alerts

    def _recorded(self) -> Iterator[Bar]:
        """Every closed chunk's bars, in time order. The chunks are not marked read: the first
        round reads them again for the bars past the bar time rebuilt here."""
        directory = bars_dir(self.state_dir)
        if not directory.is_dir():
            return iter(())
        return read_chunks(directory, lambda path: read_parquet_bars(path, BarFilter()))

    def _new_chunk_bars(self, since: float | None) -> list[Bar]:
        directory = bars_dir(self.state_dir)
        if not directory.is_dir():
            return []
        out: list[Bar] = []
        for chunk in chunks(directory):
            if chunk.path.name in self._chunks_read:
                continue
            self._chunks_read.add(chunk.path.name)
            out.extend(
                b
                for b in read_parquet_bars(chunk.path, BarFilter())
                if since is None or b.ts.timestamp() + self.cfg.bar_length_s() > since
            )
        return out

    async def _open_chunk_bars(self) -> list[Bar]:
        journal = self.peers.remote(ROLE_JOURNAL)
        if journal is None:
            return []
        try:
            bars: list[Bar] = await journal.call(JournalApi.recorded_open_bars)
        except Exception:
            self.peers.forget(ROLE_JOURNAL)
            return []  # the journal restarts: its open chunk comes as a closed one or again
        return bars

    async def _journal_alerts(self, alerts: list[DriftAlert]) -> None:
        records = [
            event_record(
                self.deployment,
                EventKind.DRIFT_ALERT,
                time.time(),
                a.as_record(),
                strategy=None if a.strategy == "total" else a.strategy,
                event_id=a.event_id,
            )
            for a in alerts
        ]
        await call_journal(self.peers, records, retry_s=30.0)
        self.alerts_journaled += len(records)
        for a in alerts:
            log.warning(
                "drift alert: %s %s %.4g > %.4g", a.strategy, a.figure, a.value, a.threshold
            )

    # -- observation ---------------------------------------------------------------------------

    def _gauges(self) -> None:
        figures = (
            ("return_drift_pct", "Live return minus the shadow backtest's, percentage points"),
            ("tracking_error_pct", "Annualised tracking error against the shadow backtest, %"),
            ("fill_slippage_bps", "Live fills against the shadow backtest's, basis points"),
            ("shortfall_vs_backtest", "Baseline's pro-rated return minus the live return"),
        )
        for figure, description in figures:
            self.metrics.gauge(f"drift_{figure}", description, "1", partial(self._figure, figure))
        self.metrics.gauge(
            "drift_alerts_active",
            "Drift figures over their [drift] threshold now",
            "1",
            lambda: [(float(len(self._active())), {})],
        )
        self.metrics.gauge(
            "drift_alert",
            "1 for each strategy's drift figure over its [drift] threshold now",
            "1",
            lambda: [
                (1.0, {"strategy": a["strategy"], "figure": a["figure"]}) for a in self._active()
            ],
        )

    def _figure(self, figure: str) -> list[tuple[float, dict[str, str]]]:
        if self.session is None:
            return []
        return [
            (float(row[figure]), {"strategy": name})
            for name, row in self.session.tracker.last_row.items()
            if row.get(figure) is not None
        ]

    def _active(self) -> list[dict[str, Any]]:
        return self.session.tracker.active_alerts() if self.session is not None else []

    def _summary(self) -> dict[str, Any]:
        session = self.session
        total = session.tracker.last_row.get("total", {}) if session else {}
        return {
            "opening": not self._ready.is_set(),
            "rounds": session.rounds if session else 0,
            "resumed": session.resumed if session else False,
            "note": session.note if session else None,
            "journal_seq": session.seq if session else 0,
            "last_row": total.get("timestamp"),
            "return_drift_pct": total.get("return_drift_pct"),
            "tracking_error_pct": total.get("tracking_error_pct"),
            "fill_slippage_bps": total.get("fill_slippage_bps"),
            "shortfall_vs_backtest": total.get("shortfall_vs_backtest"),
            "active_alerts": self._active(),
            "alerts_journaled": self.alerts_journaled,
            "late_bars": session.tracker.late_bars if session else 0,
            "last_error": self.last_error,
        }

    async def drift_status(self) -> dict[str, Any]:
        return self.session.tracker.performance() if self.session is not None else {}

    async def heartbeat(self) -> dict[str, Any]:
        return {
            "role": ROLE_DRIFT,
            "ts": time.time(),
            "process": process_info(),
            "ready": self._ready.is_set(),
            **self._summary(),
        }
