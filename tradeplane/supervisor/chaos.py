"""Chaos tooling: kill a running deployment's actors on a seeded schedule (DESIGN §4).

The first half is pure (durations, kinds to roles, the kill plan) and imports no Ray, so the CLI
can validate its arguments and the unit tests can run without a cluster. The second half finds
an actor's worker process and kills it, either the way Ray would (``ray.kill``) or the way a
crash would (SIGKILL to the worker process, on whichever node it runs).
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tradeplane.protocol.api import ChildApi
from tradeplane.protocol.roles import NAMESPACE, ROLE_SUPERVISOR, is_strategy_role

ACTOR_KINDS = ("strategy", "risk", "broker", "feed", "journal", "supervisor", "venue")
KILL_MODES = ("sigkill", "ray-kill")
RUN_MODES = (*KILL_MODES, "mixed")
JITTER = 0.2
SUPERVISOR: str = ROLE_SUPERVISOR

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?$")


# -- pure: arguments and the plan ---------------------------------------------------------------


def parse_duration(text: str | float) -> float:
    """Seconds from ``"500ms"``, ``"5s"``, ``"2m"``, ``"1h"`` or a bare number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"invalid duration {text!r}: must not be negative")
        return float(text)
    match = _DURATION.match(str(text).strip().lower())
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a number with an optional unit "
            f"(ms, s, m, h), e.g. 500ms, 5s, 2m, 1.5"
        )
    value, unit = match.groups()
    return float(value) * _UNITS[unit or "s"]


def split_kinds(text: str) -> list[str]:
    """``"strategy, risk"`` -> ``["strategy", "risk"]`` (the CLI's comma-separated form)."""
    return [k.strip().lower() for k in text.split(",") if k.strip()]


def expand_kinds(kinds: Iterable[str], roles: Iterable[str]) -> list[str]:
    """The deployment's role names for actor ``kinds``, in the order given, without repeats.

    ``strategy`` is every ``strategy/<name>`` role; ``supervisor`` is the supervisor itself
    (never listed among a deployment's children, so always available)."""
    wanted = [k.strip().lower() for k in kinds if k.strip()]
    if not wanted:
        raise ValueError(f"no actor kind given; valid kinds: {', '.join(ACTOR_KINDS)}")
    unknown = [k for k in wanted if k not in ACTOR_KINDS]
    if unknown:
        raise ValueError(
            f"unknown actor kind(s) {', '.join(map(repr, unknown))}; "
            f"valid kinds: {', '.join(ACTOR_KINDS)}"
        )
    available = list(dict.fromkeys(roles))
    out: list[str] = []
    for kind in wanted:
        if kind == SUPERVISOR:
            matched = [SUPERVISOR]
        elif kind == "strategy":
            matched = sorted(r for r in available if is_strategy_role(r))
        else:
            matched = [kind] if kind in available else []
        if not matched:
            raise ValueError(
                f"the deployment has no {kind} actor (its actors: {', '.join(available) or '-'})"
            )
        out.extend(r for r in matched if r not in out)
    return out


@dataclass(frozen=True, slots=True)
class ChaosStep:
    at_s: float
    """Seconds after the start of the run."""
    role: str
    mode: str = "sigkill"


class ChaosPlan:
    @staticmethod
    def build(
        targets: Iterable[str],
        every_s: float,
        duration_s: float,
        seed: int | None,
        mode: str = "sigkill",
    ) -> list[ChaosStep]:
        """One kill every ``every_s`` (each gap jittered by up to ±20 %) until ``duration_s``,
        the role drawn among ``targets``. Jitter keeps kills from locking into step with a
        periodic loop (the supervisor tick, bar cadence); the seed makes a failing run
        repeatable. The times and roles do not depend on ``mode``."""
        roles = list(dict.fromkeys(targets))
        if not roles:
            raise ValueError("no kill targets")
        if not every_s > 0:
            raise ValueError(f"the kill interval must be positive, got {every_s}")
        if duration_s < 0:
            raise ValueError(f"the duration must not be negative, got {duration_s}")
        if mode not in RUN_MODES:
            raise ValueError(f"unknown kill mode {mode!r}; valid modes: {', '.join(RUN_MODES)}")
        rng = random.Random(seed)
        # "mixed" alternates, from a seeded start, so both kinds of death occur in any run.
        first = rng.random() < 0.5
        steps: list[ChaosStep] = []
        at = 0.0
        while True:
            at += every_s * rng.uniform(1.0 - JITTER, 1.0 + JITTER)
            if at > duration_s:
                return steps
            role = rng.choice(roles)
            step_mode = KILL_MODES[(len(steps) + first) % 2] if mode == "mixed" else mode
            steps.append(ChaosStep(round(at, 3), role, step_mode))


# -- Ray: find and kill an actor's process ----------------------------------------------------


def _name(deployment: str, role: str) -> str:
    """The actor playing ``role`` now (a promoted standby keeps its own name; so does a
    supervisor standby that took over)."""
    from tradeplane.cluster.names import current_name

    return current_name(deployment, role)


