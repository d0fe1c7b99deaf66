"""How the runtime waits before trying a transient failure again: the policies its retry loops
share, on ``tenacity``.

Every loop built here retries only ``Exception`` subclasses it names (or a result it names):
``asyncio.CancelledError`` is a ``BaseException`` and is never retried, so cancelling the task
that runs a loop ends it at once, whether it is waiting or trying. Nothing here sleeps by
itself: ``tenacity.AsyncRetrying`` does, with the ``sleep`` a caller may inject.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import AsyncRetrying, RetryCallState
from tenacity.wait import wait_base

Sleep = Callable[[float], Awaitable[None]]


class Backoff(wait_base):
    """Waits that double from ``first_s`` up to ``max_s``, each spread by ±``jitter`` (a
    fraction of the wait); ``reset`` after a success.

    It counts its own attempts instead of tenacity's, so a loop that stays inside one long
    attempt (a connection that came up, then dropped an hour later) can ``reset`` it the moment
    the connection is up. A tenacity ``wait``; ``next`` for a caller that sleeps by itself."""

    def __init__(
        self,
        first_s: float = 0.5,
        max_s: float = 30.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.attempts = 0

    def next(self) -> float:
        base = min(self.max_s, self.first_s * 2**self.attempts)
        self.attempts += 1
        spread = base * self.jitter
        return max(0.0, min(self.max_s, base + self.rng.uniform(-spread, spread)))

    def reset(self) -> None:
        self.attempts = 0

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.next()


Wait = wait_base | Callable[[RetryCallState], float]


def retrying(
    wait: Wait,
    *,
    on: tuple[type[Exception], ...],
    give_up_after_s: float | None = None,
    before_sleep: Callable[[RetryCallState], Any] | None = None,
    sleep: Sleep | None = None,
) -> AsyncRetrying:
    """Retry an async call while it raises one of ``on``; anything else (cancellation
    included) propagates at once. Past ``give_up_after_s`` the last error is re-raised.

    Call it with an ``async def`` (or a bound async method): tenacity treats any other callable
    as synchronous, so a lambda returning a coroutine would be "done" without being awaited.
    One call at a time per object (tenacity keeps a call's state on it): a loop may reuse one,
    concurrent callers each build their own."""
    from tenacity import retry_if_exception_type, stop_after_delay, stop_never

    kwargs: dict[str, Any] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    return AsyncRetrying(
        wait=wait,
        retry=retry_if_exception_type(on),
        stop=stop_never if give_up_after_s is None else stop_after_delay(give_up_after_s),
        before_sleep=before_sleep,
        reraise=True,
        **kwargs,
    )


def failure(retry_state: RetryCallState) -> Exception:
    """The exception the attempt just before a wait raised (for ``before_sleep`` hooks; only
    an ``Exception`` is ever retried)."""
    assert retry_state.outcome is not None
    exc = retry_state.outcome.exception()
    assert isinstance(exc, Exception)
    return exc
