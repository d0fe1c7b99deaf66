"""What the CLI reads from a deployment's state dir, computed where the state dir is.

The functions here read a state dir through a read-only ``JournalReader`` and return plain data:
the CLI calls them on its own disk for a stopped deployment, and the journal actor runs them on
the state node for a running one (``JournalReads``), so ``status``, ``journal``, ``trace`` and
``preflight`` answer the same from any node of the cluster. No Ray here: the actor mixes
``JournalReads`` in; its unit tests need no cluster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from tradeplane.actors.records import (
    KILL_SWITCH_KEY,
    RECONCILIATION_KEY,
    RECONCILIATION_SCOPE,
    RISK_SCOPE,
    RISK_STATE_KEY,
)
from tradeplane.core.errors import OperationalError
from tradeplane.journal.files import DB_NAME, JSONL_NAME
from tradeplane.journal.reader import JournalReader, verify_journal
from tradeplane.journal.records import VerifyResult
from tradeplane.journal.run_figures import FIGURE_KINDS, RunFigures, status_strategy
from tradeplane.protocol.events import STRATEGY_SNAPSHOT_SCOPE

T = TypeVar("T")

OK, WARN, FAIL = "ok", "warn", "fail"
READ_PAGE = 5000
"""Most events one read returns: a big journal crosses the network in pages of this size."""

# Waiting out a writer caught mid-append: it commits to journal.db first and appends to
# journal.jsonl right after, so a line seen short (or missing) now is normally there at once.
_SETTLE_ATTEMPTS = 50
_SETTLE_DELAY_S = 0.05
_SETTLE_STABLE = 2  # checks without growth before a short file is taken as it is


# --- status -----------------------------------------------------------------------------------


def status_snapshot(
    reader: JournalReader, *, tail: int = 10, cache: FiguresCache | None = None
) -> dict[str, Any]:
    """A deployment's record as ``tradeplane status`` shows it: run, health, the run's figures
    from its journal (``journal.run_figures``: orders, denials, intents, fills, positions, P&L,
    the day's figures, the kill switch), the persisted risk state, the last reconciliation and
    the journal's last lines. ``strategies`` and ``orders`` hold the same figures in the shape
    status always had (positions flat again included, with what they realized). ``cache``: the
    journal actor's fold, carried on from where the last ``status`` left it."""
    figures = journal_figures(reader) if cache is None else cache.read(reader)
    strategies = {name: status_strategy(s) for name, s in figures["strategies"].items()}
    return {
        "state_dir": str(reader.state_dir),
        "run": reader.get_state("supervisor", "run") or {},
        "health": reader.get_state("health", "deployment") or {},
        "figures": figures,
        "orders": figures["orders"],
        "open_orders": reader.orders(open_only=True),
        "strategies": strategies,
        "risk_state": reader.get_state(RISK_SCOPE, RISK_STATE_KEY) or {},
        "kill_switch": reader.get_state(RISK_SCOPE, KILL_SWITCH_KEY) or {"active": False},
        "reconciliation": reader.get_state(RECONCILIATION_SCOPE, RECONCILIATION_KEY),
        "tail": reader.tail(tail),
        "last_seq": reader.meta().get("last_seq"),
    }


def journal_figures(reader: JournalReader) -> dict[str, Any]:
    """``run_figures`` over the journal's lines of the kinds it reads, a page at a time. A
    journal from before ``deployment_started`` named each strategy's capital gives it through
    the strategies' last snapshots (their books' starting cash)."""
    return FiguresCache().read(reader)


class FiguresCache:
    """The run's figures folded up to a seq, fed only the lines after it at each read: the
    journal actor keeps one, so a ``status`` costs what was journaled since the last one, not
    the whole run (about 12 µs an event to parse and fold). Reads may come on two threads."""

    def __init__(self) -> None:
        self._fold: RunFigures | None = None
        self._seq = 0
        self._lock = threading.Lock()

    def read(self, reader: JournalReader) -> dict[str, Any]:
        with self._lock:
            if self._fold is None:
                self._fold = RunFigures(capital=_snapshot_capital(reader))
            # As ``reader.events`` reads, parsed with orjson (the parse is most of the cost).
            kinds = ",".join("?" * len(FIGURE_KINDS))
            sql = (
                f"SELECT seq, line FROM events WHERE seq > ? AND kind IN ({kinds}) "
                "ORDER BY seq LIMIT ?"
            )
            while True:
                rows = reader.conn.execute(sql, (self._seq, *FIGURE_KINDS, READ_PAGE)).fetchall()
                for seq, line in rows:
                    self._fold.feed(orjson.loads(line))
                    self._seq = int(seq)
                if len(rows) < READ_PAGE:
                    return self._fold.figures()


def _snapshot_capital(reader: JournalReader) -> dict[str, float]:
    capital: dict[str, float] = {}
    for name, snap in reader.states(STRATEGY_SNAPSHOT_SCOPE).items():
        portfolio = snap.get("portfolio")
        start = portfolio.get("starting_cash") if isinstance(portfolio, dict) else None
        if isinstance(start, int | float) and not isinstance(start, bool):
            capital[name] = float(start)
    return capital


# --- verify -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyReport:
    path: str
    result: VerifyResult
    problem: str | None  # how the file disagrees with journal.db, if it does
    db_seq: int  # journal.db's last seq when the (last) check began
    elapsed_s: float  # of the last check

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VerifyReport:
        return cls(
            str(raw["path"]),
            VerifyResult(**raw["result"]),
            raw["problem"],
            int(raw["db_seq"]),
            float(raw["elapsed_s"]),
        )


def _agreement(reader: JournalReader, result: VerifyResult, db_seq_before: int) -> str | None:
    """Why the verified JSONL disagrees with the record, or None.

    ``db_seq_before`` was read before the file was: lines committed since may not be in the
    file yet, but every line the record had then must be, and each line in the file must be the
    record's line of that seq.
    """
    db_seq = reader.last_seq
    if result.last_seq > db_seq:
        return (
            f"journal.jsonl line {result.last_seq}: seq {result.last_seq} is not in journal.db, "
            f"which ends at seq {db_seq}"
        )
    if result.last_seq < db_seq_before:
        return (
            f"journal.jsonl line {result.last_seq + 1}: missing; journal.db has seq "
            f"{result.last_seq + 1}..{db_seq} (an append lost after a crash? the next start "
            "re-appends it from journal.db)"
        )
    if result.last_seq == 0:
        return None
    row = reader.events(since_seq=result.last_seq - 1, limit=1)
    if not row or row[0].get("hash") != result.last_hash:
        return (
            f"journal.jsonl line {result.last_seq}: hash differs from journal.db's seq "
            f"{result.last_seq}: the file is not this record's journal"
        )
    return None


def verify_settled(
    reader: JournalReader, *, deep: bool = False, workers: int | None = None
) -> VerifyReport:
    """Verify journal.jsonl against journal.db; when the file ends short (a torn last line, or
    behind journal.db) and is still growing, a writer was caught mid-append: check again once
    it has moved on."""
    path = reader.jsonl_path
    size, still = -1, 0
    for _ in range(_SETTLE_ATTEMPTS):
        db_seq = reader.last_seq
        t0 = time.perf_counter()
        result = verify_journal(path, deep=deep, workers=workers)
        elapsed = time.perf_counter() - t0
        torn = not result.ok and (result.reason or "").startswith("incomplete last line")
        behind = result.ok and result.last_seq < db_seq
        if not (torn or behind):
            break
        new_size = path.stat().st_size
        still = still + 1 if new_size == size else 0
        if still >= _SETTLE_STABLE:
            break  # not growing: no writer is finishing it
        size = new_size
        time.sleep(_SETTLE_DELAY_S)
    problem = _agreement(reader, result, db_seq) if result.ok else None
    return VerifyReport(str(path), result, problem, db_seq, elapsed)


# --- preflight --------------------------------------------------------------------------------


def _check(
    name: str, status: str, detail: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"name": name, "status": status, "detail": detail, "data": data or {}}


def _paths_checks(state_dir: Path) -> list[dict[str, Any]]:
    if not state_dir.exists():
        parent = state_dir.parent
        while not parent.exists():
            parent = parent.parent
        writable = os.access(parent, os.W_OK)
        return [
            _check(
                "state dir",
                OK if writable else FAIL,
                f"{state_dir} does not exist yet (created 0700 on first start)"
                if writable
                else f"{state_dir} cannot be created: {parent} is not writable",
            )
        ]
    loose = []
    for path in [state_dir, *sorted(p for p in state_dir.rglob("*") if p.is_file())]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            loose.append(f"{path.relative_to(state_dir.parent)} {oct(mode)}")
    writable = os.access(state_dir, os.W_OK)
    detail = f"{state_dir} ({'writable' if writable else 'NOT writable'})"
    status = OK if writable else FAIL
    if loose:
        status = FAIL if status == FAIL else WARN
        detail += f"; readable by others: {', '.join(loose[:5])}"
    return [_check("state dir", status, detail)]


def _journal_check(state_dir: Path, checks: list[dict[str, Any]]) -> JournalReader | None:
    db = state_dir / DB_NAME
    if not db.exists():
        checks.append(_check("journal", OK, "no journal yet (fresh deployment)"))
        return None
    try:
        reader = JournalReader.open(state_dir)
    except OperationalError as exc:
        checks.append(_check("journal", FAIL, str(exc)))
        return None
    jsonl = state_dir / JSONL_NAME
    try:
        result = verify_journal(jsonl)
    except OperationalError as exc:
        checks.append(_check("journal", FAIL, str(exc)))
        return reader
    if not result.ok:
        checks.append(
            _check("journal", FAIL, f"{jsonl} line {result.first_bad_line}: {result.reason}")
        )
        return reader
    checks.append(
        _check(
            "journal",
            OK,
            f"{result.lines} lines, hash chain intact; record at seq {reader.last_seq}",
            {"lines": result.lines, "last_seq": reader.last_seq},
        )
    )
    return reader


def preflight_state(state_dir: Path) -> dict[str, Any]:
    """What preflight reads from a state dir: ``checks`` of the dir and its journal, and
    ``facts`` from the journal (None when there is none to read)."""
    state_dir = Path(state_dir)
    checks = _paths_checks(state_dir)
    reader = _journal_check(state_dir, checks)
    if reader is None:
        return {"checks": checks, "facts": None}
    with reader:
        facts = {
            "risk_state": reader.get_state(RISK_SCOPE, RISK_STATE_KEY),
            "kill_switch": reader.get_state(RISK_SCOPE, KILL_SWITCH_KEY),
            "positions": reader.positions(),
            "open_orders": reader.orders(open_only=True),
            "last_reconciliation": reader.get_state(RECONCILIATION_SCOPE, RECONCILIATION_KEY),
        }
    return {"checks": checks, "facts": facts}


# --- the journal actor's read methods ---------------------------------------------------------


class JournalReads:
    """The journal actor's read methods (``JournalApi.read_*``): the functions above, run on
    the journal's node with a read-only connection on threads of their own, so a long read
    (an export, a verify) never holds the writer's thread or its commits."""

    deployment: str
    state_dir: Path
    _read_pool: concurrent.futures.ThreadPoolExecutor | None = None
    _figures: FiguresCache | None = None  # the run's figures, carried on from read to read

    async def _off_thread(self, fn: Callable[[], T]) -> T:
        if self._read_pool is None:
            self._read_pool = concurrent.futures.ThreadPoolExecutor(
                2, thread_name_prefix="journal-read"
            )
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, fn)

    async def _read(self, fn: Callable[[JournalReader], T]) -> T:
        def run() -> T:
            with JournalReader.open(self.state_dir, deployment=self.deployment) as reader:
                return fn(reader)

        return await self._off_thread(run)

    async def read_info(self) -> dict[str, Any]:
        """Where the journal is and how far it goes."""

        def info(reader: JournalReader) -> dict[str, Any]:
            return {
                "deployment": reader.deployment,
                "state_dir": str(reader.state_dir),
                "db": str(reader.db_path),
                "jsonl": str(reader.jsonl_path),
                "last_seq": reader.last_seq,
            }

        return await self._read(info)

    async def read_status(self, tail: int = 10) -> dict[str, Any]:
        if self._figures is None:
            self._figures = FiguresCache()
        cache = self._figures
        return await self._read(lambda reader: status_snapshot(reader, tail=tail, cache=cache))

    async def read_events(
        self, kinds: list[str] | None = None, since_seq: int = 0, limit: int = READ_PAGE
    ) -> list[dict[str, Any]]:
        """Events after ``since_seq`` (of ``kinds``), oldest first: at most ``READ_PAGE``; the
        caller pages on from the last seq it got."""
        page = max(0, min(limit, READ_PAGE))
        return await self._read(lambda reader: reader.events(kinds, since_seq, page))

    async def read_events_for(
        self, intent_id: str | None = None, client_order_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every event of one intent and/or order (what ``trace`` needs)."""
        return await self._read(
            lambda reader: reader.events_for(intent_id=intent_id, client_order_id=client_order_id)
        )

    async def read_verify(self, deep: bool = False, workers: int | None = None) -> dict[str, Any]:
        """``journal verify`` on the journal's node: its report (``VerifyReport.to_dict``)."""
        return await self._read(
            lambda reader: verify_settled(reader, deep=deep, workers=workers).to_dict()
        )

    async def read_preflight(self) -> dict[str, Any]:
        """``preflight_state`` of the journal's state dir, on its node."""
        return await self._off_thread(lambda: preflight_state(self.state_dir))
