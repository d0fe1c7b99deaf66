from datetime import UTC, datetime, timedelta

import pytest

from tradeplane import Strategy, StrategyContext
from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import StrategyError
from tradeplane.core.model import Bar, Fill, Side
from tradeplane.core.strategy import StrategyRunner

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def bars(symbol: str, n: int, start: int = 0) -> list[Bar]:
    return [
        Bar(symbol, T0 + timedelta(minutes=start + i), 10 + i, 11 + i, 9 + i, 10.5 + i, 100)
        for i in range(n)
    ]


class EveryBar(Strategy):
    """Buys 1 on every bar and remembers how many bars it saw in its state."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        ctx.state["seen"] = ctx.state.get("seen", 0) + 1
        ctx.submit(bar.symbol, 1)


def runner(strategy: Strategy | None = None, **kw: object) -> StrategyRunner:
    opts: dict[str, object] = dict(
        deployment="d",
        name="s",
        run_id="r1",
        clock=ManualClock(),
        starting_cash=1000.0,
        symbols=["AAA", "BBB"],
    )
    opts.update(kw)
    return StrategyRunner(strategy or EveryBar(), **opts)  # type: ignore[arg-type]


def test_same_bar_history_then_same_intent_ids() -> None:
    a = runner().on_bars(bars("AAA", 5)).intents
    b = runner().on_bars(bars("AAA", 5)).intents
    assert [i.intent_id for i in a] == [i.intent_id for i in b]
    assert len({i.intent_id for i in a}) == 5


def test_client_order_id_derived_from_intent_id() -> None:
    (intent,) = runner().on_bars(bars("AAA", 1)).intents
    assert intent.client_order_id == "tp" + intent.intent_id


def test_duplicate_and_out_of_order_bars_then_dropped_and_counted() -> None:
    r = runner()
    r.on_bars(bars("AAA", 3))
    out = r.on_bars([*bars("AAA", 1, start=2), *bars("AAA", 1, start=0)])
    assert not out.intents
    assert r.stats.duplicate_bars == 1 and r.stats.out_of_order_bars == 1


def test_bar_for_symbol_not_traded_then_ignored() -> None:
    r = runner()
    assert not r.on_bars(bars("ZZZ", 2)).intents and r.stats.foreign_bars == 2


def test_restart_from_snapshot_then_replayed_bars_emit_nothing_twice() -> None:
    first = runner()
    emitted = first.on_bars(bars("AAA", 5)).intents
    snap = first.snapshot()
    second = runner()
    second.restore(snap)
    replay = second.on_bars(bars("AAA", 7))  # 5 already seen + 2 new
    assert len(replay.intents) == 2
    assert not {i.intent_id for i in replay.intents} & {i.intent_id for i in emitted}
    assert second.state["seen"] == 7


def test_stale_snapshot_plus_journaled_intents_then_no_intent_twice() -> None:
    """A crash after intents were journaled but before the snapshot: the journal's ids win."""
    first = runner()
    early = first.snapshot()
    emitted = first.on_bars(bars("AAA", 3)).intents
    second = runner()
    second.restore(early)
    second.remember_intents(i.intent_id for i in emitted)
    again = second.on_bars(bars("AAA", 3))
    assert again.intents == [] and second.stats.replayed_intents == 3


def test_on_start_intents_are_the_same_within_a_run() -> None:
    class StartBuyer(Strategy):
        def on_start(self, ctx: StrategyContext) -> None:
            ctx.submit("AAA", 1)

    a = runner(StartBuyer()).start().intents
    b = runner(StartBuyer()).start().intents
    c = runner(StartBuyer(), run_id="r2").start().intents
    assert a[0].intent_id == b[0].intent_id != c[0].intent_id


def test_strategy_raises_then_strategy_error_and_nothing_emitted() -> None:
    class Boom(Strategy):
        def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
            ctx.submit(bar.symbol, 1)
            raise RuntimeError("bad model")

    r = runner(Boom())
    with pytest.raises(StrategyError, match="bad model"):
        r.on_bars(bars("AAA", 1))
    assert r.stats.errors == 1
    assert r.stats.intents == 1  # counted at submit, but discarded with the failed callback


def test_submit_outside_a_hook_then_strategy_error() -> None:
    r = runner()
    with pytest.raises(StrategyError, match="only valid inside"):
        r._ctx.submit("AAA", 1)


