"""Shared test helpers: wait for a condition instead of sleeping; seeded garbage bytes."""

from __future__ import annotations

import random
import re
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


# Seeds of the corruption tests: each is in the test's id, so a failure names the bytes it used.
CORRUPTION_SEEDS = (1, 7, 20261204)


def seed_id(seed: int) -> str:
    return f"seed={seed}"


def garbage(rng: random.Random | int, n: int) -> bytes:
    """``n`` pseudo-random bytes from ``rng`` (or a fresh generator seeded with it): the same
    seed, the same bytes, so a corruption test that fails can be run again as it was."""
    if isinstance(rng, int):
        rng = random.Random(rng)
    return rng.randbytes(n)


# A line Ray itself writes: glog-style `[2026-01-01 00:00:00,000 W 123 123] file.cc:1: ...`, or
# Python logging's `2026-01-01 00:00:00,000\tWARNING file.py:1 -- ...` (its token-auth notice).
RAY_LOG_LINE = re.compile(
    r"^\[?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(?:[IWEF] |INFO|WARNING|ERROR)"
)


def ray_lines(text: str) -> list[str]:
    """Ray's own log lines in a CLI's output: they belong in Ray's logs."""
    return [line for line in text.splitlines() if RAY_LOG_LINE.match(line)]
