"""Drift tracking across restarts (``backtest.drift_session``): rounds of recorded bars and
journal lines, the rows and state written, and a restart that neither skips nor repeats rows."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from tests.unit.backtest.test_drift import BAR_S, T0, ScriptedShadow, bar, intent, tracker
from tradeplane.backtest.drift_files import DRIFT_CSV, PERFORMANCE_JSON, DriftFiles
from tradeplane.backtest.drift_journal import JournalInputs
from tradeplane.backtest.drift_session import STATE_FILE, DriftSession, open_session
from tradeplane.core import ids
from tradeplane.core.model import Fill, Side


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


def order_line(seq: int, kind: str, iid: str, trigger: str, ts: str, **data: Any) -> dict[str, Any]:
    return {
        "seq": seq, "kind": kind, "ts": ts, "strategy": "s1", "intent_id": iid,
        "client_order_id": ids.client_order_id(iid),
        "data": {"symbol": "BTC-USDT", "trigger": trigger, "ts": T0} | data,
    }  # fmt: skip


def test_restart_between_an_order_and_its_fill_then_the_fill_still_waits_for_its_bar(
    tmp_path: Path,
) -> None:
    """The live side runs ahead of the shadow (bars settle before the shadow gets them): an
    order journaled before the last save and filled after a restart must still be matched to
    its bar, with its submit and ack times, and an intent seen before and after it once."""
    a = intent("s1", T0 + 2 * BAR_S)  # submitted before the save, filled after the restart
    b = intent("s1", T0 + 3 * BAR_S)  # its intent record before the save, its order after
    fill_a = Fill("fa", a.client_order_id, a.intent_id, "s1", "BTC-USDT", Side.BUY, 1.0, 103.0,
                  0.0, T0 + 4 * BAR_S)  # fmt: skip
    script = {
        T0 + 3 * BAR_S: {"intents": [a]},
        T0 + 4 * BAR_S: {"intents": [b], "fills": [fill_a], "cash": -103.0, "value": 103.0},
        T0 + 5 * BAR_S: {"value": 104.0},
        T0 + 6 * BAR_S: {"value": 105.0},
    }
    submit_a = order_line(
        1, "order_submitting", a.intent_id, a.trigger, "2026-01-01T00:02:01Z",
        intent={"trigger": a.trigger, "ts": T0 + 3 * BAR_S},
        decision={"reference_price": 102.0},
    )  # fmt: skip
    accept_a = order_line(2, "order_accepted", a.intent_id, a.trigger, "2026-01-01T00:02:01.5Z")
    intent_b = order_line(3, "intent", b.intent_id, b.trigger, "2026-01-01T00:02:02Z")
    submit_b = order_line(
        4, "order_submitting", b.intent_id, b.trigger, "2026-01-01T00:02:03Z",
        intent={"trigger": b.trigger, "ts": T0 + 4 * BAR_S},
    )  # fmt: skip
    filled_a = order_line(
        5, "order_filled", a.intent_id, a.trigger, "2026-01-01T00:02:04Z",
        fill={"fill_id": "F-a", "symbol": "BTC-USDT", "side": "buy", "quantity": 1.0,
              "price": 103.0, "fee": 0.0},
    )  # fmt: skip
    before = [([bar(T0, 100.0)], []), ([bar(T0 + BAR_S, 101.0)], [submit_a, accept_a, intent_b])]
    after = [
        ([], [submit_b, filled_a]),
        *[([bar(T0 + k * BAR_S, 100.0 + k)], []) for k in (2, 3, 4, 5, 6)],
    ]

    def scripted(state_dir: Path) -> DriftSession:
        shadow = ScriptedShadow(1000.0, script)
        return DriftSession(tracker(shadow), DriftFiles(state_dir), JournalInputs("sim"), "h1")

    whole = scripted(tmp_path / "whole")
    for groups, lines in [*before, *after]:
        whole.round([g for g in [groups] if g], lines)
    first = scripted(tmp_path / "restarted")
    for groups, lines in before:
        first.round([groups], lines)
    again = scripted(tmp_path / "restarted")  # the drift actor restarted after the save
    state = again.saved()
    assert state is not None and state["seq"] == 3
    again.resume(state, [[bar(T0, 100.0)], [bar(T0 + BAR_S, 101.0)]])
    for groups, lines in after:
        again.round([g for g in [groups] if g], lines)

    written = (tmp_path / "restarted" / DRIFT_CSV).read_text()
    assert written == (tmp_path / "whole" / DRIFT_CSV).read_text()
    last = again.tracker.last_row["s1"]
    assert last["equity"] == last["backtest_equity"] == 1002.0  # bought at 103, marked at 105
    assert last["intents_live"] == 2 and last["intents_backtest"] == 2
    quality = again.tracker.performance()["execution_quality"]["s1"]["sim"]
    assert quality["fills"] == 1 and quality["ack_latency_ms"]["mean"] == 500.0


def test_open_with_a_usable_state_then_resumed_and_with_a_misshapen_one_then_started_again(
    tmp_path: Path,
) -> None:
    history = [bar(T0 + k * BAR_S, 100.0 + k) for k in range(8)]
    rounds(session(tmp_path), range(8))
    journal = ([fill_line(1, 101.0), fill_line(5, 105.0)], 5)
    resumed = open_session(lambda: session(tmp_path), lambda: iter(history), lambda: journal)
    assert resumed.resumed and resumed.note is None and resumed.seq == 5

    state = json.loads((tmp_path / STATE_FILE).read_text())
    del state["tracker"]["tracks"]  # valid JSON of this configuration, but not a state it takes
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    again = open_session(lambda: session(tmp_path), lambda: iter(history), lambda: journal)
    assert not again.resumed and again.seq == 5
    assert again.note is not None and "unusable (KeyError" in again.note
    assert again.tracker.live["s1"].equity == 1000.0 + (107 - 101) + (107 - 105)  # both fills
