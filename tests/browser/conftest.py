"""A headless chromium for the report's page: the distribution's (``make browser`` installs it
where apt-get runs as root), driven by playwright (its own browser download is never used).
Without one, the browser tests skip and say why."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    given = os.environ.get("TRADEPLANE_CHROMIUM")
    if given:
        return given
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


# Module scope: the browser (and playwright's event loop) are gone before other tests run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no chromium on PATH (`make browser` installs the distribution's where apt-get runs "
            "as root; or set TRADEPLANE_CHROMIUM)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    with sync_api.sync_playwright() as pw:
        # --no-sandbox: chromium refuses to start its sandbox as root (containers, CI).
        b = pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()
