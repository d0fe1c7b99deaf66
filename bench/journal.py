"""Journal benchmark: durable batched appends, flat cost as the journal grows, verify speed.

JSON lines on stdout, one object per measurement. Run with ``make bench`` or
``python bench/journal.py`` (a minute or two; ``--lines`` shrinks the big journal).

* ``journal_build``: how the big journal (1M lines) is made: by the store itself, so it is a
  real journal with projections and a verifiable chain, in 20,000-record batches with
  ``fsync=False``. Only durability differs from the measured path; nothing is timed in it but
  the total.
* ``journal_append``: ``JournalStore.commit`` with fsync on, batches of 1, 50 and 500 records of
  the mix the actors write (bars, a bar summary, intents, a denial, order lifecycle events with
  fills arriving later; shapes and ids as in ``tradeplane/actors/records.py`` and
  ``tradeplane/core/ids.py``), ``at`` a fresh ~1k-line journal ("small") and at the ~1M-line
  one ("large"), in rounds that alternate between the two so a change in the shared machine's
  speed hits both alike. Each figure is the median round; ``journal_lines`` is the journal's
  size when the series began. Intent and order ids are hashes, so each record with one inserts
  at a random place in several indexes (``--ids sequential`` shows the friendlier case).
* ``journal_floor``: in the same rounds, the same lines (already encoded) inserted into a bare
  SQLite table ``(seq INTEGER PRIMARY KEY, line TEXT)`` in WAL with ``synchronous=FULL`` and
  written to a file, as ``commit`` does with fsync on (the JSONL's fdatasync is off its path):
  what this machine's disk and SQLite allow before any index, projection, encoding or hashing.
  ``journal_append`` lines carry ``floor_records_per_s`` from it.
* ``journal_flat``: batch-500 throughput and single-record commit latency (p50) at ~1M lines
  against ~1k lines; met when neither is more than 20% worse (issue 15).
* ``journal_query``: the reads a restarted actor makes in ``ready()`` (risk, broker, strategy,
  reconciler), and ``trace``'s, on the ~1M-line journal, median of three.
* ``journal_open``: ``JournalStore.open`` of the ~1M-line journal (a restarted journal actor).
* ``journal_verify``: ``verify_journal`` (default mode and workers) over the ~1M-line file,
  the better of two runs.

Every figure after the build is taken with the garbage collector set as the journal actor sets
it at the end of its ``ready`` (``gc_tuning.settle_after_start_up``: what is alive is frozen,
the young generation is collected every 20,000 net allocations). Temp dirs are removed at exit.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeplane.actors.gc_tuning import settle_after_start_up
from tradeplane.core.ids import client_order_id, intent_id
from tradeplane.journal import queries
from tradeplane.journal.reader import verify_journal
from tradeplane.journal.records import GENESIS_HASH, JournalRecord, encode_line
from tradeplane.journal.store import JournalStore
from tradeplane.protocol.events import event_kind

DEPLOYMENT = "bench"
T0 = 1_700_000_000.0
TRACEPARENT = "00-" + "4bf92f3577b34da6a3ce929d0e0e4736" + "-00f067aa0ba902b7-01"
# Issue 15's targets.
APPEND_TARGET = 50_000.0  # records/s, fsync on, realistic batches
VERIFY_TARGET = 500_000.0  # lines/s
FLAT_TOLERANCE = 0.20  # 1M-line figures within 20% of the 1k-line ones
BUILD_BATCH = 20_000
SMALL_LINES = 1_000


def emit(record: dict[str, Any]) -> None:
    record.setdefault("ts", time.time())
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


# --- records shaped like the actors' ------------------------------------------------------------

SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "AAPL", "MSFT")


ID_STYLE = {"hashed": True}  # set from --ids


@functools.lru_cache(maxsize=4096)
def iid(n: int, suffix: str = "") -> str:
    """Intent ids as the strategy actor makes them: a hash of the trigger, so they (and the
    client order ids and event ids built on them) land at random places in the indexes. With
    ``--ids sequential``, zero-padded counters instead (as in the unit-test factories)."""
    if not ID_STYLE["hashed"]:
        return f"i{n:012d}{suffix}"
    return intent_id(DEPLOYMENT, "momentum", f"bar:{SYMBOLS[n % len(SYMBOLS)]}:{n}{suffix}", 0)


def coid(n: int) -> str:
    return client_order_id(iid(n))


def venue(n: int) -> str:
    return f"SIM-{n:09d}"  # venue order ids (and fill ids on them) come in sequence


def _order_data(n: int, sym: str, status: str, filled: float, venue: str | None) -> dict[str, Any]:
    return {
        "client_order_id": coid(n),
        "intent_id": iid(n),
        "strategy": "momentum",
        "symbol": sym,
        "side": "buy" if n % 2 else "sell",
        "quantity": 2.0,
        "order_type": "limit",
        "limit_price": 100.0 + n % 50,
        "status": status,
        "filled_quantity": filled,
        "avg_fill_price": 100.25 if filled else 0.0,
        "fees": 0.02 * filled,
        "venue_order_id": venue,
    }


# Lifecycle events of order m arrive this many cycles (of 11 records) after it was submitted:
# over 500 records later, as a venue's acks and fills would, not in the batch that submitted it.
ACCEPT_LAG, FILL_LAGS = 60, (90, 120)


def cycle(n: int) -> list[JournalRecord]:
    """Eleven records (fewer in the first cycles), as the strategy, risk, broker and feed actors
    write them: two bars, an intent submitted (intent, order_submitting, order_submitted),
    another intent denied (intent, order_denied), a bar summary, and for earlier orders an
    order_accepted and two order_filled (partial, then full) with their fills. Ids are unique,
    so every record is new to the journal."""
    ts = T0 + n * 0.01
    sym = SYMBOLS[n % len(SYMBOLS)]

    def rec(event_id: str, kind: str, data: dict[str, Any], **kw: Any) -> JournalRecord:
        return JournalRecord(event_id, event_kind(kind), ts, DEPLOYMENT, data, **kw)

    def ids(m: int) -> dict[str, Any]:
        return {"strategy": "momentum", "intent_id": iid(m), "client_order_id": coid(m)}

    def fill(m: int, k: int, qty: float, total: float, status: str) -> JournalRecord:
        data = _order_data(m, SYMBOLS[m % len(SYMBOLS)], status, total, venue(m))
        data["fill"] = {
            "fill_id": f"{venue(m)}-F{k}",
            "symbol": data["symbol"],
            "side": data["side"],
            "quantity": qty,
            "price": 100.25,
            "fee": 0.02 * qty,
            "ts": ts,
            "liquidity": "maker",
            "venue_order_id": venue(m),
        }
        return rec(f"order_filled/{venue(m)}-F{k}", "order_filled", data, **ids(m))

    bar = {"symbol": sym, "open": 100.0, "high": 101.5, "low": 99.5, "close": 100.7}
    intent = {
        "intent_id": iid(n),
        "client_order_id": coid(n),
        "strategy": "momentum",
        "symbol": sym,
        "side": "buy" if n % 2 else "sell",
        "quantity": 2.0,
        "order_type": "limit",
        "limit_price": 100.0 + n % 50,
        "trigger": f"bar:{sym}:{n}",
        "ts": ts,
    }
    denied_id = iid(n, "d")
    denied = {
        **intent,
        "intent_id": denied_id,
        "client_order_id": client_order_id(denied_id),
        "trigger": f"bar:{sym}:{n}d",
    }
    denied_ids = {
        "strategy": "momentum",
        "intent_id": denied_id,
        "client_order_id": client_order_id(denied_id),
    }
    out = [
        rec(f"bar/{sym}/{n}a", "bar", {**bar, "ts": f"t{n}a", "volume": 12.5}),
        rec(f"bar/{sym}/{n}b", "bar", {**bar, "ts": f"t{n}b", "volume": 3.25}),
        rec(f"intent/{iid(n)}", "intent", intent, traceparent=TRACEPARENT, **ids(n)),
        rec(f"intent/{denied_id}", "intent", denied, traceparent=TRACEPARENT, **denied_ids),
        rec(
            f"order_submitting/{coid(n)}",
            "order_submitting",
            _order_data(n, sym, "pending_submit", 0.0, None),
            **ids(n),
        ),
        rec(
            f"order_submitted/{coid(n)}",
            "order_submitted",
            _order_data(n, sym, "submitted", 0.0, None),
            **ids(n),
        ),
        rec(
            f"order_denied/{denied_id}",
            "order_denied",
            {
                "reason": "max_position",
                "message": "position would exceed the limit",
                "figures": {"position": 10.0, "limit": 10.0, "requested": 2.0},
                "symbol": sym,
                "side": "buy",
                "quantity": 2.0,
                "limit_price": 100.0,
            },
            traceparent=TRACEPARENT,
            **denied_ids,
        ),
        rec(
            f"bar_summary/{n}",
            "bar_summary",
            {"symbols": {s: {"bars": 60, "last_ts": f"t{n}", "close": 100.5} for s in SYMBOLS}},
        ),
    ]
    if (m := n - ACCEPT_LAG) >= 0:
        data = _order_data(m, SYMBOLS[m % len(SYMBOLS)], "accepted", 0.0, venue(m))
        out.append(rec(f"order_accepted/{coid(m)}/v1", "order_accepted", data, **ids(m)))
    if (m := n - FILL_LAGS[0]) >= 0:
        out.append(fill(m, 1, 0.5, 0.5, "partially_filled"))
    if (m := n - FILL_LAGS[1]) >= 0:
        out.append(fill(m, 2, 1.5, 2.0, "filled"))
    return out


class Source:
    """Fresh records in journal order, ``n`` at a time."""

    def __init__(self) -> None:
        self.n = 0
        self.buf: list[JournalRecord] = []

    def take(self, count: int) -> list[JournalRecord]:
        while len(self.buf) < count:
            self.buf += cycle(self.n)
            self.n += 1
        out, self.buf = self.buf[:count], self.buf[count:]
        return out


# --- measurements ---------------------------------------------------------------------------------

BATCHES = {1: 150, 50: 40, 500: 20}  # batch size -> commits per round
ROUNDS = 3


def timed_commits(store: JournalStore, batches: list[list[JournalRecord]]) -> list[float]:
    """Seconds per commit; records are built beforehand so only the commit is timed."""
    out = []
    clock = time.perf_counter
    for batch in batches:
        t0 = clock()
        store.commit(batch)
        out.append(clock() - t0)
    return out


@dataclass
class Series:
    """One journal's rounds at one batch size."""

    store: JournalStore
    label: str
    batch: int
    start_lines: int = 0
    rates: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    floor: Floor | None = None

    def round(self, src: Source) -> None:
        if not self.rates:
            self.start_lines = self.store.last_seq
        batches = [src.take(self.batch) for _ in range(BATCHES[self.batch])]
        t = timed_commits(self.store, batches)
        self.rates.append(self.batch * len(t) / sum(t))
        self.times += t
        if self.floor is not None:
            self.floor.round(batches)

    def figures(self) -> dict[str, Any]:
        """The median round, so a stray stall of the shared machine does not decide it."""
        rate = statistics.median(self.rates)
        target = APPEND_TARGET if self.batch >= 500 else None
        return {
            "bench": "journal_append",
            "at": self.label,
            "batch": self.batch,
            "fsync": self.store.fsync,
            "commits": len(self.times),
            "records_per_s": round(rate),
            "p50_commit_ms": round(pct(self.times, 0.5) * 1000, 3),
            "p99_commit_ms": round(pct(self.times, 0.99) * 1000, 3),
            "journal_lines": self.start_lines,
            "floor_records_per_s": None if self.floor is None else self.floor.rate(),
            "target": target,
            "met": None if target is None else rate >= target,
        }


