"""Create, find and stop deployments from a driver process (the CLI, tests, benchmarks)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tradeplane.actors.common import Remote
from tradeplane.cluster import kv, venue_claims
from tradeplane.cluster.names import (
    SUPERVISOR_STANDBY_SUFFIX,
    current_name,
    named,
    resolve_actor,
    set_current,
    standby_names,
    supervisor_standby_name,
)
from tradeplane.cluster.nodes import cluster_nodes, current_node_id
from tradeplane.cluster.placement import NodeInfo, PlacementError, eligible, resolve_node
from tradeplane.config.models import TradeplaneConfig
from tradeplane.config.settings import without_credentials
from tradeplane.core.errors import OperationalError, root_cause
from tradeplane.protocol.api import SupervisorApi
from tradeplane.protocol.roles import NAMESPACE, ROLE_SUPERVISOR, actor_name

log = logging.getLogger("tradeplane.supervisor")
LOOPBACK = "127.0.0.1"
# A run record in one of these phases may have left actors running (a failed deployment stays
# up for inspection).
LIVE_PHASES = ("starting", "ready", "running", "stopping", "failed")
# `stop` waits at most this long for the supervisor's standby to be gone.
STANDBY_GONE_S = 5.0


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    resources: dict[str, float] | None = None,
) -> None:
    """Attach to ``address`` (``auto`` or host:port), or start a private Ray bound to loopback.

    Ray's own start-up messages (its token-auth notice, its C++ client's retry lines) go to
    ``ray_client_log()``, not to the CLI's stderr; a cluster that cannot be reached or refuses
    this client is an ``OperationalError`` saying which, and where Ray's lines went."""
    if ray.is_initialized():
        return
    if address:
        _use_cluster_token()
        try:
            with _ray_output_to_log():
                ray.init(
                    address=address,
                    namespace=NAMESPACE,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        except Exception as exc:
            raise OperationalError(_attach_failure(address, exc)) from exc
        return
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "1":
        # tradeplane/__init__ sets the loopback default before Ray is imported; if something
        # imported Ray first, enforce it here (Ray consults this flag when it picks addresses).
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    with _quiet(_TOKEN_SETUP_LOGGER):
        ray.init(
            # Private means private: never a cluster some earlier `ray start` left recorded
            # in /tmp/ray (Ray would attach to it, or fail on a dead one).
            address="local",
            _node_ip_address=LOOPBACK,
            include_dashboard=False,
            namespace=NAMESPACE,
            num_cpus=num_cpus,
            resources=resources,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )


_TOKEN_SETUP_LOGGER = "ray._private.authentication.authentication_token_setup"


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Ray's "token authentication is enabled" notice is noise on every CLI call."""
    noisy = logging.getLogger(logger_name)
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        yield
    finally:
        noisy.setLevel(level)


def ray_client_log() -> Path:
    """Where a driver's Ray start-up output goes: beside Ray's own logs (``RAY_TMPDIR`` or
    ``/tmp/ray``), one file per user."""
    root = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray"
    return root / f"tradeplane-client-{os.getuid()}.log"


@contextlib.contextmanager
def _ray_output_to_log() -> Iterator[None]:
    """Points file descriptor 2 at ``ray_client_log()`` while Ray connects: its C++ client
    writes straight to the descriptor (retry warnings, auth failures), past Python's logging."""
    _quiet_cm = _quiet(_TOKEN_SETUP_LOGGER)
    try:
        path = ray_client_log()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:  # no writable log place: keep Ray's lines on stderr rather than lose them
        with _quiet_cm:
            yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        with _quiet_cm:
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _attach_failure(address: str, exc: BaseException) -> str:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 16:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    where = f"Ray's messages: {ray_client_log()}"
    if "AuthenticationError" in text or "InvalidAuthToken" in text:
        return (
            f"the Ray cluster at {address} refused this client: its authentication token is "
            "missing or wrong (put the cluster's token in the file RAY_AUTH_TOKEN_PATH names, "
            f"or in ~/.ray/auth_token; see ops/runbook.md). {where}"
        )
    return f"cannot attach to the Ray cluster at {address}: {type(exc).__name__}: {exc}. {where}"


def _use_cluster_token() -> None:
    """Attaching to a cluster that has token auth (Ray's default since 2.5x) needs the client to
    opt in; do so whenever a token is available, so operators never have to disable auth."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token auth
        return
    with _quiet(_TOKEN_SETUP_LOGGER):
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def supervisor_name(deployment: str) -> str:
    return actor_name(deployment, ROLE_SUPERVISOR)


def find_supervisor(deployment: str) -> Any | None:
    """The supervisor instance acting now (after a standby took over, the standby's name)."""
    return resolve_actor(deployment, ROLE_SUPERVISOR)


def supervisor_instances(deployment: str) -> list[Any]:
    """Every supervisor instance of ``deployment`` Ray knows: the first one and its standby."""
    found = (named(supervisor_name(deployment)), named(supervisor_standby_name(deployment)))
    return [h for h in found if h is not None]


def list_deployments() -> list[str]:
    suffixes = (f"/{ROLE_SUPERVISOR}", f"/{SUPERVISOR_STANDBY_SUFFIX}")
    names = ray.util.list_named_actors(all_namespaces=True)
    out = set()
    for entry in names:
        if isinstance(entry, dict):
            if entry.get("namespace") != NAMESPACE:
                continue
            name = entry.get("name", "")
        else:
            name = entry
        for suffix in suffixes:
            if name.endswith(suffix):
                out.add(name[: -len(suffix)])
    return sorted(out)


def leftover_children(cfg: TradeplaneConfig) -> list[str]:
    from tradeplane.supervisor.specs import child_specs

    found = []
    for spec in child_specs(cfg, "probe", {s.name: "" for s in cfg.strategies}):
        if resolve_actor(cfg.deployment.name, spec.role) is not None:
            found.append(spec.role)
    return found


def deploy(cfg: TradeplaneConfig, *, start_feed: bool = True, timeout_s: float = 120.0) -> Any:
    """Create the supervisor, deploy every child, start the feed; returns the supervisor."""
    # Imported here: the actor pulls in the metrics and tracing stack, which the CLI's read
    # commands (status, journal, trace), that only attach and ask, never need.
    from tradeplane.supervisor.actor import SupervisorActor
    from tradeplane.supervisor.specs import read_sources

    name = cfg.deployment.name
    # Where it will run is settled first, from one read of the node table: an `up` that
    # cannot place the deployment reaps, claims and creates nothing.
    nodes = cluster_nodes()
    state_node = resolve_node(cfg.deployment.state_node, nodes, current_node_id())
    check_placeable(cfg, nodes)
    lost = state_node_lost(name, nodes)
    old_supervisors = supervisor_instances(name)
    if old_supervisors:
        if lost is None:
            raise OperationalError(
                f"deployment {name!r} is already running (tradeplane down {name})"
            )
        # Bound to a node that is gone: it can never run again, only hold the name.
        for old in old_supervisors:
            ray.kill(old, no_restart=True)
    leftovers = leftover_children(cfg)
    if leftovers and lost is None:
        raise OperationalError(
            f"deployment {name!r} has actors left from an earlier run: {', '.join(leftovers)}; "
            f"run `tradeplane down {name}` first"
        )
    if lost is not None:
        # Actors of the old run still alive on other nodes (strategies that outlived the state
        # node): reaped before anything new starts, so no two of a role ever run.
        reap(name, leftovers)
        lost["reaped"] = leftovers
    # Standbys an earlier run left behind (its supervisor gone) play no role now: they go.
    for standby in standby_names(name):
        if (handle := named(standby)) is not None:
            ray.kill(handle, no_restart=True)
    cfg = without_credentials(cfg)  # the broker and the journal read them on their node
    sources = read_sources(cfg)
    venue_claims.claim(cfg, lambda other: find_supervisor(other) is not None)
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    # An earlier run's hand-over is over: the supervisor is found by its own name again.
    set_current(name, ROLE_SUPERVISOR, None)
    options = {
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "max_restarts": -1,
        "max_task_retries": 0,
        "num_cpus": 0,
        "max_concurrency": 1000,
        # Ray restarts a dead supervisor on the state node or nowhere: with that node gone the
        # deployment stays down (fail closed) until an operator's `up`.
        "scheduling_strategy": NodeAffinitySchedulingStrategy(state_node.node_id, soft=False),
    }
    sup = SupervisorActor.options(  # type: ignore[attr-defined]
        name=supervisor_name(name), **options
    ).remote(cfg, run_id, sources, state_node, lost)
    supervisor: Remote[SupervisorApi] = Remote(sup)
    try:
        ray.get(supervisor.call(SupervisorApi.deploy), timeout=timeout_s)
        if start_feed:
            ray.get(supervisor.call(SupervisorApi.start_feed), timeout=30)
    except Exception as exc:
        ray.kill(sup, no_restart=True)
        venue_claims.release(name)
        raise OperationalError(f"deployment {name!r} failed to start: {root_cause(exc)}") from exc
    if cfg.supervisor.standbys:
        # Stands by on the state node, watching the supervisor, to take over when it dies
        # (``core.succession``); started after the deployment is up, not on its start's path.
        try:
            SupervisorActor.options(  # type: ignore[attr-defined]
                name=supervisor_standby_name(name), **options
            ).remote(cfg, run_id, sources, state_node, None, True)
        except Exception as exc:  # e.g. a lost node's standby still holds the name
            # The deployment runs without it: Ray's restart of the supervisor stays (as before).
            log.warning("the supervisor's standby was not started: %s", exc)
    return sup


def state_node_lost(deployment: str, nodes: list[NodeInfo]) -> dict[str, Any] | None:
    """What is known of the deployment's last run when it was left running on a state node
    that Ray no longer shows alive (None otherwise): its run record from Ray's key-value
    store."""
    previous = kv.get_run(deployment)
    if previous is None or previous.phase not in LIVE_PHASES:
        return None
    alive = {n.node_id for n in nodes if n.alive}
    if previous.state_node_id in alive:
        return None
    return {
        "previous_run_id": previous.run_id,
        "previous_phase": previous.phase,
        "state_node_id": previous.state_node_id,
        "state_node_ip": previous.state_node_ip,
        "placement": previous.placement,
    }


def reap(deployment: str, roles: list[str], timeout_s: float = 30.0) -> None:
    """Kill ``roles``' actors by name and wait until Ray has freed their names."""
    names = {role: current_name(deployment, role) for role in roles}
    for name in names.values():
        if (handle := named(name)) is not None:
            ray.kill(handle)
    deadline = time.monotonic() + timeout_s
    for role, name in names.items():
        while time.monotonic() < deadline:
            if named(name) is None:
                break
            time.sleep(0.05)
        else:
            raise OperationalError(f"{role} of {deployment!r} could not be reaped in {timeout_s}s")


def check_placeable(cfg: TradeplaneConfig, nodes: list[NodeInfo]) -> None:
    """Every strategy has a live node that can take it, and the feed's node exists: refused at
    ``up`` rather than found out by a start that waits for a node nobody will add."""
    for s in cfg.strategies:
        if not eligible(nodes, s.resources, s.labels):
            wants = {"resources": dict(s.resources), "labels": dict(s.labels)}
            raise PlacementError(f"strategy {s.name!r}: no live node can take it ({wants})")
    if cfg.deployment.feed_node:
        resolve_node(cfg.deployment.feed_node, nodes, current_node_id())


def status(deployment: str, timeout_s: float = 10.0) -> dict[str, Any] | None:
    sup = find_supervisor(deployment)
    if sup is None:
        return None
    result = ray.get(Remote[SupervisorApi](sup).call(SupervisorApi.status), timeout=timeout_s)
    return result


def stop(deployment: str, *, reason: str = "operator", timeout_s: float = 120.0) -> dict[str, Any]:
    sup = find_supervisor(deployment)
    if sup is None:
        raise OperationalError(f"no running deployment named {deployment!r}")
    try:
        call = Remote[SupervisorApi](sup).call(SupervisorApi.stop, reason)
        summary = ray.get(call, timeout=timeout_s)
    finally:
        # The instance standing by goes first, and is gone before the acting one goes: it would
        # take over from it (harmlessly, the run is over, but it would outlive `down`).
        acting = sup._actor_id
        others = [h for h in supervisor_instances(deployment) if h._actor_id != acting]
        for handle in others:
            ray.kill(handle, no_restart=True)
        deadline = time.monotonic() + STANDBY_GONE_S
        while time.monotonic() < deadline and any(
            h._actor_id != acting for h in supervisor_instances(deployment)
        ):
            time.sleep(0.05)
        ray.kill(sup, no_restart=True)
        venue_claims.release(deployment)
    return summary
