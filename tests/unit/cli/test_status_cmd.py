"""`tradeplane status` of a stopped deployment: every figure it shows is what the journal holds
(the journal written by JournalStore, read as the CLI reads a state dir)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.unit.journal.factories import DEPLOYMENT, T0, denied, intent, rec, trade
from tests.unit.journal.test_run_figures import lines
from tradeplane.actors import journal_reads
from tradeplane.cli import output, status_view
from tradeplane.cli.main import app
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.run_figures import run_figures
from tradeplane.journal.store import JournalStore

runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A demo-like run: 48 denials, a strategy flat again after a round trip, one short."""
    state_dir = tmp_path / "state"
    capital = {"flat": 100_000.0, "shorty": 50_000.0}
    started = {"strategies": sorted(capital), "capital": capital, "session_calendar": "24/7"}
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([rec("started", "deployment_started", started)])
        store.commit([intent(n, strategy="flat") for n in range(30)])
        store.commit([denied(n, "MAX_POSITION_VALUE", strategy="flat") for n in range(2, 30)])
        store.commit([denied(100 + n, "KILL_SWITCH_ACTIVE", strategy="shorty") for n in range(20)])
        store.commit(trade(0, "buy", 10.0, 100.0, strategy="flat", symbol="AAA", fee=0.5))
        store.commit(trade(1, "sell", 10.0, 103.0, strategy="flat", symbol="AAA", fee=0.5))
        store.commit(trade(200, "sell", 5.0, 40.0, strategy="shorty", symbol="BBB", fee=0.25))
        summary = {"symbols": {"AAA": {"close": 104.0}, "BBB": {"close": 38.0}}}
        store.commit([rec("bars", "bar_summary", summary, ts=T0 + 10)])
    return state_dir


