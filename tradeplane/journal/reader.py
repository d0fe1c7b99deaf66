"""Read-only access to a deployment's journal for CLI tools (``status``, ``preflight``, ``trace``).

The database is opened with ``mode=ro``: the reader never writes, never takes the writer's lock,
and in WAL mode neither blocks the other. Works with or without a running writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from tradeplane.core.errors import OperationalError
from tradeplane.journal import queries
from tradeplane.journal.records import GENESIS_HASH, LineChecker, VerifyResult
from tradeplane.journal.store import DB_NAME, JSONL_NAME, check_meta, check_sqlite_header

_READ_BLOCK = 8 * 1024 * 1024


class JournalReader:
    def __init__(self, state_dir: Path, conn: sqlite3.Connection, meta: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.conn = conn
        self.deployment = meta.get("deployment", "")

    @classmethod
    def open(cls, state_dir: Path, *, deployment: str | None = None) -> JournalReader:
        state_dir = Path(state_dir)
        db_path = state_dir / DB_NAME
        if not state_dir.is_dir():
            raise OperationalError(f"state dir {state_dir} does not exist (nothing journaled yet?)")
        if not db_path.is_file():
            raise OperationalError(f"{db_path} does not exist: no journal in {state_dir}")
        if db_path.stat().st_size == 0:
            raise OperationalError(f"{db_path} is empty: the journal was never initialised")
        check_sqlite_header(db_path)
        uri = f"file:{quote(str(db_path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise OperationalError(f"{db_path} cannot be opened read-only: {exc}") from exc
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA query_only = 1")
            meta = check_meta(conn, db_path, deployment)
        except sqlite3.Error as exc:
            conn.close()
            raise OperationalError(f"{db_path} cannot be read: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(state_dir, conn, meta)

    @property
    def db_path(self) -> Path:
        return self.state_dir / DB_NAME

    @property
    def jsonl_path(self) -> Path:
        return self.state_dir / JSONL_NAME

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- delegation to queries ----------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return queries.last_seq(self.conn)

    def tail(self, n: int) -> list[dict[str, Any]]:
        return queries.tail(self.conn, n)

    def events(
        self, kinds: Iterable[str] | None = None, since_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return queries.events(self.conn, kinds, since_seq, limit)

    def events_for(
        self, *, intent_id: str | None = None, client_order_id: str | None = None
    ) -> list[dict[str, Any]]:
        return queries.events_for(self.conn, intent_id=intent_id, client_order_id=client_order_id)

    def orders(
        self, *, strategy: str | None = None, open_only: bool = False
    ) -> list[dict[str, Any]]:
        return queries.orders(self.conn, strategy=strategy, open_only=open_only)

    def order_counts_by_status(self, strategy: str | None = None) -> dict[str, int]:
        return queries.order_counts_by_status(self.conn, strategy)

    def fills(
        self,
        *,
        strategy: str | None = None,
        client_order_id: str | None = None,
        since_seq: int = 0,
    ) -> list[dict[str, Any]]:
        return queries.fills(
            self.conn, strategy=strategy, client_order_id=client_order_id, since_seq=since_seq
        )

    def positions(self, *, strategy: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        return queries.positions(self.conn, strategy=strategy)

    def intents(
        self, *, strategy: str | None = None, undecided_only: bool = False
    ) -> list[dict[str, Any]]:
        return queries.intents(self.conn, strategy=strategy, undecided_only=undecided_only)

    def get_state(self, scope: str, key: str) -> dict[str, Any] | None:
        return queries.get_state(self.conn, scope, key)

    def states(self, scope: str) -> dict[str, dict[str, Any]]:
        return queries.states(self.conn, scope)

    def counts_by_kind(self) -> dict[str, int]:
        return queries.counts_by_kind(self.conn)

    def meta(self) -> dict[str, Any]:
        return queries.meta(self.conn)


def verify_journal(path: Path, *, deep: bool = False) -> VerifyResult:
    """Stream a JSONL journal and check every line's seq, prev link and hash.

    Reads 8 MiB blocks and checks each block's lines in one tight loop. ``deep`` additionally
    parses each line and checks it is canonical JSON with the journal's keys (about 3x slower;
    see ``LineChecker`` for why the default is sound). A last line without a newline (a torn
    write, or one in progress) is reported as bad.
    """
    path = Path(path)
    if not path.is_file():
        raise OperationalError(f"{path} does not exist")
    checker = LineChecker(deep=deep, start_seq=0, start_hash=GENESIS_HASH)
    lineno = 1
    rest = b""
    with open(path, "rb", buffering=0) as f:
        while block := f.read(_READ_BLOCK):
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            if not checker.feed(lines, lineno):
                return checker.result()
            lineno += len(lines)
    if rest:
        checker.fail(lineno, "incomplete last line (no trailing newline): a torn or ongoing write")
    return checker.result()
