"""``tradeplane promote CONFIG --to live``: may this live config trade what its paper deployment
traded? Runs every gate of ``tradeplane.core.promotion`` (preflight --strict against the live
venue, in process; the paper deployment's journal; the two configs and strategy files), prints
each with its evidence, journals ``promotion_checked`` and exits 1 on any failure.

The paper deployment is the one ``[promotion] paper_config`` of the live config names (relative
to the live config's file), or ``--paper FILE``. Its journal is only read: through its journal
actor when it runs on the cluster, else read-only from its state dir, so promoting never
disturbs a paper deployment that keeps running.

``promotion_checked`` goes into the live deployment's journal, the record of the deployment the
verdict is about, where a later reader finds why it was let go live. A journal has one writer at
a time: when the live deployment runs, the record is sent to its journal actor (the writer);
otherwise it is written to its state dir under the journal's single-writer lock (as the offline
kill switch does), creating the journal when the live deployment has none yet (its first start
opens what is there). A record that cannot be written fails the command: an unrecorded promotion
did not happen.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from tradeplane.actors.records import event_record
from tradeplane.cli.cluster_reads import cluster, locate_stopped, running_journal
from tradeplane.cli.output import console, err, protect, stdout
from tradeplane.config.loading import ConfigError, load_config
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core import promotion, promotion_config
from tradeplane.core.errors import OperationalError, root_cause
from tradeplane.core.promotion import GateResult, PromotionVerdict
from tradeplane.core.redact import REDACTOR
from tradeplane.journal.files import DB_NAME
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.store import JournalStore
from tradeplane.protocol.api import JournalApi
from tradeplane.protocol.events import EventKind

_APPEND_TIMEOUT_S = 30.0


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def promote_command(
    config: Annotated[Path, typer.Argument(help="The live deployment's config (TOML).")],
    to: Annotated[str, typer.Option("--to", help="Where to promote to: live.")],
    paper: Annotated[
        Path | None,
        typer.Option(
            "--paper", help="The paper deployment's config (default: promotion.paper_config)."
        ),
    ] = None,
    paper_state_dir: Annotated[
        Path | None,
        typer.Option("--paper-state-dir", help="Override the paper config's state dir."),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Override the live config's state dir."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address", help="Ray cluster of running deployments (default: this node's)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check the promotion gates of CONFIG against its paper deployment; journal the verdict
    (promotion_checked) in CONFIG's state dir; exit 1 on any failed gate."""
    if to != "live":
        _fail(f"--to: only 'live' is a promotion target, got {to!r}")
    live_cfg = _load(config, state_dir)
    paper_path = paper or _paper_from(live_cfg, config)
    paper_cfg = _load(paper_path, paper_state_dir)
    same_dir = live_cfg.deployment.resolved_state_dir() == paper_cfg.deployment.resolved_state_dir()
    if live_cfg.deployment.name == paper_cfg.deployment.name or same_dir:
        # One record for two deployments: the verdict would be journaled into the evidence.
        _fail(
            f"{config} and {paper_path} are the same deployment ({live_cfg.deployment.name!r} "
            f"in {live_cfg.deployment.resolved_state_dir()}): a live deployment needs its own "
            f"name and state dir"
        )
    with cluster(address) as attached:
        verdict = evaluate(
            live_cfg,
            paper_cfg,
            attached=attached,
            paper_state_dir=paper_state_dir,
            live_state_dir=state_dir,
        )
        payload = record_payload(verdict, live_cfg, config, paper_cfg, paper_path)
        try:
            where = journal_verdict(live_cfg, payload, attached=attached, state_dir=state_dir)
        except OperationalError as exc:
            where = {"error": str(exc)}
    result = {**verdict.to_dict(), "to": to, "journaled": where}
    if as_json:
        stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        _print(verdict, where)
    raise typer.Exit(0 if verdict.passed and "error" not in where else 1)


def _load(path: Path, state_dir: Path | None) -> TradeplaneConfig:
    try:
        cfg = load_config(path, state_dir=state_dir)
    except ConfigError as exc:
        _fail(str(exc))
    protect(cfg)
    return cfg


def _paper_from(cfg: TradeplaneConfig, config: Path) -> Path:
    named = cfg.promotion.paper_config
    if named is None:
        _fail(
            f"which paper deployment is {cfg.deployment.name!r} promoted from? Set "
            f"[promotion] paper_config in {config}, or pass --paper FILE"
        )
    return named if named.is_absolute() else config.parent / named


# --- the gates ----------------------------------------------------------------------------------


