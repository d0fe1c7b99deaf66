"""SupervisorActor: the deployment's supervisor as one detached named Ray actor, a thin shell
around ``Supervisor`` (which holds the logic over an adapter and a clock) and ``SupervisorCore``
(which holds the decisions). Ray restarts this actor itself; a restarted supervisor re-attaches
to its children by name while the pipeline keeps trading.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import ray

from tradeplane.actors.common import SupervisedActor, spawn
from tradeplane.cluster.placement import NodeInfo
from tradeplane.config.models import TradeplaneConfig
from tradeplane.config.settings import with_node_credentials
from tradeplane.protocol.api import BrokerApi
from tradeplane.protocol.roles import ROLE_BROKER
from tradeplane.supervisor.adapter import RayChildAdapter
from tradeplane.supervisor.clock import SystemClock
from tradeplane.supervisor.specs import child_specs, preload
from tradeplane.supervisor.supervisor import Supervisor

if TYPE_CHECKING:
    from tradeplane.telemetry.metrics import ActorMetrics


@ray.remote
class SupervisorActor(SupervisedActor):
    def __init__(
        self,
        cfg: TradeplaneConfig,
        run_id: str,
        sources: dict[str, str],
        state_node: NodeInfo | None = None,
        state_node_lost: dict[str, Any] | None = None,
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
        # Served through the telemetry actor's endpoint; made once the supervision is up.
        self.metrics: ActorMetrics | None = None
        self._deploying = False
        self._tasks: set[asyncio.Task[Any]] = set()
        # If Ray restarted us while the deployment ran, its children are still there.
        spawn(self._tasks, self._maybe_reattach())

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
        self._deploying = True
        return await self.sup.deploy()

    async def start_feed(self) -> dict[str, Any]:
        return await self.sup.start_feed()

    async def status(self) -> dict[str, Any]:
        return await self.sup.status_with_orders()

    async def stop(self, reason: str = "operator") -> dict[str, Any]:
        return await self.sup.stop(reason)

    async def kill_switch(self, active: bool, reason: str) -> dict[str, Any]:
        return await self.sup.kill_switch(active, reason)

    async def flatten(self, reason: str) -> dict[str, Any]:
        return await self.sup.flatten(reason)

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        return await self.sup.cancel_all(reason)

    async def inject_fault(
        self, kind: str, duration_s: float | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.sup.inject_fault(kind, duration_s, params)

    async def clear_faults(self, kind: str | None = None) -> dict[str, Any]:
        return await self.sup.clear_faults(kind)

    async def venue_holdings(self) -> dict[str, Any]:
        """For ``preflight`` while running: the venue's holdings, asked through the broker."""
        result: dict[str, Any] = await self.sup.adapter.call(
            10.0, ROLE_BROKER, BrokerApi.live_holdings
        )
        return result

    async def heartbeat(self) -> dict[str, Any]:
        return {"role": "supervisor", "ts": time.time(), "phase": self.sup.core.phase.value}
