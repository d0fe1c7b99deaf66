from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeplane.core.errors import TransientError
from tradeplane.core.model import Bar
from tradeplane.venues.okx.candles import (
    BUSINESS_PATH,
    PING,
    CandleBatch,
    CandlePush,
    ClosedBarTracker,
    EvolvingBars,
    Malformed,
    Notice,
    OkxError,
    OkxRateLimited,
    Pong,
    Subscribed,
    WsError,
    candles_path,
    parse_rest_candles,
    parse_ws_message,
    subscribe_message,
)

SYM = "BTC-USDT"
T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
MIN = 60_000


def row(ts: int, o: str = "100", h: str = "101", lo: str = "99", c: str = "100.5",
        vol: str = "2.5", confirm: str = "1") -> list[str]:  # fmt: skip
    return [str(ts), o, h, lo, c, vol, "250", "250", confirm]


def body(*rows: object, code: str = "0", msg: str = "") -> str:
    return json.dumps({"code": code, "msg": msg, "data": list(rows)})


def dt(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def bar(ts_ms: int, symbol: str = SYM, close: float = 100.5) -> Bar:
    return Bar(symbol, dt(ts_ms), 100.0, 101.0, 99.0, close, 2.5)


def push(*rows: object, inst_id: str = SYM) -> str:
    return json.dumps({"arg": {"channel": "candle1m", "instId": inst_id}, "data": list(rows)})


def assert_valid_bar(b: Bar) -> None:
    for value in (b.open, b.high, b.low, b.close):
        assert math.isfinite(value) and value > 0
    assert math.isfinite(b.volume) and b.volume >= 0
    assert b.high >= max(b.open, b.close, b.low) and b.low <= min(b.open, b.close)
    assert b.ts.utcoffset() == timedelta(0) and b.ts.second == 0 and b.ts.microsecond == 0


# ---------------------------------------------------------------- request paths


def test_candles_path_asks_for_exactly_1m_bars_with_limit_and_paging_bounds() -> None:
    path = candles_path("BTC-USDT", limit=50, after_ms=T0, before_ms=T0 - 10 * MIN)
    split = urlsplit(path)
    assert split.path == "/api/v5/market/candles"
    assert dict(parse_qsl(split.query)) == {
        "instId": "BTC-USDT",
        "bar": "1m",
        "limit": "50",
        "after": str(T0),
        "before": str(T0 - 10 * MIN),
    }


@pytest.mark.parametrize(("asked", "sent"), [(0, "1"), (-5, "1"), (1, "1"), (300, "300"),
                                             (301, "300"), (10_000, "300")])  # fmt: skip
def test_candles_path_clamps_limit_between_1_and_300(asked: int, sent: str) -> None:
    query = dict(parse_qsl(urlsplit(candles_path(SYM, limit=asked)).query))
    assert query["limit"] == sent
    assert "after" not in query and "before" not in query


def test_candles_path_defaults_to_300_bars_and_escapes_the_inst_id() -> None:
    assert candles_path("A B&C") == "/api/v5/market/candles?instId=A+B%26C&bar=1m&limit=300"


# ---------------------------------------------------------------- REST parsing


def test_rest_rows_newest_first_then_closed_bars_oldest_first_without_the_evolving_one() -> None:
    text = body(row(T0 + 2 * MIN, confirm="0"), row(T0 + MIN, c="100.7"), row(T0, c="100.2"))
    batch = parse_rest_candles(SYM, 200, text)
    assert [b.ts for b in batch.bars] == [dt(T0), dt(T0 + MIN)]
    assert [b.close for b in batch.bars] == [100.2, 100.7]
    assert batch.open_bar_ts == dt(T0 + 2 * MIN)
    assert batch.open_bar is not None and batch.open_bar.ts == batch.open_bar_ts
    assert batch.rejected == []
    assert batch.symbol == SYM


def test_rest_bar_takes_ohlc_and_base_volume_and_the_open_time_in_utc() -> None:
    (b,) = parse_rest_candles(SYM, 200, body(row(T0, "1.5", "2.5", "1.25", "2", "7.75"))).bars
    assert b == Bar(SYM, datetime(2024, 6, 1, tzinfo=UTC), 1.5, 2.5, 1.25, 2.0, 7.75)


def test_rest_accepts_bytes_and_an_empty_data_list() -> None:
    batch = parse_rest_candles(SYM, 200, body().encode())
    assert batch == CandleBatch(SYM, [], None, [])


def test_rest_duplicate_open_times_keep_the_first_row_and_reject_the_rest() -> None:
    batch = parse_rest_candles(SYM, 200, body(row(T0, c="100.9"), row(T0, c="100.1")))
    assert [b.close for b in batch.bars] == [100.9]
    assert [r.reason for r in batch.rejected] == ["duplicate open time"]


def test_rest_evolving_row_not_newer_than_a_closed_bar_is_rejected_as_stale() -> None:
    batch = parse_rest_candles(SYM, 200, body(row(T0, confirm="1"), row(T0, confirm="0")))
    assert batch.open_bar_ts is None and len(batch.bars) == 1
    assert [r.reason for r in batch.rejected] == ["stale evolving row"]


BAD_ROWS: list[tuple[object, str]] = [
    ("not a row", "not a list"),
    (row(T0)[:8], "8 fields"),
    ([*row(T0), "extra"], "10 fields"),
    ([T0, "1", "1", "1", "1", "1", "1", "1", "1"], "ts (field 0) is not a string"),
    (row(T0, o=None), "open (field 1) is not a string"),  # type: ignore[arg-type]
    (["1717200000000.0", *row(T0)[1:]], "ts"),
    (["-60000", *row(T0)[1:]], "ts"),
    (["abc", *row(T0)[1:]], "ts"),
    ([str(T0 + 1), *row(T0)[1:]], "minute boundary"),
    (["9" * 15, *row(T0)[1:]], "out of range"),
    (row(T0, o="NaN"), "open"),
    (row(T0, h="inf"), "high"),
    (row(T0, c="1e400"), "not finite"),
    (row(T0, lo="1_0"), "low"),
    (row(T0, vol=" 1"), "vol"),
    (row(T0, vol=""), "vol"),
    (row(T0, o="-1"), "open must be > 0"),
    (row(T0, o="0"), "open must be > 0"),
    (row(T0, vol="-2"), "volume must be >= 0"),
    (row(T0, h="98"), "inconsistent"),
    (row(T0, lo="100.6"), "inconsistent"),
    (row(T0, confirm="2"), "confirm"),
    (row(T0, confirm=""), "confirm"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_ROWS)
def test_rest_malformed_row_is_rejected_with_a_reason_and_good_rows_survive(
    bad: object, reason: str
) -> None:
    batch = parse_rest_candles(SYM, 200, body(row(T0 + MIN), bad, row(T0 - MIN)))
    assert [b.ts for b in batch.bars] == [dt(T0 - MIN), dt(T0 + MIN)]
    (rejected,) = batch.rejected
    assert reason in rejected.reason
    assert rejected.raw


def test_rest_rejected_raw_is_truncated_to_300_characters() -> None:
    batch = parse_rest_candles(SYM, 200, body(["x" * 1000]))
    assert len(batch.rejected[0].raw) == 300


def test_http_429_raises_rate_limited_honouring_retry_after() -> None:
    with pytest.raises(OkxRateLimited) as info:
        parse_rest_candles(SYM, 429, b"", retry_after="2.5")
    assert info.value.retry_after_s == 2.5
    assert isinstance(info.value, OkxError) and isinstance(info.value, TransientError)


@pytest.mark.parametrize("header", [None, "soon", "-3", "nan", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_rate_limited_retry_after_defaults_to_one_second(header: str | None) -> None:
    with pytest.raises(OkxRateLimited) as info:
        parse_rest_candles(SYM, 429, body(code="50011"), retry_after=header)
    assert info.value.retry_after_s == 1.0


def test_code_50011_raises_rate_limited_even_with_http_200() -> None:
    with pytest.raises(OkxRateLimited) as info:
        parse_rest_candles(SYM, 200, body(code="50011", msg="Too Many Requests"))
    assert (info.value.code, info.value.msg) == ("50011", "Too Many Requests")


def test_other_nonzero_code_raises_okx_error_with_code_and_msg() -> None:
    with pytest.raises(OkxError) as info:
        parse_rest_candles(SYM, 200, body(code="51001", msg="Instrument ID does not exist"))
    assert not isinstance(info.value, OkxRateLimited)
    assert (info.value.code, info.value.msg) == ("51001", "Instrument ID does not exist")


@pytest.mark.parametrize(
    "text",
    ["", "<html>busy</html>", '{"code":"0","data":[', "[]", '"0"', "null", b"\xff\xfe\x00",
     '{"code":"","data":[]}', '{"msg":"no code","data":[]}', '{"code":"0","msg":"","data":{}}',
     "[" * 100_000],
)  # fmt: skip
def test_body_that_is_not_a_json_object_with_data_raises_parse_error(text: str | bytes) -> None:
    with pytest.raises(OkxError) as info:
        parse_rest_candles(SYM, 200, text)
    assert info.value.code == "parse"


def test_non_2xx_status_with_code_zero_raises_http_error() -> None:
    with pytest.raises(OkxError) as info:
        parse_rest_candles(SYM, 500, body(row(T0)))
    assert info.value.code == "http"


# ---------------------------------------------------------------- WebSocket


def test_business_path_and_ping_are_the_documented_ones() -> None:
    assert (BUSINESS_PATH, PING) == ("/ws/v5/business", "ping")


def test_subscribe_message_asks_for_candle1m_per_inst_id() -> None:
    assert json.loads(subscribe_message(["BTC-USDT", "ETH-USDT"], "7")) == {
        "id": "7",
        "op": "subscribe",
        "args": [
            {"channel": "candle1m", "instId": "BTC-USDT"},
            {"channel": "candle1m", "instId": "ETH-USDT"},
        ],
    }


def test_ws_pong_ack_error_and_notice_are_recognised() -> None:
    ack = {"id": "1", "event": "subscribe", "arg": {"channel": "candle1m", "instId": SYM},
           "connId": "a4d3ae55"}  # fmt: skip
    assert parse_ws_message("pong") == Pong()
    assert parse_ws_message(json.dumps(ack)) == Subscribed(SYM)
    err = {"event": "error", "code": "60018", "msg": "Wrong URL", "connId": "a"}
    assert parse_ws_message(json.dumps(err)) == WsError("60018", "Wrong URL")
    notice = {"event": "notice", "code": "64008", "msg": "upgrade", "connId": "a"}
    assert parse_ws_message(json.dumps(notice)) == Notice("64008", "upgrade")


def test_ws_confirmed_push_is_a_closed_bar() -> None:
    message = parse_ws_message(push(row(T0)))
    assert isinstance(message, CandlePush)
    assert message.batch.bars == [bar(T0)] and message.batch.open_bar_ts is None


def test_ws_unconfirmed_push_only_sets_the_evolving_bar_open_time() -> None:
    message = parse_ws_message(push(row(T0, confirm="0"), inst_id="ETH-USDT"))
    assert isinstance(message, CandlePush)
    assert message.batch.symbol == "ETH-USDT"
    assert message.batch.bars == [] and message.batch.open_bar_ts == dt(T0)


def test_ws_push_with_a_malformed_row_rejects_the_row_not_the_message() -> None:
    message = parse_ws_message(push(row(T0, h="NaN"), row(T0 + MIN)))
    assert isinstance(message, CandlePush)
    assert message.batch.bars == [bar(T0 + MIN)]
    assert len(message.batch.rejected) == 1 and "high" in message.batch.rejected[0].reason


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PONG",
        '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["17172',
        "[1,2]",
        "42",
        '{"hello":"world"}',
        '{"arg":{"channel":"candle5m","instId":"BTC-USDT"},"data":[]}',
        '{"arg":{"channel":"candle1m"},"data":[]}',
        '{"arg":{"channel":"candle1m","instId":""},"data":[]}',
        '{"arg":"candle1m","data":[]}',
        '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":{"0":1}}',
        '{"event":"subscribe","arg":{"channel":"candle1m"}}',
        '{"event":"error","code":true,"msg":"x"}',
        '{"event":"error","code":"","msg":"x"}',
        '{"event":"error","code":"1","msg":7}',
        '{"event":"login","code":"0"}',
        '{"event":null}',
        "[" * 100_000,
    ],
)
def test_ws_anything_else_is_malformed_with_reason_and_truncated_raw(text: str) -> None:
    message = parse_ws_message(text)
    assert isinstance(message, Malformed)
    assert message.reason and len(message.raw) <= 300


# ---------------------------------------------------------------- tracker


def test_tracker_passes_only_strictly_newer_bars_in_time_order() -> None:
    tracker = ClosedBarTracker()
    passed, rejected = tracker.accept([bar(T0 + MIN), bar(T0)])
    assert passed == [bar(T0), bar(T0 + MIN)] and rejected == []
    passed, rejected = tracker.accept([bar(T0), bar(T0 + MIN), bar(T0 + 2 * MIN)])
    assert passed == [bar(T0 + 2 * MIN)]
    assert [r.reason for r in rejected] == ["out of order", "duplicate"]
    assert tracker.last(SYM) == dt(T0 + 2 * MIN)


def test_tracker_keeps_symbols_apart() -> None:
    tracker = ClosedBarTracker()
    tracker.accept([bar(T0 + 5 * MIN, "ETH-USDT")])
    passed, _ = tracker.accept([bar(T0)])
    assert passed == [bar(T0)]
    assert tracker.last("ETH-USDT") == dt(T0 + 5 * MIN) and tracker.last("SOL-USDT") is None


def test_tracker_rejects_a_duplicate_within_one_batch() -> None:
    passed, rejected = ClosedBarTracker().accept([bar(T0), bar(T0, close=100.1)])
    assert passed == [bar(T0)] and [r.reason for r in rejected] == ["duplicate"]


def test_gap_start_is_none_until_a_whole_minute_is_missing() -> None:
    tracker = ClosedBarTracker()
    assert tracker.gap_start(SYM, T0 + 10 * MIN) is None  # nothing seen yet
    tracker.accept([bar(T0)])
    # The bar opened at T0+1m is still forming or only just closed.
    assert tracker.gap_start(SYM, T0 + MIN) is None
    assert tracker.gap_start(SYM, T0 + 2 * MIN - 1) is None
    # It has ended and never arrived: backfill from its open time.
    assert tracker.gap_start(SYM, T0 + 2 * MIN) == T0 + MIN
    assert tracker.gap_start(SYM, T0 + 30 * MIN + 5) == T0 + MIN


def test_gap_start_grace_allows_for_the_venue_push_delay() -> None:
    tracker = ClosedBarTracker()
    tracker.accept([bar(T0)])
    assert tracker.gap_start(SYM, T0 + 2 * MIN + 1_000, grace_ms=2_000) is None
    assert tracker.gap_start(SYM, T0 + 2 * MIN + 2_000, grace_ms=2_000) == T0 + MIN


def _push_batch(*rows: list[str]) -> CandleBatch:
    message = parse_ws_message(push(*rows))
    assert isinstance(message, CandlePush)
    return message.batch


def test_evolving_bar_is_closed_when_a_newer_open_time_arrives_without_its_confirm() -> None:
    evolving = EvolvingBars()
    assert evolving.on_push(_push_batch(row(T0, c="100.2", confirm="0"))) == []
    assert evolving.on_push(_push_batch(row(T0, c="100.4", confirm="0"))) == []
    implied = evolving.on_push(_push_batch(row(T0 + MIN, confirm="0")))
    assert [(b.ts, b.close) for b in implied] == [(dt(T0), 100.4)]
    assert evolving.current(SYM) is not None and evolving.current(SYM).ts == dt(T0 + MIN)  # type: ignore[union-attr]


def test_evolving_bar_whose_confirm_arrives_is_not_closed_twice() -> None:
    evolving = EvolvingBars()
    evolving.on_push(_push_batch(row(T0, confirm="0")))
    assert evolving.on_push(_push_batch(row(T0))) == []
    assert evolving.on_push(_push_batch(row(T0 + MIN, confirm="0"))) == []


def test_evolving_bar_is_closed_by_a_newer_confirmed_bar_too() -> None:
    evolving = EvolvingBars()
    evolving.on_push(_push_batch(row(T0, confirm="0")))
    assert [b.ts for b in evolving.on_push(_push_batch(row(T0 + MIN)))] == [dt(T0)]
    assert evolving.current(SYM) is None


def test_implied_close_followed_by_the_late_confirm_is_dropped_as_duplicate() -> None:
    evolving, tracker = EvolvingBars(), ClosedBarTracker()
    evolving.on_push(_push_batch(row(T0, confirm="0")))
    passed, _ = tracker.accept(evolving.on_push(_push_batch(row(T0 + MIN, confirm="0"))))
    assert [b.ts for b in passed] == [dt(T0)]
    passed, rejected = tracker.accept(_push_batch(row(T0)).bars)
    assert passed == [] and [r.reason for r in rejected] == ["duplicate"]


def test_an_older_evolving_push_does_not_replace_the_newer_one() -> None:
    evolving = EvolvingBars()
    evolving.on_push(_push_batch(row(T0 + MIN, confirm="0")))
    assert evolving.on_push(_push_batch(row(T0, confirm="0"))) == []
    assert evolving.current(SYM).ts == dt(T0 + MIN)  # type: ignore[union-attr]


# ---------------------------------------------------------------- properties

numberish = st.one_of(
    st.from_regex(r"-?[0-9]{1,7}(\.[0-9]{1,6})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "", " 1", "1_0", "0x1", "-0", "0"]),
    st.text(max_size=6),
)
ts_strings = st.one_of(
    st.integers(0, 2**50).map(lambda n: str(n * MIN)),
    st.integers(-(2**64), 2**64).map(str),
    st.text(max_size=8),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))
junk_rows = st.one_of(
    st.tuples(ts_strings, *[numberish] * 7, st.sampled_from(["0", "1", "2", "", "yes"])).map(list),
    st.lists(st.one_of(numberish, json_scalars), max_size=11),
    json_scalars,
)


@st.composite
def good_rows(draw: st.DrawFn) -> list[str]:
    price = st.floats(0.0001, 1e7, allow_nan=False, allow_infinity=False)
    o, c = draw(price), draw(price)
    h = max(o, c) * draw(st.floats(1, 1.1))
    lo = min(o, c) * draw(st.floats(0.9, 1))
    vol = draw(st.floats(0, 1e9))
    ts = draw(st.integers(0, 10**7)) * MIN
    confirm = draw(st.sampled_from(["0", "1"]))
    return [str(ts), *(repr(v) for v in (o, h, lo, c, vol)), "1", "1", confirm]


any_rows = st.lists(st.one_of(junk_rows, good_rows()), max_size=12)


def _check_batch(batch: CandleBatch, n_rows: int) -> None:
    for b in batch.bars:
        assert_valid_bar(b)
    assert [b.ts for b in batch.bars] == sorted({b.ts for b in batch.bars})
    if batch.open_bar is not None:
        assert_valid_bar(batch.open_bar)
        assert batch.open_bar_ts == batch.open_bar.ts
    assert all(r.reason and len(r.raw) <= 300 for r in batch.rejected)
    assert len(batch.bars) + len(batch.rejected) + (batch.open_bar is not None) == n_rows


@settings(max_examples=300, deadline=None)
@given(any_rows)
def test_property_rest_rows_never_raise_and_every_row_is_a_valid_bar_or_rejected(
    rows: list[Any],
) -> None:
    _check_batch(parse_rest_candles(SYM, 200, json.dumps({"code": "0", "data": rows})), len(rows))


@settings(max_examples=300, deadline=None)
@given(any_rows)
def test_property_ws_pushes_never_raise_and_every_row_is_a_valid_bar_or_rejected(
    rows: list[Any],
) -> None:
    message = parse_ws_message(push(*rows))
    assert isinstance(message, CandlePush)
    _check_batch(message.batch, len(rows))


json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["arg", "data", "event", "code", "msg", "channel", "instId", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), json_values.map(json.dumps)))
def test_property_any_ws_text_is_classified_without_raising(text: str) -> None:
    message = parse_ws_message(text)
    assert isinstance(message, Pong | Subscribed | WsError | Notice | CandlePush | Malformed)
    if isinstance(message, CandlePush):
        for b in message.batch.bars:
            assert_valid_bar(b)
    if isinstance(message, Malformed):
        assert message.reason and len(message.raw) <= 300


@settings(max_examples=200, deadline=None)
@given(st.integers(100, 599), st.one_of(st.binary(max_size=40), json_values.map(json.dumps)))
def test_property_any_rest_answer_yields_a_batch_or_an_okx_error(
    status: int, text: bytes | str
) -> None:
    try:
        batch = parse_rest_candles(SYM, status, text)
    except OkxError as exc:
        assert exc.code
    else:
        assert 200 <= status < 300
        for b in batch.bars:
            assert_valid_bar(b)


def test_row_field_of_the_wrong_type_then_the_rejection_names_the_field() -> None:
    # Found by the hostile-input fuzzing: the reason said "field 2", not which field that is.
    bad = row(T0)
    bad[2] = ["1", "2"]  # type: ignore[call-overload]
    (rejected,) = parse_ws_message(push(bad)).batch.rejected  # type: ignore[union-attr]
    assert rejected.reason == "high (field 2) is not a string but list"
