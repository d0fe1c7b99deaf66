"""Startup reconciliation, offline: a clean start, then the differences a drifted venue shows.

Run with ``.venv/bin/python examples/reconcile_example.py`` (or ``tradeplane reconcile --example``).
Everything lives in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tradeplane.cli.reconcile_example import run_example


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tradeplane-reconcile-") as tmp:
        at_start, after_drift = run_example(Path(tmp))
    for title, report in (("at start", at_start), ("after the venue drifted", after_drift)):
        print(f"== {title}: {report.summary()}")
        print("\n".join(report.lines()))


if __name__ == "__main__":
    main()
