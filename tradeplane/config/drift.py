"""The ``[drift]`` config section: live drift against a backtest (issue 16).

With the section present, a drift tracker runs on the state node beside the journal. It replays
the bars the deployment recorded into a shadow backtest of the same strategies and compares, and
it writes ``live_drift.csv`` and ``live_performance.json`` in the state dir. It needs the bars:
``[journal] bars = "all"``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tradeplane.config.base import FrozenModel


class DriftConfig(FrozenModel):
    baseline: Path | None = None
    """A ``backtest_report.json`` (``tradeplane backtest``) to measure performance drift
    against, relative to the config file. Default none: execution drift only."""
    snapshot_interval_s: float = Field(default=60.0, gt=0)
    """Bar time between two rows of ``live_drift.csv`` (and updates of
    ``live_performance.json``). Default 60."""
    max_return_drift_pct: float | None = Field(default=None, ge=0)
    """Alert when the live return differs from the shadow backtest's, or falls short of the
    baseline's pro-rated return, by more than this many percentage points. Default none (no
    alert)."""
    max_tracking_error_pct: float | None = Field(default=None, ge=0)
    """Alert when the annualised tracking error against the shadow backtest exceeds this, in
    percent. Default none (no alert)."""
    max_fill_slippage_bps: float | None = Field(default=None, ge=0)
    """Alert when live fills average more than this many basis points away from the shadow
    backtest's fills of the same intents. Default none (no alert)."""
    alert_on_intent_mismatch: bool = True
    """Alert when a bar-triggered intent is made live but not in the shadow backtest, or the
    reverse. Default true."""
    match_lag_s: float = Field(default=300.0, ge=0)
    """Bar time an intent may be seen on one side only before it counts as missing or extra,
    and a live fill may wait for the shadow's fill of the same intent before it counts as
    drift. Default 300."""
    settle_s: float = Field(default=2.0, ge=0, le=600)
    """Wall-clock seconds a recorded bar waits before the shadow gets it, so the live fills it
    made are journaled by then and both sides are compared bar for bar. Default 2."""
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    """Wall-clock seconds between two reads of the journal and the recorded bars. Default 1."""
