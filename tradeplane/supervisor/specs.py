"""What a deployment is made of: its children in dependency order and how to create each."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tradeplane.actors.common import child_options
from tradeplane.cluster.placement import Placement, Where
from tradeplane.config.models import Mode, TradeplaneConfig
from tradeplane.config.settings import without_credentials
from tradeplane.protocol.roles import (
    ROLE_BROKER,
    ROLE_DRIFT,
    ROLE_FEED,
    ROLE_JOURNAL,
    ROLE_RECONCILER,
    ROLE_RISK,
    ROLE_SUPERVISOR,
    ROLE_TELEMETRY,
    ROLE_VENUE,
    strategy_role,
)


class LazyActorClass:
    """A child's Ray actor class, imported when first used. Importing every child's code is
    most of a supervisor process's start-up: a supervisor that Ray restarted re-attaches
    without it, and ``preload()`` imports it afterwards, off the re-attach path. (Ray still
    loads the actor class of each child the supervisor looks up, to make its handle: what a
    child's actor module imports at its top is on the re-attach path, so numpy and the
    metrics SDK are imported where they are used.)"""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def resolve(self) -> Any:
        return getattr(importlib.import_module(self.module), self.name)

    def options(self, **options: Any) -> Any:
        return self.resolve().options(**options)

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


def class_path_of(actor_class: Any) -> str:
    """``module:qualname`` of a child's actor class, for a standby to build it by (a lazy one
    without importing it here)."""
    if isinstance(actor_class, LazyActorClass):
        return f"{actor_class.module}:{actor_class.name}"
    from tradeplane.actors.standby import class_path

    return class_path(actor_class)


BrokerActor = LazyActorClass("tradeplane.actors.broker", "BrokerActor")
FeedActor = LazyActorClass("tradeplane.actors.feed", "FeedActor")
JournalActor = LazyActorClass("tradeplane.actors.journal", "JournalActor")
ReconcilerActor = LazyActorClass("tradeplane.actors.reconciler", "ReconcilerActor")
RiskActor = LazyActorClass("tradeplane.actors.risk", "RiskActor")
StrategyActor = LazyActorClass("tradeplane.actors.strategy", "StrategyActor")
TelemetryActor = LazyActorClass("tradeplane.actors.telemetry", "TelemetryActor")
DriftActor = LazyActorClass("tradeplane.actors.drift", "DriftActor")
SimVenueActor = LazyActorClass("tradeplane.actors.venue", "SimVenueActor")
_CHILD_CLASSES = (
    BrokerActor,
    FeedActor,
    JournalActor,
    ReconcilerActor,
    RiskActor,
    StrategyActor,
    TelemetryActor,
    SimVenueActor,
)


def preload(cfg: TradeplaneConfig | None = None) -> None:
    """Import every child's actor class now (a restart then creates its child at once). The
    drift actor's (the backtest engine, numpy) only for a deployment that tracks drift: the
    import competes with the deployment's own start for the state node's CPU."""
    for cls in _CHILD_CLASSES:
        cls.resolve()
    if cfg is not None and cfg.drift is not None:
        DriftActor.resolve()


@dataclass(frozen=True)
class ChildSpec:
    role: str
    actor_class: Any
    args: tuple[Any, ...]
    options: dict[str, Any]
    placement: Placement = field(default_factory=Placement)

    def create(self, node_id: str | None = None, *, epoch: int = 0, **init: Any) -> Any:
        """A new actor: on ``node_id`` when given (hard: never elsewhere, it fails instead),
        otherwise wherever its resources and labels allow, spread. ``epoch``: this
        incarnation's (its journal writes carry it); ``init``: further keyword arguments for
        this incarnation only (the journal's ``expect``)."""
        options = dict(self.options)
        if node_id is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
        else:
            options["scheduling_strategy"] = "SPREAD"
            if self.placement.resources:
                options["resources"] = dict(self.placement.resources)
            if self.placement.labels:
                options["label_selector"] = dict(self.placement.labels)
        return self.actor_class.options(**options).remote(*self.args, epoch=epoch, **init)


def standby_options(deployment: str, name: str, node_id: str | None) -> dict[str, Any]:
    """A standby's Ray options: a child's (detached, no Ray restarts, no CPU reserved) under
    its own name, on ``node_id`` (hard) when given. ``deployment`` is part of ``name``."""
    options = child_options(deployment, "", name=name)
    if node_id is not None:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
    return options


def uses_venue_actor(cfg: TradeplaneConfig) -> bool:
    return cfg.venue.kind == "sim" and cfg.deployment.mode is not Mode.SHADOW


def child_specs(cfg: TradeplaneConfig, run_id: str, sources: dict[str, str]) -> list[ChildSpec]:
    """No child gets credentials as an argument (Ray's GCS keeps actor arguments): the broker
    (which holds the venue connection) and the journal (which masks them) read them on their
    own node (``config.settings.node_credentials``)."""
    dep = cfg.deployment.name
    public = without_credentials(cfg)
    # The alert webhook's URL may hold a token: only the telemetry actor, which sends, gets it.
    sends_alerts = public
    public = public.model_copy(
        update={"alerts": public.alerts.model_copy(update={"webhook_url": None})}
    )
    cfg = public
    state_dir = str(cfg.deployment.resolved_state_dir())
    specs = [
        ChildSpec(
            ROLE_JOURNAL,
            JournalActor,
            (dep, state_dir, cfg),  # the whole config: it reads the secrets to mask
            child_options(dep, ROLE_JOURNAL),
        ),
    ]
    # Strategies first: the feed pushes in this order and they are on the tick-to-order path.
    subscribers: dict[str, list[str] | None] = {
        strategy_role(s.name): list(cfg.strategy_symbols(s)) for s in cfg.strategies
    }
    subscribers[ROLE_RISK] = None
    if uses_venue_actor(cfg):
        specs.append(
            ChildSpec(
                ROLE_VENUE,
                SimVenueActor,
                (dep, state_dir, cfg.venue.sim),
                child_options(dep, ROLE_VENUE),
            )
        )
        subscribers[ROLE_VENUE] = None
    if cfg.deployment.mode is Mode.SHADOW:
        subscribers[ROLE_BROKER] = None
    specs.append(
        ChildSpec(ROLE_BROKER, BrokerActor, (cfg, run_id), child_options(dep, ROLE_BROKER))
    )
    specs.append(ChildSpec(ROLE_RISK, RiskActor, (public, run_id), child_options(dep, ROLE_RISK)))
    specs.append(
        ChildSpec(
            ROLE_RECONCILER,
            ReconcilerActor,
            (public, run_id),
            child_options(dep, ROLE_RECONCILER),
        )
    )
    for s in cfg.strategies:
        role = strategy_role(s.name)
        where = Placement(Where.SPREAD, resources=dict(s.resources), labels=dict(s.labels))
        args = (public, s, sources[s.name], run_id)
        specs.append(ChildSpec(role, StrategyActor, args, child_options(dep, role), where))
    feed_node = cfg.deployment.feed_node
    feed_where = Placement(Where.NAMED_NODE, feed_node) if feed_node else Placement()
    specs.append(
        ChildSpec(
            ROLE_FEED,
            FeedActor,
            (public, run_id, subscribers),
            child_options(dep, ROLE_FEED),
            feed_where,
        )
    )
    if cfg.drift is not None:
        # Last: it reads what the others record (the journal's files, the recorded bars) and
        # nothing waits for it. The strategies' sources go as text, as to the strategies.
        specs.append(
            ChildSpec(
                ROLE_DRIFT,
                DriftActor,
                (public, run_id, dict(sources)),
                child_options(dep, ROLE_DRIFT),
            )
        )
    if cfg.telemetry.enabled or sends_alerts.alerts.url() is not None:
        # Right after the journal (it reads the journal's files: both on the state node), so
        # it sees every line of the run; it is asked for the others' metrics by role.
        roles = [s.role for s in specs] + [ROLE_TELEMETRY, ROLE_SUPERVISOR]
        specs.insert(
            1,
            ChildSpec(
                ROLE_TELEMETRY,
                TelemetryActor,
                (sends_alerts, run_id, roles),
                child_options(dep, ROLE_TELEMETRY),
            ),
        )
    return specs


def read_sources(cfg: TradeplaneConfig) -> dict[str, str]:
    """Strategy files are read once by the deployer and shipped as text to any node."""
    return {s.name: s.path.read_text(encoding="utf-8") for s in cfg.strategies}
