"""Plumbing shared by the actor shells: typed handles, peer lookup, and at-least-once delivery.

Delivery between actors is at-least-once with idempotent receivers: a sender keeps each message
until the receiving actor has acknowledged it (its method returned) and resends what a dead
receiver never acknowledged once the supervisor says the peer is back. Every receiver
de-duplicates (bars by open time, intents and orders by id, fills by fill id, journal records by
event id), so a resend can never double anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic

import psutil
import ray
from ray import ObjectRef
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from tenacity import AsyncRetrying, retry_if_result, wait_exponential, wait_fixed

from tradeplane.actors.gc_tuning import gc_pauses
from tradeplane.cluster.names import resolve_actor
from tradeplane.core.errors import StaleEpochError
from tradeplane.core.fencing import Stamp
from tradeplane.core.lease import SupervisionLease
from tradeplane.core.retry import Sleep, Wait, retrying
from tradeplane.protocol.api import A, ChildApi, JournalApi, Method, P, R
from tradeplane.protocol.roles import NAMESPACE, ROLE_JOURNAL, Role, actor_name, child_role

log = logging.getLogger("tradeplane.actors")


class Remote(Generic[A]):
    """A Ray actor handle typed by the interface of the actor behind it."""

    __slots__ = ("handle",)

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def call(self, method: Method[A, P, R], *args: P.args, **kwargs: P.kwargs) -> ObjectRef[R]:
        ref: ObjectRef[R] = getattr(self.handle, method.__name__).remote(*args, **kwargs)
        return ref


def child_options(deployment: str, role: str, **extra: Any) -> dict[str, Any]:
    """Children are detached and named so a supervisor crash does not take the pipeline down;
    Ray's own restarts are off so the supervisor's policy decides."""
    opts: dict[str, Any] = {
        "name": actor_name(deployment, role),
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "max_restarts": 0,
        "max_task_retries": 0,
        "num_cpus": 0,
        "max_concurrency": 1000,
    }
    opts.update(extra)
    return opts


class Peers:
    """Handles to sibling actors by role, resolved to whichever actor plays the role now
    (``cluster.names``: a promoted standby keeps its own name) and refreshed after a restart.

    ``writer``: this actor's (role, epoch), stamped on everything it journals. ``on_fenced`` is
    called when the journal refuses that epoch (the actor has been replaced)."""

    def __init__(
        self,
        deployment: str,
        writer: Stamp | None = None,
        on_fenced: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.deployment = deployment
        self.writer = writer
        self.on_fenced = on_fenced
        self._handles: dict[str, Any] = {}

    def stamps(self, *vouched: Stamp | None) -> list[Stamp]:
        """The stamps of a journal write: this writer's, and those it acts for."""
        return [s for s in (self.writer, *vouched) if s is not None]

    def fenced(self, exc: BaseException) -> None:
        """A journal call failed with ``exc``: when it refused this writer's own epoch, this
        actor has been replaced (``on_fenced``). A refused epoch of someone it acted for (a
        replaced risk's approval) only fails that one call."""
        role = fenced_role(exc)
        if role is None or self.on_fenced is None or self.writer is None:
            return
        if role in ("", self.writer[0]):
            self.on_fenced(exc)

    def remote(self, role: Role[A]) -> Remote[A] | None:
        """The typed handle of ``role``'s actor; None while it has none (being restarted)."""
        handle = self.get(role)
        return None if handle is None else Remote(handle)

    def get(self, role: str) -> Any | None:
        handle = self._handles.get(role)
        if handle is None:
            handle = resolve_actor(self.deployment, role)
            if handle is None:
                return None
            self._handles[role] = handle
        return handle

    def forget(self, role: str | None = None) -> None:
        if role is None:
            self._handles.clear()
        else:
            self._handles.pop(role, None)