def evaluate(
    live_cfg: TradeplaneConfig,
    paper_cfg: TradeplaneConfig,
    *,
    attached: bool,
    paper_state_dir: Path | None = None,
    live_state_dir: Path | None = None,
    now: float | None = None,
) -> PromotionVerdict:
    """Every gate for ``live_cfg`` promoted from ``paper_cfg``. ``attached``: on a Ray cluster,
    where running deployments are found (and read through their actors)."""
    gates: list[GateResult] = [
        promotion_config.check_modes(
            paper_cfg.deployment.mode.value, live_cfg.deployment.mode.value
        ),
        _preflight_gate(live_cfg, attached=attached, state_dir=live_state_dir, now=now),
    ]
    records, problem = _paper_records(paper_cfg, attached=attached, state_dir=paper_state_dir)
    ran: dict[str, Any] | None = None
    if problem is not None:
        for name in ("clean starts", "kill switch", "drift alerts"):
            gates.append(GateResult(name, False, problem, {}))
    else:
        starts = promotion.starts_from_records(records)
        session = promotion.last_session(starts)
        gates.append(promotion.check_clean_starts(starts, live_cfg.promotion.clean_starts))
        mode = promotion.check_session_mode(session)
        if mode is not None:
            gates.append(mode)
        gates.append(promotion.check_kill_switch(records, session))
        gates.append(promotion.check_drift_alerts(records, session))
        ran = promotion.session_code_hashes(session)
    gates.append(
        promotion_config.check_strategy_code(code_hashes(paper_cfg), code_hashes(live_cfg), ran)
    )
    allowed = promotion_config.allowed_patterns(
        live_cfg.promotion.size_params, live_cfg.promotion.allowed_differences
    )
    gates.append(
        promotion_config.check_config_diff(
            paper_cfg.model_dump(mode="json"), live_cfg.model_dump(mode="json"), allowed
        )
    )
    return PromotionVerdict(paper_cfg.deployment.name, live_cfg.deployment.name, tuple(gates))


def _preflight_gate(
    cfg: TradeplaneConfig, *, attached: bool, state_dir: Path | None, now: float | None
) -> GateResult:
    from tradeplane.cli.preflight import preflight_state_on_cluster, run_preflight

    running = None
    where: dict[str, Any] = {}
    if attached:
        from tradeplane.supervisor import deployment

        running = deployment.find_supervisor(cfg.deployment.name)
        if state_dir is None:
            where = preflight_state_on_cluster(cfg)
    if state_dir is not None:
        where.setdefault("state_dir", state_dir)
    result = run_preflight(cfg, cfg.venue.kind, strict=True, running=running, now=now, **where)
    evidence = result.to_dict()
    if result.ready:
        return GateResult("preflight", True, f"--strict READY on {cfg.venue.kind}", evidence)
    return GateResult(
        "preflight", False, "--strict NOT READY: " + "; ".join(result.reasons), evidence
    )


