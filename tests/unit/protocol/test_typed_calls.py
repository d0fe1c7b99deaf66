"""A remote call to a method that does not exist, with the wrong arguments, or on the wrong role
fails ``mypy``, not production: mypy is run on ``tests/typing/wrong_calls.py`` and must reject
every line marked ``# expect:`` there, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[3]
WRONG = ROOT / "tests" / "typing" / "wrong_calls.py"


def test_mypy_rejects_each_wrong_remote_call_and_accepts_the_right_ones() -> None:
    expected = {
        n for n, line in enumerate(WRONG.read_text().splitlines(), 1) if "# expect:" in line
    }
    out, err, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            str(WRONG),
        ]
    )
    flagged = {int(m.group(1)) for m in re.finditer(rf"{WRONG.name}:(\d+): error", out)}
    assert status == 1, (out, err)
    assert flagged == expected, out
