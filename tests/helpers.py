"""Shared test helpers: wait for a condition instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T], *, timeout_s: float = 20.0, interval_s: float = 0.05, what: str = ""
) -> T:
    """Call ``probe`` until it returns a truthy value (returned) or raises no AssertionError.

    Fails with the last value or assertion message after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except AssertionError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"not true within {timeout_s}s{': ' + what if what else ''}; last={last!r}"
            )
        time.sleep(interval_s)
