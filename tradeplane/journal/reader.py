"""Read-only access to a deployment's journal for CLI tools (``status``, ``preflight``, ``trace``).

The database is opened with ``mode=ro``: the reader never writes, never takes the writer's lock,
and in WAL mode neither blocks the other. Works with or without a running writer.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from tradeplane.core.errors import OperationalError
from tradeplane.journal import queries
from tradeplane.journal.files import DB_NAME, JSONL_NAME, check_sqlite_header
from tradeplane.journal.records import GENESIS_HASH, LineChecker, VerifyResult, line_anchor
from tradeplane.journal.schema import check_meta


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
            meta = check_meta(conn, db_path, deployment, older_ok=True)
        except sqlite3.Error as exc:
            conn.close()
            raise OperationalError(f"{db_path} cannot be read: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(state_dir, conn, meta)

    @classmethod
    def open_when_there(
        cls, state_dir: Path, *, deployment: str | None = None, wait_s: float = 10.0
    ) -> JournalReader:
        """``open``, tried again for up to ``wait_s`` (blocking): for an actor that reads a
        journal its sibling is creating or reopening."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return cls.open(state_dir, deployment=deployment)
            except OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

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
        self,
        *,
        strategy: str | None = None,
        undecided_only: bool = False,
        since_ts: float | None = None,
    ) -> list[dict[str, Any]]:
        return queries.intents(
            self.conn, strategy=strategy, undecided_only=undecided_only, since_ts=since_ts
        )

    def get_state(self, scope: str, key: str) -> dict[str, Any] | None:
        return queries.get_state(self.conn, scope, key)

    def states(self, scope: str) -> dict[str, dict[str, Any]]:
        return queries.states(self.conn, scope)

    def counts_by_kind(self) -> dict[str, int]:
        return queries.counts_by_kind(self.conn)

    def meta(self) -> dict[str, Any]:
        return queries.meta(self.conn)

    def grouped_counts(
        self, kinds: Iterable[str], fields: Iterable[str], upto_seq: int
    ) -> list[tuple[Any, ...]]:
        return queries.grouped_counts(self.conn, kinds, fields, upto_seq)


# --- verification of the JSONL file --------------------------------------------------------------

_PARALLEL_MIN_BYTES = 64 * 1024 * 1024  # below this a second process costs more than it saves
_MAX_WORKERS = 4
_READ_BUFFER = 1024 * 1024
_BATCH_BYTES = 4 * 1024 * 1024
# What this process checks while a worker interpreter starts (~0.1 s): its segment is that much
# longer, so the segments end together.
_HEAD_START_BYTES = 24 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Segment:
    """What one byte range of the file verified to; ``start`` is (seq, hash) it continues from."""

    lines: int
    bad_line: int | None  # 1-based within the segment
    reason: str | None
    start: tuple[int, str] | None
    last_seq: int
    last_hash: str


def verify_journal(path: Path, *, deep: bool = False, workers: int | None = None) -> VerifyResult:
    """Stream a JSONL journal and check every line's seq, prev link and hash.

    ``deep`` also parses each line and checks it is canonical JSON with the journal's keys (about
    4x slower; ``LineChecker`` explains why the default is sound). A last line without a newline
    (a torn write, or one in progress) is reported as bad. A big file is split at line
    boundaries and checked by ``workers`` processes (default: one per CPU, up to 4); each
    segment's first line anchors it and the segments' ends must link up.
    """
    path = Path(path)
    if not path.is_file():
        raise OperationalError(f"{path} does not exist")
    size = path.stat().st_size
    if workers is None:
        workers = min(os.cpu_count() or 1, _MAX_WORKERS) if size >= _PARALLEL_MIN_BYTES else 1
    bounds = _segment_bounds(path, size, max(1, workers), first_extra=_HEAD_START_BYTES)
    procs = [_spawn_segment(path, a, b, deep) for a, b in bounds[1:]]
    try:
        segments = [_verify_segment(path, *bounds[0], deep=deep, anchored=False)]
        for (a, b), proc in zip(bounds[1:], procs, strict=True):
            if segments[-1].bad_line is not None:
                break  # an earlier failure is the answer
            segments.append(_collect_segment(proc) or _verify_segment(path, a, b, deep=deep))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return _stitch(segments)


