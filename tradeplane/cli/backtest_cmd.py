"""``tradeplane backtest CONFIG``: the deployment's strategies over past bars, in this process (no
Ray), through its risk core and the sim venue's matching rules. See README "Backtest"."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tradeplane.backtest.bars_file import BarFileError, BarFilter, parse_ts
from tradeplane.cli import output
from tradeplane.config.loading import ConfigError, load_config

if TYPE_CHECKING:
    from tradeplane.backtest.run import BacktestRun
    from tradeplane.backtest.run import Progress as RunProgress

console, err = output.console, output.err


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def parse_time(text: str | None, option: str) -> datetime | None:
    """``--from``/``--to``: ISO-8601 with a zone (``Z``), a date (UTC midnight) or epoch s."""
    if text is None:
        return None
    try:
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        return parse_ts(text)
    except ValueError as exc:
        _fail(f"{option}: {exc}")
    raise AssertionError("unreachable")


def backtest_command(
    config: Annotated[Path, typer.Argument(help="Deployment config (TOML).")],
    bars: Annotated[
        Path | None,
        typer.Option(
            "--bars",
            help="Bars: a CSV or Parquet file, or a deployment's state dir (its recorded bars). "
            "Default: the seeded sim market.",
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First bar time (UTC; ISO, date or epoch s).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Stop before this bar time (UTC).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder. Default: backtests/<deployment>."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON summary on stdout, no progress bar.")
    ] = False,
) -> None:
    """Backtest CONFIG's strategies over BARS (or the sim market): equity.csv, fills.csv,
    intents.csv and backtest_report.json in OUT."""
    from tradeplane.backtest import run  # the engine and numpy: only when a backtest runs

    first, last = parse_time(start, "--from"), parse_time(end, "--to")
    if first is not None and last is not None and last <= first:
        _fail(f"--to {last.isoformat()} is not after --from {first.isoformat()}")
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _fail(str(exc))
    output.protect(cfg)
    out_dir = out or Path("backtests") / cfg.deployment.name
    interval = run.bar_interval_s(cfg)
    if bars is None:
        first, last = run.sim_window(cfg, first, last)
        source = f"sim:seed={cfg.venue.sim.seed}"
        stream = run.sim_bars(cfg, first, last)
    else:
        if not bars.exists():
            _fail(f"bars file not found: {bars}")
        source = str(bars)
        stream = run.file_bars(bars, run.deployment_symbols(cfg), BarFilter(None, first, last))
    total = None
    if first is not None and last is not None:
        total = max(1, int((last.timestamp() - first.timestamp()) // interval))
    try:
        result = _run(cfg, stream, source, out_dir, total, show=not as_json)
    except BarFileError as exc:
        _fail(f"bad bars file: {exc}")
    except run.StrategyLoadError as exc:
        _fail(f"cannot load the strategies: {exc}")
    except OSError as exc:
        _fail(f"cannot write {out_dir}: {exc}")
    except ValueError as exc:
        _fail(str(exc))
    summary = result.summary()
    if as_json:
        output.stdout.write(json.dumps(summary, default=str) + "\n")
    else:
        console.print(_table(summary))
    if summary["bars"]["count"] == 0:
        _fail(
            f"no bars: {source} has none for {', '.join(run.deployment_symbols(cfg))} in the range",
            2,
        )


def _run(
    cfg: Any, stream: Any, source: str, out_dir: Path, total: int | None, *, show: bool
) -> BacktestRun:
    from tradeplane.backtest import run

    if not (show and console.is_terminal):
        return run.run_backtest(cfg, bars=stream, source=source, out_dir=out_dir)
    columns = [
        TextColumn("[bold]backtest[/] {task.fields[ts]}"),
        BarColumn(),
        TextColumn("{task.completed:,} bar times"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("backtest", total=total, ts="")

        def on_progress(p: RunProgress) -> None:
            progress.update(task, completed=p.steps, ts=p.ts.isoformat())

        return run.run_backtest(
            cfg, bars=stream, source=source, out_dir=out_dir, on_progress=on_progress
        )


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"backtest {summary['deployment']}", show_header=False)
    bars = summary["bars"]
    ret = summary["total_return"]
    rows = [
        ("bars", f"{bars['count']:,} ({', '.join(bars['symbols'])}) from {bars['source']}"),
        ("range", f"{bars['first_ts']} .. {bars['last_ts']}"),
        ("speed", f"{summary['bars_per_s'] or 0:,} bars/s ({summary['elapsed_s']} s)"),
        ("final equity", f"{summary['final_equity']:,.2f}"),
        ("total return", "-" if ret is None else f"{ret * 100:.3f}%"),
        (
            "intents / orders / fills",
            f"{summary['intents']} / {summary['orders']} / {summary['fills']}",
        ),
        ("fees", f"{summary['fees']:,.2f}"),
        (
            "denials",
            ", ".join(f"{k} {v}" for k, v in summary["denials_by_reason"].items()) or "none",
        ),
        ("strategy errors", str(len(summary["strategy_errors"]))),
        ("outputs", summary["out"]),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))
    return table
