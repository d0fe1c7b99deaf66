"""Status read from a state dir without Ray: the journal database opened read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradeplane.actors.journal_reads import status_snapshot
from tradeplane.journal.reader import JournalReader


def offline_status(state_dir: Path, *, tail: int = 10) -> dict[str, Any]:
    with JournalReader.open(state_dir) as reader:
        return status_snapshot(reader, tail=tail)