def _paper_records(
    cfg: TradeplaneConfig, *, attached: bool, state_dir: Path | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The paper journal's lines the gates read, or why there are none."""
    kinds = [str(k) for k in promotion.SESSION_KINDS]
    name = cfg.deployment.name
    directory = state_dir or cfg.deployment.resolved_state_dir()
    try:
        if attached and state_dir is None:
            remote = running_journal(name)
            if remote is not None:
                return remote.events(kinds), None
            where = locate_stopped(name, directory)
            if isinstance(where, str):
                return [], where
            directory = where or directory
        if not (directory / DB_NAME).is_file():
            return [], f"no journal of paper deployment {name!r} at {directory}"
        with JournalReader.open(directory, deployment=name) as reader:
            return reader.events(kinds), None
    except OperationalError as exc:
        return [], f"paper journal unreadable: {exc}"


def code_hashes(cfg: TradeplaneConfig) -> dict[str, str | None]:
    """Each strategy's code hash, of its file read as the deployer reads it (None: it cannot
    be read)."""
    out: dict[str, str | None] = {}
    for s in cfg.strategies:
        try:
            out[s.name] = promotion_config.code_hash(Path(s.path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            out[s.name] = None
    return out


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


# --- the record ---------------------------------------------------------------------------------


def record_payload(
    verdict: PromotionVerdict,
    live_cfg: TradeplaneConfig,
    live_path: Path,
    paper_cfg: TradeplaneConfig,
    paper_path: Path,
) -> dict[str, Any]:
    return {
        "passed": verdict.passed,
        "to": "live",
        "live": verdict.live,
        "paper": verdict.paper,
        "live_config": {"path": str(live_path.resolve()), "sha256": _sha256(live_path)},
        "paper_config": {"path": str(paper_path.resolve()), "sha256": _sha256(paper_path)},
        "paper_state_dir": str(paper_cfg.deployment.resolved_state_dir()),
        "strategy_code_hashes": code_hashes(live_cfg),
        "failures": verdict.failures,
        "checks": [g.to_dict() for g in verdict.gates],
    }


def journal_verdict(
    cfg: TradeplaneConfig, payload: dict[str, Any], *, attached: bool, state_dir: Path | None
) -> dict[str, Any]:
    """Append ``promotion_checked`` to the live deployment's journal through its one writer:
    the running journal actor, else the state dir under the single-writer lock."""
    name = cfg.deployment.name
    # Masked here too: the offline path writes without the journal actor, which masks its own.
    masked = REDACTOR.redact_obj(payload)
    record = event_record(name, EventKind.PROMOTION_CHECKED, time.time(), masked)
    directory = state_dir or cfg.deployment.resolved_state_dir()
    if attached and state_dir is None:
        remote = running_journal(name)
        if remote is not None:
            import ray

            try:
                seqs = ray.get(
                    remote.remote.call(JournalApi.append, [record]), timeout=_APPEND_TIMEOUT_S
                )
            except Exception as exc:
                raise OperationalError(
                    f"promotion_checked not journaled by {name!r}'s running journal: "
                    f"{root_cause(exc)}"
                ) from exc
            return {"state_dir": str(remote.state_dir), "seq": seqs[-1], "via": "journal actor"}
        where = locate_stopped(name, directory)
        if isinstance(where, str):
            raise OperationalError(f"promotion_checked not journaled: {where}")
        directory = where or directory
    try:
        store = JournalStore.open(directory, name)
    except OperationalError as exc:
        raise OperationalError(
            f"promotion_checked not journaled in {directory}: {exc} (is {name!r} running on "
            f"a cluster this command did not reach? pass --address)"
        ) from exc
    try:
        seqs = store.commit([record], [])
    finally:
        store.close()
    return {"state_dir": str(directory), "seq": seqs[-1], "via": "state dir"}


# --- output -------------------------------------------------------------------------------------


def _print(verdict: PromotionVerdict, where: dict[str, Any]) -> None:
    console.print(
        f"[bold]promote {verdict.live}[/] (from paper deployment {verdict.paper}) to live"
    )
    for gate in verdict.gates:
        mark = "[bold green]PASS[/]" if gate.passed else "[bold red]FAIL[/]"
        console.print(f"{mark} {escape(gate.name)}: {escape(gate.detail)}", soft_wrap=True)
        for line in evidence_lines(gate):
            console.print(f"       {escape(line)}", soft_wrap=True)
    if "error" in where:
        err.print(f"[bold red]error:[/] {escape(where['error'])}", soft_wrap=True)
    else:
        console.print(f"journaled promotion_checked in {where['state_dir']} (seq {where['seq']})")
    if verdict.passed and "error" not in where:
        console.print(f"[bold green]PROMOTABLE[/] {verdict.live} may go live")
    else:
        console.print(f"[bold red]NOT PROMOTABLE[/] {verdict.live}")


def evidence_lines(gate: GateResult) -> list[str]:
    """The evidence of one gate as lines a person reads (``--json`` has all of it)."""
    ev = gate.evidence
    lines: list[str] = []
    for check in ev.get("checks", []) if gate.name == "preflight" else []:
        lines.append(f"{check['status']:4} {check['name']}: {check['detail']}")
    for start in ev.get("starts", []):
        verdict = "clean" if start.get("clean") else f"NOT clean, {start['summary']}"
        lines.append(f"run {start['run_id']} {start['ts']}: {verdict}")
    session = ev.get("session")
    if session:
        lines.append(
            f"session: run {session['run_id']} started {session['started']}, "
            f"{session['ended']}, journal seq {session['seq_range'][0]}.."
            f"{session['seq_range'][1] or 'end'}"
        )
    if ev.get("active_at_start"):
        a = ev["active_at_start"]
        lines.append(f"active since seq {a['seq']} {a['ts']} ({a['source']}: {a['reason']})")
    for a in ev.get("activations", []):
        lines.append(f"activated seq {a['seq']} {a['ts']} ({a['source']}: {a['reason']})")
    for a in ev.get("alerts", []):
        lines.append(
            f"drift_alert seq {a['seq']} {a['ts']}: {a['strategy']} {a['figure']} "
            f"{a['value']} (threshold {a['threshold']})"
        )
    for row in ev.get("strategies", []) if gate.name == "strategy code" else []:
        lines.append(
            f"{row['strategy']}: paper config {_short_hash(row['paper'])}, live config "
            f"{_short_hash(row['live'])}, last paper session ran {_short_hash(row['ran'])}"
        )
    for row in ev.get("not_allowed", []):
        lines.append(f"NOT ALLOWED {row['path']}: {row['paper']!r} -> {row['live']!r}")
    for row in ev.get("allowed", []):
        lines.append(f"allowed {row['path']}: {row['paper']!r} -> {row['live']!r}")
    return lines


def _short_hash(value: str | None) -> str:
    return "none" if value is None else f"sha256 {value[:12]}"
