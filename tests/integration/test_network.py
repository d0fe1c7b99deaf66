"""Ray and everything tradeplane starts listen on loopback only."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import live_status, running

pytestmark = pytest.mark.usefixtures("ray_session")
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def ray_listeners() -> list[tuple[str, int, str]]:
    out = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status != psutil.CONN_LISTEN or not conn.pid:
            continue
        try:
            cmd = " ".join(psutil.Process(conn.pid).cmdline())
        except psutil.NoSuchProcess:
            continue
        if "ray" in cmd or "gcs_server" in cmd or "raylet" in cmd:
            out.append((conn.laddr.ip, conn.laddr.port, cmd[:80]))
    return out


def test_ray_and_every_actor_listen_on_loopback_only(tmp_path: Path) -> None:
    with running(make_config(tmp_path / "state")) as run:
        eventually(lambda: live_status(run.name).get("health") == "ok")
        listeners = ray_listeners()
        assert any("FeedActor" in cmd or "ray::" in cmd for _, _, cmd in listeners)
        exposed = [entry for entry in listeners if entry[0] not in LOOPBACK]
        assert exposed == [], f"listening beyond loopback: {exposed}"
