"""The journal masks secrets in what it commits; records without any pass through untouched."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.journal.factories import rec
from tradeplane.actors.journal import redact_batch
from tradeplane.core.redact import MASK, Redactor
from tradeplane.journal.records import StateWrite

SECRET = "sk-live-0123456789abcdef"
ODD_SECRET = 'p"w\\d\n\u00e9\u0001\u2028x'  # characters JSON escapes, or writes as they are


@pytest.mark.parametrize(
    "data",
    [
        {"note": f"key={SECRET}"},
        {"nested": [{"deep": ("x", f"..{SECRET}..")}]},
        {f"k-{SECRET}": 1},
        {"odd": f"<{ODD_SECRET}>"},
        {1: f"int key beside {SECRET}"},
        {"huge": 2**70, "s": SECRET},  # orjson refuses the int: the walk decides
    ],
)
def test_secret_anywhere_in_a_records_data_then_masked(data: dict[Any, Any]) -> None:
    redactor = Redactor([SECRET, ODD_SECRET])
    [out], _ = redact_batch(redactor, [rec("e1", data=data)], [])
    assert SECRET not in repr(out.data) and ODD_SECRET not in repr(out.data)
    assert MASK in repr(out.data)


def test_records_and_state_without_secrets_then_the_same_objects() -> None:
    redactor = Redactor([SECRET])
    records = [rec("e1", data={"a": "plain", "n": [1.5, None]}), rec("e2", data={})]
    state = [StateWrite("s", "k", {"v": "plain"}, 1.0)]
    out, out_state = redact_batch(redactor, records, state)
    assert all(a is b for a, b in zip(out, records, strict=True))
    assert out_state[0] is state[0]


def test_secret_in_a_state_value_then_masked() -> None:
    redactor = Redactor([SECRET])
    _, [w] = redact_batch(redactor, [], [StateWrite("s", "k", {"v": SECRET}, 1.0)])
    assert w.data == {"v": MASK}
