"""Benchmark strategies. ``Pinger`` trades one in ``every`` bars per symbol, alternating buy and
sell so the position stays flat; symbols are staggered so orders arrive evenly spread rather than
all on the same tick (a synchronised burst measures queueing, not latency). Costs almost nothing
itself, so the pipeline is what gets measured."""

from tradeplane import Bar, Strategy, StrategyContext


class Pinger(Strategy):
    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        every = int(self.params.get("every", 320))
        counts = ctx.state.setdefault("n", {})
        n = counts[bar.symbol] = counts.get(bar.symbol, 0) + 1
        offset = (ctx.symbols.index(bar.symbol) * every) // len(ctx.symbols)
        if (n + offset) % every == 0:
            side = "buy" if ((n + offset) // every) % 2 else "sell"
            ctx.submit(bar.symbol, 1.0, side)


class Burst(Strategy):
    """Every symbol trades on the same tick, once per ``every`` ticks: a burst of orders."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        every = int(self.params.get("every", 320))
        counts = ctx.state.setdefault("n", {})
        n = counts[bar.symbol] = counts.get(bar.symbol, 0) + 1
        if n % every == 0:
            ctx.submit(bar.symbol, 1.0, "buy" if (n // every) % 2 else "sell")


class Idle(Strategy):
    """Sees every bar and never trades: for throughput and memory runs."""
