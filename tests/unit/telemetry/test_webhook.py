"""The alert webhook's sender against a real HTTP receiver on 127.0.0.1 (``http.server`` in a
thread): journal order, the idempotency key, retry with backoff while the receiver is down or
answers 5xx / 429, a refused event skipped, the bounded queue, a restart that resumes from its
cursor, and a URL token that never shows. Time is a manual monotonic clock: a retry is due only
when the test moves it."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.telemetry.test_alerts import kill, line
from tests.webhook_receiver import Receiver
from tradeplane.config.alerts import AlertsConfig
from tradeplane.telemetry.webhook import WebhookSender, load_cursor

TOKEN = "T0ken-in-the-path-9f8e"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def sender(
    url: str, state_dir: Path | None, clock: Clock, *, start_seq: int = 0, **cfg: Any
) -> WebhookSender:
    alerts = AlertsConfig(webhook_url=url, retry_first_s=1.0, retry_max_s=8.0, **cfg)
    return WebhookSender(
        alerts, state_dir=state_dir, start_seq=start_seq, clock=clock, rng=random.Random(7)
    )


async def drain(s: WebhookSender) -> list[str | None]:
    """Try until nothing is due now; the outcomes."""
    out: list[str | None] = []
    while (outcome := await s.try_once()) is not None:
        out.append(outcome)
    return out


JOURNAL = [
    kill(1),
    line(2, "bar"),
    line(3, "health_changed", {"health": "ok", "reason": "bars flowing"}),
    line(4, "health_changed", {"health": "feed_silent", "reason": "no bar for 31 s"}),
    line(5, "recovery_exhausted", {"target": "risk", "reason": "died 3 times"}),
    line(6, "order_filled"),
]


def test_alerts_then_posted_in_journal_order_as_json_with_the_event_id_as_key(
    receiver: Receiver, tmp_path: Path
) -> None:
    async def scenario() -> None:
        s = sender(receiver.url(), tmp_path, Clock())
        s.offer(JOURNAL)
        assert await drain(s) == ["sent", "sent", "sent"]
        await s.close()

    asyncio.run(scenario())
    assert receiver.keys() == ["ev-1", "ev-4", "ev-5"]
    names = [body["alert"] for _, body, _ in receiver.posts]
    assert names == ["kill_switch_tripped", "feed_silent", "recovery_exhausted"]
    _, body, headers = receiver.posts[2]
    assert headers["Content-Type"] == "application/json"
    assert body["event_id"] == "ev-5" and body["deployment"] == "demo" and body["seq"] == 5
    assert body["data"] == {"target": "risk", "reason": "died 3 times"}
    assert load_cursor(tmp_path, default=100) == 6  # everything read is settled


def test_receiver_down_then_retried_with_a_doubling_backoff_and_delivered_once_it_is_up(
    tmp_path: Path,
) -> None:
    receiver = Receiver()  # not started: connection refused
    clock = Clock()

    async def scenario() -> None:
        s = sender(receiver.url(), tmp_path, clock)
        s.offer(JOURNAL)
        assert await drain(s) == ["failed"]
        first = s.delivery.wait_s(clock())
        assert first is not None and 0.8 <= first <= 1.2
        clock.t += first
        assert await drain(s) == ["failed"]
        second = s.delivery.wait_s(clock())
        assert second is not None and 1.6 <= second <= 2.4
        clock.t += second - 0.01
        assert await drain(s) == []  # not due yet
        assert s.delivery.resume_at() == 0  # nothing delivered: a restart resumes at ev-1
        receiver.start()
        clock.t += 0.01
        assert await drain(s) == ["sent", "sent", "sent"]
        assert s.delivery.summary()["failures"] == 2
        await s.close()

    try:
        asyncio.run(scenario())
    finally:
        receiver.stop()
    assert receiver.keys() == ["ev-1", "ev-4", "ev-5"]


def test_5xx_and_429_then_retried_and_4xx_then_refused_and_skipped(
    receiver: Receiver, tmp_path: Path
) -> None:
    clock = Clock()
    receiver.statuses = [503, 429, 200, 400, 200]

    async def scenario() -> None:
        s = sender(receiver.url(), tmp_path, clock)
        s.offer(JOURNAL)
        assert await drain(s) == ["failed"]
        clock.t += 10
        assert await drain(s) == ["failed"]
        clock.t += 10
        assert await drain(s) == ["sent", "refused", "sent"]
        summary = s.delivery.summary()
        assert (summary["delivered"], summary["rejected"], summary["failures"]) == (2, 1, 2)
        assert summary["last_error"] == "HTTP 400"
        await s.close()

    asyncio.run(scenario())
    assert receiver.keys() == ["ev-1", "ev-1", "ev-1", "ev-4", "ev-5"]


def test_queue_full_while_receiver_down_then_oldest_dropped_and_counted(tmp_path: Path) -> None:
    receiver = Receiver()
    clock = Clock()

    async def scenario() -> None:
        s = sender(receiver.url(), tmp_path, clock, max_queue_events=2)
        s.offer(JOURNAL)
        assert [a.key for a in s.delivery.queue] == ["ev-4", "ev-5"]
        assert s.delivery.summary()["dropped"] == 1
        receiver.start()
        assert await drain(s) == ["sent", "sent"]
        await s.close()

    try:
        asyncio.run(scenario())
    finally:
        receiver.stop()
    assert receiver.keys() == ["ev-4", "ev-5"]


def test_restart_then_resumes_from_its_cursor_and_resends_only_what_was_queued(
    receiver: Receiver, tmp_path: Path
) -> None:
    clock = Clock()
    receiver.statuses = [200, 503]

    async def first_run() -> None:
        s = sender(receiver.url(), tmp_path, clock)
        s.offer(JOURNAL)
        assert await drain(s) == ["sent", "failed"]
        await s.close()  # killed here: ev-4 and ev-5 still queued

    async def second_run() -> None:
        start = load_cursor(tmp_path, default=6)
        assert start == 3
        s = sender(receiver.url(), tmp_path, clock, start_seq=start)
        s.offer(JOURNAL)  # the journal read again from the start: older lines are ignored
        assert [a.key for a in s.delivery.queue] == ["ev-4", "ev-5"]
        assert await drain(s) == ["sent", "sent"]
        await s.close()

    asyncio.run(first_run())
    asyncio.run(second_run())
    assert receiver.keys() == ["ev-1", "ev-4", "ev-4", "ev-5"]


def test_crash_after_a_post_before_the_cursor_was_saved_then_resent_with_the_same_key(
    receiver: Receiver, tmp_path: Path
) -> None:
    async def scenario() -> None:
        s = sender(receiver.url(), None, Clock())  # saves no cursor: as if killed after POST
        s.offer(JOURNAL[:1])
        assert await drain(s) == ["sent"]
        await s.close()
        again = sender(receiver.url(), None, Clock())
        again.offer(JOURNAL[:1])
        assert await drain(again) == ["sent"]
        await again.close()

    asyncio.run(scenario())
    # At least once: the receiver sees ev-1 twice and dedupes by the key.
    assert receiver.keys() == ["ev-1", "ev-1"] and len(set(receiver.keys())) == 1


def test_url_with_a_token_then_never_in_errors_summary_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver()  # down: the error is logged
    url = receiver.url(f"/services/{TOKEN}") + f"?key={TOKEN}"

    async def scenario() -> dict[str, Any]:
        s = sender(url, tmp_path, Clock())
        s.offer(JOURNAL[:1])
        with caplog.at_level(logging.DEBUG, logger="tradeplane.alerts"):
            assert await drain(s) == ["failed"]
        summary = s.summary()
        await s.close()
        return summary

    summary = asyncio.run(scenario())
    assert summary["webhook"] == f"http://127.0.0.1:{receiver.port}/***"
    assert summary["last_error"] and TOKEN not in json.dumps(summary)
    assert caplog.records and all(TOKEN not in r.getMessage() for r in caplog.records)
    assert TOKEN not in repr(AlertsConfig(webhook_url=url))


def test_run_loop_then_sends_what_is_offered_and_sleeps_when_nothing_is(
    receiver: Receiver, tmp_path: Path
) -> None:
    async def scenario() -> None:
        import time

        s = sender(receiver.url(), tmp_path, Clock())
        task = asyncio.create_task(s.run())
        s.offer(JOURNAL)
        deadline = time.monotonic() + 10
        while len(receiver.posts) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        await s.close()

    asyncio.run(scenario())
    assert receiver.keys() == ["ev-1", "ev-4", "ev-5"]


def test_journal_lost_told_directly_then_posted_ahead_of_the_journals_alerts(
    receiver: Receiver, tmp_path: Path
) -> None:
    lost = {**line(0, "journal_lost", {"reason": "gone"}), "seq": None, "event_id": "ev-lost"}

    async def scenario() -> None:
        s = sender(receiver.url(), tmp_path, Clock())
        s.offer(JOURNAL)
        s.tell(lost)
        assert await drain(s) == ["sent"] * 4
        await s.close()

    asyncio.run(scenario())
    assert receiver.keys() == ["ev-lost", "ev-1", "ev-4", "ev-5"]
    assert receiver.posts[0][1]["alert"] == "journal_lost"


def test_settle_before_a_stop_then_what_is_queued_delivered_and_a_down_receiver_keeps_it(
    receiver: Receiver, tmp_path: Path
) -> None:
    async def scenario(url: str, timeout_s: float) -> int:
        s = sender(url, tmp_path, Clock())
        task = asyncio.create_task(s.run())
        s.offer(JOURNAL)
        await s.settle(timeout_s)
        task.cancel()
        await s.close()
        return int(s.delivery.summary()["queued"])

    assert asyncio.run(scenario(receiver.url(), 10.0)) == 0
    assert receiver.keys() == ["ev-1", "ev-4", "ev-5"]
    down = Receiver()  # never started
    assert asyncio.run(scenario(down.url(), 0.3)) == 3
