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

import orjson

from tradeplane.protocol.events import KINDS_BY_VALUE, EventKind

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
    kind: EventKind
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
    allow_nan=False)``: the reference form; ``dumps_payload`` produces the same text faster."""
    return _ENCODER.encode(obj)


# orjson writes the same canonical text as the standard library (sorted keys, no whitespace,
# the same string escapes, shortest round-trip floats) several times faster. ``_fast_json`` uses
# it when the payload has none of what they treat differently, and otherwise falls back to
# ``canonical_json`` for that payload (tests hold the two to the same text):
#   * NaN and infinities, which orjson writes as ``null`` instead of refusing;
#   * floats below 1e-4 in magnitude, which it spells differently (``0.00001``, ``1e-7``);
#   * what the standard library accepts in its own way: non-str keys and ints beyond 64 bits
#     (orjson refuses them) and subclasses of str, int, float, dict, list and tuple (passed to
#     ``_refuse``).
# orjson also accepts Enum members and UUIDs, which the standard library refuses; they are
# written as their value and string, and read back as the same canonical text.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
_SMALLEST_PLAIN = 1e-4  # below this (but not 0) the two spell a float differently
_INF = math.inf


def _refuse(obj: Any) -> Any:
    raise TypeError(f"type {type(obj).__name__} is left to the standard library")


def _plain_floats(container: Any) -> bool:
    """Every exact float in ``container`` (nested in exact dicts, lists and tuples) is finite
    and 0 or at least 1e-4 in magnitude. (Subclasses never reach orjson's output.)"""
    for v in container.values() if type(container) is dict else container:
        t = type(v)
        if t is float:
            if not (v == 0.0 or _SMALLEST_PLAIN <= abs(v) < _INF):  # NaN fails both
                return False
        elif (t is dict or t is list or t is tuple) and not _plain_floats(v):
            return False
    return True


def _fast_json(data: Any) -> str | None:
    """``canonical_json(data)`` via orjson, or None when only the standard library may say."""
    if type(data) is float:
        return None  # a bare float: not worth a special case
    try:
        out = orjson.dumps(data, default=_refuse, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError, including a depth or a circular reference
        return None
    # A float orjson spells differently comes out as "null" (NaN, infinities), or with "e-" or
    # "0.0000" (below 1e-4), so text with none of those needs no walk (strings with them, and
    # None, only cost one).
    if (
        (b"null" in out or b"e-" in out or b"0.0000" in out)
        and (type(data) is dict or type(data) is list or type(data) is tuple)
        and not _plain_floats(data)
    ):
        return None
    return out.decode()


# The last timestamp formatted, and the whole second last formatted: events cluster in time
# (often several share one ts), and strftime is the slow part. Tuples, replaced whole, so
# concurrent callers never see a mismatched pair.
_ts_cache: tuple[float, str] = (math.nan, "")
_second_cache: tuple[int, str] = (-(2**62), "")


def iso_utc(ts: float) -> str:
    """Epoch seconds -> ISO-8601 UTC with microseconds and a trailing Z."""
    global _ts_cache, _second_cache
    cached_ts, text = _ts_cache
    if cached_ts == ts:
        return text
    second, micros = divmod(round(ts * 1_000_000), 1_000_000)
    cached_second, prefix = _second_cache
    if cached_second != second:
        try:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"timestamp {ts!r} is out of range") from exc
        _second_cache = (second, prefix)
    text = f"{prefix}.{micros:06d}Z"
    _ts_cache = (ts, text)
    return text


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
    fast = _fast_json(data)
    return _slow_payload(data, kind, what) if fast is None else fast


def _slow_payload(data: Any, kind: str, what: str = "data") -> str:
    try:
        return canonical_json(data)
    except (ValueError, TypeError, RecursionError) as exc:
        bad = _find_bad_value(data, what) or str(exc)
        raise ValueError(f"journal {kind!r}: cannot encode {bad}") from exc


def _check_str(kind: str, name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        need = "a non-empty string" + (" or None" if optional else "")
        raise ValueError(f"journal {kind!r}: {name} must be {need}, got {value!r}")


def validate_record(record: JournalRecord) -> None:
    # Fast path first: this runs for every record of every batch (no generator: it is cheaper
    # spelt out).
    kind, event_id, deployment, ts = record.kind, record.event_id, record.deployment, record.ts
    s, i, c, t = record.strategy, record.intent_id, record.client_order_id, record.traceparent
    if (
        type(kind) is EventKind
        and type(event_id) is str
        and event_id
        and type(deployment) is str
        and deployment
        and (s is None or (type(s) is str and s))
        and (i is None or (type(i) is str and i))
        and (c is None or (type(c) is str and c))
        and (t is None or (type(t) is str and t))
        and (type(ts) is float or type(ts) is int)
        and math.isfinite(ts)
        and type(record.data) is dict
    ):
        return
    kind = record.kind if isinstance(record.kind, str) else repr(record.kind)
    _check_str(kind, "kind", record.kind, optional=False)
    if record.kind not in KINDS_BY_VALUE:
        # A kind nobody projects, counts or traces would be stored and never read: refuse it.
        raise ValueError(f"journal {record.event_id!r}: unknown event kind {kind!r}")
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
    ``canonical_json`` of the whole object (a test holds it to that) at a fraction of the cost.
    """
    validate_record(record)
    if type(seq) is not int or seq < 1:
        raise ValueError(f"seq must be a positive int, got {seq!r}")
    return encode_valid(record, seq, prev_hash)


def encode_valid(r: JournalRecord, seq: int, prev_hash: str) -> tuple[str, str]:
    """``encode_line`` for a record that passed ``validate_record`` and a seq known to be good
    (the store's batch loop)."""
    q = encode_basestring
    data = _fast_json(r.data)
    if data is None:
        data = _slow_payload(r.data, r.kind)
    coid, intent, strategy, tp = r.client_order_id, r.intent_id, r.strategy, r.traceparent
    head = (
        f'{{"client_order_id":{"null" if coid is None else q(coid)},"data":{data}'
        f',"deployment":{q(r.deployment)},"event_id":{q(r.event_id)},'
    )
    tail = (
        f'"intent_id":{"null" if intent is None else q(intent)},"kind":{q(r.kind)}'
        f',"prev":"{prev_hash}","seq":{seq}'
        f',"strategy":{"null" if strategy is None else q(strategy)}'
        f',"traceparent":{"null" if tp is None else q(tp)},"ts":"{iso_utc(r.ts)}"}}'
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

        This loop is the verifier's hot path, so a line is held to what an intact one must be
        in as few operations as possible: the top-level ``"hash":"<64 hex>",`` must be in
        place, the top-level prev key must read exactly ``"prev":"<previous hash>","seq":<n>,``
        with n the previous seq + 1, and the hash of the previous hash, a newline and the line
        without its hash field (and newline) must be the hash field. Lines are counted by seq.
        Only a line that fails is looked at again, to say why (``_diagnose``). A line without
        its newline fails the hash (its body is taken as all but the last byte) and is
        explained as incomplete.
        """
        sha = hashlib.sha256
        deep = self.deep
        start_seq = seq = self.last_seq
        prev = self.last_hash.encode()
        try:
            for line in lines:
                # The top-level prev key is the last one in the line and the top-level hash key
                # the last one before it (only strings and numbers follow each). Searching back
                # from prev scans less than from the end. With no prev key, j is -1 and the
                # check looks at offset 0, where a line has "{".
                j = line.rfind(_PREV_KEY)
                i = line.rfind(_HASH_KEY, 0, j)
                if (
                    i < 0
                    or not line.startswith(b'",', i + 73)
                    or not line.startswith(b'"prev":"%b","seq":%d,' % (prev, seq + 1), j + 1)
                ):
                    reason = _diagnose(line, prev, seq)
                    return self._fail_line(first_lineno + seq - start_seq, line, reason)
                hasher = sha(prev)
                hasher.update(b"\n")
                hasher.update(line[: i + 1])
                hasher.update(line[i + 75 : -1])
                digest = hasher.hexdigest().encode()
                if not line.startswith(digest, i + 9):
                    return self._fail_line(
                        first_lineno + seq - start_seq, line, f"hash mismatch at seq {seq + 1}"
                    )
                if deep:
                    why = _deep_check(line[:-1], seq + 1)
                    if why:
                        return self._fail_line(first_lineno + seq - start_seq, line, why)
                seq += 1
                prev = digest
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


def _diagnose(line: bytes, prev: bytes, seq: int) -> str:
    """Why ``line`` cannot follow seq ``seq`` with hash ``prev`` (it failed the fast check)."""
    i = line.rfind(_HASH_KEY)
    j = line.find(_PREV_KEY, i)
    if (
        i < 0
        or j < 0
        or not line.startswith(b'",', i + 73)
        or not line.startswith(_SEQ_KEY, j + 73)
    ):
        return _NO_FIELDS
    if not line.startswith(prev, j + 9):
        return f"prev does not link to the previous line's hash (after seq {seq})"
    try:
        s = int(line[j + 81 : line.find(b",", j + 81)])
    except ValueError:
        return _BAD_SEQ
    if s != seq + 1:
        return f"seq {s} where {seq + 1} was expected"
    return _BAD_SEQ  # an integer, but not spelt as the writer spells it (e.g. "+2" or "02")


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
