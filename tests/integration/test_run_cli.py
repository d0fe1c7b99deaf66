"""`tradeplane run` as an operator uses it: bounded run, Ctrl-C, summary, exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import eventually, ray_lines
from tradeplane.journal.reader import JournalReader, verify_journal

ROOT = Path(__file__).resolve().parents[2]
TRADEPLANE = str(Path(sys.executable).parent / "tradeplane")
CONFIG = ROOT / "config" / "demo.toml"


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(RAY_USAGE_STATS_ENABLED="0", COLUMNS="120", PYTHONUNBUFFERED="1")
    return env


def _stop_if_left_running(name: str) -> None:
    from tradeplane.supervisor import deployment

    if deployment.find_supervisor(name) is not None:
        deployment.stop(name)


def assert_stopped_cleanly(state: Path) -> None:
    assert verify_journal(state / "journal.jsonl").ok
    with JournalReader.open(state) as j:
        tail = j.tail(3)
        assert tail[-1]["kind"] == "deployment_stopped"
        assert j.get_state("supervisor", "run")["phase"] == "stopped"  # type: ignore[index]


def run_demo(
    ray_address: str, state: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``tradeplane run`` of the demo for 12 s on the shared cluster, stopped if left running."""
    out = subprocess.run(
        [
            TRADEPLANE,
            "run",
            str(CONFIG),
            "--duration",
            "12",
            "--address",
            ray_address,
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env or run_env(),
        cwd=ROOT,
    )
    _stop_if_left_running("demo")
    return out


def run_shadow(
    ray_address: str, state: Path, feed: str, symbol: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``tradeplane shadow`` of the test Flipper for 10 s, status lines every 2 s; the run and
    its ``health=`` lines (it must have exited 0)."""
    out = subprocess.run(
        [
            TRADEPLANE,
            "shadow",
            str(ROOT / "tests" / "integration" / "strategies" / "flipper.py"),
            "--class",
            "Flipper",
            "--feed",
            feed,
            "--symbols",
            symbol,
            "--duration",
            "10",
            "--interval",
            "2",
            "--state-dir",
            str(state),
            "--address",
            ray_address,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("health=")]
    assert len(lines) >= 3, out.stdout
    return out, lines


def test_run_with_duration_then_summary_journal_path_and_exit_0(
    ray_address: str, tmp_path: Path
) -> None:
    state = tmp_path / "demo"
    out = run_demo(ray_address, state)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"journal: {state / 'journal.jsonl'}" in out.stdout
    assert "health at stop: stopped" in out.stdout
    assert ray_lines(out.stderr) == [], out.stderr
    assert_stopped_cleanly(state)


def test_run_interrupted_with_ctrl_c_then_drains_and_exits_0(
    ray_address: str, tmp_path: Path
) -> None:
    state = tmp_path / "demo"
    proc = subprocess.Popen(
        [TRADEPLANE, "run", str(CONFIG), "--address", ray_address, "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=run_env(),
        cwd=ROOT,
    )
    try:
        eventually(
            lambda: (state / "journal.jsonl").exists() and proc.poll() is None,
            timeout_s=90,
            what="deployment running",
        )
        time.sleep(3)  # let a few bars through before the operator presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        _stop_if_left_running("demo")
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "stopping" in stdout and "journal:" in stdout
    assert_stopped_cleanly(state)


@pytest.mark.usefixtures("ray_session")
def test_strategy_with_resources_then_placed_on_that_resource(tmp_path: Path) -> None:
    import ray

    from tests.integration.conftest import HERE, make_config
    from tests.integration.harness import running

    cfg = make_config(
        tmp_path / "s",
        strategies=[
            {
                "name": "pinned",
                "path": str(HERE / "strategies" / "flipper.py"),
                "class_name": "Flipper",
                "resources": {"tp_strategy_slot": 1},
            }
        ],
    )
    with running(cfg):
        eventually(
            lambda: ray.available_resources().get("tp_strategy_slot") == 3.0,
            what="the strategy actor holds one tp_strategy_slot",
        )
