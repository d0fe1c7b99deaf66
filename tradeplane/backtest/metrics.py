"""Performance figures of an equity curve (issue 16): pure, over plain numbers, no IO.

The definitions are empyrical's (``empyrical-reloaded``, the maintained fork of Quantopian's
library), with a zero risk-free rate and a zero Sortino target, so figures read the same as in the
tools people already use; a test checks them against empyrical on random curves. empyrical itself
is not a runtime dependency: it needs the whole return series in memory, pulls in scipy (over
100 MB) and takes ~2 s to import, while a backtest streams millions of bars and the drift tracker
runs on the state node. Here each figure is kept in streaming form, updated a chunk of bars at a
time (numpy over the chunk), so memory does not grow with the number of bars.

- per-bar return ``r_i = E_i / E_(i-1) - 1``, the first one against the starting equity;
- total return ``E_last / E_start - 1``;
- annualised volatility ``std(r, ddof=1) * sqrt(P)``, ``P`` periods (bars) per year;
- Sharpe ``mean(r) / std(r, ddof=1) * sqrt(P)``;
- Sortino ``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(P)`` (the mean over *all* bars);
- max drawdown ``max(1 - E_i / max(E_0..E_i))`` as a fraction >= 0; its duration is the seconds
  from the peak before the deepest trough to the first time equity is back at that peak, or to
  the last bar when it never is.

A figure that is undefined is ``None`` (JSON null), never NaN or infinity: volatility, Sharpe and
Sortino need two returns; Sharpe needs a spread, Sortino a losing bar; none of the return figures
exist once equity has reached zero or below (a return from zero is undefined).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

# A spread at or below this is floating-point noise (a flat curve, or a curve growing at a
# constant rate), not risk: Sharpe of it would be a huge number made of rounding errors.
_NOISE_ABS = 1e-14
_NOISE_REL = 1e-12


def finite_array(name: str, values: ArrayLike) -> FloatArray:
    """``values`` as a 1-d float64 array; refuses NaN and infinities, naming the first index."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d series, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name}: value at index {int(bad[0])} is {arr[bad[0]]}, not finite")
    return arr


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} is {value}, not finite")
    return float(value)


def _is_noise(spread: float, level: float) -> bool:
    return spread <= _NOISE_ABS + _NOISE_REL * abs(level)


