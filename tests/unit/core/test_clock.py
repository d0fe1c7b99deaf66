"""The injected clocks: ``ManualClock`` steps its wall clock alone, ``WallStepWatch`` notices."""

import pytest

from tradeplane.core.clock import ManualClock, WallStepWatch


def test_manual_clock_wall_step_either_way_then_monotonic_reading_unmoved() -> None:
    clock = ManualClock(1_000.0)
    clock.advance(5.0)
    clock.step_wall(-3600.0)
    assert (clock.now(), clock.monotonic()) == (1_000.0 + 5.0 - 3600.0, 5.0)
    clock.step_wall(7200.0)
    assert (clock.now(), clock.monotonic()) == (1_000.0 + 5.0 + 3600.0, 5.0)


def test_manual_clock_advanced_backwards_then_refused() -> None:
    with pytest.raises(ValueError):
        ManualClock().advance(-1.0)


def test_wall_clock_steps_back_an_hour_then_the_watch_reports_the_step_once() -> None:
    clock, watch = ManualClock(), WallStepWatch()
    assert watch.look(clock.now(), clock.monotonic()) is None
    clock.advance(2.0)
    clock.step_wall(-3600.0)
    assert watch.look(clock.now(), clock.monotonic()) == pytest.approx(-3600.0)
    clock.advance(2.0)
    assert watch.look(clock.now(), clock.monotonic()) is None


def test_wall_clock_slewed_half_a_millisecond_a_second_for_a_day_then_never_a_step() -> None:
    clock, watch = ManualClock(), WallStepWatch()
    for _ in range(86_400 // 2):
        clock.advance(2.0)
        clock.step_wall(0.001)  # 500 ppm: the most NTP slews
        assert watch.look(clock.now(), clock.monotonic()) is None
