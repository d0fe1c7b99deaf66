"""Test strategy: trades on most bars so a short run produces many orders and fills.

Market orders alternate buy and sell every ``every`` bars per symbol; every ``limit_every`` bars
it also rests a limit order away from the market and cancels it on the next bar.
"""

from tradeplane import Bar, Strategy, StrategyContext


class Flipper(Strategy):
    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        every = int(self.params.get("every", 1))
        limit_every = int(self.params.get("limit_every", 0))
        qty = float(self.params.get("quantity", 1))
        n = ctx.state.setdefault("n", {})
        k = n[bar.symbol] = n.get(bar.symbol, 0) + 1
        resting = ctx.state.setdefault("resting", {})
        if resting.get(bar.symbol):
            ctx.cancel(resting.pop(bar.symbol))
        if k % every == 0:
            ctx.submit(bar.symbol, qty, "buy" if (k // every) % 2 else "sell")
        if limit_every and k % limit_every == 0:
            resting[bar.symbol] = ctx.submit(bar.symbol, qty, "buy", limit_price=bar.close * 0.9)


class Crasher(Flipper):
    """Trades like Flipper until its ``crash_at``-th bar of a symbol, then raises on it. The
    failure is deterministic: restarted from its snapshot, it replays that bar and raises again."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        seen = ctx.state.get("n", {}).get(bar.symbol, 0) + 1
        if seen >= int(self.params.get("crash_at", 5)):
            raise ValueError(f"planned failure at bar {seen} of {bar.symbol}")
        super().on_bar(bar, ctx)


class BuyOnce(Strategy):
    """Buys ``quantity`` of each symbol on its first bar, then only watches. With
    ``limit_fraction`` the buy is a limit order that far below the market: it rests."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        bought = ctx.state.setdefault("bought", [])
        if bar.symbol not in bought:
            bought.append(bar.symbol)
            fraction = self.params.get("limit_fraction")
            limit = None if fraction is None else round(bar.close * float(fraction), 2)
            ctx.submit(
                bar.symbol, float(self.params.get("quantity", 100)), "buy", limit_price=limit
            )


class Accumulator(Strategy):
    """Buys on every bar: each order increases the position (what a kill switch must stop)."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        ctx.submit(bar.symbol, float(self.params.get("quantity", 1)), "buy")


class Coin(Strategy):
    """Trades on a coin toss: live and a backtest of it make different intents from the same
    bars (what drift tracking must notice)."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        import random

        if random.random() < float(self.params.get("p", 0.5)):
            side = "buy" if ctx.position(bar.symbol).quantity <= 0 else "sell"
            ctx.submit(bar.symbol, float(self.params.get("quantity", 1)), side)


class Scripted(Strategy):
    """Submits ``sides[k]`` (market, ``quantity``) on its k-th bar of each symbol, then only
    watches: ``["buy", "sell"]`` is one round trip back to flat, ``["sell"]`` a short."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        sides = list(self.params.get("sides", []))
        n = ctx.state.setdefault("n", {})
        k = n[bar.symbol] = n.get(bar.symbol, 0) + 1
        if k <= len(sides):
            ctx.submit(bar.symbol, float(self.params.get("quantity", 1)), sides[k - 1])
