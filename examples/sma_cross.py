"""Moving-average crossover: long when the fast average is above the slow one, flat otherwise.

Its windows live in ``ctx.state`` so a restarted strategy resumes with the same averages.
"""

from tradeplane import Bar, Fill, Strategy, StrategyContext

PATIENCE_BARS = 5  # an order neither filled nor seen again within this many bars is forgotten


class SmaCross(Strategy):
    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        fast_n = int(self.params.get("fast", 5))
        slow_n = int(self.params.get("slow", 20))
        quantity = float(self.params.get("quantity", 10))
        closes = ctx.state.setdefault("closes", {}).setdefault(bar.symbol, [])
        closes.append(bar.close)
        del closes[:-slow_n]
        pending = ctx.state.setdefault("pending", {})
        waiting = pending.get(bar.symbol)
        if waiting:
            waiting[1] += 1
            if waiting[1] <= PATIENCE_BARS:
                return  # let the last order fill before deciding again
            del pending[bar.symbol]
        if len(closes) < slow_n:
            return
        fast = sum(closes[-fast_n:]) / fast_n
        slow = sum(closes) / slow_n
        held = ctx.position(bar.symbol).quantity
        if fast > slow and held <= 0:
            pending[bar.symbol] = [ctx.submit(bar.symbol, quantity - held, "buy"), 0]
        elif fast < slow and held > 0:
            pending[bar.symbol] = [ctx.submit(bar.symbol, held, "sell"), 0]

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        pending = ctx.state.setdefault("pending", {})
        waiting = pending.get(fill.symbol)
        if waiting and waiting[0] == fill.intent_id:
            del pending[fill.symbol]
