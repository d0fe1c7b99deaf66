"""Which venue API connections a deployment holds, and which of them another deployment on the
cluster already holds. Pure data and rules; ``tradeplane.cluster.venue_claims`` keeps one record
per deployment in Ray's key-value store and applies them at ``up``.

IB is the venue where this matters: one TWS (or Gateway) accepts one connection per client id,
and a second deployment connecting with an id already in use would either be refused (error
326) or, on a reconnect race, take over the other's order stream. The broker connects with
``client_id`` and IB's own feed with ``client_id + 1``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any, Self

FRESH_CLAIM_S = 180.0
"""A claim whose deployment has no supervisor yet counts this long (a deploy in progress);
after that it is a leftover of a deployment that died without ``down``."""


@dataclass(frozen=True, slots=True)
class VenueConnection:
    venue: str
    host: str
    port: int
    client_id: int
    role: str
    """What holds it (``broker``, ``feed``): named in the refusal."""

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.venue, _same_host(self.host), self.port, self.client_id)

    def where(self) -> str:
        return f"{self.venue.upper()} {self.host}:{self.port} client id {self.client_id}"


def _same_host(host: str) -> str:
    """Loopback spellings are one host. (On a cluster two nodes' loopbacks are different TWSs;
    treating them as one refuses a safe set-up rather than allowing a clash.)"""
    name = host.strip().lower()
    if name == "localhost":
        return "loopback"
    try:
        return "loopback" if ipaddress.ip_address(name).is_loopback else name
    except ValueError:
        return name


def ib_connections(host: str, port: int, client_id: int, *, ib_feed: bool) -> list[VenueConnection]:
    out = [VenueConnection("ib", host, port, client_id, "broker")]
    if ib_feed:
        out.append(VenueConnection("ib", host, port, client_id + 1, "feed"))
    return out


@dataclass(frozen=True, slots=True)
class VenueClaim:
    """The connections one deployment holds, as stored for the others to check against."""

    deployment: str
    connections: tuple[VenueConnection, ...]
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        conns = tuple(VenueConnection(**c) for c in raw.get("connections", ()))
        return cls(str(raw["deployment"]), conns, float(raw.get("ts", 0.0)))

    def counts(self, running: bool, now: float) -> bool:
        """Whether this claim holds: its deployment runs, or is still being deployed."""
        return running or now - self.ts < FRESH_CLAIM_S


def clashes(mine: VenueClaim, others: list[VenueClaim]) -> list[str]:
    """One line per connection of ``mine`` another deployment's claim already holds."""
    held = {c.key: (claim.deployment, c) for claim in others for c in claim.connections}
    out = []
    for conn in mine.connections:
        if conn.key in held:
            owner, theirs = held[conn.key]
            if owner == mine.deployment:
                continue
            out.append(
                f"{conn.where()} (for this deployment's {conn.role}) is already used by running "
                f"deployment {owner!r} (its {theirs.role})"
            )
    return out