def test_submit_symbol_not_configured_then_strategy_error() -> None:
    class Wrong(Strategy):
        def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
            ctx.submit("ZZZ", 1)

    with pytest.raises(StrategyError, match="ZZZ"):
        runner(Wrong()).on_bars(bars("AAA", 1))


def test_position_asked_before_a_fill_then_the_fill_shows_after_it() -> None:
    seen: list[float] = []

    class Asker(Strategy):
        def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
            seen.append(ctx.position("AAA").quantity)

        def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
            seen.append(ctx.position("AAA").quantity)

    r = runner(Asker())
    r.on_bars(bars("AAA", 1))
    r.on_fill(Fill("f1", "c", "i", "s", "AAA", Side.BUY, 2, 10.0, 0.1, 0.0))
    r.on_bars(bars("AAA", 1, start=1))
    r.on_fill(Fill("f2", "c", "i", "s", "AAA", Side.SELL, 0.5, 10.0, 0.1, 0.0))
    assert seen == [0.0, 2.0, 2.0, 1.5]


def test_fill_updates_positions_cash_and_calls_on_fill_once() -> None:
    calls: list[str] = []

    class Watcher(Strategy):
        def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
            calls.append(fill.fill_id)
            assert ctx.position("AAA").quantity == 2

    r = runner(Watcher())
    f = Fill("f1", "c", "i", "s", "AAA", Side.BUY, 2, 10.0, 0.1, 0.0)
    r.on_fill(f)
    r.on_fill(f)
    assert calls == ["f1"]
    assert r.portfolio.cash == pytest.approx(1000 - 20 - 0.1)


def test_state_not_json_serialisable_then_snapshot_raises_strategy_error() -> None:
    r = runner()
    r.state["bad"] = object()
    with pytest.raises(StrategyError, match="JSON"):
        r.snapshot()


def test_snapshot_of_another_strategy_then_restore_refused() -> None:
    snap = runner(name="other").snapshot()
    with pytest.raises(StrategyError, match="cannot restore"):
        runner().restore(snap)


def test_limit_submit_then_limit_intent_and_cancel_emitted() -> None:
    class Quoter(Strategy):
        def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
            iid = ctx.submit(bar.symbol, 1, "sell", limit_price=bar.close + 1)
            ctx.cancel(iid)

    out = runner(Quoter()).on_bars(bars("AAA", 1))
    assert out.intents[0].limit_price == 11.5 and out.intents[0].side is Side.SELL
    assert out.cancels[0].client_order_id == out.intents[0].client_order_id


def test_fill_at_or_below_snapshot_watermark_then_skipped_after_restart() -> None:
    calls: list[str] = []

    class Watcher(Strategy):
        def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
            calls.append(fill.fill_id)

    first = runner(Watcher())
    f1 = Fill("f1", "c", "i", "s", "AAA", Side.BUY, 1, 10.0, 0.0, 0.0)
    f2 = Fill("f2", "c", "i", "s", "AAA", Side.BUY, 1, 10.0, 0.0, 0.0)
    first.on_fill(f1, 7)
    snap = first.snapshot()
    second = runner(Watcher())
    second.restore(snap)
    second.on_fill(f1, 7)  # the journal replays every fill after the snapshot's watermark ...
    second.on_fill(f2, 9)  # ... and only the new one is applied
    assert calls == ["f1", "f2"]
    assert second.portfolio.position("AAA").quantity == 2


def test_snapshot_size_does_not_grow_with_intents() -> None:
    import json

    r = runner()
    r.on_bars(bars("AAA", 10))
    small = len(json.dumps(r.snapshot()))
    r.on_bars(bars("AAA", 2000, start=10))
    # state["seen"] and two timestamps change; thousands of intents add nothing
    assert len(json.dumps(r.snapshot())) < small + 64


def test_snapshot_size_does_not_grow_with_fills() -> None:
    import json

    r = runner()
    r.on_fill(Fill("f0", "c", "i", "s", "AAA", Side.BUY, 1, 10.0, 0.0, 0.0), 1)
    small = len(json.dumps(r.snapshot()))
    for n in range(1, 3000):
        r.on_fill(Fill(f"f{n}", "c", "i", "s", "AAA", Side.BUY, 1, 10.0, 0.0, 0.0), n + 1)
    assert len(json.dumps(r.snapshot())) < small + 64
