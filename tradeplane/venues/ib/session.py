"""One ib_async connection, used with its async API only, inside the owning actor's event loop.

Connecting fails fast and clearly on a client id already in use (error 326: ib_async itself
only times out) and refuses a connection whose identity does not match the config (a live
account or port when paper is configured). TWS's connectivity codes drive ``LinkState``;
ib_async's client throttle paces every message under ``max_messages_per_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import ib_async

from tradeplane.config.venues import IbConfig
from tradeplane.core.errors import OperationalError, TransientError
from tradeplane.core.redact import RedactingFilter
from tradeplane.venues.ib.core import CLIENT_ID_IN_USE, Link, LinkState

log = logging.getLogger("tradeplane.venues.ib")
# Every logger ib_async writes to. Its decoder logs a frame it cannot handle whole (fields and
# traceback), its wrapper logs orders and errors as TWS sent them: text from the wire.
IB_ASYNC_LOGGERS = (
    "ib_async",
    "ib_async.client",
    "ib_async.Decoder",
    "ib_async.ib",
    "ib_async.wrapper",
    "ib_async.IBC",
    "ib_async.Watchdog",
    "ib_async.flexreport",
)
_IB_LOG_FILTER = RedactingFilter()


def redact_ib_async_logs() -> None:
    """Mask registered secrets in every record ib_async logs, at its own loggers: so even a
    handler added to them later (``ib_async.util.logToConsole``, a file) gets none. Idempotent."""
    for name in IB_ASYNC_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(_IB_LOG_FILTER)


class IbClientIdInUse(OperationalError):
    """Another connection to this TWS uses our client id: an operator must pick another."""


class IbIdentityRefused(OperationalError):
    """The connection is not what the config says (paper vs live, or the account)."""


class IbUnavailable(TransientError):
    """TWS did not answer (not running, or not accepting API connections): retry later."""


class IbSession:
    def __init__(
        self,
        cfg: IbConfig,
        *,
        ib_factory: Callable[[], Any] = ib_async.IB,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        redact_ib_async_logs()
        self.ib: Any = ib_factory()
        self.link = LinkState()
        # Pacing is ib_async's client throttle: it counts every message written to the socket
        # (IB's 50/s limit counts them all), those that connecting and syncing send included.
        self.ib.client.MaxRequests = max(1, int(cfg.max_messages_per_s))
        self.ib.client.RequestsInterval = 1.0
        self._clock = clock
        self._last_proof = clock()
        self.account: str | None = None
        self.errors: list[tuple[int, int, str]] = []
        self._id_in_use = asyncio.Event()
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected

    # -- connection ----------------------------------------------------------------------------

    async def connect(self) -> str:
        """Connect, check identity, and return the account traded."""
        self._id_in_use.clear()
        where = f"{self.cfg.host}:{self.cfg.port} as client id {self.cfg.client_id}"
        connecting = asyncio.ensure_future(
            self.ib.connectAsync(
                self.cfg.host,
                self.cfg.port,
                clientId=self.cfg.client_id,
                timeout=self.cfg.connect_timeout_s,
                account=self.cfg.account or "",
            )
        )
        refused = asyncio.ensure_future(self._id_in_use.wait())
        done, _ = await asyncio.wait({connecting, refused}, return_when=asyncio.FIRST_COMPLETED)
        if refused in done:
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            self.ib.disconnect()
            raise IbClientIdInUse(
                f"IB at {where}: client id already in use (error 326); set venue.ib.client_id "
                "or IB_CLIENT_ID to one no other connection uses"
            )
        refused.cancel()
        try:
            await connecting
        except (TimeoutError, ConnectionError, OSError) as exc:
            self.ib.disconnect()
            raise IbUnavailable(f"IB at {where}: {type(exc).__name__}: {exc}") from exc
        managed = list(self.ib.managedAccounts())
        problem = self.cfg.identity_problem(managed)
        if problem is not None:
            self.ib.disconnect()
            raise IbIdentityRefused(f"IB at {where}: {problem}")
        self.account = self.cfg.account or managed[0]
        self.link.connected()
        self._last_proof = self._clock()
        return self.account

    def disconnect(self) -> None:
        self.ib.disconnect()
        self.link.disconnected("closed by us")

    async def heartbeat_if_due(self) -> None:
        """While the link is up, prove it alive every ``heartbeat_s`` (see ``prove_alive``)."""
        if self.link.state is Link.UP and self._clock() - self._last_proof >= self.cfg.heartbeat_s:
            await self.prove_alive()
            self._last_proof = self._clock()

    async def prove_alive(self) -> None:
        """Ask TWS the time; a TWS that stays silent is taken as gone (``IbUnavailable``, the
        socket closed) so the owner reconnects and resyncs instead of waiting on it forever."""
        try:
            async with asyncio.timeout(self.cfg.heartbeat_s):
                await self.ib.reqCurrentTimeAsync()
        except TimeoutError:
            why = f"TWS silent: no answer to a heartbeat in {self.cfg.heartbeat_s:g} s"
            self.link.disconnected(why)
            self.ib.disconnect()
            raise IbUnavailable(f"IB at {self.cfg.host}:{self.cfg.port}: {why}") from None

    @property
    def connected(self) -> bool:
        return bool(self.ib.isConnected()) and self.link.may_send

    # -- events --------------------------------------------------------------------------------

    def _on_error(self, req_id: int, code: int, message: str, *_: Any) -> None:
        self.errors.append((req_id, code, message))
        del self.errors[:-200]
        if code == CLIENT_ID_IN_USE:
            self._id_in_use.set()
        elif req_id == -1 and self.link.on_code(code):
            log.warning("IB link %s (%s: %s)", self.link.state.value, code, message)

    def _on_disconnected(self) -> None:
        self.link.disconnected("socket closed")
