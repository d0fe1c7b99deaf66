"""Standbys: one pre-started, pre-imported generic actor per node that hosts pinned roles (the
state node, and the feed's node when it is another), promoted to whichever role dies there
next (``actors.standby``). One per node rather than one per role: a standby can become any
role, so one idle process per node covers them all (each costs a Ray worker's memory and idle
CPU), and two deaths at once on one node are rare (the second is created afresh, as without
standbys).

A standby stands in only where the role itself may run: a pinned role (state node, named feed
node) on exactly its node; a spread role (a strategy) on a node its labels allow, and never a
strategy that reserves resources (a standby holds none to give it). Promotion comes after the
previous incarnation is dead and fenced (the restart's own order); a standby used is replaced
after the recovery, off its path. A dead standby, or one on a lost node, is dropped and the
role created afresh.

The choice is pure (``pick``); ``Standbys`` carries it out through the adapter."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tradeplane.actors.common import spawn
from tradeplane.cluster.names import standby_name
from tradeplane.cluster.placement import NodeInfo, Placement, Where, eligible
from tradeplane.config.models import TradeplaneConfig

if TYPE_CHECKING:
    from tradeplane.supervisor.specs import ChildSpec
    from tradeplane.supervisor.supervisor import Supervisor

log = logging.getLogger("tradeplane.supervisor")
READY_TIMEOUT_S = 60.0
RETRY_AFTER_S = 5.0  # a standby that failed to start is tried again after this
# A used standby is replaced this long after its recovery finished: a new process importing the
# runtime takes a core for a while, and the promoted actor's first moments need it more.
REFILL_DELAY_S = 0.5
INFO_EVERY_S = 5.0
Promotion = Literal["promoted", "none", "failed"]


@dataclass
class Standby:
    name: str
    node_id: str  # "" when the state node is not known (a single-node test): anywhere
    ready: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def pick(
    standbys: list[Standby],
    placement: Placement,
    node_id: str | None,
    nodes: list[NodeInfo],
) -> Standby | None:
    """The ready standby that may play a role placed by ``placement`` (``node_id``: the node
    the supervisor would create it on, None when Ray spreads it), or None."""
    ready = [s for s in standbys if s.ready]
    if node_id is not None or placement.where is not Where.SPREAD:
        return next((s for s in ready if s.node_id == (node_id or "")), None)
    if placement.resources:
        return None  # a standby reserves none of them: Ray must place this one itself
    allowed = {n.node_id for n in eligible(nodes, None, placement.labels)}
    return next((s for s in ready if s.node_id in allowed), None)


def standby_nodes(state_node_id: str, feed_node_id: str | None) -> list[str]:
    """Nodes that keep a standby: where the pinned roles run."""
    out = [state_node_id]
    if feed_node_id and feed_node_id != state_node_id:
        out.append(feed_node_id)
    return out


def warm_modules(cfg: TradeplaneConfig) -> tuple[str, ...]:
    """Modules the roles import only while starting, imported by a standby ahead of time."""
    out = ["tradeplane.config.loading", "tradeplane.core.redact"]
    if cfg.venue.kind == "ib":
        out.append("tradeplane.venues.ib.venue")
    if cfg.journal.bars == "all":  # the journal's recorded bars (pyarrow)
        out += ["tradeplane.actors.bar_recording", "pyarrow.parquet"]
    if cfg.drift is not None:  # the shadow backtest and its report figures (numpy)
        out += ["tradeplane.actors.drift", "tradeplane.backtest.run"]
    if cfg.telemetry.enabled:
        out += [
            "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        ]
    return tuple(out)


class Standbys:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.enabled = sup.cfg.supervisor.standbys
        self.pool: dict[str, Standby] = {}  # by name
        self.promoted = 0
        self.fallbacks = 0
        self.nodes: list[NodeInfo] = []
        # Unique across this deployment's supervisors (a restarted one starts later).
        self._serial = itertools.count(int(sup.clock.now() * 1_000_000))
        self._filling: asyncio.Task[Any] | None = None
        self._watchers: dict[str, asyncio.Task[Any]] = {}
        self._closed = False
        self._info_ts = float("-inf")

    # -- keeping the pool full -----------------------------------------------------------------

    def refill(self, delay_s: float = 0.0) -> None:
        """Start what is missing, in the background (never on a recovery's path)."""
        if not self.enabled or self._closed:
            return
        if self._filling is None or self._filling.done():
            self._filling = spawn(self.sup.tasks, self._fill(delay_s))

    def wanted(self) -> list[str]:
        feed_node = None
        feed = self.sup.specs.get("feed")
        if feed is not None and feed.placement.where is Where.NAMED_NODE:
            feed_node = self.sup.placer.placement.get("feed")
        return standby_nodes(self.sup.placer.state_node.node_id, feed_node)

    async def _fill(self, delay_s: float) -> None:
        if delay_s > 0:
            await self.sup.clock.sleep(delay_s)
        try:
            self.nodes = await self.sup.placer.nodes()
        except Exception as exc:
            # Safe to lose: a strategy then finds no standby and is created afresh.
            log.warning("standbys: node table unreadable: %s", exc)
        have = {s.node_id for s in self.pool.values()}
        for node in self.wanted():
            if node in have or self._closed:
                continue
            name = standby_name(self.sup.deployment, next(self._serial))
            try:
                self.sup.adapter.create_standby(name, node or None, warm_modules(self.sup.cfg))
            except Exception as exc:
                log.warning("standby on %s not created: %s", node or "any node", exc)
                self.refill(RETRY_AFTER_S)
                continue
            self.pool[name] = Standby(name, node)
            self._watchers[name] = spawn(self.sup.tasks, self._watch(name))

    async def _watch(self, name: str) -> None:
        """Ready once it answers (its imports done); dropped and replaced when it dies."""
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                info = await self.sup.adapter.standby_info(name)
            standby = self.pool.get(name)
            if standby is not None:
                standby.ready, standby.info = True, info
            cause = await self.sup.adapter.wait_standby_death(name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            cause = f"{type(exc).__name__}: {exc}"
        if self.pool.pop(name, None) is not None and not self._closed:
            log.warning("standby %s gone (%s): replaced", name, cause)
            self.sup.adapter.forget_standby(name)
            self.refill(RETRY_AFTER_S)

    # -- promotion -----------------------------------------------------------------------------

    async def promote(
        self,
        spec: ChildSpec,
        node_id: str | None,
        epoch: int,
        init: dict[str, Any],
        timeout_s: float,
    ) -> Promotion:
        """``spec``'s role played by a standby from now on (``promoted``), or not: none fit
        (``none``) or the promotion failed (``failed``: the standby is gone, and whatever it
        began is fenced by the next epoch). Called after the previous incarnation is dead and
        fenced at ``epoch``; otherwise the caller creates the role afresh."""
        if not self.enabled:
            return "none"
        standby = pick(list(self.pool.values()), spec.placement, node_id, self.nodes)
        if standby is None:
            self.fallbacks += 1
            return "none"
        self.pool.pop(standby.name, None)
        watcher = self._watchers.pop(standby.name, None)
        if watcher is not None:
            watcher.cancel()
        try:
            async with asyncio.timeout(timeout_s):
                await self.sup.adapter.promote(spec, standby.name, epoch=epoch, **init)
        except Exception as exc:
            # It must not linger half a role: gone before the role is created afresh.
            log.warning("standby %s not promoted to %s: %s", standby.name, spec.role, exc)
            self.fallbacks += 1
            await self._kill(standby.name)
            return "failed"
        self.promoted += 1
        return "promoted"

    # -- stop ----------------------------------------------------------------------------------

    async def kill_all(self) -> None:
        """Every standby goes with the deployment (promoted ones went as their roles)."""
        self._closed = True
        if self._filling is not None:
            self._filling.cancel()
        for task in self._watchers.values():
            task.cancel()
        self._watchers.clear()
        for name in list(self.pool):
            await self._kill(name)
        self.pool.clear()

    async def _kill(self, name: str) -> None:
        try:
            await self.sup.adapter.kill_standby(name)
        except Exception as exc:
            log.warning("standby %s not killed: %s", name, exc)

    async def adopt_after_reattach(self) -> None:
        """A restarted supervisor knows none of the standbys its predecessor started: those
        that play no role are killed and the pool started afresh."""
        try:
            for name in self.sup.adapter.stray_standbys(list(self.sup.specs)):
                await self._kill(name)
        except Exception as exc:
            log.warning("standbys of the previous supervisor not reaped: %s", exc)
        self.refill()

    # -- status --------------------------------------------------------------------------------

    async def refresh(self, timeout_s: float = 0.5) -> None:
        """Their processes' memory and CPU time, for status: asked at most every
        ``INFO_EVERY_S`` (status may be polled often; an idle standby is left idle), and a
        standby that does not answer keeps its last figures."""
        now = self.sup.clock.monotonic()
        if now - self._info_ts < INFO_EVERY_S:
            return
        self._info_ts = now

        async def one(standby: Standby) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    standby.info = await self.sup.adapter.standby_info(standby.name)
            except Exception:
                log.debug("standby %s did not answer", standby.name, exc_info=True)

        await asyncio.gather(*(one(s) for s in self.pool.values() if s.ready))

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "promoted": self.promoted,
            "fallbacks": self.fallbacks,
            "rss_bytes": sum(int(s.info.get("rss_bytes") or 0) for s in self.pool.values()),
            "pool": [
                {"name": s.name, "node_id": s.node_id, "ready": s.ready}
                | {k: s.info.get(k) for k in ("pid", "rss_bytes", "cpu_s", "refused_calls")}
                for s in self.pool.values()
            ],
        }
