"""Garbage flood: a venue that sends nothing but malformed messages, as fast as it can; what the
journal grows by. JSON lines out.

A real OKX-shaped websocket (the stand-in in ``tests/standins/okx.py``, on 127.0.0.1) floods
a real ``OkxCandleSource`` with malformed pushes (truncated JSON, rows with NaN or negative
prices, fields of the wrong type). Each rejection goes the feed actor's way: through
``BoundedRejections`` into a real ``JournalStore`` (SQLite + JSONL, fsync on), group-committed.
No Ray: one process. Printed per run: messages/s in (rejections the source reported), journal
records and bytes/s out (journal.db + WAL + journal.jsonl growth over the flood).

Runs:
- ``unbounded``: every rejection journaled (the behaviour before the bound), the floor of what
  the pipeline can take in when the journal writes each one;
- ``bounded_default``: the defaults (``journal.venue_rejections_per_window`` = 10 per
  ``venue_rejection_window_s`` = 60 s);
- ``bounded_1s``: 10 per 1 s window, so a short run shows the steady state of many windows.

    .venv/bin/python bench/garbage_flood.py            # 10 s per run
    .venv/bin/python bench/garbage_flood.py --quick    # 3 s per run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import emit  # noqa: E402
from tests.standins.okx import OkxStandin  # noqa: E402
from tradeplane.actors.rejections import BoundedRejections  # noqa: E402
from tradeplane.config.models import JournalConfig  # noqa: E402
from tradeplane.config.venues import OkxFeedConfig  # noqa: E402
from tradeplane.core.model import Bar  # noqa: E402
from tradeplane.journal import files  # noqa: E402
from tradeplane.journal.records import JournalRecord  # noqa: E402
from tradeplane.journal.store import JournalStore  # noqa: E402
from tradeplane.venues.okx.source import OkxCandleSource  # noqa: E402

# The bound's purpose: a flood costs the journal a fixed trickle, whatever its rate (with the
# defaults, 11 records a minute per source).
TARGETS = {"bounded_steady_journal_bytes_per_s_max": 1_000.0}
SYMBOL = "BTC-USDT"
T0 = 1_717_200_000_000
RUNS = {
    "unbounded": JournalConfig(venue_rejections_per_window=10_000, venue_rejection_window_s=1e-9),
    "bounded_default": JournalConfig(),
    "bounded_1s": JournalConfig(venue_rejections_per_window=10, venue_rejection_window_s=1.0),
}


def garbage() -> list[str]:
    """Malformed pushes of several shapes, each rejected by the parser with its reason."""

    def push(row: list[Any]) -> str:
        import json

        return json.dumps({"arg": {"channel": "candle1m", "instId": SYMBOL}, "data": [row]})

    good = [str(T0), "100", "101", "99", "100.5", "1", "100", "100", "1"]
    out = [push(good)[:40], "{not json", "[1, 2, 3]"]
    for i, bad in enumerate(["NaN", "-1", "", "1e999", None, [], {"x": 1}]):
        row: list[Any] = list(good)
        row[1 + i % 4] = bad
        out.append(push(row))
    return out


def journal_bytes(state_dir: Path) -> tuple[int, int]:
    """(journal.db with its WAL, journal.jsonl) sizes in bytes."""

    def size(name: str) -> int:
        path = state_dir / name
        return path.stat().st_size if path.exists() else 0

    return size(files.DB_NAME) + size(files.DB_NAME + "-wal"), size(files.JSONL_NAME)


class JournalingSink:
    """What the feed actor does with a source's output: rejections bounded, then journaled."""

    def __init__(self, store: JournalStore, cfg: JournalConfig) -> None:
        self.store = store
        self.bounded = BoundedRejections(store.deployment, cfg)
        self.pending: list[JournalRecord] = []
        self.rejections = 0
        self.records = 0

    async def bars(self, bars: list[Bar]) -> None:
        return

    async def rejected(self, reason: str, raw: str) -> None:
        self.rejections += 1
        data = {"source": "okx", "reason": reason, "message": raw}
        self.pending.extend(self.bounded.rejected("okx", reason, data))

    def commit(self, final: bool = False) -> None:
        batch, self.pending = self.pending, []
        batch.extend(self.bounded.final() if final else self.bounded.due())
        if batch:
            self.store.commit(batch)
            self.records += len(batch)

    async def committing(self) -> None:
        while True:  # group commit, as the journal actor does with what arrived meanwhile
            await asyncio.sleep(0.01)
            self.commit()


