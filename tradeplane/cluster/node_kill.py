"""Chaos at the scale of a machine: a worker node of the cluster lost at once. Its raylet is
SIGKILLed by a task pinned to that node, so Ray finds out the way it would of a machine pulled
from the rack: by missed health checks. The state node and the head are never chosen (losing
them is tested on purpose, not at random)."""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

import psutil
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tradeplane.cluster import kv
from tradeplane.cluster.nodes import cluster_nodes
from tradeplane.cluster.placement import NodeInfo


def candidates(deployment: str) -> tuple[list[NodeInfo], dict[str, list[str]]]:
    """Live worker nodes that are not the deployment's state node, those hosting its roles
    first; and the roles each node hosts."""
    record = kv.get_run(deployment)
    if record is None:
        raise LookupError(f"no run record for {deployment!r}: is it running on this cluster?")
    hosted: dict[str, list[str]] = {}
    for role, node in record.placement.items():
        hosted.setdefault(node, []).append(role)
    eligible = [
        n
        for n in cluster_nodes()
        if n.alive and not n.is_head and n.node_id != record.state_node_id
    ]
    eligible.sort(key=lambda n: (n.node_id not in hosted, n.node_id))
    return eligible, hosted


@ray.remote(num_cpus=0, max_retries=0)
def _kill_own_raylet() -> int:
    """Runs on the victim: SIGKILL the raylet this worker was started by."""
    for parent in psutil.Process(os.getpid()).parents():
        if "raylet" in parent.name():
            os.kill(parent.pid, signal.SIGKILL)
            return parent.pid
    raise RuntimeError("no raylet among this worker's parents")


def kill_node(deployment: str, seed: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """Lose one worker node at random (one hosting the deployment's roles when any does);
    returns {node_id, node_ip, roles, raylet_pid, ts, ok, error}."""
    nodes, hosted = candidates(deployment)
    result: dict[str, Any] = {"ts": time.time(), "ok": False, "error": None, "roles": []}
    began = time.monotonic()
    busy = [n for n in nodes if n.node_id in hosted] or nodes
    if not busy:
        result["error"] = "no worker node other than the state node and the head"
        return result
    victim = random.Random(seed).choice(busy)
    result |= {"node_id": victim.node_id, "node_ip": victim.ip}
    result["roles"] = sorted(hosted.get(victim.node_id, []))
    task = _kill_own_raylet.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(victim.node_id, soft=False)
    ).remote()
    try:
        result["raylet_pid"] = ray.get(task, timeout=timeout_s)
    except Exception as exc:
        # The task's reply may die with its raylet: the node table is the judge.
        result["error"] = f"{type(exc).__name__}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if victim.node_id not in {n.node_id for n in cluster_nodes() if n.alive}:
            result["ok"], result["error"] = True, None
            break
        time.sleep(0.2)
    else:
        result["error"] = result["error"] or f"node still alive after {timeout_s:g}s"
    result["dead_after_s"] = round(time.monotonic() - began, 2)
    return result
