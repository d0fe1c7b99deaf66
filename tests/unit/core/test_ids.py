from datetime import UTC, datetime

from tradeplane.core import ids


def test_same_inputs_then_same_intent_id() -> None:
    trig = ids.bar_trigger("AAA", datetime(2026, 1, 5, tzinfo=UTC))
    assert ids.intent_id("d", "s", trig, 0) == ids.intent_id("d", "s", trig, 0)


def test_any_input_differs_then_intent_id_differs() -> None:
    base = ids.intent_id("d", "s", "t", 0)
    assert (
        len(
            {
                base,
                ids.intent_id("d2", "s", "t", 0),
                ids.intent_id("d", "s2", "t", 0),
                ids.intent_id("d", "s", "t2", 0),
                ids.intent_id("d", "s", "t", 1),
            }
        )
        == 5
    )


def test_client_order_id_is_derived_and_reversible() -> None:
    iid = ids.intent_id("d", "s", "t", 0)
    coid = ids.client_order_id(iid)
    assert coid.isalnum() and len(coid) <= 32
    assert ids.intent_id_from_client_order_id(coid) == iid
    assert ids.intent_id_from_client_order_id("manual-order") is None


def test_bar_trigger_time_then_the_open_time_back_and_none_for_other_triggers() -> None:
    ts = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
    assert ids.bar_trigger_time(ids.bar_trigger("BTC-USDT", ts)) == ts
    assert ids.bar_trigger_time(ids.start_trigger("run-1")) is None
    assert ids.bar_trigger_time("bar:AAA:not a time") is None
    assert ids.bar_trigger_time(None) is None
