"""`tradeplane chaos` and `tradeplane fault`: argument checks fail before any cluster is
contacted (exit 2), a missing deployment is a clear error (exit 1), and a run against fakes
reports kills and the final health."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tradeplane.cli import operator
from tradeplane.cli.main import app
from tradeplane.supervisor import chaos

runner = CliRunner()
ROLES = ["journal", "venue", "broker", "risk", "reconciler", "strategy/a", "feed"]


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any attempt to reach a cluster is recorded and finds nothing."""
    calls: list[str] = []

    def find_running(name: str, address: str | None) -> Any:
        calls.append(name)
        return None

    monkeypatch.setattr(operator, "find_running", find_running)
    return calls


# -- chaos: argument checks -------------------------------------------------------------------


def test_chaos_with_unknown_kind_then_exit_2_listing_valid_kinds(no_cluster: list[str]) -> None:
    result = invoke("chaos", "dep", "--kill", "broker,brokr")
    assert result.exit_code == 2, result.output
    assert "brokr" in result.output and "supervisor" in result.output
    assert no_cluster == []


def test_chaos_with_empty_kill_list_then_exit_2(no_cluster: list[str]) -> None:
    assert invoke("chaos", "dep", "--kill", ",").exit_code == 2


@pytest.mark.parametrize(
    ("option", "value"), [("--every", "soon"), ("--duration", "2 weeks"), ("--every", "0s")]
)
def test_chaos_with_bad_duration_then_exit_2_naming_option(
    no_cluster: list[str], option: str, value: str
) -> None:
    result = invoke("chaos", "dep", option, value)
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert no_cluster == []


def test_chaos_with_unknown_mode_then_exit_2(no_cluster: list[str]) -> None:
    result = invoke("chaos", "dep", "--mode", "nuke")
    assert result.exit_code == 2 and "ray-kill" in result.output


def test_chaos_without_running_deployment_then_exit_1_saying_so(no_cluster: list[str]) -> None:
    result = invoke("chaos", "dep", "--every", "1s", "--duration", "2s")
    assert result.exit_code == 1, result.output
    assert "no running deployment named 'dep'" in result.output
    assert no_cluster == ["dep"]


# -- chaos: a run against fakes ---------------------------------------------------------------


def fake_status(health: str = "ok", phase: str = "running", **extra: Any) -> dict[str, Any]:
    children = {r: {"state": "running", "restarts": 1 if r == "broker" else 0} for r in ROLES}
    return {"health": health, "phase": phase, "reason": "test", "children": children, **extra}


@pytest.fixture
def fake_deployment(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"status": fake_status(), "kills": []}
    monkeypatch.setattr(operator, "find_running", lambda name, address: object())
    monkeypatch.setattr(chaos, "default_status", lambda name: state["status"])

    def kill(deployment: str, role: str, mode: str) -> dict[str, Any]:
        state["kills"].append((role, mode))
        return {"role": role, "mode": mode, "pid": 4242, "node": "ab" * 20, "ts": 0, "ok": True}

    monkeypatch.setattr(chaos, "kill_actor", kill)
    return state


def test_chaos_run_then_each_kill_printed_and_exit_0_when_healthy(
    fake_deployment: dict[str, Any],
) -> None:
    result = invoke(
        "chaos", "dep", "--kill", "broker", "--every", "10ms", "--duration", "50ms", "--seed", "1"
    )
    assert result.exit_code == 0, result.output
    kills = fake_deployment["kills"]
    assert kills and all(k == ("broker", "sigkill") for k in kills)
    assert result.output.count("kill broker") == len(kills)
    assert "seed 1" in result.output and "health ok" in result.output
    assert "restarts" in result.output


