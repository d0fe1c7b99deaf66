"""ops/ray/start-head.sh and join-worker.sh on loopback: the token is required on every node and
every client, a worker joins with it, and `tradeplane cluster check` finds both nodes alike.

Like test_cluster_cli.py this starts its own cluster (its own temp dir, torn down process by
process). ``HOME`` and the token path are the test's own: a local ``ray.init`` writes
``~/.ray/auth_token``, and a token found there would let the "refused" client in.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import eventually, ray_lines
from tests.integration.test_cluster_cli import BIN, ROOT, _kill_cluster, free_port

pytestmark = pytest.mark.cluster

OPS = ROOT / "ops" / "ray"
# Two "machines" on loopback. Not 127.0.0.1: with multi-node enabled (as on a worker) Ray turns
# 127.0.0.1 into this host's outward address, where nothing listens.
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"


def clean_env(home: Path, ray_dir: Path) -> dict[str, str]:
    """The environment of a machine that has never seen this cluster's token."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAY_AUTH", "TRADEPLANE_RAY", "TRADEPLANE_CLUSTER"))
        and k != "RAY_ADDRESS"
    }
    env.update(
        HOME=str(home),
        TRADEPLANE_RAY_DIR=str(ray_dir),
        TRADEPLANE_PYTHON=sys.executable,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_worker_niceness="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def with_token(env: dict[str, str], ray_dir: Path) -> dict[str, str]:
    """What `source TRADEPLANE_RAY_DIR/env` gives a shell on a node."""
    lines = (ray_dir / "env").read_text().splitlines()
    exported = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    return {**env, **exported}


@dataclass
class Head:
    address: str
    temp: str
    home: Path
    ray_dir: Path
    env: dict[str, str]


@pytest.fixture
def head(tmp_path: Path) -> Iterator[Head]:
    temp = tempfile.mkdtemp(prefix="tpauth-", dir="/tmp")  # short: Ray's socket paths
    home, ray_dir = tmp_path / "home", tmp_path / "head-ray"
    home.mkdir()
    env = clean_env(home, ray_dir)
    port = free_port()
    try:
        started = subprocess.run(
            [
                *(str(OPS / "start-head.sh"), "--interface", HEAD_IP, "--port", str(port), "--"),
                *("--include-dashboard=false", f"--temp-dir={temp}", "--num-cpus=1"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        yield Head(f"{HEAD_IP}:{port}", temp, home, ray_dir, env)
    finally:
        _kill_cluster(temp)


def tradeplane(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "tradeplane"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def test_head_requires_the_token_and_a_worker_joins_with_it(head: Head, tmp_path: Path) -> None:
    token = head.ray_dir / "auth_token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(head.ray_dir.stat().st_mode) == 0o700
    assert len(token.read_text().strip()) == 64

    # A client with no token anywhere (its own HOME, no RAY_AUTH_*) is refused: one line saying
    # why, no traceback, none of Ray's lines; the client wrote no token of its own.
    refused = tradeplane(
        {**head.env, "RAY_gcs_server_port_wait_time_s": "3"}, "ls", "--address", head.address
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "refused this client" in refused.stderr and "token" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert ray_lines(refused.stderr) == [], refused.stderr
    assert not (head.home / ".ray" / "auth_token").exists()

    # The node's env file (what an operator sources) lets the CLI in, quietly.
    allowed = tradeplane(with_token(head.env, head.ray_dir), "ls", "--address", head.address)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "no deployments running" in allowed.stdout
    assert allowed.stderr == ""

    # A worker joins on loopback with a copy of the token and the head's versions.
    worker_dir = tmp_path / "worker-ray"
    joined = subprocess.run(
        [
            *(str(OPS / "join-worker.sh"), "--address", head.address, "--interface", WORKER_IP),
            *("--token-file", str(token), "--versions", str(head.ray_dir / "cluster.versions")),
            *("--", f"--temp-dir={head.temp}", "--num-cpus=1", "--resources", '{"joined": 1}'),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(head.home, worker_dir),
    )
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert stat.S_IMODE((worker_dir / "auth_token").stat().st_mode) == 0o600

    def two_nodes_same_versions() -> bool:
        check = tradeplane(
            with_token(head.env, head.ray_dir), "cluster", "check", "--address", head.address
        )
        assert check.returncode == 0, check.stdout + check.stderr
        verdicts = [line.split()[-1] for line in check.stdout.splitlines() if line.strip()]
        assert verdicts == ["ok", "ok"], check.stdout + check.stderr  # node ip, id, verdict
        return True

    eventually(two_nodes_same_versions, timeout_s=60, interval_s=2.0, what="both nodes checked")
