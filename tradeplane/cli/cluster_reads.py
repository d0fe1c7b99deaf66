"""A deployment's journal read from any node of the cluster.

A running deployment is read through its journal actor, which does the reading on the state node
and returns plain data (events in pages), never from this node's disk: a copy of a state dir here
would be stale, and on most nodes there is none. A stopped one is read from the local state dir as
before; when this node has none, the run record in Ray's key-value store says which node holds it.
Without a cluster (or a run record) everything stays local, as on a single machine.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from tradeplane.actors.journal_reads import READ_PAGE, VerifyReport
from tradeplane.core.errors import OperationalError, root_cause
from tradeplane.core.run_record import RunRecord
from tradeplane.journal.files import DB_NAME
from tradeplane.protocol.api import JournalApi, Method, P, R
from tradeplane.protocol.roles import ROLE_JOURNAL, ROLE_SUPERVISOR

_CALL_TIMEOUT_S = 120.0
_VERIFY_TIMEOUT_S = 3600.0  # a verify of a big journal runs as long as it takes on its node
_JOURNAL_WAIT_S = 10.0  # a running deployment's journal being restarted by its supervisor


class JournalSource(Protocol):
    """What ``journal`` and ``trace`` read: a local ``JournalReader`` or a ``RemoteJournal``."""

    deployment: str
    state_dir: Path

    @property
    def last_seq(self) -> int: ...

    def events(
        self, kinds: Iterable[str] | None = None, since_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]: ...

    def events_for(
        self, *, intent_id: str | None = None, client_order_id: str | None = None
    ) -> list[dict[str, Any]]: ...


# --- the cluster ------------------------------------------------------------------------------


def cluster_address(address: str | None) -> str | None:
    """The cluster to look in: ``--address``, else ``RAY_ADDRESS``, else the one ``ray start``
    recorded on this node; None when there is none or it does not answer (a stale record must
    not make a local read wait for a dead cluster)."""
    if address:
        return address
    from ray._private.utils import read_ray_address

    found = os.environ.get("RAY_ADDRESS") or read_ray_address()
    if not found or found in ("auto", "local"):  # "local": start one, never ours to do
        return None
    return found if _answers(found) else None


def _answers(address: str, timeout_s: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return True  # not host:port (a ray:// URL): let Ray judge it
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


@contextmanager
def cluster(address: str | None) -> Iterator[bool]:
    """Attached to the cluster for the block (True), or not (False) when there is none; a
    connection opened here is closed after it (an in-process caller is not left attached)."""
    loaded = sys.modules.get("ray")  # not imported: not attached either
    if loaded is not None and loaded.is_initialized():
        yield True
        return
    target = cluster_address(address)
    if target is None:
        yield False
        return
    import ray

    from tradeplane.supervisor import deployment

    try:
        deployment.connect(target)
    except Exception:
        yield False
        return
    try:
        yield True
    finally:
        ray.shutdown()


def running_journal(deployment: str) -> RemoteJournal | None:
    """The journal of ``deployment`` when it runs on the attached cluster, else None. A
    deployment whose supervisor runs while its journal is being restarted is waited for a
    little, then reported."""
    from tradeplane.cluster.names import resolve_actor

    handle = resolve_actor(deployment, ROLE_JOURNAL)
    if handle is None and resolve_actor(deployment, ROLE_SUPERVISOR) is not None:
        deadline = time.monotonic() + _JOURNAL_WAIT_S
        while handle is None and time.monotonic() < deadline:
            time.sleep(0.5)
            handle = resolve_actor(deployment, ROLE_JOURNAL)
        if handle is None:
            raise OperationalError(
                f"{deployment!r} is running but its journal is not (being restarted?): "
                "try again in a moment, or see `tradeplane status`"
            )
    return None if handle is None else RemoteJournal(deployment, handle)


# --- a stopped deployment ---------------------------------------------------------------------


def held_elsewhere(
    record: RunRecord | None, here_node_id: str, local_dir: Path
) -> Path | str | None:
    """Where a stopped deployment's state is, for a node whose ``local_dir`` holds no journal:
    None (no run record: read ``local_dir`` as before), the record's state dir when it is on
    this node and holds the journal, or why it cannot be read here (which node holds it)."""
    if record is None or (local_dir / DB_NAME).is_file():
        return None
    recorded = Path(record.state_dir)
    where = f"{record.state_dir} on node {record.state_node_ip} (node id {record.state_node_id})"
    if record.state_node_id == here_node_id:
        if (recorded / DB_NAME).is_file():
            return recorded
        if record.journal is None:
            return None  # the record names no journal yet: nothing is missing
        return (
            f"{record.deployment!r} has no journal running, and its journal is not where its run "
            f"record puts it: {where}, this node (run record phase {record.phase})"
        )
    return (
        f"{record.deployment!r} has no journal running; its state dir is {where}, not this "
        f"node: run this there, or give --state-dir of a copy (run record phase {record.phase})"
    )


def locate_stopped(deployment: str, local_dir: Path) -> Path | str | None:
    """``held_elsewhere`` for the attached cluster's run record of ``deployment``."""
    import ray

    from tradeplane.cluster import kv

    try:
        record = kv.get_run(deployment)
    except Exception:  # a cluster without the record store answering: as without a cluster
        return None
    return held_elsewhere(record, ray.get_runtime_context().get_node_id(), local_dir)


