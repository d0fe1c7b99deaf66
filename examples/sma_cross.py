"""Moving-average crossover: long when the fast average is above the slow one, flat otherwise.

Its windows live in ``ctx.state`` so a restarted strategy resumes with the same averages. The
parameters are read once, when the strategy is built; each bar costs a few dict lookups and two
sums over at most ``slow`` closes (summed afresh, not kept as running sums, whose rounding would
drift from the averages' over a long run).
"""

from typing import Any

from tradeplane import Bar, Fill, Strategy, StrategyContext

PATIENCE_BARS = 5  # an order neither filled nor seen again within this many bars is forgotten


class SmaCross(Strategy):
    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.fast_n = int(params.get("fast", 5))
        self.slow_n = int(params.get("slow", 20))
        self.quantity = float(params.get("quantity", 10))

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        state = ctx.state  # one dict per call: a restore replaces it
        symbol = bar.symbol
        slow_n = self.slow_n
        windows = state.get("closes")
        if windows is None:
            windows = state["closes"] = {}
        closes = windows.get(symbol)
        if closes is None:
            closes = windows[symbol] = []
        closes.append(bar.close)
        if len(closes) > slow_n:
            del closes[:-slow_n]
        pending = state.get("pending")
        if pending is None:
            pending = state["pending"] = {}
        elif pending:
            waiting = pending.get(symbol)
            if waiting:
                waiting[1] += 1
                if waiting[1] <= PATIENCE_BARS:
                    return  # let the last order fill before deciding again
                del pending[symbol]
        if len(closes) < slow_n:
            return
        fast_n = self.fast_n
        fast = sum(closes[-fast_n:]) / fast_n
        slow = sum(closes) / slow_n
        if fast > slow:
            held = ctx.position(symbol).quantity
            if held <= 0:
                pending[symbol] = [ctx.submit(symbol, self.quantity - held, "buy"), 0]
        elif fast < slow:
            held = ctx.position(symbol).quantity
            if held > 0:
                pending[symbol] = [ctx.submit(symbol, held, "sell"), 0]

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        pending = ctx.state.setdefault("pending", {})
        waiting = pending.get(fill.symbol)
        if waiting and waiting[0] == fill.intent_id:
            del pending[fill.symbol]
