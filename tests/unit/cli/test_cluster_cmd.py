"""Versions every node of a cluster must share (tradeplane.cli.cluster_cmd), and the loopback
flag tradeplane sets on import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tradeplane.cli.cluster_cmd import (
    differences,
    local_versions,
    parse_versions_line,
    source_digest,
    versions_line,
)


def test_versions_line_round_trips() -> None:
    versions = local_versions()
    assert set(versions) == {"tradeplane", "ray", "python"}
    assert parse_versions_line(versions_line(versions)) == versions


def test_source_digest_when_one_file_changes_then_differs(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    before = source_digest(tmp_path)
    assert source_digest(tmp_path) == before
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert source_digest(tmp_path) != before


def test_differences_name_each_component() -> None:
    expected = {"tradeplane": "1+a", "ray": "2.60.0", "python": "3.11.7"}
    assert differences(expected, dict(expected)) == []
    found = dict(expected, ray="2.59.0")
    assert differences(expected, found) == ["ray: expected 2.60.0, found 2.59.0"]


def flag_after_import(**env: str) -> str:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "TRADEPLANE_RAY_NODE_IP")
    }
    code = "import os, tradeplane; print(os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'])"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_by_default_then_loopback_only() -> None:
    assert flag_after_import() == "0"
    assert flag_after_import(TRADEPLANE_RAY_NODE_IP="127.0.0.1") == "0"


def test_import_when_cluster_interface_configured_then_multi_node_allowed() -> None:
    assert flag_after_import(TRADEPLANE_RAY_NODE_IP="10.0.0.5") == "1"


def test_import_when_flag_set_explicitly_then_left_as_is() -> None:
    assert flag_after_import(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="1") == "1"
    assert (
        flag_after_import(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", TRADEPLANE_RAY_NODE_IP="10.0.0.5")
        == "0"
    )
