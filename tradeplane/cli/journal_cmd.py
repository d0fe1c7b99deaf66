"""``tradeplane journal verify|tail|export|backup``: a deployment's journal, read-only.

Every command opens the SQLite record read-only and reads ``journal.jsonl`` without locks, so it
works the same on a stopped deployment and beside a running one, and never blocks its writer.
The journal is found by deployment NAME (``.tradeplane/NAME``), ``--config FILE`` (the config's
state dir) or ``--state-dir DIR``. A deployment running on the cluster (found by NAME or the
config's) is read through its journal actor, so these work from any node of the cluster.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from tradeplane.actors.journal_reads import READ_PAGE, verify_settled
from tradeplane.cli.cluster_reads import (
    JournalSource,
    RemoteJournal,
    cluster,
    locate_stopped,
    running_journal,
)
from tradeplane.cli.output import console, err, protect, stdout
from tradeplane.config.loading import ConfigError, load_config
from tradeplane.core.errors import OperationalError
from tradeplane.core.redact import REDACTOR
from tradeplane.journal.backup import backup as backup_state_dir
from tradeplane.journal.reader import JournalReader
from tradeplane.venues.sim import snapshot as sim_snapshot

journal_app = typer.Typer(
    help="Verify, tail and export a deployment's journal (read-only; safe while it runs).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

NameArg = Annotated[
    str | None,
    typer.Argument(help="Deployment name: its journal is in .tradeplane/NAME by default."),
]
StateDirOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="The deployment's state dir (holds journal.db).")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Deployment config (TOML): use its state dir."),
]
KindOpt = Annotated[
    list[str] | None,
    typer.Option("--kind", "-k", help="Only events of this kind (repeat for several)."),
]

_PAGE = READ_PAGE
_sleep = time.sleep  # the follow loop's wait (tests replace it)


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


CSV_COLUMNS = (
    "seq",
    "ts",
    "kind",
    "deployment",
    "strategy",
    "symbol",
    "intent_id",
    "client_order_id",
    "event_id",
    "traceparent",
    "data",
)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def resolve_state_dir(
    name: str | None, state_dir: Path | None, config: Path | None
) -> tuple[Path, str | None]:
    """The journal's state dir and the deployment it must belong to (None: any).

    ``--state-dir`` wins (over the config's state dir, as everywhere); NAME alone means
    ``.tradeplane/NAME``; NAME beside ``--state-dir`` or ``--config`` is checked against it.
    """
    if config is not None:
        try:
            cfg = load_config(config, state_dir=state_dir)
        except ConfigError as exc:
            _fail(str(exc))
        protect(cfg)
        if name is not None and name != cfg.deployment.name:
            _fail(f"{config} is deployment {cfg.deployment.name!r}, not {name!r}")
        return cfg.deployment.resolved_state_dir(), cfg.deployment.name
    if state_dir is not None:
        return state_dir, name
    if name is not None:
        return Path(".tradeplane") / name, name
    _fail("which deployment? give its NAME, --state-dir DIR or --config FILE")


def _open(state_dir: Path, deployment: str | None) -> JournalReader:
    try:
        return JournalReader.open(state_dir, deployment=deployment)
    except OperationalError as exc:
        _fail(str(exc), 1)


AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray cluster of a running deployment (default: this node's cluster, if any).",
    ),
]


@contextlib.contextmanager
def open_journal(
    name: str | None, state_dir: Path | None, config: Path | None, address: str | None
) -> Iterator[JournalReader | RemoteJournal]:
    """The journal of the deployment the options name.

    A running deployment (found by name on the cluster) is read through its journal actor,
    from any node; otherwise the local state dir is, as without a cluster. ``--state-dir`` is
    a directory on this machine: read as it is.
    """
    directory, deployment = resolve_state_dir(name, state_dir, config)
    if state_dir is None and deployment is not None:
        with cluster(address) as attached:
            if attached:
                try:
                    remote = running_journal(deployment)
                    if remote is not None:
                        yield remote
                        return
                except OperationalError as exc:
                    _fail(str(exc), 1)
                where = locate_stopped(deployment, directory)
                if isinstance(where, str):
                    _fail(where, 1)
                directory = where or directory
            with _open(directory, deployment) as reader:
                yield reader
            return
    with _open(directory, deployment) as reader:
        yield reader


# --- verify ---------------------------------------------------------------------------------


@journal_app.command()
def verify(
    name: NameArg = None,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also parse every line and check its JSON form.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Processes for a big file; default by size."),
    ] = None,
    address: AddressOpt = None,
) -> None:
    """Check journal.jsonl's lines and hash chain against journal.db; exit 1 at a bad line."""
    with open_journal(name, state_dir, config, address) as reader:
        try:
            if isinstance(reader, RemoteJournal):  # checked on the journal's node
                checked = reader.verify(deep=deep, workers=workers)
            else:
                checked = verify_settled(reader, deep=deep, workers=workers)
        except OperationalError as exc:
            _fail(str(exc), 1)
    path = checked.path
    result, problem, db_seq, elapsed = (
        checked.result,
        checked.problem,
        checked.db_seq,
        checked.elapsed_s,
    )
    rate = result.lines / elapsed if elapsed > 0 else float("inf")
    console.print(
        f"{escape(str(path))}: {result.lines:,} lines checked in {elapsed:.2f}s "
        f"({rate:,.0f} lines/s){' (deep)' if deep else ''}",
        soft_wrap=True,
        highlight=False,
    )
    if not result.ok:
        console.print(
            f"[bold red]FAILED[/] journal.jsonl line {result.first_bad_line}: "
            f"{escape(result.reason or '?')}",
            soft_wrap=True,
            highlight=False,
        )
        raise typer.Exit(1)
    if problem is not None:
        console.print(f"[bold red]FAILED[/] {escape(problem)}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
    console.print(
        f"[bold green]OK[/] hash chain intact to seq {result.last_seq}; agrees with journal.db "
        f"(seq {db_seq} when the check began)",
        soft_wrap=True,
        highlight=False,
    )


# --- tail -----------------------------------------------------------------------------------


def _last_events(
    reader: JournalSource, n: int, kinds: list[str] | None, last: int
) -> list[dict[str, Any]]:
    """The last ``n`` events (of ``kinds``) up to seq ``last``, oldest first."""
    if n <= 0:
        return []
    if not kinds:  # seqs are gap-free from 1
        return reader.events(since_seq=max(0, last - n), limit=min(n, last))
    window = max(4 * n, 256)  # look back in growing windows instead of reading every event
    while True:
        since = max(0, last - window)
        found = [e for e in reader.events(kinds, since_seq=since) if e["seq"] <= last]
        if len(found) >= n or since == 0:
            return found[-n:]
        window *= 4


def _symbol(data: dict[str, Any]) -> str | None:
    symbol = data.get("symbol")
    if symbol is None and isinstance(data.get("fill"), dict):
        symbol = data["fill"].get("symbol")
    return symbol if isinstance(symbol, str) else None


_SHOWN = ("symbol", "strategy", "client_order_id", "intent_id", "traceparent")


def _short(data: Any, width: int = 80) -> str:
    if isinstance(data, dict):  # scalars first: the nested detail is what gets cut
        items = [(k, v) for k, v in data.items() if k not in _SHOWN]
        data = dict(sorted(items, key=lambda kv: isinstance(kv[1], dict | list)))
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_event(event: dict[str, Any]) -> str:
    """One journal event as a line: seq, time, kind, strategy, symbol, client order id, data."""
    raw = event.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    ts = str(event.get("ts") or "-")
    if len(ts) == 27 and ts.endswith("Z"):  # microseconds -> milliseconds
        ts = ts[:23] + "Z"
    cells = [
        f"{event.get('seq', '-'):>8}",
        ts,
        f"{event.get('kind', '-'):<22}",
        f"{event.get('strategy') or '-':<12}",
        f"{_symbol(data) or '-':<10}",
        f"{event.get('client_order_id') or '-':<18}",
        _short(event.get("data")),
    ]
    return " ".join(cells)


def _emit(events: list[dict[str, Any]], as_json: bool) -> None:
    for event in events:
        if as_json:
            stdout.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        else:
            console.print(format_event(event), markup=False, highlight=False, soft_wrap=True)
    stdout.flush()  # promptly, also into a pipe (`tail --follow | grep`)


@journal_app.command()
def tail(
    name: NameArg = None,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    n: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many events.")] = 20,
    kinds: KindOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between polls with --follow.")
    ] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON journal line each.")] = False,
    address: AddressOpt = None,
) -> None:
    """Show the last N events: seq, time, kind, strategy, symbol, client order id, data."""
    with open_journal(name, state_dir, config, address) as reader:
        seen = reader.last_seq
        _emit(_last_events(reader, n, kinds, seen), as_json)
        if not follow:
            return
        try:
            while True:
                _sleep(interval)
                while batch := reader.events(kinds or None, since_seq=seen, limit=_PAGE):
                    _emit(batch, as_json)
                    seen = batch[-1]["seq"]
        except KeyboardInterrupt:
            return


# --- export ---------------------------------------------------------------------------------


def _pages(
    reader: JournalSource, kinds: list[str] | None, since_seq: int, until_seq: int
) -> Iterator[list[dict[str, Any]]]:
    cursor = since_seq
    while cursor < until_seq:
        page = [
            e for e in reader.events(kinds, since_seq=cursor, limit=_PAGE) if e["seq"] <= until_seq
        ]
        if not page:
            return
        yield page
        cursor = page[-1]["seq"]


def _csv_row(event: dict[str, Any]) -> list[Any]:
    raw = event.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    row = {k: event.get(k) for k in CSV_COLUMNS}
    row["symbol"] = _symbol(data)
    row["data"] = json.dumps(event.get("data"), sort_keys=True, ensure_ascii=False, default=str)
    return ["" if row[k] is None else row[k] for k in CSV_COLUMNS]


@contextlib.contextmanager
def atomic_private_file(path: Path) -> Iterator[IO[str]]:
    """A text file that appears at ``path`` complete or not at all, mode 0600: written to a
    private temp file beside it, fsynced, then renamed over ``path``."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@journal_app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (replaced atomically).")],
    name: NameArg = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = (
        ExportFormat.JSONL
    ),
    kinds: KindOpt = None,
    since_seq: Annotated[
        int, typer.Option("--since-seq", min=0, help="Only events after this seq.")
    ] = 0,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    address: AddressOpt = None,
) -> None:
    """Write events to a file (0600, replaced atomically) as journal JSON lines or CSV."""
    if out.is_dir():
        _fail(f"--out {out} is a directory")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        _fail(f"--out {out}: no directory {out.parent}")
    count = 0
    with open_journal(name, state_dir, config, address) as reader:
        until = reader.last_seq  # a consistent cut while a writer appends
        with atomic_private_file(out) as f:
            writer = csv.writer(f) if fmt is ExportFormat.CSV else None
            if writer is not None:
                writer.writerow(CSV_COLUMNS)
            for page in _pages(reader, kinds or None, since_seq, until):
                page = REDACTOR.redact_obj(page)
                if writer is not None:
                    writer.writerows(_csv_row(e) for e in page)
                else:
                    f.writelines(
                        json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                        + "\n"
                        for e in page
                    )
                count += len(page)
    console.print(
        f"exported {count:,} event{'s' if count != 1 else ''} (seq {since_seq + 1}..{until}) "
        f"to {escape(str(out))} as {fmt.value}",
        soft_wrap=True,
        highlight=False,
    )


# --- backup ---------------------------------------------------------------------------------


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GiB"


@journal_app.command()
def backup(
    to: Annotated[
        Path, typer.Option("--to", help="New or empty directory to hold the backup (0700).")
    ],
    name: NameArg = None,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier backup in --to.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Copy the journal (and what a restore needs) consistently, also while it is written.

    Run it on the node that holds the state dir. The copy is a state dir: see ops/runbook.md
    ("Backup and restore")."""
    directory, deployment = resolve_state_dir(name, state_dir, config)
    try:
        result = backup_state_dir(
            directory,
            to,
            deployment=deployment,
            force=force,
            check_venue=sim_snapshot.check_not_in_use,
        )
    except OperationalError as exc:
        hint = "" if directory.is_dir() else " (run the backup on the node that holds it)"
        _fail(f"{exc}{hint}", 1)
    if as_json:
        stdout.write(json.dumps(result.as_dict(), sort_keys=True) + "\n")
        stdout.flush()
        return
    seqs = f"seq 1..{result.last_seq:,}" if result.last_seq else "no events"
    console.print(
        f"backed up {escape(result.deployment)} ({seqs}, {_size(result.total_bytes)}) to "
        f"{escape(str(to))} in {result.elapsed_s:.2f}s",
        soft_wrap=True,
        highlight=False,
    )
    for c in result.copied:
        note = f"  ({escape(c.note)})" if c.note else ""
        console.print(
            f"  copied   {escape(c.name):<24} {_size(c.bytes):>12}{note}", highlight=False
        )
    for s in result.skipped:
        console.print(
            f"  skipped  {escape(s.name):<24} {escape(s.reason)}", soft_wrap=True, highlight=False
        )