def test_chaos_run_when_deployment_ends_failed_then_exit_1(
    fake_deployment: dict[str, Any],
) -> None:
    fake_deployment["status"] = fake_status()
    args = ["chaos", "dep", "--kill", "risk", "--every", "10ms", "--duration", "30ms"]

    calls: list[str] = []

    def failing(name: str) -> dict[str, Any]:
        # healthy while the roles are read and the kills run, failed by the summary
        calls.append(name)
        return fake_status() if len(calls) < 3 else fake_status("failed", "failed")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chaos, "default_status", failing)
        result = invoke(*args, "--settle", "0s", "--seed", "3")
    assert result.exit_code == 1, result.output
    assert "did not survive" in result.output and "--seed 3" in result.output


def test_chaos_run_with_recovery_and_attempts_then_both_printed(
    fake_deployment: dict[str, Any],
) -> None:
    status = fake_status(recovery={"attempts": 2, "exhausted": False})
    for child in status["children"].values():
        child["attempts"] = 7
    fake_deployment["status"] = status
    result = invoke("chaos", "dep", "--kill", "feed", "--every", "10ms", "--duration", "20ms")
    assert result.exit_code == 0, result.output
    assert "recovery:" in result.output and "attempts" in result.output and "7" in result.output


def test_chaos_with_kind_missing_from_deployment_then_exit_2(
    fake_deployment: dict[str, Any],
) -> None:
    status = fake_status()
    del status["children"]["venue"]
    fake_deployment["status"] = status
    result = invoke("chaos", "dep", "--kill", "venue", "--every", "1s", "--duration", "2s")
    assert result.exit_code == 2 and "no venue actor" in result.output
    assert fake_deployment["kills"] == []


# -- fault ------------------------------------------------------------------------------------


def test_fault_with_unknown_kind_then_exit_2_listing_valid(no_cluster: list[str]) -> None:
    result = invoke("fault", "dep", "explode")
    assert result.exit_code == 2, result.output
    assert "drop_connection" in result.output and no_cluster == []


def test_fault_without_kind_or_clear_then_exit_2(no_cluster: list[str]) -> None:
    assert invoke("fault", "dep").exit_code == 2


@pytest.mark.parametrize(
    "args",
    [["--probability", "1.5"], ["--duration", "forever"], ["--delay", "x"], ["--duration", "0"]],
)
def test_fault_with_bad_option_then_exit_2(no_cluster: list[str], args: list[str]) -> None:
    assert invoke("fault", "dep", "silent", *args).exit_code == 2
    assert no_cluster == []


def test_fault_without_running_deployment_then_exit_1(no_cluster: list[str]) -> None:
    result = invoke("fault", "dep", "silent")
    assert result.exit_code == 1 and "no running deployment" in result.output


@pytest.fixture
def supervisor_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(operator, "find_running", lambda name, address: "sup")

    def call_running_within(timeout_s: float, sup: Any, method: Any, *args: Any) -> Any:
        calls.append((method.__name__, *args))
        return {"method": method.__name__, "active": ["delay_acks"]}

    monkeypatch.setattr(operator, "call_running_within", call_running_within)
    return calls


def test_fault_then_inject_fault_called_with_seconds_and_params(
    supervisor_calls: list[tuple[Any, ...]],
) -> None:
    result = invoke(
        "fault", "dep", "delay_acks", "--duration", "5s", "--delay", "500ms", "--probability", "0.5"
    )
    assert result.exit_code == 0, result.output
    assert supervisor_calls == [
        ("inject_fault", "delay_acks", 5.0, {"delay_s": 0.5, "probability": 0.5})
    ]
    assert "inject_fault" in result.output


def test_fault_without_duration_then_none_and_no_delay_param(
    supervisor_calls: list[tuple[Any, ...]],
) -> None:
    assert invoke("fault", "dep", "silent").exit_code == 0
    assert supervisor_calls == [("inject_fault", "silent", None, {"probability": 1.0})]


@pytest.mark.parametrize(("kind", "expected"), [(["silent"], "silent"), ([], None)])
def test_fault_clear_then_clear_faults_called_for_kind_or_all(
    supervisor_calls: list[tuple[Any, ...]], kind: list[str], expected: str | None
) -> None:
    assert invoke("fault", "dep", *kind, "--clear").exit_code == 0
    assert supervisor_calls == [("clear_faults", expected)]
