"""``tradeplane promote``: real journals written by the journal's own writer in tmp dirs, the live
venue a fake TWS on loopback (a live ``U...`` account), the command run as the CLI runs it."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.standins.tws import FakeTws
from tradeplane.actors.records import event_record, kill_switch_state
from tradeplane.cli.main import app
from tradeplane.core.promotion_config import code_hash
from tradeplane.core.reconcile import ReconciliationReport
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.store import JournalStore
from tradeplane.protocol.events import EventKind

STRATEGY = Path(__file__).resolve().parents[3] / "examples" / "sma_cross.py"
PAPER_NAME, LIVE_NAME = "paper-ib", "live-ib"


def toml_config(
    name: str, mode: str, state_dir: Path, strategy: Path, *, ib: str, extra: str = ""
) -> str:
    return f"""
[deployment]
name = "{name}"
mode = "{mode}"
state_dir = "{state_dir}"

[venue]
kind = "ib"

[venue.ib]
{ib}
symbols = ["SPY", "QQQ"]

[risk]
max_order_value = 25000.0

[telemetry]
metrics_port = 0

[[strategies]]
name = "index_sma"
path = "{strategy}"
class_name = "SmaCross"
symbols = ["SPY", "QQQ"]
capital = 50000.0
params = {{ fast = 10, slow = 30, quantity = 20 }}
{extra}
"""


@dataclass
class Desk:
    """A paper deployment with its journal and a live config promoted from it."""

    root: Path
    tws: FakeTws

    @property
    def paper_state(self) -> Path:
        return self.root / "state" / PAPER_NAME

    @property
    def live_state(self) -> Path:
        return self.root / "state" / LIVE_NAME

    @property
    def live_config(self) -> Path:
        return self.root / "live.toml"

    def write_configs(
        self,
        *,
        live_strategy: Path = STRATEGY,
        live_params: str = "{ fast = 10, slow = 30, quantity = 5 }",
        promotion: str = 'paper_config = "paper.toml"',
    ) -> None:
        paper = toml_config(
            PAPER_NAME,
            "paper",
            self.paper_state,
            STRATEGY,
            ib='host = "127.0.0.1"\nport = 7497\nclient_id = 11',
        )
        (self.root / "paper.toml").write_text(paper)
        live = toml_config(
            LIVE_NAME,
            "live",
            self.live_state,
            live_strategy,
            ib=f'host = "127.0.0.1"\nport = {self.tws.port}\nclient_id = 21\nlive = true',
            extra=f"\n[promotion]\n{promotion}\n",
        )
        live = live.replace("{ fast = 10, slow = 30, quantity = 20 }", live_params)
        self.live_config.write_text(live.replace("capital = 50000.0", "capital = 10000.0"))

    def journal(self, build: Any) -> None:
        """Write the paper journal with the journal's writer: ``build(append)``."""
        store = JournalStore.open(self.paper_state, PAPER_NAME)
        try:
            build(lambda kind, data, state=(): store.commit([self.record(kind, data)], state))
        finally:
            store.close()

    @staticmethod
    def record(kind: EventKind, data: dict[str, Any]) -> Any:
        return event_record(PAPER_NAME, kind, time.time(), data)

    def promote(self, *args: str) -> Any:
        return CliRunner().invoke(app, ["promote", str(self.live_config), "--to", "live", *args])

    def promotion_records(self) -> list[dict[str, Any]]:
        with JournalReader.open(self.live_state, deployment=LIVE_NAME) as reader:
            return reader.events([EventKind.PROMOTION_CHECKED])


def reconciliation(run_id: str, *, clean: bool = True) -> dict[str, Any]:
    missing = [] if clean else [{"symbol": "SPY", "expected": 10.0}]
    report = ReconciliationReport(time.time(), clean, missing, [], [], [], [], [], venue="ib")
    return {**report.to_dict(), "run_id": run_id, "action": "adopt"}


STRATEGY_HASH = code_hash(STRATEGY.read_text(encoding="utf-8"))


def session(
    append: Any,
    run_id: str,
    *,
    clean: bool = True,
    during: Any = None,
    code: str = STRATEGY_HASH,
) -> None:
    append(EventKind.RECONCILIATION, reconciliation(run_id, clean=clean))
    started = {"run_id": run_id, "mode": "paper", "strategy_code_hashes": {"index_sma": code}}
    append(EventKind.DEPLOYMENT_STARTED, started)
    if during is not None:
        during(append)
    append(EventKind.DEPLOYMENT_STOPPED, {"run_id": run_id, "reason": "operator"})


