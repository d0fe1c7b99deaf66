"""Every Ray call the supervisor makes goes through here, its journaling included, so the
supervisor runs against a fake in unit tests (``tests/unit/supervisor/fakes.py``)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import ray
from ray.exceptions import RayActorError

from tradeplane.actors.common import Outbox, Peers, Remote, call_journal
from tradeplane.cluster import kv, names
from tradeplane.cluster.nodes import cluster_nodes
from tradeplane.cluster.placement import NodeInfo
from tradeplane.core.run_record import RunRecord
from tradeplane.protocol.api import A, ChildApi, JournalApi, Method, P, R
from tradeplane.protocol.roles import ROLE_JOURNAL, Role, actor_name
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

    async def attach_all(self, roles: list[str]) -> dict[str, bool]:
        """``attach`` for each of ``roles``, all at once."""
        ...

    def create_standby(self, name: str, node_id: str | None, warm: tuple[str, ...]) -> None:
        """A standby named ``name`` (on ``node_id`` when given: hard), importing ``warm``."""
        ...

    async def standby_info(self, name: str) -> dict[str, Any]:
        """The standby's ``standby_info`` (answered once its imports are done)."""
        ...

    async def wait_standby_death(self, name: str) -> str: ...

    async def promote(self, spec: ChildSpec, name: str, *, epoch: int = 0, **init: Any) -> None:
        """The standby ``name`` becomes ``spec``'s role: built there, then the role's current
        actor for everyone who looks it up (``cluster.names``)."""
        ...

    async def kill_standby(self, name: str) -> None:
        """Kill it and wait until Ray has it dead."""
        ...

    def forget_standby(self, name: str) -> None: ...

    def stray_standbys(self, roles: list[str]) -> list[str]:
        """Standbys Ray knows for this deployment that play none of ``roles``."""
        ...

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
        self.names: dict[str, str] = {}  # role -> its current actor's name
        self.standbys: dict[str, Any] = {}  # name -> handle, until promoted
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
        # Played by its own name again (after a promoted standby died): said before it exists.
        names.set_current(self.deployment, spec.role, None)
        self.handles[spec.role] = spec.create(node_id, epoch=epoch, **init)
        self.names[spec.role] = actor_name(self.deployment, spec.role)

    def create_standby(self, name: str, node_id: str | None, warm: tuple[str, ...]) -> None:
        from tradeplane.actors.standby import StandbyActor
        from tradeplane.supervisor.specs import standby_options

        options = standby_options(self.deployment, name, node_id)
        self.standbys[name] = StandbyActor.options(**options).remote(self.deployment, name, warm)

    async def standby_info(self, name: str) -> dict[str, Any]:
        handle = self.standbys.get(name)
        if handle is None:
            raise ChildGone(f"standby {name}: no handle")
        try:
            info: dict[str, Any] = await handle.standby_info.remote()
        except RayActorError as exc:
            raise ChildGone(f"standby {name}: {type(exc).__name__}") from exc
        return info

    async def wait_standby_death(self, name: str) -> str:
        handle = self.standbys.get(name)
        if handle is None:
            return "no handle"
        try:
            await handle.wait_for_death.remote()
        except RayActorError as exc:
            return _death_cause(exc)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return "returned"

    async def promote(self, spec: ChildSpec, name: str, *, epoch: int = 0, **init: Any) -> None:
        from tradeplane.supervisor.specs import class_path_of

        handle = self.standbys.pop(name, None)
        if handle is None:
            raise ChildGone(f"standby {name}: no handle")
        try:
            await handle.promote.remote(
                spec.role, class_path_of(spec.actor_class), spec.args, epoch, init
            )
        except RayActorError as exc:
            raise ChildGone(f"standby {name}: {type(exc).__name__}") from exc
        # Only now may anyone find it: a call before its role object exists would be refused.
        names.set_current(self.deployment, spec.role, name)
        self.handles[spec.role] = handle
        self.names[spec.role] = name

    async def kill_standby(self, name: str) -> None:
        handle = self.standbys.pop(name, None) or names.named(name)
        if handle is None:
            return
        ray.kill(handle, no_restart=True)
        await self._wait_name_free(name)

    def forget_standby(self, name: str) -> None:
        self.standbys.pop(name, None)

    def stray_standbys(self, roles: list[str]) -> list[str]:
        playing = {names.current_name(self.deployment, role) for role in roles}
        return [n for n in names.standby_names(self.deployment) if n not in playing]

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
        name = names.current_name(self.deployment, role)
        handle = names.named(name)
        if handle is None:
            return False
        self.handles[role], self.names[role] = handle, name
        return True

    async def attach_all(self, roles: list[str]) -> dict[str, bool]:
        # Each lookup is two blocking round trips to Ray's control plane (the role's current
        # name, then its actor): one role after another they added up to most of a re-attach.
        found = await asyncio.gather(*(asyncio.to_thread(self.attach, role) for role in roles))
        return dict(zip(roles, found, strict=True))

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
        name = self.names.pop(role, None) or names.current_name(self.deployment, role)
        if handle is None:
            handle = names.named(name)
            if handle is None:
                return
        ray.kill(handle, no_restart=True)
        await self._wait_name_free(name)

    async def _wait_name_free(self, name: str, timeout_s: float = 10.0) -> None:
        """Until Ray has the actor named ``name`` dead: its name is reusable only then, and
        no standby is promoted to its role before."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if names.named(name) is None:
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
