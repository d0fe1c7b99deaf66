"""The operator's chaos tools against a live deployment: ``tradeplane fault`` and
``tradeplane chaos`` (in-process, attached to the shared Ray instance)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.chaos.invariants import check_chaos
from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import journal_counts, live_status, running, wait_for_kind
from tradeplane.cli.main import app
from tradeplane.journal.reader import JournalReader

pytestmark = pytest.mark.usefixtures("ray_session")
cli = CliRunner()
# One line per kill the command made ("HH:MM:SS +  1.75s  kill broker  sigkill ..."); rich may
# wrap its outcome onto the next line, so the kills are counted by their start.
KILL_LINE = re.compile(r"\+\s*\d+\.\d+s\s+kill\s")


def test_fault_then_chaos_commands_then_deployment_recovers_and_invariants_hold(
    tmp_path: Path, ray_address: str
) -> None:
    state = tmp_path / "state"
    sim = {"symbols": ["AAA", "BBB"], "speed": 600.0, "history_bars": 0, "seed": 3}
    scheduled = {"kind": "malformed", "at_s": 0.5, "duration_s": 1.0}
    cfg = make_config(state, venue={"sim": sim | {"faults": [scheduled]}})
    with running(cfg) as run:
        # The config's schedule fires by itself; each malformed message is journaled and skipped.
        wait_for_kind(state, "venue_message_rejected", 1)
        assert _injected(state) == ["malformed"]
        wait_for_kind(state, "order_filled", journal_counts(state).get("order_filled", 0) + 5)
        fault = cli.invoke(
            app, ["fault", run.name, "reject_orders", "--duration", "1s", "--address", ray_address]
        )
        assert fault.exit_code == 0, fault.output
        assert _injected(state) == ["malformed", "reject_orders"]

        chaos = cli.invoke(
            app,
            [
                "chaos",
                run.name,
                "--kill",
                "broker,risk",
                "--every",
                "2s",
                "--duration",
                "5s",
                "--seed",
                "7",
                "--address",
                ray_address,
            ],
        )
        assert chaos.exit_code == 0, chaos.output
        assert "broker" in chaos.output or "risk" in chaos.output
        assert "health" in chaos.output
        # Every kill answered by a restart before the stop: the last kill may not even be
        # noticed yet when the command returns, and a stop then leaves the venue's latest
        # fills to the next start's catch-up, which this test does not run. So each kill the
        # command made must have its journaled recovery (the live status alone can read ok in
        # the moment before the supervisor has seen the last death).
        kills = len(KILL_LINE.findall(chaos.output))
        assert kills >= 1 and "FAILED" not in chaos.output, chaos.output

        def all_recovered() -> bool:
            with JournalReader.open(state) as j:
                recovered = [
                    e
                    for e in j.events(kinds=["recovery_succeeded"])
                    if e["data"]["target"] in ("broker", "risk")
                ]
            return len(recovered) >= kills and live_status(run.name).get("health") == "ok"

        eventually(all_recovered, timeout_s=60, what=f"{kills} kill(s) recovered, health ok")
        final = live_status(run.name)
    assert journal_counts(state).get("actor_died", 0) >= 2
    assert check_chaos(state, final_status=final).problems == [], chaos.output


def _injected(state: Path) -> list[str]:
    with JournalReader.open(state) as j:
        return [e["data"]["kind"] for e in j.events(kinds=["fault_injected"])]