def _segment_bounds(path: Path, size: int, n: int, first_extra: int = 0) -> list[tuple[int, int]]:
    """``n`` byte ranges ending at line boundaries; the first is ``first_extra`` bytes longer
    (at most a segment's worth) than the others, which share the rest equally."""
    first_extra = min(first_extra, size // n) if n > 1 else 0
    rest = size - first_extra
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, n):
            f.seek(max(cuts[-1], first_extra + rest * k // n))
            f.readline()  # to the start of the next line
            cuts.append(min(f.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a] or [(0, 0)]


def _verify_segment(
    path: Path, start: int, end: int, *, deep: bool, anchored: bool = True
) -> _Segment:
    with open(path, "rb", buffering=_READ_BUFFER) as f:
        f.seek(start)
        batches = _line_batches(f, end - start)
        first_batch = next(batches, None)
        if not first_batch:
            return _Segment(0, None, None, (0, GENESIS_HASH), 0, GENESIS_HASH)
        anchor = line_anchor(first_batch[0]) if anchored else (0, GENESIS_HASH)
        if anchor is None:
            checker = LineChecker(deep=deep)
            checker.feed(first_batch[:1], 1)  # says why it is not a journal line
            return _Segment(0, 1, checker.reason, None, 0, GENESIS_HASH)
        checker = LineChecker(deep=deep, start_seq=anchor[0], start_hash=anchor[1])
        lineno = 1
        for batch in itertools.chain((first_batch,), batches):
            if not checker.feed(batch, lineno):
                break
            lineno += len(batch)
    return _Segment(
        checker.lines,
        checker.bad_line,
        checker.reason,
        anchor,
        checker.last_seq,
        checker.last_hash,
    )


def _line_batches(f: Any, nbytes: int) -> Iterator[list[bytes]]:
    """Lists of lines from ``f`` covering ``nbytes`` (which end on a line boundary).

    ``readlines`` may read one line past its size hint; such lines belong to the next segment
    and are dropped. Stopping at ``end`` also on the last segment keeps a writer appending
    behind us from extending the check.
    """
    while nbytes > 0:
        batch = f.readlines(min(nbytes, _BATCH_BYTES))
        if not batch:
            return
        size = sum(map(len, batch))
        while size > nbytes and len(batch) > 1 and size - len(batch[-1]) >= nbytes:
            size -= len(batch.pop())
        nbytes -= size
        yield batch


def _stitch(segments: list[_Segment]) -> VerifyResult:
    lines, seq, last_hash = 0, 0, GENESIS_HASH
    for seg in segments:
        if seg.start is not None and seg.start != (seq, last_hash):
            claimed = seg.start[0] + 1
            reason = (
                f"seq {claimed} where {seq + 1} was expected"
                if claimed != seq + 1
                else f"prev does not link to the previous line's hash (after seq {seq})"
            )
            return VerifyResult(False, lines, lines + 1, reason, seq, last_hash)
        if seg.bad_line is not None:
            return VerifyResult(
                False,
                lines + seg.lines,
                lines + seg.bad_line,
                seg.reason,
                seg.last_seq,
                seg.last_hash,
            )
        lines, seq, last_hash = lines + seg.lines, seg.last_seq, seg.last_hash
    return VerifyResult(True, lines, None, None, seq, last_hash)


def _spawn_segment(path: Path, start: int, end: int, deep: bool) -> subprocess.Popen[bytes]:
    # A fresh interpreter rather than fork: the caller may have threads (fork is unsafe then),
    # and this module only needs the standard library to check lines.
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "tradeplane.journal.reader", "--verify-segment", str(path)]
    return subprocess.Popen(
        [*cmd, str(start), str(end), "deep" if deep else "fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def _collect_segment(proc: subprocess.Popen[bytes]) -> _Segment | None:
    """The worker's result, or None (then the caller checks that segment itself)."""
    out, _ = proc.communicate()
    if proc.returncode != 0:
        return None
    try:
        d = json.loads(out)
        start = None if d["start"] is None else (int(d["start"][0]), str(d["start"][1]))
        return _Segment(
            int(d["lines"]),
            d["bad_line"],
            d["reason"],
            start,
            int(d["last_seq"]),
            str(d["last_hash"]),
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _segment_main(argv: list[str]) -> None:
    path, start, end, mode = argv
    seg = _verify_segment(Path(path), int(start), int(end), deep=mode == "deep")
    sys.stdout.write(json.dumps(asdict(seg)))


if __name__ == "__main__" and sys.argv[1:2] == ["--verify-segment"]:
    _segment_main(sys.argv[2:])
