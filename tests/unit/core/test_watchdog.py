import random

import pytest

from tradeplane.core.errors import IllegalTransition
from tradeplane.core.watchdog import LIFECYCLE, Lifecycle, RecoveryPolicy


def policy(**kw: object) -> RecoveryPolicy:
    args: dict[str, object] = {"max_attempts": 2, "window_s": 60.0, "jitter": 0.0}
    args.update(kw)
    return RecoveryPolicy(**args)  # type: ignore[arg-type]


def test_first_failure_then_retry_at_once_and_second_after_cooldown() -> None:
    p = policy(cooldown_s=0.5)
    d = p.on_failure("broker", 0.0)
    assert d.retry and d.delay_s == 0.0 and d.attempt == 1 and d.max_attempts == 2
    d = p.on_failure("broker", 1.0)
    assert d.retry and d.delay_s == 0.5 and d.attempt == 2


def test_each_further_attempt_in_window_then_wait_doubles_up_to_the_cap() -> None:
    p = policy(max_attempts=10, cooldown_s=1.0, backoff_max_s=5.0)
    delays = [p.on_failure("feed", float(t)).delay_s for t in range(5)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 5.0]


def test_jitter_then_wait_spread_within_its_fraction_and_never_past_the_cap() -> None:
    p = policy(max_attempts=1000, cooldown_s=1.0, backoff_max_s=3.0, jitter=0.2)
    p.rng = random.Random(5)
    first = [p.delay_for(2) for _ in range(200)]
    assert min(first) >= 0.8 and max(first) <= 1.2 and len(set(first)) > 100
    assert all(p.delay_for(6) <= 3.0 for _ in range(200))


def test_no_cooldown_then_every_retry_at_once() -> None:
    p = policy(max_attempts=5)
    assert [p.on_failure("risk", float(t)).delay_s for t in range(4)] == [0.0] * 4


def test_budget_exhausted_within_window_then_give_up_with_reason() -> None:
    p = policy()
    p.on_failure("broker", 0.0)
    p.on_failure("broker", 10.0)
    d = p.on_failure("broker", 20.0)
    assert not d.retry and "max_recovery_attempts 2" in d.reason and d.attempt == 2


def test_attempts_older_than_window_no_longer_count() -> None:
    p = policy()
    p.on_failure("broker", 0.0)
    p.on_failure("broker", 10.0)
    assert p.on_failure("broker", 65.0).retry  # the attempt at 0 has left the window
    assert p.attempts("broker", 65.0) == 2


def test_targets_have_separate_budgets() -> None:
    p = policy(max_attempts=1)
    assert p.on_failure("feed", 0.0).retry and p.on_failure("risk", 0.0).retry


def test_override_budget_for_one_target_then_that_limit_applies() -> None:
    p = policy(max_attempts=5)
    assert p.on_failure("strategy/a", 0.0, max_attempts=1).retry
    d = p.on_failure("strategy/a", 1.0, max_attempts=1)
    assert not d.retry and d.max_attempts == 1


def test_auto_recover_off_then_first_failure_gives_up() -> None:
    d = policy(auto_recover=False).on_failure("journal", 0.0)
    assert not d.retry and "auto_recover is off" in d.reason


def test_stopped_child_cannot_come_back_running() -> None:
    with pytest.raises(IllegalTransition):
        LIFECYCLE.check(Lifecycle.STOPPED, Lifecycle.RUNNING)


def test_suspended_strategy_cannot_come_back_running() -> None:
    with pytest.raises(IllegalTransition):
        LIFECYCLE.check(Lifecycle.SUSPENDED, Lifecycle.RUNNING)
