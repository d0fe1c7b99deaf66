"""The fast payload encoder (orjson) must give exactly the standard library's canonical text."""

from __future__ import annotations

import enum
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.journal.factories import rec
from tradeplane.journal.records import (
    GENESIS_HASH,
    canonical_json,
    dumps_payload,
    encode_line,
    verify_lines,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-1e-3, max_value=1e-3)
    | st.text()
)
payloads = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


def reference(data: Any) -> str | None:
    try:
        return canonical_json(data)
    except (ValueError, TypeError):
        return None


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.text(max_size=6), payloads, max_size=6))
def test_payload_text_is_the_standard_librarys_canonical_json(data: dict[str, Any]) -> None:
    expected = reference(data)
    if expected is None:
        with pytest.raises(ValueError):
            dumps_payload(data, kind="k")
    else:
        assert dumps_payload(data, kind="k") == expected


@pytest.mark.parametrize(
    "value",
    [
        1e-05,
        -9.9e-05,
        1e-07,
        3.1930092472892434e-07,
        5e-324,
        1e-4,
        0.00012,
        -0.0,
        1e16,
        1.5e300,
        2**64,
        -(2**63) - 1,
        "é \u2028 \x00 \x1f \x7f 東京 \U0001f600",
        [1.0, {"b": 1e-9, "a": 2}],
        (0.5, None),
    ],
)
def test_values_the_fast_encoder_spells_differently_still_come_out_canonical(value: Any) -> None:
    data = {"v": value, "w": [value]}
    assert dumps_payload(data, kind="k") == canonical_json(data)


def test_subclasses_are_encoded_as_the_standard_library_does() -> None:
    class Side(enum.StrEnum):
        BUY = "buy"

    class Level(enum.IntEnum):
        HIGH = 3

    class Price(float):
        pass

    class Row(dict):  # type: ignore[type-arg]
        pass

    data = {"side": Side.BUY, "level": Level.HIGH, "price": Price(1.5), "row": Row(a=1)}
    assert dumps_payload(data, kind="k") == canonical_json(data)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused_wherever_they_are(bad: float) -> None:
    for data in ({"x": bad}, {"x": [1.0, {"y": bad}]}, {"x": (bad,)}):
        with pytest.raises(ValueError, match="cannot encode"):
            dumps_payload(data, kind="k")


def test_non_string_keys_follow_the_standard_library() -> None:
    assert dumps_payload({"m": {1: "a"}}, kind="k") == '{"m":{"1":"a"}}'
    with pytest.raises(ValueError, match="non-string key"):
        dumps_payload({"m": {1: "a", "b": 2}}, kind="k")  # sort_keys cannot compare them


def test_enum_and_uuid_values_are_written_as_their_value() -> None:
    class Colour(enum.Enum):
        RED = "red"

    uid = uuid.UUID(int=7)
    assert dumps_payload({"c": Colour.RED, "u": uid}, kind="k") == (f'{{"c":"red","u":"{uid}"}}')


def test_lines_with_awkward_payloads_verify_deeply() -> None:
    lines, prev = [], GENESIS_HASH
    for seq, data in enumerate(
        [{"tiny": 1e-07}, {"nested": [{"z": 1, "a": -0.0}]}, {"s": "x\ny\t\u2028"}], start=1
    ):
        line, prev = encode_line(rec(f"e{seq}", data=data), seq, prev)
        lines.append((seq, line))
    result = verify_lines(lines, deep=True)
    assert result.ok, result
