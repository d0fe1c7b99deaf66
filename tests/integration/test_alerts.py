"""The alert webhook of a real deployment: the operator trips the kill switch, and a receiver on
loopback gets the event as JSON, keyed by its journal event_id; the alert gauges are served."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import running, wait_for_kind
from tests.integration.test_telemetry import metrics_url, scrape
from tests.webhook_receiver import Receiver
from tradeplane.cli.main import app
from tradeplane.journal.reader import JournalReader

pytestmark = pytest.mark.usefixtures("ray_session")


def test_kill_switch_tripped_then_the_webhook_receives_it_keyed_by_its_event_id(
    tmp_path: Path,
) -> None:
    receiver = Receiver()
    receiver.start()
    state = tmp_path / "state"
    cfg = make_config(state, alerts={"webhook_url": receiver.url("/hook/T0ken-xyz")})
    try:
        with running(cfg) as run:
            wait_for_kind(state, "order_filled", 1)
            result = CliRunner().invoke(
                app, ["kill-switch", "on", run.name, "--reason", "alert test"]
            )
            assert result.exit_code == 0, result.output
            wait_for_kind(state, "kill_switch_activated", 1)
            eventually(
                lambda: any(b["alert"] == "kill_switch_tripped" for _, b, _ in receiver.posts),
                timeout_s=30,
                what="the kill switch POSTed to the webhook",
            )
            metrics = scrape(metrics_url(state))
    finally:
        receiver.stop()
    with JournalReader.open(state) as j:
        (tripped,) = j.events(kinds=["kill_switch_activated"])
    [(key, body, _)] = [p for p in receiver.posts if p[1]["alert"] == "kill_switch_tripped"]
    assert key == tripped["event_id"] == body["event_id"]
    assert body["deployment"] == run.name and body["seq"] == tripped["seq"]
    assert body["data"]["reason"] == "alert test"
    assert [v for _, v in metrics["tradeplane_kill_switch_active"]] == [1.0]
    assert [v for _, v in metrics["tradeplane_journal_lost"]] == [0.0]
    assert [v for _, v in metrics["tradeplane_recovery_exhausted"]] == [0.0]
    [delivered] = [v for _, v in metrics["tradeplane_alerts_delivered_total"]]
    assert delivered >= 1
    assert (state / "alerts_cursor.json").exists()
