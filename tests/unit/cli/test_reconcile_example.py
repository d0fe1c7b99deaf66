from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeplane.cli.reconcile_example import run_example
from tradeplane.core.reconcile import ReconciliationReport


@pytest.fixture(scope="module")
def reports(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ReconciliationReport, ReconciliationReport]:
    return run_example(tmp_path_factory.mktemp("reconcile-example"))


def test_a_venue_driven_only_through_the_broker_path_reconciles_clean(
    reports: tuple[ReconciliationReport, ReconciliationReport],
) -> None:
    at_start, _ = reports
    assert at_start.clean, at_start.lines()
    assert at_start.summary() == "clean"
    assert at_start.venue == "sim"


def test_a_hand_placed_order_at_the_venue_is_unexpected(
    reports: tuple[ReconciliationReport, ReconciliationReport],
) -> None:
    _, drifted = reports
    assert [o["client_order_id"] for o in drifted.unexpected_orders] == ["manual-1"]
    assert drifted.matched_by_fingerprint == []


def test_positions_changed_outside_tradeplane_are_named(
    reports: tuple[ReconciliationReport, ReconciliationReport],
) -> None:
    _, drifted = reports
    assert drifted.quantity_mismatches == [
        {"kind": "position", "symbol": "AAA", "expected": 10.0, "venue": 14.0, "difference": 4.0}
    ]
    assert drifted.unexpected_positions == [{"symbol": "BBB", "venue": 2.0}]
    assert drifted.missing_positions == []


def test_our_order_cancelled_at_the_venue_behind_our_back_is_missing(
    reports: tuple[ReconciliationReport, ReconciliationReport],
) -> None:
    _, drifted = reports
    (missing,) = drifted.missing_orders
    assert missing["client_order_id"].startswith("tp")
    assert (missing["side"], missing["remaining"], missing["limit_price"]) == ("buy", 5.0, 90.0)
    assert missing["status"] == "accepted"  # the journal never heard of the cancel


def test_the_drifted_report_is_dirty_and_survives_json(
    reports: tuple[ReconciliationReport, ReconciliationReport],
) -> None:
    _, drifted = reports
    assert not drifted.clean
    assert drifted.summary().startswith("4 mismatches: ")
    assert ReconciliationReport.from_dict(json.loads(json.dumps(drifted.to_dict()))) == drifted


def test_the_example_leaves_its_state_in_the_work_dir_only(tmp_path: Path) -> None:
    run_example(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"state"}
    assert (tmp_path / "state" / "venue" / "sim.db").is_file()