async def flood(okx: OkxStandin, seconds: float) -> int:
    """Push garbage to every subscribed connection for ``seconds``; messages sent."""
    texts = itertools.cycle(garbage())
    sent = 0

    async def push() -> None:
        nonlocal sent
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            conns = [c for c in okx._conns if c.subs]
            for _ in range(100):
                text = next(texts)
                for conn in conns:
                    await okx._send(conn, text)
                    sent += 1
            await asyncio.sleep(0)

    loop = okx._loop
    assert loop is not None
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(push(), loop))
    return sent


async def one_run(name: str, cfg: JournalConfig, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, OkxStandin(symbols=[SYMBOL]) as okx:
        state = Path(tmp)
        JournalStore.open(state, "flood", fsync=True).close()
        # Closed: the WAL folded into journal.db, so sizes compare record for record.
        before_db, before_jsonl = journal_bytes(state)
        store = JournalStore.open(state, "flood", fsync=True)
        sink = JournalingSink(store, cfg)
        feed = OkxFeedConfig(rest_url=okx.rest_url, ws_url=okx.ws_url, ping_interval_s=5.0)
        source = OkxCandleSource(feed, [SYMBOL], clock=lambda: okx.now_ms / 1000)
        running = asyncio.create_task(source.run(sink))
        committing = asyncio.create_task(sink.committing())
        while not okx.subscriptions:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the first bars (REST backfill) in
        start = time.monotonic()
        sent = await flood(okx, seconds)
        await asyncio.sleep(0.2)  # what is in flight arrives
        elapsed = time.monotonic() - start
        committing.cancel()
        running.cancel()
        for task in (committing, running):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sink.commit(final=True)
        store.close()
        after_db, after_jsonl = journal_bytes(state)
    out_bytes = (after_db - before_db) + (after_jsonl - before_jsonl)
    rejected = sink.rejections
    return {
        "bench": "garbage_flood",
        "run": name,
        "per_window": cfg.venue_rejections_per_window,
        "window_s": cfg.venue_rejection_window_s,
        "seconds": round(elapsed, 2),
        "messages_sent": sent,
        "messages_rejected": rejected,
        "messages_in_per_s": round(rejected / elapsed, 1),
        "journal_records": sink.records,
        "journal_jsonl_bytes": after_jsonl - before_jsonl,
        "journal_db_bytes": after_db - before_db,
        "journal_bytes_per_s": round(out_bytes / elapsed, 1),
        "journal_bytes_per_message": round(out_bytes / rejected, 2) if rejected else None,
        "journal_bytes_per_record": round(out_bytes / sink.records, 1) if sink.records else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per run instead of 10")
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    emit({"bench": "garbage_flood", "load_avg": os.getloadavg(), "seconds_per_run": seconds})
    results = {}
    for name, cfg in RUNS.items():
        results[name] = asyncio.run(one_run(name, cfg, seconds))
        emit(results[name])
    floor = results["unbounded"]
    for name in ("bounded_default", "bounded_1s"):
        r = results[name]
        cfg = RUNS[name]
        # The bound's steady state: per window, per_window records and one summary.
        per_record = r["journal_bytes_per_record"] or 0.0
        steady = (cfg.venue_rejections_per_window + 1) * per_record / cfg.venue_rejection_window_s
        emit(
            {
                "bench": "garbage_flood",
                "figure": f"{name}_journal_bytes_per_s",
                "value": r["journal_bytes_per_s"],
                "steady_state_bytes_per_s": round(steady, 1),
                # The target is for the defaults; the 1 s window is there to show many windows.
                "target_steady_state_max": TARGETS["bounded_steady_journal_bytes_per_s_max"]
                if name == "bounded_default"
                else None,
                "floor_unbounded": floor["journal_bytes_per_s"],
                "messages_in_per_s": r["messages_in_per_s"],
                "floor_messages_in_per_s": floor["messages_in_per_s"],
                "load_avg": os.getloadavg(),
            }
        )


if __name__ == "__main__":
    main()
