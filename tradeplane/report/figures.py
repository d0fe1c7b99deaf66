"""A report's plain data to matplotlib figures, one per section.

``matplotlib.figure.Figure`` directly, never ``pyplot``: no global figure registry, no GUI
backend, so building a report is safe inside any process. A section without data gets no
figure but a sentence saying why (``Plot.figure`` is None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from tradeplane.report.model import Incident, ReportData, Series, drawdown
from tradeplane.telemetry.latency import percentile

WIDTH_IN = 10.0
EQUITY_TITLE = "Equity"
MAX_PRICE_PANELS = 6
MAX_FILL_MARKS = 5000  # the most recent ones; more would only hide each other and swell the page
HEALTH_COLOURS = {
    "ok": "#2e9e44",
    "ready": "#7fb7e6",
    "starting": "#b0b0b0",
    "waiting_for_data": "#c9c9c9",
    "idle_market_closed": "#9ec9e8",
    "feed_silent": "#f0a030",
    "broker_disconnected": "#e07b24",
    "recovering": "#f3c74d",
    "stopped": "#555555",
    "failed": "#d62728",
}


@dataclass(frozen=True, slots=True)
class Plot:
    key: str  # the section's id in the page and the PNG's file name
    title: str
    figure: Figure | None
    note: str = ""  # what the figure shows, or why there is none
    # Hover text of marks, by the gid of their scatter: one line per point, in its order.
    tooltips: dict[str, list[str]] = field(default_factory=dict)


def plain(text: str) -> str:
    """A label as literal text: matplotlib reads ``$...$`` as mathematics."""
    return text.replace("$", r"\$")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dates(ts: Sequence[float]) -> NDArray[np.float64]:
    """Epoch seconds as matplotlib's date numbers (days since its epoch), for a date axis."""
    return np.asarray(date2num([datetime.fromtimestamp(t, UTC) for t in ts]), dtype=np.float64)


def _time_axis(ax: Axes) -> None:
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
    ax.grid(True, alpha=0.3)


def _figure(height_in: float, rows: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True)
    return fig, [row[0] for row in axes]


def _overlaps(a: Series, b: Series) -> bool:
    return bool(a.ts and b.ts) and a.ts[0] <= b.ts[-1] and b.ts[0] <= a.ts[-1]


def _returns(s: Series) -> Series:
    base = s.values[0] if s.values else 0.0
    vals = tuple((v / base - 1.0) * 100.0 for v in s.values) if base else s.values
    return Series(s.name, s.ts, vals)


def _elapsed_h(s: Series) -> list[float]:
    return [(t - s.ts[0]) / 3600.0 for t in s.ts]


def equity_plot(data: ReportData) -> Plot:
    title = EQUITY_TITLE
    if not data.equity:
        return Plot("equity", title, None, "no equity: nothing was filled or marked")
    total, parts = data.equity[0], data.equity[1:]
    if data.baseline is not None and len(data.baseline) and total.values[0]:
        return _against_baseline(data, total, data.baseline)
    if data.equity_is_pnl or not parts:
        fig, (ax,) = _figure(3.6)
        for s in data.equity:
            ax.plot(_dates(s.ts), s.values, label=plain(s.name), lw=1.6 if s is total else 1.0)
        ax.set_ylabel("P&L" if data.equity_is_pnl else "equity")
        axes = [ax]
    else:
        # The total is the sum of the strategies: on one axis their lines would sit flat and
        # far apart, so the strategies are drawn below it as P&L from their own start.
        fig, axes = _figure(5.2, rows=2)
        axes[0].plot(_dates(total.ts), total.values, label=plain(total.name), lw=1.6)
        axes[0].set_ylabel("equity")
        for s in parts:
            start = s.values[0] if s.values else 0.0
            axes[1].plot(_dates(s.ts), [v - start for v in s.values], label=plain(s.name), lw=1.0)
        axes[1].axhline(0.0, color="#888888", lw=0.8)
        axes[1].set_ylabel("P&L per strategy")
    for ax in axes:
        _time_axis(ax)
        ax.legend(loc="best", fontsize="small")
    note = "total" + (", and per strategy" if parts else "")
    if data.kind == "live":
        note += "; no baseline backtest given (--baseline)"
    return Plot("equity", title, fig, note)


