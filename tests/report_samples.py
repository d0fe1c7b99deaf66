"""Sample inputs for the report's tests: a journal written by ``JournalStore`` with what a paper
run journals (bar summaries, intents, orders, fills, denials, health changes), a
``live_drift.csv``, and a backtest's output dir with hand-written files in the shared schema."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradeplane.backtest.outputs import FILL_COLUMNS
from tradeplane.core.ids import client_order_id, intent_id
from tradeplane.journal.records import JournalRecord
from tradeplane.journal.store import JournalStore

DEP = "demo"
T0 = 1_700_000_000.0
CAPITAL = {"s1": 100_000.0, "s2": 50_000.0}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _rec(kind: str, ts: float, data: dict[str, Any], event_id: str, **kw: Any) -> JournalRecord:
    return JournalRecord(event_id, kind, ts, DEP, data, **kw)


def order_records(
    strategy: str, n: int, t: float, symbol: str, side: str, qty: float, price: float
) -> list[JournalRecord]:
    """An intent's order sent 4 ms after its bar arrived (at ``t``) and filled at ``price``."""
    iid = intent_id(DEP, strategy, f"bar:{n}", 0)
    coid = client_order_id(iid)
    ids = {"strategy": strategy, "intent_id": iid, "client_order_id": coid}
    fields = {**ids, "symbol": symbol, "side": side, "quantity": qty, "order_type": "market"}
    carried = {"ts": t + 0.001, "trigger": "bar", "bar_recv_ts": t, "order_type": "market"}
    trace = {"risk_received_ts": t + 0.0015, "approved_ts": t + 0.002}
    trace["broker_received_ts"] = t + 0.0025
    fill = {"fill_id": f"F-{n}", "symbol": symbol, "side": side, "quantity": qty}
    fill |= {"price": price, "fee": 1.0, "ts": t + 1.0, "liquidity": "taker"}
    return [
        _rec(
            "order_submitting",
            t + 0.003,
            {**fields, "status": "submitting", "intent": carried, "trace": trace},
            f"order_submitting/{coid}",
            **ids,
        ),
        _rec(
            "order_submitted",
            t + 0.005,
            {**fields, "status": "submitted", "sent_ts": t + 0.004},
            f"order_submitted/{coid}",
            **ids,
        ),
        _rec(
            "order_filled",
            t + 1.0,
            {**fields, "status": "filled", "fill": fill},
            f"order_filled/F-{n}",
            **ids,
        ),
    ]


def denial(n: int, t: float, reason: str) -> JournalRecord:
    iid = intent_id(DEP, "s2", f"bar:{n}", 0)
    ids = {"strategy": "s2", "intent_id": iid, "client_order_id": client_order_id(iid)}
    return _rec(
        "order_denied", t, {"reason": reason, "symbol": "BBB"}, f"order_denied/{iid}", **ids
    )


def health(t: float, previous: str, now: str, reason: str = "") -> JournalRecord:
    data = {"component": "deployment", "previous": previous, "health": now, "reason": reason}
    return _rec("health_changed", t, data, f"health/{t}")


def summary(t: float, closes: dict[str, float]) -> JournalRecord:
    symbols = {s: {"bars": 10, "last_ts": iso(t), "close": c} for s, c in closes.items()}
    return _rec("bar_summary", t, {"symbols": symbols}, f"bar_summary/{t}")


