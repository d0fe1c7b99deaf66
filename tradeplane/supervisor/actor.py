"""SupervisorActor: the deployment's supervisor as a detached named Ray actor, a thin shell
around ``Supervisor`` (which holds the logic over an adapter and a clock) and ``SupervisorCore``
(which holds the decisions). Ray restarts this actor itself; a restarted supervisor re-attaches
to its children by name while the pipeline keeps trading.

A deployment runs two instances of it (``core.succession``): the one holding the latest term
acts, the other stands by, watching it, and takes over (claims the next term, re-attaches, and
becomes the supervisor's current name, ``cluster.names``) the moment it dies. An instance that
stands by answers nothing but ``heartbeat``: it refuses every operator call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import ray

from tradeplane.actors.common import SupervisedActor, process_cost, spawn
from tradeplane.cluster.names import SupervisorTerms, named, set_current
from tradeplane.cluster.placement import NodeInfo
from tradeplane.config.models import TradeplaneConfig
from tradeplane.config.settings import with_node_credentials
from tradeplane.core.errors import OperationalError
from tradeplane.core.promotion_config import code_hash
from tradeplane.core.succession import Start, Term, contend, on_start, should_take_over
from tradeplane.protocol.api import BrokerApi
from tradeplane.protocol.roles import ROLE_BROKER, ROLE_SUPERVISOR, actor_name
from tradeplane.supervisor.adapter import RayChildAdapter
from tradeplane.supervisor.clock import SystemClock
from tradeplane.supervisor.specs import child_specs, preload
from tradeplane.supervisor.supervisor import Supervisor

if TYPE_CHECKING:
    from tradeplane.telemetry.metrics import ActorMetrics

log = logging.getLogger("tradeplane.supervisor")
# A standby with no term to watch yet (the first instance has not claimed one) looks again after.
NO_TERM_RETRY_S = 0.2


class NotActing(OperationalError):
    """An operator call reached a supervisor instance that stands by."""


def _warm(cfg: TradeplaneConfig) -> None:
    import tradeplane.telemetry.actors  # noqa: F401  (the metrics SDK, for start_metrics)

    preload(cfg)


def standby_process(pid: int | None) -> dict[str, Any]:
    """The standby's pid, memory and CPU time, read from its process (both instances run on the
    state node), so that status never wakes it; empty when it cannot be read."""
    if pid is None:
        return {}
    try:
        import psutil

        return process_cost(psutil.Process(pid))
    except Exception:
        return {"pid": pid}


class ProcessExited(RuntimeError):
    """The watched instance's process exited (seen through its pidfd)."""


async def _awaited(ref: Any) -> Any:
    return await ref


def _process_exit(pid: int) -> tuple[asyncio.Future[None], Any] | None:
    """A future done when process ``pid`` exits, and how to stop watching; None when it cannot
    be watched (already gone, or no pidfd on this system: the outstanding call remains)."""
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, readable)

    def close() -> None:
        loop.remove_reader(fd)
        os.close(fd)

    return exited, close


def _maybe_alive(holder: Any, error: BaseException) -> bool:
    """Whether the instance whose watch failed with ``error`` may still run its old process.
    Ray restarts an actor only once its process is gone, so an actor it shows restarting (or
    dead) is certainly not acting; one it shows alive may be one that was only unreachable."""
    if isinstance(error, (ray.exceptions.ActorDiedError, ProcessExited)):
        return False
    try:
        from ray._private import state as ray_state

        row = ray_state.actors(actor_id=holder._actor_id.hex()) or {}
    except Exception:
        return True
    return row.get("State") not in ("RESTARTING", "DEAD", "PENDING_CREATION")


