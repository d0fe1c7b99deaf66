"""Hostile input at scale, OKX and Binance: generated websocket pushes and REST answers (good
ones broken by up to three mutations: a field set to a hostile value, a field deleted, an
unknown key added, the text truncated) go through our parsers. None crashes.

A clear refusal, as checked here:
- websocket: the parser returns (never raises) one of its message kinds; a refused message is a
  ``Malformed`` and a refused row a ``Rejected``, each with a non-empty reason that is not the
  parser's catch-all ("unexpected <ExceptionType>", which marks a bug in our code);
- REST: the parser returns a batch (bad rows as ``Rejected``) or raises the venue's own error
  (``OkxError`` / ``BinanceError``) with a message; nothing else escapes;
- a message broken by one mutation that is refused names what is wrong: its reason contains the
  field's name (or the structure it broke), from the words each path lists below;
- whatever is accepted is a valid bar (finite, positive, high >= low...).

Profile and case counts: tests/fuzz.py (``TRADEPLANE_FUZZ_PROFILE=soak`` for 10,000 each).
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import Path, fuzz_settings, mutate, run_cases
from tradeplane.core.model import Bar
from tradeplane.venues.binance import klines as bn
from tradeplane.venues.okx import candles as okx
from tradeplane.venues.source import Rejected

T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
MIN = 60_000
PRICE_WORDS = {"open", "high", "low", "close", "inconsistent", "volume", "vol"}


def clear_reason(reason: object) -> str:
    assert isinstance(reason, str) and reason.strip(), f"no reason: {reason!r}"
    assert not reason.startswith("unexpected "), f"a crash caught by the catch-all: {reason}"
    return reason.lower()


def assert_valid_bar(b: Bar) -> None:
    for value in (b.open, b.high, b.low, b.close):
        assert math.isfinite(value) and value > 0
    assert math.isfinite(b.volume) and b.volume >= 0
    assert b.high >= max(b.open, b.close, b.low) and b.low <= min(b.open, b.close)


# -- mutations ----------------------------------------------------------------------------------


def to_text(data: st.DataObject, doc: Any) -> tuple[str, bool]:
    """The JSON text of ``doc``, sometimes cut short; whether it was cut."""
    text = json.dumps(doc, allow_nan=True)
    if data.draw(st.integers(0, 9), label="truncate?") == 0:
        return text[: data.draw(st.integers(0, max(0, len(text) - 1)), label="cut")], True
    return text, False


def assert_names(reasons: list[str], made: list[tuple[str, Path]], words: set[str]) -> None:
    """A message broken once and refused: some reason names what the mutation touched."""
    if len(made) != 1 or not reasons or made[0][0] == "add":
        return  # several faults (any may be named first), none, or a tolerated unknown key
    assert any(w in r for r in reasons for w in words), (made, reasons, words)


# -- OKX ----------------------------------------------------------------------------------------

OKX_FIELDS = [
    {"ts"},
    {"open"} | PRICE_WORDS,
    {"high"} | PRICE_WORDS,
    {"low"} | PRICE_WORDS,
    {"close"} | PRICE_WORDS,
    {"vol"} | PRICE_WORDS,
    {"volccy"},
    {"volccyquote"},
    {"confirm"},
]
OKX_ROW_WORDS = {"row", "fields", "duplicate", "stale"}


def okx_row(ts: int, confirm: str = "1") -> list[str]:
    return [str(ts), "100", "101", "99", "100.5", "2.5", "250", "250", confirm]


def okx_words(path: Path) -> set[str]:
    """What a refusal of a push broken at ``path`` must mention."""
    if path[0] == "data":
        if len(path) == 1:
            return {"data", "push", "row"}
        if len(path) == 2:
            return OKX_ROW_WORDS
        index = path[2]
        return (OKX_FIELDS[index] if index < len(OKX_FIELDS) else set()) | OKX_ROW_WORDS
    if path[0] == "arg":
        return {"arg", "candle1m", "push", "event"}
    if path[0] in ("code", "msg", "event"):
        return {"code", "msg", "event", "subscribe", "arg"}
    return {"push", "event"}


okx_docs = st.one_of(
    st.lists(st.integers(0, 5), min_size=1, max_size=3).map(
        lambda minutes: {
            "arg": {"channel": "candle1m", "instId": "BTC-USDT"},
            "data": [okx_row(T0 + m * MIN, "1" if m else "0") for m in minutes],
        }
    ),
    st.just({"event": "subscribe", "arg": {"channel": "candle1m", "instId": "BTC-USDT"}}),
    st.just({"event": "error", "code": "60012", "msg": "Invalid request"}),
    st.just({"event": "notice", "code": "64008", "msg": "service upgrade"}),
)


def check_okx_push(text: str, made: list[tuple[str, Path]], cut: bool) -> None:
    msg = okx.parse_ws_message(text)
    kinds = (okx.Pong, okx.Subscribed, okx.WsError, okx.Notice, okx.CandlePush, okx.Malformed)
    assert isinstance(msg, kinds)
    reasons: list[str] = []
    if isinstance(msg, okx.Malformed):
        reasons.append(clear_reason(msg.reason))
        if cut:
            assert "json" in reasons[0] or "object" in reasons[0], reasons
    if isinstance(msg, okx.CandlePush):
        reasons.extend(clear_reason(r.reason) for r in msg.batch.rejected)
        for bar in msg.batch.bars:
            assert_valid_bar(bar)
    if not cut and made:
        assert_names(reasons, made, okx_words(made[0][1]))


def test_fuzz_okx_websocket_messages_then_each_parsed_or_refused_naming_the_field() -> None:
    counter = [0]

    @fuzz_settings()
    @given(st.data(), okx_docs)
    def case(data: st.DataObject, doc: dict[str, Any]) -> None:
        counter[0] += 1
        broken, made = mutate(data, doc)
        text, cut = to_text(data, broken)
        check_okx_push(text, made, cut)

    run_cases(case, counter)


def test_fuzz_okx_rest_answers_then_a_batch_or_an_okx_error() -> None:
    counter = [0]

    @fuzz_settings()
    @given(
        st.data(),
        st.lists(st.integers(0, 5), max_size=4),
        st.sampled_from([200, 200, 200, 204, 400, 418, 429, 500, 0, -1, 999]),
        st.one_of(st.none(), st.sampled_from(["1", "-5", "nan", "inf", "abc", "1e999", ""])),
    )
    def case(data: st.DataObject, minutes: list[int], status: int, retry_after: str | None) -> None:
        counter[0] += 1
        doc = {"code": "0", "msg": "", "data": [okx_row(T0 + m * MIN) for m in minutes]}
        broken, _ = mutate(data, doc)
        text, _cut = to_text(data, broken)
        body: str | bytes = text.encode("utf-8", "surrogatepass") if status == 204 else text
        try:
            batch = okx.parse_rest_candles("BTC-USDT", status, body, retry_after)
        except okx.OkxError as exc:
            assert isinstance(exc.code, str) and exc.code and str(exc).strip()
            if isinstance(exc, okx.OkxRateLimited):
                assert math.isfinite(exc.retry_after_s) and exc.retry_after_s >= 0
            return
        assert all(isinstance(r, Rejected) and clear_reason(r.reason) for r in batch.rejected)
        for bar in batch.bars:
            assert_valid_bar(bar)

    run_cases(case, counter)


# -- Binance ------------------------------------------------------------------------------------

BN_K_WORDS = {
    # t and T must make one minute: a mismatch names both ("close time .. opened at ..").
    "t": {"open time", "open/close time", "opened at"},
    "T": {"close time", "open/close time"},
    "s": {"k.s"},
    "i": {"interval"},
    "o": {"o is"} | PRICE_WORDS,
    "h": {"h is"} | PRICE_WORDS,
    "l": {"l is"} | PRICE_WORDS,
    "c": {"c is"} | PRICE_WORDS,
    "v": {"v is"} | PRICE_WORDS,
    "x": {"k.x"},
}


def kline_doc(m: int, closed: bool) -> dict[str, Any]:
    t = T0 + m * MIN
    k = {"t": t, "T": t + MIN - 1, "s": "BTCUSDT", "i": "1m", "o": "100", "c": "100.5",
         "h": "101", "l": "99", "v": "1", "x": closed, "n": 10, "q": "100"}  # fmt: skip
    return {"e": "kline", "E": t + MIN, "s": "BTCUSDT", "k": k}


def binance_words(path: Path, wrapped: bool) -> set[str]:
    if wrapped:
        if path[0] == "stream":
            return {"stream", "wrapper"}
        path = path[1:] if len(path) > 1 else ()
        if not path:
            return {"wrapper", "kline", "data"}
    if path[0] == "k":
        return BN_K_WORDS.get(path[1], set()) if len(path) > 1 else {"lacks s or k", "k."}
    if path[0] == "s":
        return {"lacks s", "k.s", "stream"}
    if path[0] == "e":
        return {"not a kline event"}
    return {"kline"}  # E: unused (accepted)


binance_docs = st.tuples(st.integers(0, 5), st.booleans(), st.booleans()).map(
    lambda args: (
        {"stream": "btcusdt@kline_1m", "data": kline_doc(args[0], args[1])}
        if args[2]
        else kline_doc(args[0], args[1]),
        args[2],
    )
)


def test_fuzz_binance_websocket_messages_then_each_parsed_or_refused_naming_the_field() -> None:
    counter = [0]

    @fuzz_settings()
    @given(st.data(), binance_docs)
    def case(data: st.DataObject, doc_wrapped: tuple[dict[str, Any], bool]) -> None:
        counter[0] += 1
        doc, wrapped = doc_wrapped
        broken, made = mutate(data, doc)
        text, cut = to_text(data, broken)
        msg = bn.parse_ws_message(text)
        assert isinstance(msg, bn.KlineUpdate | bn.SubscribeResult | bn.WsError | bn.Malformed)
        if isinstance(msg, bn.Malformed):
            reason = clear_reason(msg.reason)
            if not cut and made:
                assert_names([reason], made, binance_words(made[0][1], wrapped))
        elif isinstance(msg, bn.KlineUpdate) and msg.bar is not None:
            assert_valid_bar(msg.bar)

    run_cases(case, counter)


def test_fuzz_binance_rest_answers_then_a_batch_or_a_binance_error() -> None:
    counter = [0]

    @fuzz_settings()
    @given(
        st.data(),
        st.lists(st.integers(0, 5), max_size=4),
        st.sampled_from([200, 200, 200, 400, 418, 429, 500, 0, -1]),
        st.one_of(st.none(), st.sampled_from(["1", "-5", "nan", "inf", "abc", "1e999", ""])),
    )
    def case(data: st.DataObject, minutes: list[int], status: int, retry_after: str | None) -> None:
        counter[0] += 1
        rows = [
            [T0 + m * MIN, "100", "101", "99", "100.5", "1", T0 + m * MIN + MIN - 1, "100", 5]
            for m in minutes
        ]
        doc: Any = rows if status == 200 else {"code": -1003, "msg": "Too many requests"}
        broken, _ = mutate(data, doc)
        text, _cut = to_text(data, broken)
        try:
            batch = bn.parse_rest_klines("btcusdt", status, text, now_ms=T0 + 10 * MIN,
                                         retry_after=retry_after)  # fmt: skip
        except bn.BinanceError as exc:
            assert str(exc).strip() and exc.status == status
            if isinstance(exc, bn.BinanceRateLimited):
                assert math.isfinite(exc.retry_after_s) and exc.retry_after_s >= 0
            return
        assert status == 200
        assert all(clear_reason(r.reason) for r in batch.rejected)
        for bar in batch.bars:
            assert_valid_bar(bar)

    run_cases(case, counter)
