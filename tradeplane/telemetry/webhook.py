"""The alert webhook's sender: POSTs the alerts ``tradeplane.telemetry.alerts.Delivery`` queues,
one at a time in journal order, and keeps the journal seq delivered up to in a cursor file so a
restart re-sends only what was still queued. Time comes from an injected monotonic clock.

It runs inside the telemetry actor, off the trading path: nothing that trades waits for it, a
down receiver costs only queued (then dropped and counted) alerts. The URL is a secret: its
parts are registered for redaction, and logs, status and errors show only ``display_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tradeplane.config.alerts import AlertsConfig, display_url, url_secrets
from tradeplane.core.redact import redact, register_secrets
from tradeplane.core.retry import Backoff
from tradeplane.journal.cursors import ALERTS_CURSOR, read_cursor, write_cursor
from tradeplane.telemetry.alerts import Alert, Delivery

if TYPE_CHECKING:
    import random

    import aiohttp

    from tradeplane.telemetry.metrics import ActorMetrics

log = logging.getLogger("tradeplane.alerts")
USER_AGENT = "tradeplane-alerts/1"
# Statuses a retry may fix; any other 4xx refuses the event for good (retrying would only
# block the alerts behind it).
RETRY_STATUSES = frozenset({408, 425, 429})

Outcome = Literal["sent", "failed", "refused"]


def load_cursor(state_dir: Path, default: int) -> int:
    """The seq to resume from (``alerts_cursor.json``); ``default`` on a first start (alerts
    from now on, none of older runs) or when the file is unreadable; never past ``default``,
    the journal's end."""
    return read_cursor(state_dir / ALERTS_CURSOR, default, what="alerts")


class WebhookSender:
    def __init__(
        self,
        cfg: AlertsConfig,
        *,
        state_dir: Path | None,
        start_seq: int,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        metrics: ActorMetrics | None = None,
    ) -> None:
        url = cfg.url()
        if url is None:
            raise ValueError("no [alerts] webhook_url")
        register_secrets(url_secrets(url))
        self._url = url
        self.shown = display_url(url)
        self.cfg = cfg
        self.state_dir = state_dir
        self.clock = clock
        self.delivery = Delivery(
            cfg.max_queue_events,
            Backoff(cfg.retry_first_s, cfg.retry_max_s, jitter=0.2, rng=rng),
            cursor=start_seq,
        )
        self._saved: int | None = start_seq
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._counters = None
        if metrics is not None:
            self._counters = {
                outcome: metrics.counter(f"alerts_{outcome}", f"Alert webhook events {outcome}")
                for outcome in ("delivered", "dropped", "rejected", "failures")
            }
            for counter in self._counters.values():
                counter.add(0)  # served at 0 from the start, so an increase is seen
            metrics.gauge(
                "alerts_queued",
                "Alert webhook events waiting for the receiver",
                "1",
                lambda: [(float(self.delivery.summary()["queued"]), {})],
            )

    # -- queueing ------------------------------------------------------------------------------

    def offer(self, lines: Iterable[Mapping[str, Any]]) -> None:
        """Journal lines, read in order: their alerts are queued and the sender woken."""
        before = len(self.delivery.queue)
        dropped = self.delivery.offer(lines)
        if dropped:
            self._count("dropped", dropped)
            log.warning(
                "alerts: %d events dropped, the receiver (%s) is down or slow: %d queued",
                dropped,
                self.shown,
                len(self.delivery.queue),
            )
        if len(self.delivery.queue) != before or dropped:
            self._wake.set()
        self.save_cursor()

    def tell(self, line: Mapping[str, Any]) -> None:
        """An event not read from the journal (``journal_lost``): sent ahead of the queue."""
        if self.delivery.tell(line):
            self._wake.set()

    # -- sending -------------------------------------------------------------------------------

    async def try_once(self) -> Outcome | None:
        """POST the oldest alert if its try is due; None when there is none to try now."""
        alert = self.delivery.due(self.clock())
        if alert is None:
            return None
        outcome, error = await self._post(alert)
        if outcome == "sent":
            self.delivery.sent(alert)
            self._count("delivered")
        elif outcome == "refused":
            self.delivery.refused(alert, error)
            self._count("rejected")
            log.error("alerts: %s refused %s %s: %s", self.shown, alert.name, alert.key, error)
        else:
            wait = self.delivery.failed(alert, error, self.clock())
            self._count("failures")
            log.warning(
                "alerts: POST %s of %s failed (%s); again in %.1f s",
                alert.key,
                self.shown,
                error,
                wait,
            )
        self.save_cursor()
        return outcome

    async def _post(self, alert: Alert) -> tuple[Outcome, str]:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.cfg.timeout_s)
            )
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": alert.key,
            "User-Agent": USER_AGENT,
        }
        body = json.dumps(alert.body, default=str).encode()
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return "failed", self._error(exc)
        if 200 <= status < 300:
            return "sent", ""
        why = f"HTTP {status}"
        if 400 <= status < 500 and status not in RETRY_STATUSES:
            return "refused", why
        return "failed", why

    def _error(self, exc: BaseException) -> str:
        text = redact(str(exc)).replace(self._url, self.shown)
        return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__

    async def run(self) -> None:
        """Send while there is something to send; sleep until the next try or a new alert."""
        while True:
            wait = self.delivery.wait_s(self.clock())
            if wait is None or wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                continue
            try:
                await self.try_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad try must not end the sender
                log.exception("alerts: sending failed")
                await asyncio.sleep(1.0)

    async def settle(self, timeout_s: float) -> None:
        """Give the running sender (``run``) up to ``timeout_s`` to deliver what is queued; what
        is left stays queued (and in the cursor) for the next start."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.delivery.summary()["queued"]:
                    await asyncio.sleep(0.05)

    async def close(self) -> None:
        self.save_cursor()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- state ---------------------------------------------------------------------------------

    def save_cursor(self) -> None:
        seq = self.delivery.resume_at()
        if self.state_dir is None or seq == self._saved:
            return
        self._saved = seq
        write_cursor(self.state_dir / ALERTS_CURSOR, seq)

    def _count(self, outcome: str, n: int = 1) -> None:
        if self._counters is not None:
            self._counters[outcome].add(n)

    def summary(self) -> dict[str, Any]:
        return {"webhook": self.shown, **self.delivery.summary()}
