"""A source-wide rule: no ``asyncio.wait_for``. On Python 3.11 it can swallow a cancellation that
arrives as the awaited call completes (CPython gh-86296): a loop around it then never stops, and
stopping a feed waits forever. ``asyncio.timeout()`` passes the cancellation on."""

from __future__ import annotations

import re
from pathlib import Path

import tradeplane

PACKAGE = Path(tradeplane.__file__).parent


def test_no_module_uses_asyncio_wait_for() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{n}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bwait_for\(", line) and not line.lstrip().startswith("#")
    ]
    assert offenders == [], f"use asyncio.timeout() instead of wait_for: {offenders}"
