"""The backtest engine: the live cores (strategy runner, risk, sim matching) driven one bar time at
a time under the documented ordering contract (``backtest.engine``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tradeplane import Strategy, StrategyContext
from tradeplane.backtest.engine import (
    APPROVED,
    DENIED,
    BacktestEngine,
    MatchingRules,
    RiskSetup,
    StepResult,
    StrategySpec,
    group_by_time,
)
from tradeplane.core import ids
from tradeplane.core.model import Bar, Fill
from tradeplane.core.risk import RiskLimits

T0 = datetime(2026, 1, 5, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def bar(
    minute: int,
    o: float = 100.0,
    h: float = 101.0,
    lo: float = 99.0,
    c: float = 100.0,
    *,
    symbol: str = "AAA",
    volume: float = 1_000.0,
) -> Bar:
    return Bar(symbol, T0 + minute * MINUTE, o, h, lo, c, volume)


class Scripted(Strategy):
    """Submits what ``orders`` says at a bar minute (on that symbol's bar); logs its hooks."""

    def __init__(self, orders: dict[int, list[tuple[Any, ...]]] | None = None) -> None:
        super().__init__()
        self.orders = orders or {}
        self.log: list[tuple[str, Any]] = []
        self.fills: list[Fill] = []

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        minute = int((bar.ts - T0) / MINUTE)
        self.log.append(("bar", (bar.symbol, minute)))
        for order in self.orders.get(minute, []):
            if order[0] == bar.symbol:
                ctx.submit(*order)

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        self.log.append(("fill", fill.fill_id))
        self.fills.append(fill)


def engine(
    *strategies: tuple[str, Strategy],
    symbols: tuple[str, ...] = ("AAA",),
    matching: MatchingRules | None = None,
    limits: RiskLimits | None = None,
    **kw: Any,
) -> BacktestEngine:
    return BacktestEngine(
        deployment="dep",
        strategies=[StrategySpec(name, s, symbols, 100_000.0) for name, s in strategies],
        interval_s=60,
        matching=matching or MatchingRules(taker_fee_bps=5.0, slippage_bps=10.0),
        risk=RiskSetup(limits=limits or RiskLimits(deny_when_market_closed=False)),
        **kw,
    )


def run(eng: BacktestEngine, bars: list[Bar]) -> list[StepResult]:
    return list(eng.run(bars))


def test_market_order_fills_at_next_bars_open_with_slippage_and_taker_fee() -> None:
    s = Scripted({0: [("AAA", 2.0, "buy")]})
    eng = engine(("s", s))

    steps = run(eng, [bar(0), bar(1, o=102.0, h=103.0), bar(2)])

    assert steps[0].fills == [] and steps[2].fills == []
    (fill,) = steps[1].fills
    assert fill.price == pytest.approx(102.0 * 1.001)
    assert fill.fee == pytest.approx(2.0 * 102.0 * 1.001 * 5e-4)
    assert fill.liquidity == "taker"
    assert fill.ts == (T0 + 2 * MINUTE).timestamp()  # bar 1's close: the engine's clock
    assert eng.runners[0].portfolio.position("AAA").quantity == 2.0


def test_limit_rests_then_fills_at_its_price_when_a_bar_trades_through() -> None:
    s = Scripted({0: [("AAA", 1.0, "buy", 97.0)]})
    eng = engine(("s", s), matching=MatchingRules(maker_fee_bps=2.0))

    steps = run(eng, [bar(0), bar(1, lo=98.0), bar(2, o=99.0, lo=96.5), bar(3)])

    assert [len(st.fills) for st in steps] == [0, 0, 1, 0]
    fill = steps[2].fills[0]
    assert (fill.price, fill.liquidity) == (97.0, "maker")
    assert fill.fee == pytest.approx(97.0 * 2e-4)


def test_max_participation_then_order_fills_in_parts_over_bars() -> None:
    s = Scripted({0: [("AAA", 25.0, "buy")]})
    eng = engine(("s", s), matching=MatchingRules(max_participation=0.1))

    steps = run(eng, [bar(0), *(bar(m, volume=100.0) for m in (1, 2, 3, 4))])

    assert [[f.quantity for f in st.fills] for st in steps] == [[], [10.0], [10.0], [5.0], []]
    assert [f.fill_id.rsplit("-", 1)[1] for f in s.fills] == ["1", "2", "3"]
    assert eng.totals["s"].fills == 3 and eng.totals["s"].orders == 1


class CancelsAfterFirstBar(Strategy):
    """Buys at minute 0, cancels what is left of that order at minute 1."""

    def __init__(self) -> None:
        super().__init__()
        self.intent: str | None = None
        self.fills: list[Fill] = []

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        minute = int((bar.ts - T0) / MINUTE)
        if minute == 0:
            self.intent = ctx.submit("AAA", 25.0, "buy")
        elif minute == 1 and self.intent is not None:
            ctx.cancel(self.intent)

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        self.fills.append(fill)


def test_partly_filled_order_cancelled_by_on_bar_of_that_bar_time_then_its_fill_still_applied() -> (
    None
):
    s = CancelsAfterFirstBar()
    eng = engine(("s", s), matching=MatchingRules(max_participation=0.1))

    steps = run(eng, [bar(0), *(bar(m, volume=100.0) for m in (1, 2))])

    assert [[f.quantity for f in st.fills] for st in steps] == [[], [10.0], []]
    assert [f.quantity for f in s.fills] == [10.0]
    assert eng.matching.open_orders() == []
    assert eng.risk is not None and eng.risk.position("AAA") == 10.0


def test_kill_switch_cancels_a_partly_filled_order_then_its_fill_of_that_bar_still_applied() -> (
    None
):
    s = Scripted({0: [("AAA", 25.0, "buy")]})
    limits = RiskLimits(max_daily_loss=50.0, deny_when_market_closed=False)
    eng = engine(("s", s), matching=MatchingRules(max_participation=0.1), limits=limits)
    crash = bar(2, o=100.0, h=100.0, lo=89.0, c=90.0, volume=100.0)

    steps = run(eng, [bar(0), bar(1, volume=100.0), crash, bar(3, volume=100.0)])

    # the mark of minute 2 trips the switch (cancelling the rest) before its fill is applied
    assert [e.reason for e in steps[2].risk_events] == ["max_daily_loss"]
    assert [f.quantity for f in s.fills] == [10.0, 10.0]
    assert eng.matching.open_orders() == []


def test_risk_denial_then_counted_by_reason_and_no_order_reaches_the_venue() -> None:
    s = Scripted({0: [("AAA", 50.0, "buy"), ("AAA", 5.0, "buy")]})
    limits = RiskLimits(max_order_quantity=10.0, deny_when_market_closed=False)
    eng = engine(("s", s), limits=limits)

    steps = run(eng, [bar(0), bar(1)])

    decisions = [(d.intent.quantity, d.decision, d.reason) for d in steps[0].decisions]
    assert decisions == [(50.0, DENIED, "MAX_ORDER_QUANTITY"), (5.0, APPROVED, None)]
    assert [f.quantity for f in steps[1].fills] == [5.0]
    assert eng.totals["s"].denials == {"MAX_ORDER_QUANTITY": 1}
    assert eng.denials() == {"MAX_ORDER_QUANTITY": 1}
    assert (eng.totals["s"].intents, eng.totals["s"].orders) == (2, 1)


def test_on_bar_of_t_runs_before_the_fills_of_t_reach_on_fill() -> None:
    s = Scripted({0: [("AAA", 1.0, "buy")]})
    eng = engine(("s", s))

    run(eng, [bar(0), bar(1), bar(2)])

    fill_id = s.fills[0].fill_id
    assert s.log == [
        ("bar", ("AAA", 0)),
        ("bar", ("AAA", 1)),
        ("fill", fill_id),
        ("bar", ("AAA", 2)),
    ]


def test_strategies_in_config_order_and_symbols_in_source_order() -> None:
    first, second = Scripted(), Scripted()
    calls: list[str] = []
    first.on_bar = lambda b, ctx: calls.append(f"first:{b.symbol}")  # type: ignore[method-assign]
    second.on_bar = lambda b, ctx: calls.append(f"second:{b.symbol}")  # type: ignore[method-assign]
    eng = engine(("first", first), ("second", second), symbols=("BBB", "AAA"))

    eng.step([bar(0, symbol="AAA"), bar(0, symbol="BBB")])

    assert calls == ["first:AAA", "first:BBB", "second:AAA", "second:BBB"]


def test_same_bars_then_the_intent_ids_live_would_derive() -> None:
    bars = [bar(m, symbol=sym) for m in range(3) for sym in ("AAA", "BBB")]
    orders = {m: [("AAA", 1.0, "buy"), ("BBB", 1.0, "sell")] for m in range(3)}
    ids_of = []
    for _ in range(2):
        eng = engine(("strat", Scripted(orders)), symbols=("AAA", "BBB"))
        ids_of.append([d.intent.intent_id for st in run(eng, bars) for d in st.decisions])

    expected = [
        ids.intent_id("dep", "strat", ids.bar_trigger(sym, T0 + m * MINUTE), 0)
        for m in range(3)
        for sym in ("AAA", "BBB")
    ]
    assert ids_of[0] == ids_of[1] == expected


def test_intent_time_is_the_close_of_its_bar() -> None:
    eng = engine(("s", Scripted({3: [("AAA", 1.0, "buy")]})))

    steps = run(eng, [bar(m) for m in range(4)])

    assert steps[3].decisions[0].intent.ts == (T0 + 4 * MINUTE).timestamp()


def test_fill_ids_and_on_fill_intent_ids_do_not_depend_on_another_strategys_orders() -> None:
    class Echo(Scripted):
        def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
            super().on_fill(fill, ctx)
            if fill.side == "buy":
                ctx.submit(fill.symbol, fill.quantity, "sell")

    def echo_run(with_other: bool) -> tuple[list[str], list[str]]:
        named: list[tuple[str, Strategy]] = [("echo", Echo({0: [("AAA", 1.0, "buy")]}))]
        if with_other:  # its orders reach the venue first: they take the first venue order ids
            other = Scripted({0: [("AAA", 3.0, "buy"), ("AAA", 1.0, "sell")]})
            named.insert(0, ("other", other))
        steps = run(engine(*named), [bar(0), bar(1), bar(2)])
        fills = [f.fill_id for st in steps for f in st.fills if f.strategy == "echo"]
        intents = [
            d.intent.intent_id for st in steps for d in st.decisions if d.intent.strategy == "echo"
        ]
        return fills, intents

    alone, crowded = echo_run(False), echo_run(True)
    assert len(alone[0]) == 2 and len(alone[1]) == 2  # the buy's fill, then its echo's fill
    assert alone == crowded


def test_strategy_raising_then_that_call_emits_nothing_and_the_others_trade_on() -> None:
    class Raises(Strategy):
        def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
            ctx.submit("AAA", 1.0)
            raise RuntimeError("boom")

    good = Scripted({m: [("AAA", 1.0, "buy")] for m in range(3)})
    eng = engine(("bad", Raises()), ("good", good), max_strategy_failures=1)

    steps = run(eng, [bar(m) for m in range(3)])

    assert [d.intent.strategy for st in steps for d in st.decisions] == ["good"] * 3
    failures = [f for st in steps for f in st.failures]
    assert [(f.strategy, f.suspended) for f in failures] == [("bad", False), ("bad", True)]
    assert "RuntimeError: boom" in failures[0].error
    assert eng.suspended == {"bad"} and eng.totals["bad"].errors == 2


def test_kill_switch_tripped_then_working_orders_cancelled_and_new_intents_denied() -> None:
    s = Scripted({0: [("AAA", 100.0, "buy"), ("AAA", 1.0, "buy", 50.0)], 2: [("AAA", 1.0)]})
    limits = RiskLimits(max_daily_loss=500.0, deny_when_market_closed=False)
    eng = engine(("s", s), limits=limits)

    steps = run(eng, [bar(0), bar(1), bar(2, o=95.0, h=95.0, lo=90.0, c=90.0), bar(3)])

    assert [e.reason for e in steps[2].risk_events] == ["max_daily_loss"]
    assert eng.matching.open_orders() == []  # the resting limit was cancelled
    assert [d.reason for d in steps[2].decisions] == ["REDUCING_ONLY"]


def test_equity_is_cash_plus_marked_positions_per_strategy() -> None:
    eng = engine(("s", Scripted({0: [("AAA", 2.0, "buy")]})), matching=MatchingRules(0, 0, 0))

    steps = run(eng, [bar(0), bar(1, c=100.0), bar(2, o=100.0, h=111.0, c=110.0)])

    cash, value = steps[2].equity[0]
    assert (cash, value) == (100_000.0 - 200.0, 220.0)


def test_a_step_must_hold_one_bar_time_and_time_must_move_forward() -> None:
    eng = engine(("s", Scripted()))
    with pytest.raises(ValueError, match="one bar time"):
        eng.step([bar(0), bar(1)])
    eng.step([bar(1)])
    with pytest.raises(ValueError, match="not after"):
        eng.step([bar(1)])


def test_group_by_time_when_a_source_goes_back_then_refused() -> None:
    groups = group_by_time([bar(0), bar(0, symbol="BBB"), bar(1)])
    assert [len(g) for g in groups] == [2, 1]
    with pytest.raises(ValueError, match="back in time"):
        list(group_by_time([bar(1), bar(0)]))


def test_on_start_runs_at_the_first_bar_time_after_its_marks() -> None:
    class Starts(Strategy):
        def on_start(self, ctx: StrategyContext) -> None:
            ctx.submit("AAA", 1.0)

    eng = engine(("s", Starts()), run_id="run-1")

    steps = run(eng, [bar(0), bar(1)])

    (decision,) = steps[0].decisions
    assert decision.decision == APPROVED
    assert decision.intent.trigger == ids.start_trigger("run-1")
    assert len(steps[1].fills) == 1


def test_equity_of_several_strategies_then_one_pair_each_in_config_order() -> None:
    eng = engine(
        ("a", Scripted({0: [("AAA", 2.0, "buy")]})),
        ("b", Scripted({0: [("AAA", 1.0, "buy")]})),
        matching=MatchingRules(0, 0, 0),
    )

    steps = run(eng, [bar(0), bar(1, c=100.0), bar(2, o=100.0, h=111.0, c=110.0)])

    assert steps[2].equity == ((100_000.0 - 200.0, 220.0), (100_000.0 - 100.0, 110.0))
    assert steps[0].equity == ((100_000.0, 0.0), (100_000.0, 0.0))
