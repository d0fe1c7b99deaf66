"""The standby host without Ray: it refuses (and counts) every role call before its promotion,
then serves the role it was promoted to through the same method names, built with the
incarnation's epoch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tradeplane.actors.broker import BrokerActor
from tradeplane.actors.standby import (
    OWN_METHODS,
    ROLE_CLASSES,
    NotPromoted,
    StandbyHost,
    class_path,
    plain_class,
    served_methods,
)


class FakeRole:
    """Serves two names every role class serves: one ``async``, one plain."""

    def __init__(self, cfg: str, *, epoch: int = 0, expect: Any = None) -> None:
        self.cfg, self.epoch, self.expect = cfg, epoch, expect

    async def heartbeat(self) -> dict[str, Any]:
        return {"cfg": self.cfg, "epoch": self.epoch}

    def ready(self) -> dict[str, Any]:
        return {"expect": self.expect}


def test_served_methods_are_every_role_method_but_the_standbys_own() -> None:
    names = served_methods(plain_class(c) for c in ROLE_CLASSES)
    for expected in ("append", "on_bars", "on_intents", "submit", "heartbeat", "ready", "rewire"):
        assert expected in names
    assert not OWN_METHODS & set(names)
    assert "protect_secrets" not in names  # a static method: never called through a handle
    assert all(hasattr(StandbyHost, name) for name in names)


def test_class_path_names_the_plain_class_behind_a_ray_actor_class() -> None:
    assert class_path(BrokerActor) == "tradeplane.actors.broker:BrokerActor"


def test_role_call_before_promotion_then_refused_and_counted() -> None:
    async def scenario() -> None:
        host = StandbyHost("d", "d/standby/1")
        with pytest.raises(NotPromoted):
            await host.heartbeat()  # type: ignore[attr-defined]
        with pytest.raises(NotPromoted):
            await host.on_bars([])  # type: ignore[attr-defined]
        assert host.refused == 2 and host.role is None

    asyncio.run(scenario())


def test_promoted_then_serves_the_role_built_with_its_epoch() -> None:
    async def scenario() -> None:
        host = StandbyHost("d", "d/standby/1", warm=("json", "no_such_module_at_all"))
        answer = await host.promote(
            "risk", class_path(FakeRole), ("cfg",), 42, {"expect": "identity"}
        )
        assert answer["role"] == "risk" and host.role == "risk"
        assert await host.heartbeat() == {"cfg": "cfg", "epoch": 42}  # type: ignore[attr-defined]
        assert await host.ready() == {"expect": "identity"}  # type: ignore[attr-defined]
        with pytest.raises(NotPromoted):  # a name this role does not serve
            await host.on_bars([])  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="already plays risk"):
            await host.promote("broker", class_path(FakeRole), ("cfg",), 43, {})

    asyncio.run(scenario())


def test_promotion_that_raises_then_no_role_left_behind() -> None:
    async def scenario() -> None:
        host = StandbyHost("d", "d/standby/1")
        with pytest.raises(TypeError):
            await host.promote("risk", class_path(FakeRole), (), 1, {})  # cfg missing
        assert host.role is None and host.impl is None
        with pytest.raises(NotPromoted):
            await host.heartbeat()  # type: ignore[attr-defined]

    asyncio.run(scenario())
