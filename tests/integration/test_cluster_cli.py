"""`up` / `ls` / `status` / `down` from separate processes on a `ray start --head` cluster.

This test is about Ray itself, so it starts its own cluster (loopback only, its own temp dir) and
tears down exactly that cluster's processes, leaving the session's shared instance alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers import eventually, ray_lines

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONFIG = ROOT / "config" / "demo.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_worker_niceness="0",
        PYTHONUNBUFFERED="1",
    )
    return e


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "tradeplane"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        cwd=ROOT,
    )


@pytest.fixture
def cluster() -> Iterator[str]:
    temp = Path(tempfile.mkdtemp(prefix="tpray-", dir="/tmp"))
    port = free_port()
    subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
            "--num-cpus=2",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env=env(),
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _kill_cluster(str(temp))


def _kill_cluster(temp: str) -> None:
    roots = [
        p
        for p in psutil.process_iter(["cmdline"])
        if any(temp in part for part in (p.info["cmdline"] or []))
    ]
    victims = set(roots)
    for p in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            victims.update(p.children(recursive=True))
    for p in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(list(victims), timeout=20)


def status_json(name: str, *args: str) -> dict[str, Any]:
    out = cli("status", name, "--json", *args)
    assert out.returncode == 0, out.stderr
    assert ray_lines(out.stderr) == [], out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_up_status_down_from_separate_processes(cluster: str, tmp_path: Path) -> None:
    state = tmp_path / "demo-state"
    up = cli("up", str(CONFIG), "--address", cluster, "--state-dir", str(state))
    assert up.returncode == 0, up.stdout + up.stderr
    assert "demo:" in up.stdout
    assert ray_lines(up.stderr) == [], up.stderr

    listed = cli("ls", "--address", cluster)
    assert listed.returncode == 0 and listed.stdout.startswith("demo"), listed.stdout
    assert ray_lines(listed.stderr) == [], listed.stderr

    def orders_flowing() -> bool:
        live = status_json("demo", "--address", cluster)["live"]
        return live["health"] == "ok" and sum((live.get("orders") or {}).values()) > 0

    eventually(orders_flowing, timeout_s=90, interval_s=1.0, what="orders on the cluster")

    down = cli("down", "demo", "--address", cluster)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "journal:" in down.stdout
    assert ray_lines(down.stderr) == [], down.stderr

    assert "no deployments running" in cli("ls", "--address", cluster).stdout
    offline = status_json("demo", "--state-dir", str(state))
    assert offline["live"] is None
    assert offline["state"]["run"]["phase"] == "stopped"
    assert offline["state"]["tail"][-1]["kind"] == "deployment_stopped"
    assert sum(offline["state"]["orders"].values()) > 0
