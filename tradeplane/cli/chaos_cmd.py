"""``tradeplane chaos`` (kill a running deployment's actors on a seeded schedule) and
``tradeplane fault`` (ask the supervisor to make the venue misbehave).

Arguments are checked before any cluster is contacted, so a typo fails fast with exit 2.
"""

from __future__ import annotations

import random
import time
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from tradeplane.cli import output
from tradeplane.protocol.api import SupervisorApi
from tradeplane.supervisor.chaos import (
    ACTOR_KINDS,
    RUN_MODES,
    kills_by_role,
    parse_duration,
    split_kinds,
)
from tradeplane.venues.sim.faults import FaultKind

console, err = output.console, output.err

FAULT_KINDS = tuple(k.value for k in FaultKind)
DEFAULT_KILL = "strategy,risk,broker,feed,journal,supervisor"

NameArg = Annotated[str, typer.Argument(help="Deployment name.")]
ChaosAddressOpt = Annotated[
    str, typer.Option("--address", help="Ray cluster of the deployment (`auto` or host:port).")
]


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _duration(option: str, text: str, *, positive: bool = False) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        _fail(f"{option}: {exc}")
    if positive and value <= 0:
        _fail(f"{option}: must be more than zero, got {text!r}")
    return value


def _connect(name: str, address: str) -> Any:
    from tradeplane.cli import operator

    sup = operator.find_running(name, address)
    if sup is None:
        _fail(f"no running deployment named {name!r} on the Ray cluster at {address!r}", 1)
    return sup


# -- chaos ------------------------------------------------------------------------------------


def chaos_command(
    name: NameArg,
    kill: Annotated[
        str,
        typer.Option(
            "--kill", help=f"Actor kinds to kill, comma-separated: {', '.join(ACTOR_KINDS)}."
        ),
    ] = DEFAULT_KILL,
    every: Annotated[str, typer.Option("--every", help="Mean time between kills.")] = "5s",
    duration: Annotated[str, typer.Option("--duration", help="How long to keep killing.")] = "120s",
    mode: Annotated[
        str, typer.Option("--mode", help="sigkill (a crash), ray-kill, or mixed.")
    ] = "sigkill",
    seed: Annotated[
        int | None, typer.Option("--seed", help="Repeat an earlier run's schedule.")
    ] = None,
    settle: Annotated[
        str, typer.Option("--settle", help="After the last kill, wait this long for health ok.")
    ] = "30s",
    kill_node: Annotated[
        bool,
        typer.Option(
            "--kill-node",
            help="Instead: lose one worker node at random (never the state node or the head), "
            "then report how the deployment recovered.",
        ),
    ] = False,
    address: ChaosAddressOpt = "auto",
) -> None:
    """Kill a running deployment's actors every --every for --duration, then report how it
    recovered. Exit 1 when the deployment ends failed or stopped."""
    from tradeplane.supervisor.chaos import (
        ChaosPlan,
        default_status,
        deployment_roles,
        expand_kinds,
        run_chaos,
    )

    if kill_node:
        _kill_node(name, seed, _duration("--settle", settle), address)

    kinds = split_kinds(kill)
    bad = [k for k in kinds if k not in ACTOR_KINDS]
    if not kinds or bad:
        _fail(
            f"--kill: unknown kind(s) {', '.join(bad) or '(none)'}; valid: {', '.join(ACTOR_KINDS)}"
        )
    if mode not in RUN_MODES:
        _fail(f"--mode: unknown mode {mode!r}; valid: {', '.join(RUN_MODES)}")
    every_s = _duration("--every", every, positive=True)
    duration_s = _duration("--duration", duration)
    settle_s = _duration("--settle", settle)
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)

    _connect(name, address)
    roles = deployment_roles(name, default_status)
    if roles is None:
        _fail(f"deployment {name!r} does not answer status (is its supervisor restarting?)", 1)
    try:
        targets = expand_kinds(kinds, roles)
    except ValueError as exc:
        _fail(f"--kill: {exc}")
    planned = len(ChaosPlan.build(targets, every_s, duration_s, seed, mode))
    console.print(
        f"chaos on [bold]{name}[/]: {planned} kill(s) of {', '.join(targets)} every ~{every_s:g}s "
        f"for {duration_s:g}s, mode {mode}, seed {seed}"
    )
    results: list[dict[str, Any]] = []

    def on_step(result: dict[str, Any]) -> None:
        results.append(result)
        console.print(_kill_line(result))

    try:
        run_chaos(
            name, kinds, every_s, duration_s, mode, seed, on_step=on_step, status_fn=default_status
        )
    except (ValueError, LookupError) as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        console.print("interrupted: no more kills")
    if len(results) < planned:
        console.print(f"stopped after {len(results)} of {planned} planned kill(s)")
    status = _settle(name, settle_s)
    console.print(_summary_table(results))
    raise typer.Exit(_print_status(name, status, seed))