class Floor:
    """The same batches' lines into a bare WAL table (synchronous=FULL) and written to a file
    (its fdatasync off the path, as ``commit``'s): the durable write ``commit`` cannot go below,
    measured beside it."""

    def __init__(self, root: Path, batch: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.batch = batch
        self.conn = sqlite3.connect(root / "floor.db", isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, line TEXT NOT NULL)")
        self.fd = os.open(root / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.seq = 0
        self.rates: list[float] = []

    def round(self, batches: list[list[JournalRecord]]) -> None:
        encoded = []
        for batch in batches:
            rows = []
            for r in batch:
                self.seq += 1
                rows.append((self.seq, encode_line(r, self.seq, GENESIS_HASH)[0]))
            encoded.append(rows)
        clock = time.perf_counter
        t0 = clock()
        for rows in encoded:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT INTO events (seq, line) VALUES (?, ?)", rows)
            self.conn.execute("COMMIT")
            os.write(self.fd, "".join(line + "\n" for _, line in rows).encode())
        self.rates.append(self.batch * len(encoded) / (clock() - t0))

    def rate(self) -> int:
        return round(statistics.median(self.rates))

    def close(self) -> None:
        self.conn.close()
        os.close(self.fd)


def build(state_dir: Path, src: Source, lines: int) -> float:
    """A journal of ``lines`` lines, written by the store itself with fsync off."""
    t0 = time.perf_counter()
    with JournalStore.open(state_dir, DEPLOYMENT, fsync=False) as store:
        while store.last_seq < lines:
            store.commit(src.take(min(BUILD_BATCH, lines - store.last_seq)))
    elapsed = time.perf_counter() - t0
    # Flush what the build left dirty (GBs for the big journal), so that writeback does not
    # compete with the fsyncs measured next.
    os.sync()
    return elapsed


def flat(small: dict[int, dict[str, Any]], large: dict[int, dict[str, Any]]) -> None:
    rate_drop = 1 - large[500]["records_per_s"] / small[500]["records_per_s"]
    latency_rise = large[1]["p50_commit_ms"] / small[1]["p50_commit_ms"] - 1
    emit(
        {
            "bench": "journal_flat",
            "small_lines": small[500]["journal_lines"],
            "large_lines": large[500]["journal_lines"],
            "batch500_records_per_s": [small[500]["records_per_s"], large[500]["records_per_s"]],
            "single_p50_commit_ms": [small[1]["p50_commit_ms"], large[1]["p50_commit_ms"]],
            "throughput_drop": round(rate_drop, 3),
            "latency_rise": round(latency_rise, 3),
            "target": FLAT_TOLERANCE,
            "met": rate_drop <= FLAT_TOLERANCE and latency_rise <= FLAT_TOLERANCE,
        }
    )


def recovery_queries(store: JournalStore) -> None:
    """What risk, broker, strategy and reconciler ask the journal in ``ready()`` (see
    ``tradeplane/actors/*.py``), and ``trace``'s lookup, on the big journal."""
    conn = store.conn
    last_ts = float(conn.execute("SELECT max(ts) FROM intents").fetchone()[0])
    since = last_ts - (last_ts - T0) * 0.01  # the last 1% of the intents, by ts
    row = conn.execute("SELECT intent_id, client_order_id FROM orders LIMIT 1").fetchone()
    reads: dict[str, Any] = {
        "positions": lambda: queries.positions(conn),
        "orders": lambda: queries.orders(conn),
        "orders_open": lambda: queries.orders(conn, open_only=True),
        "fills": lambda: queries.fills(conn),
        "fills_since_seq": lambda: queries.fills(
            conn, strategy="momentum", since_seq=store.last_seq - 5000
        ),
        "intents": lambda: queries.intents(conn),
        "intents_by_strategy_since_ts": lambda: queries.intents(
            conn, strategy="momentum", since_ts=since
        ),
        "intents_undecided_since_ts": lambda: queries.intents(
            conn, undecided_only=True, since_ts=since
        ),
        "get_state": lambda: queries.get_state(conn, "risk", "state"),
        "events_of_kind": lambda: queries.events(conn, ["deployment_started"]),
        "events_for_trace": lambda: queries.events_for(
            conn, intent_id=row[0], client_order_id=row[1]
        ),
    }
    for name, read in reads.items():
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = read()
            times.append(time.perf_counter() - t0)
        emit(
            {
                "bench": "journal_query",
                "query": name,
                "journal_lines": store.last_seq,
                "rows": len(out) if out is not None else 0,
                "ms": round(statistics.median(times) * 1000, 2),
            }
        )


def reopen(state_dir: Path) -> None:
    """What a restarted journal actor pays to open the big journal (median of three)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        store = JournalStore.open(state_dir, DEPLOYMENT, fsync=True)
        times.append(time.perf_counter() - t0)
        lines = store.last_seq
        store.close()
    emit(
        {
            "bench": "journal_open",
            "journal_lines": lines,
            "ms": round(statistics.median(times) * 1000, 1),
        }
    )


def verify(path: Path, lines: int) -> None:
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        result = verify_journal(path)
        runs.append(time.perf_counter() - t0)
        if not result.ok or result.lines != lines:
            raise SystemExit(f"verify failed: {result}")
    best = min(runs)
    emit(
        {
            "bench": "journal_verify",
            "journal_lines": lines,
            "bytes": path.stat().st_size,
            "seconds": round(best, 3),
            "lines_per_s": round(lines / best),
            "target": VERIFY_TARGET,
            "met": lines / best >= VERIFY_TARGET,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="size of the big journal")
    ap.add_argument(
        "--ids",
        choices=("hashed", "sequential"),
        default="hashed",
        help="intent/order ids as the actors make them (hashed: random index positions) or "
        "counters (sequential: every index grows at its end)",
    )
    args = ap.parse_args()
    ID_STYLE["hashed"] = args.ids == "hashed"
    emit({"bench": "journal_config", "ids": args.ids, "lines": args.lines})
    root = Path(tempfile.mkdtemp(prefix="tradeplane-bench-journal-"))
    stores: list[JournalStore] = []
    floors: list[Floor] = []
    try:
        src = Source()
        big_dir = root / "big"
        elapsed = build(big_dir, src, args.lines)
        emit(
            {
                "bench": "journal_build",
                "journal_lines": args.lines,
                "seconds": round(elapsed, 2),
                "method": f"JournalStore.commit, fsync=False, {BUILD_BATCH}-record batches",
            }
        )
        big = JournalStore.open(big_dir, DEPLOYMENT, fsync=True)
        stores.append(big)
        settle_after_start_up()  # the journal actor's collector settings (see the docstring)
        small: dict[int, dict[str, Any]] = {}
        large: dict[int, dict[str, Any]] = {}
        for batch in BATCHES:
            # A fresh ~1k-line journal per batch size, measured in rounds alternating with the
            # big one so that drift in the machine's speed hits both alike.
            small_dir = root / f"small-{batch}"
            build(small_dir, src, SMALL_LINES)
            fresh = JournalStore.open(small_dir, DEPLOYMENT, fsync=True)
            stores.append(fresh)
            floor = Floor(root / f"floor-{batch}", batch)
            floors.append(floor)
            pair = (Series(fresh, "small", batch, floor=floor), Series(big, "large", batch))
            for _ in range(ROUNDS):
                for series in pair:
                    series.round(src)
            small[batch], large[batch] = (series.figures() for series in pair)
            large[batch]["floor_records_per_s"] = small[batch]["floor_records_per_s"]
            emit(
                {
                    "bench": "journal_floor",
                    "batch": batch,
                    "fsync": True,
                    "records_per_s": floor.rate(),
                    "method": "bare WAL table, synchronous=FULL, + JSONL write",
                }
            )
            emit(small[batch])
            emit(large[batch])
        flat(small, large)
        recovery_queries(big)
        lines = big.last_seq
        for store in stores:
            store.close()
        reopen(big_dir)
        verify(big_dir / "journal.jsonl", lines)
    finally:
        for store in stores:
            store.close()
        for f in floors:
            f.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
