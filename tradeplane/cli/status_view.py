"""What ``tradeplane status`` shows: the run's figures from its journal (``journal.run_figures``,
read where the journal is), with the live actors' heartbeats adding freshness (health, last bar,
actors, feed, telemetry) while it runs. Pure formatting: no Ray, no IO.

A figure both the journal and a heartbeat know (orders, denials, intents, positions, P&L, equity,
the day's figures) is the journal's, in the text and in ``--json``, so the two views of one run
never disagree and a stopped run shows exactly what the running one did.
"""

from __future__ import annotations

import copy
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tradeplane.cli.render import (
    children_table,
    drift_line,
    feed_line,
    fmt_num,
    header,
    intents_table,
    standbys_line,
    telemetry_line,
)
from tradeplane.journal.run_figures import status_strategy

_COLUMNS = (
    "strategy",
    "symbol",
    "qty",
    "avg",
    "mark",
    "realized",
    "unrealized",
    "fees",
    "fills",
    "equity",
    "total P&L",
    "intents",
)


def strategies_table(figures: dict[str, Any]) -> Table:
    """One row per position a strategy ever held (flat ones too, with what they realized);
    the strategy's equity, total P&L (net of fees) and intents on its first row."""
    t = Table(title="strategies (from the journal)", expand=True)
    for col in _COLUMNS:
        t.add_column(col, justify="left" if col in ("strategy", "symbol") else "right")
    for name, s in (figures.get("strategies") or {}).items():
        positions = s.get("positions") or {"-": {}}
        first = True
        for symbol, pos in positions.items():
            t.add_row(
                (name or "(no strategy)") if first else "",
                symbol,
                fmt_num(pos.get("quantity")),
                fmt_num(pos.get("avg_price")),
                fmt_num(pos.get("mark")),
                fmt_num(pos.get("realized_pnl")),
                fmt_num(pos.get("unrealized_pnl")),
                fmt_num(pos.get("fees")),
                str(pos.get("fills", 0)),
                fmt_num(s.get("equity")) if first else "",
                fmt_num(s.get("total_pnl")) if first else "",
                str(s.get("intents", 0)) if first else "",
            )
            first = False
    total = figures.get("total") or {}
    if len(figures.get("strategies") or {}) > 1:
        t.add_row(
            "total",
            "",
            "",
            "",
            "",
            fmt_num(total.get("realized_pnl")),
            fmt_num(total.get("unrealized_pnl")),
            fmt_num(total.get("fees")),
            str(figures.get("fills", 0)),
            fmt_num(total.get("equity")),
            fmt_num(total.get("total_pnl")),
            str(figures.get("intents", 0)),
            style="bold",
        )
    return t


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def orders_line(figures: dict[str, Any], live: dict[str, Any] | None = None) -> Text:
    """Orders by status, fills, denials by reason; tick to order from the broker when live."""
    parts = [_counts(figures.get("orders") or {}) or "no orders yet"]
    parts.append(f"fills {figures.get('fills', 0)}")
    denials = figures.get("denials") or {}
    parts.append(
        f"denied {figures.get('denied', 0)}" + (f" ({_counts(denials)})" if denials else "")
    )
    lat = ((live or {}).get("broker") or {}).get("tick_to_order_ms") or {}
    if lat.get("p50") is not None:
        parts.append(f"tick-to-order p50 {lat['p50']:.2f}ms p99 {lat['p99']:.2f}ms")
    return Text("orders: " + ", ".join(parts))


def risk_line(figures: dict[str, Any], live_risk: dict[str, Any] | None = None) -> Text:
    """Trading state and kill switch, equity and the risk day's figures; running, the risk
    engine's drawdown (from its high-water mark on every bar's mark, which the journal does not
    hold) and when its day rolls."""
    kill = figures.get("kill_switch") or {}
    state = str(figures.get("trading_state") or "active")
    text = Text("risk: ")
    text.append(state.upper(), style="bold green" if state == "active" else "bold red")
    if kill.get("active"):
        text.append(f" KILL SWITCH ({kill.get('source')}: {kill.get('reason')})", style="bold red")
    total = figures.get("total") or {}
    day = figures.get("day") or {}
    text.append(
        f" | equity {fmt_num(total.get('equity'))}, total P&L {fmt_num(total.get('total_pnl'))}"
        f" | risk day {day.get('risk_day', '-')}: P&L {fmt_num(day.get('pnl'))}"
        f" (from {fmt_num(day.get('start_equity'))}), realized {fmt_num(day.get('realized_pnl'))}"
        f", orders {day.get('orders', 0)}, fills {day.get('fills', 0)}"
        f", denied {day.get('denied', 0)}"
    )
    if live_risk:
        text.append(
            f" | risk engine: drawdown {fmt_num(live_risk.get('drawdown_pct'))}%"
            f", day rolls {live_risk.get('next_boundary') or '-'}"
        )
    return text


def running_view(live: dict[str, Any], figures: dict[str, Any]) -> Group:
    """A running deployment: its heartbeats' freshness around the journal's figures."""
    return Group(
        header(live),
        risk_line(figures, (live.get("risk") or {}).get("risk")),
        orders_line(figures, live),
        feed_line(live),
        telemetry_line(live),
        *([line] if (line := drift_line(live)) is not None else []),
        strategies_table(figures),
        intents_table(live),
        children_table(live),
        standbys_line(live),
    )


def stopped_view(name: str, where: str, snapshot: dict[str, Any]) -> list[RenderableType]:
    """A stopped deployment: its last phase and health, and the journal's figures."""
    figures = snapshot.get("figures") or {}
    return [
        Text.from_markup(f"[bold]{name}[/] is not running; from {where}:"),
        Text(
            f"last phase: {snapshot.get('run', {}).get('phase', '-')}, "
            f"health: {snapshot.get('health', {}).get('health', '-')}"
        ),
        risk_line(figures),
        strategies_table(figures),
        orders_line(figures),
    ]


_RISK_FIGURES = {
    "equity": ("total", "equity"),
    "daily_pnl": ("day", "pnl"),
    "daily_realized_pnl": ("day", "realized_pnl"),
    "orders_today": ("day", "orders"),
    "risk_day": ("day", "risk_day"),
}


def with_journal_figures(live: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    """``live`` (the supervisor's status) with every figure the journal also knows replaced by
    the journal's, so ``status --json`` gives one answer per figure; the rest (health, ages,
    actors, latency, telemetry) stays the heartbeats'."""
    out = copy.deepcopy(live)
    out["figures_from"] = "journal"
    out["orders"] = dict(figures.get("orders") or {})
    risk = out.setdefault("risk", {}) or {}
    out["risk"] = risk
    risk["denied"] = dict(figures.get("denials") or {})
    summary = risk.get("risk")
    if isinstance(summary, dict):
        for key, (part, name) in _RISK_FIGURES.items():
            summary[key] = (figures.get(part) or {}).get(name)
        summary["kill_switch"] = dict(figures.get("kill_switch") or {})
        summary["trading_state"] = figures.get("trading_state")
        summary["denied"] = risk["denied"]
    strategies = out.setdefault("strategies", {}) or {}
    out["strategies"] = strategies
    for name, s in (figures.get("strategies") or {}).items():
        shaped = status_strategy(copy.deepcopy(s))
        beat = strategies.setdefault(name, {})
        beat["positions"], beat["pnl"] = shaped["positions"], shaped["pnl"]
        stats = beat.setdefault("stats", {}) or {}
        beat["stats"] = stats
        stats.update(shaped["stats"])
    return out