def _kill_node(name: str, seed: int | None, settle_s: float, address: str) -> NoReturn:
    from tradeplane.cluster.node_kill import kill_node

    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    _connect(name, address)
    try:
        result = kill_node(name, seed)
    except LookupError as exc:
        _fail(str(exc), 1)
    if result.get("node_id") is None:
        _fail(f"no node to lose: {result['error']}", 1)
    outcome = "[green]lost[/]" if result["ok"] else f"[red]FAILED[/] ({result['error']})"
    console.print(
        f"node {result['node_ip']} ({result['node_id'][:12]}) hosting "
        f"{', '.join(result['roles']) or 'no role'}: {outcome}, declared dead after "
        f"{result['dead_after_s']}s (seed {seed})"
    )
    if not result["ok"]:
        raise typer.Exit(1)
    if result["roles"]:
        _wait_noticed(name, result["node_id"], settle_s)
    status = _settle(name, settle_s)
    raise typer.Exit(_print_status(name, status, seed))


def _wait_noticed(name: str, node_id: str, timeout_s: float) -> None:
    """Until the supervisor shows the node lost: health read before that is still the old one."""
    from tradeplane.supervisor.chaos import default_status

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = default_status(name) or {}
        if any(n.get("node_id") == node_id for n in status.get("lost_nodes") or []):
            console.print(f"{name} noticed the loss")
            return
        time.sleep(0.2)
    console.print(f"[red]{name} did not show the node lost within {timeout_s:g}s[/]")


def _kill_line(r: dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(r.get("ts") or time.time()))
    outcome = "[green]ok[/]" if r.get("ok") else f"[red]FAILED[/] ({r.get('error')})"
    node = (r.get("node") or "-")[:8]
    return (
        f"{when} +{r.get('at_s', 0):7.2f}s  kill {r.get('role')!s:<18} {r.get('mode'):<8} "
        f"pid {r.get('pid') or '-'!s:<7} node {node}  {outcome}"
    )


def _settle(name: str, settle_s: float) -> dict[str, Any] | None:
    """The deployment's status once it is ok again (or ``settle_s`` passed): a summary taken
    the instant after the last kill would only show the restart in progress."""
    from tradeplane.supervisor.chaos import default_status

    deadline = time.monotonic() + settle_s
    status = default_status(name)
    if status is not None and status.get("health") == "ok":
        return status
    console.print(f"waiting up to {settle_s:g}s for {name} to settle ...")
    last = status
    while time.monotonic() < deadline:
        time.sleep(0.5)
        status = default_status(name)
        if status is not None:
            last = status
            if status.get("health") == "ok" or status.get("phase") == "failed":
                break
    return last


def _summary_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="kills", title_justify="left")
    for column in ("role", "kills", "ok", "failed"):
        table.add_column(column, justify="left" if column == "role" else "right")
    for role, row in kills_by_role(results).items():
        table.add_row(role, str(row["kills"]), str(row["ok"]), str(row["failed"]))
    return table


