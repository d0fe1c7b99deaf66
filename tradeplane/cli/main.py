"""The ``tradeplane`` command."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape

from tradeplane import __version__
from tradeplane.cli import output, render
from tradeplane.cli.backtest_cmd import backtest_command
from tradeplane.cli.bars_cmd import bars_app
from tradeplane.cli.chaos_cmd import chaos_command, fault_command
from tradeplane.cli.cluster_cmd import cluster_app
from tradeplane.cli.journal_cmd import journal_app, resolve_state_dir
from tradeplane.cli.parity_cmd import parity_command
from tradeplane.cli.promote_cmd import promote_command
from tradeplane.cli.report_cmd import report_command
from tradeplane.cli.shadow_cmd import shadow_command
from tradeplane.cli.trace_cmd import trace_app
from tradeplane.config.loading import ConfigError, load_config
from tradeplane.core.errors import OperationalError, root_cause
from tradeplane.protocol.api import SupervisorApi

app = typer.Typer(
    name="tradeplane",
    help="A supervised runtime that carries a trading strategy from shadow to paper to live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(journal_app, name="journal", help="Verify, tail and export a deployment's journal.")
app.add_typer(trace_app, name="trace", help="An intent's trace from the journal; export to Jaeger.")
app.add_typer(bars_app, name="bars", help="Download a venue's bar history into a bars file.")
app.add_typer(cluster_app, name="cluster", help="Check that every node runs the same versions.")
app.command("chaos")(chaos_command)
app.command("fault")(fault_command)
app.command("shadow")(shadow_command)
app.command("backtest")(backtest_command)
app.command("parity")(parity_command)
app.command("report")(report_command)
app.command("promote")(promote_command)
console, err = output.console, output.err  # both mask secrets (tradeplane.cli.output)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"tradeplane {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the installed version and exit.", callback=_print_version
        ),
    ] = False,
) -> None:
    """A supervised runtime that carries a trading strategy from shadow to paper to live."""


ConfigArg = Annotated[Path, typer.Argument(help="Deployment config (TOML).")]
StateDirOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="Override the config's state dir.")
]
AddressOpt = Annotated[
    str | None,
    typer.Option("--address", help="Ray cluster to attach to (`auto` or host:port)."),
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _load(config: Path, state_dir: Path | None) -> Any:
    try:
        cfg = load_config(config, state_dir=state_dir)
        output.protect(cfg)
        return cfg
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def run(
    config: ConfigArg,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Seconds to run; default until Ctrl-C.")
    ] = None,
    address: AddressOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Deploy CONFIG, show a live table every second, stop cleanly at the end or on Ctrl-C."""
    from tradeplane.supervisor import deployment

    cfg = _load(config, state_dir)
    name = cfg.deployment.name
    console.print(
        f"starting [bold]{name}[/] ({cfg.deployment.mode.value}, venue "
        f"{cfg.venue.kind}); state dir {cfg.deployment.resolved_state_dir()}"
    )
    stop_requested = False

    def _on_signal(signum: int, frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    # Installed before deploying: Ctrl-C during start-up must stop what was started, not leave
    # a half-deployed pipeline behind.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    deployment.connect(address)
    import ray

    from tradeplane.cli import operator

    try:
        sup = deployment.deploy(cfg)
    except (OperationalError, RuntimeError) as exc:
        _fail(str(exc), 1)
    except Exception as exc:  # a Ray error outside start-up itself (the cluster, a name race)
        _fail(f"deployment failed to start: {root_cause(exc)}", 1)

    deadline = None if duration is None else time.monotonic() + duration
    status: dict[str, Any] = {}
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while not stop_requested and (deadline is None or time.monotonic() < deadline):
            try:
                # Re-resolved each time: after a supervisor's death its standby acts.
                sup = deployment.find_supervisor(name) or sup
                status = operator.call_running_within(5, sup, SupervisorApi.status)
                live.update(render.live_view(status))
            except Exception as exc:  # keep showing; the supervisor may be restarting
                live.update(render.header({"deployment": name, "health": "?", "reason": str(exc)}))
            if status.get("phase") == "failed":
                break
            time.sleep(1.0)
    console.print("stopping: draining the pipeline and flushing the journal ...")
    summary = deployment.stop(name, reason="duration reached" if not stop_requested else "signal")
    _print_summary(summary)
    failed = status.get("phase") == "failed"
    if address is None:
        ray.shutdown()
    raise typer.Exit(1 if failed else 0)


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(render.strategies_table(summary))
    console.print(render.orders_line(summary))
    paths = (summary.get("journal") or {}).get("paths") or {}
    console.print(f"health at stop: {summary.get('health')} ({summary.get('reason')})")
    console.print(f"journal: {paths.get('jsonl', summary.get('state_dir'))}")
    console.print(f"record:  {paths.get('db', '-')}")


@app.command()
def up(config: ConfigArg, address: AddressOpt = "auto", state_dir: StateDirOpt = None) -> None:
    """Deploy CONFIG on a running Ray cluster; return once it is ready."""
    from tradeplane.supervisor import deployment

    cfg = _load(config, state_dir)
    deployment.connect(address or "auto")
    try:
        deployment.deploy(cfg)
    except Exception as exc:
        _fail(str(exc), 1)
    status = deployment.status(cfg.deployment.name) or {}
    console.print(f"{cfg.deployment.name}: {status.get('health')} ({status.get('reason')})")


@app.command("ls")
def list_deployments(address: AddressOpt = "auto") -> None:
    """List deployments running on the cluster."""
    from tradeplane.supervisor import deployment

    deployment.connect(address or "auto")
    names = deployment.list_deployments()
    if not names:
        console.print("no deployments running")
    for name in names:
        try:
            s = deployment.status(name, timeout_s=5) or {}
            node = (s.get("state_node") or {}).get("node_ip") or "?"
            console.print(
                f"{name}\t{s.get('health')}\t{s.get('mode')}\t{node}:{s.get('state_dir')}"
            )
        except Exception as exc:
            console.print(f"{name}\t?\t{type(exc).__name__}")


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    state_dir: StateDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    address: AddressOpt = None,
    tail: Annotated[int, typer.Option("--tail", help="Journal lines to show.")] = 10,
) -> None:
    """Show a deployment: live from its supervisor, or from its state dir when stopped."""
    from tradeplane.cli import status_view
    from tradeplane.cli.offline import offline_status

    live: dict[str, Any] | None = None
    if address or state_dir is None:
        live = _live_status(name, address or "auto")
    directory = state_dir or (Path(live["state_dir"]) if live else Path(".tradeplane") / name)
    output.protect_state_dir(directory)
    snapshot: dict[str, Any] | None = None
    if state_dir is None:  # a running deployment's record is read on its node, never here
        directory, snapshot = _status_on_cluster(name, directory, tail, running=live is not None)
    try:
        if snapshot is None:
            snapshot = offline_status(directory, tail=tail)
    except OperationalError as exc:
        if live is None:
            _fail(str(exc), 1)
        snapshot = {"error": str(exc)}
    figures = snapshot.get("figures")
    if live is not None and figures is not None:
        live = status_view.with_journal_figures(live, figures)
    result = {"live": live, "state": snapshot}
    if as_json:
        output.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return
    if live is not None:
        # Without the journal's figures (its read failed: said below) the heartbeats' alone.
        view = (
            render.live_view(live) if figures is None else status_view.running_view(live, figures)
        )
        console.print(view)
    else:
        for part in status_view.stopped_view(name, str(directory), snapshot):
            console.print(part)
    if "error" not in snapshot:
        console.print(render.reconciliation_text(snapshot.get("reconciliation")))
        console.print(render.open_orders_table(snapshot.get("open_orders", [])))
    console.print(render.journal_tail_table(snapshot.get("tail", [])))