@dataclass(slots=True)
class _Message:
    role: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Outbox:
    """Fire-and-forget sends that survive a receiver's death.

    ``inflight_limit`` bounds unacknowledged messages per receiver: past it ``send`` waits
    (backpressure) and the wait is counted, so memory does not grow without bound.
    """

    def __init__(self, peers: Peers, *, inflight_limit: int = 256, retry_limit: int = 50_000):
        self.peers = peers
        self.inflight_limit = inflight_limit
        self._inflight: dict[str, int] = {}
        self._retry: dict[str, deque[_Message]] = {}
        self._retry_limit = retry_limit
        self._space: dict[str, asyncio.Event] = {}
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.backpressure_waits = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._retrying: set[str] = set()
        self._abandoned: set[str] = set()
        self.sleep: Sleep = asyncio.sleep  # tests inject their own

    def inflight(self, role: str | None = None) -> int:
        if role is not None:
            return self._inflight.get(role, 0)
        return sum(self._inflight.values())

    def has_room(self, role: str) -> bool:
        """``send`` to ``role`` would not wait (below its in-flight limit)."""
        return self._inflight.get(role, 0) < self.inflight_limit

    def pending_retries(self) -> int:
        return sum(len(q) for q in self._retry.values())

    def journal(self, records: Sequence[Any], state: Sequence[Any] = ()) -> None:
        """Append to the journal without waiting, stamped with this writer's epoch."""
        self.send_nowait(ROLE_JOURNAL, JournalApi.append, records, state, self.peers.stamps())

    async def send(
        self, role: Role[A], method: Method[A, P, Any], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        while self._inflight.get(role, 0) >= self.inflight_limit:
            self.backpressure_waits += 1
            event = self._space.setdefault(role, asyncio.Event())
            event.clear()
            await event.wait()
        self.send_nowait(role, method, *args, **kwargs)

    def send_nowait(
        self, role: Role[A], method: Method[A, P, Any], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        if role in self._abandoned:
            self.dropped += 1
            return
        msg = _Message(role, method.__name__, args, kwargs)
        if self._retry.get(role):
            self._park(msg)  # keep order: older undelivered messages go first
            return
        self._dispatch(msg)

    def _dispatch(self, msg: _Message) -> None:
        handle = self.peers.get(msg.role)
        if handle is None:
            self._park(msg)
            return
        try:
            ref = getattr(handle, msg.method).remote(*msg.args, **msg.kwargs)
        except RayActorError:
            self.peers.forget(msg.role)
            self._park(msg)
            return
        self.sent += 1
        self._inflight[msg.role] = self._inflight.get(msg.role, 0) + 1
        task = asyncio.get_running_loop().create_task(self._await(msg, ref))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _await(self, msg: _Message, ref: Any) -> None:
        try:
            await ref
        except (RayActorError, GetTimeoutError):
            self.failed += 1
            self.peers.forget(msg.role)
            self._park(msg)
        except RayTaskError as exc:
            # The receiver raised: it is alive but refused; resending would loop forever.
            self.failed += 1
            log.error("%s.%s raised: %s", msg.role, msg.method, exc)
            self.peers.fenced(exc)
        finally:
            self._inflight[msg.role] -= 1
            event = self._space.get(msg.role)
            if event is not None:
                event.set()

    def _park(self, msg: _Message) -> None:
        queue = self._retry.setdefault(msg.role, deque())
        if len(queue) >= self._retry_limit:
            queue.popleft()
            self.dropped += 1
        queue.append(msg)
        if msg.role not in self._retrying:
            # The supervisor's rewire usually resends first; this loop covers a call that fails
            # after the rewire came, which would otherwise hold every later message back.
            self._retrying.add(msg.role)
            task = asyncio.get_running_loop().create_task(self._retry_until_empty(msg.role))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _retry_until_empty(self, role: str, first_delay_s: float = 0.25) -> None:
        # Just parked: wait first, then resend until nothing is left (a resend may park again).
        until_empty = AsyncRetrying(
            wait=wait_exponential(first_delay_s, max=5.0),
            retry=retry_if_result(bool),
            sleep=self.sleep,
        )
        try:
            async for attempt in until_empty:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self.resend(role)
                outcome = attempt.retry_state.outcome
                if outcome is not None and not outcome.failed:  # a resend that raised ends us
                    attempt.retry_state.set_result(bool(self._retry.get(role)))
        finally:
            self._retrying.discard(role)

    def abandon(self, role: str) -> int:
        """``role`` will not come back (a suspended strategy): drop what waits for it and
        everything sent to it from now on, so nothing piles up for a receiver that is gone."""
        self._abandoned.add(role)
        dropped = len(self._retry.pop(role, ()))
        self.dropped += dropped
        return dropped

    def resend(self, role: str | None = None) -> int:
        """Re-dispatch parked messages, oldest first (called when a peer is back)."""
        roles = [role] if role is not None else list(self._retry)
        count = 0
        for r in roles:
            self.peers.forget(r)
            queue = self._retry.pop(r, deque())
            while queue:
                msg = queue.popleft()
                if self.peers.get(r) is None:
                    queue.appendleft(msg)
                    self._retry[r] = queue
                    break
                self._dispatch(msg)
                count += 1
        return count

    def stats(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "inflight": self.inflight(),
            "pending_retries": self.pending_retries(),
            "backpressure_waits": self.backpressure_waits,
        }


class SupervisedActor:
    """Base of every child actor: what the supervisor calls on all of them."""

    _never: asyncio.Event | None = None

    @staticmethod
    def protect_secrets(cfg: Any) -> int:
        """Call first in ``__init__``: register ``cfg``'s secret values with this worker
        process's redactor and redact its logs, so nothing it journals or logs carries them.
        ``cfg`` is a ``TradeplaneConfig`` (or any config model). Returns how many values were
        new; with none, nothing is installed and redaction costs nothing."""
        from tradeplane.config.loading import secret_values
        from tradeplane.core.redact import install_log_redaction, register_secrets

        values = secret_values(cfg)
        if not values:
            return 0
        fresh = register_secrets(values)
        install_log_redaction()
        return fresh

    async def wait_for_death(self) -> None:
        """Never returns while the actor lives, so the caller learns of its death the moment
        Ray does (no polling delay)."""
        if self._never is None:
            self._never = asyncio.Event()
        await self._never.wait()

    async def node_id(self) -> str:
        """The Ray node this actor runs on (to place a sibling beside it)."""
        return str(ray.get_runtime_context().get_node_id())

    async def metrics_snapshot(self) -> list[Any]:
        """This actor's OpenTelemetry metrics as plain points (``telemetry.metrics``), for the
        deployment's Prometheus endpoint; empty for an actor that keeps none."""
        metrics = getattr(self, "metrics", None)
        return metrics.snapshot() if metrics is not None else []

    async def ping(self, sent_ts: float) -> float:
        """One-way delivery delay of this call in seconds (same host clock): a latency probe."""
        return time.time() - sent_ts

    async def probe(self, role: str, count: int = 50, gap_s: float = 0.01) -> list[float]:
        """One-way delays (ms) of ``count`` pings from this actor to a sibling: latency probe."""
        peers: Peers | None = getattr(self, "peers", None)
        sibling = peers.remote(child_role(role)) if peers is not None else None
        if sibling is None:
            return []
        out = []
        for _ in range(count):
            out.append(await sibling.call(ChildApi.ping, time.time()) * 1000.0)
            await asyncio.sleep(gap_s)
        return out

    async def forget_peer(self, role: str) -> int:
        """A sibling was suspended for good: stop sending to it (see ``Outbox.abandon``)."""
        outbox: Outbox | None = getattr(self, "outbox", None)
        return outbox.abandon(role) if outbox is not None else 0

    async def rewire(self, role: str | None = None) -> int:
        """A sibling was restarted: drop its stale handle and resend what it never got."""
        peers: Peers | None = getattr(self, "peers", None)
        outbox: Outbox | None = getattr(self, "outbox", None)
        if peers is not None:
            peers.forget(role)
        return outbox.resend(role) if outbox is not None else 0


def fenced_role(exc: BaseException) -> str | None:
    """The role whose epoch the journal refused, when a remote call failed for that reason."""
    found: str | None = None
    for _ in range(16):
        if isinstance(exc, StaleEpochError):
            found = getattr(exc, "role", "") or found or ""
        cause = getattr(exc, "cause", None)
        if not isinstance(cause, BaseException) or cause is exc:
            break
        exc = cause
    return found


def stop_replaced_actor(exc: BaseException) -> None:
    """``on_fenced`` of every child: it has been replaced, so it ends its own process at once
    (nothing it holds may reach the venue or the journal any more). Never retried."""
    log.critical("this actor has been replaced and stops: %s", exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(3)


def child_peers(deployment: str, role: str, epoch: int) -> Peers:
    """A child's peers: its journal writes carry (role, epoch); refused, it stops itself."""
    return Peers(deployment, (role, int(epoch)), stop_replaced_actor)


class _JournalAway(Exception):
    """No handle to the journal right now (being restarted): try again."""


async def _journal_call(
    peers: Peers, method: Method[JournalApi, P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    journal = peers.remote(ROLE_JOURNAL)
    if journal is None:
        raise _JournalAway
    try:
        return await journal.call(method, *args, **kwargs)
    except RayActorError:
        peers.forget(ROLE_JOURNAL)
        raise
    except RayTaskError as exc:
        peers.fenced(exc)
        raise


async def _until_journal_back(
    peers: Peers,
    wait: Wait,
    retry_s: float,
    method: Method[JournalApi, P, R],
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    from tradeplane.core.errors import OperationalError

    # The usual case first, outside tenacity (it costs tens of microseconds a call, and every
    # order's journaling is on the tick-to-order path). After a failure: one more try at once,
    # with a fresh handle, then the waits, for up to ``retry_s``.
    try:
        return await _journal_call(peers, method, *args, **kwargs)
    except (RayActorError, _JournalAway):
        pass
    policy = retrying(wait, on=(RayActorError, _JournalAway), give_up_after_s=retry_s)
    try:
        result: R = await policy(_journal_call, peers, method, *args, **kwargs)
    except (RayActorError, _JournalAway) as exc:
        raise OperationalError(f"journal unavailable for {retry_s:.0f}s") from exc
    return result


async def call_journal(
    peers: Peers,
    records: list[Any],
    state: list[Any] | None = None,
    *,
    retry_s: float = 30.0,
    vouched: Sequence[Stamp] = (),
) -> list[int]:
    """Append and wait for the commit, retrying across a journal restart (appends are idempotent
    by event id). Raises ``OperationalError`` when the journal stays away for ``retry_s``, and
    ``StaleEpochError`` at once when this writer (or one of ``vouched``, whose decision it
    carries out) has been replaced."""
    return await _until_journal_back(
        peers,
        wait_exponential(0.05, max=1.0),
        retry_s,
        JournalApi.append,
        records,
        state or [],
        peers.stamps(*vouched),
    )


async def query_journal(peers: Peers, name: str, *, retry_s: float = 30.0, **kwargs: Any) -> Any:
    return await _until_journal_back(
        peers, wait_fixed(0.1), retry_s, JournalApi.query, name, **kwargs
    )


def spawn(tasks: set[asyncio.Task[Any]], coro: Any) -> asyncio.Task[Any]:
    """Start a background task and keep a reference so it is not garbage-collected."""
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


_PROCESS: Any = None


def process_cost(proc: Any) -> dict[str, Any]:
    """pid, resident memory and CPU time (user + system) of ``proc`` (a ``psutil.Process``):
    what an idle standby costs, read by itself or by a process beside it."""
    with proc.oneshot():
        times = proc.cpu_times()
        return {
            "pid": proc.pid,
            "rss_bytes": proc.memory_info().rss,
            "cpu_s": round(times.user + times.system, 3),
        }


def process_info() -> dict[str, Any]:
    """pid, resident memory and garbage-collector pauses of this actor's process, for
    heartbeats and benchmarks."""
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = psutil.Process(os.getpid())
    return {
        "pid": _PROCESS.pid,
        "rss_bytes": _PROCESS.memory_info().rss,
        "gc": gc_pauses().summary(),
    }


async def watch_lease(lease: SupervisionLease, role: str) -> None:
    """Says, once per lapse, that ``role`` has gone without its supervisor: the operator reads
    it in this node's logs (the journal is on the state node, maybe the very node lost)."""
    log = logging.getLogger("tradeplane.lease")
    while True:
        await asyncio.sleep(max(0.05, lease.lapse_s / 4))
        if lease.check(time.monotonic()):
            log.error(
                "%s: no call from the supervisor for %.0fs (its node, the state node, or Ray's "
                "control plane lost?): acting on nothing until it is back",
                role,
                lease.silent_s(time.monotonic()),
            )


def renew_lease(lease: SupervisionLease, role: str) -> dict[str, Any]:
    """The supervisor called: renew, say so if it had been away, and report the lease."""
    now = time.monotonic()
    away = lease.renew(now)
    if away is not None:
        logging.getLogger("tradeplane.lease").warning(
            "%s: the supervisor is back after %.0fs", role, away
        )
    return {"lapses": lease.lapses, "away_s": away}
