"""Journal-seq cursor files in the state dir: where a reader off the trading path resumes after
a restart (the span exporter, the alert webhook). Each holds ``{"seq": n, "ts": ...}``, replaced
whole; a backup copies them with the journal (``backup_files``)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

from tradeplane.journal.files import atomic_write

log = logging.getLogger(__name__)

TELEMETRY_CURSOR = "telemetry_cursor.json"
ALERTS_CURSOR = "alerts_cursor.json"
CURSOR_FILES = (TELEMETRY_CURSOR, ALERTS_CURSOR)


def read_cursor(path: Path, default: int, *, what: str) -> int:
    """The seq saved in ``path``, never past ``default`` (the journal's end); ``default`` on a
    first start (``what`` from now on, nothing of older runs) or when the file is unreadable
    (logged)."""
    try:
        seq = int(json.loads(path.read_text(encoding="utf-8"))["seq"])
    except FileNotFoundError:
        return default
    except (ValueError, KeyError, TypeError, OSError) as exc:
        log.warning("%s unreadable (%s): %s from the journal's end", path.name, exc, what)
        return default
    return max(0, min(seq, default))


def write_cursor(path: Path, seq: int) -> None:
    """Best effort (a cursor a crash loses only makes a restart resend a little)."""
    body = json.dumps({"seq": seq, "ts": time.time()}).encode()
    with contextlib.suppress(OSError):
        atomic_write(path, lambda fd: os.write(fd, body), fsync=False)