def _locate(deployment: str, role: str, timeout_s: float) -> tuple[Any | None, dict[str, Any]]:
    """The actor's handle and where its process is. Each source can fail or lag while the
    actor is being restarted, so the answer is assembled from whichever ones respond."""
    import ray

    from tradeplane.actors.common import Remote

    name = _name(deployment, role)
    info: dict[str, Any] = {
        "role": role,
        "name": name,
        "actor_id": None,
        "pid": None,
        "node_id": None,
        "ip": None,
        "state": None,
        "source": None,
    }
    try:
        handle = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        info["state"] = "NOT_FOUND"
        return None, info
    info["actor_id"] = handle._actor_id.hex()
    if role != SUPERVISOR:
        # The actor's own word is the freshest: the cluster's tables may still show the
        # previous process for a moment after a restart.
        try:
            beat = ray.get(Remote[ChildApi](handle).call(ChildApi.heartbeat), timeout=timeout_s)
            pid = (beat.get("process") or {}).get("pid")
            if pid:
                info["pid"], info["source"] = int(pid), "heartbeat"
        except Exception:  # dead, restarting or hung: the tables below still say where it was
            pass
    row = _gcs_row(info["actor_id"]) or _state_api_row(name, timeout_s)
    if row:
        info["state"] = row.get("state")
        info["node_id"] = row.get("node_id") or None
        info["ip"] = row.get("ip") or _node_ip(info["node_id"])
        if info["pid"] is None and row.get("pid"):
            info["pid"], info["source"] = int(row["pid"]), row["source"]
    return handle, info


def _gcs_row(actor_id: str) -> dict[str, Any] | None:
    """The GCS actor table, read directly: it needs no dashboard (a private Ray, as the
    benchmarks start, has none) and is what the state API itself reports from."""
    try:
        from ray._private import state as ray_state

        row = ray_state.actors(actor_id=actor_id)
    except Exception:
        return None
    if not row:
        return None
    address = row.get("Address") or {}
    return {
        "state": row.get("State"),
        "pid": row.get("Pid"),
        "node_id": address.get("NodeID"),
        "ip": address.get("IPAddress"),
        "source": "gcs",
    }


def _state_api_row(name: str, timeout_s: float) -> dict[str, Any] | None:
    try:
        from ray.util.state import list_actors

        rows = list_actors(
            filters=[("name", "=", name)],
            timeout=max(1, int(timeout_s)),
            raise_on_missing_output=False,
        )
    except Exception:
        return None
    # A name is reused after each restart; the dead holders stay listed for a while.
    rows = [r for r in rows if getattr(r, "ray_namespace", NAMESPACE) in (NAMESPACE, None)]
    alive = [r for r in rows if r.state == "ALIVE"] or rows
    if not alive:
        return None
    row = alive[-1]
    return {
        "state": row.state,
        "pid": row.pid,
        "node_id": row.node_id,
        "ip": None,
        "source": "state-api",
    }


def _node_ip(node_id: str | None) -> str | None:
    if not node_id:
        return None
    try:
        import ray

        for node in ray.nodes():
            if node.get("NodeID") == node_id:
                return str(node.get("NodeManagerAddress"))
    except Exception:
        pass
    return None


def actor_process(deployment: str, role: str, *, timeout_s: float = 2.0) -> dict[str, Any]:
    """Where ``role``'s worker process runs: pid, node_id, ip, state (``ALIVE``,
    ``RESTARTING``, ``DEAD``, ``NOT_FOUND``...) and which source gave the pid."""
    _, info = _locate(deployment, role, timeout_s)
    return info


def _is_ray_worker(pid: int) -> tuple[bool, str]:
    """Refuse to SIGKILL anything but a Ray worker: a pid read a moment ago may since have
    been reused by an unrelated process."""
    if pid <= 1 or pid == os.getpid():
        return False, f"refusing to kill pid {pid}"
    try:
        import psutil

        proc = psutil.Process(pid)
        title = " ".join(proc.cmdline())
    except Exception as exc:
        return False, f"pid {pid}: {type(exc).__name__}: {exc}"
    if title.startswith("ray::") or "default_worker.py" in title:
        return True, ""
    return False, f"pid {pid} is not a Ray worker ({title[:80]!r})"


def sigkill_local(pid: int) -> dict[str, Any]:
    """SIGKILL ``pid`` on this host if it is a Ray worker; what happened, never raises."""
    ok, why = _is_ray_worker(pid)
    if not ok:
        return {"ok": False, "error": why}
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError as exc:
        return {"ok": False, "error": f"kill {pid}: {exc}"}
    return {"ok": True, "error": None}


_remote_sigkill: Any = None


