"""The journal's background threads run between bursts of commits (``journal.checkpoint``)."""

from __future__ import annotations

import threading
import time

from tests.helpers import eventually
from tradeplane.journal.checkpoint import _Coalescer


class _Counting(_Coalescer):
    def __init__(self, delay_s: float, quiet_s: float, max_wait_s: float) -> None:
        self.done = threading.Event()
        self.count = 0
        super().__init__("test-coalescer", delay_s, quiet_s, max_wait_s)

    def _work(self) -> bool:
        self.count += 1
        self.done.set()
        return True


def test_coalescer_when_commits_keep_coming_then_runs_only_after_a_quiet_gap() -> None:
    worker = _Counting(delay_s=0.0, quiet_s=1.0, max_wait_s=60.0)
    try:
        burst_end = time.monotonic() + 0.3
        while time.monotonic() < burst_end:  # each wake is well within the quiet gap
            worker.wake()
            time.sleep(0.01)
        assert worker.count == 0  # nothing runs while commits keep coming
        eventually(lambda: worker.count == 1, timeout_s=10, what="the run after the burst")
    finally:
        worker._join()


def test_coalescer_when_never_quiet_then_runs_after_max_wait() -> None:
    worker = _Counting(delay_s=0.0, quiet_s=3600.0, max_wait_s=0.1)
    try:
        worker.wake()
        eventually(lambda: worker.count >= 1, timeout_s=10, what="a run despite no quiet gap")
    finally:
        worker._join()


def test_coalescer_when_stopped_during_its_delay_then_returns_without_running() -> None:
    worker = _Counting(delay_s=3600.0, quiet_s=0.0, max_wait_s=0.0)
    worker.wake()
    worker._join()  # returns at once, not after the delay
    assert worker.count == 0
