"""OKX v5 public 1-minute candles: request paths, REST/WebSocket parsers and bar bookkeeping.

Pure: no IO and no clock reads (callers pass ``now_ms``). The wire formats are those of
``/api/v5/market/candles`` and the ``candle1m`` channel on ``/ws/v5/business``; every row is
``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`` as strings, ``ts`` the bar OPEN time in
epoch milliseconds, ``confirm`` "1" for a closed bar and "0" for the bar still forming.

Nothing received from the venue is trusted: a malformed row becomes a ``Rejected`` with a reason
and never raises; a malformed WebSocket message becomes ``Malformed``. Only REST-level failures
(HTTP 429, a non-JSON body, a non-"0" ``code``) raise, as ``OkxError`` / ``OkxRateLimited``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tradeplane.core.errors import InvalidMarketData, TransientError
from tradeplane.core.model import Bar
from tradeplane.venues.source import RAW_LIMIT, Malformed, Rejected

BAR = "1m"
CHANNEL = "candle1m"
BUSINESS_PATH = "/ws/v5/business"
CANDLES_PATH = "/api/v5/market/candles"
PING = "ping"
PONG = "pong"
MAX_LIMIT = 300
RATE_LIMITED_CODE = "50011"
MINUTE_MS = 60_000
DEFAULT_RETRY_AFTER_S = 1.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Open times beyond year 9999 cannot be represented as a datetime.
_MAX_TS_MS = 253_402_300_740_000
_TS_RE = re.compile(r"[0-9]{1,15}")
# Plain decimals only: rejects "nan", "inf", "1_0", " 1", "0x1" that float() would accept.
_NUM_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_ROW_FIELDS = ("ts", "open", "high", "low", "close", "vol", "volCcy", "volCcyQuote", "confirm")
_ROW_LEN = len(_ROW_FIELDS)


class OkxError(Exception):
    """OKX answered with an error (``code`` is OKX's code, or "parse"/"http" for ours)."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"OKX error {code}: {msg}")
        self.code = code
        self.msg = msg


class OkxRateLimited(OkxError, TransientError):
    """Code 50011 or HTTP 429: wait ``retry_after_s`` then retry."""

    def __init__(
        self,
        code: str = RATE_LIMITED_CODE,
        msg: str = "rate limited",
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
    ) -> None:
        super().__init__(code, msg)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class CandleBatch:
    """The outcome of one REST answer or one WebSocket push for one instrument.

    ``bars`` are closed bars only, oldest first, de-duplicated by open time. ``open_bar_ts`` is
    the open time of the evolving (confirm "0") bar if the batch held one, and ``open_bar`` its
    current values. Every input row ends up in exactly one of ``bars``, ``open_bar`` or
    ``rejected``.
    """

    symbol: str
    bars: list[Bar]
    open_bar_ts: datetime | None
    rejected: list[Rejected]
    open_bar: Bar | None = None


def _raw(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return value[: RAW_LIMIT * 4].decode("utf-8", errors="replace")[:RAW_LIMIT]
    try:
        text = value if isinstance(value, str) else json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text[:RAW_LIMIT]


def ms_to_datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(milliseconds=1)


# ---------------------------------------------------------------- REST


def candles_path(
    inst_id: str,
    *,
    limit: int = MAX_LIMIT,
    after_ms: int | None = None,
    before_ms: int | None = None,
) -> str:
    """Path and query for ``GET /api/v5/market/candles`` (1m bars, ``limit`` clamped 1..300).

    ``after_ms`` asks for bars OLDER than that open time, ``before_ms`` for NEWER ones.
    """
    params: list[tuple[str, str]] = [
        ("instId", inst_id),
        ("bar", BAR),
        ("limit", str(max(1, min(MAX_LIMIT, int(limit))))),
    ]
    if after_ms is not None:
        params.append(("after", str(int(after_ms))))
    if before_ms is not None:
        params.append(("before", str(int(before_ms))))
    return f"{CANDLES_PATH}?{urlencode(params)}"


def _retry_after_s(header: str | None) -> float:
    if header is None:
        return DEFAULT_RETRY_AFTER_S
    try:
        value = float(header.strip())
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
    return value if math.isfinite(value) and value >= 0 else DEFAULT_RETRY_AFTER_S


def _code(value: object) -> str | None:
    """OKX codes are non-empty strings; tolerate integers."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def parse_rest_candles(
    inst_id: str, status: int, body: bytes | str, retry_after: str | None = None
) -> CandleBatch:
    """Parse one ``/api/v5/market/candles`` answer (rows newest first) into a ``CandleBatch``.

    Raises ``OkxRateLimited`` on HTTP 429 or code 50011 (``retry_after`` is the Retry-After
    header, if any), ``OkxError("parse", ..)`` when the body is not a JSON object with a list
    ``data``, ``OkxError(code, msg)`` for any other non-"0" code and ``OkxError("http", ..)``
    for a non-2xx status with code "0". Malformed rows never raise: they are ``rejected``.
    """
    if status == 429:
        raise OkxRateLimited(
            msg=f"HTTP 429: {_raw(body)}", retry_after_s=_retry_after_s(retry_after)
        )
    try:
        doc: Any = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OkxError("parse", f"HTTP {status}, body is not JSON ({exc}): {_raw(body)}") from None
    if not isinstance(doc, dict):
        raise OkxError("parse", f"HTTP {status}, body is not a JSON object: {_raw(body)}")
    code = _code(doc.get("code"))
    msg = doc.get("msg")
    msg = msg if isinstance(msg, str) else ""
    if code is None:
        raise OkxError("parse", f"HTTP {status}, no string code: {_raw(body)}")
    if code == RATE_LIMITED_CODE:
        raise OkxRateLimited(code, msg, _retry_after_s(retry_after))
    if code != "0":
        raise OkxError(code, msg)
    if not 200 <= status < 300:
        raise OkxError("http", f"HTTP {status}: {_raw(body)}")
    data = doc.get("data")
    if not isinstance(data, list):
        raise OkxError("parse", f"data is not a list: {_raw(body)}")
    return parse_rows(inst_id, data)


# ---------------------------------------------------------------- rows


def _parse_row(symbol: str, row: object) -> tuple[Bar, bool] | str:
    """(bar, closed) or the reason the row is rejected."""
    if not isinstance(row, list):
        return f"row is not a list but {type(row).__name__}"
    if len(row) != _ROW_LEN:
        return f"row has {len(row)} fields, expected {_ROW_LEN}"
    for index, item in enumerate(row):
        if not isinstance(item, str):
            return f"{_ROW_FIELDS[index]} (field {index}) is not a string but {type(item).__name__}"
    ts_s, o_s, h_s, l_s, c_s, vol_s, _vol_ccy, _vol_quote, confirm = row
    if not _TS_RE.fullmatch(ts_s):
        return f"ts {ts_s[:40]!r} is not an integer of milliseconds"
    ts_ms = int(ts_s)
    if ts_ms > _MAX_TS_MS:
        return f"ts {ts_ms} is out of range"
    if ts_ms % MINUTE_MS:
        return f"ts {ts_ms} is not on a minute boundary"
    if confirm not in ("0", "1"):
        return f"confirm {confirm[:40]!r} is neither '0' nor '1'"
    values: list[float] = []
    for name, text in (("open", o_s), ("high", h_s), ("low", l_s), ("close", c_s), ("vol", vol_s)):
        if not _NUM_RE.fullmatch(text):
            return f"{name} {text[:40]!r} is not a decimal number"
        value = float(text) + 0.0  # no -0.0
        if not math.isfinite(value):
            return f"{name} {text[:40]!r} is not finite"
        values.append(value)
    try:
        bar = Bar(symbol, ms_to_datetime(ts_ms), *values)
    except InvalidMarketData as exc:
        return str(exc)
    return bar, confirm == "1"


def parse_rows(symbol: str, rows: Sequence[object]) -> CandleBatch:
    """Rows in any order -> closed bars oldest first, plus the newest evolving bar.

    A second row for an open time already taken is rejected as a duplicate (the first one
    wins: OKX sends newest data first); an evolving row older than another evolving row, or
    not newer than a closed bar of the batch, is rejected as stale.
    """
    rejected: list[Rejected] = []
    closed: dict[datetime, Bar] = {}
    evolving: list[tuple[Bar, object]] = []
    for row in rows:
        parsed = _parse_row(symbol, row)
        if isinstance(parsed, str):
            rejected.append(Rejected(parsed, _raw(row)))
            continue
        bar, is_closed = parsed
        if not is_closed:
            evolving.append((bar, row))
        elif bar.ts in closed:
            rejected.append(Rejected("duplicate open time", _raw(row)))
        else:
            closed[bar.ts] = bar
    open_bar: Bar | None = None
    newest_closed = max(closed, default=None)
    for bar, row in sorted(evolving, key=lambda item: item[0].ts, reverse=True):
        if open_bar is None and (newest_closed is None or bar.ts > newest_closed):
            open_bar = bar
        else:
            rejected.append(Rejected("stale evolving row", _raw(row)))
    return CandleBatch(
        symbol=symbol,
        bars=[closed[ts] for ts in sorted(closed)],
        open_bar_ts=open_bar.ts if open_bar else None,
        rejected=rejected,
        open_bar=open_bar,
    )


# ---------------------------------------------------------------- WebSocket


def subscribe_message(inst_ids: Sequence[str], req_id: str) -> str:
    """``{"id":..,"op":"subscribe","args":[{"channel":"candle1m","instId":..},..]}``."""
    args = [{"channel": CHANNEL, "instId": inst_id} for inst_id in inst_ids]
    return json.dumps({"id": req_id, "op": "subscribe", "args": args}, separators=(",", ":"))


@dataclass(frozen=True)
class Pong:
    """The literal text ``pong`` answering our ``ping``."""


@dataclass(frozen=True)
class Subscribed:
    inst_id: str


@dataclass(frozen=True)
class WsError:
    code: str
    msg: str


@dataclass(frozen=True)
class Notice:
    """E.g. code 64008: a service upgrade will disconnect in 60 s."""

    code: str
    msg: str


@dataclass(frozen=True)
class CandlePush:
    batch: CandleBatch


WsMessage = Pong | Subscribed | WsError | Notice | CandlePush | Malformed


def parse_ws_message(text: str) -> WsMessage:
    """Classify one text frame from ``/ws/v5/business``. Never raises."""
    if text == PONG:
        return Pong()
    try:
        doc: Any = json.loads(text)
    except (ValueError, RecursionError, TypeError) as exc:
        return Malformed(f"not JSON: {exc}"[:RAW_LIMIT], _raw(text))
    if not isinstance(doc, dict):
        return Malformed(f"not a JSON object but {type(doc).__name__}", _raw(text))
    event = doc.get("event")
    if event is not None:
        return _parse_event(event, doc, text)
    arg, data = doc.get("arg"), doc.get("data")
    if arg is None or data is None:
        return Malformed("neither an event nor a push", _raw(text))
    inst_id = _candle_arg(arg)
    if inst_id is None:
        return Malformed("push arg is not a candle1m channel with an instId", _raw(text))
    if not isinstance(data, list):
        return Malformed("push data is not a list", _raw(text))
    return CandlePush(parse_rows(inst_id, data))


def _candle_arg(arg: object) -> str | None:
    if not isinstance(arg, dict) or arg.get("channel") != CHANNEL:
        return None
    inst_id = arg.get("instId")
    return inst_id if isinstance(inst_id, str) and inst_id else None


def _parse_event(event: object, doc: dict[str, Any], text: str) -> WsMessage:
    if event == "subscribe":
        inst_id = _candle_arg(doc.get("arg"))
        if inst_id is None:
            return Malformed("subscribe ack without a candle1m arg", _raw(text))
        return Subscribed(inst_id)
    if event in ("error", "notice"):
        code = _code(doc.get("code"))
        msg = doc.get("msg", "")
        if code is None or not isinstance(msg, str):
            return Malformed(f"{event} without a string code and msg", _raw(text))
        return WsError(code, msg) if event == "error" else Notice(code, msg)
    return Malformed(f"unknown event {_raw(event)[:40]}", _raw(text))


# ---------------------------------------------------------------- bookkeeping


def _bar_raw(bar: Bar) -> str:
    return _raw(
        f"{bar.symbol} {bar.ts.isoformat()} o={bar.open} h={bar.high} "
        f"l={bar.low} c={bar.close} v={bar.volume}"
    )


@dataclass
class ClosedBarTracker:
    """Per symbol, the newest closed bar open time passed on; drops anything not newer."""

    _last: dict[str, datetime] = field(default_factory=dict)

    def accept(self, bars: Iterable[Bar]) -> tuple[list[Bar], list[Rejected]]:
        """Bars strictly newer than the last one per symbol, in time order; the rest rejected
        with reason "duplicate" (same open time) or "out of order" (older)."""
        passed: list[Bar] = []
        rejected: list[Rejected] = []
        for bar in sorted(bars, key=lambda b: b.ts):
            last = self._last.get(bar.symbol)
            if last is not None and bar.ts <= last:
                reason = "duplicate" if bar.ts == last else "out of order"
                rejected.append(Rejected(reason, _bar_raw(bar)))
                continue
            self._last[bar.symbol] = bar.ts
            passed.append(bar)
        return passed, rejected

    def last(self, symbol: str) -> datetime | None:
        return self._last.get(symbol)

    def seed(self, symbol: str, ts: datetime) -> None:
        """Bars up to ``ts`` were delivered before (a restarted feed): never again."""
        if symbol not in self._last or self._last[symbol] < ts:
            self._last[symbol] = ts

    def gap_start(self, symbol: str, now_ms: int, *, grace_ms: int = 0) -> int | None:
        """Open time (ms) from which to backfill over REST, or None.

        With last closed bar L, the bar at L+60 s is missing once it has fully ended unseen,
        i.e. when ``now_ms - grace_ms >= L + 120 s``; ``grace_ms`` allows for the venue's
        delay in pushing a just-closed bar. None too when nothing was seen yet for ``symbol``
        (the caller does an initial load instead).
        """
        last = self._last.get(symbol)
        if last is None:
            return None
        start = datetime_to_ms(last) + MINUTE_MS
        return start if now_ms - grace_ms >= start + MINUTE_MS else None


@dataclass
class EvolvingBars:
    """Closes bars whose confirm="1" row never arrived.

    OKX's advice: treat a bar as closed on ``confirm == "1"`` OR when a push with a newer open
    time arrives. This keeps the last evolving (confirm "0") bar per symbol. When a push
    carries a NEWER open time (evolving or closed) while the kept bar's own confirm row was
    never seen, the kept bar is returned as closed, with the last values seen for it (which may
    lag the venue's final values by up to one push). If its confirm row turns up later, a
    ``ClosedBarTracker`` drops it as a duplicate.
    """

    _open: dict[str, Bar] = field(default_factory=dict)

    def on_push(self, batch: CandleBatch) -> list[Bar]:
        kept = self._open.get(batch.symbol)
        implied: list[Bar] = []
        if kept is not None:
            confirmed = any(bar.ts == kept.ts for bar in batch.bars)
            newest = max(
                [bar.ts for bar in batch.bars] + ([batch.open_bar_ts] if batch.open_bar_ts else []),
                default=None,
            )
            if confirmed or (newest is not None and newest > kept.ts):
                del self._open[batch.symbol]
                if not confirmed:
                    implied.append(kept)
        new_open = batch.open_bar
        if new_open is not None:
            current = self._open.get(batch.symbol)
            if current is None or new_open.ts >= current.ts:
                self._open[batch.symbol] = new_open
        return implied

    def current(self, symbol: str) -> Bar | None:
        return self._open.get(symbol)
