"""Every Ray call the supervisor makes goes through here, its journaling included, so the
supervisor runs against a fake in unit tests (``tests/unit/supervisor/fakes.py``)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import ray
from ray.exceptions import RayActorError

from tradeplane.actors.common import Outbox, Peers, Remote, call_journal
from tradeplane.cluster import kv
from tradeplane.cluster.nodes import cluster_nodes
from tradeplane.cluster.placement import NodeInfo
from tradeplane.core.run_record import RunRecord
from tradeplane.protocol.api import A, ChildApi, JournalApi, Method, P, R
from tradeplane.protocol.roles import NAMESPACE, ROLE_JOURNAL, Role, actor_name
from tradeplane.supervisor.specs import ChildSpec


class ChildGone(Exception):
    """The child actor is dead or unreachable."""


class ChildAdapter(Protocol):
    def create(
        self, spec: ChildSpec, node_id: str | None = None, *, epoch: int = 0, **init: Any
    ) -> None: ...
    def read_run(self) -> RunRecord | None:
        """This deployment's run record in Ray's key-value store (None: none, or unreadable)."""
        ...

    def update_run(self, run_id: str, **changes: Any) -> None:
        """Change fields of ``run_id``'s run record (see ``cluster.kv.update_run``)."""
        ...

    def attach(self, role: str) -> bool: ...
    async def call(
        self,
        timeout_s: float,
        role: Role[A],
        method: Method[A, P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """``method`` on ``role``'s actor, answered within ``timeout_s`` (``TimeoutError``), or
        ``ChildGone`` when the actor is dead or has no handle."""
        ...

    async def wait_for_death(self, role: str) -> str: ...

    def send(
        self, role: Role[A], method: Method[A, P, Any], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Fire and forget (``rewire``, ``forget_peer``): nothing is waited for."""
        ...

    async def kill(self, role: str) -> None: ...

    async def journal(self, records: list[Any], state: list[Any], *, retry_s: float) -> None:
        """Append and wait for the commit, across a journal restart; raises
        ``OperationalError`` when the journal stays away for ``retry_s``."""
        ...

    def append(self, records: list[Any], state: list[Any]) -> None:
        """Append without waiting: kept and resent until the journal acknowledges it."""
        ...

    def resend(self, role: str) -> None:
        """``role`` is back: resend what the supervisor sent it and it never acknowledged."""
        ...

    def abandon(self, role: str) -> None:
        """``role`` will not come back: drop what waits for it."""
        ...

    def inflight(self) -> int:
        """Sends dispatched and not yet acknowledged."""
        ...

    async def nodes(self) -> list[NodeInfo]:
        """Ray's node table (dead nodes included); raises when the control plane is away."""
        ...

    def undelivered(self) -> int:
        """Sends not yet acknowledged (in flight or waiting to be resent)."""
        ...


class RayChildAdapter:
    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self.handles: dict[str, Any] = {}
        self.peers = Peers(deployment)
        self.outbox = Outbox(self.peers)
        self._nodes_read: asyncio.Future[list[NodeInfo]] | None = None

    async def journal(self, records: list[Any], state: list[Any], *, retry_s: float) -> None:
        await call_journal(self.peers, records, state, retry_s=retry_s)

    def append(self, records: list[Any], state: list[Any]) -> None:
        self.outbox.send_nowait(ROLE_JOURNAL, JournalApi.append, records, state)

    def resend(self, role: str) -> None:
        self.outbox.resend(role)

    def abandon(self, role: str) -> None:
        self.outbox.abandon(role)

    def inflight(self) -> int:
        return self.outbox.inflight()

    def undelivered(self) -> int:
        return self.outbox.inflight() + self.outbox.pending_retries()

    def create(
        self, spec: ChildSpec, node_id: str | None = None, *, epoch: int = 0, **init: Any
    ) -> None:
        self.handles[spec.role] = spec.create(node_id, epoch=epoch, **init)

    def update_run(self, run_id: str, **changes: Any) -> None:
        kv.update_run(self.deployment, run_id, **changes)

    async def nodes(self) -> list[NodeInfo]:
        # A blocking call to the control plane, off the event loop and bounded; with the head
        # away one read may block for a long time: the next waits for it, never a second thread.
        if self._nodes_read is None or self._nodes_read.done():
            self._nodes_read = asyncio.ensure_future(asyncio.to_thread(cluster_nodes))
        async with asyncio.timeout(5.0):
            return await asyncio.shield(self._nodes_read)

    def read_run(self) -> RunRecord | None:
        try:
            return kv.get_run(self.deployment)
        except Exception:
            # Unreadable is the same as unknown here: the caller then adopts nothing.
            return None

    def attach(self, role: str) -> bool:
        try:
            self.handles[role] = ray.get_actor(
                actor_name(self.deployment, role), namespace=NAMESPACE
            )
        except ValueError:
            return False
        return True

    async def call(
        self,
        timeout_s: float,
        role: Role[A],
        method: Method[A, P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        handle = self.handles.get(role)
        if handle is None:
            raise ChildGone(f"{role}: no handle")
        child: Remote[A] = Remote(handle)
        try:
            async with asyncio.timeout(timeout_s):
                return await child.call(method, *args, **kwargs)
        except RayActorError as exc:
            raise ChildGone(f"{role}: {type(exc).__name__}") from exc

    async def wait_for_death(self, role: str) -> str:
        """Returns (with the cause) when the child dies; never while it lives."""
        handle = self.handles.get(role)
        if handle is None:
            return "no handle"
        try:
            await Remote[ChildApi](handle).call(ChildApi.wait_for_death)
        except RayActorError as exc:
            return _death_cause(exc)
        except Exception as exc:  # creation failed (e.g. __init__ raised)
            return f"{type(exc).__name__}: {exc}"
        return "returned"

    def send(
        self, role: Role[A], method: Method[A, P, Any], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        handle = self.handles.get(role)
        if handle is not None:
            Remote[A](handle).call(method, *args, **kwargs)

    async def kill(self, role: str) -> None:
        handle = self.handles.pop(role, None)
        if handle is None:
            try:
                handle = ray.get_actor(actor_name(self.deployment, role), namespace=NAMESPACE)
            except ValueError:
                return
        ray.kill(handle, no_restart=True)
        await self._wait_name_free(role)

    async def _wait_name_free(self, role: str, timeout_s: float = 10.0) -> None:
        """A named actor's name is reusable only once Ray has marked it dead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                ray.get_actor(actor_name(self.deployment, role), namespace=NAMESPACE)
            except ValueError:
                return
            await asyncio.sleep(0.02)


def _death_cause(exc: RayActorError) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "creation task" in lines[0] and len(lines) > 1:
        # The first line names the actor's process; the last is the error __init__ raised.
        return f"failed while starting: {lines[-1]}"[:300]
    return lines[0][:300]