def _print_status(name: str, status: dict[str, Any] | None, seed: int) -> int:
    """Print the deployment's health and per-child restarts; the exit code."""
    if status is None:
        console.print(f"[red]{name}: the supervisor does not answer status[/] (seed {seed})")
        return 1
    health, phase = status.get("health"), status.get("phase")
    console.print(f"{name}: health [bold]{health}[/], phase {phase} ({status.get('reason')})")
    recovery = status.get("recovery")
    if isinstance(recovery, dict):
        # Only what says something: empty queues and unset fields would drown the rest.
        shown = {k: v for k, v in recovery.items() if v not in (None, "", [], {})}
        if isinstance(shown.get("attempts"), dict):
            shown["attempts"] = {r: n for r, n in shown["attempts"].items() if n} or 0
        console.print("recovery: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    elif recovery is not None:
        console.print(f"recovery: {recovery}")
    children = status.get("children") or {}
    with_attempts = any("attempts" in (c or {}) for c in children.values())
    table = Table(title="children", title_justify="left")
    table.add_column("role")
    table.add_column("state")
    table.add_column("restarts", justify="right")
    if with_attempts:
        table.add_column("attempts", justify="right")
    for role, child in sorted(children.items()):
        child = child or {}
        row = [role, str(child.get("state")), str(child.get("restarts"))]
        if with_attempts:
            row.append(str(child.get("attempts", "-")))
        table.add_row(*row)
    console.print(table)
    failed = health in ("failed", "stopped") or phase == "failed"
    if failed:
        console.print(f"[bold red]{name} did not survive[/] (replay with --seed {seed})")
    return 1 if failed else 0


# -- fault ------------------------------------------------------------------------------------


def fault_command(
    name: NameArg,
    kind: Annotated[
        str | None, typer.Argument(help=f"Fault: {', '.join(FAULT_KINDS)}.", show_default=False)
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="How long; default until --clear.")
    ] = None,
    delay: Annotated[
        str | None, typer.Option("--delay", help="Delay for delay_acks (e.g. 2s).")
    ] = None,
    probability: Annotated[
        float, typer.Option("--probability", help="Share of messages affected, 0..1.")
    ] = 1.0,
    clear: Annotated[
        bool, typer.Option("--clear", help="Clear KIND (every fault when KIND is omitted).")
    ] = False,
    address: ChaosAddressOpt = "auto",
) -> None:
    """Inject a venue fault into a running deployment (or clear one with --clear)."""
    from tradeplane.cli import operator

    if kind is not None and kind not in FAULT_KINDS:
        _fail(f"unknown fault {kind!r}; valid: {', '.join(FAULT_KINDS)}")
    if kind is None and not clear:
        _fail(f"which fault? one of: {', '.join(FAULT_KINDS)} (or --clear)")
    if not 0.0 <= probability <= 1.0:
        _fail(f"--probability must be within 0..1, got {probability}")
    duration_s = None if duration is None else _duration("--duration", duration, positive=True)
    delay_s = None if delay is None else _duration("--delay", delay)
    sup = _connect(name, address)
    try:
        if clear:
            result = operator.call_running_within(30, sup, SupervisorApi.clear_faults, kind)
        else:
            assert kind is not None  # refused above without --clear
            params: dict[str, Any] = {"probability": probability}
            if delay_s is not None:
                params["delay_s"] = delay_s
            result = operator.call_running_within(
                30, sup, SupervisorApi.inject_fault, kind, duration_s, params
            )
    except AttributeError:
        _fail(f"{name}'s supervisor does not support fault injection (an older version?)", 1)
    except Exception as exc:
        _fail(f"{'clear_faults' if clear else 'inject_fault'} failed: {exc}", 1)
    console.print(result)
