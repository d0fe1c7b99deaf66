"""What a report shows, as plain data: no journal, no file format, no plotting library.

Times are epoch seconds (UTC); figures turn them into dates. Every series is already bounded in
length (``downsample``), so a long-running deployment does not make a page of megabytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_POINTS = 2000
"""Points kept per series: about a screen's width twice over, as backtest_report.json's curves."""


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    ts: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.ts) != len(self.values):
            raise ValueError(
                f"series {self.name!r}: {len(self.ts)} times, {len(self.values)} values"
            )

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True, slots=True)
class FillMark:
    ts: float
    strategy: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: float
    price: float


@dataclass(frozen=True, slots=True)
class HealthChange:
    ts: float
    health: str
    previous: str
    reason: str


@dataclass(frozen=True, slots=True)
class Incident:
    """Something an operator looks for beside the health line: a death, a halt, a restart."""

    ts: float
    kind: str  # the journal's event kind
    detail: str


@dataclass(frozen=True, slots=True)
class DriftTable:
    """``live_drift.csv`` as columns; a value that is missing or not a number is None."""

    ts: tuple[float, ...]
    columns: dict[str, tuple[float | None, ...]]


@dataclass(slots=True)
class ReportData:
    title: str
    source: str  # what the report was made from (a state dir, a backtest dir)
    kind: str  # "live" | "backtest"
    equity: list[Series] = field(default_factory=list)  # "total" first when known
    equity_is_pnl: bool = False  # starting capital unknown: the curves are P&L from 0
    baseline: Series | None = None  # the baseline backtest's total equity
    baseline_source: str | None = None
    prices: dict[str, Series] = field(default_factory=dict)
    price_source: str = ""  # where the price lines come from ("bars", "bar summaries", "fills")
    fills: list[FillMark] = field(default_factory=list)
    denials: dict[str, int] = field(default_factory=dict)
    health: list[HealthChange] = field(default_factory=list)
    health_until: float | None = None  # the journal's last event: the last state lasts until it
    incidents: list[Incident] = field(default_factory=list)
    tick_to_order_ms: list[float] = field(default_factory=list)
    drift: DriftTable | None = None
    drift_note: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)  # the header table
    notes: list[str] = field(default_factory=list)  # what was skipped or assumed, and why


def downsample(ts: Sequence[float], values: Sequence[float], limit: int = MAX_POINTS) -> Series:
    """At most ``limit`` points, evenly by index, first and last kept (as the backtest report's
    curves are); the name is set by the caller through ``named``."""
    n = len(ts)
    if n <= limit:
        return Series("", tuple(ts), tuple(values))
    step = (n - 1) / (limit - 1)
    idx = [round(i * step) for i in range(limit)]
    return Series("", tuple(ts[i] for i in idx), tuple(values[i] for i in idx))


def named(series: Series, name: str) -> Series:
    return Series(name, series.ts, series.values)


def drawdown(series: Series, *, absolute: bool = False) -> Series:
    """Drawdown from the running peak: a fraction of the peak (0 at a new high, 0.1 = 10 %
    below it), or with ``absolute`` the amount below it (for P&L curves, whose peak may be 0)."""
    peak = float("-inf")
    out = []
    for v in series.values:
        peak = max(peak, v)
        if absolute:
            out.append(peak - v)
        else:
            out.append(0.0 if peak <= 0 else (peak - v) / peak)
    return Series(series.name, series.ts, tuple(out))


def total_return(series: Series) -> float | None:
    if len(series) < 1 or series.values[0] == 0:
        return None
    return series.values[-1] / series.values[0] - 1.0