def three_clean_sessions(append: Any) -> None:
    for i in range(3):
        session(append, f"run-{i}")


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    with FakeTws(accounts=("U7654321",)) as tws:
        tws.set_account_values(net_liquidation=250_000.0, total_cash=250_000.0)
        d = Desk(tmp_path, tws)
        d.write_configs()
        yield d


def gates(output: str) -> dict[str, str]:
    """{gate: PASS|FAIL} from the printed report."""
    found = {}
    for line in output.splitlines():
        for mark in ("PASS", "FAIL"):
            if line.startswith(mark + " "):
                found[line[5:].split(":", 1)[0]] = mark
    return found


def test_promote_when_every_gate_passes_then_exit_0_and_promotion_checked_journaled(
    desk: Desk,
) -> None:
    desk.journal(three_clean_sessions)
    result = desk.promote()
    assert result.exit_code == 0, result.output
    assert set(gates(result.output).values()) == {"PASS"}, result.output
    assert set(gates(result.output)) == {
        "modes",
        "preflight",
        "clean starts",
        "last session",
        "kill switch",
        "drift alerts",
        "strategy code",
        "config",
    }
    assert "PROMOTABLE live-ib may go live" in result.output
    # the evidence, beside each gate
    assert "run run-2" in result.output and "clean" in result.output
    assert "allowed strategies.index_sma.params.quantity: 20 -> 5" in result.output
    assert "allowed venue.ib.live: False -> True" in result.output
    assert "U7654321 (live)" in result.output
    [record] = desk.promotion_records()
    data = record["data"]
    assert data["passed"] is True and data["live"] == LIVE_NAME and data["paper"] == PAPER_NAME
    assert [c["name"] for c in data["checks"]][:2] == ["modes", "preflight"]
    assert (
        data["strategy_code_hashes"]["index_sma"]
        == data["checks"][-2]["evidence"]["strategies"][0]["live"]
    )
    assert f"(seq {record['seq']})" in result.output
    # The journal the first check created is the live deployment's own: the next check's
    # preflight reads it as such, and the record is appended after the first one.
    again = desk.promote()
    assert again.exit_code == 0, again.output
    assert [r["data"]["passed"] for r in desk.promotion_records()] == [True, True]


def test_promote_when_strategy_code_differs_then_exit_1_naming_the_strategy(
    desk: Desk,
) -> None:
    changed = desk.root / "sma_cross_v2.py"
    shutil.copy(STRATEGY, changed)
    changed.write_text(changed.read_text() + "\n# tuned after the paper run\n")
    desk.write_configs(live_strategy=changed)
    desk.journal(three_clean_sessions)
    result = desk.promote()
    assert result.exit_code == 1, result.output
    assert gates(result.output)["strategy code"] == "FAIL"
    said = "not the same in both configs and the last paper session for index_sma"
    assert said in result.output
    assert gates(result.output)["config"] == "PASS"  # the path alone may differ
    assert "NOT PROMOTABLE" in result.output
    [record] = desk.promotion_records()
    assert record["data"]["passed"] is False
    assert record["data"]["failures"] == [f"strategy code: {said}"]


def test_promote_when_the_strategy_file_changed_since_paper_ran_it_then_exit_1(
    desk: Desk,
) -> None:
    desk.journal(lambda append: [session(append, f"run-{i}", code="0" * 64) for i in range(3)])
    result = desk.promote()
    assert result.exit_code == 1
    assert gates(result.output)["strategy code"] == "FAIL"
    assert "last paper session ran sha256 000000000000" in result.output


def test_promote_when_a_strategy_param_other_than_size_differs_then_exit_1(desk: Desk) -> None:
    desk.write_configs(live_params="{ fast = 5, slow = 30, quantity = 5 }")
    desk.journal(three_clean_sessions)
    result = desk.promote()
    assert result.exit_code == 1
    assert gates(result.output)["config"] == "FAIL"
    assert "NOT ALLOWED strategies.index_sma.params.fast: 10 -> 5" in result.output


def test_promote_when_kill_switch_tripped_in_last_paper_session_then_exit_1(desk: Desk) -> None:
    def tripped(append: Any) -> None:
        now = time.time()
        data = {"reason": "MAX_DAILY_LOSS", "source": "risk"}
        append(EventKind.KILL_SWITCH_ACTIVATED, data, [kill_switch_state(True, **data, ts=now)])
        data = {"reason": "reviewed", "source": "operator"}
        append(EventKind.KILL_SWITCH_CLEARED, data, [kill_switch_state(False, **data, ts=now)])

    def journal(append: Any) -> None:
        session(append, "run-0")
        session(append, "run-1")
        session(append, "run-2", during=tripped)

    desk.journal(journal)
    result = desk.promote()
    assert result.exit_code == 1
    assert gates(result.output)["kill switch"] == "FAIL"
    assert "(risk: MAX_DAILY_LOSS)" in result.output


