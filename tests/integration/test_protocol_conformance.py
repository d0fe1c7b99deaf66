"""Every actor class answers its interface in ``tradeplane.protocol.api``: each method the
interface names exists on the actor, is async (a Ray actor method awaited remotely), and takes the
same parameters with the same defaults. So a call mypy accepted against the interface cannot fail
in production for a missing method or a mismatched argument. (Imports the actors, so Ray; starts
no cluster.)"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest

from tradeplane.actors.broker import BrokerActor
from tradeplane.actors.feed import FeedActor
from tradeplane.actors.journal import JournalActor
from tradeplane.actors.reconciler import ReconcilerActor
from tradeplane.actors.risk import RiskActor
from tradeplane.actors.strategy import StrategyActor
from tradeplane.actors.telemetry import TelemetryActor
from tradeplane.actors.venue import SimVenueActor
from tradeplane.protocol import api
from tradeplane.supervisor.actor import SupervisorActor

PAIRS: list[tuple[Any, type]] = [
    (JournalActor, api.JournalApi),
    (SimVenueActor, api.VenueApi),
    (BrokerActor, api.BrokerApi),
    (RiskActor, api.RiskApi),
    (StrategyActor, api.StrategyApi),
    (FeedActor, api.FeedApi),
    (ReconcilerActor, api.ReconcilerApi),
    (TelemetryActor, api.TelemetryApi),
    (SupervisorActor, api.SupervisorApi),
]


def interface_methods(iface: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    seen: set[str] = set()
    for cls in iface.__mro__:
        if cls in (Protocol, object) or not getattr(cls, "_is_protocol", False):
            continue
        for name, value in vars(cls).items():
            if inspect.isfunction(value) and not name.startswith("_") and name not in seen:
                seen.add(name)
                yield name, value


def original_class(actor_class: Any) -> type:
    """The class as written, before ``@ray.remote`` wrapped it (Ray adds a tracing kwarg)."""
    modified: type = actor_class.__ray_metadata__.modified_class
    return modified.__mro__[1]


def parameters(fn: Callable[..., Any]) -> str:
    """Names, kinds and defaults (annotations are the type checker's business); Ray's tracing
    hook adds ``_ray_trace_ctx`` to every actor method, which no caller passes."""
    params = inspect.signature(fn).parameters.values()
    return str(
        inspect.Signature(
            [p.replace(annotation=p.empty) for p in params if p.name != "_ray_trace_ctx"]
        )
    )


@pytest.mark.parametrize(("actor_class", "iface"), PAIRS, ids=[i.__name__ for _, i in PAIRS])
def test_actor_class_answers_every_method_of_its_interface_with_the_same_parameters(
    actor_class: Any, iface: type
) -> None:
    cls = original_class(actor_class)
    problems = []
    for name, declared in interface_methods(iface):
        impl = getattr(cls, name, None)
        if impl is None:
            problems.append(f"{name}: missing")
            continue
        if not inspect.iscoroutinefunction(impl):
            problems.append(f"{name}: not async")
        if parameters(impl) != parameters(declared):
            problems.append(f"{name}: {parameters(impl)} != interface {parameters(declared)}")
    assert problems == [], f"{cls.__name__} vs {iface.__name__}: {problems}"


def test_conformance_check_fails_for_a_class_missing_a_method() -> None:
    class Partial:
        async def ready(self) -> dict[str, Any]:
            return {}

    missing = [n for n, _ in interface_methods(api.ReconcilerApi) if not hasattr(Partial, n)]
    assert "run" in missing and "heartbeat" in missing
