"""The version comes from the installed package's metadata (pyproject.toml), not a literal."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

import tradeplane
from tradeplane.cli.main import app


def test_version_is_the_installed_distributions_version() -> None:
    assert tradeplane.__version__ == version("tradeplane")


def test_cli_version_option_prints_it_and_exits_zero() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"tradeplane {version('tradeplane')}"
