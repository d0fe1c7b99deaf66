"""Every Ray call the supervisor makes goes through here, so its loop can run against a fake."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import ray
from ray.exceptions import RayActorError

from tradeplane.actors.common import NAMESPACE, actor_name
from tradeplane.supervisor.specs import ChildSpec


class ChildGone(Exception):
    """The child actor is dead or unreachable."""


class ChildAdapter(Protocol):
    def create(self, spec: ChildSpec, node_id: str | None = None) -> None: ...
    def attach(self, role: str) -> bool: ...
    async def call(self, role: str, method: str, *args: Any, timeout_s: float) -> Any: ...
    async def wait_for_death(self, role: str) -> str: ...
    def send(self, role: str, method: str, *args: Any) -> None: ...
    async def kill(self, role: str) -> None: ...


class RayChildAdapter:
    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self.handles: dict[str, Any] = {}

    def create(self, spec: ChildSpec, node_id: str | None = None) -> None:
        self.handles[spec.role] = spec.create(node_id)

    def attach(self, role: str) -> bool:
        try:
            self.handles[role] = ray.get_actor(
                actor_name(self.deployment, role), namespace=NAMESPACE
            )
        except ValueError:
            return False
        return True

    async def call(self, role: str, method: str, *args: Any, timeout_s: float) -> Any:
        handle = self.handles.get(role)
        if handle is None:
            raise ChildGone(f"{role}: no handle")
        try:
            async with asyncio.timeout(timeout_s):
                return await getattr(handle, method).remote(*args)
        except RayActorError as exc:
            raise ChildGone(f"{role}: {type(exc).__name__}") from exc

    async def wait_for_death(self, role: str) -> str:
        """Returns (with the cause) when the child dies; never while it lives."""
        handle = self.handles.get(role)
        if handle is None:
            return "no handle"
        try:
            await handle.wait_for_death.remote()
        except RayActorError as exc:
            return _death_cause(exc)
        except Exception as exc:  # creation failed (e.g. __init__ raised)
            return f"{type(exc).__name__}: {exc}"
        return "returned"

    def send(self, role: str, method: str, *args: Any) -> None:
        handle = self.handles.get(role)
        if handle is not None:
            getattr(handle, method).remote(*args)

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
