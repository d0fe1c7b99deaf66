"""`tradeplane status` of a real paper run on the sim venue tells what its journal holds: a run
with tight limits (denials), an operator's kill switch, a round trip back to flat and a short.
Every figure of ``status --json`` and of the text view, running and stopped, is checked against
figures this test computes from the journal's events itself (not through ``run_figures``)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.conftest import make_config
from tests.integration.harness import journal_counts, running, strategy, wait_for_kind
from tradeplane.cli import output
from tradeplane.cli.main import app
from tradeplane.journal.reader import JournalReader

pytestmark = pytest.mark.usefixtures("ray_session")

cli = CliRunner()
# Order kinds that do not set an order's status (a fill's carries it in its data).
NOT_A_STATUS = ("order_filled", "order_cancel_rejected", "order_fill_duplicate")
CAPITAL = 100_000.0
EPS = 1e-6


def ts_of(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["ts"]).replace("Z", "+00:00")).timestamp()


def expected(state: Path, upto_seq: int | None = None) -> dict[str, Any]:
    """The run's figures as this test reads them off the journal's events up to ``upto_seq``."""
    with JournalReader.open(state) as j:
        lines = [e for e in j.events() if upto_seq is None or e["seq"] <= upto_seq]
    denials: Counter[str] = Counter()
    intents: dict[str, set[str]] = {}
    status: dict[str, str] = {}
    fill_ids: set[str] = set()
    books: dict[tuple[str, str], list[float]] = {}  # qty, avg, realized
    fees: dict[str, float] = {}
    cash: dict[str, float] = {}
    marks: dict[str, float] = {}
    kill: dict[str, Any] = {"active": False}
    for e in lines:
        kind, data, strat = e["kind"], e["data"], e.get("strategy")
        if kind in ("intent", "order_denied", "order_submitting") and strat and e["intent_id"]:
            intents.setdefault(strat, set()).add(e["intent_id"])
        if kind == "order_denied":
            denials[data["reason"]] += 1
        elif kind == "order_submitting":
            status.setdefault(e["client_order_id"], "pending_submit")
        elif kind.startswith("order_") and kind not in NOT_A_STATUS:
            status[e["client_order_id"]] = kind.removeprefix("order_")
        if kind == "order_filled":
            if data.get("status"):
                status[e["client_order_id"]] = data["status"]
            fill = data.get("fill")
            if fill and fill["fill_id"] not in fill_ids:
                fill_ids.add(fill["fill_id"])
                signed = fill["quantity"] * (1 if fill["side"] == "buy" else -1)
                q, avg, realized = books.get((strat, fill["symbol"]), [0.0, 0.0, 0.0])
                if abs(q) < EPS or (q > 0) == (signed > 0):
                    avg = (abs(q) * avg + abs(signed) * fill["price"]) / (abs(q) + abs(signed))
                    q += signed
                else:
                    closed = min(abs(q), abs(signed))
                    realized += closed * (fill["price"] - avg) * (1 if q > 0 else -1)
                    q, avg = (
                        (0.0, 0.0)
                        if abs(q + signed) < EPS
                        else (q + signed, avg if (q + signed > 0) == (q > 0) else fill["price"])
                    )
                books[(strat, fill["symbol"])] = [q, avg, realized]
                fees[strat] = fees.get(strat, 0.0) + fill["fee"]
                cash[strat] = cash.get(strat, 0.0) - signed * fill["price"] - fill["fee"]
                marks[fill["symbol"]] = fill["price"]
        elif kind == "bar_summary":
            for symbol, s in data["symbols"].items():
                marks[symbol] = s["close"]
        elif kind == "kill_switch_activated":
            kill = {"active": True, "reason": data["reason"], "state": data["trading_state"]}
        elif kind == "kill_switch_cleared":
            kill = {"active": False}
    strategies: dict[str, Any] = {}
    for name in ("trip", "short", "acc"):
        held = {sym: b for (s, sym), b in books.items() if s == name}
        value = sum(b[0] * marks[sym] for sym, b in held.items())
        realized = sum(b[2] for b in held.values())
        unrealized = sum(b[0] * (marks[sym] - b[1]) for sym, b in held.items())
        strategies[name] = {
            "positions": held,
            "realized": realized,
            "unrealized": unrealized,
            "fees": fees.get(name, 0.0),
            "equity": CAPITAL + cash.get(name, 0.0) + value,
            "intents": len(intents.get(name, set())),
        }
    orders = Counter(status.values())
    return {
        "denials": dict(denials),
        "orders": dict(orders),
        "fills": len(fill_ids),
        "strategies": strategies,
        "kill": kill,
        "first_ts": ts_of(lines[0]),
        "last_ts": max(ts_of(e) for e in lines),
    }


def check_figures(figures: dict[str, Any], want: dict[str, Any]) -> None:
    assert figures["denials"] == want["denials"]
    assert figures["denied"] == sum(want["denials"].values())
    assert figures["orders"] == want["orders"]
    assert figures["fills"] == want["fills"]
    total = 0.0
    for name, w in want["strategies"].items():
        got = figures["strategies"][name]
        assert got["intents"] == w["intents"], name
        assert got["realized_pnl"] == pytest.approx(w["realized"]), name
        assert got["unrealized_pnl"] == pytest.approx(w["unrealized"]), name
        assert got["fees"] == pytest.approx(w["fees"]), name
        assert got["equity"] == pytest.approx(w["equity"]), name
        assert got["total_pnl"] == pytest.approx(w["equity"] - CAPITAL), name
        for symbol, (q, avg, realized) in w["positions"].items():
            pos = got["positions"][symbol]
            assert pos["quantity"] == pytest.approx(q, abs=EPS), (name, symbol)
            assert pos["avg_price"] == pytest.approx(avg), (name, symbol)
            assert pos["realized_pnl"] == pytest.approx(realized), (name, symbol)
        total += w["equity"]
    assert figures["total"]["equity"] == pytest.approx(total)
    assert figures["kill_switch"]["active"] is want["kill"]["active"]
    day = figures["day"]
    last_day = datetime.fromtimestamp(want["last_ts"], UTC).date().isoformat()
    assert day["risk_day"] == last_day  # the demo's 24/7 calendar: the UTC date
    if datetime.fromtimestamp(want["first_ts"], UTC).date().isoformat() == last_day:
        assert day["start_equity"] == pytest.approx(3 * CAPITAL)
        assert day["pnl"] == pytest.approx(total - 3 * CAPITAL)


def status(*args: str) -> str:
    result = cli.invoke(app, ["status", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_status_of_a_real_run_running_and_stopped_then_every_figure_is_the_journals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.console, "width", 250)
    state = tmp_path / "state"
    sim = {"symbols": ["AAA", "BBB", "CCC"], "speed": 600.0, "history_bars": 0, "seed": 3}
    cfg = make_config(
        state,
        strategies=[
            strategy("trip", "Scripted", ["AAA"], sides=["buy", "sell"], quantity=2),
            strategy("short", "Scripted", ["BBB"], sides=["sell"], quantity=2),
            strategy("acc", "Accumulator", ["CCC"], quantity=1),
        ],
        venue={"kind": "sim", "sim": sim | {"taker_fee_bps": 5.0}},
        risk={"max_position_quantity": 3, "kill_switch_allow_reducing": False},
        journal={"bar_summary_interval_s": 0.5},
    )
    name = cfg.deployment.name
    with running(cfg):
        wait_for_kind(state, "order_filled", 6)  # trip 2, short 1, acc 3
        wait_for_kind(state, "order_denied", 3)  # acc at its position limit
        # Running: the journal's figures, in --json's state and over the live heartbeats.
        got = json.loads(status(name, "--json"))
        figures = got["state"]["figures"]
        check_figures(figures, expected(state, upto_seq=figures["last_seq"]))
        assert got["live"]["health"] and got["live"]["orders"] == figures["orders"]
        assert got["live"]["risk"]["denied"] == figures["denials"]
        for name_, s in figures["strategies"].items():
            assert got["live"]["strategies"][name_]["stats"]["intents"] == s["intents"]
            assert got["live"]["strategies"][name_]["pnl"]["equity"] == s["equity"]
        result = cli.invoke(app, ["kill-switch", "on", name, "--reason", "status test"])
        assert result.exit_code == 0, result.output
        wait_for_kind(state, "kill_switch_activated", 1)
        wait_for_kind(state, "order_denied", journal_counts(state)["order_denied"] + 3)

    want = expected(state)
    assert want["kill"]["active"] and len(want["denials"]) >= 2  # the position limit, the halt
    trip = want["strategies"]["trip"]["positions"]["AAA"]
    assert trip[0] == 0.0 and trip[2] != 0.0  # flat again, with what it realized
    assert want["strategies"]["short"]["positions"]["BBB"][0] == -2.0

    got = json.loads(status(name, "--state-dir", str(state), "--json"))
    assert got["live"] is None
    check_figures(got["state"]["figures"], want)
    assert got["state"]["orders"] == want["orders"]
    assert got["state"]["strategies"]["trip"]["positions"]["AAA"]["quantity"] == 0.0
    assert (
        got["state"]["strategies"]["acc"]["stats"]["intents"]
        == (want["strategies"]["acc"]["intents"])
    )

    text = status(name, "--state-dir", str(state))
    denied = sum(want["denials"].values())
    assert f"denied {denied} (" in text
    for reason, n in want["denials"].items():
        assert f"{reason} {n}" in text
    assert f"fills {want['fills']}" in text
    assert "KILL SWITCH (" in text and f"{want['kill']['reason']})" in text
    for strat, w in want["strategies"].items():
        line = next(x for x in text.splitlines() if re.match(rf"│ {strat}\s", x))
        cells = [c.strip() for c in line.split("│") if c.strip()]
        assert cells[-1] == str(w["intents"]), strat
        assert cells[-3] == f"{w['equity']:,.2f}", strat
        assert cells[-2] == f"{w['equity'] - CAPITAL:,.2f}", strat
    assert f"equity {sum(w['equity'] for w in want['strategies'].values()):,.2f}" in text
