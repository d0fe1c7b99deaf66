"""Recorded bars on a real deployment: a paper deployment on the sim venue with ``[journal]
bars = "all"`` leaves bars a backtest reads back (``read_recorded_bars``), in time order, one
unbroken series per symbol even when the writing actor (the journal, on the state node) is
SIGKILLed mid-chunk: the open chunk it lost is refetched from the feed after the restart. (One
deployment for both: the drift/parity test reads recorded bars of a run without a kill.)"""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import actor, journal_counts, live_status, running
from tradeplane.backtest.bars_recorded import read_recorded_bars
from tradeplane.core.model import Bar
from tradeplane.journal.bar_store import bars_dir, chunks
from tradeplane.supervisor.chaos import kill_actor

pytestmark = pytest.mark.usefixtures("ray_session")

RECORD = {"bars": "all", "bar_chunk_max_bars": 40, "bar_chunk_interval_s": 2.0}


def _series(state: Path) -> dict[str, list[Bar]]:
    out: dict[str, list[Bar]] = {}
    for bar in read_recorded_bars(state):
        out.setdefault(bar.symbol, []).append(bar)
    return out


def _recording(name: str) -> dict[str, Any]:
    beat = ray.get(actor(name, "journal").heartbeat.remote(), timeout=10)
    return cast(dict[str, Any], beat["recorded_bars"])


def _unbroken(bars: list[Bar], step: timedelta) -> bool:
    return all(b.ts - a.ts == step for a, b in itertools.pairwise(bars))


def test_journal_sigkilled_mid_chunk_then_lost_open_chunk_refetched_and_series_unbroken(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    # A long interval: the chunk open when the journal dies holds many bars (100 to 240).
    record = {**RECORD, "bar_chunk_max_bars": 240, "bar_chunk_interval_s": 30.0}
    cfg = make_config(state, journal=record)
    step = timedelta(seconds=cfg.venue.sim.bar_interval_s)
    with running(cfg) as run:
        eventually(lambda: len(chunks(bars_dir(state))) >= 1, timeout_s=60, what="a chunk")
        eventually(
            lambda: _recording(run.name)["bars_open"] >= 100,
            timeout_s=30,
            what="100 bars in the open chunk",
        )
        closed = {s: bars[-1].ts for s, bars in _series(state).items()}
        assert kill_actor(run.name, "journal", "sigkill")["ok"]

        def back() -> bool:
            live = live_status(run.name)
            journal = live.get("children", {}).get("journal", {})
            return journal.get("restarts") == 1 and live.get("health") == "ok"

        eventually(back, timeout_s=60, what="journal back")
        # Bars after the restart reach a closed chunk too.
        eventually(
            lambda: all(bars[-1].ts > closed[s] + 50 * step for s, bars in _series(state).items()),
            timeout_s=90,
            what="bars recorded well past the kill",
        )
        # What the killed journal held open came back from the feed, not from luck.
        assert _recording(run.name)["refilled_bars"] >= 100
    series = _series(state)
    assert set(series) == {"AAA", "BBB"}
    for symbol, bars in series.items():
        assert bars[0].ts < closed[symbol] < bars[-1].ts
        assert _unbroken(bars, step), f"{symbol}: a gap or a duplicate in the recorded bars"
    ts = [b.ts for b in read_recorded_bars(state)]
    assert ts == sorted(ts)
    # The journal holds summaries, never one event per bar.
    counts = journal_counts(state)
    assert counts.get("bar", 0) == 0 and counts.get("bar_summary", 0) >= 1
