"""Builds ``backtest_report.json`` while a backtest runs (issue 16), in memory that does not grow
with the number of bars.

The engine calls ``add`` once per bar time with every strategy's equity and whether it holds a
position, ``add_intent`` / ``add_order`` / ``add_denial`` / ``add_fill`` as those happen, and
``finish`` once. What it keeps:

- the last ``chunk_bars`` bar times as three compact arrays (``array('d')`` of times and
  equities, ``array('b')`` of position flags): ``add`` only appends to them, which is what makes
  it cheap enough per bar; every ``chunk_bars`` bar times they are folded, with numpy, into
- per strategy and for the total (the sum of the strategies' equities): the return moments
  (count, mean, M2, sum of squared losses; ``metrics.ReturnMoments``), the running peak and the
  deepest drawdown (``metrics.DrawdownTracker``), the sum of equities (for turnover's mean equity)
  and the count of bar times with a position;
- the downsampled equity curve: every ``stride``-th bar time, the stride doubling whenever more
  than ~2000 are kept, so between ~1000 and ~2000 evenly spaced points; ``finish`` adds the last
  bar and the deepest drawdown's peak and trough;
- per strategy: counts, fees, traded notional, denials by reason and each symbol's position
  (for round trips).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from tradeplane.backtest.annualise import periods_per_year as annual_periods
from tradeplane.backtest.metrics import (
    Drawdown,
    DrawdownTracker,
    FloatArray,
    ReturnMoments,
    RoundTrips,
    chunk_returns,
    total_return,
    turnover,
)
from tradeplane.backtest.report_json import (
    MAX_CURVE_POINTS,
    REPORT_KIND,
    SCHEMA_VERSION,
    BacktestReport,
    BarsInfo,
    Block,
    utc,
)
from tradeplane.core.model import Fill

if TYPE_CHECKING:
    from tradeplane.config.models import TradeplaneConfig

CHUNK_BARS = 8192


class _Series:
    """The streamed figures of one equity column (a strategy's, or the total)."""

    def __init__(self, starting_equity: float) -> None:
        self.starting_equity = starting_equity
        self.last = starting_equity
        self.moments = ReturnMoments()
        self.drawdown = DrawdownTracker(starting_equity)
        self.bars = 0
        self.equity_sum = 0.0
        self.exposed = 0

    def add(self, ts: FloatArray, equity: FloatArray, exposed: np.ndarray) -> None:
        returns, defined = chunk_returns(equity, self.last)
        if defined:
            self.moments.add(returns)
        else:
            self.moments.defined = False
        self.drawdown.add(ts, equity)
        self.last = float(equity[-1])
        self.bars += int(equity.size)
        self.equity_sum += float(equity.sum())
        self.exposed += int(np.count_nonzero(exposed))


class _CurveSampler:
    """Every ``stride``-th row (bar time) of the equity matrix; the stride doubles to stay
    within ``capacity`` rows, so the kept rows stay evenly spaced and include the first."""

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity, self.stride, self.seen = capacity, 1, 0
        self.index = np.empty(0, dtype=np.int64)
        self.ts: FloatArray = np.empty(0)
        self.rows: FloatArray = np.empty((0, width))

    def add(self, ts: FloatArray, rows: FloatArray) -> None:
        g = np.arange(self.seen, self.seen + ts.size)
        self.seen += ts.size
        keep = g % self.stride == 0
        self.index = np.concatenate([self.index, g[keep]])
        self.ts = np.concatenate([self.ts, ts[keep]])
        self.rows = np.concatenate([self.rows, rows[keep]])
        while self.index.size > self.capacity:
            self.stride *= 2
            keep = self.index % self.stride == 0
            self.index, self.ts, self.rows = self.index[keep], self.ts[keep], self.rows[keep]


class _Activity:
    """Counts of one strategy's intents, orders and fills, from the engine's events."""

    def __init__(self) -> None:
        self.intents = self.orders = self.fills = 0
        self.fees = self.notional = 0.0
        self.denials: Counter[str] = Counter()
        self.trips = RoundTrips()


class ReportAccumulator:
    """Everything ``backtest_report.json`` needs, fed incrementally by the engine.

    ``strategies`` in config order; ``add`` takes equities and flags in that same order."""

    def __init__(
        self,
        strategies: Sequence[str],
        starting_equities: Sequence[float],
        *,
        chunk_bars: int = CHUNK_BARS,
        max_curve_points: int = MAX_CURVE_POINTS,
    ) -> None:
        if not strategies or len(strategies) != len(starting_equities):
            raise ValueError("need at least one strategy and one starting equity for each")
        if len(set(strategies)) != len(strategies):
            raise ValueError(f"strategy names must be unique: {list(strategies)}")
        for name, start in zip(strategies, starting_equities, strict=True):
            if not (math.isfinite(start) and start > 0):
                raise ValueError(f"starting equity of {name} must be finite and > 0, got {start}")
        self.names = tuple(strategies)
        self._width = len(self.names)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._chunk = max(1, chunk_bars)
        self._ts: list[float] = []
        self._eq: list[tuple[float, ...]] = []
        self._exposed: list[tuple[bool, ...]] = []
        self._last_ts = -math.inf
        starts = [float(s) for s in starting_equities]
        self._series = [_Series(s) for s in starts] + [_Series(sum(starts))]
        self._sampler = _CurveSampler(max(2, max_curve_points - 3), self._width + 1)
        self._activity = [_Activity() for _ in self.names]

    @classmethod
    def for_config(cls, config: TradeplaneConfig) -> ReportAccumulator:
        """One for ``config``'s strategies, in config order, each starting at its capital."""
        return cls([s.name for s in config.strategies], [s.capital for s in config.strategies])

    # ---- per bar time (hot path: appends only) ----

    def add(self, ts: float, equities: Sequence[float], exposed: Sequence[bool]) -> None:
        """One bar time: epoch seconds ``ts`` (strictly increasing), each strategy's equity and
        whether it holds a non-zero position, both in the order of ``strategies``.

        Only appends (a tuple is kept as is, a list is copied): the checks (lengths, finite,
        increasing times) run when the chunk is folded, so a bad call is refused at most
        ``chunk_bars`` bar times later, and always before a report is made."""
        self._ts.append(ts)
        self._eq.append(tuple(equities))
        self._exposed.append(tuple(exposed))
        if len(self._ts) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        k = len(self._ts)
        if k == 0:
            return
        ts = np.array(self._ts, dtype=np.float64)
        eq = self._matrix(self._eq, "equities", np.float64)
        flags = self._matrix(self._exposed, "position flags", np.bool_)
        self._ts.clear()
        self._eq.clear()
        self._exposed.clear()
        self._check(ts, eq)
        self._last_ts = float(ts[-1])
        total = eq.sum(axis=1)
        for col, series in enumerate(self._series[:-1]):
            series.add(ts, np.ascontiguousarray(eq[:, col]), flags[:, col])
        self._series[-1].add(ts, total, np.asarray(flags.any(axis=1)))
        self._sampler.add(ts, np.column_stack([eq, total]))

    def _matrix(self, rows: list[tuple[Any, ...]], what: str, dtype: type) -> np.ndarray:
        if set(map(len, rows)) != {self._width}:
            wrong = next(i for i, row in enumerate(rows) if len(row) != self._width)
            at = utc(float(self._ts[wrong])).isoformat()
            raise ValueError(
                f"expected {self._width} {what} at {at} (one per strategy), got {len(rows[wrong])}"
            )
        flat: np.ndarray = np.fromiter(
            chain.from_iterable(rows), dtype=dtype, count=len(rows) * self._width
        )
        return flat.reshape(len(rows), self._width)

    def _check(self, ts: FloatArray, eq: FloatArray) -> None:
        """Refuses NaN or infinite input and bar times that do not increase, naming the first."""
        bad_ts = np.flatnonzero(~np.isfinite(ts))
        if bad_ts.size:
            raise ValueError(f"bar time {ts[bad_ts[0]]} is not finite")
        steps = np.diff(ts, prepend=self._last_ts)
        back = np.flatnonzero(steps <= 0)
        if back.size:
            at = utc(float(ts[back[0]])).isoformat()
            raise ValueError(f"bar time {at} does not come after the previous bar time")
        bad = np.argwhere(~np.isfinite(eq))
        if bad.size:
            row, col = (int(v) for v in bad[0])
            at = utc(float(ts[row])).isoformat()
            raise ValueError(f"equity of {self.names[col]} at {at} is {eq[row, col]}, not finite")

    # ---- per event (as they happen) ----

    def _of(self, strategy: str) -> _Activity:
        try:
            return self._activity[self._index[strategy]]
        except KeyError:
            raise ValueError(f"unknown strategy {strategy!r} (known: {self.names})") from None

    def add_intent(self, strategy: str) -> None:
        """An intent the strategy emitted (approved or denied)."""
        self._of(strategy).intents += 1

    def add_order(self, strategy: str) -> None:
        """An order submitted to the matching engine (an approved intent)."""
        self._of(strategy).orders += 1

    def add_denial(self, strategy: str, reason: str) -> None:
        """An intent the risk core denied, by its reason code."""
        self._of(strategy).denials[reason] += 1

    def add_fill(self, fill: Fill) -> None:
        activity = self._of(fill.strategy)
        activity.fills += 1
        activity.fees += fill.fee
        activity.notional += fill.quantity * fill.price
        activity.trips.add(fill.symbol, fill.quantity if fill.side == "buy" else -fill.quantity)

    # ---- once, at the end ----

    def finish(
        self,
        *,
        deployment: str,
        config_hash: str,
        strategy_code_hashes: Mapping[str, str],
        bars: BarsInfo,
        calendar: str,
        periods_per_year: float | None = None,
        generated_at: datetime | None = None,
    ) -> BacktestReport:
        """The report. ``periods_per_year`` defaults to ``annualise.periods_per_year`` for the
        calendar, the bars' interval and their years."""
        self._flush()
        if self._series[-1].bars == 0:
            raise ValueError("no bar time was added: a report needs at least one")
        if periods_per_year is None:
            periods_per_year = annual_periods(
                calendar, bars.interval_s, bars.first_ts.timestamp(), bars.last_ts.timestamp()
            )
        blocks = [
            self._block(col, periods_per_year, [act]) for col, act in enumerate(self._activity)
        ]
        return BacktestReport(
            schema_version=SCHEMA_VERSION,
            kind=REPORT_KIND,
            generated_at=generated_at or datetime.now(tz=UTC),
            deployment=deployment,
            config_hash=config_hash,
            strategy_code_hashes=dict(strategy_code_hashes),
            bars=bars,
            calendar=calendar,
            periods_per_year=float(periods_per_year),
            strategies=dict(zip(self.names, blocks, strict=True)),
            total=self._block(self._width, periods_per_year, self._activity),
        )

    def _block(self, col: int, ppy: float, activity: Sequence[_Activity]) -> Block:
        series = self._series[col]
        dd = series.drawdown.result()
        denials: Counter[str] = Counter()
        for act in activity:
            denials.update(act.denials)
        return Block(
            starting_equity=series.starting_equity,
            final_equity=series.last,
            total_return=total_return(series.starting_equity, series.last),
            annualised_volatility=series.moments.annualised_volatility(ppy),
            sharpe=series.moments.sharpe(ppy),
            sortino=series.moments.sortino(ppy),
            max_drawdown=dd.depth,
            max_drawdown_duration_s=dd.duration_s,
            turnover=turnover(sum(a.notional for a in activity), series.equity_sum / series.bars),
            exposure=series.exposed / series.bars,
            intents=sum(a.intents for a in activity),
            orders=sum(a.orders for a in activity),
            fills=sum(a.fills for a in activity),
            trades=sum(a.trips.completed for a in activity),
            fees=float(sum(a.fees for a in activity)),
            denials_by_reason=dict(sorted(denials.items())),
            equity_curve=self._curve(col, dd),
        )

    def _curve(self, col: int, dd: Drawdown) -> tuple[tuple[datetime, float], ...]:
        s = self._sampler
        points = dict(zip(s.ts.tolist(), s.rows[:, col].tolist(), strict=True))
        points[self._last_ts] = self._series[col].last
        if dd.depth > 0 and dd.trough_ts is not None and dd.peak_ts is not None:
            points[dd.trough_ts] = dd.trough_equity
            # A peak at the first bar time may be the starting equity, not that bar's equity:
            # the bar's own equity (always sampled) stays the curve's point there.
            points.setdefault(dd.peak_ts, dd.peak_equity)
        return tuple((utc(ts), float(eq)) for ts, eq in sorted(points.items()))
