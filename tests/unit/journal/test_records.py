from __future__ import annotations

import hashlib
import json
import math

import pytest

from tests.unit.journal.factories import NOTE, T0, intent, rec
from tradeplane.journal.records import (
    GENESIS_HASH,
    LINE_KEYS,
    JournalRecord,
    canonical_json,
    encode_line,
    iso_utc,
    verify_lines,
)


def chain(records: list[JournalRecord]) -> list[str]:
    lines, prev = [], GENESIS_HASH
    for seq, r in enumerate(records, start=1):
        line, prev = encode_line(r, seq, prev)
        lines.append(line)
    return lines


def numbered(lines: list[str]) -> list[tuple[int, str]]:
    return list(enumerate(lines, start=1))


def test_encoded_line_is_canonical_json_of_the_whole_object_with_the_spec_keys() -> None:
    line, digest = encode_line(intent(1), 7, GENESIS_HASH)
    obj = json.loads(line)
    assert set(obj) == LINE_KEYS
    assert line == canonical_json(obj)
    assert obj["seq"] == 7 and obj["prev"] == GENESIS_HASH and obj["hash"] == digest
    assert obj["kind"] == "intent" and obj["intent_id"] == "i1" and obj["client_order_id"] == "c1"


def test_hash_is_sha256_of_prev_newline_and_canonical_line_without_hash() -> None:
    prev = "ab" * 32
    line, digest = encode_line(intent(1), 2, prev)
    obj = json.loads(line)
    del obj["hash"]
    assert digest == hashlib.sha256((prev + "\n" + canonical_json(obj)).encode()).hexdigest()


def test_ts_is_iso_utc_with_microseconds_and_z() -> None:
    assert iso_utc(T0 + 0.123456) == "2023-11-14T22:13:20.123456Z"
    assert iso_utc(0.0) == "1970-01-01T00:00:00.000000Z"
    assert iso_utc(1.9999996) == "1970-01-01T00:00:02.000000Z"  # rounding carries into seconds
    line, _ = encode_line(rec("e", ts=T0), 1, GENESIS_HASH)
    assert json.loads(line)["ts"] == "2023-11-14T22:13:20.000000Z"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_float_in_data_is_a_value_error_naming_field_and_kind(bad: float) -> None:
    record = rec("e1", "order_filled", {"fill": {"legs": [1.0, bad]}})
    with pytest.raises(ValueError, match=r"'order_filled'.*data\.fill\.legs\[1\]"):
        encode_line(record, 1, GENESIS_HASH)


def test_non_json_value_in_data_is_a_value_error_naming_field() -> None:
    with pytest.raises(ValueError, match=r"data\.when has type object"):
        encode_line(rec("e1", data={"when": object()}), 1, GENESIS_HASH)


@pytest.mark.parametrize(
    ("field", "value"),
    [("event_id", ""), ("kind", ""), ("deployment", ""), ("ts", math.nan), ("strategy", 3)],
)
def test_malformed_record_fields_are_value_errors(field: str, value: object) -> None:
    kw: dict[str, object] = {
        "event_id": "e1",
        "kind": NOTE,
        "ts": T0,
        "deployment": "d",
        "data": {},
    }
    kw[field] = value
    with pytest.raises(ValueError, match=field):
        encode_line(JournalRecord(**kw), 1, GENESIS_HASH)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["order_filed", "note", "ORDER_FILLED"])
