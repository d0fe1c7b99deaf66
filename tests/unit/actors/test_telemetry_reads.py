"""The telemetry actor's journal reads: every export interval while lines come in, backing off
to at most 2 s while none do."""

from __future__ import annotations

from tradeplane.actors.telemetry import IDLE_READ_MAX_S, idle_wait_s


def test_lines_read_last_round_then_next_read_after_the_export_interval() -> None:
    assert idle_wait_s(0.25, 0) == 0.25
    assert idle_wait_s(0.25, 1) == 0.25


def test_quiet_rounds_then_wait_doubles_up_to_two_seconds() -> None:
    waits = [idle_wait_s(0.25, n) for n in range(1, 8)]
    assert waits == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert IDLE_READ_MAX_S == 2.0


def test_export_interval_longer_than_the_idle_cap_then_interval_kept() -> None:
    assert idle_wait_s(5.0, 10) == 5.0
