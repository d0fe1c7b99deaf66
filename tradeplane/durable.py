"""The two durability primitives every writer of a state dir needs (the journal, the sim venue's
book): flush a file's data, and flush a directory so a rename or a new file in it survives a
crash. Apart from ``journal`` so a venue can use them without depending on the journal."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(fd: int) -> None:
    # fdatasync also flushes the size change an append makes; macOS has only fsync.
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
