"""`tradeplane reconcile --example`: offline, credential-free, both report kinds printed."""

from __future__ import annotations

from typer.testing import CliRunner

from tradeplane.cli.main import app


def test_reconcile_example_then_clean_and_mismatched_reports_printed() -> None:
    result = CliRunner().invoke(app, ["reconcile", "--example"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    clean, drifted = result.output.split("2. after the venue drifted")
    assert "clean" in clean and "mismatch" not in clean
    for kind in ("unexpected position", "quantity mismatch", "missing order", "unexpected order"):
        assert kind in drifted


def test_reconcile_without_example_then_points_to_preflight_and_fails() -> None:
    result = CliRunner().invoke(app, ["reconcile"])
    assert result.exit_code == 2 and "preflight" in result.output
