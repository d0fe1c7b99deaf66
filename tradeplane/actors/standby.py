"""A standby: a Ray worker process started ahead of need with the runtime already imported, that
becomes whichever role dies next on its node. Promoting it skips what a restart otherwise waits
for (a fresh process, then importing the runtime), which is most of a restart.

Until it is promoted a standby holds nothing: no role object, no venue connection, no journal
store, no peers. Its name is never a role's current name (``cluster.names``), so nobody sends it
anything; a call that reaches it anyway is refused and counted (``standby_info``), never acted
on. ``promote`` builds the role's object in this process exactly as Ray would have built it in a
new one (same class, same arguments, the epoch of the new incarnation), after the supervisor
has seen the previous incarnation dead and fenced it at the journal.

One class serves every role: it has a forwarding method for each method any role serves, so a
handle to it works wherever a handle to the role's own class did.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil
import ray

from tradeplane.actors.broker import BrokerActor
from tradeplane.actors.common import process_cost
from tradeplane.actors.feed import FeedActor
from tradeplane.actors.journal import JournalActor
from tradeplane.actors.reconciler import ReconcilerActor
from tradeplane.actors.risk import RiskActor
from tradeplane.actors.strategy import StrategyActor
from tradeplane.actors.telemetry import TelemetryActor
from tradeplane.actors.venue import SimVenueActor

log = logging.getLogger("tradeplane.standby")

ROLE_CLASSES: tuple[Any, ...] = (
    JournalActor,
    TelemetryActor,
    SimVenueActor,
    BrokerActor,
    RiskActor,
    ReconcilerActor,
    StrategyActor,
    FeedActor,
)
# Answered by the standby itself, promoted or not (the supervisor watches and locates it).
OWN_METHODS = frozenset({"promote", "standby_info", "wait_for_death", "node_id", "ping"})


class NotPromoted(RuntimeError):
    """A role's method was called on a standby that plays no role yet."""


def plain_class(actor_class: Any) -> type:
    """The user class behind a ``@ray.remote`` actor class (itself when it is plain)."""
    return getattr(actor_class, "__ray_actor_class__", actor_class)


def class_path(actor_class: Any) -> str:
    cls = plain_class(actor_class)
    return f"{cls.__module__}:{cls.__qualname__}"


def load_class(path: str) -> type:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return plain_class(obj)


def served_methods(classes: Iterable[type]) -> list[str]:
    """Every public method any of ``classes`` serves (a forwarder awaits what it returns only
    when it is awaitable, so a name served plainly by one role and ``async`` by another works)."""
    out: set[str] = set()
    for cls in classes:
        for name in dir(cls):
            if name.startswith("_") or name in OWN_METHODS:
                continue
            # Static and class methods, properties: never called through a handle.
            if inspect.isfunction(inspect.getattr_static(cls, name)):
                out.add(name)
    return sorted(out)


def _forward(name: str) -> Callable[..., Any]:
    async def method(self: StandbyHost, *args: Any, **kwargs: Any) -> Any:
        bound = self._methods.get(name)
        if bound is None:
            self.refused += 1
            role = self.role or "no role (not promoted)"
            raise NotPromoted(f"standby {self.name}: {name} refused, it plays {role}")
        result = bound(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    method.__name__ = method.__qualname__ = name
    return method


class StandbyHost:
    """A standby (see the module's doc). ``warm``: modules to import now that the roles would
    otherwise import while starting (a venue client, an exporter)."""

    def __init__(self, deployment: str, name: str, warm: tuple[str, ...] = ()) -> None:
        started = time.perf_counter()
        self.deployment = deployment
        self.name = name
        for module in warm:
            try:
                importlib.import_module(module)
            except ImportError:  # an optional extra not installed: the role would fail anyway
                log.debug("standby: %s not importable", module)
        self.role: str | None = None
        self.impl: Any = None
        self._methods: dict[str, Callable[..., Any]] = {}
        self.refused = 0
        self.promoted_ts: float | None = None
        self.warm_s = time.perf_counter() - started
        self._process = psutil.Process(os.getpid())
        self._never: Any = None

    async def promote(
        self, role: str, class_ref: str, args: tuple[Any, ...], epoch: int, init: dict[str, Any]
    ) -> dict[str, Any]:
        """Become ``role``: build its object here as Ray builds a new actor (same arguments,
        this incarnation's ``epoch`` and ``init``). Once only; an error leaves no role behind
        (the supervisor kills this standby and creates the role afresh)."""
        if self.role is not None:
            raise RuntimeError(f"standby {self.name} already plays {self.role}")
        started = time.perf_counter()
        cls = load_class(class_ref)
        impl = cls(*args, epoch=epoch, **init)
        self.impl, self.role, self.promoted_ts = impl, role, time.time()
        self._methods = {name: getattr(impl, name) for name in served_methods([cls])}
        return {"role": role, "promote_s": round(time.perf_counter() - started, 4)}

    async def standby_info(self) -> dict[str, Any]:
        """What the standby costs and whether it was ever called before its promotion."""
        return {
            "name": self.name,
            "role": self.role,
            "refused_calls": self.refused,
            **process_cost(self._process),
            "node_id": str(ray.get_runtime_context().get_node_id()),
            "warm_s": round(self.warm_s, 3),
        }

    async def wait_for_death(self) -> None:
        """Never returns while the process lives (its death is seen the moment Ray sees it)."""
        import asyncio

        if self._never is None:
            self._never = asyncio.Event()
        await self._never.wait()

    async def node_id(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    async def ping(self, sent_ts: float) -> float:
        return time.time() - sent_ts


for _name in served_methods(plain_class(c) for c in ROLE_CLASSES):
    setattr(StandbyHost, _name, _forward(_name))

StandbyActor = ray.remote(StandbyHost)