@ray.remote
class SupervisorActor(SupervisedActor):
    def __init__(
        self,
        cfg: TradeplaneConfig,
        run_id: str,
        sources: dict[str, str],
        state_node: NodeInfo | None = None,
        state_node_lost: dict[str, Any] | None = None,
        standby: bool = False,
    ) -> None:
        # It never receives credentials (nor passes them on); it masks those of its node in
        # what it logs, as before.
        self.protect_secrets(with_node_credentials(cfg)[0])
        self.sup = Supervisor(
            cfg,
            run_id,
            child_specs(cfg, run_id, sources),
            RayChildAdapter(cfg.deployment.name),
            SystemClock(),
            state_node=state_node,
            state_node_lost=state_node_lost,
        )
        self.sup.strategy_code_hashes = {n: code_hash(src) for n, src in sources.items()}
        # Served through the telemetry actor's endpoint; made once the supervision is up.
        self.metrics: ActorMetrics | None = None
        self._deploying = False
        self._tasks: set[asyncio.Task[Any]] = set()
        deployment = cfg.deployment.name
        self.name = ray.get_runtime_context().get_actor_name() or actor_name(
            deployment, ROLE_SUPERVISOR
        )
        self.terms = SupervisorTerms(deployment, run_id)
        self.term: int | None = None  # the term this instance acts in; None: it stands by
        self.refused = 0
        self.sup.still_current = self._still_current
        self.sup.on_superseded = self._superseded
        self.sup.succession_status = self._succession_status
        spawn(self._tasks, self._start(standby))

    # -- succession (``core.succession``) ------------------------------------------------------

    async def _start(self, standby: bool) -> None:
        await asyncio.sleep(0)
        if self.term is not None:  # deploy() claimed first
            await self._maybe_reattach()
            return
        latest = self.terms.latest()
        if on_start(self.name, latest, standby) is Start.CLAIM and self._claim(latest):
            # If Ray restarted us while the deployment ran, its children are still there.
            await self._maybe_reattach()
            return
        await self._stand_by()

    def _claim(self, after: Term | None) -> bool:
        term = contend(self.name, after, self.terms)
        if term is None:
            return False
        self.term = term
        # From now on the CLI, the benches and chaos find this instance.
        set_current(self.sup.deployment, ROLE_SUPERVISOR, self.name)
        self.sup.started_ts = self.sup.clock.now()
        self.sup.started_mono = self.sup.clock.monotonic()
        log.info("supervisor %s acts in term %d", self.name, term)
        return True

    async def _stand_by(self) -> None:
        """Watch the acting instance; take over the moment it dies (or stand by the next one)."""
        # What a re-attached supervisor imports after its first tick is imported now instead.
        spawn(self._tasks, asyncio.to_thread(_warm, self.sup.cfg))
        while True:
            latest = self.terms.latest()
            if latest is None:
                await asyncio.sleep(NO_TERM_RETRY_S)
                continue
            if latest.holder == self.name and self._claim(latest):
                # It holds the latest term but does not act (its claim raced a restart): act.
                await self._maybe_reattach()
                return
            holder = named(latest.holder)
            died: BaseException | None = None
            if holder is not None:
                try:
                    await self._watch(holder, latest.number)
                except Exception as exc:
                    died = exc
            phase = self._run_phase()
            if not should_take_over(latest, self.terms.latest(), phase) or not self._claim(latest):
                if phase == "stopped":  # (why should_take_over said no) nothing left to watch
                    log.info("supervisor %s: the run is stopped, nothing to take over", self.name)
                    return
                # Another instance acts now: watch that one (a moment later, so that an instance
                # still coming up is not asked in a tight loop).
                await asyncio.sleep(NO_TERM_RETRY_S)
                continue
            log.warning(
                "supervisor %s took over from %s (%s)",
                self.name,
                latest.holder,
                type(died).__name__ if died is not None else "not found",
            )
            if holder is not None and died is not None and _maybe_alive(holder, died):
                # Not certainly dead: its process goes (its restart stands by, it no longer
                # holds the latest term), so two instances never act at once.
                with contextlib.suppress(Exception):
                    ray.kill(holder, no_restart=False)
            await self._maybe_reattach()
            return

    def _run_phase(self) -> str | None:
        """This run's phase as its run record says (None when it cannot be read)."""
        try:
            record = self.sup.adapter.read_run()
        except Exception:
            return None
        if record is None or record.run_id != self.sup.run_id:
            return None
        return record.phase

    async def _watch(self, holder: Any, term: int) -> None:
        """Returns when ``holder`` does not act in ``term``; raises once it is dead. Both
        instances run on the state node, so its process is watched directly (a pidfd: readable
        the moment it exits), besides an outstanding call: Ray fails a call to an actor it
        restarts only after a wait for the death's details (about a second)."""
        where = await holder.acting_process.remote(term)
        if where is None:
            return
        here = str(ray.get_runtime_context().get_node_id())
        call = asyncio.ensure_future(_awaited(holder.wait_while_acting.remote(term)))
        exited = _process_exit(int(where[1])) if where[0] == here else None
        self.terms.mark_watching(self.name, term, os.getpid())
        try:
            waits: set[asyncio.Future[Any]] = {call} | ({exited[0]} if exited else set())
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if exited is not None and exited[0].done():
                raise ProcessExited(f"{holder} process {where[1]} exited")
            await call
        finally:
            call.cancel()
            if exited is not None:
                exited[1]()

    async def acting_process(self, term: int) -> tuple[str, int] | None:
        """(node id, pid) of this instance when it acts in ``term``, else None."""
        if self.term != term:
            return None
        return str(ray.get_runtime_context().get_node_id()), os.getpid()

    async def wait_while_acting(self, term: int) -> None:
        """The standby's watch: returns at once when this instance does not act in ``term`` (a
        restart that has not claimed it, or claimed a later one); otherwise never while its
        process lives, so the standby learns of its death the moment Ray does."""
        if self.term == term:
            await self.wait_for_death()

    def _still_current(self) -> bool:
        return self.term is None or not self.terms.claimed(self.term + 1)

    def _superseded(self) -> None:
        """Another instance claimed a later term: this process goes at once (Ray restarts it,
        and the restart stands by)."""
        log.critical("supervisor %s superseded in term %s: exiting", self.name, self.term)
        os._exit(1)

    def _succession_status(self) -> dict[str, Any]:
        watching = self.terms.watching()
        standby = None
        if watching is not None and watching.name != self.name:
            standby = {
                "name": watching.name,
                "watching": watching.term == self.term,
                **standby_process(watching.pid),
            }
        return {"name": self.name, "term": self.term, "standby": standby}

    def _acting(self) -> None:
        if self.term is None:
            self.refused += 1
            raise NotActing(f"supervisor {self.name} stands by: it takes no calls")

    async def _maybe_reattach(self) -> None:
        await asyncio.sleep(0)
        if self._deploying or not await self.sup.reattach():
            self.metrics = self.sup.start_metrics()
            return
        # Re-attached with only the code Ray loaded to make the live children's handles (their
        # actor classes): the rest of the children's code (to create one) and the metrics SDK
        # are imported now, after the first tick, so a restart needs no import first.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await self.sup.ticked.wait()
        await asyncio.to_thread(preload)
        self.metrics = self.sup.start_metrics()

    async def deploy(self) -> dict[str, Any]:
        if self.term is None and not self._claim(self.terms.latest()):
            raise NotActing(f"supervisor {self.name}: another instance acts for this run")
        self._deploying = True
        return await self.sup.deploy()

    async def start_feed(self) -> dict[str, Any]:
        self._acting()
        return await self.sup.start_feed()

    async def status(self) -> dict[str, Any]:
        self._acting()
        return await self.sup.status_with_orders()

    async def stop(self, reason: str = "operator") -> dict[str, Any]:
        self._acting()
        return await self.sup.stop(reason)

    async def kill_switch(self, active: bool, reason: str) -> dict[str, Any]:
        self._acting()
        return await self.sup.kill_switch(active, reason)

    async def flatten(self, reason: str) -> dict[str, Any]:
        self._acting()
        return await self.sup.flatten(reason)

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        self._acting()
        return await self.sup.cancel_all(reason)

    async def inject_fault(
        self, kind: str, duration_s: float | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._acting()
        return await self.sup.inject_fault(kind, duration_s, params)

    async def clear_faults(self, kind: str | None = None) -> dict[str, Any]:
        self._acting()
        return await self.sup.clear_faults(kind)

    async def venue_holdings(self) -> dict[str, Any]:
        """For ``preflight`` while running: the venue's holdings, asked through the broker."""
        self._acting()
        result: dict[str, Any] = await self.sup.adapter.call(
            10.0, ROLE_BROKER, BrokerApi.live_holdings
        )
        return result

    async def heartbeat(self) -> dict[str, Any]:
        phase = self.sup.core.phase.value if self.term is not None else "standby"
        return {
            "role": "supervisor",
            "ts": time.time(),
            "phase": phase,
            "name": self.name,
            "pid": os.getpid(),
        }
