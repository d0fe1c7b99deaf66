"""The CLI's unit tests run without a cluster, whatever Ray runs on this machine: a command that
would look for a running deployment on the node's cluster finds none (tests of that path give
their own answer)."""

from __future__ import annotations

import pytest

from tradeplane.cli import cluster_reads


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_reads, "cluster_address", lambda address: None)