def test_record_of_a_kind_outside_the_protocol_is_refused_naming_it(kind: str) -> None:
    record = JournalRecord(event_id="e1", kind=kind, ts=T0, deployment="d", data={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"unknown event kind '{kind}'"):
        encode_line(record, 1, GENESIS_HASH)


def test_record_whose_kind_is_the_plain_string_of_a_known_kind_is_accepted() -> None:
    record = JournalRecord(event_id="e1", kind="bar_summary", ts=T0, deployment="d", data={})  # type: ignore[arg-type]
    line, _ = encode_line(record, 1, GENESIS_HASH)
    assert json.loads(line)["kind"] == "bar_summary"


@pytest.mark.parametrize("deep", [True, False])
def test_verify_lines_accepts_an_intact_chain(deep: bool) -> None:
    lines = chain([rec(f"e{i}", data={"i": i}) for i in range(50)])
    result = verify_lines(numbered(lines), deep=deep)
    assert result.ok and result.lines == 50 and result.first_bad_line is None
    assert result.last_seq == 50 and result.last_hash == json.loads(lines[-1])["hash"]


def test_verify_lines_of_nothing_is_ok_at_genesis() -> None:
    result = verify_lines([])
    assert result.ok and result.lines == 0 and result.last_seq == 0
    assert result.last_hash == GENESIS_HASH


@pytest.mark.parametrize("deep", [True, False])
def test_verify_lines_reports_an_edited_line_by_number(deep: bool) -> None:
    lines = chain([rec(f"e{i}", data={"qty": 1.5}) for i in range(10)])
    lines[4] = lines[4].replace('"qty":1.5', '"qty":2.5')
    result = verify_lines(numbered(lines), deep=deep)
    assert not result.ok and result.first_bad_line == 5 and "hash mismatch" in (result.reason or "")
    assert result.lines == 4 and result.last_seq == 4


@pytest.mark.parametrize("deep", [True, False])
def test_verify_lines_reports_a_removed_line_as_a_seq_gap(deep: bool) -> None:
    lines = chain([rec(f"e{i}") for i in range(10)])
    del lines[3]
    result = verify_lines(numbered(lines), deep=deep)
    assert result.first_bad_line == 4 and not result.ok
    assert "prev" in (result.reason or "") or "seq" in (result.reason or "")


def test_verify_lines_reports_a_line_rehashed_without_relinking() -> None:
    lines = chain([rec(f"e{i}") for i in range(5)])
    forged, _ = encode_line(rec("forged"), 3, GENESIS_HASH)  # valid hash, wrong prev
    lines[2] = forged
    result = verify_lines(numbered(lines))
    assert result.first_bad_line == 3 and "prev" in (result.reason or "")


@pytest.mark.parametrize("deep", [True, False])
def test_verify_lines_reports_invalid_json(deep: bool) -> None:
    lines = chain([rec(f"e{i}") for i in range(3)])
    lines[1] = lines[1][:40]
    result = verify_lines(numbered(lines), deep=deep)
    assert result.first_bad_line == 2 and "JSON" in (result.reason or "")


def test_verify_lines_deep_reports_a_non_canonical_line_even_with_a_matching_hash() -> None:
    line, digest = encode_line(rec("e1", data={"a": 2, "b": 1}), 1, GENESIS_HASH)
    body = line.replace(f'"hash":"{digest}",', "").replace('{"a":2,"b":1}', '{"b":1,"a":2}')
    rehashed = hashlib.sha256((GENESIS_HASH + "\n" + body).encode()).hexdigest()
    forged = body.replace('"intent_id"', f'"hash":"{rehashed}","intent_id"')
    assert verify_lines([(1, forged)], deep=False).ok  # the text matches its hash
    result = verify_lines([(1, forged)], deep=True)
    assert not result.ok and "canonical" in (result.reason or "")


def test_data_that_mimics_the_hash_and_prev_fields_still_verifies() -> None:
    tricky = {
        "hash": "f" * 64,
        "prev": "e" * 64,
        "seq": 99,
        "text": ',"hash":"' + "0" * 64 + '","prev":"' + "0" * 64 + '","seq":1,',
        "nested": {"hash": "x", "prev": "y"},
    }
    lines = chain([rec("e0"), rec("e1", data=tricky), rec("e2", strategy='s,"prev":"')])
    assert verify_lines(numbered(lines), deep=False).ok
    assert verify_lines(numbered(lines), deep=True).ok


def test_unicode_payload_round_trips_and_verifies() -> None:
    lines = chain([rec("e0", data={"note": "café ✓ 東京", "esc": 'quote " backslash \\'})])
    assert json.loads(lines[0])["data"]["note"] == "café ✓ 東京"
    assert verify_lines(numbered(lines), deep=False).ok and verify_lines(numbered(lines)).ok


def test_verify_lines_can_continue_from_a_known_line() -> None:
    lines = chain([rec(f"e{i}") for i in range(6)])
    third = json.loads(lines[2])
    result = verify_lines(
        numbered(lines)[3:], start_seq=third["seq"], start_hash=third["hash"], deep=False
    )
    assert result.ok and result.lines == 3 and result.last_seq == 6
