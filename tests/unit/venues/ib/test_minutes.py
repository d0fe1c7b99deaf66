"""IB's 1-minute bars joined from 5-second real-time bars and history (pure, TWS time passed
in): every interleaving of the two streams passes each minute on once, in order, and a minute
neither can give is reported, never skipped silently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradeplane.core.errors import InvalidMarketData
from tradeplane.core.model import Bar
from tradeplane.venues.ib.minutes import HISTORY_ASKS, HISTORY_RETRY, MinuteAggregator

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
S = timedelta(seconds=1)


def five_s(agg: MinuteAggregator, start: datetime, n: int, price: float = 100.0) -> list[Bar]:
    out: list[Bar] = []
    for i in range(n):
        ts = start + timedelta(seconds=5 * i)
        p = price + i
        out += agg.add("SPY", ts, p, p + 0.5, p - 0.5, p + 0.25, 10)
    return out


def history(*minutes: int) -> list[Bar]:
    return [Bar("SPY", T0 + k * MIN, 7, 7, 7, 7, 70) for k in minutes]


def minutes(*ks: int) -> list[datetime]:
    return [T0 + k * MIN for k in ks]


def ts_of(bars: list[Bar]) -> list[datetime]:
    return [b.ts for b in bars]


# -- one stream -------------------------------------------------------------------------------


def test_twelve_five_second_bars_then_one_minute_closed_at_the_55s_bar() -> None:
    agg = MinuteAggregator()
    assert five_s(agg, T0, 11) == []
    (bar,) = five_s(agg, T0 + 55 * S, 1, price=111.0)
    assert bar.ts == T0
    assert (bar.open, bar.high, bar.low, bar.close) == (100.0, 111.5, 99.5, 111.25)
    assert bar.volume == 120
    assert agg.market_time == T0 + MIN  # TWS's clock as its bars tell it


def test_last_slot_missed_then_minute_closed_by_the_next_minutes_first_bar() -> None:
    agg = MinuteAggregator()
    assert five_s(agg, T0, 10) == []
    assert ts_of(five_s(agg, T0 + MIN, 1)) == [T0]


def test_last_slot_missed_and_no_later_bar_then_minute_closed_once_its_end_has_passed() -> None:
    agg = MinuteAggregator()
    assert five_s(agg, T0, 11) == []  # the session's last minute, its :55 bar never comes
    assert agg.close_due(T0 + 59 * S) == []
    (closed,) = agg.close_due(T0 + MIN)
    assert (closed.ts, closed.open, closed.close) == (T0, 100.0, 110.25)
    assert agg.close_due(T0 + 5 * MIN) == []
    assert five_s(agg, T0 + 50 * S, 1) == []  # late: that minute is gone


def test_bad_five_second_bar_then_invalid_market_data_and_nothing_closed() -> None:
    agg = MinuteAggregator()
    with pytest.raises(InvalidMarketData):
        agg.add("SPY", T0, float("nan"), 1, 1, 1, 1)
    with pytest.raises(InvalidMarketData):
        agg.add("SPY", T0, -1.0, 1, 1, 1, 1)


def test_replayed_or_backfilled_minutes_then_each_passed_on_once() -> None:
    agg = MinuteAggregator()
    five_s(agg, T0, 12)
    assert five_s(agg, T0, 12) == []  # resubscribed: the same minute again
    later = history(0, 1, 2, 2)
    joined = agg.accept_closed("SPY", later)
    assert ts_of(joined.bars) == minutes(1, 2) and joined.backfilled == 2
    assert agg.accept_closed("SPY", later).bars == []


def test_fresh_start_mid_minute_then_that_minute_skipped_and_no_history_replayed() -> None:
    agg = MinuteAggregator()
    five_s(agg, T0 + 30 * S, 6)
    assert agg.from_history == {"SPY"}
    assert agg.accept_closed("SPY", history(-3, -2, -1, 0)).bars == []
    assert ts_of(five_s(agg, T0 + MIN, 12)) == [T0 + MIN]


def test_outage_cut_the_open_minute_then_it_is_dropped_not_closed_with_a_missing_tail() -> None:
    agg = MinuteAggregator()
    five_s(agg, T0, 6)
    agg.drop_open()
    assert ts_of(five_s(agg, T0 + MIN, 12)) == [T0 + MIN]  # T0 never passed on


# -- a minute joined late ---------------------------------------------------------------------


def test_minute_joined_late_then_taken_from_history_and_the_live_ones_after_it_wait() -> None:
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - 2 * MIN)
    assert five_s(agg, T0 + 20 * S, 8) == []  # :20 to :55: not a whole minute
    assert agg.from_history == {"SPY"}
    assert five_s(agg, T0 + MIN, 12) == []  # whole, but history goes first
    joined = agg.accept_closed("SPY", history(-1, 0, 1))
    assert ts_of(joined.bars) == minutes(-1, 0, 1) and joined.backfilled == 2
    assert joined.bars[-1].open == 100.0  # the live minute, not history's copy of it
    assert agg.from_history == set() and agg.last("SPY") == T0 + MIN
    assert ts_of(five_s(agg, T0 + 2 * MIN, 12)) == [T0 + MIN * 2]


def test_history_asked_before_it_has_the_late_minute_then_nothing_skipped_and_asked_again() -> None:
    """A reconnect mid-minute: the minute closes partial and history is asked a moment too
    soon (its row for that minute not there yet). That must not let the next live minute jump
    the gap (a flake of the IB integration test showed 20:39 then 20:41)."""
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - 2 * MIN)
    five_s(agg, T0 + 20 * S, 8)  # T0 joined late: closed partial
    assert agg.history_due(T0 + MIN) == set()  # not before the minute ends and settles
    asked = T0 + MIN + 2 * S
    assert agg.history_due(asked) == {"SPY"}
    five_s(agg, T0 + MIN, 12)  # T0+1 whole, held behind T0
    joined = agg.accept_closed("SPY", history(-2, -1), asked)  # T0's row not there yet
    assert ts_of(joined.bars) == minutes(-1)
    assert agg.from_history == {"SPY"} and agg.last("SPY") == T0 - MIN
    assert agg.history_due(asked + 14 * S) == set()  # IB's 15 s rule
    later = asked + 15 * S
    assert agg.history_due(later) == {"SPY"}
    joined = agg.accept_closed("SPY", history(-2, -1, 0, 1), later)
    assert ts_of(joined.bars) == minutes(0, 1)
    assert joined.bars[1].open == 100.0  # the live minute, not history's copy of it
    assert agg.from_history == set() and agg.history_due(later + HISTORY_RETRY) == set()


def test_history_past_a_late_minute_without_it_then_skipped_and_reported_as_it_traded() -> None:
    """History that has a later minute and not this one settles it as absent; live saw trades
    in it, so that is said, not passed over silently."""
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    five_s(agg, T0 + 20 * S, 8)
    five_s(agg, T0 + MIN, 12)
    joined = agg.accept_closed("SPY", history(-1, 1), T0 + 2 * MIN)
    assert ts_of(joined.bars) == minutes(1) and joined.backfilled == 0
    (gap,) = joined.missing
    assert (gap.first, gap.last, gap.minutes) == (T0, T0, 1)
    assert "SPY" in gap.describe() and "not in IB's history" in gap.describe()
    assert agg.from_history == set() and agg.last("SPY") == T0 + MIN


# -- interleavings that lost a minute ---------------------------------------------------------


def test_whole_minute_right_after_a_hole_then_held_until_history_fills_the_hole() -> None:
    """The flake "minutes skipped 00:35 -> 00:37": history asked at a resync (or a reconnect)
    reaches T0-1; the minute T0 passes while the feed is not yet taking live bars; live
    resumes exactly on T0+1's :00 bar, so T0+1 is whole. It must not be passed on before T0."""
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)  # what the resync's history reached
    assert five_s(agg, T0 + MIN, 12) == []
    assert agg.from_history == {"SPY"}
    assert agg.history_due(T0 + 2 * MIN) == {"SPY"}  # T0 ended long ago: ask at once
    joined = agg.accept_closed("SPY", history(-1, 0, 1), T0 + 2 * MIN)
    assert ts_of(joined.bars) == minutes(0, 1) and joined.backfilled == 1
    assert joined.bars[1].open == 100.0 and joined.missing == []
    assert ts_of(five_s(agg, T0 + 2 * MIN, 12)) == minutes(2)


