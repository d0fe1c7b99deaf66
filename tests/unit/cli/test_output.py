"""The CLI's consoles and streams mask every secret the process knows, however it is shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.table import Table
from typer.testing import CliRunner

from tests.unit.journal.factories import DEPLOYMENT, rec
from tradeplane.cli import output
from tradeplane.cli.main import app
from tradeplane.core.redact import REDACTOR, register_secrets
from tradeplane.journal.store import JournalStore

SECRET = "tok-9c2d41f7aa30e1b8"


@pytest.fixture
def secret() -> Iterator[str]:
    register_secrets([SECRET])
    yield SECRET
    REDACTOR.clear()


def test_console_masks_a_secret_even_where_rich_would_wrap_or_truncate_it(
    secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = Table()
    table.add_column("token", max_width=8, no_wrap=True, overflow="ellipsis")
    table.add_row(secret)
    output.console.print(table)
    output.console.print("x" * 75 + secret)  # would wrap mid-secret at 80 columns
    output.err.print(f"failed with {secret}")
    out, err = capsys.readouterr()
    assert "***" in out and "failed with ***" in err
    for text in (out, err):
        assert secret[:6] not in text.replace("\n", "")


def test_the_plain_stream_masks_what_is_written_through_it(
    secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    output.stdout.write(json.dumps({"token": secret}) + "\n")
    assert capsys.readouterr().out == '{"token": "***"}\n'


def test_status_from_a_state_dir_masks_a_secret_the_journal_holds_in_text_and_json(
    secret: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with JournalStore.open(state, DEPLOYMENT) as store:  # written around the journal actor
        store.commit([rec("leak", "venue_message_rejected", {"reason": f"key {secret}"})])
    runner = CliRunner()
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["status", DEPLOYMENT, "--state-dir", str(state), *extra])
        assert result.exit_code == 0, result.output
        assert "***" in result.output
        assert secret[:6] not in result.output
