"""Backup benchmark: ``tradeplane journal backup`` of a ~1M-line journal, and what it does to the
writer's commit latency. JSON lines on stdout. Not in CI; run under the shared lock:

    flock /tmp/tradeplane-ray.lock .venv/bin/python bench/journal_backup.py [--lines N]

* ``backup_build``: the journal, written by the store itself (fsync off), with the records the
  actors write (``bench/journal.py``'s mix, 11 per cycle, hashed ids).
* ``backup_stopped``: ``backup`` of the stopped journal: seconds, lines/s and MiB/s, beside the
  floor of this machine: a plain copy of the same two files (``shutil.copyfile``, then fsync)
  made in the same run. Best of two.
* ``backup_writer``: a writer process commits a batch of ``--batch`` records every ``--every-ms``
  with fsync on (a busy deployment), first alone (the floor) and then while ``backup`` copies
  the journal it writes; commit latency p50/p99/max of each phase, the lines the backup holds,
  and how far the writer got meanwhile.

Figures are noisy on a shared 2-core machine: each is printed beside its floor from the same run,
with the load average.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.journal import DEPLOYMENT, Source, build, emit, pct  # noqa: E402
from tradeplane.journal.backup import STEP_PAUSE_S  # noqa: E402
from tradeplane.journal.backup import backup as journal_backup  # noqa: E402
from tradeplane.journal.records import JournalRecord  # noqa: E402
from tradeplane.journal.store import JournalStore  # noqa: E402
from tradeplane.venues.sim.snapshot import check_not_in_use  # noqa: E402

backup = partial(journal_backup, check_venue=check_not_in_use)

# No target in the issue; what a restore runbook can promise on this hardware.
TARGETS = {"backup_lines_per_s": 100_000.0, "p99_commit_rise": 2.0}


def _mib(n: int) -> float:
    return round(n / 2**20, 1)


def _sync_tree(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)


def plain_copy(state_dir: Path, out: Path) -> float:
    t0 = time.perf_counter()
    out.mkdir()
    for name in ("journal.db", "journal.jsonl"):
        shutil.copyfile(state_dir / name, out / name)
    _sync_tree(out)
    return time.perf_counter() - t0


def stopped(state_dir: Path, root: Path) -> None:
    best: dict[str, Any] | None = None
    floor_s = float("inf")
    for i in range(2):
        floor_s = min(floor_s, plain_copy(state_dir, root / f"plain{i}"))
        shutil.rmtree(root / f"plain{i}")
        result = backup(state_dir, root / f"b{i}", deployment=DEPLOYMENT)
        size = result.total_bytes
        shutil.rmtree(root / f"b{i}")
        if best is None or result.elapsed_s < best["seconds"]:
            best = {"seconds": result.elapsed_s, "lines": result.last_seq, "bytes": size}
    assert best is not None
    rate = best["lines"] / best["seconds"]
    emit(
        {
            "bench": "backup_stopped",
            "lines": best["lines"],
            "mib": _mib(best["bytes"]),
            "seconds": round(best["seconds"], 2),
            "lines_per_s": round(rate),
            "mib_per_s": round(_mib(best["bytes"]) / best["seconds"], 1),
            "floor_plain_copy_seconds": round(floor_s, 2),
            "floor_plain_copy_mib_per_s": round(_mib(best["bytes"]) / floor_s, 1),
            "target_lines_per_s": TARGETS["backup_lines_per_s"],
            "met": rate >= TARGETS["backup_lines_per_s"],
            "load": os.getloadavg()[0],
        }
    )


def _writer(
    state_dir: str,
    n: int,
    buf: list[JournalRecord],
    batch: int,
    every_s: float,
    go: Any,
    stop: Any,
    out: Any,
) -> None:
    src = Source()
    src.n, src.buf = n, buf
    samples: list[tuple[float, float, int]] = []  # (wall start, seconds, last seq)
    with JournalStore.open(Path(state_dir), DEPLOYMENT, fsync=True) as store:
        go.set()
        next_at = time.perf_counter()
        while not stop.is_set():
            records = src.take(batch)
            t0 = time.perf_counter()
            store.commit(records)
            samples.append((time.time(), time.perf_counter() - t0, store.last_seq))
            next_at += every_s
            time.sleep(max(0.0, next_at - time.perf_counter()))
    out.send(samples)


def _phase(samples: list[tuple[float, float, int]], start: float, end: float) -> dict[str, Any]:
    ms = [s * 1000 for t, s, _ in samples if start <= t < end]
    if not ms:
        return {"commits": 0}
    return {
        "commits": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(pct(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


def with_writer(state_dir: Path, root: Path, src: Source, args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_writer,
        args=(str(state_dir), src.n, src.buf, args.batch, args.every_ms / 1000, go, stop, send),
    )
    proc.start()
    go.wait(120)
    alone_from = time.time()
    time.sleep(args.floor_s)
    backup_from = time.time()
    result = backup(state_dir, root / "during", deployment=DEPLOYMENT, pause_s=args.pause_ms / 1000)
    backup_to = time.time()
    time.sleep(0.5)
    stop.set()
    samples = recv.recv()
    proc.join()
    floor = _phase(samples, alone_from, backup_from)
    during = _phase(samples, backup_from, backup_to)
    seq_at = [q for t, _, q in samples if t < backup_to]
    rise = during.get("p99_ms", 0) / floor["p99_ms"] if floor.get("p99_ms") else None
    emit(
        {
            "bench": "backup_writer",
            "batch": args.batch,
            "every_ms": args.every_ms,
            "pause_ms": args.pause_ms,
            "backup_seconds": round(result.elapsed_s, 2),
            "backup_lines": result.last_seq,
            "backup_lines_per_s": round(result.last_seq / result.elapsed_s),
            "writer_seq_at_backup_end": seq_at[-1] if seq_at else None,
            "jsonl_rebuilt_lines": result.last_seq - result.jsonl_copied_seq,
            "commit_during_backup": during,
            "commit_floor_no_backup": floor,
            "p99_rise": None if rise is None else round(rise, 2),
            "target_p99_rise": TARGETS["p99_commit_rise"],
            "met": None if rise is None else rise <= TARGETS["p99_commit_rise"],
            "load": os.getloadavg()[0],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--every-ms", type=float, default=20.0)
    parser.add_argument("--floor-s", type=float, default=10.0)
    parser.add_argument(
        "--pause-ms", type=float, default=STEP_PAUSE_S * 1000, help="between backup steps"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tradeplane-bench-backup-"))
    try:
        state_dir = root / "state"
        src = Source()
        built_s = build(state_dir, src, args.lines)
        emit({"bench": "backup_build", "lines": args.lines, "seconds": round(built_s, 1)})
        stopped(state_dir, root)
        with_writer(state_dir, root, src, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