def test_minute_closed_without_its_last_bar_after_a_hole_then_held_too() -> None:
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    five_s(agg, T0 + MIN, 11)  # T0+1 from :00, its :55 bar missed; T0 never seen
    assert agg.close_due(T0 + 2 * MIN + 10 * S) == []
    joined = agg.accept_closed("SPY", history(0, 1), T0 + 2 * MIN + 10 * S)
    assert ts_of(joined.bars) == minutes(0, 1)


def test_second_hole_after_the_held_minutes_then_filled_too_and_in_order() -> None:
    """While a late-joined minute waits for history, an outage cuts another: the answer must
    fill both holes, not stop at the first held minute."""
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    out = five_s(agg, T0 + 20 * S, 8)  # T0 partial
    out += five_s(agg, T0 + MIN, 12)  # T0+1 whole: held
    agg.drop_open()  # an outage: T0+2 never seen live
    out += five_s(agg, T0 + 3 * MIN + 30 * S, 6)  # T0+3 partial
    assert out == []
    joined = agg.accept_closed("SPY", history(-1, 0, 1, 2, 3), T0 + 4 * MIN)
    assert ts_of(joined.bars) == minutes(0, 1, 2, 3) and joined.backfilled == 3
    assert ts_of(five_s(agg, T0 + 4 * MIN, 12)) == minutes(4)


