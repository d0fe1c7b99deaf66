"""``tradeplane shadow``: a bounded shadow session of one strategy file on a live feed.

The live engine and strategy path run with a virtual portfolio; no order is routed anywhere.
Every few seconds one line tells the operator what a demanding one asks first (health, recovery,
session, data age, positions, recent intents); at the end a summary, and exit 0 (1 when the
deployment failed).
"""

from __future__ import annotations

import re
import signal
import time
import types
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tradeplane.cli.output import console
from tradeplane.config.loading import ConfigError, environment, parse_config
from tradeplane.config.models import TradeplaneConfig
from tradeplane.config.telemetry import EnvError, apply_otel_env
from tradeplane.config.venues import VenueEnvError, apply_venue_env
from tradeplane.core.errors import OperationalError
from tradeplane.core.session import make_calendar
from tradeplane.core.strategy import Strategy


class FeedKind(StrEnum):
    SIM = "sim"
    OKX = "okx"
    BINANCE = "binance"
    IB = "ib"


DEFAULT_SYMBOLS = {
    FeedKind.SIM: ("AAA", "BBB", "CCC"),
    FeedKind.OKX: ("BTC-USDT",),
    FeedKind.BINANCE: ("BTCUSDT",),
    FeedKind.IB: ("SPY",),
}


def strategy_classes(path: Path) -> list[str]:
    """Names of the Strategy subclasses a strategy file defines."""
    module = types.ModuleType(f"tradeplane_shadow_{path.stem}")
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    return [
        name
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, Strategy)
        and obj is not Strategy
        and obj.__module__ == module.__name__
    ]


def shadow_config(
    strategy_file: Path,
    class_name: str,
    feed: FeedKind,
    symbols: tuple[str, ...],
    *,
    feed_silence_s: float | None,
    state_dir: Path | None,
    env: dict[str, str],
) -> TradeplaneConfig:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", strategy_file.stem)[:40] or "strategy"
    name = f"shadow-{stem}"
    raw: dict[str, Any] = {
        "deployment": {
            "name": name,
            "mode": "shadow",
            "state_dir": str(state_dir or Path(".tradeplane") / name),
        },
        "venue": {"kind": "sim", "sim": {"symbols": list(symbols)}},
        "feed": {"kind": "venue" if feed in (FeedKind.SIM, FeedKind.IB) else feed.value},
        "supervisor": {} if feed_silence_s is None else {"feed_silence_s": feed_silence_s},
        # No endpoint: a shadow session beside a running deployment must not fight for its port.
        "telemetry": {"metrics_port": None},
        "strategies": [
            {"name": stem, "path": str(strategy_file.resolve()), "class_name": class_name}
        ],
    }
    if feed is FeedKind.IB:
        # IB's bars (on the NYSE calendar, the IB default); shadow mode keeps every order here.
        raw["venue"] = {"kind": "ib", "ib": {"symbols": list(symbols)}}
    apply_otel_env(raw, env)
    apply_venue_env(raw, env)
    return parse_config(raw, source=f"shadow {strategy_file}")


def _positions(status: dict[str, Any]) -> str:
    parts = []
    for beat in (status.get("strategies") or {}).values():
        for symbol, pos in sorted((beat.get("positions") or {}).items()):
            parts.append(f"{symbol}:{pos.get('quantity', 0):g}")
    return ",".join(parts) or "flat"


def _recent_intents(status: dict[str, Any], n: int = 3) -> str:
    rows = [
        i
        for beat in (status.get("strategies") or {}).values()
        for i in beat.get("recent_intents", [])
    ]
    rows.sort(key=lambda i: i.get("ts", 0))
    return ",".join(f"{i['side']} {i['quantity']:g} {i['symbol']}" for i in rows[-n:]) or "none"


def status_line(status: dict[str, Any], session: str) -> str:
    recovery = status.get("recovery") or {}
    attempts = sum((recovery.get("attempts") or {}).values())
    age = status.get("last_bar_age_s")
    return (
        f"health={status.get('health', '?')} recovery={recovery.get('state', '?')} "
        f"attempts={attempts} session={session} "
        f"last_bar_age={'-' if age is None else f'{age:.1f}s'} "
        f"positions={_positions(status)} recent_intents={_recent_intents(status)}"
    )


def shadow_command(
    strategy_file: Annotated[Path, typer.Argument(help="The strategy's Python file.")],
    feed: Annotated[FeedKind, typer.Option("--feed", help="Where bars come from.")] = FeedKind.SIM,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma-separated; default per feed.")
    ] = None,
    duration: Annotated[float, typer.Option("--duration", min=1, help="Seconds to run.")] = 60.0,
    feed_silence_s: Annotated[
        float | None, typer.Option("--feed-silence-s", min=0.1, help="Silence threshold.")
    ] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Where to journal.")] = None,
    class_name: Annotated[
        str | None, typer.Option("--class", help="Strategy class (when the file has several).")
    ] = None,
    interval: Annotated[float, typer.Option("--interval", min=0.5, help="Seconds per line.")] = 5.0,
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address.")] = None,
) -> None:
    """A bounded shadow session: live engine and strategy, virtual portfolio, no order routed."""
    from tradeplane.supervisor import deployment

    if not strategy_file.is_file():
        console.print(f"[bold red]error:[/] no strategy file {strategy_file}")
        raise typer.Exit(2)
    classes = [class_name] if class_name else strategy_classes(strategy_file)
    if len(classes) != 1:
        found = ", ".join(classes) or "none"
        console.print(f"[bold red]error:[/] give --class: Strategy subclasses in the file: {found}")
        raise typer.Exit(2)
    chosen = (
        tuple(s.strip() for s in symbols.split(",") if s.strip())
        if symbols
        else DEFAULT_SYMBOLS[feed]
    )
    try:
        cfg = shadow_config(
            strategy_file,
            classes[0],
            feed,
            chosen,
            feed_silence_s=feed_silence_s,
            state_dir=state_dir,
            env=environment(),
        )
    except (ConfigError, EnvError, VenueEnvError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    calendar = make_calendar(cfg.session.calendar)
    stop_requested = False

    def _on_signal(signum: int, frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    name = cfg.deployment.name
    console.print(
        f"shadow {name}: {classes[0]} on {feed.value} {','.join(chosen)} for {duration:g}s "
        f"(no order is routed); state dir {cfg.deployment.resolved_state_dir()}",
        highlight=False,
    )
    deployment.connect(address)
    try:
        deployment.deploy(cfg)
    except (OperationalError, RuntimeError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    deadline = time.monotonic() + duration
    status: dict[str, Any] = {}
    while not stop_requested and time.monotonic() < deadline:
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        status = deployment.status(name, timeout_s=5) or status
        session = (
            "continuous"
            if cfg.session.calendar == "24/7"
            else ("open" if calendar.is_open(time.time()) else "closed")
        )
        console.print(status_line(status, session), highlight=False, soft_wrap=True)
        if status.get("phase") == "failed":
            break
    summary = deployment.stop(name, reason="shadow session over")
    strategies = (summary.get("strategies") or {}).values()
    intents = sum(int((b.get("stats") or {}).get("intents") or 0) for b in strategies)
    console.print(
        f"summary: health at stop {summary.get('health')} ({summary.get('reason')}); "
        f"positions {_positions(summary)}; intents {intents}; no order left this process",
        highlight=False,
        soft_wrap=True,
    )
    if address is None:
        import ray

        ray.shutdown()
    raise typer.Exit(1 if status.get("phase") == "failed" else 0)
