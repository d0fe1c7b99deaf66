"""JournalActor: the single writer of a deployment's record, batching appends (group commit).

``append`` returns only after the batch holding the records is committed (and fsynced when
configured), so a sender's outbox keeps the records until they are safe. Every SQLite call runs on
one dedicated thread, so the event loop keeps accepting appends while a batch commits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import ray

from tradeplane.actors.common import SupervisedActor, process_info
from tradeplane.actors.gc_tuning import gc_pauses, settle_after_start_up
from tradeplane.actors.journal_reads import JournalReads
from tradeplane.config.models import JournalConfig, TradeplaneConfig
from tradeplane.config.settings import with_node_credentials
from tradeplane.core.errors import StaleEpochError
from tradeplane.core.fencing import FENCE_SCOPE, FenceTable, Stamp
from tradeplane.core.model import Bar
from tradeplane.core.redact import REDACTOR, Redactor
from tradeplane.core.run_record import JournalIdentity
from tradeplane.journal import queries
from tradeplane.journal.records import JournalRecord, StateWrite
from tradeplane.journal.store import JournalStore
from tradeplane.telemetry.metrics import ActorMetrics

T = TypeVar("T")
log = logging.getLogger("tradeplane.journal")


@dataclass(slots=True)
class _Pending:
    records: Sequence[JournalRecord]
    state: Sequence[StateWrite]
    done: asyncio.Future[list[int]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    queued: float = field(default_factory=time.perf_counter)


# Per batch, where its time went (ms), newest last; read by ``JournalActor.commit_trace``.
COMMIT_TRACE = 4096
TRACE_FIELDS = (
    "ts",  # wall clock when the batch started
    "records",
    "submitting",  # the batch holds an order_submitting (an order waits on it)
    "queued_ms",  # oldest append in the batch queued -> the batch starts
    "handoff_ms",  # handed to the store thread -> it starts (thread wake-up, the GIL)
    "store_ms",  # JournalStore.commit on the store thread
    "sql_commit_ms",  # of which the COMMIT statement (the WAL fsync)
    "resume_ms",  # the store thread done -> the event loop resumes the batch
)


class JournalCore:
    """Batching policy, separate from Ray so it can be exercised directly."""

    def __init__(self, store_factory: Callable[[], JournalStore], cfg: JournalConfig) -> None:
        self.cfg = cfg
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="journal")
        self.store: JournalStore = self._thread.submit(store_factory).result()
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.records = 0
        self.last_commit_ms = 0.0
        self.max_commit_ms = 0.0
        self.errors = 0
        self.trace: deque[tuple[Any, ...]] = deque(maxlen=COMMIT_TRACE)

    async def run_on_store(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def submit(self, records: Sequence[JournalRecord], state: Sequence[StateWrite]) -> _Pending:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._writer())
        pending = _Pending(records, state)
        self._queue.append(pending)
        self._wake.set()
        return pending

    async def _writer(self) -> None:
        delay_s = self.cfg.batch_max_delay_ms / 1000.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            if delay_s and sum(len(p.records) for p in self._queue) < self.cfg.batch_max_records:
                await asyncio.sleep(delay_s)
            while self._queue:
                batch: list[_Pending] = []
                count = 0
                while self._queue and (not batch or count < self.cfg.batch_max_records):
                    p = self._queue.pop(0)
                    batch.append(p)
                    count += len(p.records)
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        records = [r for p in batch for r in p.records]
        state = [s for p in batch for s in p.state]
        t0 = time.perf_counter()
        wall = time.time()
        store = self.store

        def timed_commit() -> tuple[list[int], float, float]:
            started = time.perf_counter()
            seqs = store.commit(records, state)
            return seqs, started, time.perf_counter()

        try:
            seqs, started, ended = await self.run_on_store(timed_commit)
        except Exception as exc:  # a failed commit must reach every waiting caller
            self.errors += 1
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(exc)
            return
        resumed = time.perf_counter()
        elapsed = (resumed - t0) * 1000
        self.trace.append(
            (
                wall,
                len(records),
                any(r.kind == "order_submitting" for r in records),
                (t0 - min(p.queued for p in batch)) * 1000,
                (started - t0) * 1000,
                (ended - started) * 1000,
                store.last_sql_commit_ms,
                (resumed - ended) * 1000,
            )
        )
        self.last_commit_ms, self.max_commit_ms = elapsed, max(self.max_commit_ms, elapsed)
        self.batches += 1
        self.records += len(records)
        i = 0
        for p in batch:
            n = len(p.records)
            if not p.done.done():
                p.done.set_result(seqs[i : i + n])
            i += n

    async def flush(self) -> None:
        while self._queue:
            await asyncio.gather(*(p.done for p in list(self._queue)), return_exceptions=True)

    def close(self) -> None:
        self._thread.submit(self.store.close).result()
        self._thread.shutdown(wait=True)


def redact_batch(
    redactor: Redactor, records: Sequence[JournalRecord], state: Sequence[StateWrite]
) -> tuple[Sequence[JournalRecord], Sequence[StateWrite]]:
    """The batch with secrets masked in every record's data and every state value; records
    that carry none are passed through as they are."""
    out_records = list(records)
    for i, r in enumerate(out_records):
        if _may_hold_secret(redactor, r.data):
            data = redactor.redact_obj(r.data)
            if data is not r.data:
                out_records[i] = dataclasses.replace(r, data=data)
    out_state = list(state)
    for i, w in enumerate(out_state):
        data = redactor.redact_obj(w.data)
        if data is not w.data:
            out_state[i] = dataclasses.replace(w, data=data)
    return out_records, out_state


def _may_hold_secret(redactor: Redactor, data: Any) -> bool:
    """False only when no string in ``data`` can hold a secret: the redactor masks nothing in
    its JSON text. JSON escapes a string character by character, so a secret inside any key or
    value appears in that text in its JSON-escaped form, which the redactor also matches (what
    orjson cannot encode is walked). One encoding and one scan cost a fraction of the walk."""
    try:
        text = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return True
    return redactor.redact(text) != text


@ray.remote
class JournalActor(JournalReads, SupervisedActor):
    """The writer; its ``read_*`` methods (``JournalReads``) serve the CLI from any node."""

    def __init__(
        self,
        deployment: str,
        state_dir: str,
        cfg: JournalConfig | TradeplaneConfig,
        *,
        epoch: int = 0,
        expect: JournalIdentity | None = None,
    ) -> None:
        # Given the whole deployment config, the journal learns its secrets on its own node (as
        # the broker does: they are never actor arguments) and masks them in everything it
        # commits (invariant 8); given only the journal section it cannot.
        if isinstance(cfg, TradeplaneConfig):
            self.protect_secrets(cfg)
            self.protect_secrets(with_node_credentials(cfg)[0])
            cfg = cfg.journal
        self.deployment = deployment
        self.state_dir = Path(state_dir)
        self.cfg = cfg
        # Opening here makes a locked, corrupted or foreign state dir fail the actor's creation,
        # which the supervisor reports instead of trading on; so does a journal that is not the
        # one the running deployment wrote to (``expect``): journal_lost, never a fresh one.
        self.core = JournalCore(
            lambda: JournalStore.open(
                self.state_dir, deployment, fsync=cfg.fsync, expect=expect, epoch=epoch or None
            ),
            cfg,
        )
        self.fences = FenceTable(self.core.store.fences)
        self.refused: dict[str, int] = {}  # writes refused, by the stale role
        self.started_ts = time.time()
        self.metrics = ActorMetrics("journal", deployment)
        core = self.core
        readings: dict[str, tuple[str, str, Callable[[], float]]] = {
            "journal_last_seq": ("Last journal line committed", "1", lambda: core.store.last_seq),
            "journal_records_committed": ("Records committed", "1", lambda: core.records),
            "journal_batches_committed": ("Commits", "1", lambda: core.batches),
            "journal_queue": ("Appends waiting for a commit", "1", lambda: len(core._queue)),
            "journal_last_commit_seconds": (
                "Duration of the last commit",
                "s",
                lambda: core.last_commit_ms / 1000.0,
            ),
            "journal_errors": ("Failed commits", "1", lambda: core.errors),
        }
        for name, (doc, unit, read) in readings.items():
            self.metrics.gauge(name, doc, unit, _observe(read))
        # Recorded bars beside the record, on this (the state) node; pyarrow is loaded only here.
        # A bars directory that cannot be used costs the recording, never the journal: it is
        # said in the heartbeat and the log, and trading goes on.
        self.bar_recording: Any = None
        self.bar_recording_error: str | None = None
        if cfg.bars == "all":
            from tradeplane.actors.bar_recording import BarRecording

            try:
                self.bar_recording = BarRecording(deployment, self.state_dir, cfg)
            except Exception as exc:
                self.bar_recording_error = f"{type(exc).__name__}: {exc}"
                log.error("recorded bars disabled: %s", self.bar_recording_error)

    async def ready(self) -> dict[str, Any]:
        settle_after_start_up()
        return {
            "last_seq": self.core.store.last_seq,
            "state_dir": str(self.state_dir),
            "genesis": self.core.store.genesis,
            "epoch": self.core.store.epoch or 0,
            "max_fence": self.fences.max_epoch(),
        }

    async def append(
        self,
        records: Sequence[JournalRecord],
        state: Sequence[StateWrite] = (),
        stamps: Sequence[Stamp] = (),
    ) -> list[int]:
        """Acknowledged only once committed (and fsynced when configured); concurrent calls
        share one commit, so this stays cheap. Secrets this process knows are masked first.
        ``stamps``: the (role, epoch) of the writer and of whoever it acts for; a replaced
        incarnation's is refused (``StaleEpochError``) before anything is queued."""
        try:
            self.fences.check(stamps)
        except StaleEpochError as exc:
            self.refused[exc.role] = self.refused.get(exc.role, 0) + 1
            raise
        if REDACTOR.active:
            records, state = redact_batch(REDACTOR, records, state)
        pending = self.core.submit(records, state)
        return await pending.done

    async def recorded_open_bars(self) -> list[Bar]:
        """The recorded bars not yet in a closed chunk (``[journal] bars = "all"``): with the
        closed chunks on disk, everything recorded so far."""
        if self.bar_recording is None:
            return []
        bars: list[Bar] = await self.bar_recording.open_chunk()
        return bars

    async def record_bars(self, bars: Sequence[Bar], stamps: Sequence[Stamp] = ()) -> None:
        """Add the feed's bars to the recorded bars (``[journal] bars = "all"``; else ignored).
        Not the journal: a bar here costs no commit, and the open chunk may be lost to a crash
        (refetched after the restart, see ``actors.bar_recording``)."""
        try:
            self.fences.check(stamps)
        except StaleEpochError as exc:
            self.refused[exc.role] = self.refused.get(exc.role, 0) + 1
            raise
        if self.bar_recording is not None:
            await self.bar_recording.record(bars)

    async def fence(self, role: str, epoch: int) -> int:
        """From now on refuse ``role``'s writes stamped below ``epoch`` (in force at once for
        every later append, durable before this returns); returns the fence in force."""
        floor = self.fences.fence(role, epoch)
        write = StateWrite(FENCE_SCOPE, role, {"epoch": floor}, time.time())
        await self.core.submit([], [write]).done
        return floor

    async def flush(self) -> int:
        await self.core.flush()
        return self.core.store.last_seq

    async def query(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run a read from ``tradeplane.journal.queries`` on the writer's connection."""
        if name.startswith("_") or not hasattr(queries, name):
            raise ValueError(f"no journal query named {name!r}")
        fn = getattr(queries, name)
        return await self.core.run_on_store(lambda: fn(self.core.store.conn, *args, **kwargs))

    async def heartbeat(self) -> dict[str, Any]:
        return {
            "role": "journal",
            "ts": time.time(),
            "process": process_info(),
            "last_seq": self.core.store.last_seq,
            "genesis": self.core.store.genesis,
            "epoch": self.core.store.epoch or 0,
            "batches": self.core.batches,
            "records": self.core.records,
            "queued": len(self.core._queue),
            "last_commit_ms": round(self.core.last_commit_ms, 3),
            "max_commit_ms": round(self.core.max_commit_ms, 3),
            "errors": self.core.errors,
            "refused": dict(self.refused),
            "fences": self.fences.as_dict(),
            "recorded_bars": (
                {"error": self.bar_recording_error}
                if self.bar_recording is None
                else self.bar_recording.stats()
            ),
            "paths": {
                "db": str(self.core.store.db_path),
                "jsonl": str(self.core.store.jsonl_path),
            },
        }

    async def commit_trace(self, clear: bool = False) -> dict[str, Any]:
        """Where recent batches' time went (``TRACE_FIELDS``), beside what ran alongside them
        in this process: WAL checkpoints, JSONL syncs and collector pauses, each as (wall-clock
        start, ms). For benchmarks (``bench/pipeline.py``) and for a slow commit's diagnosis."""
        store = self.core.store
        out = {
            "fields": list(TRACE_FIELDS),
            "batches": list(self.core.trace),
            "checkpoints": store.background_runs("checkpoint"),
            "syncs": store.background_runs("sync"),
            "gc": list(gc_pauses().recent),
        }
        if clear:
            self.core.trace.clear()
        return out

    async def close(self) -> int:
        if self.bar_recording is not None:
            await self.bar_recording.close()
        await self.core.flush()
        seq = self.core.store.last_seq
        self.core.close()
        return seq


def _observe(read: Callable[[], float]) -> Callable[[], list[tuple[float, dict[str, str]]]]:
    return lambda: [(float(read()), {})]
