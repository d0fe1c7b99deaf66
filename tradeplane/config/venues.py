"""Config of the real venues: where market data comes from (``[feed]``: the venue's own, OKX or
Binance public data) and the Interactive Brokers connection (``[venue.ib]``).

Every URL, host and port can be overridden by an environment variable (or ``.env``), named in
each field's docstring; the loader applies them before validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationError, field_validator

from tradeplane.config.base import FrozenModel
from tradeplane.config.env import OverrideVars, describe

# How each market-data source delivers, and so how long a silence is normal for it: a
# REST-polled feed sees its bars a poll late, a streaming one as they close.
STREAMING, REST = "streaming", "rest"
FEED_SILENCE_DEFAULT_S: dict[str, float] = {STREAMING: 30.0, REST: 90.0}
IB_PAPER_PORTS = frozenset({7497, 4002})  # TWS paper, IB Gateway paper
IB_LIVE_PORTS = frozenset({7496, 4001})


def _url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be a {' or '.join(s + '://' for s in schemes)} URL with a host")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(lambda v: _url(v, ("http", "https")))]
WsUrl = Annotated[str, AfterValidator(lambda v: _url(v, ("ws", "wss")))]


class OkxFeedConfig(FrozenModel):
    rest_url: HttpUrl = "https://www.okx.com"
    """OKX REST base URL (``/api/v5/market/candles`` is appended). Default
    ``https://www.okx.com``; ``TRADEPLANE_OKX_REST_URL`` overrides it."""
    ws_url: WsUrl = "wss://ws.okx.com:8443/ws/v5/business"
    """OKX websocket URL: the business endpoint carries candles. Default
    ``wss://ws.okx.com:8443/ws/v5/business``; ``TRADEPLANE_OKX_WS_URL`` overrides it."""
    transport: Literal["websocket", "rest"] = "websocket"
    """``websocket`` (candle1m pushes, gaps backfilled over REST) or ``rest`` (polling).
    Default ``websocket``."""
    poll_interval_s: float = Field(default=5.0, gt=0, le=60)
    """Seconds between REST polls in ``rest`` mode. Default 5."""
    ping_interval_s: float = Field(default=20.0, gt=0, lt=30)
    """Send the text ``ping`` after this long without a message (OKX drops a connection idle
    for 30 s). Default 20."""
    reconnect_backoff_max_s: float = Field(default=30.0, gt=0)
    """Longest wait between reconnection attempts (doubling from 0.5 s). Default 30."""
    request_timeout_s: float = Field(default=10.0, gt=0)
    """Timeout of one REST request. Default 10."""

    @property
    def style(self) -> str:
        return REST if self.transport == "rest" else STREAMING


class BinanceFeedConfig(FrozenModel):
    rest_url: HttpUrl = "https://data-api.binance.vision"
    """Binance REST base URL for kline backfill (market data only). Default
    ``https://data-api.binance.vision``; ``TRADEPLANE_BINANCE_REST_URL`` overrides it."""
    ws_url: WsUrl = "wss://stream.binance.com:9443"
    """Binance websocket base URL (``/ws/<stream>`` or ``/stream?streams=`` is appended).
    Default ``wss://stream.binance.com:9443``; ``TRADEPLANE_BINANCE_WS_URL`` overrides it."""
    reconnect_backoff_max_s: float = Field(default=30.0, gt=0)
    """Longest wait between reconnection attempts (doubling from 0.5 s). Default 30."""
    request_timeout_s: float = Field(default=10.0, gt=0)
    """Timeout of one REST request. Default 10."""


class FeedConfig(FrozenModel):
    kind: Literal["venue", "okx", "binance"] = "venue"
    """Where bars come from: ``venue`` (the venue's own: the simulator, or IB's bars), ``okx``
    or ``binance`` (public market data; orders still go to the venue, e.g. the sim venue in
    paper mode, or nowhere in shadow mode). Default ``venue``."""
    okx: OkxFeedConfig = OkxFeedConfig()
    """OKX market data (used when kind is ``okx``)."""
    binance: BinanceFeedConfig = BinanceFeedConfig()
    """Binance market data (used when kind is ``binance``)."""

    @property
    def style(self) -> str:
        """``rest`` or ``streaming``: sets the default feed-silence threshold."""
        return self.okx.style if self.kind == "okx" else STREAMING


