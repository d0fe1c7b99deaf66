"""Mean reversion with resting limit orders: buy below the recent mean, sell back above it.

Shows limit orders, cancels and short positions: it sells short when price is stretched up.
"""

from tradeplane import Bar, Strategy, StrategyContext


class MeanReversion(Strategy):
    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        window = int(self.params.get("window", 15))
        band = float(self.params.get("band_bps", 15)) / 10_000
        quantity = float(self.params.get("quantity", 5))
        max_position = float(self.params.get("max_position", 20))
        closes = ctx.state.setdefault("closes", {}).setdefault(bar.symbol, [])
        closes.append(bar.close)
        del closes[:-window]
        if len(closes) < window:
            return
        mean = sum(closes) / window
        working = ctx.state.setdefault("working", {})
        previous = working.pop(bar.symbol, None)
        if previous:
            ctx.cancel(previous)  # re-quote every bar around the new mean
        held = ctx.position(bar.symbol).quantity
        if bar.close < mean * (1 - band) and held < max_position:
            working[bar.symbol] = ctx.submit(
                bar.symbol, quantity, "buy", limit_price=round(bar.close * (1 - band / 2), 4)
            )
        elif bar.close > mean * (1 + band) and held > -max_position:
            working[bar.symbol] = ctx.submit(
                bar.symbol, quantity, "sell", limit_price=round(bar.close * (1 + band / 2), 4)
            )
