"""The bound on rejected venue messages journaled: the first few per window and source one by
one, the rest counted and summarised once the window is over; nothing counted goes unsaid."""

from __future__ import annotations

import pytest

from tradeplane.core.rejection_limit import MAX_REASONS, OTHER_REASONS, RejectionLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_few_in_a_window_then_journaled_one_by_one_and_the_rest_counted() -> None:
    clock = Clock()
    limiter = RejectionLimiter(3, 60.0, clock)
    decisions = [limiter.admit("okx", "bad price")[0] for _ in range(10)]
    assert decisions == [True] * 3 + [False] * 7
    assert limiter.total == {"okx": 10}


def test_window_over_then_one_summary_with_the_count_and_a_fresh_allowance() -> None:
    clock = Clock()
    limiter = RejectionLimiter(2, 60.0, clock)
    for _ in range(5):
        limiter.admit("okx", "bad price")
    clock.now += 60.0
    one, closed = limiter.admit("okx", "bad price")
    assert one is True  # a new window: journaled again
    (summary,) = closed
    assert (summary.source, summary.journaled, summary.suppressed) == ("okx", 2, 3)
    assert summary.reasons == {"bad price": 3}
    assert summary.as_data()["window_s"] == 60.0


def test_window_not_over_then_no_summary_yet() -> None:
    clock = Clock()
    limiter = RejectionLimiter(1, 60.0, clock)
    limiter.admit("okx", "x")
    limiter.admit("okx", "x")
    clock.now += 59.9
    assert limiter.flush() == []


def test_flood_stopped_then_flush_after_the_window_summarises_it() -> None:
    clock = Clock()
    limiter = RejectionLimiter(1, 10.0, clock)
    for _ in range(4):
        limiter.admit("binance", "x")
    clock.now += 10.0
    (summary,) = limiter.flush()
    assert summary.suppressed == 3
    assert limiter.flush() == []  # said once


def test_window_without_suppressed_rejections_then_no_summary() -> None:
    clock = Clock()
    limiter = RejectionLimiter(5, 10.0, clock)
    limiter.admit("okx", "x")
    clock.now += 11.0
    assert limiter.flush() == []


def test_sources_are_bounded_apart() -> None:
    clock = Clock()
    limiter = RejectionLimiter(1, 60.0, clock)
    assert limiter.admit("okx", "x")[0] is True
    assert limiter.admit("okx", "x")[0] is False
    assert limiter.admit("binance", "x")[0] is True


def test_drain_on_stop_then_every_open_window_with_suppressed_ones_summarised() -> None:
    clock = Clock()
    limiter = RejectionLimiter(0, 60.0, clock)
    limiter.admit("okx", "a")
    limiter.admit("ib", "b")
    assert sorted((s.source, s.suppressed) for s in limiter.drain()) == [("ib", 1), ("okx", 1)]
    assert limiter.drain() == []


def test_many_distinct_reasons_then_counted_under_a_bounded_set_of_keys() -> None:
    clock = Clock()
    limiter = RejectionLimiter(0, 60.0, clock)
    for i in range(100):
        limiter.admit("okx", f"price {i} is not a decimal")
    (summary,) = limiter.drain()
    assert len(summary.reasons) == MAX_REASONS + 1
    assert summary.reasons[OTHER_REASONS] == 100 - MAX_REASONS
    assert sum(summary.reasons.values()) == summary.suppressed == 100


def test_journal_growth_per_window_bounded_whatever_the_flood() -> None:
    clock = Clock()
    limiter = RejectionLimiter(10, 60.0, clock)
    journaled = summaries = 0
    for i in range(100_000):  # 100k rejections over 10 minutes of injected time
        clock.now = 1000.0 + i * 0.006
        one, closed = limiter.admit("okx", "garbage")
        journaled += one
        summaries += len(closed)
    summaries += len(limiter.drain())
    windows = 10  # 600 s / 60 s
    assert journaled <= 10 * (windows + 1)
    assert summaries <= windows + 1


@pytest.mark.parametrize(("per_window", "window_s"), [(-1, 60.0), (1, 0.0), (1, float("nan"))])
def test_bad_bounds_then_refused(per_window: int, window_s: float) -> None:
    with pytest.raises(ValueError):
        RejectionLimiter(per_window, window_s, Clock())
