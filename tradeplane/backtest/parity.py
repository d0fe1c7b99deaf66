"""Parity between a live deployment and a backtest over the bars it recorded (issue 16).

The ordering contract (README "Backtest") makes the same bars give, per strategy, the same
intents in the same order, live or backtest. This compares the two, intent by intent:

- intents are compared per strategy in the order they were made (live: the order the strategy
  made them, which its clock stamps; backtest: ``intents.csv``'s order);
- intents from ``on_start`` / ``on_stop`` derive from the run id, which differs between any two
  runs: they are reported apart, not compared;
- the live run may stop before the recorded bars end (a strategy takes a bar after the feed
  recorded it): backtest intents triggered after the last bar each strategy took live are
  reported apart too;
- for every intent both sides made, the fills are compared (quantity, average price, fees)
  where matching is deterministic: the sim venue's. A fill missing on one side is a difference.
  The sim venue fills an order on the first bar after it *arrives*: an order that reached it
  after the next bar had opened (a pipeline slower than the bar pace, as an accelerated sim makes
  likely) fills a bar or more later than the backtest's. Given the recorded bars, such a
  difference is named ``late_fill`` with the number of bars: still a difference (the live fill
  is what it is), but one of latency, not of logic.

Pure: rows in, a report out. ``cli.parity_cmd`` reads the journal and the backtest's files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tradeplane.core import ids
from tradeplane.core.ids import BAR_TRIGGER, FILL_TRIGGER

REL_TOLERANCE = 1e-9  # prices and quantities are the same floats computed the same way
LATE_BARS_SEARCHED = 50  # how far past the backtest's fill bar a late live fill is looked for
# The opens of a symbol's recorded bars after a time, oldest first: (open time, open).
OpensAfter = Callable[[str, datetime], Sequence[tuple[datetime, float]]]


@dataclass(frozen=True, slots=True)
class IntentRow:
    strategy: str
    intent_id: str
    trigger: str
    symbol: str
    side: str
    quantity: float

    @property
    def compared(self) -> bool:
        return self.trigger.startswith((BAR_TRIGGER, FILL_TRIGGER))

    def bar_time(self) -> datetime | None:
        """The open time of the bar that triggered it (``bar:<symbol>:<iso>``)."""
        return ids.bar_trigger_time(self.trigger)


@dataclass(frozen=True, slots=True)
class FillTotal:
    """Every fill of one intent, summed."""

    quantity: float
    avg_price: float
    fees: float

    @classmethod
    def of(cls, fills: Iterable[tuple[float, float, float]]) -> FillTotal:
        """``fills``: (quantity, price, fee) each."""
        qty = notional = fees = 0.0
        for q, p, f in fills:
            qty, notional, fees = qty + q, notional + q * p, fees + f
        return cls(qty, notional / qty if qty else 0.0, fees)

    def same(self, other: FillTotal) -> bool:
        return all(
            math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=1e-12)
            for a, b in (
                (self.quantity, other.quantity),
                (self.avg_price, other.avg_price),
                (self.fees, other.fees),
            )
        )


@dataclass(frozen=True, slots=True)
class Difference:
    strategy: str
    index: int  # position in the strategy's compared intents
    what: str  # "intent" (ids differ), "missing_live", "missing_backtest", "fills", "late_fill"
    live: str | None
    backtest: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "index": self.index,
            "what": self.what,
            "live": self.live,
            "backtest": self.backtest,
            "detail": self.detail,
        }


@dataclass(slots=True)
class StrategyParity:
    strategy: str
    live_intents: int = 0
    backtest_intents: int = 0
    matched: int = 0
    fills_compared: int = 0
    apart_live: int = 0  # on_start / on_stop intents (run id)
    apart_backtest: int = 0
    beyond_live: int = 0  # backtest intents after the last bar the strategy took live
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "live_intents": self.live_intents,
            "backtest_intents": self.backtest_intents,
            "matched": self.matched,
            "fills_compared": self.fills_compared,
            "start_stop_intents": {"live": self.apart_live, "backtest": self.apart_backtest},
            "beyond_live_run": self.beyond_live,
            "differences": [d.as_dict() for d in self.differences],
        }


@dataclass(slots=True)
class ParityReport:
    strategies: dict[str, StrategyParity]

    @property
    def ok(self) -> bool:
        return all(not s.differences for s in self.strategies.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "strategies": {name: s.as_dict() for name, s in self.strategies.items()},
        }


def compare(
    live: Sequence[IntentRow],
    backtest: Sequence[IntentRow],
    live_fills: Mapping[str, FillTotal],
    backtest_fills: Mapping[str, FillTotal],
    *,
    live_horizon: Mapping[str, datetime | None] | None = None,
    max_differences: int = 50,
    opens_after: OpensAfter | None = None,
) -> ParityReport:
    """``live_horizon``: per strategy, the open time of the last bar it took live (backtest
    intents triggered after it are reported apart); ``max_differences`` per strategy;
    ``opens_after``: the recorded bars' opens, to tell a late fill apart."""
    report = ParityReport({})
    names = dict.fromkeys([*(r.strategy for r in live), *(r.strategy for r in backtest)])
    for name in names:
        par = report.strategies[name] = StrategyParity(name)
        mine = [r for r in live if r.strategy == name]
        theirs = [r for r in backtest if r.strategy == name]
        horizon = (live_horizon or {}).get(name)
        compared_live = [r for r in mine if r.compared]
        compared_bt = []
        for r in theirs:
            if not r.compared:
                continue
            bar = r.bar_time()
            if horizon is not None and bar is not None and bar > horizon:
                par.beyond_live += 1
                continue
            compared_bt.append(r)
        par.apart_live = len(mine) - len(compared_live)
        par.apart_backtest = len(theirs) - len(compared_bt) - par.beyond_live
        par.live_intents, par.backtest_intents = len(compared_live), len(compared_bt)
        _walk(
            par,
            compared_live,
            compared_bt,
            live_fills,
            backtest_fills,
            max_differences,
            opens_after,
        )
    return report


