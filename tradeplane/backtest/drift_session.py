"""One deployment's drift tracking across restarts: the tracker, its two files and its state.

A round takes what arrived since the last one, the recorded bars first and then the journal's
lines, so a fill reaches the tracker after the bar that made it. After a round that cut rows the
rows are appended, then ``drift_state.json`` (the tracker without its shadow, what the journal's
earlier lines told of orders and intents, the journal seq and the bar time read up to) and
``live_performance.json`` are replaced atomically. A restart loads
the state, rebuilds the shadow from the recorded bars up to the saved bar time and goes on from
the saved journal seq: the rows it cuts again are already in the file and are not written twice.

Started on a deployment with a history (``[drift]`` added later), the shadow is given every
recorded bar and the live books every journaled fill, so figures are cumulative from the
deployment's first bar; rows start at the current bar time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from tradeplane.backtest.drift import DriftTracker
from tradeplane.backtest.drift_files import DriftFiles
from tradeplane.backtest.drift_journal import JournalInputs
from tradeplane.backtest.drift_model import DriftAlert, LiveFill
from tradeplane.backtest.engine import group_by_time
from tradeplane.core.model import Bar
from tradeplane.journal.files import atomic_write

STATE_FILE = "drift_state.json"


class DriftSession:
    def __init__(
        self, tracker: DriftTracker, files: DriftFiles, inputs: JournalInputs, config_hash: str
    ) -> None:
        self.tracker = tracker
        self.files = files
        self.inputs = inputs
        self.config_hash = config_hash
        self.state_path = files.dir / STATE_FILE
        self.seq = 0  # journal lines read up to
        self.bar_ts: float | None = None  # close of the last bars given to the shadow
        self.rounds = 0
        self.resumed = False
        self.note: str | None = None  # why a saved state was not used, if it was not

    # -- start ---------------------------------------------------------------------------------

    def saved(self) -> dict[str, Any] | None:
        """The saved state, if there is one this configuration can use."""
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.note = f"{STATE_FILE} unreadable ({exc}): tracking starts again"
            return None
        if state.get("config_hash") != self.config_hash:
            self.note = f"{STATE_FILE} is for another configuration: tracking starts again"
            return None
        return dict(state)

    def resume(self, state: dict[str, Any], bar_groups: Iterable[Sequence[Bar]]) -> None:
        """Take ``state`` back; ``bar_groups``: the recorded bars up to its bar time, in order."""
        self.tracker.restore(state["tracker"])
        if "inputs" in state:
            self.inputs.restore(state["inputs"])
        else:  # written by a version that did not keep them: the rest of the state still holds
            self.note = (
                f"{STATE_FILE} has no journal inputs (an older version): fills of orders "
                "journaled before it count when they come"
            )
        for group in bar_groups:
            self.tracker.replay_shadow(group)
        self.seq, self.bar_ts = int(state["seq"]), state["bar_ts"]
        self.resumed = True

    def catch_up(
        self, bar_groups: Iterable[Sequence[Bar]], lines: Iterable[dict[str, Any]], seq: int
    ) -> None:
        """A first start on a deployment with a history: every recorded bar to the shadow,
        every journaled fill to the live books; no rows for the past."""
        first: float | None = None
        for group in bar_groups:
            self.tracker.replay_shadow(group)
            self.bar_ts = group[0].ts.timestamp() + self.tracker.bar_interval_s
            first = self.bar_ts if first is None else first
        for found in self.inputs.read(lines):
            if isinstance(found, LiveFill):
                self.tracker.add_live_fill(found)
        self.seq = seq
        if first is not None:
            self.tracker.start_at(first, self.bar_ts)

    # -- rounds --------------------------------------------------------------------------------

    def round(
        self, bar_groups: Iterable[Sequence[Bar]], lines: Sequence[dict[str, Any]]
    ) -> list[DriftAlert]:
        """The bars (grouped by bar time, in order) and journal lines that arrived since the
        last round; returns the alerts raised (to journal)."""
        self.rounds += 1
        rows: list[dict[str, Any]] = []
        alerts: list[DriftAlert] = []
        for group in bar_groups:
            close = group[0].ts.timestamp() + self.tracker.bar_interval_s
            if self.bar_ts is not None and close <= self.bar_ts:
                continue  # given before (a restart's replay covered it)
            out = self.tracker.add_bars(group)
            rows += out.rows
            alerts += out.alerts
            self.bar_ts = close
        fresh = [line for line in lines if int(line["seq"]) > self.seq]  # read before: skip
        for found in self.inputs.read(fresh):
            if isinstance(found, LiveFill):
                self.tracker.add_live_fill(found)
            else:
                self.tracker.add_live_intent(found)
        if fresh:
            self.seq = max(int(line["seq"]) for line in fresh)
        if rows:
            self.files.append(rows)
            self.save()
        return alerts

    def close_rows(self, ts: float) -> list[DriftAlert]:
        """The run ends: rows due up to bar time ``ts`` are cut now (no later bar will)."""
        out = self.tracker.advance(ts)
        if out.rows:
            self.files.append(out.rows)
            self.save()
        return out.alerts

    def save(self) -> None:
        state = {
            "config_hash": self.config_hash,
            "seq": self.seq,
            "bar_ts": self.bar_ts,
            "tracker": self.tracker.snapshot(),
            "inputs": self.inputs.snapshot(),
        }
        data = json.dumps(state, allow_nan=False).encode()
        atomic_write(self.state_path, lambda fd: os.write(fd, data))
        self.files.write_performance(self.tracker.performance())


def open_session(
    make: Callable[[], DriftSession],
    recorded: Callable[[], Iterator[Bar]],
    journal: Callable[[], tuple[list[dict[str, Any]], int]],
) -> DriftSession:
    """A drift actor's start: the saved state resumed (the shadow rebuilt from the ``recorded``
    bars up to its bar time), or, without one it can use, a fresh session (``make``) given the
    whole history (``recorded`` bars, ``journal`` lines and the seq read up to). A state this
    version cannot take back (hand-edited, or of another shape) is said in ``note`` and tracking
    starts again, rather than the actor never starting."""
    session = make()
    state = session.saved()
    if state is not None:
        try:
            upto = state["bar_ts"]
            interval = session.tracker.bar_interval_s
            bars = recorded() if upto is not None else iter(())
            session.resume(
                state, (g for g in group_by_time(bars) if g[0].ts.timestamp() + interval <= upto)
            )
            return session
        except (KeyError, TypeError, ValueError) as exc:
            session = make()
            session.note = f"{STATE_FILE} unusable ({type(exc).__name__}: {exc}"[:300]
            session.note += "): tracking starts again"
    lines, seq = journal()
    session.catch_up(group_by_time(recorded()), lines, seq)
    return session
