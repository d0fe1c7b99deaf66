"""tradeplane: a supervised runtime that carries a trading strategy from shadow to paper to live."""

from tradeplane.core.model import Bar, Fill, Position, Side
from tradeplane.core.strategy import Strategy, StrategyContext

__all__ = ["Bar", "Fill", "Position", "Side", "Strategy", "StrategyContext"]
__version__ = "0.1.0"
