"""Drift tracking across restarts (``backtest.drift_session``): rounds of recorded bars and
journal lines, the rows and state written, and a restart that neither skips nor repeats rows."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from tests.unit.backtest.test_drift import BAR_S, T0, ScriptedShadow, bar, tracker
from tradeplane.backtest.drift_files import DRIFT_CSV, PERFORMANCE_JSON, DriftFiles
from tradeplane.backtest.drift_journal import JournalInputs
from tradeplane.backtest.drift_session import STATE_FILE, DriftSession


def session(state_dir: Path, config_hash: str = "h1") -> DriftSession:
    return DriftSession(
        tracker(ScriptedShadow(1000.0)), DriftFiles(state_dir), JournalInputs("sim"), config_hash
    )


FILL = {"symbol": "BTC-USDT", "side": "buy", "quantity": 1.0, "fee": 0.0}


def fill_line(seq: int, price: float) -> dict[str, Any]:
    return {
        "seq": seq,
        "kind": "order_filled",
        "ts": "2026-01-01T00:00:00Z",
        "strategy": "s1",
        "intent_id": f"i{seq}",
        "client_order_id": f"tpi{seq}",
        "data": {"fill": FILL | {"fill_id": f"F{seq}", "price": price}},
    }


def rounds(s: DriftSession, ks: range) -> None:
    for k in ks:
        lines = [fill_line(k, 100.0 + k)] if k % 4 == 1 else []
        s.round([[bar(T0 + k * BAR_S, 100.0 + k)]], lines)


def test_rounds_then_rows_state_and_performance_written_0600(tmp_path: Path) -> None:
    s = session(tmp_path)
    rounds(s, range(6))
    lines = (tmp_path / DRIFT_CSV).read_text().splitlines()
    assert len(lines) == 1 + 2 * 5  # rows up to the last bar time passed, s1 and total
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["seq"] == 5 and state["config_hash"] == "h1"
    assert json.loads((tmp_path / PERFORMANCE_JSON).read_text())["last_equity"] is not None
    for name in (DRIFT_CSV, STATE_FILE, PERFORMANCE_JSON):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_restart_then_resumed_from_state_with_shadow_replayed_and_file_as_if_never_stopped(
    tmp_path: Path,
) -> None:
    whole = session(tmp_path / "whole")
    rounds(whole, range(14))

    first = session(tmp_path / "restarted")
    rounds(first, range(8))
    again = session(tmp_path / "restarted")  # the drift actor restarted
    state = again.saved()
    assert state is not None
    replayed = [[bar(T0 + k * BAR_S, 100.0 + k)] for k in range(8)]  # the recorded bars
    again.resume(state, [g for g in replayed if g[0].ts.timestamp() + BAR_S <= state["bar_ts"]])
    rounds(again, range(5, 14))  # bars and lines overlapping what was read: skipped
    assert (tmp_path / "restarted" / DRIFT_CSV).read_text() == (
        tmp_path / "whole" / DRIFT_CSV
    ).read_text()


def test_state_of_another_configuration_then_not_used_and_said_why(tmp_path: Path) -> None:
    rounds(session(tmp_path), range(3))
    other = session(tmp_path, config_hash="h2")
    assert other.saved() is None
    assert other.note is not None and "another configuration" in other.note


def test_first_start_on_a_history_then_cumulative_figures_and_rows_from_now(
    tmp_path: Path,
) -> None:
    s = session(tmp_path)
    history = [[bar(T0 + k * BAR_S, 100.0)] for k in range(10)]
    s.catch_up(history, [fill_line(3, 90.0)], seq=42)
    s.round([[bar(T0 + 10 * BAR_S, 100.0)]], [])
    s.round([[bar(T0 + 11 * BAR_S, 100.0)]], [])
    rows = [r for r in (tmp_path / DRIFT_CSV).read_text().splitlines()[1:] if ",s1," in r]
    assert len(rows) == 1 and rows[0].startswith("2026-01-01T00:11:00")
    assert s.tracker.last_row["s1"]["equity"] == 1010.0  # bought at 90, marked at 100
    assert s.seq == 42
