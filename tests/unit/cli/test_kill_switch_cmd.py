"""``kill-switch``: one deployment by name, or every running one with ``--all``; never both."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tradeplane.cli.main import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["on", "--reason", "drill"], "name a deployment, or pass --all"),
        (["on", "demo", "--all", "--reason", "drill"], "--all takes no NAME"),
        (["off", "--all", "--config", "x.toml", "--reason", "drill"], "--all takes no NAME"),
        (["on", "--all"], "--reason must say why"),
        (["halt", "--all", "--reason", "drill"], "expected 'on' or 'off'"),
    ],
)
def test_kill_switch_arguments_that_do_not_name_what_to_halt_are_refused(
    args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["kill-switch", *args])
    assert result.exit_code == 2
    assert message in result.output
