"""Venue connection claims in Ray's key-value store (``venue/<deployment>``): written at ``up``
before anything connects, removed at ``down``, so two deployments on one cluster never share
an IB client id on one TWS (``tradeplane.core.venue_claims`` has the rules)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ray.experimental import internal_kv

from tradeplane.cluster.kv import KV_NAMESPACE
from tradeplane.config.models import Mode, TradeplaneConfig
from tradeplane.core.errors import OperationalError
from tradeplane.core.venue_claims import VenueClaim, VenueConnection, clashes, ib_connections

PREFIX = "venue/"


def connections(cfg: TradeplaneConfig) -> list[VenueConnection]:
    """The venue API connections ``cfg``'s deployment opens (none for the sim venue)."""
    if cfg.venue.kind != "ib":
        return []
    ib = cfg.venue.ib
    ib_feed = cfg.feed.kind == "venue"
    if cfg.deployment.mode is Mode.SHADOW:  # a shadow broker never connects
        return ib_connections(ib.host, ib.port, ib.client_id, ib_feed=ib_feed)[1:]
    return ib_connections(ib.host, ib.port, ib.client_id, ib_feed=ib_feed)


def _put(claim: VenueClaim) -> None:
    internal_kv._internal_kv_put(
        PREFIX + claim.deployment,
        json.dumps(claim.to_dict(), sort_keys=True),
        overwrite=True,
        namespace=KV_NAMESPACE,
    )


def _claims() -> list[VenueClaim]:
    out = []
    for key in internal_kv._internal_kv_list(PREFIX, namespace=KV_NAMESPACE):
        raw = internal_kv._internal_kv_get(key, namespace=KV_NAMESPACE)
        if raw is not None:
            out.append(VenueClaim.from_dict(json.loads(raw)))
    return out


def claim(cfg: TradeplaneConfig, is_running: Callable[[str], bool]) -> None:
    """Record the connections of ``cfg``'s deployment, or refuse (OperationalError naming the
    other deployment) when a running one holds any of them. Written before it is checked, so
    of two ``up`` at once at least one sees the other (both may refuse: never both start)."""
    name = cfg.deployment.name
    mine = VenueClaim(name, tuple(connections(cfg)), time.time())
    if not mine.connections:
        return
    _put(mine)
    now = time.time()
    others = [
        c for c in _claims() if c.deployment != name and c.counts(is_running(c.deployment), now)
    ]
    problems = clashes(mine, others)
    if problems:
        release(name)
        raise OperationalError(
            f"deployment {name!r} refused: "
            + "; ".join(problems)
            + ". Give each deployment its own venue.ib.client_id (it uses the id and the next "
            "one) or IB_CLIENT_ID"
        )


def release(deployment: str) -> None:
    internal_kv._internal_kv_del(PREFIX + deployment, namespace=KV_NAMESPACE)