def _against_baseline(data: ReportData, total: Series, baseline: Series) -> Plot:
    fig, (ax,) = _figure(3.6)
    live, base = _returns(total), _returns(baseline)
    note = f"live total against the baseline backtest ({data.baseline_source}), as return"
    if _overlaps(total, baseline):
        ax.plot(_dates(live.ts), live.values, label="live", lw=1.6)
        ax.plot(_dates(base.ts), base.values, label="baseline", lw=1.2, ls="--")
        _time_axis(ax)
    else:
        ax.plot(_elapsed_h(live), live.values, label="live", lw=1.6)
        ax.plot(_elapsed_h(base), base.values, label="baseline", lw=1.2, ls="--")
        ax.set_xlabel("hours since each one's start (their times do not overlap)")
        ax.grid(True, alpha=0.3)
    ax.set_ylabel("return since start (%)")
    ax.legend(loc="best", fontsize="small")
    return Plot("equity", EQUITY_TITLE, fig, note)


def drawdown_plot(data: ReportData) -> Plot:
    title = "Drawdown"
    if not data.equity:
        return Plot("drawdown", title, None, "no equity, so no drawdown")
    fig, (ax,) = _figure(2.6)
    absolute = data.equity_is_pnl
    scale = 1.0 if absolute else 100.0
    curves = [("live" if data.kind == "live" else "total", data.equity[0])]
    if (
        data.baseline is not None
        and len(data.baseline)
        and _overlaps(data.equity[0], data.baseline)
    ):
        curves.append(("baseline", data.baseline))
    for label, s in curves:
        dd = drawdown(s, absolute=absolute)
        ax.fill_between(_dates(dd.ts), [-v * scale for v in dd.values], 0, alpha=0.35, label=label)
    _time_axis(ax)
    ax.set_ylabel("below peak" if absolute else "below peak (%)")
    ax.legend(loc="lower left", fontsize="small")
    return Plot("drawdown", title, fig, "of the total equity, from its running peak")


def drift_plot(data: ReportData) -> Plot:
    """The tracker's total row per snapshot: live equity against the shadow backtest's, the
    return drift (and the shortfall against the baseline, when there is one), the fills'
    slippage against the backtest's. On bar time, which a simulated market runs ahead of."""
    from tradeplane.report.drift_csv import SHOWN

    title = "Drift against the backtest"
    table = data.drift
    if table is None:
        return Plot("drift", title, None, data.drift_note or "no drift data")
    cols = table.columns

    def series(name: str, scale: float = 1.0) -> list[float] | None:
        values = cols.get(name)
        if values is None or all(v is None for v in values):
            return None
        return [float("nan") if v is None else v * scale for v in values]

    panels: list[list[tuple[str, list[float]]]] = []
    equity = [(label, v) for label, name in (("live", "equity"), ("backtest", "backtest_equity"))
              if (v := series(name)) is not None]  # fmt: skip
    if equity:
        panels.append(equity)
    drift = [
        (label, v)
        for label, v in (
            ("return drift vs backtest (pp)", series("return_drift_pct")),
            ("shortfall vs baseline (pp)", series("shortfall_vs_backtest", 100.0)),
        )
        if v is not None
    ]
    if not drift:  # an older tracker's file: its fraction columns, in percent
        drift = [(f"{plain(c)} (%)", v) for c in SHOWN if (v := series(c, 100.0)) is not None]
    if drift:
        panels.append(drift)
    slippage = series("fill_slippage_bps")
    if slippage is not None:
        panels.append([("fill slippage vs backtest (bps)", slippage)])
    if not panels:
        return Plot("drift", title, None, "no drift figures in the file yet")
    fig, axes = _figure(2.4 * len(panels), rows=len(panels))
    when = _dates(table.ts)
    for ax, lines in zip(axes, panels, strict=True):
        for label, values in lines:
            ax.plot(when, values, lw=1.3, label=label)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    for ax in axes[1:]:
        ax.axhline(0.0, color="#888888", lw=0.8)
    _time_axis(axes[-1])
    axes[-1].set_xlabel("bar time (UTC)")
    return Plot("drift", title, fig, data.drift_note)


