"""Several deployments on one cluster: each serves its own metrics port, no two share an IB
client id on one TWS, and one command sets (or clears) the kill switch of all of them."""

from __future__ import annotations

import os
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import ray
from typer.testing import CliRunner

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import live_status, running, wait_for_kind
from tests.standins.tws import FakeTws
from tradeplane.cli.main import app
from tradeplane.core.errors import OperationalError
from tradeplane.protocol.roles import NAMESPACE
from tradeplane.supervisor import deployment

pytestmark = pytest.mark.usefixtures("ray_session")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ib_section(fake: FakeTws, client_id: int) -> dict[str, Any]:
    return {
        "kind": "ib",
        "ib": {"host": "127.0.0.1", "port": fake.port, "client_id": client_id},
    }


def telemetry_of(name: str) -> dict[str, Any]:
    tel: dict[str, Any] = live_status(name).get("telemetry") or {}
    return tel if tel.get("metrics_endpoint") else {}


@ray.remote(num_cpus=0)
class UnansweringSupervisor:
    """A deployment whose supervisor cannot reach its risk actor."""

    def kill_switch(self, active: bool, reason: str) -> dict[str, Any]:
        raise RuntimeError("risk actor unreachable")


def test_two_deployments_then_own_metrics_ports_no_shared_ib_client_id_and_one_kill_switch(
    tmp_path: Path, ray_address: str
) -> None:
    port = free_port()  # both ask for the same port, as two with the default 9464 would
    with FakeTws() as fake:
        fake.set_price("SPY", 500.0)
        ib = make_config(
            tmp_path / "ib",
            symbols=("SPY",),
            venue=ib_section(fake, 41),  # its broker uses 41, its feed 42
            session={"calendar": "24/7"},
            telemetry={"metrics_port": port},
        )
        sim = make_config(tmp_path / "sim", telemetry={"metrics_port": port})
        with running(ib) as a, running(sim) as b:
            first = eventually(lambda: telemetry_of(a.name), what="the IB deployment's endpoint")
            second = eventually(lambda: telemetry_of(b.name), what="the sim deployment's endpoint")
            assert first["metrics_endpoint"] == f"http://127.0.0.1:{port}/metrics"
            assert second["metrics_endpoint"] != first["metrics_endpoint"]
            assert f"port {port} taken, serving on" in second["metrics_note"]
            for run, tel in ((a, first), (b, second)):
                with urllib.request.urlopen(tel["metrics_endpoint"], timeout=5) as resp:
                    assert f'deployment="{run.name}"' in resp.read().decode()

            # An IB deployment on the same TWS whose broker would take the first one's feed id.
            clash = make_config(tmp_path / "clash", symbols=("SPY",), venue=ib_section(fake, 42))
            with pytest.raises(OperationalError) as refused:
                deployment.deploy(clash)
            assert f"already used by running deployment {a.name!r} (its feed)" in str(refused.value)
            assert "client id 42" in str(refused.value)
            assert deployment.find_supervisor(clash.deployment.name) is None
            assert not (tmp_path / "clash").exists()  # refused before anything started

            runner = CliRunner()
            on = ["kill-switch", "on", "--all", "--reason", "drill", "--address", ray_address]
            result = runner.invoke(app, on)
            assert result.exit_code == 0, result.output
            for run in (a, b):
                assert f"{run.name}: kill switch ACTIVE; trading state reducing" in result.output
                wait_for_kind(run.state_dir, "kill_switch_activated", 1)

            # One deployment that cannot confirm: named, the others cleared all the same, exit 1.
            bogus_name = f"bogus{os.getpid()}"
            bogus = UnansweringSupervisor.options(  # type: ignore[attr-defined]
                name=f"{bogus_name}/supervisor", namespace=NAMESPACE
            ).remote()
            try:
                off = ["kill-switch", "off", "--all", "--reason", "drill over"]
                result = runner.invoke(app, [*off, "--address", ray_address])
            finally:
                ray.kill(bogus)
            assert result.exit_code == 1, result.output
            assert f"{bogus_name}: FAILED" in result.output
            assert "RuntimeError: risk actor unreachable" in result.output
            for run in (a, b):
                assert f"{run.name}: kill switch cleared" in result.output
                wait_for_kind(run.state_dir, "kill_switch_cleared", 1)