def _status_on_cluster(
    name: str, directory: Path, tail: int, *, running: bool
) -> tuple[Path, dict[str, Any] | None]:
    """The state dir and, for a deployment whose journal runs, its record as that journal reads
    it on its node. A stopped deployment's state dir on another node is named, never read as
    missing here."""
    import ray

    from tradeplane.cli.cluster_reads import locate_stopped, running_journal

    if not ray.is_initialized():
        return directory, None
    try:
        journal = running_journal(name)
        if journal is not None:
            return journal.state_dir, journal.status(tail)
    except OperationalError as exc:
        if not running:
            _fail(str(exc), 1)
        return directory, {"error": str(exc)}
    if running:
        return directory, None
    where = locate_stopped(name, directory)
    if isinstance(where, str):
        _fail(where, 1)
    return (where if isinstance(where, Path) else directory), None


def _live_status(name: str, address: str) -> dict[str, Any] | None:
    from tradeplane.supervisor import deployment

    try:
        deployment.connect(address)
    except Exception:
        return None  # no cluster: the deployment is not running
    try:
        return deployment.status(name)
    except Exception:
        return None


NameArg = Annotated[str, typer.Argument(help="Deployment name.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (journaled with the command).")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Deployment config (to find its state dir).")
]


@app.command("kill-switch")
def kill_switch(
    action: Annotated[str, typer.Argument(help="on | off")],
    name: Annotated[str | None, typer.Argument(help="Deployment name (or --all).")] = None,
    reason: ReasonOpt = "",
    every: Annotated[
        bool, typer.Option("--all", help="Every deployment running on the cluster.")
    ] = False,
    address: AddressOpt = None,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Activate or clear the kill switch; works on a running and on a stopped deployment.
    With --all, on every deployment running on the cluster (exit 1 if any failed)."""
    from tradeplane.cli import operator

    if action not in ("on", "off"):
        _fail(f"expected 'on' or 'off', got {action!r}")
    if not reason.strip():
        _fail("--reason must say why")
    active = action == "on"
    if every:
        if name is not None or state_dir is not None or config is not None:
            _fail("--all takes no NAME, --state-dir or --config")
        _kill_switch_all(address, active, reason)
        return
    if name is None:
        _fail("name a deployment, or pass --all")
        return
    sup = operator.find_running(name, address)
    try:
        if sup is not None:
            summary = operator.call_running(sup, SupervisorApi.kill_switch, active, reason)
            console.print(
                f"{name}: kill switch {'ACTIVE' if active else 'cleared'}; trading state "
                f"{summary.get('trading_state')}"
            )
            return
        directory, _ = resolve_state_dir(name, state_dir, config)
        result = operator.set_kill_switch_offline(directory, name, active=active, reason=reason)
    except OperationalError as exc:
        _fail(str(exc), 1)
    console.print(
        f"{name} is not running: kill switch {'ACTIVE' if active else 'cleared'} in {directory} "
        f"(journal seq {result['journal_seq']}); the next start honours it"
    )


def _kill_switch_all(address: str | None, active: bool, reason: str) -> None:
    from tradeplane.cli import operator

    try:
        outcomes = operator.kill_switch_all(address, active=active, reason=reason)
    except OperationalError as exc:
        _fail(str(exc), 1)
        return
    if not outcomes:
        console.print("no deployments running")
    for o in outcomes:
        if o.ok:
            console.print(
                f"{o.deployment}: kill switch {'ACTIVE' if active else 'cleared'}; trading "
                f"state {o.trading_state}"
            )
        else:
            err.print(f"{escape(o.deployment)}: [bold red]FAILED[/] {escape(str(o.error))}")
    failed = [o.deployment for o in outcomes if not o.ok]
    if failed:
        _fail(f"kill switch not confirmed for {', '.join(failed)}", 1)


@app.command()
def flatten(name: NameArg, reason: ReasonOpt = "operator", address: AddressOpt = None) -> None:
    """Cancel every working order and close every position with market orders."""
    from tradeplane.cli import operator

    sup = operator.find_running(name, address)
    if sup is None:
        _fail(f"no running deployment named {name!r} (flatten needs the venue connection)", 1)
    result = operator.call_running(sup, SupervisorApi.flatten, reason)
    console.print(f"{name}: cancel-all sent; {result.get('orders', 0)} flatten order(s) submitted")


@app.command("cancel-all")
def cancel_all(name: NameArg, reason: ReasonOpt = "operator", address: AddressOpt = None) -> None:
    """Cancel every open order of the deployment."""
    from tradeplane.cli import operator

    sup = operator.find_running(name, address)
    if sup is None:
        _fail(f"no running deployment named {name!r} (cancel-all needs the venue connection)", 1)
    result = operator.call_running(sup, SupervisorApi.cancel_all, reason)
    console.print(
        f"{name}: {result.get('cancel_requested', 0)} cancel(s) sent for "
        f"{result.get('open', 0)} open order(s)"
    )


@app.command()
def preflight(
    venue: Annotated[str, typer.Argument(help="Venue to check: sim or ib.")],
    config: Annotated[Path, typer.Option("--config", help="Deployment config (TOML).")],
    state_dir: StateDirOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings count as failures.")] = False,
    require_market_open: Annotated[
        bool, typer.Option("--require-market-open", help="Fail when the session is closed.")
    ] = False,
    address: AddressOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Is the deployment ready to trade? Read-only; exit 0 only when ready."""
    from tradeplane.cli import operator
    from tradeplane.cli.preflight import preflight_state_on_cluster, run_preflight

    cfg = _load(config, state_dir)
    running = operator.find_running(cfg.deployment.name, address)
    where: dict[str, Any] = {}
    if state_dir is None:  # the config's state dir may be on another node of the cluster
        where = preflight_state_on_cluster(cfg)
    result = run_preflight(
        cfg,
        venue,
        strict=strict,
        require_market_open=require_market_open,
        running=running,
        **where,
    )
    if as_json:
        output.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    else:
        console.print(render.preflight_table(result.to_dict()))
        if result.ready:
            console.print(f"[bold green]READY[/] {cfg.deployment.name} on {venue}")
        else:
            console.print(f"[bold red]NOT READY[/] {cfg.deployment.name}:")
            for reason in result.reasons:
                console.print(f"  - {reason}")
    raise typer.Exit(0 if result.ready else 1)


@app.command("reconcile")
def reconcile_cmd(
    example: Annotated[
        bool, typer.Option("--example", help="Show a clean and a mismatched report (sim venue).")
    ] = False,
) -> None:
    """Reconciliation reports. ``--example`` runs a credential-free demonstration offline."""
    import tempfile

    from tradeplane.cli.reconcile_example import run_example

    if not example:
        _fail(
            "a deployment reconciles at every start (see `tradeplane status`); "
            "preview with `tradeplane preflight`, or run `tradeplane reconcile --example`"
        )
    with tempfile.TemporaryDirectory(prefix="tp-reconcile-") as tmp:
        clean, mismatched = run_example(Path(tmp))
    console.print("[bold]1. journal and venue agree[/]")
    for line in clean.lines():
        console.print(f"  {line}")
    console.print("[bold]2. after the venue drifted (manual order, manual fill, silent cancel)[/]")
    for line in mismatched.lines():
        console.print(f"  {line}")


@app.command()
def down(
    name: Annotated[str, typer.Argument(help="Deployment name.")], address: AddressOpt = "auto"
) -> None:
    """Stop a deployment cleanly (drain, flush, journal deployment_stopped)."""
    from tradeplane.supervisor import deployment

    deployment.connect(address or "auto")
    try:
        summary = deployment.stop(name)
    except OperationalError as exc:
        _fail(str(exc), 1)
    _print_summary(summary)


def main() -> None:
    """The console entry point. An operational error no command caught (a Ray cluster that
    cannot be reached or refuses this client's token) is one line and exit 2, not a traceback."""
    attached_before = _ray_attached()
    try:
        app()
    except OperationalError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(2) from None
    finally:
        if not attached_before and _ray_attached():
            _detach()


def _ray_attached() -> bool:
    loaded = sys.modules.get("ray")  # never imported: never attached either
    return loaded is not None and bool(loaded.is_initialized())


def _detach() -> None:
    """Leave the cluster a command attached to before the interpreter exits. Ray's own exit
    hook would do the same after sleeping half a second so that workers' log lines reach this
    terminal; every attach here turns those lines off (``log_to_driver=False``), so that half
    second is only waiting, on every ``status``, ``preflight`` and operator command."""
    import ray

    try:
        ray.shutdown()
    except Exception as exc:  # the command's outcome (and exit code) stands; say what failed
        err.print(f"[yellow]warning:[/] leaving the Ray cluster: {escape(str(exc))}")


if __name__ == "__main__":
    main()