def fills_plot(data: ReportData) -> Plot:
    title = "Fills on price"
    if not data.prices:
        return Plot("fills", title, None, "no prices: no bars, bar summaries or fills journaled")
    fills = data.fills[-MAX_FILL_MARKS:]
    counts = {s: 0 for s in data.prices}
    for f in fills:
        if f.symbol in counts:
            counts[f.symbol] += 1
    symbols = sorted(counts, key=lambda s: (-counts[s], s))[:MAX_PRICE_PANELS]
    fig, axes = _figure(1.2 + 2.0 * len(symbols), rows=len(symbols))
    tooltips: dict[str, list[str]] = {}
    for n, (ax, symbol) in enumerate(zip(axes, symbols, strict=True)):
        s = data.prices[symbol]
        ax.plot(_dates(s.ts), s.values, lw=1.0, color="#4a4a4a", label=plain(symbol))
        for side, marker, colour in (("buy", "^", "#1a9850"), ("sell", "v", "#d73027")):
            pts = [f for f in fills if f.symbol == symbol and f.side == side]
            if pts:
                gid = f"fills-{n}-{side}"
                tooltips[gid] = [
                    f"{side} {f.quantity:g} {symbol} at {f.price:g} ({f.strategy}), {_when(f.ts)}"
                    for f in pts
                ]
                ax.scatter(
                    _dates([f.ts for f in pts]),
                    [f.price for f in pts],
                    marker=marker,
                    s=36,
                    color=colour,
                    edgecolors="black",
                    linewidths=0.4,
                    zorder=3,
                    label=f"{side} ({len(pts)})",
                    gid=gid,
                )
        ax.set_ylabel(plain(symbol))
        ax.legend(loc="upper left", fontsize="x-small", ncols=3)
        _time_axis(ax)
    note = f"price from {data.price_source}; buys ▲, sells ▼"
    if len(data.fills) > len(fills):
        note += f"; the last {len(fills)} of {len(data.fills)} fills"
    if len(data.prices) > len(symbols):
        note += f"; {len(symbols)} of {len(data.prices)} symbols (those with the most fills)"
    return Plot("fills", title, fig, note, tooltips)


def denials_plot(data: ReportData) -> Plot:
    title = "Denials by reason"
    if not data.denials:
        return Plot("denials", title, None, "no denials: risk approved every intent")
    reasons = list(data.denials)[::-1]  # most frequent on top
    fig, (ax,) = _figure(1.0 + 0.35 * len(reasons))
    bars = ax.barh([plain(r) for r in reasons], [data.denials[r] for r in reasons], color="#d9822b")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.bar_label(bars, padding=3, fontsize="small")
    ax.set_xlabel("intents denied")
    ax.grid(True, axis="x", alpha=0.3)
    return Plot("denials", title, fig, f"{sum(data.denials.values())} denials in all")


INCIDENT_MARKERS = {
    "deployment_started": ("|", "#1f77b4"),
    "deployment_stopped": ("|", "#555555"),
    "actor_died": ("x", "#d62728"),
    "recovery_exhausted": ("X", "#8b0000"),
    "strategy_suspended": ("s", "#9467bd"),
    "kill_switch_activated": ("v", "#d62728"),
    "kill_switch_cleared": ("^", "#2e9e44"),
    "node_lost": ("D", "#8c564b"),
}


