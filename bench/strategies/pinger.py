"""Benchmark strategy: trades one in ``every`` bars per symbol, alternating buy and sell so the
position stays flat. Costs almost nothing itself, so the pipeline is what gets measured."""

from tradeplane import Bar, Strategy, StrategyContext


class Pinger(Strategy):
    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        every = int(self.params.get("every", 32))
        counts = ctx.state.setdefault("n", {})
        n = counts[bar.symbol] = counts.get(bar.symbol, 0) + 1
        if n % every == 0:
            side = "buy" if (n // every) % 2 else "sell"
            ctx.submit(bar.symbol, 1.0, side)


class Idle(Strategy):
    """Sees every bar and never trades: for throughput and memory runs."""
