from __future__ import annotations

from pathlib import Path

import pytest

from tests.report_samples import write_backtest_dir, write_journal


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return write_journal(tmp_path / "state")


@pytest.fixture
def backtest_dir(tmp_path: Path) -> Path:
    return write_backtest_dir(tmp_path / "bt")
