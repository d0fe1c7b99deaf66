"""Journal records and the JSONL line format with its hash chain (pure: no IO).

Each JSONL line is the canonical JSON of one event plus ``seq`` (1.. gap-free), ``prev`` (the
previous line's hash, 64 zeros for the first) and ``hash``::

    hash = sha256((prev + "\\n" + canonical_json(line_without_hash)).encode()).hexdigest()

and the written line is ``canonical_json(line_with_hash)``. Canonical JSON sorts keys and has no
whitespace, so the top-level keys always appear in the same order and ``hash`` sits between
``event_id`` and ``intent_id``. Removing ``"hash":"<64 hex>",`` from a written line gives back
exactly the text that was hashed; the verifier uses that to check a line without re-serialising
it, which is what makes it fast.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

GENESIS_HASH = "0" * 64

LINE_KEYS = frozenset(
    {
        "seq",
        "ts",
        "kind",
        "deployment",
        "strategy",
        "intent_id",
        "client_order_id",
        "event_id",
        "traceparent",
        "data",
        "prev",
        "hash",
    }
)


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One event to journal. ``event_id`` is the idempotency key: appending it again is a no-op."""

    event_id: str
    kind: str
    ts: float
    deployment: str
    data: dict[str, Any]
    strategy: str | None = None
    intent_id: str | None = None
    client_order_id: str | None = None
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class StateWrite:
    """Durable key/value state committed with a batch; not part of the JSONL or its hash chain."""

    scope: str
    key: str
    data: dict[str, Any]
    ts: float


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    lines: int  # lines that verified (all of them when ok)
    first_bad_line: int | None
    reason: str | None
    last_seq: int  # of the last good line (0 when none)
    last_hash: str  # of the last good line (GENESIS_HASH when none)


# One encoder instance: json.dumps with options builds a new encoder per call, which costs more
# than encoding a small event.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(obj: Any) -> str:
    """``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)``."""
    return _ENCODER.encode(obj)


def _scalar_json(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)  # the C encoder


# The formatted whole second last used: events cluster in time, and strftime is the slow part.
# One tuple, replaced whole, so concurrent callers never see a mismatched pair.
_second_cache: tuple[int, str] = (-(2**62), "")


def iso_utc(ts: float) -> str:
    """Epoch seconds -> ISO-8601 UTC with microseconds and a trailing Z."""
    global _second_cache
    second, micros = divmod(round(ts * 1_000_000), 1_000_000)
    cached_second, prefix = _second_cache
    if cached_second != second:
        try:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"timestamp {ts!r} is out of range") from exc
        _second_cache = (second, prefix)
    return f"{prefix}.{micros:06d}Z"


