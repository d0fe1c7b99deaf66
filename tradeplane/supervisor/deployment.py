"""Create, find and stop deployments from a driver process (the CLI, tests, benchmarks)."""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

import ray

from tradeplane.actors.common import Remote
from tradeplane.cluster import venue_claims
from tradeplane.config.models import TradeplaneConfig
from tradeplane.config.settings import without_credentials
from tradeplane.core.errors import OperationalError, root_cause
from tradeplane.protocol.api import SupervisorApi
from tradeplane.protocol.roles import NAMESPACE, ROLE_SUPERVISOR, actor_name
from tradeplane.supervisor.actor import SupervisorActor
from tradeplane.supervisor.specs import child_specs, read_sources

LOOPBACK = "127.0.0.1"


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    resources: dict[str, float] | None = None,
) -> None:
    """Attach to ``address`` (``auto`` or host:port), or start a private Ray bound to loopback."""
    if ray.is_initialized():
        return
    if address:
        _use_cluster_token()
        ray.init(
            address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING
        )
        return
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "1":
        # tradeplane/__init__ sets the loopback default before Ray is imported; if something
        # imported Ray first, enforce it here (Ray consults this flag when it picks addresses).
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(
        _node_ip_address=LOOPBACK,
        include_dashboard=False,
        namespace=NAMESPACE,
        num_cpus=num_cpus,
        resources=resources,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )


def _use_cluster_token() -> None:
    """Attaching to a cluster that has token auth (Ray's default since 2.5x) needs the client to
    opt in; do so whenever a token is available, so operators never have to disable auth."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token auth
        return
    # Its "token authentication is enabled" notice is noise on every CLI call: keep it quiet.
    noisy = logging.getLogger(maybe_enable_token_auth_if_token_available.__module__)
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        noisy.setLevel(level)


def supervisor_name(deployment: str) -> str:
    return actor_name(deployment, ROLE_SUPERVISOR)


def find_supervisor(deployment: str) -> Any | None:
    try:
        return ray.get_actor(supervisor_name(deployment), namespace=NAMESPACE)
    except ValueError:
        return None


def list_deployments() -> list[str]:
    suffix = f"/{ROLE_SUPERVISOR}"
    names = ray.util.list_named_actors(all_namespaces=True)
    out = []
    for entry in names:
        if isinstance(entry, dict):
            if entry.get("namespace") != NAMESPACE:
                continue
            name = entry.get("name", "")
        else:
            name = entry
        if name.endswith(suffix):
            out.append(name[: -len(suffix)])
    return sorted(out)


def leftover_children(cfg: TradeplaneConfig) -> list[str]:
    names = []
    for spec in child_specs(cfg, "probe", {s.name: "" for s in cfg.strategies}):
        try:
            ray.get_actor(actor_name(cfg.deployment.name, spec.role), namespace=NAMESPACE)
            names.append(spec.role)
        except ValueError:
            pass
    return names


def deploy(cfg: TradeplaneConfig, *, start_feed: bool = True, timeout_s: float = 120.0) -> Any:
    """Create the supervisor, deploy every child, start the feed; returns the supervisor."""
    name = cfg.deployment.name
    if find_supervisor(name) is not None:
        raise OperationalError(f"deployment {name!r} is already running (tradeplane down {name})")
    leftovers = leftover_children(cfg)
    if leftovers:
        raise OperationalError(
            f"deployment {name!r} has actors left from an earlier run: {', '.join(leftovers)}; "
            f"run `tradeplane down {name}` first"
        )
    cfg = without_credentials(cfg)  # the broker and the journal read them on their node
    sources = read_sources(cfg)
    venue_claims.claim(cfg, lambda other: find_supervisor(other) is not None)
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    sup = SupervisorActor.options(  # type: ignore[attr-defined]
        name=supervisor_name(name),
        namespace=NAMESPACE,
        lifetime="detached",
        max_restarts=-1,
        max_task_retries=0,
        num_cpus=0,
        max_concurrency=1000,
    ).remote(cfg, run_id, sources)
    supervisor: Remote[SupervisorApi] = Remote(sup)
    try:
        ray.get(supervisor.call(SupervisorApi.deploy), timeout=timeout_s)
        if start_feed:
            ray.get(supervisor.call(SupervisorApi.start_feed), timeout=30)
    except Exception as exc:
        ray.kill(sup, no_restart=True)
        venue_claims.release(name)
        raise OperationalError(f"deployment {name!r} failed to start: {root_cause(exc)}") from exc
    return sup


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
        ray.kill(sup, no_restart=True)
        venue_claims.release(deployment)
    return summary
