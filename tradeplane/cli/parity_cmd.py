"""``tradeplane parity NAME --baseline DIR``: a deployment against a backtest over the bars it
recorded, intent by intent (``backtest.parity``). Exit 0 when they agree, 1 on any difference,
2 when a side cannot be read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tradeplane.backtest.parity import ParityReport, compare
from tradeplane.backtest.parity_sources import RecordedOpens, backtest_side, live_side
from tradeplane.cli.journal_cmd import _fail, resolve_state_dir
from tradeplane.cli.output import console, err, stdout
from tradeplane.core.errors import TradeplaneError


def parity_command(
    baseline: Annotated[Path, typer.Option("--baseline", help="The backtest's --out directory.")],
    name: Annotated[str | None, typer.Argument(help="Deployment name (its state dir).")] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="The deployment's state dir.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="The deployment's config (its state dir).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Intent by intent: the deployment's intents and fills against a backtest's."""
    directory, _ = resolve_state_dir(name, state_dir, config)
    try:
        live = live_side(directory)
        backtest = backtest_side(baseline)
    except (TradeplaneError, OSError, ValueError, KeyError) as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    opens = RecordedOpens(directory)
    report = compare(
        live.intents,
        backtest.intents,
        live.fills,
        backtest.fills,
        live_horizon=live.horizon,
        opens_after=opens,
    )
    if opens.unreadable:
        reason = escape(opens.unreadable)
        err.print(f"note: recorded bars unreadable ({reason}): late fills are not told apart")
    if as_json:
        stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        _print(report)
    raise typer.Exit(0 if report.ok else 1)


def _print(report: ParityReport) -> None:
    for name, par in report.strategies.items():
        mark = "[green]same[/]" if not par.differences else "[bold red]DIFFERENT[/]"
        console.print(
            f"{mark} {escape(name)}: {par.matched} of {par.live_intents} live / "
            f"{par.backtest_intents} backtest intents matched, {par.fills_compared} with fills "
            f"compared; start/stop intents apart (live {par.apart_live}, backtest "
            f"{par.apart_backtest}); {par.beyond_live} backtest intents after the live run's "
            "last bar",
            soft_wrap=True,
            highlight=False,
        )
        for d in par.differences:
            console.print(
                f"  #{d.index} {d.what}: {escape(d.detail)}", soft_wrap=True, highlight=False
            )
    console.print("parity: [green]ok[/]" if report.ok else "parity: [bold red]differences[/]")
