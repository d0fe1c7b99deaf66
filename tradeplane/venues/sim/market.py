"""A seeded, restartable generator of realistic OHLCV bars for the offline venue.

Each symbol follows a log-price random walk whose variance obeys a GARCH(1,1) recursion, so
calm and busy periods cluster the way real minute bars do. Every symbol draws from its own
``random.Random`` seeded from (seed, symbol): adding a symbol to a run leaves the others' paths
unchanged. Pure: no IO, no wall clock; time only moves when ``next_bars`` is called.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tradeplane.core.model import Bar

SNAPSHOT_FORMAT = "tradeplane-market-sim"
SNAPSHOT_VERSION = 1

# GARCH(1,1): sigma2' = omega + ALPHA * r^2 + BETA * sigma2. ALPHA + BETA close to 1 gives the
# long-lived volatility clusters of real markets while staying stationary.
GARCH_ALPHA = 0.05
GARCH_BETA = 0.93
# Guards so a freak draw cannot push variance into absurd territory (and prices towards zero).
SIGMA_FLOOR_RATIO = 0.2
SIGMA_CAP_RATIO = 5.0
# Intrabar sub-steps used to trace the high and the low of each bar.
SUB_STEPS = 4
VOLUME_LOG_SIGMA = 0.4

# Well-known tickers start near their familiar level; anything else gets a hash-derived price.
_KNOWN_PRICES = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0}
_MIN_DEFAULT_PRICE = 20.0
_MAX_DEFAULT_PRICE = 500.0


@dataclass(slots=True)
class _SymbolPath:
    symbol: str
    rng: random.Random
    price: float
    log_price: float
    sigma2: float
    base_sigma: float
    base_volume: float

    @property
    def omega(self) -> float:
        return self.base_sigma**2 * (1.0 - GARCH_ALPHA - GARCH_BETA)


def _symbol_hash(seed: int | None, symbol: str) -> int:
    raw = f"{'' if seed is None else seed}\x1f{symbol}".encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big")


def default_initial_price(symbol: str) -> float:
    """Deterministic starting price: familiar level for majors, else 20..500 from a hash."""
    base = symbol.upper().replace("/", "-").replace("_", "-").split("-")[0]
    if base in _KNOWN_PRICES:
        return _KNOWN_PRICES[base]
    unit = _symbol_hash(None, symbol) / 2**64
    # Log-uniform so cheap and expensive names are equally common.
    span = math.log(_MAX_DEFAULT_PRICE / _MIN_DEFAULT_PRICE)
    return round(_MIN_DEFAULT_PRICE * math.exp(unit * span), 2)


def _default_sigma(symbol: str) -> float:
    """Per-symbol long-run 1-minute volatility between 0.06% and 0.12%."""
    unit = (_symbol_hash(None, symbol) >> 11) % 10_000 / 10_000
    return 0.0006 + 0.0006 * unit


def _default_base_volume(symbol: str, price: float) -> float:
    """Typical units traded per minute: roughly $0.2M..$2M of notional."""
    unit = (_symbol_hash(None, symbol) >> 23) % 10_000 / 10_000
    return 200_000.0 * 10**unit / price


def _check_start(start: datetime, interval_s: int) -> None:
    if isinstance(interval_s, bool) or not isinstance(interval_s, int) or interval_s <= 0:
        raise ValueError(f"interval_s must be a positive integer, got {interval_s!r}")
    offset = start.utcoffset()
    if start.tzinfo is None or offset is None:
        raise ValueError(f"start must be timezone-aware UTC, got naive {start.isoformat()}")
    if offset != timedelta(0):
        raise ValueError(f"start must be UTC, got offset {offset} in {start.isoformat()}")
    epoch = start.timestamp()
    if epoch % interval_s != 0:
        raise ValueError(
            f"start {start.isoformat()} is not aligned to interval_s={interval_s} "
            f"({epoch % interval_s:g}s past a boundary)"
        )


def _rng_state_to_json(rng: random.Random) -> list[Any]:
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def _rng_state_from_json(data: list[Any]) -> random.Random:
    rng = random.Random()
    version, internal, gauss_next = data
    rng.setstate((version, tuple(internal), gauss_next))
    return rng


class MarketSimulator:
    """Produces one closed bar per symbol per interval, identical for the same inputs."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        seed: int,
        start: datetime,
        interval_s: int = 60,
        initial_prices: Mapping[str, float] | None = None,
    ) -> None:
        if isinstance(symbols, str):
            raise ValueError("symbols must be a sequence of symbols, not a single string")
        if not symbols:
            raise ValueError("symbols is empty")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols contain duplicates: {list(symbols)}")
        if any(not s for s in symbols):
            raise ValueError("symbols contain an empty name")
        _check_start(start, interval_s)
        prices = dict(initial_prices or {})
        unknown = set(prices) - set(symbols)
        if unknown:
            raise ValueError(f"initial_prices names symbols not simulated: {sorted(unknown)}")
        self._seed = seed
        self._start = start
        self._interval_s = interval_s
        self._step = timedelta(seconds=interval_s)
        self._steps_done = 0
        self._next_ts = start
        self._paths: list[_SymbolPath] = []
        for symbol in symbols:
            price = float(prices.get(symbol, default_initial_price(symbol)))
            if not (math.isfinite(price) and price > 0):
                raise ValueError(f"initial price of {symbol} must be finite and > 0, got {price}")
            sigma = _default_sigma(symbol)
            self._paths.append(
                _SymbolPath(
                    symbol=symbol,
                    rng=random.Random(_symbol_hash(seed, symbol)),
                    price=price,
                    log_price=math.log(price),
                    sigma2=sigma * sigma,
                    base_sigma=sigma,
                    base_volume=_default_base_volume(symbol, price),
                )
            )

    @property
    def symbols(self) -> list[str]:
        return [p.symbol for p in self._paths]

    @property
    def interval_s(self) -> int:
        return self._interval_s

    @property
    def next_ts(self) -> datetime:
        return self._next_ts

    def next_bars(self) -> list[Bar]:
        ts = self._next_ts
        bars = [self._next_bar(path, ts) for path in self._paths]
        self._steps_done += 1
        self._next_ts = ts + self._step
        return bars

    def _next_bar(self, path: _SymbolPath, ts: datetime) -> Bar:
        gauss = path.rng.gauss
        sigma = math.sqrt(path.sigma2)
        sub_sigma = sigma / math.sqrt(SUB_STEPS)
        offset = high_off = low_off = 0.0
        for _ in range(SUB_STEPS):
            offset += sub_sigma * gauss(0.0, 1.0)
            if offset > high_off:
                high_off = offset
            elif offset < low_off:
                low_off = offset
        start_log = path.log_price
        open_ = path.price
        path.log_price = start_log + offset
        close = math.exp(path.log_price)
        # exp() rounding could leave a sampled extreme a hair inside open/close; clamp.
        high = max(open_, close, math.exp(start_log + high_off))
        low = min(open_, close, math.exp(start_log + low_off))

        base = path.base_sigma
        sigma2 = path.omega + GARCH_ALPHA * offset * offset + GARCH_BETA * path.sigma2
        floor, cap = (SIGMA_FLOOR_RATIO * base) ** 2, (SIGMA_CAP_RATIO * base) ** 2
        path.sigma2 = min(max(sigma2, floor), cap)
        # Busy bars trade more: volume scales with the size of the move relative to normal.
        activity = 0.6 + 0.5 * abs(offset) / base
        volume = path.base_volume * activity * math.exp(VOLUME_LOG_SIGMA * gauss(0.0, 1.0))
        path.price = close
        return Bar(path.symbol, ts, open_, high, low, close, volume)

    def snapshot(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "seed": self._seed,
            "start": self._start.isoformat(),
            "interval_s": self._interval_s,
            "steps_done": self._steps_done,
            "paths": [
                {
                    "symbol": p.symbol,
                    "price": p.price,
                    "log_price": p.log_price,
                    "sigma2": p.sigma2,
                    "base_sigma": p.base_sigma,
                    "base_volume": p.base_volume,
                    "rng": _rng_state_to_json(p.rng),
                }
                for p in self._paths
            ],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> MarketSimulator:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a market simulator snapshot: format={data.get('format')!r}")
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported market snapshot version {data.get('version')!r}")
        start = datetime.fromisoformat(data["start"])
        symbols = [p["symbol"] for p in data["paths"]]
        sim = cls(symbols, seed=data["seed"], start=start, interval_s=data["interval_s"])
        sim._steps_done = int(data["steps_done"])
        sim._next_ts = start + sim._step * sim._steps_done
        sim._paths = [
            _SymbolPath(
                symbol=p["symbol"],
                rng=_rng_state_from_json(p["rng"]),
                price=float(p["price"]),
                log_price=float(p["log_price"]),
                sigma2=float(p["sigma2"]),
                base_sigma=float(p["base_sigma"]),
                base_volume=float(p["base_volume"]),
            )
            for p in data["paths"]
        ]
        return sim