def status(*args: str) -> str:
    result = runner.invoke(app, ["status", DEPLOYMENT, *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_status_of_stopped_run_when_journal_holds_denials_then_shows_their_count(
    state: Path,
) -> None:
    text = status("--state-dir", str(state))
    assert "denied 48" in text
    assert "MAX_POSITION_VALUE 28" in text and "KILL_SWITCH_ACTIVE 20" in text


def row(text: str, strategy: str) -> list[str]:
    line = next(x for x in text.splitlines() if re.search(rf"\b{strategy}\b", x))
    return [c.strip() for c in line.split("│") if c.strip()]


def test_status_of_stopped_run_when_strategy_flat_again_then_shown_with_realized_pnl(
    state: Path,
) -> None:
    cells = row(status("--state-dir", str(state)), "flat")
    # strategy, symbol, qty, avg, mark, realized, unrealized, fees, fills, equity, total, intents
    assert cells[:3] == ["flat", "AAA", "0.00"]
    assert "30.00" in cells  # realized on the round trip
    assert "100,029.00" in cells  # equity: capital + 30 realized - 1 fees
    assert cells[-1] == "30"  # intents


def test_status_of_stopped_run_when_short_open_then_equity_and_pnl_marked(state: Path) -> None:
    cells = row(status("--state-dir", str(state)), "shorty")
    assert cells[:3] == ["shorty", "BBB", "-5.00"]
    assert "10.00" in cells  # unrealized: short 5 from 40 marked at 38
    assert "50,009.75" in cells  # equity: 50,000 + 10 - 0.25 fees
    assert cells[-1] == "21"  # intents its decisions name (20 denied, 1 sent)


def test_status_json_of_stopped_run_then_figures_are_the_journals(state: Path) -> None:
    got: dict[str, Any] = json.loads(status("--state-dir", str(state), "--json"))["state"]
    figures = got["figures"]
    assert figures["denied"] == 48
    assert figures["intents"] == 51
    assert figures["fills"] == 3
    assert figures["total"]["equity"] == pytest.approx(150_038.75)
    assert figures["strategies"]["flat"]["positions"]["AAA"]["realized_pnl"] == 30.0
    assert figures["day"]["pnl"] == pytest.approx(38.75)
    # The keys status always had now carry the same figures.
    assert got["strategies"]["flat"]["stats"]["intents"] == 30
    assert got["strategies"]["flat"]["pnl"]["equity"] == pytest.approx(100_029.0)
    assert "AAA" in got["strategies"]["flat"]["positions"]


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output.console, "width", 250)


def test_running_status_when_heartbeats_disagree_then_journal_figures_shown_in_both_views() -> None:
    """A figure both the journal and a heartbeat know is the journal's, in text and in JSON;
    the heartbeats keep what only they know (health, ages, latency)."""
    figures = run_figures(
        lines([*trade(1, "buy", 2.0, 100.0, strategy="s1"), denied(2, "MAX_ORDER_VALUE")]),
        capital={"s1": 1000.0},
    )
    live = {
        "deployment": DEPLOYMENT,
        "health": "ok",
        "last_bar_age_s": 1.5,
        "orders": {"filled": 7},
        "broker": {"tick_to_order_ms": {"p50": 1.0, "p99": 2.0}},
        "risk": {
            "denied": {},
            "risk": {"equity": 5.0, "daily_pnl": 9.0, "approved": 3, "drawdown_pct": 0.25},
        },
        "strategies": {
            "s1": {"pnl": {"equity": 1.0}, "positions": {}, "stats": {"intents": 0, "bars": 9}}
        },
    }
    merged = status_view.with_journal_figures(live, figures)
    assert merged["orders"] == {"filled": 1}
    assert merged["risk"]["denied"] == {"MAX_ORDER_VALUE": 1}
    assert merged["risk"]["risk"]["equity"] == figures["total"]["equity"] == 1000.0
    assert merged["risk"]["risk"]["daily_pnl"] == figures["day"]["pnl"]
    s1 = merged["strategies"]["s1"]
    assert s1["stats"] == {"intents": 2, "bars": 9, "orders": 1, "fills": 1, "denied": 1}
    assert s1["pnl"]["equity"] == 1000.0 and "BTC-USDT" in s1["positions"]
    assert merged["health"] == "ok" and live["orders"] == {"filled": 7}  # the input untouched

    console = Console(width=250, record=True)
    console.print(status_view.running_view(merged, figures))
    text = console.export_text()
    assert "orders: filled 1, fills 1, denied 1 (MAX_ORDER_VALUE 1)" in text
    assert "tick-to-order p50 1.00ms" in text
    assert "risk engine: drawdown 0.25%" in text  # what only the live risk engine knows
    assert "equity 1,000.00" in text and "5.00" not in text.split("strategies")[0]


def test_journal_figures_when_read_in_small_pages_then_same_as_in_one(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with JournalReader.open(state) as reader:
        whole = journal_reads.journal_figures(reader)
        monkeypatch.setattr(journal_reads, "READ_PAGE", 7)
        assert journal_reads.journal_figures(reader) == whole
        assert whole["denied"] == 48 and whole["fills"] == 3


def test_figures_cache_when_the_journal_grows_between_reads_then_same_as_a_whole_read(
    state: Path,
) -> None:
    """The journal actor's figures carry on from the last read: only what came since is
    read, and the result is what reading the whole journal gives."""
    cache = journal_reads.FiguresCache()
    with JournalReader.open(state) as reader:
        before = cache.read(reader)
    with JournalStore.open(state, DEPLOYMENT) as store:
        store.commit([denied(300 + n, "MAX_ORDER_VALUE", strategy="shorty") for n in range(3)])
        store.commit(trade(301, "buy", 5.0, 39.0, strategy="shorty", symbol="BBB", fee=0.25))
    with JournalReader.open(state) as reader:
        after = cache.read(reader)
        assert after == journal_reads.journal_figures(reader) != before
    assert after["denied"] == before["denied"] + 3 and after["fills"] == before["fills"] + 1
