"""What the live drift tracker (``backtest.drift``) takes and gives: live intents and fills,
thresholds, the baseline's figures, the alerts it raises and the rows it cuts; and what it needs
of a shadow backtest (``BacktestEngine.step`` fits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tradeplane.core.model import Bar, Fill, Intent, Side
from tradeplane.core.session import iso_utc

if TYPE_CHECKING:
    from tradeplane.backtest.report_json import BacktestReport

TOTAL = "total"

COLUMNS = (
    "timestamp",
    "strategy",
    "equity",
    "daily_pnl",
    "total_return",
    "drawdown",
    "shortfall_vs_backtest",
    "expected_return",
    "backtest_equity",
    "backtest_return",
    "return_drift_pct",
    "tracking_error_pct",
    "fill_slippage_bps",
    "intents_live",
    "intents_backtest",
    "intents_missing",
    "intents_extra",
)


class DecisionLike(Protocol):
    @property
    def intent(self) -> Intent: ...


class StepLike(Protocol):
    """What one bar time of the shadow backtest produced (``BacktestEngine.step``)."""

    @property
    def close_ts(self) -> float: ...
    @property
    def decisions(self) -> Sequence[DecisionLike]: ...
    @property
    def fills(self) -> Sequence[Fill]: ...
    @property
    def equity(self) -> Sequence[tuple[float, float]]: ...


class Shadow(Protocol):
    def step(self, bars: Sequence[Bar]) -> StepLike: ...


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """``None`` switches a check off."""

    max_return_drift_pct: float | None = None
    max_tracking_error_pct: float | None = None
    max_fill_slippage_bps: float | None = None
    alert_on_intent_mismatch: bool = True


@dataclass(frozen=True, slots=True)
class BaselineFigures:
    """What the tracker needs of a baseline ``backtest_report.json``."""

    span_s: float
    total_return: float
    max_drawdown: float
    strategies: Mapping[str, tuple[float, float]]  # name -> (total_return, max_drawdown)

    @classmethod
    def from_report(cls, report: BacktestReport) -> BaselineFigures:
        """A baseline's figures from its ``backtest_report.json`` (``report_json.load_report``);
        a strategy whose total return is undefined is left out."""
        bars = report.bars
        span = (bars.last_ts - bars.first_ts).total_seconds() + bars.interval_s
        return cls(
            span_s=span,
            total_return=report.total.total_return or 0.0,
            max_drawdown=report.total.max_drawdown,
            strategies={
                name: (block.total_return, block.max_drawdown)
                for name, block in report.strategies.items()
                if block.total_return is not None
            },
        )

    def figures(self, strategy: str) -> tuple[float, float] | None:
        if strategy == TOTAL:
            return self.total_return, self.max_drawdown
        return self.strategies.get(strategy)

    def expected_return(self, strategy: str, elapsed_s: float) -> float | None:
        """The baseline's return pro-rated to ``elapsed_s``: (1 + R)^(elapsed / span) - 1."""
        figures = self.figures(strategy)
        if figures is None or self.span_s <= 0 or figures[0] <= -1.0:
            return None
        return float((1.0 + figures[0]) ** (max(elapsed_s, 0.0) / self.span_s) - 1.0)


@dataclass(frozen=True, slots=True)
class LiveIntent:
    strategy: str
    intent_id: str
    symbol: str
    trigger: str
    ts: float


@dataclass(frozen=True, slots=True)
class LiveFill:
    strategy: str
    intent_id: str
    fill_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts: float
    venue: str
    submit_ts: float | None = None
    ack_ts: float | None = None
    ref_price: float | None = None  # risk's reference price at submit, when journaled
    trigger: str | None = None  # its intent's, when journaled


@dataclass(frozen=True, slots=True)
class DriftAlert:
    """A figure that crossed its threshold (raised once per crossing, re-armed below it)."""

    ts: float
    strategy: str
    figure: str
    value: float
    threshold: float

    @property
    def event_id(self) -> str:
        # Deterministic: a replay after a restart re-raises the same alert, and the journal
        # keeps one record per event id.
        return f"drift_alert/{self.strategy}/{self.figure}/{self.ts:.3f}"

    def as_record(self) -> dict[str, Any]:
        return {
            "ts": iso_utc(self.ts),
            "strategy": self.strategy,
            "figure": self.figure,
            "value": round(self.value, 6),
            "threshold": self.threshold,
        }


@dataclass(slots=True)
class Advance:
    rows: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[DriftAlert] = field(default_factory=list)

    def extend(self, other: Advance) -> None:
        self.rows.extend(other.rows)
        self.alerts.extend(other.alerts)


def trim_oldest(entries: dict[str, Any], kept: int) -> None:
    """Drop the oldest entries (insertion order) beyond ``kept``: bounded per-intent memory."""
    while len(entries) > kept:
        del entries[next(iter(entries))]