def _find_bad_value(value: Any, path: str) -> str | None:
    """Path and problem of the first value canonical JSON refuses (only walked on error)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r} (only finite floats)"
    if value is None or isinstance(value, str | int | bool):
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{path} has a non-string key {k!r}"
            bad = _find_bad_value(v, f"{path}.{k}")
            if bad:
                return bad
        return None
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            bad = _find_bad_value(v, f"{path}[{i}]")
            if bad:
                return bad
        return None
    return f"{path} has type {type(value).__name__}, which is not JSON"


def dumps_payload(data: Any, *, kind: str, what: str = "data") -> str:
    """Canonical JSON of a payload, or ValueError naming the offending field and the kind."""
    try:
        return canonical_json(data)
    except (ValueError, TypeError) as exc:
        bad = _find_bad_value(data, what) or str(exc)
        raise ValueError(f"journal {kind!r}: cannot encode {bad}") from exc


def _check_str(kind: str, name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        need = "a non-empty string" + (" or None" if optional else "")
        raise ValueError(f"journal {kind!r}: {name} must be {need}, got {value!r}")


def validate_record(record: JournalRecord) -> None:
    # Fast path first: this runs for every record of every batch.
    if (
        type(record.kind) is str
        and type(record.event_id) is str
        and type(record.deployment) is str
        and record.kind
        and record.event_id
        and record.deployment
        and all(
            v is None or (type(v) is str and v)
            for v in (record.strategy, record.intent_id, record.client_order_id, record.traceparent)
        )
        and type(record.ts) in (float, int)
        and math.isfinite(record.ts)
        and type(record.data) is dict
    ):
        return
    kind = record.kind if isinstance(record.kind, str) else repr(record.kind)
    _check_str(kind, "kind", record.kind, optional=False)
    _check_str(kind, "event_id", record.event_id, optional=False)
    _check_str(kind, "deployment", record.deployment, optional=False)
    for name in ("strategy", "intent_id", "client_order_id", "traceparent"):
        _check_str(kind, name, getattr(record, name), optional=True)
    if not isinstance(record.ts, int | float) or not math.isfinite(record.ts):
        raise ValueError(
            f"journal {kind!r} {record.event_id!r}: ts must be finite, got {record.ts!r}"
        )
    if not isinstance(record.data, dict):
        raise ValueError(f"journal {kind!r} {record.event_id!r}: data must be a dict")


def encode_line(record: JournalRecord, seq: int, prev_hash: str) -> tuple[str, str]:
    """The JSONL line (without newline) for ``record`` at ``seq``, and its hash.

    Values are serialised once and the sorted object is assembled by hand: identical to
    ``canonical_json`` of the whole object (a test holds it to that) at half the cost.
    """
    validate_record(record)
    if type(seq) is not int or seq < 1:
        raise ValueError(f"seq must be a positive int, got {seq!r}")
    d = _scalar_json
    head = (
        f'{{"client_order_id":{d(record.client_order_id)}'
        f',"data":{dumps_payload(record.data, kind=record.kind)}'
        f',"deployment":{d(record.deployment)},"event_id":{d(record.event_id)},'
    )
    tail = (
        f'"intent_id":{d(record.intent_id)},"kind":{d(record.kind)},"prev":"{prev_hash}"'
        f',"seq":{seq},"strategy":{d(record.strategy)},"traceparent":{d(record.traceparent)}'
        f',"ts":"{iso_utc(record.ts)}"}}'
    )
    digest = hashlib.sha256(f"{prev_hash}\n{head}{tail}".encode()).hexdigest()
    return f'{head}"hash":"{digest}",{tail}', digest


# --- verification -----------------------------------------------------------------------------

_HASH_KEY = b',"hash":"'
_PREV_KEY = b',"prev":"'
_SEQ_KEY = b'","seq":'
_NO_FIELDS = "no hash/prev/seq fields in place"
_BAD_SEQ = "seq is not an integer"
_INCOMPLETE = "incomplete last line (no trailing newline): a torn or ongoing write"


def line_anchor(line: bytes) -> tuple[int, str] | None:
    """(seq - 1, prev) a well-formed line claims: where a segment starting at it continues from."""
    i = line.rfind(_HASH_KEY)
    j = line.find(_PREV_KEY, i)
    if i < 0 or j < 0 or not line.startswith(_SEQ_KEY, j + 73):
        return None
    try:
        seq = int(line[j + 81 : line.find(b",", j + 81)])
    except ValueError:
        return None
    return seq - 1, line[j + 9 : j + 73].decode("ascii", "replace")


class LineChecker:
    """Checks JSONL lines in order: structure, seq continuity, prev linkage and hash.

    ``deep`` also parses every line as JSON and checks it is the canonical form with exactly the
    journal's keys. Without it a line is checked on its text: a line whose hash verifies is the
    exact text the writer produced, and the writer only produces canonical JSON, so parsing adds
    no assurance for intact lines; it is still used to explain a line that fails.
    """

    __slots__ = ("bad_line", "deep", "last_hash", "last_seq", "lines", "reason")

    def __init__(self, *, deep: bool, start_seq: int = 0, start_hash: str = GENESIS_HASH) -> None:
        self.deep = deep
        self.last_seq = start_seq
        self.last_hash = start_hash
        self.lines = 0
        self.bad_line: int | None = None
        self.reason: str | None = None

    def result(self) -> VerifyResult:
        return VerifyResult(
            ok=self.bad_line is None,
            lines=self.lines,
            first_bad_line=self.bad_line,
            reason=self.reason,
            last_seq=self.last_seq,
            last_hash=self.last_hash,
        )

    def fail(self, lineno: int, reason: str) -> bool:
        self.bad_line, self.reason = lineno, reason
        return False

    def feed(self, lines: Iterable[bytes], first_lineno: int) -> bool:
        """Check consecutive newline-terminated lines; False at the first bad one.

        This loop is the verifier's hot path: it works on bytes, compares in place with
        ``startswith``, and counts lines by seq (each good line is exactly one more) instead of
        keeping a counter. A line without its newline fails the hash (its body is taken as all
        but the last byte) and is explained as incomplete.
        """
        sha = hashlib.sha256
        deep = self.deep
        start_seq = seq = self.last_seq
        prev = self.last_hash.encode()
        line = b""
        try:
            for line in lines:
                i = line.rfind(_HASH_KEY)
                j = line.find(_PREV_KEY, i)
                if (
                    i < 0
                    or j < 0
                    or not line.startswith(b'",', i + 73)
                    or not line.startswith(_SEQ_KEY, j + 73)
                ):
                    return self._fail_line(first_lineno + seq - start_seq, line, _NO_FIELDS)
                if not line.startswith(prev, j + 9):
                    return self._fail_line(
                        first_lineno + seq - start_seq,
                        line,
                        f"prev does not link to the previous line's hash (after seq {seq})",
                    )
                try:
                    s = int(line[j + 81 : line.find(b",", j + 81)])
                except ValueError:
                    return self._fail_line(first_lineno + seq - start_seq, line, _BAD_SEQ)
                if s != seq + 1:
                    return self._fail_line(
                        first_lineno + seq - start_seq,
                        line,
                        f"seq {s} where {seq + 1} was expected",
                    )
                h = line[i + 9 : i + 73]
                hasher = sha(prev)
                hasher.update(b"\n")
                hasher.update(line[: i + 1])
                hasher.update(line[i + 75 : -1])
                if hasher.hexdigest().encode() != h:
                    return self._fail_line(
                        first_lineno + seq - start_seq, line, f"hash mismatch at seq {s}"
                    )
                if deep:
                    reason = _deep_check(line[:-1], s)
                    if reason:
                        return self._fail_line(first_lineno + seq - start_seq, line, reason)
                seq, prev = s, h
            return True
        finally:
            self.lines += seq - start_seq
            self.last_seq = seq
            self.last_hash = prev.decode()

    def _fail_line(self, lineno: int, line: bytes, reason: str) -> bool:
        if not line.endswith(b"\n"):
            return self.fail(lineno, _INCOMPLETE)
        if reason in (_NO_FIELDS, _BAD_SEQ) or reason.startswith("hash mismatch"):
            reason = self._explain(line, reason)
        return self.fail(lineno, reason)

    @staticmethod
    def _explain(line: bytes, reason: str) -> str:
        try:
            obj = json.loads(line)
        except ValueError as exc:
            return f"not valid JSON ({exc})"
        if not isinstance(obj, dict) or set(obj) != LINE_KEYS:
            return "not a journal line (wrong keys)"
        return reason


def _deep_check(line: bytes, seq: int) -> str | None:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(obj, dict) or set(obj) != LINE_KEYS:
        return "not a journal line (wrong keys)"
    if obj["seq"] != seq or not isinstance(obj["seq"], int):
        return "seq field disagrees with the line text"
    try:
        canonical = canonical_json(obj)
    except ValueError as exc:
        return f"not canonical JSON ({exc})"
    if canonical.encode() != line:
        return f"not in canonical JSON form at seq {seq}"
    return None


def verify_lines(
    lines: Iterable[tuple[int, str | bytes]],
    *,
    deep: bool = True,
    start_seq: int = 0,
    start_hash: str = GENESIS_HASH,
) -> VerifyResult:
    """Verify ``(lineno, text)`` pairs in order; stops at the first bad line.

    By default every line is parsed as JSON (see ``LineChecker``). ``start_seq``/``start_hash``
    verify a segment that continues from a known line.
    """
    checker = LineChecker(deep=deep, start_seq=start_seq, start_hash=start_hash)
    for lineno, text in lines:
        raw = text.encode() if isinstance(text, str) else text
        if not raw.endswith(b"\n"):
            raw += b"\n"
        if not checker.feed((raw,), lineno):
            break
    return checker.result()
