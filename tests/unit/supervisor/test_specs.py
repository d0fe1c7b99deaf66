"""Child specs: what a deployment is made of, without importing every child's code."""

from __future__ import annotations

import subprocess
import sys

from pydantic import SecretStr

from tests.unit.supervisor.fakes import config
from tradeplane.config.models import TradeplaneConfig
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


def test_alert_webhook_then_only_the_telemetry_actor_gets_its_url() -> None:
    url = "https://hooks.example.com/T0ken-abc"
    cfg = config().model_copy(
        update={"alerts": config().alerts.model_copy(update={"webhook_url": SecretStr(url)})}
    )
    built = specs.child_specs(cfg, "run-1", {"a": ""})
    given = {
        s.role: arg.alerts.url()
        for s in built
        for arg in s.args
        if isinstance(arg, TradeplaneConfig)
    }
    assert given.pop("telemetry") == url
    assert given and set(given.values()) == {None}


def test_alert_webhook_with_metrics_and_traces_off_then_a_telemetry_actor_still_sends() -> None:
    cfg = TradeplaneConfig.model_validate(
        {
            "deployment": {"name": "t"},
            "strategies": [{"name": "a", "path": "x.py", "class_name": "A"}],
            "telemetry": {"traces_exporter": "none"},
            "alerts": {"webhook_url": "http://127.0.0.1:9/hook"},
        }
    )
    cfg = cfg.model_copy(
        update={"telemetry": cfg.telemetry.model_copy(update={"metrics_port": None})}
    )
    assert not cfg.telemetry.enabled
    assert "telemetry" in [s.role for s in specs.child_specs(cfg, "run-1", {"a": ""})]
