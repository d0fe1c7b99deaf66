"""Child specs: what a deployment is made of, without importing every child's code."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.supervisor.fakes import config
from tradeplane.supervisor import specs


def test_child_specs_then_each_actor_class_resolved_by_module_and_name_when_used() -> None:
    built = specs.child_specs(config(), "run-1", {"a": ""})
    assert built and all(isinstance(s.actor_class, specs.LazyActorClass) for s in built)
    from tradeplane.actors.broker import BrokerActor

    broker = next(s for s in built if s.role == "broker")
    assert broker.actor_class.resolve() is BrokerActor


def test_supervisor_actor_imported_then_no_child_actor_module_imported_yet() -> None:
    probe = (
        "import sys, tradeplane.supervisor.actor; "
        "print(sorted(m for m in sys.modules if m in ("
        "'tradeplane.actors.broker', 'tradeplane.actors.feed', 'tradeplane.actors.risk', "
        "'tradeplane.actors.strategy', 'tradeplane.actors.telemetry', 'tradeplane.actors.venue', "
        "'tradeplane.actors.journal')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_child_class_then_a_standby_can_build_it_from_its_path() -> None:
    from tradeplane.actors.standby import load_class, plain_class

    for spec in specs.child_specs(config(), "run-1", {"a": ""}):
        path = specs.class_path_of(spec.actor_class)
        assert load_class(path) is plain_class(spec.actor_class.resolve()), spec.role
