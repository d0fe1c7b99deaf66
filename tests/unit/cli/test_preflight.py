"""preflight on a real state dir (journal + sim venue files), no Ray: read-only verdicts."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.helpers import eventually
from tradeplane.cli.operator import set_kill_switch_offline
from tradeplane.cli.preflight import run_preflight
from tradeplane.config.loading import parse_config
from tradeplane.config.models import TradeplaneConfig
from tradeplane.journal.store import JournalStore

STRATEGY = Path(__file__).resolve().parents[3] / "examples" / "sma_cross.py"
SATURDAY_NOON_UTC = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()
TUESDAY_16_UTC = datetime(2026, 11, 24, 16, 0, tzinfo=UTC).timestamp()  # 11:00 New York


def config(state_dir: Path, **sections: dict[str, Any]) -> TradeplaneConfig:
    raw: dict[str, Any] = {
        "deployment": {"name": "pf", "state_dir": str(state_dir)},
        "strategies": [{"name": "s", "path": str(STRATEGY), "class_name": "SmaCross"}],
    }
    raw.update(sections)
    return parse_config(raw)


def statuses(result: Any) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


def test_fresh_deployment_then_ready_and_nothing_written(tmp_path: Path) -> None:
    result = run_preflight(config(tmp_path / "state"), "sim")
    assert result.ready, result.reasons
    assert not (tmp_path / "state").exists()


def test_venue_other_than_configured_then_not_ready(tmp_path: Path) -> None:
    result = run_preflight(config(tmp_path / "state"), "okx")
    assert not result.ready and "not 'okx'" in result.reasons[0]


def test_kill_switch_active_then_not_ready_with_the_reason(tmp_path: Path) -> None:
    state = tmp_path / "state"
    JournalStore.open(state, "pf").close()
    set_kill_switch_offline(state, "pf", active=True, reason="desk halt")
    result = run_preflight(config(state), "sim")
    assert not result.ready
    assert any("kill switch" in r and "desk halt" in r for r in result.reasons)
    set_kill_switch_offline(state, "pf", active=False, reason="resume")
    assert run_preflight(config(state), "sim").ready


def test_require_market_open_on_a_closed_exchange_then_not_ready(tmp_path: Path) -> None:
    cfg = config(tmp_path / "state", session={"calendar": "XNYS"})
    closed = run_preflight(cfg, "sim", require_market_open=True, now=SATURDAY_NOON_UTC)
    assert not closed.ready and statuses(closed)["session"] == "fail"
    assert run_preflight(cfg, "sim", now=SATURDAY_NOON_UTC).ready  # closed is fine unless asked
    assert run_preflight(cfg, "sim", require_market_open=True, now=TUESDAY_16_UTC).ready


def test_warning_when_strict_then_not_ready(tmp_path: Path) -> None:
    state = tmp_path / "state"
    JournalStore.open(state, "pf").close()
    os.chmod(state / "journal.db", 0o644)
    lenient = run_preflight(config(state), "sim")
    assert lenient.ready and statuses(lenient)["state dir"] == "warn"
    assert not run_preflight(config(state), "sim", strict=True).ready


def test_broken_hash_chain_then_not_ready_naming_the_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    set_up = JournalStore.open(state, "pf")
    set_up.close()
    set_kill_switch_offline(state, "pf", active=False, reason="a line")
    set_kill_switch_offline(state, "pf", active=False, reason="another line")
    jsonl = state / "journal.jsonl"
    lines = jsonl.read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace("a line", "A LINE")
    jsonl.write_text("".join(lines))
    result = run_preflight(config(state), "sim")
    assert not result.ready
    assert any("line 1" in r for r in result.reasons), result.reasons


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_collector_unreachable_then_telemetry_warns_and_strict_is_not_ready(
    tmp_path: Path,
) -> None:
    port = _free_port()  # nothing listens there
    cfg = config(
        tmp_path / "state",
        telemetry={"traces_exporter": "otlp-grpc", "otlp_endpoint": f"http://127.0.0.1:{port}"},
    )
    result = run_preflight(cfg, "sim")
    assert statuses(result)["telemetry"] == "warn"
    assert result.ready  # a collector never blocks trading ...
    assert not run_preflight(cfg, "sim", strict=True).ready  # ... unless the operator says so
    assert any(
        f"127.0.0.1:{port} unreachable" in r for r in run_preflight(cfg, "sim", strict=True).reasons
    )


def test_collector_listening_then_telemetry_ok(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        endpoint = f"http://127.0.0.1:{port}"
        # metrics_port 0 (a free one at start): the default 9464 may be held by any deployment
        # or test run on this machine, which would make this check warn for another reason.
        cfg = config(
            tmp_path / "state",
            telemetry={
                "traces_exporter": "otlp-http",
                "otlp_endpoint": endpoint,
                "metrics_port": 0,
            },
        )
        result = run_preflight(cfg, "sim")
    assert statuses(result)["telemetry"] == "ok", result.checks


def test_metrics_port_taken_then_telemetry_warns_naming_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = config(tmp_path / "state", telemetry={"metrics_port": port})
        result = run_preflight(cfg, "sim", strict=True)
    assert statuses(result)["telemetry"] == "warn"
    assert any(f"127.0.0.1:{port} taken" in r for r in result.reasons)


def test_preflight_ib_against_the_fake_tws_then_account_positions_and_identity(
    tmp_path: Path,
) -> None:
    from tests.standins.tws import FakeTws

    with FakeTws() as fake:
        fake.set_position("SPY", 10, 500.0)
        fake.set_account_values(net_liquidation=1_234_567.89, total_cash=987_654.32)
        ib = {"host": "127.0.0.1", "port": fake.port, "client_id": 40, "symbols": ["SPY"]}
        cfg = config(tmp_path / "state", venue={"kind": "ib", "ib": ib})
        result = run_preflight(cfg, "ib")
        venue = next(c for c in result.checks if c.name == "venue")
        assert venue.status == "ok" and "DU1234567 (paper)" in venue.detail, venue
        assert "1 position(s)" in venue.detail  # SPY, read from TWS
        assert statuses(result)["reconciliation"] == "warn"  # journal flat, venue long SPY
        balances = next(c for c in result.checks if c.name == "balances")
        assert balances.status == "ok", balances
        assert "net liquidation 1,234,567.89 USD" in balances.detail, balances
        assert "cash 987,654.32 USD" in balances.detail, balances
        assert balances.data["account"] == {
            "net_liquidation": 1_234_567.89,
            "total_cash": 987_654.32,
            "currency": "USD",
        }
        # The probe hung up; the fake notices the closed socket on its own loop, a moment later.
        eventually(lambda: fake.client_ids() == [], what="the preflight probe disconnected")
    with FakeTws(accounts=("U123",)) as live:
        ib_live = {**ib, "port": live.port}
        refused = run_preflight(config(tmp_path / "s2", venue={"kind": "ib", "ib": ib_live}), "ib")
        assert not refused.ready
        assert any("not a paper (DU...) account" in r for r in refused.reasons)


def test_state_dir_held_by_another_node_then_not_ready_naming_it_never_fresh(
    tmp_path: Path,
) -> None:
    where = "'pf' is not running; its state dir is /srv/tp/pf on node 10.1.2.3 (node id b)"
    result = run_preflight(config(tmp_path / "state"), "sim", held_elsewhere=where)
    assert not result.ready
    assert f"state dir: {where}" in result.reasons
    assert statuses(result)["venue"] == "fail"
    details = " ".join(c.detail for c in result.checks)
    assert "fresh" not in details and "starts flat" not in details
    # Control: the same state dir read here is a fresh deployment, ready.
    assert run_preflight(config(tmp_path / "state"), "sim").ready


def test_a_running_deployments_metrics_endpoint_in_use_is_reported(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from tradeplane.cli import preflight

    telemetry = {
        "metrics_endpoint": "http://127.0.0.1:41234/metrics",
        "metrics_note": "port 9464 taken, serving on 41234",
    }
    monkeypatch.setattr(preflight, "call_running_within", lambda *args: {"telemetry": telemetry})
    check = preflight._telemetry_check(config(tmp_path / "state"), running=object())
    assert check.status == "ok"
    assert "metrics served at http://127.0.0.1:41234/metrics (port 9464 taken" in check.detail
    assert check.data["metrics_endpoint"] == "http://127.0.0.1:41234/metrics"


def test_a_taken_metrics_port_before_start_warns_that_another_will_be_served(
    tmp_path: Path,
) -> None:
    from tradeplane.cli import preflight

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        cfg = config(tmp_path / "state", telemetry={"metrics_port": port})
        check = preflight._telemetry_check(cfg, running=None)
    assert check.status == "warn"
    assert "would serve on another port (shown by status)" in check.detail
