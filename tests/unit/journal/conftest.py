from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.journal.factories import DEPLOYMENT
from tradeplane.journal.store import JournalStore


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path) -> Iterator[JournalStore]:
    s = JournalStore.open(state_dir, DEPLOYMENT)
    yield s
    s.close()