def test_promote_when_drift_alert_in_last_paper_session_then_exit_1(desk: Desk) -> None:
    alert = {"strategy": "index_sma", "figure": "return_drift_pct", "value": 4.0, "threshold": 2.5}

    def journal(append: Any) -> None:
        session(append, "run-0")
        session(append, "run-1")
        session(append, "run-2", during=lambda a: a(EventKind.DRIFT_ALERT, alert))

    desk.journal(journal)
    result = desk.promote()
    assert result.exit_code == 1
    assert gates(result.output)["drift alerts"] == "FAIL"
    assert "index_sma return_drift_pct 4.0 (threshold 2.5)" in result.output


def test_promote_when_a_recent_start_reconciled_unclean_then_exit_1(desk: Desk) -> None:
    def journal(append: Any) -> None:
        session(append, "run-0")
        session(append, "run-1", clean=False)
        session(append, "run-2")

    desk.journal(journal)
    result = desk.promote()
    assert result.exit_code == 1
    assert gates(result.output)["clean starts"] == "FAIL"
    assert "1 of the last 3 not clean" in result.output


def test_promote_when_clean_starts_is_configured_then_that_many_are_required(
    desk: Desk,
) -> None:
    desk.write_configs(promotion='paper_config = "paper.toml"\nclean_starts = 4')
    desk.journal(three_clean_sessions)
    result = desk.promote()
    assert result.exit_code == 1
    assert "only 3 start(s) journaled, 4 required" in result.output


def test_promote_when_preflight_strict_fails_on_the_live_venue_then_exit_1(desk: Desk) -> None:
    desk.tws.set_position("SPY", 10, 500.0)  # the live account holds what the journal does not
    desk.journal(three_clean_sessions)
    result = desk.promote()
    assert result.exit_code == 1
    assert gates(result.output)["preflight"] == "FAIL"
    assert "--strict NOT READY" in result.output and "reconciliation" in result.output


def test_promote_when_the_paper_deployment_has_no_journal_then_exit_1_saying_so(
    desk: Desk,
) -> None:
    result = desk.promote()
    assert result.exit_code == 1
    assert f"no journal of paper deployment {PAPER_NAME!r}" in result.output
    assert desk.promotion_records()[0]["data"]["passed"] is False


def test_promote_json_then_every_check_with_evidence_and_where_it_was_journaled(
    desk: Desk,
) -> None:
    desk.journal(three_clean_sessions)
    result = desk.promote("--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["passed"] is True and out["to"] == "live"
    assert out["journaled"]["state_dir"] == str(desk.live_state)
    assert out["journaled"]["seq"] == desk.promotion_records()[0]["seq"]
    by_name = {c["name"]: c for c in out["checks"]}
    assert by_name["clean starts"]["evidence"]["journaled_starts"] == 3
    assert by_name["preflight"]["evidence"]["strict"] is True


def test_promote_when_the_live_journal_has_another_writer_then_exit_1_not_journaled(
    desk: Desk,
) -> None:
    desk.journal(three_clean_sessions)
    writer = JournalStore.open(desk.live_state, LIVE_NAME)  # as a deployment running unseen
    try:
        result = desk.promote()
    finally:
        writer.close()
    assert result.exit_code == 1
    assert "promotion_checked not journaled" in result.output
    assert desk.promotion_records() == []


def test_promote_with_paper_option_then_it_overrides_the_config(desk: Desk) -> None:
    desk.write_configs(promotion="clean_starts = 1")
    desk.journal(lambda append: session(append, "run-0"))
    refused = desk.promote()
    assert refused.exit_code == 2
    assert "[promotion] paper_config" in refused.output and "--paper FILE" in refused.output
    result = desk.promote("--paper", str(desk.root / "paper.toml"))
    assert result.exit_code == 0, result.output


def test_promote_to_anything_but_live_then_refused() -> None:
    result = CliRunner().invoke(app, ["promote", "x.toml", "--to", "paper"])
    assert result.exit_code == 2
    assert "only 'live'" in result.output


def test_promote_a_config_from_itself_then_refused_and_nothing_journaled(desk: Desk) -> None:
    desk.journal(three_clean_sessions)
    paper = str(desk.root / "paper.toml")
    result = CliRunner().invoke(app, ["promote", paper, "--to", "live", "--paper", paper])
    assert result.exit_code == 2
    assert "are the same deployment ('paper-ib'" in result.output
    with JournalReader.open(desk.paper_state, deployment=PAPER_NAME) as reader:
        assert reader.events([EventKind.PROMOTION_CHECKED]) == []
