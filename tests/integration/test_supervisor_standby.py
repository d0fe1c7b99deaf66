"""The supervisor's standby on a real Ray instance: SIGKILL the supervisor and its standby takes
over (re-attached, found by the CLI under the supervisor's current name), the pipeline trades on,
exactly one instance acts, and the killed one's restart stands by in turn; `down` removes both
(``core.succession``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import journal_counts, live_status
from tests.integration.invariants import check
from tradeplane.cluster.names import current_name, named, supervisor_standby_name
from tradeplane.protocol.roles import ROLE_SUPERVISOR, actor_name
from tradeplane.supervisor import deployment
from tradeplane.supervisor.chaos import kill_actor

pytestmark = pytest.mark.usefixtures("ray_session")
TRADEPLANE = str(Path(sys.executable).parent / "tradeplane")


def cli(ray_address: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(COLUMNS="200", RAY_USAGE_STATS_ENABLED="0")
    out = subprocess.run(
        [TRADEPLANE, *args, "--address", ray_address],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def succession(name: str) -> dict[str, Any]:
    return live_status(name).get("supervisor") or {}


def standing_by(name: str, standby: str) -> bool:
    shown = succession(name).get("standby") or {}
    return shown.get("name") == standby and shown.get("watching") is True


def fills(state: Path) -> int:
    return journal_counts(state).get("order_filled", 0)


def trades_on(state: Path, more: int = 3) -> None:
    before = fills(state)
    eventually(lambda: fills(state) >= before + more, timeout_s=30, what=f"{more} more fills")


def took_over(name: str, by: str) -> bool:
    status = live_status(name)
    return (
        (status.get("supervisor") or {}).get("name") == by
        and (status.get("reattached") or {}).get("first_tick_ts") is not None
        and status.get("health") == "ok"
    )


@contextmanager
def deployed(
    tmp_path: Path, stop: Callable[[str], object] = deployment.stop
) -> Iterator[tuple[Path, str, str, str]]:
    """A deployment with its supervisor standby up: (state dir, name, first, standby). Stopped
    at the end by ``stop``; both instances gone and the journal's invariants hold."""
    state = tmp_path / "state"
    cfg = make_config(state)
    name = cfg.deployment.name
    first, standby = actor_name(name, ROLE_SUPERVISOR), supervisor_standby_name(name)
    deployment.deploy(cfg)
    try:
        eventually(lambda: standing_by(name, standby), timeout_s=60, what="supervisor standby")
        yield state, name, first, standby
    finally:
        stop(name)
    eventually(lambda: named(first) is None and named(standby) is None, timeout_s=30)
    assert check(state).problems == []


def test_supervisor_killed_then_its_standby_takes_over_and_the_killed_one_stands_by(
    tmp_path: Path, ray_address: str
) -> None:
    with deployed(tmp_path, lambda name: cli(ray_address, "down", name)) as (
        state,
        name,
        first,
        standby,
    ):
        trades_on(state)
        assert succession(name)["name"] == first
        assert current_name(name, ROLE_SUPERVISOR) == first
        # Standing by, it takes no operator call; status shows what it costs.
        beat = ray.get(named(standby).heartbeat.remote(), timeout=10)
        assert beat["phase"] == "standby"
        shown = succession(name)["standby"]
        assert shown["pid"] == beat["pid"] and shown["rss_bytes"] > 0 and shown["cpu_s"] >= 0
        assert f"standby {standby} watching" in cli(ray_address, "status", name)
        with pytest.raises(ray.exceptions.RayTaskError, match="stands by"):
            ray.get(named(standby).status.remote(), timeout=10)

        assert kill_actor(name, "supervisor", "sigkill")["ok"]
        eventually(lambda: took_over(name, standby), timeout_s=30, what="standby took over")
        # Everything that finds the supervisor finds the one acting now.
        assert current_name(name, ROLE_SUPERVISOR) == standby
        assert deployment.find_supervisor(name)._actor_id == named(standby)._actor_id
        assert name in deployment.list_deployments()
        from_cli = json.loads(cli(ray_address, "status", name, "--json"))
        assert from_cli["live"]["supervisor"]["name"] == standby
        assert name in cli(ray_address, "ls")
        # The pipeline trades on, and exactly one instance acts: one re-attach, and the killed
        # instance, restarted by Ray, stands by (refusing calls) rather than acting.
        trades_on(state)
        eventually(lambda: standing_by(name, first), timeout_s=60, what="restart stands by")
        assert journal_counts(state).get("supervisor_reattached") == 1
        assert ray.get(named(first).heartbeat.remote(), timeout=10)["phase"] == "standby"
        assert live_status(name)["children"]["journal"]["restarts"] == 0

        # And back: the first instance takes over from the standby that took over.
        assert kill_actor(name, "supervisor", "sigkill")["ok"]
        eventually(lambda: took_over(name, first), timeout_s=30, what="first took back over")
        assert current_name(name, ROLE_SUPERVISOR) == first
        trades_on(state)
        eventually(lambda: standing_by(name, standby), timeout_s=60, what="standby again")
        assert journal_counts(state).get("supervisor_reattached") == 2
    # `down` removed the standby with the supervisor.
    assert name not in deployment.list_deployments()


def test_standby_killed_first_then_ray_restarts_it_standing_by_and_the_supervisor_acts_on(
    tmp_path: Path,
) -> None:
    with deployed(tmp_path) as (state, name, first, standby):
        ray.kill(named(standby), no_restart=False)  # Ray restarts it
        trades_on(state)
        eventually(lambda: standing_by(name, standby), timeout_s=60, what="standby back")
        assert succession(name)["name"] == first
        assert journal_counts(state).get("supervisor_reattached", 0) == 0


def test_supervisor_and_its_standby_killed_together_then_one_of_them_acts_again(
    tmp_path: Path,
) -> None:
    with deployed(tmp_path) as (state, name, first, standby):
        trades_on(state)
        standby_pid = int(ray.get(named(standby).heartbeat.remote(), timeout=10)["pid"])
        os.kill(standby_pid, signal.SIGKILL)
        assert kill_actor(name, "supervisor", "sigkill")["ok"]
        # Never no supervisor: Ray restarts both, and the one that held the term acts again.
        eventually(
            lambda: (live_status(name).get("reattached") or {}).get("first_tick_ts"),
            timeout_s=60,
            what="a supervisor re-attached",
        )
        acting = succession(name)["name"]
        other = standby if acting == first else first
        eventually(lambda: standing_by(name, other), timeout_s=60, what="the other stands by")
        trades_on(state)
        assert journal_counts(state).get("supervisor_reattached") == 1
