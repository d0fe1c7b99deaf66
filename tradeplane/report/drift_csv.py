"""``live_drift.csv`` (written in the state dir by the live drift tracker) to a ``DriftTable``.

Read tolerantly: the tracker's columns beyond the documented ones may change, so every column
but ``timestamp`` is kept as numbers, and a cell that is not one is a gap, not an error. A row
whose timestamp cannot be read is skipped and counted, so the page can say so.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

from tradeplane.report.model import MAX_POINTS, DriftTable

DRIFT_CSV = "live_drift.csv"
TIMESTAMP = "timestamp"
STRATEGY = "strategy"
TOTAL = "total"
SHOWN = ("total_return", "drawdown", "shortfall_vs_backtest")
"""Fractions, plotted as percent (the tracker's ``*_pct`` and ``*_bps`` columns are in units)."""


def parse_time(text: str) -> float | None:
    """Epoch seconds from an ISO-8601 time (naive means UTC) or a number of epoch seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def _cell(text: str | None) -> float | None:
    try:
        v = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None


def read_drift_csv(path: Path) -> tuple[DriftTable | None, str]:
    """The table (None when there is no usable row) and a note for the page."""
    if not path.is_file():
        return None, f"no drift data: {path.name} is not in {path.parent}"
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or TIMESTAMP not in reader.fieldnames:
            return None, f"no drift data: {path} has no '{TIMESTAMP}' column"
        names = [c for c in reader.fieldnames if c not in (TIMESTAMP, STRATEGY)]
        per_strategy = STRATEGY in reader.fieldnames
        ts: list[float] = []
        cols: dict[str, list[float | None]] = {c: [] for c in names}
        bad = 0
        for row in reader:
            if per_strategy and row.get(STRATEGY) != TOTAL:
                continue  # the figure is the deployment's: its total row per snapshot
            t = parse_time(row.get(TIMESTAMP) or "")
            if t is None:
                bad += 1
                continue
            ts.append(t)
            for c in names:
                cols[c].append(_cell(row.get(c)))
    if not ts:
        return None, f"no drift data: {path} has no rows yet"
    step = max(1, math.ceil(len(ts) / MAX_POINTS))
    keep = list(range(0, len(ts), step))
    if keep[-1] != len(ts) - 1:
        keep.append(len(ts) - 1)
    table = DriftTable(
        tuple(ts[i] for i in keep), {c: tuple(v[i] for i in keep) for c, v in cols.items()}
    )
    note = f"{len(ts)} snapshots from {path}"
    if bad:
        note += f" ({bad} rows with an unreadable timestamp left out)"
    return table, note
