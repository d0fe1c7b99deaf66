"""Binance spot 1-minute klines: pure REST/WebSocket parsing and closed-bar tracking.

No IO and no clock reads: callers pass ``now_ms``. Wire formats (binance-spot-api-docs):

- REST ``GET /api/v3/klines`` rows: ``[openTime, "o", "h", "l", "c", "v", closeTime, "q", n,
  "V", "Q", "0"]``. A row is a closed bar only once ``closeTime < now_ms``; the still-open last
  kline is never a bar. Row order is not documented, so rows are sorted by open time.
- WebSocket ``<symbol>@kline_1m``: ``{"e": "kline", "E", "s", "k": {"t", "T", "s", "i", "o",
  "c", "h", "l", "v", "x", ...}}``, wrapped as ``{"stream", "data"}`` on combined streams.
  ``k.x`` is true on the final update of a kline.

Parsers never raise on bad data: a bad row becomes a ``Rejected`` and a bad message a
``Malformed``, each with a reason. Bars carry the upper-case Binance symbol (``BTCUSDT``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.model import Bar
from tradeplane.venues.source import RAW_LIMIT, Malformed, Rejected

MINUTE_MS = 60_000
INTERVAL = "1m"
MAX_LIMIT = 1000
MAX_CONNECTION_S = 24 * 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last instant datetime can hold
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class BinanceError(Exception):
    """A non-200 REST answer: HTTP ``status`` plus Binance's JSON ``code``/``msg`` if present."""

    def __init__(self, status: int, code: int | None, msg: str) -> None:
        super().__init__(f"binance HTTP {status} code={code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg


class BinanceRateLimited(BinanceError):
    """HTTP 429 (back off ``retry_after_s``) or 418 (``banned``: the IP is banned for a while)."""

    def __init__(
        self, status: int, code: int | None, msg: str, *, retry_after_s: float, banned: bool
    ) -> None:
        super().__init__(status, code, msg)
        self.retry_after_s = retry_after_s
        self.banned = banned


@dataclass(frozen=True)
class KlineBatch:
    symbol: str
    bars: list[Bar]
    """Closed bars only, oldest first, one per open time."""
    rejected: list[Rejected]


@dataclass(frozen=True)
class KlineUpdate:
    """One kline push. ``bar`` is set only on the final (``closed``) update of a valid kline."""

    symbol: str
    bar: Bar | None
    closed: bool
    open_ms: int


@dataclass(frozen=True)
class SubscribeResult:
    id: int
    result: Any


@dataclass(frozen=True)
class WsError:
    code: int | None
    msg: str
    id: int | None = None


WsMessage = KlineUpdate | SubscribeResult | WsError | Malformed


class _Bad(Exception):
    """Internal: a field failed validation; the message is the rejection reason."""


# ------------------------------------------------------------------------------------ REST


def klines_path(
    symbol: str, *, limit: int = MAX_LIMIT, start_ms: int | None = None, end_ms: int | None = None
) -> str:
    """Path and query of a 1m klines request; ``limit`` is clamped to 1..1000."""
    query: dict[str, str | int] = {
        "symbol": symbol.upper(),
        "interval": INTERVAL,
        "limit": max(1, min(MAX_LIMIT, limit)),
    }
    if start_ms is not None:
        query["startTime"] = start_ms
    if end_ms is not None:
        query["endTime"] = end_ms
    return f"/api/v3/klines?{urlencode(query)}"


def retry_after_seconds(header: str | None, default: float) -> float:
    """``Retry-After`` in seconds; ``default`` when missing, negative or not a number."""
    try:
        value = float(header) if header is not None else default
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= 0 else default


def _error_fields(body: bytes | str) -> tuple[int | None, str]:
    text = _text(body)
    try:
        doc = json.loads(text)
    except ValueError:
        return None, text[:RAW_LIMIT]
    if not isinstance(doc, dict):
        return None, text[:RAW_LIMIT]
    code = doc.get("code")
    msg = doc.get("msg")
    return (
        code if _is_int(code) else None,
        msg if isinstance(msg, str) else text[:RAW_LIMIT],
    )


def parse_rest_klines(
    symbol: str,
    status: int,
    body: bytes | str,
    *,
    now_ms: int,
    retry_after: str | None = None,
) -> KlineBatch:
    """Closed bars from a klines response. Raises only for a non-200 status.

    429 → ``BinanceRateLimited`` (Retry-After, default 1 s); 418 → banned (default 60 s);
    other non-200 → ``BinanceError``. A 200 body that is not a JSON array yields one ``Rejected``.
    """
    sym = symbol.upper()
    if status in (418, 429):
        code, msg = _error_fields(body)
        banned = status == 418
        wait = retry_after_seconds(retry_after, 60.0 if banned else 1.0)
        raise BinanceRateLimited(status, code, msg, retry_after_s=wait, banned=banned)
    if status != 200:
        raise BinanceError(status, *_error_fields(body))
    text = _text(body)
    try:
        rows = json.loads(text)
    except ValueError:
        return KlineBatch(sym, [], [Rejected("body is not valid JSON", text)])
    if not isinstance(rows, list):
        return KlineBatch(sym, [], [Rejected("body is not a JSON array", text)])
    parsed: list[tuple[int, Bar]] = []
    rejected: list[Rejected] = []
    for row in rows:
        try:
            open_ms, close_ms, bar = _rest_row(sym, row)
        except _Bad as exc:
            rejected.append(Rejected(str(exc), _dump(row)))
            continue
        if close_ms < now_ms:
            parsed.append((open_ms, bar))
    parsed.sort(key=lambda item: item[0])
    bars: list[Bar] = []
    last: int | None = None
    for open_ms, bar in parsed:
        if open_ms == last:
            rejected.append(Rejected("duplicate open time", f"{sym} {open_ms}"))
            continue
        bars.append(bar)
        last = open_ms
    return KlineBatch(sym, bars, rejected)


def _rest_row(symbol: str, row: Any) -> tuple[int, int, Bar]:
    if not isinstance(row, list) or len(row) < 7:
        raise _Bad("row is not an array of at least 7 fields")
    open_ms, close_ms = _times(row[0], row[6])
    return open_ms, close_ms, _bar(symbol, open_ms, row[1], row[2], row[3], row[4], row[5])


# ------------------------------------------------------------------------------- WebSocket


def stream_name(symbol: str) -> str:
    return f"{symbol.lower()}@kline_{INTERVAL}"


def stream_path(symbols: Iterable[str]) -> str:
    """``/ws/<stream>`` for one symbol, ``/stream?streams=a/b`` (wrapped events) for several."""
    names = list(dict.fromkeys(stream_name(s) for s in symbols))
    if not names:
        raise ValueError("stream_path needs at least one symbol")
    if len(names) == 1:
        return f"/ws/{names[0]}"
    return f"/stream?streams={'/'.join(names)}"


def parse_ws_message(text: str) -> WsMessage:
    """Classify one text frame. Never raises: anything unexpected is ``Malformed``."""
    try:
        return _ws_message(text)
    except _Bad as exc:
        return Malformed(str(exc), text)
    except Exception as exc:  # a parser must not take the feed down
        return Malformed(f"unexpected {type(exc).__name__}: {exc}", str(text))


def _ws_message(text: str) -> WsMessage:
    try:
        doc = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise _Bad(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _Bad("message is not a JSON object")
    if ("stream" in doc) != ("data" in doc):
        raise _Bad(f"combined-stream wrapper lacks {'data' if 'stream' in doc else 'stream'}")
    if "stream" in doc and "data" in doc:
        stream, doc = doc["stream"], doc["data"]
        if not isinstance(stream, str) or not isinstance(doc, dict):
            raise _Bad("combined-stream wrapper has wrong types")
        update = _kline_update(doc)
        if stream != stream_name(update.symbol):
            raise _Bad(f"stream {stream!r} does not carry {update.symbol}")
        return update
    if "error" in doc:
        error = doc["error"]
        if not isinstance(error, dict):
            raise _Bad("error is not an object")
        code, msg, ident = error.get("code"), error.get("msg"), doc.get("id")
        return WsError(
            code if _is_int(code) else None,
            msg if isinstance(msg, str) else json.dumps(error),
            ident if _is_int(ident) else None,
        )
    if "result" in doc and "id" in doc:
        if not _is_int(doc["id"]):
            raise _Bad("id is not an integer")
        return SubscribeResult(doc["id"], doc["result"])
    return _kline_update(doc)


def _kline_update(doc: dict[str, Any]) -> KlineUpdate:
    if doc.get("e") != "kline":
        raise _Bad(f"not a kline event: e={str(doc.get('e'))[:40]!r}")
    symbol, k = doc.get("s"), doc.get("k")
    if not isinstance(symbol, str) or not symbol or not isinstance(k, dict):
        raise _Bad("kline event lacks s or k")
    if k.get("s") != symbol:
        raise _Bad("k.s does not match s")
    if k.get("i") != INTERVAL:
        raise _Bad(f"interval {str(k.get('i'))[:20]!r} is not {INTERVAL}")
    closed = k.get("x")
    if not isinstance(closed, bool):
        raise _Bad("k.x is not a boolean")
    open_ms, _ = _times(k.get("t"), k.get("T"))
    bar = _bar(symbol, open_ms, k.get("o"), k.get("h"), k.get("l"), k.get("c"), k.get("v"))
    return KlineUpdate(symbol, bar if closed else None, closed, open_ms)


# ---------------------------------------------------------------------------------- fields


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _times(open_ms: Any, close_ms: Any) -> tuple[int, int]:
    if not _is_int(open_ms) or not _is_int(close_ms):
        raise _Bad("open/close time is not an integer")
    if not 0 <= open_ms <= _MAX_MS - MINUTE_MS:
        raise _Bad(f"open time {open_ms} out of range")
    if open_ms % MINUTE_MS:
        raise _Bad(f"open time {open_ms} is not on a minute boundary")
    if close_ms != open_ms + MINUTE_MS - 1:
        raise _Bad(f"close time {close_ms} does not end the minute opened at {open_ms}")
    return open_ms, close_ms


def _number(name: str, value: Any) -> float:
    # Binance sends every price and volume as a decimal string; anything else is malformed.
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise _Bad(f"{name} is not a decimal string: {str(value)[:40]!r}")
    number = float(value)
    if not math.isfinite(number):
        raise _Bad(f"{name} is not finite")
    return number


def _bar(symbol: str, open_ms: int, o: Any, h: Any, lo: Any, c: Any, v: Any) -> Bar:
    values = [_number(n, x) for n, x in zip("ohlcv", (o, h, lo, c, v), strict=True)]
    try:
        return Bar(symbol, _EPOCH + timedelta(milliseconds=open_ms), *values)
    except InvalidMarketData as exc:
        raise _Bad(str(exc)) from None


def _text(body: bytes | str) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def _dump(value: Any) -> str:
    try:
        return json.dumps(value)[:RAW_LIMIT]
    except (TypeError, ValueError):
        return repr(value)[:RAW_LIMIT]


def open_ms_of(bar: Bar) -> int:
    return (bar.ts - _EPOCH) // timedelta(milliseconds=1)


# --------------------------------------------------------------------------------- tracker


class ClosedKlineTracker:
    """Per symbol, the newest closed bar passed on; lets through only strictly newer ones."""

    def __init__(self, last: Mapping[str, int] | None = None) -> None:
        self._last: dict[str, int] = dict(last or {})

    def accept(self, bars: Iterable[Bar]) -> tuple[list[Bar], list[Rejected]]:
        """New bars in time order; duplicates ("duplicate") and older ("out of order") rejected."""
        fresh: list[Bar] = []
        rejected: list[Rejected] = []
        for bar in sorted(bars, key=lambda b: b.ts):
            open_ms = open_ms_of(bar)
            last = self._last.get(bar.symbol)
            if last is not None and open_ms <= last:
                reason = "duplicate" if open_ms == last else "out of order"
                rejected.append(Rejected(reason, f"{bar.symbol} {bar.ts.isoformat()}"))
                continue
            self._last[bar.symbol] = open_ms
            fresh.append(bar)
        return fresh, rejected

    def last(self, symbol: str) -> int | None:
        """Open time (ms) of the newest closed bar passed on for ``symbol``."""
        return self._last.get(symbol)

    def gap_start(self, symbol: str, now_ms: int) -> int | None:
        """Open time from which to backfill over REST, or ``None``.

        ``None`` when no bar was seen yet (the caller does its initial load) or when no whole
        kline is missing: the kline after the last one has not closed (``closeTime < now_ms``).
        """
        last = self._last.get(symbol)
        if last is None:
            return None
        newest_closed = (now_ms // MINUTE_MS) * MINUTE_MS - MINUTE_MS
        return last + MINUTE_MS if newest_closed > last else None


def should_reconnect(connected_at_ms: int, now_ms: int, margin_s: float = 300) -> bool:
    """True once a connection is within ``margin_s`` of Binance's 24 h connection limit."""
    return now_ms - connected_at_ms >= (MAX_CONNECTION_S - margin_s) * 1000