def test_hole_between_held_minutes_then_history_fills_it_between_them() -> None:
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    five_s(agg, T0 + 20 * S, 8)  # T0 partial
    five_s(agg, T0 + MIN, 12)  # T0+1 held
    five_s(agg, T0 + 3 * MIN, 12)  # T0+3 whole after a hole at T0+2: held
    joined = agg.accept_closed("SPY", history(0, 1, 2, 3), T0 + 4 * MIN)
    assert ts_of(joined.bars) == minutes(0, 1, 2, 3)
    assert [b.open for b in joined.bars] == [7, 100.0, 7, 100.0]  # live wherever live had it


def test_live_bars_of_a_held_minute_again_then_it_is_not_held_twice() -> None:
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    five_s(agg, T0 + 20 * S, 8)  # T0 partial
    five_s(agg, T0 + MIN, 12)  # T0+1 held
    assert five_s(agg, T0 + MIN, 12) == []  # the same minute again (resubscribed)
    assert five_s(agg, T0 + 40 * S, 4) == []  # and the minute history owes
    joined = agg.accept_closed("SPY", history(0, 1), T0 + 2 * MIN)
    assert ts_of(joined.bars) == minutes(0, 1)


def test_history_short_then_what_it_has_passed_on_and_the_held_minutes_keep_their_place() -> None:
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    five_s(agg, T0 + 20 * S, 8)  # T0 partial
    five_s(agg, T0 + MIN, 12)  # T0+1 held
    agg.drop_open()
    five_s(agg, T0 + 2 * MIN + 30 * S, 6)  # T0+2 partial: history now owes T0+2 too
    joined = agg.accept_closed("SPY", history(0, 1), T0 + 2 * MIN + 40 * S)  # short of T0+2
    assert ts_of(joined.bars) == minutes(0, 1) and agg.from_history == {"SPY"}
    joined = agg.accept_closed("SPY", history(0, 1, 2), T0 + 3 * MIN)
    assert ts_of(joined.bars) == minutes(2)


