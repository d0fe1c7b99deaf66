"""A drift row and the alerts it raises (``backtest.drift``'s output per strategy and interval):
the live and shadow figures of one track at a bar time, and which thresholds they cross."""

from __future__ import annotations

from typing import Any

from tradeplane.backtest.drift_figures import Track
from tradeplane.backtest.drift_model import BaselineFigures, DriftAlert, DriftThresholds
from tradeplane.core.session import iso_utc


def cut_row(
    name: str,
    track: Track,
    ts: float,
    day: str,
    elapsed: float,
    baseline: BaselineFigures | None,
    annualise: float,
) -> dict[str, Any]:
    """The row of ``name`` at bar time ``ts`` (risk day ``day``, ``elapsed`` since the start);
    moves the track's running figures (day start, tracking error, peak) on to it."""
    equity, shadow, start = track.live_equity, track.shadow_equity, track.start_equity
    if track.day != day:
        # A new risk day starts from the equity at the last row of the previous one.
        track.day_start_equity = track.prev_live if track.day is not None else start
        track.day = day
    if track.prev_live > 0 and track.prev_shadow > 0:
        track.tracking.add((equity / track.prev_live) - (shadow / track.prev_shadow))
    track.prev_live, track.prev_shadow = equity, shadow
    track.peak = max(track.peak, equity)
    drawdown = 1.0 - equity / track.peak if track.peak > 0 else 0.0
    track.max_drawdown = max(track.max_drawdown, drawdown)
    total_return = equity / start - 1.0
    backtest_return = shadow / start - 1.0
    expected = None if baseline is None else baseline.expected_return(name, elapsed)
    shortfall = 0.0 if expected is None else expected - total_return
    std = track.tracking.std()
    slippage = track.slippage.mean()
    return {
        "timestamp": iso_utc(ts),
        "strategy": name,
        "equity": round(equity, 6),
        "daily_pnl": round(equity - track.day_start_equity, 6),
        "total_return": round(total_return, 8),
        "drawdown": round(drawdown, 8),
        "shortfall_vs_backtest": None if expected is None else round(shortfall, 8),
        "expected_return": None if expected is None else round(expected, 8),
        "backtest_equity": round(shadow, 6),
        "backtest_return": round(backtest_return, 8),
        "return_drift_pct": round((total_return - backtest_return) * 100.0, 6),
        "tracking_error_pct": None if std is None else round(std * annualise * 100, 6),
        "fill_slippage_bps": None if slippage is None else round(slippage, 4),
        "intents_live": track.intents_live,
        "intents_backtest": track.intents_shadow,
        "intents_missing": track.missing,
        "intents_extra": track.extra,
    }


def crossings(
    name: str, track: Track, row: dict[str, Any], ts: float, limits: DriftThresholds
) -> list[DriftAlert]:
    """The alerts ``row`` raises: a figure over its threshold that was not (once per crossing;
    re-armed when it falls back)."""
    shortfall = row["shortfall_vs_backtest"]
    figures: list[tuple[str, float | None, float | None]] = [
        ("return_drift_pct", abs(row["return_drift_pct"]), limits.max_return_drift_pct),
        (
            "shortfall_vs_backtest_pct",
            None if shortfall is None else shortfall * 100.0,
            limits.max_return_drift_pct,
        ),
        ("tracking_error_pct", row["tracking_error_pct"], limits.max_tracking_error_pct),
        (
            "fill_slippage_bps",
            None if row["fill_slippage_bps"] is None else abs(row["fill_slippage_bps"]),
            limits.max_fill_slippage_bps,
        ),
        (
            "intents_mismatched",
            float(track.missing + track.extra),
            0.0 if limits.alert_on_intent_mismatch else None,
        ),
    ]
    alerts = []
    for figure, value, threshold in figures:
        over = value is not None and threshold is not None and value > threshold
        if over and figure not in track.above:
            assert value is not None and threshold is not None
            alerts.append(DriftAlert(ts, name, figure, value, threshold))
            track.above.add(figure)
        elif not over:
            track.above.discard(figure)
    return alerts