def _sigkill_on_node(node_id: str, pid: int, timeout_s: float) -> dict[str, Any]:
    """The process is on another host: run the kill there, pinned to that node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    global _remote_sigkill
    if _remote_sigkill is None:
        _remote_sigkill = ray.remote(num_cpus=0, max_retries=0)(sigkill_local)
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
    ref = _remote_sigkill.options(scheduling_strategy=strategy).remote(pid)
    result: dict[str, Any] = ray.get(ref, timeout=timeout_s)
    return result


def kill_actor(
    deployment: str, role: str, mode: str = "sigkill", *, timeout_s: float = 5.0
) -> dict[str, Any]:
    """Kill ``role``'s actor once; returns {role, mode, pid, node, ts, ok, error}.

    ``ray-kill`` asks Ray to kill it: children without a Ray restart (the tradeplane
    supervisor restarts them), the supervisor with one (Ray restarts it). ``sigkill`` is a
    crash: the worker process dies with no goodbye. A role that is not there (dead, being
    restarted) comes back as ``ok=False`` with the reason; this never raises for that."""
    if mode not in KILL_MODES:
        raise ValueError(f"unknown kill mode {mode!r}; valid modes: {', '.join(KILL_MODES)}")
    result: dict[str, Any] = {
        "role": role,
        "mode": mode,
        "pid": None,
        "node": None,
        "ts": time.time(),
        "ok": False,
        "error": None,
    }
    try:
        handle, info = _locate(deployment, role, min(timeout_s, 2.0))
        result["pid"], result["node"] = info["pid"], info["node_id"]
        if handle is None:
            result["error"] = "not found (dead, or being restarted)"
            return result
        if info["state"] not in (None, "ALIVE"):
            result["error"] = f"not alive ({info['state']})"
            return result
        result["ts"] = time.time()
        if mode == "ray-kill":
            import ray

            ray.kill(handle, no_restart=role != SUPERVISOR)
            result["ok"] = True
            return result
        if info["pid"] is None:
            result["error"] = "pid unknown"
            return result
        outcome = _sigkill(info, timeout_s)
        result["ok"], result["error"] = outcome["ok"], outcome["error"]
    except Exception as exc:  # a chaos run reports a failed kill and goes on
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return result


def _sigkill(info: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    import ray

    node_id = info["node_id"]
    here = ray.get_runtime_context().get_node_id()
    if node_id is None or node_id == here:
        return sigkill_local(int(info["pid"]))
    return _sigkill_on_node(node_id, int(info["pid"]), timeout_s)


# -- a chaos run --------------------------------------------------------------------------------

StatusFn = Callable[[str], "dict[str, Any] | None"]
KillFn = Callable[[str, str, str], "dict[str, Any]"]


def default_status(deployment: str) -> dict[str, Any] | None:
    """The deployment's status, or None while its supervisor cannot answer (restarting)."""
    from tradeplane.supervisor import deployment as deployments

    try:
        return deployments.status(deployment, timeout_s=5.0)
    except Exception:
        return None


def deployment_roles(
    deployment: str,
    status_fn: StatusFn = default_status,
    *,
    wait_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str] | None:
    """The deployment's actor roles (children plus the supervisor), waiting out a supervisor
    restart for up to ``wait_s``; None when it never answers."""
    deadline = clock() + wait_s
    while True:
        status = status_fn(deployment)
        children = (status or {}).get("children")
        if children:
            return [*children, SUPERVISOR]
        if clock() >= deadline:
            return None
        sleep(0.5)


def run_chaos(
    deployment: str,
    kinds: Iterable[str],
    every_s: float,
    duration_s: float,
    mode: str = "sigkill",
    seed: int | None = None,
    *,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    status_fn: StatusFn = default_status,
    kill_fn: KillFn | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Run the plan in real time against a running deployment; each kill's result (with
    ``at_s``, seconds since the start) goes to ``on_step`` as it happens and all are returned.

    Stops early when the deployment has failed or stopped: there is nothing left to recover.
    Raises ``ValueError`` for bad kinds, interval or mode, ``LookupError`` when the deployment
    does not answer."""
    kinds = list(kinds)
    roles = deployment_roles(deployment, status_fn, sleep=sleep, clock=clock)
    if roles is None:
        raise LookupError(f"deployment {deployment!r} is not running or does not answer")
    steps = ChaosPlan.build(expand_kinds(kinds, roles), every_s, duration_s, seed, mode)
    kill = kill_fn or kill_actor
    results: list[dict[str, Any]] = []
    start = clock()
    for step in steps:
        wait = start + step.at_s - clock()
        if wait > 0:
            sleep(wait)
        status = status_fn(deployment)
        if status is not None and _over(status):
            break
        result = dict(kill(deployment, step.role, step.mode))
        result["at_s"] = round(clock() - start, 3)
        result["planned_at_s"] = step.at_s
        results.append(result)
        if on_step is not None:
            on_step(result)
    return results


def _over(status: dict[str, Any]) -> bool:
    return status.get("phase") in ("failed", "stopping", "stopped") or status.get("health") in (
        "failed",
        "stopped",
    )


def kills_by_role(results: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """{role: {"kills": attempted, "ok": done, "failed": not done}} for a run's summary."""
    out: dict[str, dict[str, int]] = {}
    for r in results:
        row = out.setdefault(str(r.get("role")), {"kills": 0, "ok": 0, "failed": 0})
        row["kills"] += 1
        row["ok" if r.get("ok") else "failed"] += 1
    return dict(sorted(out.items()))
