"""Live drift against backtests (issue 16): a pure tracker, fed in event time.

It measures two things for every strategy and for the deployment as a whole:

- **execution drift**: a *shadow* backtest of the same strategies is fed the same bars as they
  arrive, so both cover the same time. Against it: the equity difference, the tracking error (the
  annualised spread of per-interval return differences), the slippage of live fills against the
  shadow's fill prices for the same intent, and bar-triggered intents missing or extra;
- **performance drift**: against the baseline report's figures, the return the baseline would
  have made over the elapsed time (pro-rated geometrically) minus the live return, and the live
  drawdown beside the baseline's.

Beside drift, execution quality: each live fill's slippage against the symbol's last close when
its intent was made, and its acknowledgement and fill latency, per strategy and venue.

Bar time, not wall time: rows are aligned by bar time (a simulated market's bars need not keep
the wall clock's pace). The tracker's clock is the close of the last bars given; a live intent
or fill belongs to the bar time at which it is given, so inputs are given in the order the
journal holds them (bars as the feed received them, fills as the broker recorded them). A row is
due at every multiple of ``interval_s`` the bar time passes and holds the state after every input
before the bars that passed it. The same inputs in the same order therefore give the same rows
however they are batched: a restarted tracker replays the recorded bars and the journal, and only
rows newer than the file's last are written, so the file has neither gaps nor duplicates.
No IO here; ``drift_files`` writes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from tradeplane.backtest.drift_figures import Quality, Track, Weighted
from tradeplane.backtest.drift_model import (
    COLUMNS,
    TOTAL,
    Advance,
    BaselineFigures,
    DriftAlert,
    DriftThresholds,
    LiveFill,
    LiveIntent,
    Shadow,
    trim_oldest,
)
from tradeplane.backtest.drift_rows import crossings, cut_row
from tradeplane.core import ids
from tradeplane.core.ids import BAR_TRIGGER
from tradeplane.core.model import Bar, Side
from tradeplane.core.portfolio import VirtualPortfolio

__all__ = [
    "COLUMNS",
    "TOTAL",
    "Advance",
    "BaselineFigures",
    "DriftAlert",
    "DriftThresholds",
    "DriftTracker",
    "LiveFill",
    "LiveIntent",
]

# Per-intent memory (the shadow's fill prices, reference prices) is bounded: an intent older than
# this many others is done with, and its entry goes first.
INTENTS_KEPT = 20_000
SNAPSHOT_VERSION = 1


class DriftTracker:
    def __init__(
        self,
        *,
        capital: Mapping[str, float],
        shadow: Shadow,
        bar_interval_s: float,
        interval_s: float,
        intervals_per_year: float,
        risk_day: Callable[[float], str],
        thresholds: DriftThresholds | None = None,
        baseline: BaselineFigures | None = None,
        match_lag_s: float = 300.0,
    ) -> None:
        """``capital`` in config order (the shadow's equity tuple follows it);
        ``intervals_per_year`` annualises the tracking error of ``interval_s`` returns;
        ``match_lag_s``: how much bar time may pass before an intent seen on one side only
        counts as missing or extra."""
        if not capital:
            raise ValueError("drift needs at least one strategy")
        if not (bar_interval_s > 0 and interval_s > 0 and intervals_per_year > 0):
            raise ValueError("bar_interval_s, interval_s and intervals_per_year must be > 0")
        if not match_lag_s >= 0:
            raise ValueError("match_lag_s must be >= 0")
        self.bar_interval_s = float(bar_interval_s)
        self.late_bars = 0
        self.names = tuple(capital)
        self.shadow = shadow
        self.interval_s = float(interval_s)
        self.annualise = math.sqrt(intervals_per_year)
        self.risk_day = risk_day
        self.thresholds = thresholds or DriftThresholds()
        self.baseline = baseline
        self.match_lag_s = match_lag_s
        self.live = {name: VirtualPortfolio(cash) for name, cash in capital.items()}
        total = float(sum(capital.values()))
        self.tracks = {
            name: Track(cash, cash, cash, cash, day_start_equity=cash)
            for name, cash in [*capital.items(), (TOTAL, total)]
        }
        self.started_ts: float | None = None
        self.now: float | None = None
        self.next_row_ts: float | None = None
        self.last_row: dict[str, dict[str, Any]] = {}
        self.raised: list[DriftAlert] = []
        self.last_close: dict[str, float] = {}
        # Bar-triggered intents not yet seen on both sides: id -> (strategy, time).
        self._shadow_open: dict[str, tuple[str, float]] = {}
        self._live_open: dict[str, tuple[str, float]] = {}
        self._shadow_prices: dict[str, Weighted] = {}  # intent id -> the shadow's fills
        self._shadow_made: dict[str, float] = {}  # intent id -> bar time the shadow made it
        # Live fills held back so they count at the bar time their shadow counterpart does:
        # of intents the shadow made and has not filled yet (by intent id, with that time),
        # and of intents triggered by bars the shadow has not reached yet.
        self._waiting: dict[str, list[tuple[float, LiveFill]]] = {}  # with the bar time told
        self._ahead: list[tuple[float, LiveFill]] = []
        # Live bar-triggered intents not counted yet: a row counts those made by its bar time,
        # however early the journal told of them. (made, strategy), in arrival order.
        self._intents_ahead: list[tuple[float, str]] = []
        self._refs: dict[str, float] = {}  # intent id -> the symbol's last close when made
        self._quality: dict[tuple[str, str], Quality] = {}

    # -- inputs, in non-decreasing time --------------------------------------------------------

    def add_bars(self, bars: Sequence[Bar]) -> Advance:
        """The bars of one bar time; their close moves the tracker's clock. Bars older than the
        clock (a late delivery) are counted in ``late_bars`` and not given to the shadow."""
        if not bars:
            return Advance()
        close_ts = bars[0].ts.timestamp() + self.bar_interval_s
        if self.now is not None and close_ts <= self.now:
            self.late_bars += len(bars)
            return Advance()
        out = self._to(close_ts)
        step = self.shadow.step(bars)
        for bar in bars:
            self.last_close[bar.symbol] = bar.close
            for portfolio in self.live.values():
                portfolio.mark(bar.symbol, bar.close)
        for decision in step.decisions:
            intent = decision.intent
            if intent.trigger.startswith(BAR_TRIGGER) and intent.strategy in self.tracks:
                self.tracks[intent.strategy].intents_shadow += 1
                self.tracks[TOTAL].intents_shadow += 1
                self._meet(intent.intent_id, intent.strategy, close_ts, shadow=True)
            self._shadow_made[intent.intent_id] = close_ts
            trim_oldest(self._shadow_made, INTENTS_KEPT)
        for fill in step.fills:
            price = self._shadow_prices.get(fill.intent_id)
            if price is None:
                price = self._shadow_prices[fill.intent_id] = Weighted()
                trim_oldest(self._shadow_prices, INTENTS_KEPT)
            price.add(fill.price, fill.quantity)
        for fill in step.fills:
            for _, waiting in self._waiting.pop(fill.intent_id, ()):
                self._apply_live(waiting)
        if self._ahead:
            due = [f for t, f in self._ahead if t <= close_ts]
            self._ahead = [(t, f) for t, f in self._ahead if t > close_ts]
            for live in due:
                self._place_live(live)
        shadow_total = 0.0
        for name, (cash, value) in zip(self.names, step.equity, strict=False):
            self.tracks[name].shadow_equity = cash + value
            shadow_total += cash + value
        self.tracks[TOTAL].shadow_equity = shadow_total
        self._refresh_live()
        return out

    def add_live_intent(self, intent: LiveIntent) -> None:
        ref = self.last_close.get(intent.symbol)
        if ref is not None:
            self._refs[intent.intent_id] = ref
            trim_oldest(self._refs, INTENTS_KEPT)
        if intent.trigger.startswith(BAR_TRIGGER) and intent.strategy in self.tracks:
            made = self._trigger_close(intent.trigger)
            made = made if made is not None else (self.now or 0.0)
            self._intents_ahead.append((made, intent.strategy))
            self._meet(intent.intent_id, intent.strategy, made, shadow=False)

    def add_live_fill(self, fill: LiveFill) -> None:
        """A live fill counts at the bar time the shadow's fill of the same intent does, so the
        two sides are compared bar for bar however late the journal tells of it. Without a
        counterpart (an intent the shadow did not make, or a fill it does not make within
        ``match_lag_s``) it counts when it comes: that is drift."""
        if fill.strategy not in self.live:
            return  # a strategy the tracker does not follow (config changed): not ours
        self._quality_of(fill)
        self._place_live(fill)

    def _place_live(self, fill: LiveFill) -> None:
        if fill.intent_id in self._shadow_prices:
            self._apply_live(fill)
        elif fill.intent_id in self._shadow_made:
            told = self.now if self.now is not None else 0.0
            self._waiting.setdefault(fill.intent_id, []).append((told, fill))
        else:
            close = self._trigger_close(fill.trigger)
            if close is not None and (self.now is None or close > self.now):
                self._ahead.append((close, fill))  # the shadow has not reached its bar yet
            else:
                self._apply_live(fill)

    def _apply_live(self, fill: LiveFill) -> None:
        portfolio = self.live[fill.strategy]
        portfolio.apply(fill.symbol, fill.side.sign * fill.quantity, fill.price, fill.fee)
        portfolio.mark(fill.symbol, self.last_close.get(fill.symbol, fill.price))
        if fill.intent_id in self._shadow_prices:
            self._price(fill)
        self._refresh_live()

    def _trigger_close(self, trigger: str | None) -> float | None:
        """The close of the bar that triggered an intent (``bar:<symbol>:<open time>``)."""
        opened = ids.bar_trigger_time(trigger)
        if opened is None:
            return None
        return opened.timestamp() + self.bar_interval_s

    def advance(self, ts: float) -> Advance:
        """Every row due at or before bar time ``ts`` (the end of a replay or of a run: no bar
        will come before it)."""
        if self.next_row_ts is None:
            return Advance()
        out = Advance()
        while self.next_row_ts <= ts:
            out.extend(self._cut(self.next_row_ts))
            self.next_row_ts += self.interval_s
        self.now = max(self.now or ts, ts)
        return out

    def replay_shadow(self, bars: Sequence[Bar]) -> None:
        """Rebuild the shadow after a restart: the bars it had seen, in order, results unused
        (what they produced is in the snapshot being restored). Marks the live books too."""
        if bars:
            self.shadow.step(bars)
            for bar in bars:
                self.last_close[bar.symbol] = bar.close
                for portfolio in self.live.values():
                    portfolio.mark(bar.symbol, bar.close)

    def start_at(self, first_ts: float, now: float | None) -> None:
        """Figures count from bar time ``first_ts`` (a history given by ``replay_shadow``);
        the first row is due at the next interval after ``now``."""
        self.started_ts = first_ts
        if now is not None:
            self.now = now
            self.next_row_ts = math.floor(now / self.interval_s) * self.interval_s + self.interval_s

    # -- persistence ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything but the shadow (rebuilt from the recorded bars): JSON-serialisable."""
        return {
            "version": SNAPSHOT_VERSION,
            "strategies": list(self.names),
            "started_ts": self.started_ts,
            "now": self.now,
            "next_row_ts": self.next_row_ts,
            "late_bars": self.late_bars,
            "tracks": {name: track.snapshot() for name, track in self.tracks.items()},
            "live": {name: p.snapshot() for name, p in self.live.items()},
            "last_close": dict(self.last_close),
            "shadow_open": {k: list(v) for k, v in self._shadow_open.items()},
            "live_open": {k: list(v) for k, v in self._live_open.items()},
            "shadow_prices": {k: [w.total, w.weight] for k, w in self._shadow_prices.items()},
            "shadow_made": dict(self._shadow_made),
            "waiting": {k: [[t, asdict(f)] for t, f in v] for k, v in self._waiting.items()},
            "ahead": [[t, asdict(f)] for t, f in self._ahead],
            "intents_ahead": [list(pair) for pair in self._intents_ahead],
            "refs": dict(self._refs),
            "quality": [
                [strategy, venue, q.fills, list(q.slippage_bps), list(q.ack_ms), list(q.fill_ms)]
                for (strategy, venue), q in self._quality.items()
            ],
            "raised": [asdict(a) for a in self.raised],
            "last_row": self.last_row,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Take a snapshot back (a tracker built with the same strategies, fresh)."""
        if snap.get("version") != SNAPSHOT_VERSION or snap.get("strategies") != list(self.names):
            raise ValueError(
                f"drift snapshot v{snap.get('version')} for {snap.get('strategies')} cannot "
                f"restore a tracker of {list(self.names)} (v{SNAPSHOT_VERSION})"
            )
        self.started_ts, self.now = snap["started_ts"], snap["now"]
        self.next_row_ts, self.late_bars = snap["next_row_ts"], int(snap["late_bars"])
        self.tracks = {name: Track.restore(t) for name, t in snap["tracks"].items()}
        self.live = {name: VirtualPortfolio.restore(p) for name, p in snap["live"].items()}
        self.last_close = {k: float(v) for k, v in snap["last_close"].items()}
        self._shadow_open = {k: (v[0], float(v[1])) for k, v in snap["shadow_open"].items()}
        self._live_open = {k: (v[0], float(v[1])) for k, v in snap["live_open"].items()}
        self._shadow_prices = {k: Weighted(*v) for k, v in snap["shadow_prices"].items()}
        self._shadow_made = {k: float(v) for k, v in snap["shadow_made"].items()}
        self._waiting = {
            k: [(float(t), _live_fill(f)) for t, f in v] for k, v in snap["waiting"].items()
        }
        self._ahead = [(float(t), _live_fill(f)) for t, f in snap["ahead"]]
        self._intents_ahead = [(float(t), str(n)) for t, n in snap.get("intents_ahead", [])]
        self._refs = {k: float(v) for k, v in snap["refs"].items()}
        self._quality = {}
        for strategy, venue, fills, slippage, ack, fill_ms in snap["quality"]:
            q = self._quality[(strategy, venue)] = Quality(fills=int(fills))
            q.slippage_bps.extend(slippage)
            q.ack_ms.extend(ack)
            q.fill_ms.extend(fill_ms)
        self.raised = [DriftAlert(**a) for a in snap["raised"]]
        self.last_row = snap["last_row"]

    # -- outputs -------------------------------------------------------------------------------

    def active_alerts(self) -> list[dict[str, Any]]:
        return [
            {"strategy": name, "figure": figure}
            for name, track in self.tracks.items()
            for figure in sorted(track.above)
        ]

    def performance(self) -> dict[str, Any]:
        """The summary for ``live_performance.json`` (as of the last row)."""
        total = self.last_row.get(TOTAL, {})
        baseline = self.baseline
        return {
            "schema": 1,
            "last_timestamp": total.get("timestamp"),
            "last_equity": total.get("equity"),
            "live_total_return": total.get("total_return"),
            "backtest_total_return": total.get("backtest_return"),
            "baseline_total_return": None if baseline is None else baseline.total_return,
            "baseline_max_drawdown": None if baseline is None else baseline.max_drawdown,
            "expected_return": total.get("expected_return"),
            "shortfall_vs_backtest": total.get("shortfall_vs_backtest"),
            "max_drawdown": round(self.tracks[TOTAL].max_drawdown, 8),
            "tracking_error_pct": total.get("tracking_error_pct"),
            "return_drift_pct": total.get("return_drift_pct"),
            "fill_slippage_bps": total.get("fill_slippage_bps"),
            "intents": {
                key: total.get(f"intents_{key}") for key in ("live", "backtest", "missing", "extra")
            },
            "alerts": [a.as_record() for a in self.raised],
            "active_alerts": self.active_alerts(),
            "strategies": {
                name: {
                    **{k: v for k, v in self.last_row.get(name, {}).items() if k != "strategy"},
                    "max_drawdown": round(self.tracks[name].max_drawdown, 8),
                    "baseline": None if baseline is None else _pair(baseline.figures(name)),
                }
                for name in self.names
            },
            "execution_quality": self._quality_summary(),
        }

    # -- internals -----------------------------------------------------------------------------

    def _to(self, ts: float) -> Advance:
        """Time moves to ``ts``: rows due strictly before it are cut first."""
        if self.started_ts is None:
            self.started_ts = ts
            self.next_row_ts = math.ceil(ts / self.interval_s) * self.interval_s
        out = Advance()
        assert self.next_row_ts is not None
        while self.next_row_ts < ts:
            out.extend(self._cut(self.next_row_ts))
            self.next_row_ts += self.interval_s
        self.now = ts
        return out

    def _meet(self, intent_id: str, strategy: str, ts: float, *, shadow: bool) -> None:
        mine, theirs = (
            (self._shadow_open, self._live_open) if shadow else (self._live_open, self._shadow_open)
        )
        if theirs.pop(intent_id, None) is None:
            mine[intent_id] = (strategy, ts)

    def _count_live_intents(self, ts: float) -> None:
        if not self._intents_ahead:
            return
        due = [name for made, name in self._intents_ahead if made <= ts]
        self._intents_ahead = [(made, name) for made, name in self._intents_ahead if made > ts]
        for name in due:
            self.tracks[name].intents_live += 1
            self.tracks[TOTAL].intents_live += 1

    def _settle_intents(self, ts: float) -> None:
        """Intents seen on one side only, ``match_lag_s`` past their time, are counted; a live
        fill that has waited that long for the shadow's fill counts now (the shadow did not
        fill)."""
        cutoff = ts - self.match_lag_s
        late = [iid for iid, fills in self._waiting.items() if fills[0][0] <= cutoff]
        for iid in late:
            for _, fill in self._waiting.pop(iid):
                self._apply_live(fill)
        for opened, counter in ((self._shadow_open, "missing"), (self._live_open, "extra")):
            overdue = [iid for iid, (_, t) in opened.items() if t <= cutoff]
            for iid in overdue:
                strategy, _ = opened.pop(iid)
                for name in (strategy, TOTAL):
                    track = self.tracks[name]
                    setattr(track, counter, getattr(track, counter) + 1)

    def _price(self, fill: LiveFill) -> None:
        shadow = self._shadow_prices[fill.intent_id].mean()
        if shadow is None or shadow <= 0:
            return
        bps = fill.side.sign * (fill.price - shadow) / shadow * 1e4  # > 0: worse than backtest
        for name in (fill.strategy, TOTAL):
            self.tracks[name].slippage.add(bps, fill.quantity)

    def _quality_of(self, fill: LiveFill) -> None:
        quality = self._quality.setdefault((fill.strategy, fill.venue), Quality())
        quality.fills += 1
        ref = fill.ref_price or self._refs.get(fill.intent_id)
        if ref:
            quality.slippage_bps.append(fill.side.sign * (fill.price - ref) / ref * 1e4)
        if fill.submit_ts is not None:
            quality.fill_ms.append((fill.ts - fill.submit_ts) * 1e3)
            if fill.ack_ts is not None:
                quality.ack_ms.append((fill.ack_ts - fill.submit_ts) * 1e3)

    def _quality_summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for (strategy, venue), quality in sorted(self._quality.items()):
            out.setdefault(strategy, {})[venue] = quality.summary()
        return out

    def _refresh_live(self) -> None:
        total = 0.0
        for name, portfolio in self.live.items():
            self.tracks[name].live_equity = portfolio.equity
            total += portfolio.equity
        self.tracks[TOTAL].live_equity = total

    def _cut(self, ts: float) -> Advance:
        self._count_live_intents(ts)
        self._settle_intents(ts)
        out = Advance()
        # A row closes the interval ending at ``ts``: one stamped at the day's roll (00:00 on a
        # 24/7 calendar) is the last of the old day.
        day = self.risk_day(ts - 1e-3)
        elapsed = ts - (self.started_ts if self.started_ts is not None else ts)
        for name, track in self.tracks.items():
            row = cut_row(name, track, ts, day, elapsed, self.baseline, self.annualise)
            self.last_row[name] = row
            out.rows.append(row)
            out.alerts.extend(crossings(name, track, row, ts, self.thresholds))
        self.raised.extend(out.alerts)
        return out


def _live_fill(data: dict[str, Any]) -> LiveFill:
    return LiveFill(**(data | {"side": Side(data["side"])}))


def _pair(figures: tuple[float, float] | None) -> dict[str, float] | None:
    if figures is None:
        return None
    return {"total_return": figures[0], "max_drawdown": figures[1]}
