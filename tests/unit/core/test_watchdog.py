import pytest

from tradeplane.core.errors import IllegalTransition
from tradeplane.core.watchdog import LIFECYCLE, Lifecycle, RestartPolicy


def test_deaths_within_budget_then_restart_with_cooldown() -> None:
    p = RestartPolicy(max_restarts=2, window_s=60, cooldown_s=0.5)
    d = p.on_death("broker", 0.0)
    assert d.restart and d.delay_s == 0.5 and d.attempt == 1


def test_budget_exhausted_within_window_then_give_up_with_reason() -> None:
    p = RestartPolicy(max_restarts=2, window_s=60)
    p.on_death("broker", 0.0)
    p.on_death("broker", 10.0)
    d = p.on_death("broker", 20.0)
    assert not d.restart and "max_restarts 2" in d.reason


def test_attempts_older_than_window_no_longer_count() -> None:
    p = RestartPolicy(max_restarts=2, window_s=60)
    p.on_death("broker", 0.0)
    p.on_death("broker", 10.0)
    assert p.on_death("broker", 65.0).restart  # the attempt at 0 has left the window
    assert p.attempts("broker", 65.0) == 2


def test_children_have_separate_budgets() -> None:
    p = RestartPolicy(max_restarts=1, window_s=60)
    assert p.on_death("feed", 0.0).restart and p.on_death("risk", 0.0).restart


def test_stopped_child_cannot_come_back_running() -> None:
    with pytest.raises(IllegalTransition):
        LIFECYCLE.check(Lifecycle.STOPPED, Lifecycle.RUNNING)
