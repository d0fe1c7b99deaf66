"""The garbage collector in the actors on the order path, measured and kept off that path.

CPython's cyclic collector runs whenever allocations outnumber deallocations by the generation-0
threshold (700 by default), and each run walks every object of the generations it collects. An
actor that has just restored its state holds hundreds of thousands of long-lived objects (Ray,
pydantic models, the restored tables), so its full collections walk all of them, and a few
milliseconds of an order's path went into a pause that freed nothing.

``settle_after_start_up`` is called once by each hot actor (strategy, risk, broker, journal) at
the end of its ``ready``: ``gc.freeze()`` moves every object alive at that point into the
permanent generation (never walked again; they live as long as the process anyway), and the
generation-0 threshold is raised so the young generation is collected less often. It does not
collect first: a full collection there took 50-130 ms on the loaded bench machine, on the path
of a restart's ``ready``; what it would have freed is whatever cyclic garbage start-up left, a
bounded amount kept once.
Reference counting still frees acyclic garbage at once; only cycles wait a little longer, and
``GEN0_THRESHOLD`` bounds how many. ``GcPauses`` times every collection in the process
(``gc.callbacks``), so heartbeats report how often the collector paused and for how long.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from typing import Any

# Allocations (net of deallocations) between young collections. At 10 orders/s and 3 200
# bars/s a hot actor crosses 700 several times per message; 20 000 makes a young collection a
# few times a second, each still short because the frozen start-up objects are not walked.
GEN0_THRESHOLD = 20_000
RECENT_PAUSES = 512


class GcPauses:
    """Every collection in this process: count, total and longest pause per generation, and
    the most recent pauses as (wall-clock start, ms, generation) for lining up with latency
    samples."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]
        self.recent: deque[tuple[float, float, int]] = deque(maxlen=RECENT_PAUSES)
        self._started = 0.0
        self._started_wall = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_wall = time.time()
            self._started = time.perf_counter()
            return
        ms = (time.perf_counter() - self._started) * 1000.0
        gen = int(info.get("generation", 2))
        self.count[gen] += 1
        self.total_ms[gen] += ms
        self.max_ms[gen] = max(self.max_ms[gen], ms)
        self.recent.append((self._started_wall, ms, gen))

    def summary(self) -> dict[str, Any]:
        return {
            "collections": list(self.count),
            "pause_ms_total": [round(v, 3) for v in self.total_ms],
            "pause_ms_max": [round(v, 3) for v in self.max_ms],
            "threshold": list(gc.get_threshold()),
            "frozen": gc.get_freeze_count(),
        }


_PAUSES: GcPauses | None = None
_SETTLED = False


def gc_pauses() -> GcPauses:
    """This process's collector timings (installed on first use)."""
    global _PAUSES
    if _PAUSES is None:
        _PAUSES = GcPauses()
        gc.callbacks.append(_PAUSES)
    return _PAUSES


def settle_after_start_up(threshold0: int = GEN0_THRESHOLD) -> None:
    """Once an actor has built and restored its state: freeze what is alive, and
    collect the young generation less often (the module docstring says why). Only the first
    call in a process does anything (an actor's ``ready`` may be called again)."""
    global _SETTLED
    if _SETTLED:
        return
    _SETTLED = True
    gc_pauses()
    gc.freeze()
    _, t1, t2 = gc.get_threshold()
    gc.set_threshold(threshold0, t1, t2)
