"""``tradeplane report``: one self-contained HTML page of a deployment's journal, or of a
backtest's outputs; ``--png DIR`` writes the same figures as images.

The journal is opened read-only (safe beside a running deployment)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tradeplane.cli.journal_cmd import (
    ConfigOpt,
    NameArg,
    StateDirOpt,
    _fail,
    atomic_private_file,
    resolve_state_dir,
)
from tradeplane.cli.output import console
from tradeplane.config.loading import ConfigError, load_config
from tradeplane.core.errors import OperationalError

if TYPE_CHECKING:
    from tradeplane.report.build import Report

REPORT_HTML = "report.html"


def _config_facts(config: Path | None, state_dir: Path | None) -> tuple[dict[str, float], Any]:
    """The strategies' capital and the ``[drift] baseline`` (when the config has one)."""
    if config is None:
        return {}, None
    try:
        cfg = load_config(config, state_dir=state_dir)
    except ConfigError as exc:
        _fail(str(exc))
    capital = {s.name: float(s.capital) for s in cfg.strategies}
    return capital, cfg.drift.baseline if cfg.drift is not None else None


def report_command(
    name: NameArg = None,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    backtest: Annotated[
        Path | None,
        typer.Option("--backtest", help="A backtest's output dir (instead of a deployment)."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="A backtest_report.json (or its dir) to draw live equity against "
            "(default: the config's drift baseline, if any).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help=f"The HTML file (default: {REPORT_HTML} in the state dir)."),
    ] = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Also write each figure as DIR/<section>.png.")
    ] = None,
) -> None:
    """Write a report people look at: equity (against a baseline backtest), drawdown, drift,
    fills on price, denials by reason, health and tick-to-order, as one HTML file that needs
    no network to open."""
    # Here, not at the top: matplotlib takes a moment to import, and every other command would
    # pay for it.
    from tradeplane.report.build import backtest_report, live_report

    report: Report
    try:
        if backtest is not None:
            if name is not None or state_dir is not None or config is not None:
                _fail("give either --backtest DIR or a deployment (NAME, --state-dir, --config)")
            if baseline is not None:
                _fail("--baseline is for a deployment's report: a backtest is its own baseline")
            report = backtest_report(backtest)
            default_dir = backtest
        else:
            state, deployment = resolve_state_dir(name, state_dir, config)
            capital, configured = _config_facts(config, state_dir)
            report = live_report(
                state,
                deployment=deployment,
                capital=capital,
                baseline=baseline or (Path(configured) if configured else None),
            )
            default_dir = state
    except OperationalError as exc:
        _fail(str(exc), 1)
    path = out or default_dir / REPORT_HTML
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_private_file(path) as f:
        f.write(report.html())
    if png is not None:
        for image in report.write_pngs(png):
            console.print(f"wrote {image}")
    console.print(str(path.resolve()), soft_wrap=True)