# --- a running deployment ---------------------------------------------------------------------


class RemoteJournal:
    """A running deployment's journal read through its actor: the reader calls ``journal`` and
    ``trace`` make, each answered on the journal's node; events cross in pages."""

    def __init__(self, deployment: str, handle: Any) -> None:
        from tradeplane.actors.common import Remote

        self.remote: Remote[JournalApi] = Remote(handle)
        self.name = deployment
        info = self._get(JournalApi.read_info)
        self.deployment: str = info["deployment"]
        self.state_dir = Path(info["state_dir"])
        self.jsonl_path = Path(info["jsonl"])

    def _get(
        self,
        method: Method[JournalApi, P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        return self._get_within(_CALL_TIMEOUT_S, method, *args, **kwargs)

    def _get_within(
        self, timeout_s: float, method: Method[JournalApi, P, R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        import ray

        try:
            result: R = ray.get(self.remote.call(method, *args, **kwargs), timeout=timeout_s)
        except Exception as exc:
            raise OperationalError(
                f"the journal of {self.name!r} (on its state node) did not answer "
                f"{method.__name__}: {root_cause(exc)}"
            ) from exc
        return result

    @property
    def last_seq(self) -> int:
        return int(self._get(JournalApi.read_info)["last_seq"])

    def events(
        self, kinds: Iterable[str] | None = None, since_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        wanted = None if kinds is None else list(kinds)
        out: list[dict[str, Any]] = []
        cursor = since_seq
        while limit is None or len(out) < limit:
            size = READ_PAGE if limit is None else min(READ_PAGE, limit - len(out))
            page = self._get(JournalApi.read_events, wanted, cursor, size)
            out.extend(page)
            if len(page) < size:
                break
            cursor = page[-1]["seq"]
        return out

    def events_for(
        self, *, intent_id: str | None = None, client_order_id: str | None = None
    ) -> list[dict[str, Any]]:
        return self._get(JournalApi.read_events_for, intent_id, client_order_id)

    def status(self, tail: int = 10) -> dict[str, Any]:
        return self._get(JournalApi.read_status, tail)

    def verify(self, *, deep: bool = False, workers: int | None = None) -> VerifyReport:
        raw = self._get_within(_VERIFY_TIMEOUT_S, JournalApi.read_verify, deep, workers)
        return VerifyReport.from_dict(raw)

    def preflight(self) -> dict[str, Any]:
        return self._get(JournalApi.read_preflight)

    def close(self) -> None:
        """Nothing to release: the actor's reads open and close their own connection."""

    def __enter__(self) -> RemoteJournal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
