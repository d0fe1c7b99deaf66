"""``tradeplane trace ID`` and ``tradeplane trace export``: traces rebuilt from the journal.

Both read the journal read-only (safe beside a running deployment) and need no collector: the
spans come from ``SpanBuilder``, as the telemetry actor builds them, but including intents the
sampler left out. ``trace ID`` (short for ``trace show ID``) prints one intent's trace id, span
tree and journal events; ``trace export`` writes Jaeger UI's JSON upload format. A deployment
running on the cluster is read through its journal actor, from any node.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO, cast

import typer
from rich.markup import escape
from typer.core import TyperGroup

from tradeplane import __version__
from tradeplane.cli.cluster_reads import JournalSource, RemoteJournal, cluster, running_journal
from tradeplane.cli.journal_cmd import (
    AddressOpt,
    ConfigOpt,
    NameArg,
    StateDirOpt,
    _fail,
    atomic_private_file,
    open_journal,
)
from tradeplane.cli.output import console, err, stdout
from tradeplane.config.loading import ConfigError, load_config
from tradeplane.core.errors import OperationalError
from tradeplane.core.ids import client_order_id, intent_id_from_client_order_id
from tradeplane.core.redact import REDACTOR
from tradeplane.journal.files import DB_NAME
from tradeplane.journal.reader import JournalReader
from tradeplane.protocol.events import EventKind
from tradeplane.telemetry.context import parse_traceparent
from tradeplane.telemetry.jaeger import jaeger_traces, write_jaeger_json
from tradeplane.telemetry.model import TraceSpan
from tradeplane.telemetry.spans import SpanBuilder

Event = dict[str, Any]
JAEGER_UI = "http://127.0.0.1:16686"  # Jaeger's default UI address (ops/jaeger)
STATE_ROOT = Path(".tradeplane")
_PAGE = 5000
_DEFAULT_COMMAND = "show"


class TraceFormat(StrEnum):
    JAEGER_JSON = "jaeger-json"


class _DefaultToShow(TyperGroup):
    """A group whose unknown first token is an ID: ``trace ID`` means ``trace show ID``."""

    # ``Any``: typer >= 0.22 vendors click, so the context class depends on the version.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [_DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


trace_app = typer.Typer(
    cls=_DefaultToShow,
    help="An intent's trace from the journal (`trace ID`), or traces as a Jaeger JSON file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    subcommand_metavar="ID [NAME] | COMMAND [ARGS]...",
)


@dataclass(frozen=True, slots=True)
class _Found:
    intent_id: str | None
    client_order_id: str | None
    events: list[Event]  # the intent's and its order's journal lines, by seq


def _find(reader: JournalSource, ident: str, last_seq: int | None = None) -> _Found | None:
    """The journal lines of the intent whose intent id or client order id is ``ident``."""
    hits = reader.events_for(intent_id=ident, client_order_id=ident)
    if not hits:
        return None
    iid = next((e["intent_id"] for e in hits if e.get("intent_id")), None)
    coid = next((e["client_order_id"] for e in hits if e.get("client_order_id")), None)
    iid = iid or (intent_id_from_client_order_id(coid) if coid else None)
    coid = coid or (client_order_id(iid) if iid else None)
    by_seq = {e["seq"]: e for e in reader.events_for(intent_id=iid, client_order_id=coid)}
    events = [by_seq[s] for s in sorted(by_seq) if last_seq is None or s <= last_seq]
    return _Found(iid, coid, events)


def _not_found(ident: str, where: str) -> str:
    return f"no intent or client order {ident!r} in {where}"


def _discover(ident: str, address: str | None) -> _Found:
    """The one journal that knows ``ident``: of the deployments running on this node's cluster
    (read through their journals) and under ``.tradeplane/`` here (the others)."""
    with cluster(address) as attached:
        running = _running_journals() if attached else {}
        hits: list[tuple[str, _Found]] = []
        for name, journal in running.items():
            try:
                found = _find(journal, ident)
            except OperationalError as exc:
                err.print(f"[yellow]skipped:[/] {escape(str(exc))}", soft_wrap=True)
                continue
            if found is not None:
                hits.append((name, found))
    root = STATE_ROOT
    dirs = sorted(
        p
        for p in (root.iterdir() if root.is_dir() else ())
        if (p / DB_NAME).is_file() and p.name not in running
    )
    if not dirs and not running:
        where = root.resolve()
        _fail(f"no journal in {where}: give the deployment NAME, --state-dir or --config", 1)
    for directory in dirs:
        try:
            with JournalReader.open(directory) as reader:
                found = _find(reader, ident)
        except OperationalError as exc:
            err.print(f"[yellow]skipped:[/] {escape(str(exc))}", soft_wrap=True)
            continue
        if found is not None:
            hits.append((directory.name, found))
    if not hits:
        names = ", ".join(d.name for d in dirs)
        places = [f"any journal in {root}/ (searched: {names})"] if dirs else []
        if running:
            places.append(f"the journal of the running {', '.join(running)}")
        _fail(_not_found(ident, " or ".join(places)), 1)
    if len(hits) > 1:
        names = ", ".join(name for name, _ in hits)
        _fail(f"{ident!r} is in more than one deployment ({names}): give its NAME")
    return hits[0][1]


def _running_journals() -> dict[str, RemoteJournal]:
    from tradeplane.supervisor import deployment

    out: dict[str, RemoteJournal] = {}
    for name in deployment.list_deployments():
        try:
            journal = running_journal(name)
        except OperationalError as exc:
            err.print(f"[yellow]skipped:[/] {escape(str(exc))}", soft_wrap=True)
            continue
        if journal is not None:
            out[name] = journal
    return out


def _epoch(ts: Any) -> float | None:
    if isinstance(ts, int | float):
        return float(ts)
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _parse_time(option: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        _fail(f"{option} {value!r} is not an ISO-8601 time (e.g. 2024-05-01T09:00:00Z)")
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


# --- show ------------------------------------------------------------------------------------


def _tree(spans: list[TraceSpan]) -> list[tuple[int, TraceSpan]]:
    """Spans depth-first from their roots (also a span whose parent is absent), siblings by
    start time; each with its depth."""
    by_id = {s.span_id: s for s in spans}  # a later duplicate wins, as in the exporters
    children: dict[str | None, list[TraceSpan]] = {}
    for s in by_id.values():
        children.setdefault(s.parent_span_id if s.parent_span_id in by_id else None, []).append(s)
    out: list[tuple[int, TraceSpan]] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: (x.start_ts, x.journal_seq or 0)):
            out.append((depth, s))
            walk(s.span_id, depth + 1)

    walk(None, 0)
    return out


def _details(values: dict[str, Any], keys: tuple[str, ...], fill: tuple[Any, Any] | None) -> str:
    parts = [f"{k.rpartition('.')[2]}={values[k]}" for k in keys if values.get(k) is not None]
    return " ".join([*parts, f"fill {fill[0]}@{fill[1]}"] if fill else parts)


def _lines(found: _Found, spans: list[TraceSpan], info: dict[str, Any]) -> list[str]:
    """What ``trace ID`` prints; times in milliseconds from the intent."""
    intent = next((e for e in found.events if e.get("kind") == EventKind.INTENT), found.events[0])
    t0 = _epoch(intent.get("ts")) or min((s.start_ts for s in spans), default=0.0)
    out = ["trace: none (no trace context was journaled for this intent)"]
    if info["trace_id"] is not None:
        unsampled = " (not sampled: upload a `tradeplane trace export` file to see it)"
        out = [f"trace {info['trace_id']}{unsampled if info['sampled'] is False else ''}"]
        out.append(f"open {JAEGER_UI}/trace/{info['trace_id']}")
    out.append(
        f"intent {info['intent_id']}  client order {info['client_order_id']}  deployment "
        f"{info['deployment']}  strategy {info['strategy']}"
    )
    out.append(f"\n{'span':<30} {'component':<10} {'start ms':>10} {'dur ms':>9}  status details")
    for depth, s in _tree(spans):
        a, label = s.attributes, "  " * depth + s.name
        qty = a.get("tradeplane.fill_quantity")
        fill = (qty, a.get("tradeplane.fill_price")) if qty is not None else None
        details = _details(a, ("tradeplane.decision", "tradeplane.reason"), fill)
        if s.status_message and "tradeplane.reason" not in a:
            details += f" error={s.status_message}"
        out.append(
            f"{label:<30} {s.component:<10} {(s.start_ts - t0) * 1000.0:>+10.3f} "
            f"{s.duration_s * 1000.0:>9.3f}  {s.status:<6} {details}"
        )
    out.append(f"\n{'seq':>8} {'time':<24} {'kind':<22} {'+ms':>10}  details")
    for ev in found.events:
        ts, when = str(ev.get("ts") or "-"), _epoch(ev.get("ts"))
        ts = ts[:23] + "Z" if len(ts) == 27 and ts.endswith("Z") else ts  # to milliseconds
        plus = f"{(when - t0) * 1000.0:+10.3f}" if when is not None else f"{'-':>10}"
        data = ev["data"] if isinstance(ev.get("data"), dict) else {}
        f = data["fill"] if isinstance(data.get("fill"), dict) else None
        fill = (f.get("quantity"), f.get("price")) if f else None
        details = _details(data, ("status", "reason"), fill)
        out.append(f"{ev.get('seq', '-'):>8} {ts:<24} {ev.get('kind')!s:<22} {plus}  {details}")
    return out


def _summary(found: _Found, spans: list[TraceSpan]) -> dict[str, Any]:
    first = next((e for e in found.events if e.get("kind") == EventKind.INTENT), found.events[0])
    contexts = (parse_traceparent(e.get("traceparent")) for e in (first, *found.events))
    ctx = next((c for c in contexts if c is not None), None)  # the intent's own first
    return {
        "trace_id": ctx.trace_id if ctx else (spans[0].trace_id if spans else None),
        "sampled": ctx.sampled if ctx else None,
        "intent_id": found.intent_id,
        "client_order_id": found.client_order_id,
        "deployment": first.get("deployment"),
        "strategy": first.get("strategy"),
    }


@trace_app.command(_DEFAULT_COMMAND)
def show(
    ident: Annotated[str, typer.Argument(metavar="ID", help="Intent id or client order id.")],
    name: NameArg = None,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    address: AddressOpt = None,
) -> None:
    """An intent's trace id, span tree and journal events (`trace ID` is short for this).

    Times are milliseconds from the intent. Without NAME, --state-dir or --config, the
    journals of the deployments running on the cluster and every journal in .tradeplane/ are
    searched for ID."""
    if name is None and state_dir is None and config is None:
        found = _discover(ident, address)
    else:
        with open_journal(name, state_dir, config, address) as reader:
            maybe = _find(reader, ident)
            directory = reader.state_dir
        if maybe is None:
            _fail(_not_found(ident, f"the journal in {directory}"), 1)
        found = maybe
    spans = SpanBuilder(include_unsampled=True).feed(found.events)
    info = _summary(found, spans)
    if not as_json:
        for line in _lines(found, spans, info):
            console.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)
        return
    doc = {**info, "spans": [asdict(s) for s in spans], "events": found.events}
    stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    stdout.flush()


# --- export ----------------------------------------------------------------------------------


def _run_before(reader: JournalSource, start: float, last_seq: int) -> str | None:
    """The run id of the last ``deployment_started`` at or before ``start``."""
    run_id = None
    for ev in reader.events([EventKind.DEPLOYMENT_STARTED]):
        when = _epoch(ev.get("ts"))
        if ev["seq"] <= last_seq and when is not None and when <= start:
            run_id = (ev.get("data") or {}).get("run_id") or run_id
    return None if run_id is None else str(run_id)


def _range_spans(
    reader: JournalSource, last_seq: int, start: float | None, end: float | None
) -> list[TraceSpan]:
    """The spans finished by the lines up to ``last_seq`` whose time is in [start, end]; an
    order begun earlier is looked up in the journal to find its trace."""
    builder = SpanBuilder(
        lookup=lambda coid: reader.events_for(client_order_id=coid),
        run_id=_run_before(reader, start, last_seq) if start is not None else None,
        include_unsampled=True,
    )

    def within(ev: Event) -> bool:
        when = _epoch(ev.get("ts"))
        if when is None:
            return start is None and end is None
        return (start is None or when >= start) and (end is None or when <= end)

    spans: list[TraceSpan] = []
    cursor = 0
    while cursor < last_seq:
        page = [e for e in reader.events(since_seq=cursor, limit=_PAGE) if e["seq"] <= last_seq]
        if not page:
            break
        cursor = page[-1]["seq"]
        spans.extend(builder.feed(e for e in page if within(e)))
    return spans


def _redacted(span: TraceSpan) -> TraceSpan:
    if not REDACTOR.active:
        return span
    return replace(
        span,
        attributes=REDACTOR.redact_obj(span.attributes),
        events=tuple(replace(e, attributes=REDACTOR.redact_obj(e.attributes)) for e in span.events),
        status_message=REDACTOR.redact(span.status_message) if span.status_message else None,
    )


def _service_base(config: Path | None, state_dir: Path | None) -> str:
    if config is None:
        return "tradeplane"
    try:
        return load_config(config, state_dir=state_dir).telemetry.service_name
    except ConfigError as exc:
        _fail(str(exc))


TimeOpt = Annotated[str | None, typer.Option(metavar="ISO", help="ISO-8601 time; naive = UTC.")]


@trace_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (replaced atomically).")],
    name: NameArg = None,
    fmt: Annotated[
        TraceFormat, typer.Option("--format", help="jaeger-json: Jaeger UI's JSON upload.")
    ] = TraceFormat.JAEGER_JSON,
    since: TimeOpt = None,
    until: TimeOpt = None,
    intents: Annotated[
        list[str] | None,
        typer.Option(
            "--intent",
            metavar="ID",
            help="Only this intent's trace (intent or client order id; repeat for several).",
        ),
    ] = None,
    state_dir: StateDirOpt = None,
    config: ConfigOpt = None,
    address: AddressOpt = None,
) -> None:
    """Write traces to a file (0600): every intent's, sampled or not, and the supervisor's.

    --since/--until keep the spans finished by journal lines of that time (both ends included)."""
    if out.is_dir():
        _fail(f"--out {out} is a directory")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        _fail(f"--out {out}: no directory {out.parent}")
    start, end = _parse_time("--since", since), _parse_time("--until", until)
    if start is not None and end is not None and start > end:
        _fail(f"--since {since} is after --until {until}")
    if intents and (since is not None or until is not None):
        _fail("--intent exports whole traces: leave out --since and --until")
    base = _service_base(config, state_dir)
    with open_journal(name, state_dir, config, address) as reader:
        directory = reader.state_dir
        last_seq = reader.last_seq  # a consistent cut while a writer appends
        spans: list[TraceSpan] = []
        for ident in dict.fromkeys(intents or ()):
            found = _find(reader, ident, last_seq)
            if found is None:
                _fail(_not_found(ident, f"the journal in {directory}"), 1)
            spans.extend(SpanBuilder(include_unsampled=True).feed(found.events))
        if not intents:
            spans = _range_spans(reader, last_seq, start, end)
        dep = reader.deployment
    resource = {"service.version": __version__, "tradeplane.deployment": dep}
    try:
        doc = jaeger_traces([_redacted(s) for s in spans], service_base=base, resource=resource)
    except ValueError as exc:
        _fail(str(exc), 1)
    with atomic_private_file(out) as f:
        write_jaeger_json(doc, cast(TextIO, f))
    traces, count = len(doc["data"]), sum(len(t["spans"]) for t in doc["data"])
    console.print(
        f"exported {traces:,} trace{'s' if traces != 1 else ''} ({count:,} span"
        f"{'s' if count != 1 else ''}, journal seq 1..{last_seq}) to {escape(str(out))} "
        f"as {fmt.value}",
        soft_wrap=True,
        highlight=False,
    )