@dataclass(slots=True)
class ReturnMoments:
    """Count, mean and sum of squared deviations of per-bar returns, merged a chunk at a time
    (Chan, Golub and LeVeque's pairwise update: stable where a running sum of squares is not),
    and the sum of squared losses for Sortino's downside deviation."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    downside_sq: float = 0.0
    defined: bool = True  # False once a return was taken from zero or negative equity

    def add(self, returns: FloatArray) -> None:
        n_b = int(returns.size)
        if n_b == 0:
            return
        mean_b = float(returns.mean())
        m2_b = float(np.square(returns - mean_b).sum())
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * n_a * n_b / n
        self.count = n
        # Not np.dot: on long arrays OpenBLAS goes multi-threaded, ~50x slower on a busy machine.
        self.downside_sq += float(np.square(np.minimum(returns, 0.0)).sum())

    def std(self) -> float | None:
        if not self.defined or self.count < 2:
            return None
        return math.sqrt(max(self.m2, 0.0) / (self.count - 1))

    def annualised_volatility(self, periods_per_year: float) -> float | None:
        std = self.std()
        if std is None or periods_per_year <= 0:
            return None
        return std * math.sqrt(periods_per_year)

    def sharpe(self, periods_per_year: float) -> float | None:
        std = self.std()
        if std is None or periods_per_year <= 0 or _is_noise(std, self.mean):
            return None
        return self.mean / std * math.sqrt(periods_per_year)

    def sortino(self, periods_per_year: float) -> float | None:
        if not self.defined or self.count < 2 or periods_per_year <= 0:
            return None
        downside = math.sqrt(self.downside_sq / self.count)
        if _is_noise(downside, 0.0):
            return None  # no losing bar: the ratio is infinite, which a report cannot say
        return self.mean / downside * math.sqrt(periods_per_year)


def chunk_returns(equity: FloatArray, previous: float) -> tuple[FloatArray, bool]:
    """Per-bar returns of ``equity`` after an equity of ``previous``, and whether they are all
    defined (every base equity > 0)."""
    base = np.empty_like(equity)
    base[0] = previous
    base[1:] = equity[:-1]
    if bool((base <= 0.0).any()):
        return np.empty(0), False
    return equity / base - 1.0, True


@dataclass(frozen=True, slots=True)
class Drawdown:
    depth: float
    """Deepest fall from a running peak, as a fraction of that peak (>= 0)."""
    duration_s: float
    """Seconds from that peak to the recovery (equity back at the peak), or to the last bar."""
    peak_ts: float | None
    peak_equity: float
    trough_ts: float | None
    trough_equity: float
    recovery_ts: float | None
    """``None`` when the deepest drawdown had not recovered by the last bar."""


@dataclass(slots=True)
class DrawdownTracker:
    """The running peak and the deepest drawdown so far, updated a chunk of bars at a time.

    The starting equity is a peak at the first bar's time. Equity equal to the peak counts as
    recovered. Of equally deep drawdowns the first is kept."""

    peak: float
    peak_ts: float | None = None
    last_ts: float | None = None
    depth: float = 0.0
    best_peak_ts: float | None = None
    best_peak: float = 0.0
    trough_ts: float | None = None
    trough: float = 0.0
    recovery_ts: float | None = None
    open: bool = False  # the deepest drawdown has not recovered yet

    def __post_init__(self) -> None:
        if not (math.isfinite(self.peak) and self.peak > 0):
            raise ValueError(f"starting equity must be finite and > 0, got {self.peak}")
        self.best_peak = self.trough = self.peak

    def add(self, ts: FloatArray, equity: FloatArray) -> None:
        k = int(equity.size)
        if k == 0:
            return
        if self.peak_ts is None:
            self.peak_ts = float(ts[0])
            self.best_peak_ts = self.trough_ts = self.peak_ts
        run_peak = np.maximum.accumulate(np.maximum(equity, self.peak))
        peaks_at = np.flatnonzero(equity >= run_peak)  # new highs, and returns to the high
        depth = 1.0 - equity / run_peak
        i = int(np.argmax(depth))
        if depth[i] > self.depth:
            self.depth = float(depth[i])
            # The trough's peak: the last bar at the high before it, else the carried-in one.
            j = int(np.searchsorted(peaks_at, i, side="right")) - 1
            self.best_peak_ts = self.peak_ts if j < 0 else float(ts[peaks_at[j]])
            self.best_peak = float(run_peak[i])
            self.trough_ts, self.trough = float(ts[i]), float(equity[i])
            later = peaks_at[peaks_at > i]
            self.open = later.size == 0
            self.recovery_ts = None if self.open else float(ts[later[0]])
        elif self.open and peaks_at.size:
            self.open = False
            self.recovery_ts = float(ts[peaks_at[0]])
        if peaks_at.size:
            self.peak_ts = float(ts[peaks_at[-1]])
        self.peak = float(run_peak[-1])
        self.last_ts = float(ts[-1])

    def result(self) -> Drawdown:
        if self.depth <= 0.0:
            duration = 0.0
        else:
            assert self.best_peak_ts is not None and self.last_ts is not None
            end = self.last_ts if self.open else self.recovery_ts
            assert end is not None
            duration = end - self.best_peak_ts
        return Drawdown(
            depth=self.depth,
            duration_s=duration,
            peak_ts=self.best_peak_ts,
            peak_equity=self.best_peak,
            trough_ts=self.trough_ts,
            trough_equity=self.trough,
            recovery_ts=self.recovery_ts,
        )


@dataclass(slots=True)
class RoundTrips:
    """Completed trades per symbol from signed fill quantities: a position going from flat to
    non-flat and back to flat is one; a fill that flips the sign closes one and opens the next.
    A position still open at the end is not counted."""

    positions: dict[str, float] = field(default_factory=dict)
    completed: int = 0

    def add(self, symbol: str, signed_quantity: float) -> None:
        before = self.positions.get(symbol, 0.0)
        after = before + signed_quantity
        # Quantities such as 0.1 + 0.2 - 0.3 leave dust: closer to zero than the rounding of the
        # larger operand is flat.
        if abs(after) <= 1e-9 * max(abs(before), abs(signed_quantity)):
            after = 0.0
        if before != 0.0 and (after == 0.0 or (after > 0.0) != (before > 0.0)):
            self.completed += 1
        self.positions[symbol] = after


# ---- the same figures over whole series (tests, the drift tracker, one-off analysis) ----


def total_return(starting_equity: float, final_equity: float) -> float | None:
    start = _finite("starting equity", starting_equity)
    final = _finite("final equity", final_equity)
    return None if start <= 0 else final / start - 1.0


def simple_returns(equity: ArrayLike, starting_equity: float) -> FloatArray | None:
    """Per-bar returns, the first against ``starting_equity``; ``None`` when any is undefined."""
    eq = finite_array("equity", equity)
    if eq.size == 0:
        return np.empty(0)
    returns, defined = chunk_returns(eq, _finite("starting equity", starting_equity))
    return returns if defined else None


def _moments(returns: ArrayLike) -> ReturnMoments:
    moments = ReturnMoments()
    moments.add(finite_array("returns", returns))
    return moments


def annualised_volatility(returns: ArrayLike, periods_per_year: float) -> float | None:
    return _moments(returns).annualised_volatility(periods_per_year)


def sharpe_ratio(returns: ArrayLike, periods_per_year: float) -> float | None:
    return _moments(returns).sharpe(periods_per_year)


def sortino_ratio(returns: ArrayLike, periods_per_year: float) -> float | None:
    return _moments(returns).sortino(periods_per_year)


def max_drawdown(
    ts: ArrayLike, equity: ArrayLike, starting_equity: float | None = None
) -> Drawdown:
    """The deepest drawdown of ``equity`` at bar times ``ts`` (epoch seconds, increasing); the
    starting equity, when given, is a peak at the first bar's time."""
    times = finite_array("ts", ts)
    eq = finite_array("equity", equity)
    if times.size != eq.size or eq.size == 0:
        raise ValueError(
            f"need as many bar times as equities, at least one: {times.size}/{eq.size}"
        )
    if bool((np.diff(times) <= 0).any()):
        raise ValueError("bar times must be strictly increasing")
    tracker = DrawdownTracker(float(eq[0]) if starting_equity is None else starting_equity)
    tracker.add(times, eq)
    return tracker.result()


def turnover(traded_notional: float, mean_equity: float) -> float | None:
    """Traded notional (sum of |quantity| x price over fills) over the mean equity: how many
    times the book was traded over the whole run (not annualised)."""
    notional = _finite("traded notional", traded_notional)
    mean = _finite("mean equity", mean_equity)
    return None if mean <= 0 else notional / mean


def exposure(position_nonzero: Iterable[bool]) -> float | None:
    """Fraction of bar times with a non-zero position; ``None`` for no bars."""
    flags = np.fromiter(position_nonzero, dtype=bool)
    return None if flags.size == 0 else float(flags.mean())


def round_trips(fills: Iterable[tuple[str, float]]) -> int:
    """Completed trades from ``(symbol, signed quantity)`` fills in order; see ``RoundTrips``."""
    trips = RoundTrips()
    for symbol, signed in fills:
        trips.add(symbol, _finite("fill quantity", signed))
    return trips.completed