class IbConfig(FrozenModel):
    host: str = "127.0.0.1"
    """TWS or IB Gateway host. Default 127.0.0.1; ``IB_HOST`` overrides it."""
    port: int = Field(default=7497, ge=1, le=65535)
    """TWS/Gateway API port: 7497 TWS paper, 4002 Gateway paper, 7496/4001 live. Default 7497;
    ``IB_PORT`` overrides it."""
    client_id: int = Field(default=1, ge=0)
    """API client id, unique per connection to one TWS. Default 1; ``IB_CLIENT_ID`` overrides
    it."""
    account: str | None = None
    """Account to trade; must be one of the connection's managed accounts. Default: the only
    managed account. ``IB_ACCOUNT`` overrides it."""
    live: bool = False
    """Trade a live account. Off, the connection must look like paper (a paper port and a
    ``DU`` account) or it is refused. Default false."""
    symbols: tuple[str, ...] = ("SPY",)
    """US stocks traded (SMART routing, USD). Default SPY."""
    max_messages_per_s: float = Field(default=40.0, gt=0, lt=50)
    """Most messages per second sent to TWS, every message counted (ib_async's client throttle
    queues the rest; IB disconnects a client above 50). Default 40."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    """How long one connection attempt may take. Default 10."""
    heartbeat_s: float = Field(default=10.0, gt=0)
    """How often the broker and the feed ask TWS the time to prove the socket alive: no answer
    within it and the link counts as lost (reconnect, then resync). A hung TWS sends no error,
    and bars stop anyway when the market closes. Default 10."""

    @field_validator("symbols")
    @classmethod
    def _symbols_ok(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError("at least one symbol, no repeats")
        return v

    def identity_problem(self, managed_accounts: list[str]) -> str | None:
        """Why this connection must not trade as configured, or None (paper vs live)."""
        account = self.account or (managed_accounts[0] if len(managed_accounts) == 1 else None)
        if account is None:
            return f"several managed accounts {managed_accounts}: set venue.ib.account"
        if account not in managed_accounts:
            return f"account {account} is not managed by this connection ({managed_accounts})"
        if not self.live:
            if not account.startswith("DU"):
                return f"account {account} is not a paper (DU...) account and live is not set"
            if self.port in IB_LIVE_PORTS:
                return f"port {self.port} is a live port and live is not set"
        return None


_ENV: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("okx_rest_url", ("feed", "okx", "rest_url")),
    ("okx_ws_url", ("feed", "okx", "ws_url")),
    ("binance_rest_url", ("feed", "binance", "rest_url")),
    ("binance_ws_url", ("feed", "binance", "ws_url")),
    ("ib_host", ("venue", "ib", "host")),
    ("ib_port", ("venue", "ib", "port")),
    ("ib_client_id", ("venue", "ib", "client_id")),
    ("ib_account", ("venue", "ib", "account")),
)
"""``OverrideVars`` field (``TRADEPLANE_OKX_REST_URL``, ``IB_PORT``, ...) -> the config field."""


class VenueEnvError(ValueError):
    """A venue variable with a value that cannot be used."""


def apply_venue_env(raw: dict[str, Any], env: Mapping[str, str] | OverrideVars) -> None:
    """Overlay the venue variables onto a raw config mapping (they win over the file).
    Raises ``VenueEnvError`` naming a variable whose value cannot be used."""
    try:
        values = env if isinstance(env, OverrideVars) else OverrideVars.of(env)
    except ValidationError as exc:
        raise VenueEnvError(describe(exc)) from None
    for field, path in _ENV:
        value = getattr(values, field)
        if value is None:
            continue
        node = raw
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                return  # the model validation names the bad table
            node = child
        node[path[-1]] = value
