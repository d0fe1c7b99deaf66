"""Which Ray actor plays a role now. Ray cannot rename an actor, so a standby promoted to a role
keeps its own name: the role's current actor name lives in Ray's key-value store, written by the
supervisor when a standby is promoted (and reset when an actor is created under the role's own
name). ``resolve_actor`` is the one lookup every part uses (actors' peers, the supervisor, the
CLI, chaos, benches and tests), so nobody ever looks an actor up by a name it made up itself.

A role with no entry is played by the actor named ``actor_name(deployment, role)``: every
deployment starts that way, and an old run's entries are reset at the next start."""

from __future__ import annotations

from typing import Any

from ray.experimental import internal_kv

from tradeplane.cluster.kv import KV_NAMESPACE
from tradeplane.core.succession import Term, Watching, latest_of, parse_watching, term_key
from tradeplane.protocol.roles import NAMESPACE, actor_name

STANDBY_PART = "standby"


def _key(deployment: str, role: str) -> str:
    return f"actor/{deployment}/{role}"


def standby_name(deployment: str, serial: int) -> str:
    """The Ray actor name of a deployment's standby (kept after it is promoted)."""
    return f"{deployment}/{STANDBY_PART}/{serial}"


def is_standby_name(deployment: str, name: str) -> bool:
    return name.startswith(f"{deployment}/{STANDBY_PART}/")


def current_name(deployment: str, role: str) -> str:
    """The Ray actor name (namespace ``NAMESPACE``) of the actor playing ``role`` now."""
    raw = internal_kv._internal_kv_get(_key(deployment, role), namespace=KV_NAMESPACE)
    if raw is None:
        return actor_name(deployment, role)
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def set_current(deployment: str, role: str, name: str | None) -> None:
    """``role`` is now played by the actor named ``name`` (None: by its own name)."""
    if name is None or name == actor_name(deployment, role):
        internal_kv._internal_kv_del(_key(deployment, role), namespace=KV_NAMESPACE)
    else:
        internal_kv._internal_kv_put(
            _key(deployment, role), name, overwrite=True, namespace=KV_NAMESPACE
        )


def named(name: str) -> Any | None:
    """The live actor named ``name`` in ``NAMESPACE``, or None."""
    import ray

    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


def resolve_actor(deployment: str, role: str) -> Any | None:
    """The handle of the actor playing ``role`` in ``deployment``; None while there is none
    (being restarted, or not running)."""
    return named(current_name(deployment, role))


def standby_names(deployment: str) -> list[str]:
    """Names of the deployment's standby actors Ray knows (promoted ones included)."""
    import ray

    out = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if isinstance(entry, dict):
            if entry.get("namespace") != NAMESPACE:
                continue
            name = str(entry.get("name", ""))
        else:
            name = str(entry)
        if is_standby_name(deployment, name):
            out.append(name)
    return sorted(out)


SUPERVISOR_STANDBY_SUFFIX = "supervisor-standby"


def supervisor_standby_name(deployment: str) -> str:
    """The Ray actor name of the deployment's supervisor standby (``core.succession``)."""
    return f"{deployment}/{SUPERVISOR_STANDBY_SUFFIX}"


class SupervisorTerms:
    """The supervisor's terms of one run in Ray's key-value store (``core.succession``)."""

    def __init__(self, deployment: str, run_id: str) -> None:
        self.prefix = f"supterm/{deployment}/{run_id}/"
        self._watching = f"supwatch/{deployment}/{run_id}"

    def latest(self) -> Term | None:
        raw = internal_kv._internal_kv_list(self.prefix, namespace=KV_NAMESPACE) or []
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in raw]
        number = latest_of(self.prefix, keys)
        if number is None:
            return None
        holder = internal_kv._internal_kv_get(self._key(number), namespace=KV_NAMESPACE)
        if holder is None:
            return None
        return Term(number, holder.decode() if isinstance(holder, bytes) else str(holder))

    def claim(self, number: int, holder: str) -> bool:
        existed = internal_kv._internal_kv_put(
            self._key(number), holder, overwrite=False, namespace=KV_NAMESPACE
        )
        return not existed

    def claimed(self, number: int) -> bool:
        return bool(internal_kv._internal_kv_exists(self._key(number), namespace=KV_NAMESPACE))

    def _key(self, number: int) -> str:
        return term_key(self.prefix, number)

    def mark_watching(self, name: str, number: int, pid: int) -> None:
        """``name`` (process ``pid``) stands by, watching the holder of term ``number``."""
        internal_kv._internal_kv_put(
            self._watching, f"{number} {name} {pid}", overwrite=True, namespace=KV_NAMESPACE
        )

    def watching(self) -> Watching | None:
        """The standby's last word: the term it watches, its name and its pid, or None."""
        raw = internal_kv._internal_kv_get(self._watching, namespace=KV_NAMESPACE)
        if raw is None:
            return None
        return parse_watching(raw.decode() if isinstance(raw, bytes) else str(raw))