def test_history_never_reaches_the_needed_minute_then_given_up_reported_and_live_goes_on() -> None:
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    five_s(agg, T0 + 20 * S, 8)  # T0 partial
    five_s(agg, T0 + MIN, 12)  # T0+1 held
    now = T0 + 2 * MIN
    passed: list[Bar] = []
    reported = []
    for _ in range(HISTORY_ASKS + 4):
        if agg.history_due(now):
            joined = agg.accept_closed("SPY", history(-1), now)  # history stuck at T0-1
            passed += joined.bars
            reported += joined.missing
        now += HISTORY_RETRY
    assert ts_of(passed) == minutes(1), "live minutes held for ever"
    (gap,) = reported
    assert (gap.first, gap.last) == (T0, T0) and f"after {HISTORY_ASKS} asks" in gap.why
    assert agg.from_history == set() and agg.last("SPY") == T0 + MIN
    assert ts_of(five_s(agg, T0 + 2 * MIN, 12)) == minutes(2)  # not asked about T0 again


def test_history_unanswered_then_every_minute_it_owes_reported_in_runs() -> None:
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    five_s(agg, T0 + 20 * S, 8)  # T0 partial
    five_s(agg, T0 + MIN, 12)  # T0+1 held
    five_s(agg, T0 + 4 * MIN, 12)  # T0+4 held after a hole at T0+2..T0+3
    for k in range(HISTORY_ASKS):
        joined = agg.accept_closed("SPY", [], T0 + 5 * MIN + k * HISTORY_RETRY)
    assert ts_of(joined.bars) == minutes(1, 4)
    assert [(g.first, g.last) for g in joined.missing] == [(T0, T0), (T0 + 2 * MIN, T0 + 3 * MIN)]


def test_history_just_asked_then_not_asked_again_within_15s() -> None:
    """Every request of ours for a symbol is identical: IB's 15 s rule holds across a resync's
    backfill and a late-joined minute's."""
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    asked = T0 + 50 * S
    agg.accept_closed("SPY", history(-1), asked)  # a resync's backfill at T0:50
    five_s(agg, T0 + 50 * S, 2)  # T0 partial (live again from :50)
    assert agg.history_due(T0 + MIN + 2 * S) == set()  # 12 s after the last ask
    assert agg.history_due(asked + HISTORY_RETRY) == {"SPY"}


def test_resync_backfill_then_history_never_takes_the_minute_live_is_building() -> None:
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    five_s(agg, T0 + MIN, 6)  # T0+1 from :00, being built
    joined = agg.accept_closed("SPY", history(-1, 0, 1), T0 + 2 * MIN)
    assert ts_of(joined.bars) == minutes(0)
    assert ts_of(five_s(agg, T0 + MIN + 30 * S, 6)) == minutes(1)  # whole, from live


@pytest.mark.parametrize("joined_at_s", range(0, 60, 5))
@pytest.mark.parametrize("history_reaches", [-1, 0])
def test_any_rejoin_point_and_any_history_then_every_minute_once_and_in_order(
    joined_at_s: int, history_reaches: int
) -> None:
    """Live lost after T0-1; history asked then reaches ``history_reaches``; live resumes at
    T0+1 + ``joined_at_s``; history answers every later ask in full."""
    agg = MinuteAggregator()
    agg.seed("SPY", T0 - MIN)
    now = T0 + MIN + joined_at_s * S
    out = agg.accept_closed("SPY", history(*range(-1, history_reaches + 1)), now).bars
    for k in range(6):  # live on from the rejoin point for a few minutes
        start = T0 + MIN + k * MIN + (joined_at_s * S if k == 0 else timedelta(0))
        slots = 12 - joined_at_s // 5 if k == 0 else 12
        out += five_s(agg, start, slots)
        now = T0 + (k + 2) * MIN + 2 * S
        if agg.history_due(now):
            out += agg.accept_closed("SPY", history(*range(-1, k + 2)), now).bars
    assert ts_of(out) == minutes(*range(0, 7))
