"""What the drift tracker (``backtest.drift``) accumulates per strategy and for the total as it
cuts rows: a running spread (Welford) for the tracking error, weighted means for slippage, the
execution-quality samples, and each track's figures with their snapshot form."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Execution-quality samples kept per strategy and venue for the percentiles (a bounded window).
QUALITY_WINDOW = 2_000


@dataclass(slots=True)
class Welford:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n >= 2 else None


@dataclass(slots=True)
class Weighted:
    total: float = 0.0
    weight: float = 0.0

    def add(self, value: float, weight: float) -> None:
        self.total += value * weight
        self.weight += weight

    def mean(self) -> float | None:
        return self.total / self.weight if self.weight > 0 else None


@dataclass(slots=True)
class Quality:
    slippage_bps: deque[float] = field(default_factory=lambda: deque(maxlen=QUALITY_WINDOW))
    ack_ms: deque[float] = field(default_factory=lambda: deque(maxlen=QUALITY_WINDOW))
    fill_ms: deque[float] = field(default_factory=lambda: deque(maxlen=QUALITY_WINDOW))
    fills: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "fills": self.fills,
            "slippage_bps": spread(self.slippage_bps),
            "ack_latency_ms": spread(self.ack_ms),
            "fill_latency_ms": spread(self.fill_ms),
        }


def spread(values: Iterable[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"mean": None, "p50": None, "p95": None, "max": None}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def shown(value: float) -> float:
        return round(value, 4) + 0.0  # no -0.0 in the file

    return {
        "mean": shown(sum(ordered) / len(ordered)),
        "p50": shown(pick(0.5)),
        "p95": shown(pick(0.95)),
        "max": shown(ordered[-1]),
    }


@dataclass(slots=True)
class Track:
    """One strategy's (or the total's) figures as rows are cut."""

    start_equity: float
    live_equity: float
    shadow_equity: float
    peak: float
    max_drawdown: float = 0.0
    day: str | None = None
    day_start_equity: float = 0.0
    prev_live: float = 0.0
    prev_shadow: float = 0.0
    tracking: Welford = field(default_factory=Welford)
    slippage: Weighted = field(default_factory=Weighted)
    intents_live: int = 0
    intents_shadow: int = 0
    missing: int = 0
    extra: int = 0
    above: set[str] = field(default_factory=set)  # figures currently over their threshold

    def snapshot(self) -> dict[str, Any]:
        plain = {f: getattr(self, f) for f in TRACK_NUMBERS}
        w, s = self.tracking, self.slippage
        return plain | {
            "tracking": [w.n, w.mean, w.m2],
            "slippage": [s.total, s.weight],
            "above": sorted(self.above),
        }

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> Track:
        track = cls(**{f: snap[f] for f in TRACK_NUMBERS})
        n, mean, m2 = snap["tracking"]
        track.tracking = Welford(int(n), float(mean), float(m2))
        track.slippage = Weighted(*map(float, snap["slippage"]))
        track.above = set(snap["above"])
        return track


TRACK_NUMBERS = (
    "start_equity",
    "live_equity",
    "shadow_equity",
    "peak",
    "max_drawdown",
    "day",
    "day_start_equity",
    "prev_live",
    "prev_shadow",
    "intents_live",
    "intents_shadow",
    "missing",
    "extra",
)
