"""Binance kline parsing and closed-bar tracking: pure, no IO, time passed in as ``now_ms``."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeplane.core.model import Bar
from tradeplane.venues.binance.klines import (
    MAX_CONNECTION_S,
    BinanceError,
    BinanceRateLimited,
    ClosedKlineTracker,
    KlineUpdate,
    Malformed,
    Rejected,
    SubscribeResult,
    WsError,
    klines_path,
    parse_rest_klines,
    parse_ws_message,
    should_reconnect,
    stream_name,
    stream_path,
)

MIN = 60_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def row(
    open_ms: int,
    o: Any = "100.0",
    h: Any = "101.5",
    lo: Any = "99.0",
    c: Any = "100.5",
    v: Any = "3.2",
    close_ms: int | None = None,
) -> list[Any]:
    close = open_ms + MIN - 1 if close_ms is None else close_ms
    return [open_ms, o, h, lo, c, v, close, "321.0", 17, "1.0", "100.0", "0"]


def body(*rows: Any) -> str:
    return json.dumps(list(rows))


def kline_event(open_ms: int = T0, *, closed: bool = True, **k_overrides: Any) -> dict[str, Any]:
    k = {
        "t": open_ms,
        "T": open_ms + MIN - 1,
        "s": "BTCUSDT",
        "i": "1m",
        "f": 1,
        "L": 9,
        "o": "100.0",
        "c": "100.5",
        "h": "101.5",
        "l": "99.0",
        "v": "3.2",
        "n": 9,
        "x": closed,
        "q": "321.0",
        "V": "1.0",
        "Q": "100.0",
        "B": "0",
    }
    k.update(k_overrides)
    return {"e": "kline", "E": open_ms + MIN, "s": "BTCUSDT", "k": k}


def bar(open_ms: int, symbol: str = "BTCUSDT") -> Bar:
    ts = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
    return Bar(symbol, ts, 100.0, 101.5, 99.0, 100.5, 3.2)


# --------------------------------------------------------------------------------- REST path


def test_klines_path_defaults_to_1m_and_1000_rows_with_upper_case_symbol() -> None:
    assert klines_path("btcusdt") == "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000"


@pytest.mark.parametrize(("limit", "sent"), [(0, 1), (-5, 1), (1, 1), (500, 500), (5000, 1000)])
def test_klines_path_clamps_limit_to_1_through_1000(limit: int, sent: int) -> None:
    assert klines_path("BTCUSDT", limit=limit).endswith(f"&limit={sent}")


def test_klines_path_adds_start_and_end_time_only_when_given() -> None:
    assert klines_path("ETHUSDT", limit=10, start_ms=T0, end_ms=T0 + MIN) == (
        f"/api/v3/klines?symbol=ETHUSDT&interval=1m&limit=10&startTime={T0}&endTime={T0 + MIN}"
    )
    assert "endTime" not in klines_path("ETHUSDT", start_ms=T0)
    assert "startTime" not in klines_path("ETHUSDT", end_ms=T0)


# ------------------------------------------------------------------------------- REST parsing


def test_rest_rows_become_bars_with_open_time_ts_and_float_fields() -> None:
    batch = parse_rest_klines("BTCUSDT", 200, body(row(T0)), now_ms=T0 + 2 * MIN)
    assert batch.symbol == "BTCUSDT"
    assert batch.bars == [
        Bar("BTCUSDT", datetime(2024, 1, 1, tzinfo=UTC), 100, 101.5, 99, 100.5, 3.2)
    ]
    assert batch.rejected == []


def test_rest_still_open_last_kline_is_not_a_bar_and_not_rejected() -> None:
    now = T0 + 2 * MIN + 30_000  # the kline opened at T0+2min is still open
    batch = parse_rest_klines(
        "BTCUSDT", 200, body(row(T0), row(T0 + MIN), row(T0 + 2 * MIN)), now_ms=now
    )
    assert [b.ts.minute for b in batch.bars] == [0, 1]
    assert batch.rejected == []


def test_rest_kline_is_closed_only_once_close_time_is_strictly_before_now() -> None:
    close_ms = T0 + MIN - 1
    assert parse_rest_klines("BTCUSDT", 200, body(row(T0)), now_ms=close_ms).bars == []
    assert len(parse_rest_klines("BTCUSDT", 200, body(row(T0)), now_ms=close_ms + 1).bars) == 1


def test_rest_rows_in_any_order_come_out_oldest_first() -> None:
    rows = [row(T0 + 2 * MIN), row(T0), row(T0 + MIN)]
    batch = parse_rest_klines("BTCUSDT", 200, body(*rows), now_ms=T0 + 10 * MIN)
    assert [b.ts.minute for b in batch.bars] == [0, 1, 2]


def test_rest_duplicate_open_times_keep_one_bar_and_reject_the_rest() -> None:
    batch = parse_rest_klines(
        "BTCUSDT", 200, body(row(T0), row(T0), row(T0 + MIN)), now_ms=T0 + 10 * MIN
    )
    assert [b.ts.minute for b in batch.bars] == [0, 1]
    assert [r.reason for r in batch.rejected] == ["duplicate open time"]


def test_rest_accepts_bytes_and_lower_case_symbol() -> None:
    batch = parse_rest_klines("btcusdt", 200, body(row(T0)).encode(), now_ms=T0 + 2 * MIN)
    assert batch.symbol == "BTCUSDT"
    assert batch.bars[0].symbol == "BTCUSDT"


@pytest.mark.parametrize(
    ("bad_row", "reason_part"),
    [
        ([T0, "1", "1", "1"], "at least 7"),
        ({"t": T0}, "at least 7"),
        (row(T0, o="NaN"), "decimal"),
        (row(T0, c="Infinity"), "decimal"),
        (row(T0, h="1_000"), "decimal"),
        (row(T0, o=100.0), "decimal"),
        (row(T0, v=None), "decimal"),
        (row(T0, o="-5", lo="-6"), "> 0"),
        (row(T0, v="-1"), ">= 0"),
        (row(T0, o="0"), "> 0"),
        (row(T0, h="98", lo="99"), "inconsistent"),
        (row(T0, c="102"), "inconsistent"),
        (row(T0, o="1e400", h="1e400"), "finite"),
        ([str(T0), *row(T0)[1:]], "integer"),
        ([True, *row(T0)[1:]], "integer"),
        ([float(T0), *row(T0)[1:]], "integer"),
        (row(T0 + 1, close_ms=T0 + MIN), "minute boundary"),
        (row(T0, close_ms=T0 + 2 * MIN - 1), "does not end"),
        (row(-MIN), "out of range"),
        (row(10**20), "out of range"),
    ],
)
def test_rest_malformed_row_is_rejected_with_reason_and_others_still_parse(
    bad_row: Any, reason_part: str
) -> None:
    batch = parse_rest_klines("BTCUSDT", 200, body(row(T0 - MIN), bad_row), now_ms=T0 + 5 * MIN)
    assert [b.ts.minute for b in batch.bars] == [59]
    assert len(batch.rejected) == 1
    assert reason_part in batch.rejected[0].reason
    assert batch.rejected[0].raw


@pytest.mark.parametrize("text", ['{"code":0}', "not json", "[1, 2", '"x"', ""])
def test_rest_200_body_that_is_not_an_array_is_one_rejection_not_an_exception(text: str) -> None:
    batch = parse_rest_klines("BTCUSDT", 200, text, now_ms=T0)
    assert batch.bars == []
    assert len(batch.rejected) == 1


def test_rejected_raw_is_truncated_to_300_chars() -> None:
    batch = parse_rest_klines("BTCUSDT", 200, "x" * 1000, now_ms=T0)
    assert len(batch.rejected[0].raw) == 300
    assert len(Rejected("r", "y" * 301).raw) == 300


def test_rest_429_raises_rate_limited_with_retry_after_seconds() -> None:
    with pytest.raises(BinanceRateLimited) as info:
        parse_rest_klines(
            "BTCUSDT", 429, '{"code":-1003,"msg":"Too many requests"}', now_ms=T0, retry_after="7"
        )
    err = info.value
    assert (err.status, err.code, err.msg, err.retry_after_s, err.banned) == (
        429,
        -1003,
        "Too many requests",
        7.0,
        False,
    )
    assert isinstance(err, BinanceError)


@pytest.mark.parametrize("header", [None, "soon", "-3", "nan"])
def test_rest_429_without_a_usable_retry_after_waits_one_second(header: str | None) -> None:
    with pytest.raises(BinanceRateLimited) as info:
        parse_rest_klines("BTCUSDT", 429, b"", now_ms=T0, retry_after=header)
    assert info.value.retry_after_s == 1.0


def test_rest_418_is_a_ban_defaulting_to_sixty_seconds_or_retry_after() -> None:
    with pytest.raises(BinanceRateLimited) as info:
        parse_rest_klines("BTCUSDT", 418, '{"code":-1003,"msg":"banned"}', now_ms=T0)
    assert (info.value.banned, info.value.retry_after_s) == (True, 60.0)
    with pytest.raises(BinanceRateLimited) as info:
        parse_rest_klines("BTCUSDT", 418, "", now_ms=T0, retry_after="120")
    assert (info.value.banned, info.value.retry_after_s) == (True, 120.0)


def test_rest_other_error_status_raises_binance_error_with_json_code_and_msg() -> None:
    with pytest.raises(BinanceError) as info:
        parse_rest_klines("FOO", 400, '{"code":-1121,"msg":"Invalid symbol."}', now_ms=T0)
    assert not isinstance(info.value, BinanceRateLimited)
    assert (info.value.status, info.value.code, info.value.msg) == (400, -1121, "Invalid symbol.")


def test_rest_error_status_with_non_json_body_keeps_body_as_msg() -> None:
    with pytest.raises(BinanceError) as info:
        parse_rest_klines("BTCUSDT", 502, b"<html>Bad Gateway</html>", now_ms=T0)
    assert (info.value.status, info.value.code) == (502, None)
    assert "Bad Gateway" in info.value.msg


# -------------------------------------------------------------------------------- WebSocket


def test_stream_name_is_lower_case_symbol_at_kline_1m() -> None:
    assert stream_name("BTCUSDT") == "btcusdt@kline_1m"


def test_stream_path_is_raw_for_one_symbol_and_combined_for_several() -> None:
    assert stream_path(["BTCUSDT"]) == "/ws/btcusdt@kline_1m"
    assert stream_path(["BTCUSDT", "ethusdt", "BTCUSDT"]) == (
        "/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"
    )
    with pytest.raises(ValueError, match="at least one"):
        stream_path([])


def test_ws_closed_kline_carries_a_bar() -> None:
    msg = parse_ws_message(json.dumps(kline_event(T0, closed=True)))
    assert msg == KlineUpdate("BTCUSDT", bar(T0), closed=True, open_ms=T0)


def test_ws_open_kline_update_has_no_bar() -> None:
    msg = parse_ws_message(json.dumps(kline_event(T0, closed=False)))
    assert msg == KlineUpdate("BTCUSDT", None, closed=False, open_ms=T0)


def test_ws_combined_stream_wrapper_is_unwrapped() -> None:
    text = json.dumps({"stream": "btcusdt@kline_1m", "data": kline_event(T0)})
    assert parse_ws_message(text) == KlineUpdate("BTCUSDT", bar(T0), closed=True, open_ms=T0)


def test_ws_combined_stream_name_not_matching_payload_symbol_is_malformed() -> None:
    text = json.dumps({"stream": "ethusdt@kline_1m", "data": kline_event(T0)})
    assert isinstance(parse_ws_message(text), Malformed)


def test_ws_subscribe_reply_is_subscribe_result() -> None:
    assert parse_ws_message('{"result":null,"id":1}') == SubscribeResult(1, None)
    assert parse_ws_message('{"result":["a"],"id":2}') == SubscribeResult(2, ["a"])


def test_ws_error_reply_is_ws_error() -> None:
    text = '{"error":{"code":2,"msg":"Invalid request"},"id":4}'
    assert parse_ws_message(text) == WsError(2, "Invalid request", 4)


@pytest.mark.parametrize(
    "text",
    [
        '{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":',  # truncated
        "",
        "[]",
        "null",
        '"kline"',
        '{"result":null,"id":true}',
        '{"result":null,"id":"1"}',
        '{"error":"nope","id":1}',
        '{"e":"trade","s":"BTCUSDT"}',
        '{"foo":1}',
        '{"stream":"btcusdt@kline_1m","data":[1]}',
        json.dumps(kline_event(i="5m")),
        json.dumps(kline_event(o="NaN")),
        json.dumps(kline_event(c="nan", x=False)),
        json.dumps(kline_event(o="-100", l="-101")),
        json.dumps(kline_event(o=100.0)),
        json.dumps(kline_event(t=str(T0))),
        json.dumps(kline_event(T=T0 + 5)),
        json.dumps(kline_event(x="true")),
        json.dumps(kline_event(h="98")),
        json.dumps(kline_event(s="ETHUSDT")),
        json.dumps({**kline_event(), "k": "x"}),
        json.dumps({**kline_event(), "s": 5}),
    ],
)
def test_ws_anything_else_is_malformed_never_an_exception(text: str) -> None:
    msg = parse_ws_message(text)
    assert isinstance(msg, Malformed)
    assert msg.reason
    assert msg.raw == text[:300]


def test_ws_malformed_raw_is_truncated_to_300_chars() -> None:
    msg = parse_ws_message("{" + "x" * 1000)
    assert isinstance(msg, Malformed)
    assert len(msg.raw) == 300


# ---------------------------------------------------------------------------------- tracker


def test_tracker_passes_new_bars_in_time_order_and_remembers_the_newest() -> None:
    tracker = ClosedKlineTracker()
    fresh, rejected = tracker.accept([bar(T0 + MIN), bar(T0)])
    assert fresh == [bar(T0), bar(T0 + MIN)]
    assert rejected == []
    assert tracker.last("BTCUSDT") == T0 + MIN
    assert tracker.last("ETHUSDT") is None


def test_tracker_rejects_duplicates_and_older_bars() -> None:
    tracker = ClosedKlineTracker()
    tracker.accept([bar(T0 + MIN)])
    fresh, rejected = tracker.accept([bar(T0 + MIN), bar(T0), bar(T0 + 2 * MIN)])
    assert fresh == [bar(T0 + 2 * MIN)]
    assert sorted(r.reason for r in rejected) == ["duplicate", "out of order"]
    assert tracker.last("BTCUSDT") == T0 + 2 * MIN


def test_tracker_rejects_a_duplicate_within_one_batch() -> None:
    fresh, rejected = ClosedKlineTracker().accept([bar(T0), bar(T0)])
    assert fresh == [bar(T0)]
    assert [r.reason for r in rejected] == ["duplicate"]


def test_tracker_keeps_symbols_independent() -> None:
    tracker = ClosedKlineTracker()
    tracker.accept([bar(T0 + MIN, "BTCUSDT")])
    fresh, _ = tracker.accept([bar(T0, "ETHUSDT")])
    assert fresh == [bar(T0, "ETHUSDT")]


def test_tracker_can_start_from_known_last_open_times() -> None:
    tracker = ClosedKlineTracker({"BTCUSDT": T0})
    assert tracker.accept([bar(T0)])[0] == []


def test_gap_start_is_none_for_unseen_symbol_or_when_next_kline_is_not_closed_yet() -> None:
    tracker = ClosedKlineTracker({"BTCUSDT": T0})
    assert tracker.gap_start("ETHUSDT", T0 + 10 * MIN) is None
    # the kline opened at T0+1min closes at T0+2min-1: not yet missing until now > that
    assert tracker.gap_start("BTCUSDT", T0 + MIN + 30_000) is None
    assert tracker.gap_start("BTCUSDT", T0 + 2 * MIN - 1) is None


def test_gap_start_is_the_first_missing_open_time_once_a_whole_kline_is_missing() -> None:
    tracker = ClosedKlineTracker({"BTCUSDT": T0})
    assert tracker.gap_start("BTCUSDT", T0 + 2 * MIN) == T0 + MIN
    assert tracker.gap_start("BTCUSDT", T0 + 60 * MIN + 5) == T0 + MIN


def test_should_reconnect_before_the_24_hour_limit_with_margin() -> None:
    limit_ms = MAX_CONNECTION_S * 1000
    assert MAX_CONNECTION_S == 86_400
    assert not should_reconnect(0, limit_ms - 300_001)
    assert should_reconnect(0, limit_ms - 300_000)
    assert should_reconnect(0, limit_ms - 59_999, margin_s=60)
    assert not should_reconnect(1_000, 1_000 + limit_ms - 61_000, margin_s=60)


# ------------------------------------------------------------------------------- properties

_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
_bad_decimal = st.one_of(
    st.sampled_from(["NaN", "nan", "inf", "-Infinity", "1e999", "-1", "0", "", " 1", "1_0"]),
    _junk,
)
_time = st.one_of(
    st.integers(min_value=0, max_value=30).map(lambda i: T0 + i * MIN),
    st.integers(min_value=0, max_value=30).map(lambda i: T0 + i * MIN - 1),
    _junk,
)


@st.composite
def _ohlcv(draw: st.DrawFn) -> list[Any]:
    """Consistent o/h/l/c/v strings, then maybe one field swapped for junk."""
    low = draw(st.integers(min_value=1, max_value=10**6))
    o, c = (low + draw(st.integers(min_value=0, max_value=500)) for _ in range(2))
    high = max(o, c) + draw(st.integers(min_value=0, max_value=500))
    fields: list[Any] = [f"{x / 100:.2f}" for x in (o, high, low, c)]
    fields.append(f"{draw(st.integers(min_value=0, max_value=10**6)) / 1000:.3f}")
    if draw(st.booleans()):
        fields[draw(st.integers(min_value=0, max_value=4))] = draw(_bad_decimal)
    return fields


def _rest_row(open_ms: Any, fields: list[Any], close_ms: Any) -> list[Any]:
    return [open_ms, *fields, close_ms, "0", 1, "0", "0", "0"]


def _matching_close(open_ms: Any) -> Any:
    return open_ms + MIN - 1 if isinstance(open_ms, int) else open_ms


_row = st.one_of(
    st.builds(lambda t, f: _rest_row(t, f, _matching_close(t)), _time, _ohlcv()),
    st.builds(_rest_row, _time, _ohlcv(), _time),
    _junk,
)


def _assert_valid(b: Bar) -> None:
    assert all(math.isfinite(x) and x > 0 for x in (b.open, b.high, b.low, b.close))
    assert math.isfinite(b.volume) and b.volume >= 0
    assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
    assert b.ts.tzinfo is not None
    assert b.ts.second == 0 and b.ts.microsecond == 0


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_row, max_size=12), now_i=st.integers(min_value=0, max_value=40))
def test_property_junk_rest_rows_never_raise_and_never_yield_an_invalid_bar(
    rows: list[Any], now_i: int
) -> None:
    now_ms = T0 + now_i * MIN
    batch = parse_rest_klines("BTCUSDT", 200, json.dumps(rows), now_ms=now_ms)
    opens = [b.ts for b in batch.bars]
    assert opens == sorted(set(opens))
    for b in batch.bars:
        _assert_valid(b)
        assert b.ts.timestamp() * 1000 + MIN - 1 < now_ms
    assert len(batch.bars) + len(batch.rejected) <= len(rows)


def _ws_text(open_ms: Any, fields: list[Any], closed: Any, interval: Any) -> str:
    o, h, lo, c, v = fields
    k = {"t": open_ms, "T": _matching_close(open_ms), "o": o, "h": h, "l": lo, "c": c, "v": v}
    return json.dumps(kline_event(T0, x=closed, i=interval, **k))


_message = st.one_of(
    st.text(max_size=60),
    _junk.map(json.dumps),
    st.builds(
        _ws_text,
        _time,
        _ohlcv(),
        st.one_of(st.just(True), st.booleans(), _junk),
        st.sampled_from(["1m", "1m", "1m", "1s", "5m", None]),
    ),
)


@settings(max_examples=200, deadline=None)
@given(text=_message, wrap=st.booleans())
def test_property_junk_ws_messages_never_raise_and_never_yield_an_invalid_bar(
    text: str, wrap: bool
) -> None:
    if wrap:
        text = '{"stream":"btcusdt@kline_1m","data":' + text + "}"
    msg = parse_ws_message(text)
    assert isinstance(msg, KlineUpdate | SubscribeResult | WsError | Malformed)
    if isinstance(msg, KlineUpdate):
        assert (msg.bar is not None) == msg.closed
        if msg.bar is not None:
            _assert_valid(msg.bar)


@pytest.mark.parametrize(
    ("doc", "missing"),
    [({"data": kline_event()}, "stream"), ({"stream": "btcusdt@kline_1m"}, "data")],
)
def test_combined_stream_wrapper_half_missing_then_malformed_naming_the_part(
    doc: dict[str, Any], missing: str
) -> None:
    # Found by the hostile-input fuzzing: it was read as a kline event "e=None".
    msg = parse_ws_message(json.dumps(doc))
    assert isinstance(msg, Malformed)
    assert msg.reason == f"combined-stream wrapper lacks {missing}"