def write_journal(state_dir: Path) -> Path:
    """A paper run of 100 s: s1 buys AAA at 100 and sells at 110 (+1000 less fees), s2 buys BBB
    at 50 and holds it marked at 40 (-200); s2 is denied twice for one reason, once for another;
    health starting -> ok -> feed_silent -> ok, the feed died once, and the run stopped."""
    started = {"mode": "paper", "venue": "sim", "strategies": ["s1", "s2"], "symbols": ["AAA"]}
    with JournalStore.open(state_dir, DEP) as store:
        store.commit([_rec("deployment_started", T0, started, "started/1")])
        store.commit([health(T0 + 1, "starting", "ok")])
        store.commit([summary(T0 + 10, {"AAA": 100.0, "BBB": 50.0})])
        store.commit(order_records("s1", 1, T0 + 11, "AAA", "buy", 100.0, 100.0))
        store.commit(order_records("s2", 2, T0 + 12, "BBB", "buy", 20.0, 50.0))
        store.commit([denial(3, T0 + 20, "max_position"), denial(4, T0 + 21, "max_position")])
        store.commit([denial(5, T0 + 22, "price_deviation")])
        store.commit([health(T0 + 30, "ok", "feed_silent", "no bar for 12 s")])
        died = {"role": "feed", "reason": "SIGKILL"}
        store.commit([_rec("actor_died", T0 + 31, died, "actor_died/1")])
        store.commit([summary(T0 + 40, {"AAA": 105.0, "BBB": 45.0})])
        store.commit([health(T0 + 45, "feed_silent", "ok")])
        store.commit(order_records("s1", 6, T0 + 60, "AAA", "sell", 100.0, 110.0))
        store.commit([summary(T0 + 100, {"AAA": 110.0, "BBB": 40.0})])
        store.commit([_rec("deployment_stopped", T0 + 100, {"reason": "operator"}, "stopped/1")])
    return state_dir


def write_drift_csv(state_dir: Path, rows: int = 20) -> Path:
    path = state_dir / "live_drift.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "timestamp",
                "equity",
                "daily_pnl",
                "total_return",
                "drawdown",
                "shortfall_vs_backtest",
                "tracking_error",
            ]
        )
        for i in range(rows):
            eq = 150_000.0 + 50.0 * i
            w.writerow(
                [iso(T0 + 5 * i), eq, 50.0 * i, eq / 150_000 - 1, 0.001 * (i % 3), 0.0005 * i, ""]
            )
    return path


def backtest_block(start: float, ts0: float, n: int, step_s: float = 60.0) -> dict[str, Any]:
    curve = [
        [iso(ts0 + i * step_s), start * (1 + 0.001 * i - 0.002 * (i % 5 == 4))] for i in range(n)
    ]
    return {
        "starting_equity": start,
        "final_equity": curve[-1][1],
        "total_return": curve[-1][1] / start - 1,
        "annualised_volatility": 0.12,
        "sharpe": 1.4,
        "sortino": None,
        "max_drawdown": 0.002,
        "max_drawdown_duration_s": 60.0,
        "turnover": 2.0,
        "exposure": 0.5,
        "intents": 10,
        "orders": 8,
        "fills": 8,
        "trades": 4,
        "fees": 12.5,
        "denials_by_reason": {"max_position": 2},
        "equity_curve": curve,
    }


def backtest_report_doc(ts0: float = T0, n: int = 50) -> dict[str, Any]:
    return {
        "schema": 1,
        "kind": "backtest_report",
        "generated_at": iso(ts0 + 10_000),
        "deployment": DEP,
        "config_hash": "0" * 64,
        "strategy_code_hashes": {"s1": "1" * 64},
        "bars": {
            "source": "sim",
            "first_ts": iso(ts0),
            "last_ts": iso(ts0 + 60 * (n - 1)),
            "count": n * 3,
            "symbols": ["AAA", "BBB"],
            "interval_s": 60.0,
        },
        "calendar": "24/7",
        "periods_per_year": 525_600.0,
        "strategies": {"s1": backtest_block(100_000.0, ts0, n)},
        "total": backtest_block(150_000.0, ts0, n),
    }


def write_backtest_dir(directory: Path, *, with_json: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if with_json:
        (directory / "backtest_report.json").write_text(json.dumps(backtest_report_doc()))
    with open(directory / "equity.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "strategy", "equity", "cash", "position_value"])
        for i in range(30):
            for name, eq in (("s1", 100_000.0 + i), ("total", 150_000.0 + 2 * i)):
                w.writerow([iso(T0 + 60 * i), name, eq, eq, 0.0])
    with open(directory / "fills.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FILL_COLUMNS)
        for i in range(10):
            side = "buy" if i % 2 == 0 else "sell"
            w.writerow(
                [
                    iso(T0 + 120 * i),
                    "s1",
                    f"i{i}",
                    f"c{i}",
                    f"f{i}",
                    "AAA",
                    side,
                    10,
                    100.0 + i,
                    0.5,
                    "taker",
                ]
            )
    return directory