def health_plot(data: ReportData) -> Plot:
    title = "Health timeline"
    if not data.health:
        why = "a backtest has no health" if data.kind == "backtest" else "no health_changed events"
        return Plot("health", title, None, f"no health data: {why}")
    changes, incidents = data.health, data.incidents
    start = min([changes[0].ts, *(i.ts for i in incidents)])
    end = max([changes[-1].ts, data.health_until or start, *(i.ts for i in incidents)])
    end = end if end > start else start + 1.0
    fig, (ax,) = _figure(2.3 if incidents else 1.7)
    handles: list[Artist] = []
    seen: set[str] = set()
    spans = [(c.ts, c.health) for c in changes]
    if changes[0].previous and start < changes[0].ts:
        spans.insert(0, (start, changes[0].previous))  # what it was before the first change
    for i, (since, health) in enumerate(spans):
        until = spans[i + 1][0] if i + 1 < len(spans) else end
        colour = HEALTH_COLOURS.get(health, "#8c6bb1")
        left = float(_dates([since])[0])
        ax.barh(1, (until - since) / 86400.0, left=left, height=0.6, color=colour)
        if health not in seen:
            seen.add(health)
            handles.append(Patch(color=colour, label=plain(health)))
    by_kind: dict[str, list[Incident]] = {}
    for inc in incidents:
        by_kind.setdefault(inc.kind, []).append(inc)
    tooltips: dict[str, list[str]] = {}
    for n, (kind, found) in enumerate(by_kind.items()):
        marker, colour = INCIDENT_MARKERS.get(kind, ("o", "#333333"))
        gid = f"incidents-{n}"
        tooltips[gid] = [
            f"{kind}{': ' + i.detail if i.detail else ''}, {_when(i.ts)}" for i in found
        ]
        handles.append(
            ax.scatter(
                _dates([i.ts for i in found]),
                [0.0] * len(found),
                marker=marker,
                s=60,
                color=colour,
                zorder=3,
                label=f"{plain(kind)} ({len(found)})",
                gid=gid,
            )
        )
    ax.set_yticks([1, 0] if incidents else [1], ["health", "events"] if incidents else ["health"])
    ax.set_ylim(-0.6 if incidents else 0.5, 1.5)
    pad = (end - start) * 0.01  # so a start or stop at either end stays visible
    ax.set_xlim(float(_dates([start - pad])[0]), float(_dates([end + pad])[0]))
    _time_axis(ax)
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(5, len(handles)), fontsize="small"
    )
    last = changes[-1]
    note = f"{len(changes)} changes; now {last.health}" + (
        f" ({last.reason})" if last.reason else ""
    )
    if incidents:
        note += f"; {len(incidents)} deployment events below the line"
    return Plot("health", title, fig, note, tooltips)


def latency_plot(data: ReportData) -> Plot:
    title = "Tick to order"
    samples = sorted(data.tick_to_order_ms)
    if not samples:
        why = (
            "a backtest sends no orders"
            if data.kind == "backtest"
            else "no order with both its bar's arrival and its send time journaled"
        )
        return Plot("tick_to_order", title, None, f"no latency data: {why}")
    fig, (ax,) = _figure(2.8)
    ax.hist(samples, bins=min(60, max(10, len(samples) // 5)), color="#5b8fc9", edgecolor="white")
    for q, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
        v = percentile(samples, q)
        if v is not None:
            ax.axvline(v, color="black", ls=style, lw=1.0, label=f"p{round(q * 100)} {v:.1f} ms")
    ax.set_xlabel("bar arrival to order sent (ms)")
    ax.set_ylabel("orders")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return Plot("tick_to_order", title, fig, f"{len(samples)} orders, from the journal")


SECTIONS: tuple[Callable[[ReportData], Plot], ...] = (
    equity_plot,
    drawdown_plot,
    drift_plot,
    fills_plot,
    denials_plot,
    health_plot,
    latency_plot,
)


def build_plots(data: ReportData) -> list[Plot]:
    return [section(data) for section in SECTIONS]
