"""``tradeplane cluster versions|check``: every node of a cluster must run the same tradeplane,
Ray and Python.

Ray refuses some mismatches itself (a driver of another Ray or Python version), but not a node
whose tradeplane differs: the same version number with other code, from a checkout that was not
updated. So tradeplane is identified by its version *and* a digest of its source files, and the
check runs a task pinned to each alive node (``NodeAffinitySchedulingStrategy``, ``soft=False``),
which reports what that node's workers really import, not what an operator believes is installed.
``ops/ray/join-worker.sh`` compares the same line before a worker joins
(``python -m tradeplane.cli.cluster_cmd``).
"""

from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer

cluster_app = typer.Typer(no_args_is_help=True, help="Check the Ray cluster's nodes.")

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def source_digest(root: Path = PACKAGE_ROOT) -> str:
    """A digest of the package's Python sources (paths and contents), stable across machines."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def local_versions() -> dict[str, str]:
    """What this Python process runs: tradeplane (version+source digest), Ray and Python."""
    from tradeplane import __version__

    try:
        ray_version = metadata.version("ray")
    except metadata.PackageNotFoundError:
        ray_version = "none"
    return {
        "tradeplane": f"{__version__}+{source_digest()}",
        "ray": ray_version,
        "python": platform.python_version(),
    }


def versions_line(versions: dict[str, str]) -> str:
    return " ".join(f"{k}={versions[k]}" for k in sorted(versions))


def parse_versions_line(line: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in line.split() if "=" in part)
    return {k: v for k, v in pairs}


def differences(expected: dict[str, str], found: dict[str, str]) -> list[str]:
    """Each component whose version differs, as ``name: expected X, found Y``."""
    return [
        f"{k}: expected {expected.get(k)}, found {found.get(k)}"
        for k in sorted(set(expected) | set(found))
        if expected.get(k) != found.get(k)
    ]


def node_versions(timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Run ``local_versions`` on every alive node (one zero-CPU task pinned to each)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(local_versions)
    alive = [n for n in ray.nodes() if n.get("Alive")]
    refs = [
        probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote()
        for n in alive
    ]
    results: list[dict[str, Any]] = []
    for node, ref in zip(alive, refs, strict=True):
        try:
            found: dict[str, str] | None = ray.get(ref, timeout=timeout_s)
            error = None
        except Exception as exc:  # a node that cannot run the probe fails the check
            found, error = None, f"{type(exc).__name__}: {exc}"
        results.append(
            {
                "node_id": node["NodeID"],
                "node_ip": node.get("NodeManagerAddress"),
                "versions": found,
                "error": error,
            }
        )
    return results


AddressOpt = Annotated[
    str, typer.Option("--address", help="Ray cluster address (host:port or auto).")
]


@cluster_app.command("versions")
def versions_command() -> None:
    """Print this machine's tradeplane, Ray and Python versions (one line)."""
    print(versions_line(local_versions()))


@cluster_app.command("check")
def check_command(address: AddressOpt = "auto") -> None:
    """Compare the versions every alive node runs with this machine's; exit 1 on any mismatch."""
    from tradeplane.cli.output import console, err
    from tradeplane.supervisor import deployment

    expected = local_versions()
    deployment.connect(address)
    failed = False
    for node in node_versions():
        found = node["versions"]
        problems = [node["error"]] if found is None else differences(expected, found)
        failed = failed or bool(problems)
        verdict = "ok" if not problems else "MISMATCH " + "; ".join(problems)
        console.print(f"{node['node_ip']}\t{node['node_id'][:12]}\t{verdict}")
    if failed:
        err.print(f"expected on every node: {versions_line(expected)}")
        raise typer.Exit(1)


if __name__ == "__main__":  # used by ops/ray/*.sh before Ray is started on a node
    if sys.argv[1:] not in ([], ["versions"]):
        raise SystemExit("usage: python -m tradeplane.cli.cluster_cmd [versions]")
    print(versions_line(local_versions()))
