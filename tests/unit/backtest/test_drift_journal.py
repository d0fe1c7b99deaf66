"""Journal lines as the drift tracker's live inputs (``backtest.drift_journal``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tradeplane.backtest.drift_journal import JournalInputs
from tradeplane.backtest.drift_model import LiveFill, LiveIntent
from tradeplane.core.model import Side


def line(kind: str, ts: str, data: dict[str, Any], **top: Any) -> dict[str, Any]:
    base = {"kind": kind, "ts": ts, "data": data, "strategy": "s1", "intent_id": "i1",
            "client_order_id": "tpi1"}  # fmt: skip
    return base | top


INTENT = {"symbol": "AAA", "trigger": "bar:AAA:2026-01-01T00:00:00+00:00", "ts": 100.0}
SUBMITTING = {"symbol": "AAA", "intent": {"trigger": INTENT["trigger"], "ts": 100.0},
              "decision": {"reference_price": 50.0}}  # fmt: skip
FILL = {"symbol": "AAA", "fill": {"fill_id": "F1", "symbol": "AAA", "side": "buy",
                                  "quantity": 2.0, "price": 50.5, "fee": 0.01}}  # fmt: skip


def test_order_lines_then_one_intent_and_a_fill_with_its_submit_ack_and_reference() -> None:
    inputs = JournalInputs("sim")
    got = list(
        inputs.read(
            [
                line("intent", "2026-01-01T00:01:40Z", INTENT),
                line("order_submitting", "2026-01-01T00:01:41Z", SUBMITTING),
                line("order_accepted", "2026-01-01T00:01:41.5Z", {"symbol": "AAA"}),
                line("order_filled", "2026-01-01T00:01:43Z", FILL),
            ]
        )
    )
    intent, fill = got
    assert isinstance(intent, LiveIntent) and intent.trigger == INTENT["trigger"]
    assert isinstance(fill, LiveFill)
    assert (fill.side, fill.quantity, fill.price, fill.ref_price) == (Side.BUY, 2.0, 50.5, 50.0)
    assert fill.trigger == INTENT["trigger"]
    assert fill.ack_ts is not None and fill.submit_ts is not None
    assert fill.ack_ts - fill.submit_ts == 0.5 and fill.ts - fill.submit_ts == 2.0


def test_intent_record_lost_then_the_one_order_submitting_carries_counts() -> None:
    got = list(
        JournalInputs("sim").read([line("order_submitting", "2026-01-01T00:01:41Z", SUBMITTING)])
    )
    assert [type(g) for g in got] == [LiveIntent]
    assert got[0].ts == 100.0


def test_denied_intent_then_counted_as_made() -> None:
    denied = {
        "symbol": "AAA",
        "reason": "MAX_ORDER_VALUE",
        "intent": {"trigger": INTENT["trigger"]},
    }
    got = list(JournalInputs("sim").read([line("order_denied", "2026-01-01T00:01:41Z", denied)]))
    assert [g.intent_id for g in got if isinstance(g, LiveIntent)] == ["i1"]


def test_malformed_line_then_counted_and_the_rest_read() -> None:
    inputs = JournalInputs("sim")
    got = list(
        inputs.read(
            [
                line("order_filled", "2026-01-01T00:01:43Z", {"fill": {"price": "x"}}),
                line("intent", "2026-01-01T00:01:40Z", INTENT),
            ]
        )
    )
    assert inputs.malformed == 1 and len(got) == 1


def test_snapshot_restored_then_a_later_fill_has_its_order_and_a_told_again_intent_is_not() -> None:
    before = JournalInputs("sim")
    list(
        before.read(
            [
                line("intent", "2026-01-01T00:01:40Z", INTENT),
                line("order_submitting", "2026-01-01T00:01:41Z", SUBMITTING),
                line("order_accepted", "2026-01-01T00:01:41.5Z", {"symbol": "AAA"}),
            ]
        )
    )
    after = JournalInputs("sim")  # a restart: reads on from the saved journal seq
    after.restore(json.loads(json.dumps(before.snapshot())))
    partial = FILL | {"fill": FILL["fill"] | {"quantity": 1.0}}
    got = list(
        after.read(
            [
                line("order_denied", "2026-01-01T00:01:42Z", {"symbol": "AAA", "intent": INTENT}),
                line("order_partially_filled", "2026-01-01T00:01:43Z", partial),
                line("order_filled", "2026-01-01T00:01:44Z", FILL),
            ]
        )
    )
    assert all(isinstance(f, LiveFill) for f in got) and len(got) == 2
    assert all(f.trigger == INTENT["trigger"] and f.ref_price == 50.0 for f in got)
    assert [f.ts - f.submit_ts for f in got if f.submit_ts is not None] == [2.0, 3.0]
    assert after.snapshot()["orders"] == {}  # its last fill came: nothing more will ask


def test_snapshot_of_another_version_then_refused() -> None:
    with pytest.raises(ValueError, match="v2"):
        JournalInputs("sim").restore({"version": 2, "orders": {}, "intents": []})
