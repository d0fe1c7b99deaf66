"""The market-data source a deployment's feed reads, from its ``[feed]`` config."""

from __future__ import annotations

from typing import Any


def external_source(cfg: Any) -> Any | None:
    """An OKX, Binance or IB source for ``cfg`` (a ``TradeplaneConfig``), or None for the
    simulator. Imported lazily: a sim deployment never loads the clients."""
    kind = cfg.feed.kind
    symbols = list(cfg.venue.symbols)
    if kind == "okx":
        from tradeplane.venues.okx.source import OkxCandleSource

        return OkxCandleSource(cfg.feed.okx, symbols)
    if kind == "binance":
        from tradeplane.venues.binance.source import BinanceKlineSource

        return BinanceKlineSource(cfg.feed.binance, symbols)
    if cfg.venue.kind == "ib":
        from tradeplane.venues.ib.bars import IbBarSource

        return IbBarSource(cfg.venue.ib)
    return None
