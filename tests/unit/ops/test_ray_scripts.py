"""ops/ray/join-worker.sh's checks, before any Ray starts (``--check-only``)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tradeplane.cli.cluster_cmd import local_versions, versions_line

ROOT = Path(__file__).resolve().parents[3]
JOIN = ROOT / "ops" / "ray" / "join-worker.sh"
TOKEN = "ab" * 32


def join(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAY_AUTH", "TRADEPLANE_RAY", "TRADEPLANE_CLUSTER"))
    }
    env.update(
        HOME=str(tmp_path),
        TRADEPLANE_RAY_DIR=str(tmp_path / "ray"),
        TRADEPLANE_PYTHON=sys.executable,
    )
    env.update(extra)
    return subprocess.run(
        [
            str(JOIN),
            "--address",
            "127.0.0.1:6379",
            "--interface",
            "127.0.0.1",
            "--check-only",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def head_files(tmp_path: Path, versions: str) -> tuple[Path, Path]:
    token, versions_file = tmp_path / "handed-token", tmp_path / "handed-versions"
    token.write_text(TOKEN + "\n")
    versions_file.write_text(versions + "\n")
    return token, versions_file


def test_join_when_versions_match_then_token_installed_0600(tmp_path: Path) -> None:
    token, versions = head_files(tmp_path, versions_line(local_versions()))
    out = join(tmp_path, "--token-file", str(token), "--versions", str(versions))
    assert out.returncode == 0, out.stderr
    installed = tmp_path / "ray" / "auth_token"
    assert installed.read_text() == TOKEN
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ray").stat().st_mode) == 0o700
    env_file = (tmp_path / "ray" / "env").read_text()
    assert f"RAY_AUTH_TOKEN_PATH={installed}" in env_file
    assert "RAY_AUTH_MODE=token" in env_file
    assert TOKEN not in env_file


def test_join_when_tradeplane_differs_then_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    other = dict(local_versions(), tradeplane="0.0.9+000000000000")
    token, versions = head_files(tmp_path, versions_line(other))
    out = join(tmp_path, "--token-file", str(token), "--versions", str(versions))
    assert out.returncode == 3
    assert "versions differ" in out.stderr and "0.0.9+000000000000" in out.stderr
    assert not (tmp_path / "ray" / "auth_token").exists()


def test_join_when_ray_differs_then_refused(tmp_path: Path) -> None:
    other = versions_line(dict(local_versions(), ray="1.0.0"))
    out = join(tmp_path, TRADEPLANE_CLUSTER_VERSIONS=other, RAY_AUTH_TOKEN=TOKEN)
    assert out.returncode == 3


def test_join_when_token_given_in_variable_then_written_to_file(tmp_path: Path) -> None:
    line = versions_line(local_versions())
    out = join(tmp_path, TRADEPLANE_CLUSTER_VERSIONS=line, RAY_AUTH_TOKEN=TOKEN)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "ray" / "auth_token").read_text() == TOKEN


def test_join_without_token_or_versions_then_refused(tmp_path: Path) -> None:
    line = versions_line(local_versions())
    assert join(tmp_path, TRADEPLANE_CLUSTER_VERSIONS=line).returncode == 2
    assert join(tmp_path, RAY_AUTH_TOKEN=TOKEN).returncode == 2


def test_join_when_interface_is_not_this_machines_then_refused(tmp_path: Path) -> None:
    line = versions_line(local_versions())
    env = {"TRADEPLANE_CLUSTER_VERSIONS": line, "RAY_AUTH_TOKEN": TOKEN}
    out = join(tmp_path, "--interface", "no-such-iface0", **env)
    assert out.returncode == 2 and "no-such-iface0" in out.stderr


def test_join_when_address_is_not_on_this_machine_then_refused(tmp_path: Path) -> None:
    line = versions_line(local_versions())
    env = {"TRADEPLANE_CLUSTER_VERSIONS": line, "RAY_AUTH_TOKEN": TOKEN}
    out = join(tmp_path, "--interface", "198.51.100.254", **env)  # TEST-NET-2: nobody's
    assert out.returncode == 2 and "not an address of this machine" in out.stderr
