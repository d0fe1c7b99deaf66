"""The CLI from any node of the cluster: run from a working directory and ``HOME`` that hold no
state dir (as on a node other than the state node), it reads a running deployment through its
journal actor, and for a stopped one names the node its run record says holds the state dir.

The deployment's config names a relative state dir, so the CLI's own resolution of it (under its
working directory) finds nothing: only the journal actor can have given what it shows.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import HERE, make_config
from tests.integration.harness import running, wait_for_kind
from tests.integration.test_run_cli import TRADEPLANE
from tradeplane.cluster import kv
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.run_record import RunRecord
from tradeplane.journal.reader import JournalReader, verify_journal

OTHER_NODE_IP = "10.9.8.7"
OTHER_NODE_ID = "ab" * 28


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """The CLI's working directory, with an empty ``home`` in it."""
    where = tmp_path / "another-node"
    (where / "home").mkdir(parents=True)
    return where


def write_config(cfg: TradeplaneConfig, where: Path) -> Path:
    """``cfg`` as a file whose state dir is relative: under ``where`` there is none."""
    path = where / "deploy.toml"
    path.write_text(
        f"""
[deployment]
name = "{cfg.deployment.name}"
mode = "paper"
state_dir = "state"

[venue]
kind = "sim"

[venue.sim]
symbols = ["AAA", "BBB"]

[telemetry]
metrics_port = 0

[[strategies]]
name = "flip"
path = "{HERE / "strategies" / "flipper.py"}"
class_name = "Flipper"
"""
    )
    return path


def cli_from(where: Path, ray_address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(HOME=str(where / "home"), COLUMNS="200", RAY_USAGE_STATS_ENABLED="0")
    token = Path.home() / ".ray" / "auth_token"  # the cluster's token, should it require one
    if token.is_file() and "RAY_AUTH_TOKEN_PATH" not in env:
        env["RAY_AUTH_TOKEN_PATH"] = str(token)
    return subprocess.run(
        [TRADEPLANE, *args, "--address", ray_address],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=where,
    )


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stderr == "", out.stderr[-3000:]  # Ray's own messages go to its logs
    return out.stdout


@pytest.fixture
def record_cleanup() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        kv.delete_run(name)


def test_running_deployment_read_through_its_journal_from_a_node_without_its_state_dir(
    ray_address: str,
    tmp_path: Path,
    elsewhere: Path,
    record_cleanup: list[str],
) -> None:
    state = tmp_path / "state-node" / "state"
    cfg = make_config(state)
    name = cfg.deployment.name
    config = write_config(cfg, elsewhere)
    with running(cfg):
        wait_for_kind(state, "order_filled", 3)
        status = json.loads(ok(cli_from(elsewhere, ray_address, "status", name, "--json")))
        assert status["live"]["deployment"] == name
        assert status["state"]["state_dir"] == str(state)
        assert sum(status["state"]["orders"].values()) > 0
        assert status["state"]["tail"] and status["state"]["tail"][-1]["deployment"] == name

        tail = ok(cli_from(elsewhere, ray_address, "journal", "tail", name, "-n", "5", "--json"))
        lines = [json.loads(line) for line in tail.splitlines()]
        assert len(lines) == 5 and all(e["deployment"] == name for e in lines)
        with JournalReader.open(state) as j:
            assert lines == j.events(since_seq=lines[0]["seq"] - 1, limit=5)
            coid = j.events(kinds=["order_filled"])[0]["client_order_id"]

        verified = ok(
            cli_from(elsewhere, ray_address, "journal", "verify", "--config", str(config))
        )
        assert f"{state / 'journal.jsonl'}:" in verified and "OK hash chain intact" in verified

        exported = elsewhere / "events.jsonl"
        out = ok(cli_from(elsewhere, ray_address, "journal", "export", name, "-o", str(exported)))
        events = [json.loads(line) for line in exported.read_text().splitlines()]
        assert f"exported {len(events):,} events (seq 1..{events[-1]['seq']})" in out
        with JournalReader.open(state) as j:
            assert events == j.events(limit=len(events))

        shown = ok(cli_from(elsewhere, ray_address, "trace", coid))  # found among the running
        assert f"client order {coid}" in shown and "order_filled" in shown

        traces = elsewhere / "traces.json"
        out = ok(cli_from(elsewhere, ray_address, "trace", "export", name, "-o", str(traces)))
        assert "exported" in out and json.loads(traces.read_text())["data"]

        pre = cli_from(
            elsewhere, ray_address, "preflight", "sim", "--config", str(config), "--json"
        )
        checks = {c["name"]: c for c in json.loads(pre.stdout)["checks"]}
        assert checks["deployment"]["detail"].startswith("running"), checks["deployment"]
        assert checks["state dir"]["detail"].startswith(f"{state} (writable)"), checks
        assert checks["journal"]["status"] == "ok", checks["journal"]
        assert "hash chain intact" in checks["journal"]["detail"]
    assert verify_journal(state / "journal.jsonl").ok
    # Nothing was read or made where the CLI ran: all it showed came through the journal.
    assert sorted(p.name for p in elsewhere.iterdir()) == [
        "deploy.toml",
        "events.jsonl",
        "home",
        "traces.json",
    ]

    # Stopped, with its run record naming another node: that node is named, never "fresh".
    record_cleanup.append(name)
    kv.put_run(RunRecord(name, "r1", "stopped", OTHER_NODE_ID, OTHER_NODE_IP, str(state)))
    where = f"{state} on node {OTHER_NODE_IP} (node id {OTHER_NODE_ID})"
    for args in (("status", name), ("journal", "tail", name), ("trace", "export", name, "-o", "t")):
        out = cli_from(elsewhere, ray_address, *args)
        assert out.returncode == 1 and where in " ".join(out.stderr.split()), args
    pre = cli_from(elsewhere, ray_address, "preflight", "sim", "--config", str(config))
    assert pre.returncode == 1 and "NOT READY" in pre.stdout
    assert OTHER_NODE_IP in pre.stdout and "fresh" not in pre.stdout
    # Control: without the run record, this node's (empty) state dir is all there is.
    kv.delete_run(name)
    fresh = cli_from(elsewhere, ray_address, "preflight", "sim", "--config", str(config))
    assert "fresh deployment" in fresh.stdout, fresh.stdout + fresh.stderr