def _walk(
    par: StrategyParity,
    live: Sequence[IntentRow],
    backtest: Sequence[IntentRow],
    live_fills: Mapping[str, FillTotal],
    backtest_fills: Mapping[str, FillTotal],
    limit: int,
    opens_after: OpensAfter | None,
) -> None:
    def differ(index: int, what: str, a: IntentRow | None, b: IntentRow | None, d: str) -> None:
        if len(par.differences) < limit:
            par.differences.append(
                Difference(
                    par.strategy,
                    index,
                    what,
                    None if a is None else a.intent_id,
                    None if b is None else b.intent_id,
                    d,
                )
            )

    for index in range(max(len(live), len(backtest))):
        a = live[index] if index < len(live) else None
        b = backtest[index] if index < len(backtest) else None
        if a is None:
            assert b is not None
            differ(index, "missing_live", None, b, f"backtest made {_say(b)}; live made none")
            continue
        if b is None:
            differ(index, "missing_backtest", a, None, f"live made {_say(a)}; backtest made none")
            continue
        if a.intent_id != b.intent_id:
            differ(index, "intent", a, b, f"live {_say(a)} | backtest {_say(b)}")
            continue
        par.matched += 1
        fa, fb = live_fills.get(a.intent_id), backtest_fills.get(b.intent_id)
        if fa is None and fb is None:
            continue
        par.fills_compared += 1
        if fa is None or fb is None or not fa.same(fb):
            both = f"live {_fills(fa)} | backtest {_fills(fb)}"
            late = _late(a, fa, fb, opens_after)
            if late is None:
                differ(index, "fills", a, b, both)
            else:
                differ(
                    index,
                    "late_fill",
                    a,
                    b,
                    f"live filled {late} bar(s) after the backtest (the order reached the venue "
                    f"after the bar it was meant for had opened): {both}",
                )


def late_by(
    opens: Sequence[tuple[datetime, float]], live: FillTotal, backtest: FillTotal
) -> int | None:
    """Bars by which ``live`` came after ``backtest``, both one order's whole fill, when it is
    the same fill on a later bar: the backtest filled at the first of ``opens`` (the bars after
    the trigger) times the matching's factor (slippage), the live side at a later open times the
    same factor, with fees in proportion. None when the fills differ in any other way."""
    if not opens or opens[0][1] <= 0 or backtest.avg_price <= 0:
        return None
    if not math.isclose(live.quantity, backtest.quantity, rel_tol=REL_TOLERANCE):
        return None
    factor = backtest.avg_price / opens[0][1]
    for k, (_, price) in enumerate(opens[1 : LATE_BARS_SEARCHED + 1], start=1):
        if math.isclose(live.avg_price, price * factor, rel_tol=REL_TOLERANCE):
            fees_match = math.isclose(
                live.fees * backtest.avg_price,
                backtest.fees * live.avg_price,
                rel_tol=REL_TOLERANCE,
                abs_tol=1e-12,
            )
            return k if fees_match else None
    return None


def _late(
    row: IntentRow, live: FillTotal | None, backtest: FillTotal | None, opens: OpensAfter | None
) -> int | None:
    trigger = row.bar_time()
    if opens is None or live is None or backtest is None or trigger is None:
        return None
    return late_by(opens(row.symbol, trigger), live, backtest)


def _say(r: IntentRow) -> str:
    return f"{r.intent_id} ({r.trigger}: {r.side} {r.quantity:g} {r.symbol})"


def _fills(f: FillTotal | None) -> str:
    if f is None:
        return "no fill"
    return f"{f.quantity:g} @ {f.avg_price:.10g}, fees {f.fees:.6g}"
