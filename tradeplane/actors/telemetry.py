"""TelemetryActor: turns the journal into spans for the collector and serves the Prometheus
endpoint.

It reads the journal read-only (so it runs on the journal's node), builds the spans the journaled
records finish (``telemetry.spans``) and ships them through a bounded queue. Its cursor is the
journal line before the oldest span not yet exported, kept in ``telemetry_cursor.json``: after a
crash it resumes there, so no finished span is lost (a few may be sent twice). Nothing on the
trading path waits for it; a down collector costs only queued (then dropped, counted and
journaled) spans.

With ``[alerts] webhook_url`` set it also POSTs the operator events it reads (kill switch
tripped, health failed or feed silent, recovery exhausted, journal lost, drift alert, spans
dropped) to the webhook (``telemetry.webhook``): this actor already reads every journal line off
the trading path, on the journal's node, and keeps its place in the state dir, which is all an
at-least-once sender needs; no trading actor waits for it.

The Prometheus endpoint serves the journal-derived counters kept here (intents, orders by status,
denials by reason, fills, recovery attempts: equal to the journal by construction, whatever
restarted) and the live metrics each actor keeps in-process (``metrics_snapshot``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, wait_exponential

from tradeplane.actors.common import (
    SupervisedActor,
    call_journal,
    child_peers,
    process_info,
    spawn,
)
from tradeplane.actors.records import event_record
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.redact import redact
from tradeplane.journal.cursors import TELEMETRY_CURSOR, read_cursor, write_cursor
from tradeplane.journal.reader import JournalReader
from tradeplane.protocol.api import ChildApi
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import ROLE_TELEMETRY, child_role
from tradeplane.telemetry.export import (
    Resources,
    ShipResult,
    SpanShipper,
    make_exporter,
    node_export_headers,
)
from tradeplane.telemetry.journal_metrics import JournalCounters
from tradeplane.telemetry.metrics import ActorMetrics, MetricPoint
from tradeplane.telemetry.spans import SpanBuilder

if TYPE_CHECKING:
    from tradeplane.telemetry.prometheus import MetricsServer
    from tradeplane.telemetry.webhook import WebhookSender

log = logging.getLogger("tradeplane.telemetry")
READ_PAGE = 2000
IDLE_READ_MAX_S = 2.0
DROP_WARNING_INTERVAL_S = 30.0
SCRAPE_TIMEOUT_S = 1.0
ALERTS_FLUSH_S = 3.0  # of a stop's flush: what a down webhook receiver may hold it up


def idle_wait_s(interval_s: float, quiet_rounds: int) -> float:
    """The wait before the next journal read: ``interval_s`` while lines come in; after rounds
    that found nothing it doubles, up to ``IDLE_READ_MAX_S`` (an idle deployment's exporter
    reads the journal every 2 s, not four times a second), never below ``interval_s``."""
    return max(interval_s, min(IDLE_READ_MAX_S, interval_s * 2.0 ** max(0, quiet_rounds - 1)))


@ray.remote
class TelemetryActor(SupervisedActor):
    def __init__(
        self, cfg: TradeplaneConfig, run_id: str, roles: list[str], *, epoch: int = 0
    ) -> None:
        self.cfg = cfg
        self.tcfg = cfg.telemetry
        self.deployment = cfg.deployment.name
        self.run_id = run_id
        self.roles = [r for r in roles if r != ROLE_TELEMETRY]
        self.state_dir = Path(cfg.deployment.resolved_state_dir())
        self.peers = child_peers(self.deployment, ROLE_TELEMETRY, epoch)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.metrics = ActorMetrics(
            "telemetry", self.deployment, service_base=self.tcfg.service_name
        )
        self.counters = JournalCounters(self.metrics)
        exporter = make_exporter(self.tcfg, node_export_headers(self.state_dir, os.environ))
        self.shipper = (
            SpanShipper(
                exporter,
                Resources(self.tcfg.service_name, self.deployment),
                batch_spans=self.tcfg.export_batch_spans,
                max_queue_spans=self.tcfg.max_queue_spans,
            )
            if exporter is not None
            else None
        )
        self.reader: JournalReader | None = None
        self.builder: SpanBuilder | None = None
        self.cursor = 0  # last journal seq read
        self.server: MetricsServer | None = None
        self.endpoint: str | None = None
        self.endpoint_error: str | None = None
        self.endpoint_note: str | None = None
        self._counted_to = 0  # journal seq the counters include
        self._saved_seq: int | None = None
        self._ready = asyncio.Event()
        self._reading = asyncio.Lock()
        self._dropped_reported = 0
        self._last_drop_warning = float("-inf")  # monotonic: a throttle within this process
        self.last_export_error: str | None = None
        self.alerts: WebhookSender | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def ready(self) -> dict[str, Any]:
        if not self._ready.is_set():
            self.reader = await asyncio.to_thread(self._open_reader)
            seeded_to = self.reader.last_seq
            await asyncio.to_thread(self.counters.seed, self.reader, seeded_to)
            self.metrics.gauge(
                "orders",
                "Orders in the journal by current status",
                "1",
                self._orders_by_status,
            )
            self.metrics.gauge(
                "telemetry_spans_queued",
                "Spans waiting for the collector (bounded by max_queue_spans)",
                "1",
                lambda: [(float(len(self.shipper) if self.shipper else 0), {})],
            )
            self.metrics.gauge(
                "telemetry_counted_seq",
                "Journal seq the journal-derived counters include (they equal the journal to it)",
                "1",
                lambda: [(float(self._counted_to), {})],
            )
            self._counted_to = seeded_to
            self.cursor = self._load_cursor(default=seeded_to)
            await self._start_alerts(seeded_to)
            self._save_cursor()  # from now on a restart resumes here, never at the journal's end
            self.builder = SpanBuilder(lookup=self._lookup, run_id=self.run_id)
            await self._start_metrics_server()
            spawn(self.tasks, self._loop())
            self._ready.set()
        return self._summary()

    async def _start_alerts(self, journal_end: int) -> None:
        """The webhook sender, resumed where it stopped: the alerts journaled since are queued
        (one query by kind), then the pages ``_read_all`` reads feed it."""
        if self.cfg.alerts.url() is None:
            return
        from tradeplane.telemetry.alerts import ALERT_KINDS
        from tradeplane.telemetry.webhook import WebhookSender, load_cursor

        assert self.reader is not None
        start = await asyncio.to_thread(load_cursor, self.state_dir, journal_end)
        sender = WebhookSender(
            self.cfg.alerts, state_dir=self.state_dir, start_seq=start, metrics=self.metrics
        )
        missed = await asyncio.to_thread(self.reader.events, list(ALERT_KINDS), start)
        sender.offer(missed)
        self.alerts = sender
        spawn(self.tasks, sender.run())

    async def alert_now(self, line: dict[str, Any]) -> None:
        """An operator event the journal may never hold (``journal_lost``, from the
        supervisor): to the webhook at once, under its event id."""
        if self.alerts is not None:
            self.alerts.tell(line)

    def _open_reader(self) -> JournalReader:
        return JournalReader.open_when_there(self.state_dir, deployment=self.deployment)

    async def _start_metrics_server(self) -> None:
        configured = self.tcfg.metrics_port
        if configured is None:
            return
        # Imported here: the HTTP server's modules (aiohttp) are half the import time of this
        # module, which every process that looks this actor up by name imports (a restarted
        # supervisor re-attaching among them).
        from tradeplane.telemetry.prometheus import MetricsServer, port_candidates

        taken: list[str] = []
        for port in port_candidates(configured, await asyncio.to_thread(self._previous_port)):
            server = MetricsServer(self.collect_metrics)
            try:
                host, bound = await server.start(self.tcfg.metrics_host, port)
            except OSError as exc:
                taken.append(str(exc))
                continue
            self.server = server
            self.endpoint = f"http://{host}:{bound}/metrics"
            # A fallback is not an error (status shows the port in use), but say why.
            self.endpoint_note = f"port {configured} taken, serving on {bound}" if taken else None
            self._journal(
                EventKind.TELEMETRY_STARTED,
                {
                    "metrics": self.endpoint,
                    "port": bound,
                    "configured_port": configured,
                    **({"fallback": taken[0][:300]} if taken else {}),
                    **self._export_target(),
                },
            )
            return
        # Not fatal: trading goes on without the endpoint, and status says why.
        self.endpoint_error = "; ".join(taken)[:300]
        self._journal(EventKind.TELEMETRY_ENDPOINT_FAILED, {"error": self.endpoint_error})

    def _previous_port(self) -> int | None:
        """The port this deployment's endpoint last served on (journaled), if any."""
        if self.reader is None:
            return None
        started = self.reader.events(kinds=[EventKind.TELEMETRY_STARTED.value])
        port = started[-1]["data"].get("port") if started else None
        return int(port) if isinstance(port, int) else None

    def _export_target(self) -> dict[str, Any]:
        return {
            "traces_exporter": self.tcfg.traces_exporter,
            "endpoint": self.tcfg.resolved_endpoint() or None,
            "sampling_ratio": self.tcfg.sampling_ratio,
        }

    async def flush(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Read the journal to its end and export everything queued (the deployment stops)."""
        await self._ready.wait()
        deadline = time.monotonic() + timeout_s
        await self._read_all()
        if self.alerts is not None:  # the last events (health failed, say) before it stops
            await self.alerts.settle(min(ALERTS_FLUSH_S, timeout_s))
        while self.shipper is not None and len(self.shipper) and time.monotonic() < deadline:
            result = await asyncio.to_thread(self.shipper.ship_once)
            self._after_ship()
            if result.failed:
                await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        self._save_cursor()
        return self._summary()

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        if self.server is not None:
            await self.server.stop()
        if self.alerts is not None:
            await self.alerts.close()
        if self.shipper is not None:
            await asyncio.to_thread(self.shipper.shutdown)
        if self.reader is not None:
            self.reader.close()

    # -- spans ---------------------------------------------------------------------------------

    async def _loop(self) -> None:
        quiet_rounds = 0
        while True:
            try:
                read_from = self.cursor
                await self._export_round()
                quiet_rounds = 0 if self.cursor != read_from else quiet_rounds + 1
                if self.shipper is None or not len(self.shipper):
                    await asyncio.sleep(idle_wait_s(self.tcfg.export_interval_s, quiet_rounds))
                # else more batches are ready: no wait
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad round must not end the export loop
                log.exception("telemetry round failed")
                await asyncio.sleep(1.0)

    async def _export_round(self) -> None:
        """Read the journal on and export one batch. A failed export is tried again (reading
        on first) after a wait that doubles from ``export_interval_s`` up to 5 s (or the
        interval, when that is longer); any exception ends the round."""
        interval = self.tcfg.export_interval_s
        until_exported = AsyncRetrying(
            wait=wait_exponential(interval, max=max(interval, 5.0)),
            retry=retry_if_result(lambda result: result is not None and result.failed),
            before_sleep=self._export_failed,
        )
        await until_exported(self._read_and_ship)

    async def _read_and_ship(self) -> ShipResult | None:
        await self._read_all()
        if self.shipper is None or not len(self.shipper):
            return None
        result = await asyncio.to_thread(self.shipper.ship_once)
        self._after_ship()
        return result

    def _export_failed(self, retry_state: RetryCallState) -> None:
        assert retry_state.outcome is not None
        self.last_export_error = retry_state.outcome.result().error

    async def _read_all(self) -> None:
        async with self._reading:
            assert self.reader is not None and self.builder is not None
            while True:
                page = await asyncio.to_thread(self.reader.events, None, self.cursor, READ_PAGE)
                if not page:
                    break
                self.counters.count(e for e in page if int(e["seq"]) > self._counted_to)
                if self.alerts is not None:
                    self.alerts.offer(page)
                self._counted_to = max(self._counted_to, int(page[-1]["seq"]))
                if self.shipper is not None:
                    self.shipper.add(self.builder.feed(page))
                    self._report_drops()
                self.cursor = int(page[-1]["seq"])
                if len(page) < READ_PAGE:
                    break
            self._save_cursor()

    def _lookup(self, coid: str) -> list[dict[str, Any]]:
        assert self.reader is not None
        return self.reader.events_for(client_order_id=coid)

    def _after_ship(self) -> None:
        assert self.shipper is not None
        self.counters.spans(self.shipper.exported, self.shipper.dropped, self.shipper.failures)
        self._save_cursor()

    def _report_drops(self) -> None:
        """A counted, journaled warning per outage (at most one every 30 s)."""
        assert self.shipper is not None
        fresh = self.shipper.dropped - self._dropped_reported
        now = time.monotonic()
        if fresh <= 0 or now - self._last_drop_warning < DROP_WARNING_INTERVAL_S:
            return
        self._dropped_reported = self.shipper.dropped
        self._last_drop_warning = now
        log.warning("telemetry: %d spans dropped (collector down or slow)", fresh)
        self._journal(
            EventKind.TELEMETRY_SPANS_DROPPED,
            {
                "dropped": fresh,
                "dropped_total": self.shipper.dropped,
                "queue_limit": self.tcfg.max_queue_spans,
                "last_error": self.shipper.last_error,
                **self._export_target(),
            },
        )

    # -- cursor --------------------------------------------------------------------------------

    def _cursor_path(self) -> Path:
        return self.state_dir / TELEMETRY_CURSOR

    def _load_cursor(self, default: int) -> int:
        return read_cursor(self._cursor_path(), default, what="spans exported")

    def _save_cursor(self) -> None:
        """Resume point: just before the oldest span still queued, else what was read."""
        if self.shipper is None:
            return  # no spans to resume
        oldest = self.shipper.oldest_seq()
        seq = self.cursor if oldest is None else max(0, oldest - 1)
        if seq == self._saved_seq:
            return
        self._saved_seq = seq
        write_cursor(self._cursor_path(), seq)

    # -- metrics -------------------------------------------------------------------------------

    def _orders_by_status(self) -> list[tuple[float, dict[str, str]]]:
        if self.reader is None:
            return []
        return [
            (float(n), {"status": status})
            for status, n in self.reader.order_counts_by_status().items()
        ]

    async def collect_metrics(self) -> str:
        """Every actor's live metrics and the journal-derived counters, as Prometheus text."""
        await self._read_all()  # counters as of now, not as of the last export round
        async with self._reading:  # the reader's connection serves one caller at a time
            points: list[MetricPoint] = list(self.metrics.snapshot())

        async def one(role: str) -> tuple[str, list[MetricPoint] | None]:
            child = self.peers.remote(child_role(role))
            if child is None:
                return role, None
            try:
                async with asyncio.timeout(SCRAPE_TIMEOUT_S):
                    got: list[MetricPoint] = await child.call(ChildApi.metrics_snapshot)
            except Exception:
                self.peers.forget(role)
                return role, None
            return role, got

        for role, got in await asyncio.gather(*(one(r) for r in self.roles)):
            points.append(_up(role, self.deployment, got is not None))
            points.extend(got or [])
        from tradeplane.telemetry.prometheus import render

        return render(points)

    # -- observation ---------------------------------------------------------------------------

    def _journal(self, kind: EventKind, data: dict[str, Any]) -> None:
        record = event_record(self.deployment, kind, time.time(), data)
        spawn(self.tasks, call_journal(self.peers, [record], retry_s=10.0))

    def _summary(self) -> dict[str, Any]:
        shipper = self.shipper
        return {
            "metrics_endpoint": self.endpoint,
            "metrics_error": self.endpoint_error,
            "metrics_note": self.endpoint_note,
            **self._export_target(),
            "cursor": self.cursor,
            "queued_spans": len(shipper) if shipper else 0,
            "exported_spans": shipper.exported if shipper else 0,
            "dropped_spans": shipper.dropped if shipper else 0,
            "export_failures": shipper.failures if shipper else 0,
            "last_export_error": redact(shipper.last_error)
            if shipper and shipper.last_error
            else None,
            "skipped_events": self.builder.skipped if self.builder else 0,
            "alerts": self.alerts.summary() if self.alerts is not None else None,
        }

    async def heartbeat(self) -> dict[str, Any]:
        return {
            "role": ROLE_TELEMETRY,
            "ts": time.time(),
            "process": process_info(),
            "ready": self._ready.is_set(),
            **self._summary(),
        }


def _up(role: str, deployment: str, up: bool) -> MetricPoint:
    return MetricPoint(
        name="actor_up",
        kind="gauge",
        description="1 when the actor answered the last scrape",
        unit="1",
        labels=(("deployment", deployment), ("role", role)),
        value=1.0 if up else 0.0,
        buckets=(),
        sum=None,
        count=None,
    )
