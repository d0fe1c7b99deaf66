"""Turn status dicts into rich renderables. Pure formatting: no Ray, no IO."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

HEALTH_STYLE = {
    "ok": "bold green",
    "ready": "green",
    "waiting_for_data": "yellow",
    "starting": "yellow",
    "recovering": "bold yellow",
    "feed_silent": "bold red",
    "broker_disconnected": "bold red",
    "idle_market_closed": "cyan",
    "stopped": "dim",
    "failed": "bold red",
}


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def fmt_num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def header(status: dict[str, Any]) -> Table:
    t = Table.grid(padding=(0, 2))
    health = status.get("health", "?")
    t.add_row(
        Text(f"{status.get('deployment')}", style="bold"),
        Text(health, style=HEALTH_STYLE.get(health, "")),
        f"mode {status.get('mode')}",
        f"venue {status.get('venue')}",
        f"last bar {fmt_age(status.get('last_bar_age_s'))}",
        f"up {fmt_age(status.get('uptime_s'))}",
    )
    t.add_row(Text(str(status.get("reason", "")), style="dim"), "", "", "", "", "")
    state_node = status.get("state_node") or {}
    if state_node.get("node_id"):
        where = f"state node {state_node.get('node_ip')} ({str(state_node['node_id'])[:12]})"
        lost = status.get("lost_nodes") or []
        gone = f"{len(lost)} node(s) lost" if lost else ""
        t.add_row(Text(where, style="dim"), Text(gone, style="bold red"), "", "", "", "")
    return t


def strategies_table(status: dict[str, Any]) -> Table:
    t = Table(title="strategies", expand=True)
    for col in ("strategy", "symbol", "qty", "avg", "realized", "equity", "total P&L", "intents"):
        t.add_column(col, justify="right" if col not in ("strategy", "symbol") else "left")
    for name, beat in sorted(status.get("strategies", {}).items()):
        pnl = beat.get("pnl", {})
        stats = beat.get("stats", {})
        positions = beat.get("positions", {}) or {"-": {}}
        first = True
        for symbol, pos in sorted(positions.items()):
            t.add_row(
                name if first else "",
                symbol,
                fmt_num(pos.get("quantity"), 2),
                fmt_num(pos.get("avg_price"), 2),
                fmt_num(pos.get("realized_pnl")),
                fmt_num(pnl.get("equity")) if first else "",
                fmt_num(pnl.get("total_pnl")) if first else "",
                str(stats.get("intents", 0)) if first else "",
            )
            first = False
    return t


def intents_table(status: dict[str, Any], limit: int = 8) -> Table:
    t = Table(title="recent intents", expand=True)
    for col in ("age", "strategy", "symbol", "side", "qty", "limit", "intent id"):
        t.add_column(col)
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, beat in status.get("strategies", {}).items():
        rows.extend((name, i) for i in beat.get("recent_intents", []))
    rows.sort(key=lambda r: r[1].get("ts", 0), reverse=True)
    now = time.time()
    for name, i in rows[:limit]:
        t.add_row(
            fmt_age(now - i.get("ts", now)),
            name,
            i.get("symbol", ""),
            i.get("side", ""),
            fmt_num(i.get("quantity"), 2),
            fmt_num(i.get("limit_price")),
            i.get("intent_id", ""),
        )
    return t


def orders_line(status: dict[str, Any]) -> Text:
    counts = status.get("orders", {}) or {}
    broker = status.get("broker", {}) or {}
    risk = status.get("risk", {}) or {}
    lat = broker.get("tick_to_order_ms") or {}
    parts = [f"{k} {v}" for k, v in sorted(counts.items())] or ["no orders yet"]
    denied = sum((risk.get("denied") or {}).values())
    parts.append(f"denied {denied}")
    if lat.get("p50") is not None:
        parts.append(f"tick-to-order p50 {lat['p50']:.2f}ms p99 {lat['p99']:.2f}ms")
    return Text("orders: " + ", ".join(parts))


def feed_line(status: dict[str, Any]) -> Text:
    """Bars, what is still in flight per subscriber, and how often the feed had to wait."""
    feed = status.get("feed", {}) or {}
    outbox = feed.get("outbox") or {}
    inflight = feed.get("inflight") or {}
    busiest = max(inflight.values()) if inflight else 0
    return Text(
        f"feed: bars {feed.get('bars', 0) or 0:,}, rejected {feed.get('rejected_bars', 0) or 0}, "
        f"in flight (max per subscriber) {busiest}, "
        f"backpressure waits {outbox.get('backpressure_waits', 0)}, "
        f"lagging ticks {feed.get('lagging_ticks', 0) or 0}"
    )


def telemetry_line(status: dict[str, Any]) -> Text:
    """Where metrics are served and how span export is doing."""
    tel = status.get("telemetry")
    if not tel:
        return Text("telemetry: off")
    metrics = tel.get("metrics_endpoint") or (
        f"FAILED ({tel['metrics_error']})" if tel.get("metrics_error") else "off"
    )
    if tel.get("metrics_note"):
        metrics += f" ({tel['metrics_note']})"
    text = Text(f"telemetry: metrics {metrics} | traces {tel.get('traces_exporter')}")
    if tel.get("traces_exporter") not in (None, "none"):
        text.append(
            f" to {tel.get('endpoint') or 'console'}: exported {tel.get('exported_spans') or 0:,}"
            f", queued {tel.get('queued_spans') or 0:,}, dropped {tel.get('dropped_spans') or 0:,}"
        )
        if tel.get("last_export_error") and tel.get("queued_spans"):
            text.append(f" (collector: {tel['last_export_error']})", style="bold yellow")
    alerts = tel.get("alerts")
    if alerts:
        text.append(
            f" | alerts to {alerts.get('webhook')}: delivered {alerts.get('delivered') or 0:,}"
            f", queued {alerts.get('queued') or 0:,}, dropped {alerts.get('dropped') or 0:,}"
            f", refused {alerts.get('rejected') or 0:,}"
        )
        if alerts.get("last_error") and alerts.get("queued"):
            text.append(f" (receiver: {alerts['last_error']})", style="bold yellow")
    return text


def drift_line(status: dict[str, Any]) -> Text | None:
    """Live drift against the backtest (``[drift]``), when it is tracked."""
    drift = status.get("drift")
    if not drift:
        return None
    if drift.get("opening"):
        text = Text("drift: opening (the shadow replays the recorded bars)")
    elif not drift.get("last_row"):
        text = Text("drift: no row yet")
    else:
        shortfall = drift.get("shortfall_vs_backtest")
        text = Text(
            f"drift at {drift['last_row']}: return {fmt_num(drift.get('return_drift_pct'))} pp"
            f" vs backtest, tracking error {fmt_num(drift.get('tracking_error_pct'))} %, "
            f"fills {fmt_num(drift.get('fill_slippage_bps'))} bps"
            + ("" if shortfall is None else f", shortfall vs baseline {shortfall:+.2%}")
        )
    alerts = drift.get("active_alerts") or []
    if alerts:
        named = ", ".join(f"{a['strategy']} {a['figure']}" for a in alerts)
        text.append(f" | ALERT: {named}", style="bold yellow")
    if drift.get("last_error"):
        text.append(f" | error: {drift['last_error']}", style="bold red")
    return text


def _mib(rss: Any) -> str:
    return f"{int(rss) / 2**20:.0f} MiB" if rss else "? MiB"


def standbys_line(status: dict[str, Any]) -> Text:
    """Who supervises (and the instance standing by to take over), and the children's standbys:
    what they cost while idle and how often they were needed."""
    text = Text()
    sup = status.get("supervisor")
    if sup:
        text.append(f"supervisor {sup.get('name')} (term {sup.get('term')})")
        standby = sup.get("standby")
        if not standby:
            text.append(", no standby", style="bold yellow")
        else:
            state = "watching" if standby.get("watching") else "not watching this term"
            text.append(
                f", standby {standby.get('name')} {state}, {_mib(standby.get('rss_bytes'))}, "
                f"cpu {fmt_num(standby.get('cpu_s'))} s",
                style="" if standby.get("watching") else "bold yellow",
            )
        text.append(" | ")
    pool = status.get("standbys") or {}
    if not pool.get("enabled"):
        text.append("child standbys: off")
        return text
    entries = pool.get("pool") or []
    ready = sum(1 for e in entries if e.get("ready"))
    cpu = sum(float(e.get("cpu_s") or 0) for e in entries)
    text.append(
        f"child standbys: {ready}/{len(entries)} ready, {_mib(pool.get('rss_bytes'))}, "
        f"cpu {fmt_num(cpu)} s, promoted {pool.get('promoted', 0)}, "
        f"fallbacks {pool.get('fallbacks', 0)}"
    )
    return text


def children_table(status: dict[str, Any]) -> Table:
    t = Table(title="actors", expand=True)
    for col in ("actor", "state", "restarts", "heartbeat", "node"):
        t.add_column(col)
    placement = status.get("placement") or {}
    for role, c in status.get("children", {}).items():
        node = (placement.get(role) or {}).get("node_ip", "")
        t.add_row(
            role,
            c.get("state", ""),
            str(c.get("restarts", 0)),
            fmt_age(c.get("heartbeat_age_s")),
            node,
        )
    return t


def risk_line(summary: dict[str, Any] | None) -> Text:
    """Trading state, kill switch and the day's figures from the risk engine's summary."""
    if not summary:
        return Text("risk: -")
    kill = summary.get("kill_switch") or {}
    state = str(summary.get("trading_state", "?"))
    style = "bold green" if state == "active" else "bold red"
    text = Text("risk: ")
    text.append(state.upper(), style=style)
    if kill.get("active"):
        text.append(f" KILL SWITCH ({kill.get('source')}: {kill.get('reason')})", style="bold red")
    drawdown = summary.get("drawdown_pct")
    text.append(
        f" | equity {fmt_num(summary.get('equity'))}, day P&L {fmt_num(summary.get('daily_pnl'))}"
        f", drawdown {fmt_num(drawdown)}%, orders today {summary.get('orders_today', 0)}"
        f", risk day {summary.get('risk_day', '-')} (rolls {summary.get('next_boundary', '-')})"
    )
    return text


def reconciliation_text(rec: dict[str, Any] | None) -> Text:
    if not rec:
        return Text("reconciliation: none yet")
    when = rec.get("checked_at")
    stamp = "-" if when is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(when)))
    verdict = "clean" if rec.get("clean") else f"MISMATCH ({rec.get('action')})"
    text = Text(
        f"reconciliation at {stamp} UTC: {verdict}", style="" if rec.get("clean") else "bold yellow"
    )
    for line in rec.get("lines") or []:
        text.append("\n  " + str(line))
    return text


def open_orders_table(rows: list[dict[str, Any]], limit: int = 20) -> Table:
    t = Table(title=f"open orders ({len(rows)})", expand=True)
    for col in (
        "client order id",
        "strategy",
        "symbol",
        "side",
        "qty",
        "filled",
        "limit",
        "status",
    ):
        t.add_column(col)
    for r in rows[:limit]:
        t.add_row(
            str(r.get("client_order_id")),
            str(r.get("strategy") or ""),
            str(r.get("symbol")),
            str(r.get("side")),
            fmt_num(r.get("quantity"), 4),
            fmt_num(r.get("filled_quantity"), 4),
            fmt_num(r.get("limit_price")),
            str(r.get("status")),
        )
    return t


def preflight_table(result: dict[str, Any]) -> Table:
    marks = {"ok": ("ok", "green"), "warn": ("WARN", "yellow"), "fail": ("FAIL", "bold red")}
    t = Table(title=f"preflight {result.get('deployment')} on {result.get('venue')}", expand=True)
    t.add_column("check")
    t.add_column("")
    t.add_column("detail", overflow="fold")
    for c in result.get("checks", []):
        label, style = marks.get(c["status"], (c["status"], ""))
        t.add_row(c["name"], Text(label, style=style), c["detail"])
    return t


def live_view(status: dict[str, Any]) -> Group:
    return Group(
        header(status),
        risk_line((status.get("risk") or {}).get("risk")),
        orders_line(status),
        feed_line(status),
        telemetry_line(status),
        *([line] if (line := drift_line(status)) is not None else []),
        strategies_table(status),
        intents_table(status),
        children_table(status),
        standbys_line(status),
    )


def journal_tail_table(lines: list[dict[str, Any]]) -> Table:
    t = Table(title="journal tail", expand=True)
    for col in ("seq", "ts", "kind", "strategy", "client order id", "detail"):
        t.add_column(col)
    for line in lines:
        data = line.get("data") or {}
        detail = data.get("reason") or data.get("status") or data.get("health") or ""
        t.add_row(
            str(line.get("seq")),
            str(line.get("ts", ""))[11:23],
            line.get("kind", ""),
            line.get("strategy") or "",
            line.get("client_order_id") or "",
            str(detail),
        )
    return t
