"""Which journal lines an operator is told about, and the webhook's queue: journal order,
nothing queued twice, bounded (the oldest dropped and counted), a failed try waits for the
backoff, and the cursor a restart resumes from."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tradeplane.core.retry import Backoff
from tradeplane.telemetry.alerts import Delivery, alert_of


def line(seq: int, kind: str, data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "event_id": f"ev-{seq}",
        "kind": kind,
        "deployment": "demo",
        "strategy": None,
        "ts": "2026-12-05T10:00:00.000000Z",
        "data": data if data is not None else {},
        **extra,
    }


@pytest.mark.parametrize(
    ("kind", "data", "name"),
    [
        (
            "kill_switch_activated",
            {"source": "risk", "reason": "daily_loss"},
            "kill_switch_tripped",
        ),
        ("health_changed", {"health": "failed", "reason": "x"}, "health_failed"),
        ("health_changed", {"health": "feed_silent", "reason": "x"}, "feed_silent"),
        ("recovery_exhausted", {"target": "risk", "reason": "x"}, "recovery_exhausted"),
        ("journal_lost", {"reason": "journal_lost: gone"}, "journal_lost"),
        ("drift_alert", {"strategy": "sma", "figure": "fill_slippage_bps"}, "drift_alert"),
        ("telemetry_spans_dropped", {"dropped": 12}, "spans_dropped"),
    ],
)
def test_alert_of_operator_event_then_named_with_its_event_id_as_key(
    kind: str, data: dict[str, Any], name: str
) -> None:
    alert = alert_of(line(7, kind, data))
    assert alert is not None
    assert (alert.name, alert.key, alert.seq) == (name, "ev-7", 7)
    body = alert.body
    assert body["alert"] == name and body["kind"] == kind and body["event_id"] == "ev-7"
    assert body["deployment"] == "demo" and body["data"] == data
    assert body["summary"].startswith("demo: ")


def test_alert_of_drift_alert_then_strategy_named_in_the_body() -> None:
    alert = alert_of(line(3, "drift_alert", {"strategy": "sma", "figure": "f"}, strategy="sma"))
    assert alert is not None and alert.body["strategy"] == "sma"
    assert "strategy sma drifts" in alert.body["summary"]


@pytest.mark.parametrize(
    "kind_data",
    [
        ("health_changed", {"health": "ok"}),
        ("health_changed", {"health": "recovering"}),
        ("kill_switch_cleared", {}),
        ("bar", {}),
        ("order_filled", {}),
    ],
)
def test_alert_of_other_events_then_none(kind_data: tuple[str, dict[str, Any]]) -> None:
    assert alert_of(line(1, *kind_data)) is None


def delivery(max_queue: int = 10, cursor: int = 0) -> Delivery:
    return Delivery(max_queue, Backoff(1.0, 8.0, jitter=0.0, rng=random.Random(0)), cursor=cursor)


def kill(seq: int) -> dict[str, Any]:
    return line(seq, "kill_switch_activated", {"source": "operator", "reason": "test"})


def test_offer_same_lines_twice_or_older_ones_then_each_alert_queued_once() -> None:
    d = delivery(cursor=1)
    d.offer([kill(1), kill(2), line(3, "bar"), kill(4)])
    d.offer([kill(2), line(3, "bar"), kill(4)])
    assert [a.seq for a in d.queue] == [2, 4]


def test_failed_try_then_same_alert_after_a_doubling_wait_and_order_kept() -> None:
    d = delivery()
    d.offer([kill(1), kill(2)])
    first = d.due(100.0)
    assert first is not None and first.seq == 1
    assert d.failed(first, "HTTP 503", 100.0) == 1.0
    assert d.due(100.5) is None and d.wait_s(100.5) == 0.5
    assert d.due(101.0) is first
    assert d.failed(first, "HTTP 503", 101.0) == 2.0
    assert d.due(102.9) is None
    d.sent(first)
    nxt = d.due(102.9)  # the next one is tried at once, its backoff fresh
    assert nxt is not None and nxt.seq == 2
    assert d.failed(nxt, "x", 103.0) == 1.0


def test_queue_full_then_oldest_dropped_counted_and_cursor_past_them() -> None:
    d = delivery(max_queue=2)
    assert d.offer([kill(1), kill(2), kill(3), kill(4)]) == 2
    assert [a.seq for a in d.queue] == [3, 4] and d.dropped == 2
    assert d.resume_at() == 2


def test_resume_at_then_before_the_oldest_undelivered_else_the_last_line_seen() -> None:
    d = delivery(cursor=5)
    assert d.resume_at() == 5
    d.offer([line(6, "bar"), kill(7), line(8, "bar"), kill(9), line(10, "bar")])
    assert d.resume_at() == 6
    head = d.due(0.0)
    assert head is not None
    d.sent(head)
    assert d.resume_at() == 8
    head = d.due(0.0)
    assert head is not None
    d.refused(head, "HTTP 400")
    assert d.resume_at() == 10 and (d.delivered, d.rejected) == (1, 1)


def test_head_dropped_while_its_post_ran_then_the_answer_moves_nothing() -> None:
    d = delivery(max_queue=1)
    d.offer([kill(1)])
    head = d.due(0.0)
    assert head is not None
    d.offer([kill(2)])  # overflows: kill(1) dropped meanwhile
    d.sent(head)
    assert [a.seq for a in d.queue] == [2] and d.delivered == 0


def test_told_directly_then_sent_first_outside_the_cursor_and_its_journaled_copy_skipped() -> None:
    d = delivery(cursor=0)
    d.offer([kill(1)])
    lost = {**line(0, "journal_lost", {"reason": "gone"}), "seq": None, "event_id": "ev-lost"}
    assert d.tell(lost) and not d.tell(lost)
    head = d.due(0.0)
    assert head is not None and head.key == "ev-lost"
    d.sent(head)
    assert d.resume_at() == 0  # kill(1) still to send
    d.offer([{**lost, "seq": 2}])  # the journal came back and holds it
    assert [a.key for a in d.queue] == ["ev-1"]
