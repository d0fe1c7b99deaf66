"""Fault injection for the simulated venue and feed (chaos testing). Pure: no IO, injected clock.

A ``FaultBook`` holds the faults active right now, each until it expires or is cleared; the venue
and feed actors ask it on every call whether to misbehave. Random decisions (``probability`` < 1)
come from a seeded generator per fault kind, so a chaos run repeats exactly and one kind's draws
never shift another's.

The fault vocabulary (``FaultKind``, ``FaultSpec``) is configuration and lives in
``tradeplane.config.faults``, with the ``FaultSchedule`` that turns the faults listed in the
config into injections at fixed times after deployment start (run by the supervisor).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from tradeplane.config.faults import (
    FaultKind,
    FaultSpec,
    FaultTarget,
    fault_target,
)
from tradeplane.core.clock import Clock
from tradeplane.core.errors import TransientError
from tradeplane.core.model import Side
from tradeplane.protocol.events import VenueEventKind
from tradeplane.venues.sim.model import VenueEvent, VenueFill

INJECTED_REJECT = "INJECTED_REJECT"


class VenueUnavailable(TransientError):
    """The venue refused a call because its connection is down (injected ``drop_connection``).

    Nothing was done: a refused submit is never placed."""


@dataclass(slots=True)
class _Active:
    spec: FaultSpec
    expires_at: float | None  # monotonic seconds; None = until cleared
    hits: int = 0


class FaultBook:
    """The faults active now. Expired faults drop out by the clock, without a tick."""

    def __init__(self, clock: Clock, seed: int = 0, *, target: FaultTarget | None = None) -> None:
        """``target`` limits the book to the kinds that actor carries out, so a fault routed to
        the wrong actor is refused instead of silently doing nothing."""
        self._clock = clock
        self._seed = seed
        self._target = target
        self._active: dict[FaultKind, _Active] = {}
        self._rngs: dict[FaultKind, random.Random] = {}
        self._counts: dict[str, int] = {}

    def inject(
        self, kind: FaultKind | str, duration_s: float | None = None, **params: Any
    ) -> dict[str, Any]:
        """Activate ``kind`` (replacing an active one of the same kind) and describe it.

        ``params`` are ``FaultSpec`` fields (``delay_s``, ``probability``); an unknown kind, a bad
        value or an unknown name raises ``ValueError`` (pydantic's, naming the field)."""
        spec = FaultSpec(kind=FaultKind(kind), duration_s=duration_s, **params)
        return self.apply(spec)

    def apply(self, spec: FaultSpec) -> dict[str, Any]:
        """Activate a ready-made spec (from the schedule); its ``at_s`` has already been used."""
        if self._target is not None and spec.target != self._target:
            raise ValueError(
                f"fault {spec.kind.value!r} is carried out by the {spec.target}, "
                f"not the {self._target}"
            )
        expires = None if spec.duration_s is None else self._clock.monotonic() + spec.duration_s
        self._active[spec.kind] = _Active(spec, expires)
        return self._describe_one(spec.kind, self._active[spec.kind])

    def clear(self, kind: FaultKind | str | None = None) -> int:
        """End ``kind`` (or every fault); returns how many active faults were ended."""
        self._prune()
        if kind is None:
            n = len(self._active)
            self._active.clear()
            return n
        return int(self._active.pop(FaultKind(kind), None) is not None)

    def active(self, kind: FaultKind | str) -> FaultSpec | None:
        self._prune()
        entry = self._active.get(FaultKind(kind))
        return None if entry is None else entry.spec

    def hit(self, kind: FaultKind | str) -> bool:
        """Whether this call/order/fill/batch is affected: ``kind`` is active and the seeded draw
        falls within its probability. Each yes is counted."""
        kind = FaultKind(kind)
        self._prune()
        entry = self._active.get(kind)
        if entry is None:
            return False
        p = entry.spec.probability
        # Draw only when it matters, so probability 1 leaves the sequence for later faults alone.
        if p < 1.0 and self._rng(kind).random() >= p:
            return False
        entry.hits += 1
        self._counts[kind.value] = self._counts.get(kind.value, 0) + 1
        return True

    def describe(self) -> list[dict[str, Any]]:
        """JSON-safe view for heartbeats and status: kind, remaining_s (None = until cleared),
        hits since injected, probability, and delay_s for ``delay_acks``."""
        self._prune()
        return [self._describe_one(k, e) for k, e in sorted(self._active.items())]

    @property
    def counts(self) -> dict[str, int]:
        """Hits per kind since the book was created (survives clears)."""
        return dict(self._counts)

    def __bool__(self) -> bool:
        self._prune()
        return bool(self._active)

    def _describe_one(self, kind: FaultKind, entry: _Active) -> dict[str, Any]:
        remaining = None
        if entry.expires_at is not None:
            remaining = max(0.0, entry.expires_at - self._clock.monotonic())
        out: dict[str, Any] = {
            "kind": kind.value,
            "target": fault_target(kind),
            "remaining_s": remaining,
            "hits": entry.hits,
            "probability": entry.spec.probability,
        }
        if kind is FaultKind.DELAY_ACKS:
            out["delay_s"] = entry.spec.delay_s
        return out

    def _prune(self) -> None:
        now = self._clock.monotonic()
        expired = [
            k for k, e in self._active.items() if e.expires_at is not None and now >= e.expires_at
        ]
        for kind in expired:
            del self._active[kind]

    def _rng(self, kind: FaultKind) -> random.Random:
        rng = self._rngs.get(kind)
        if rng is None:
            # A str seed is hashed deterministically (unlike hash()), across processes too.
            rng = self._rngs[kind] = random.Random(f"{self._seed}:{kind.value}")
        return rng


# --------------------------------------------------------------------------- malformed messages

MALFORMED_SHAPES = (
    "fill_missing",
    "fill_price_nan",
    "fill_price_negative",
    "fill_quantity_zero",
    "unknown_kind",
    "plain_dict",
    "empty_client_order_id",
)


def malformed_message(shape: int, template: VenueEvent, seq: int) -> object:
    """A broken message about ``template``'s order, in shape ``shape % len(MALFORMED_SHAPES)``.

    It carries ``seq`` (the caller passes the seq of the event before the batch), so a reader
    that wrongly advanced its cursor on it would still not skip a real event. Exactly one thing
    is wrong with each shape, so each exercises one check at the reader's edge."""
    name = MALFORMED_SHAPES[shape % len(MALFORMED_SHAPES)]
    coid, vid, ts = template.client_order_id, template.venue_order_id, template.ts
    if name == "fill_missing":
        return VenueEvent(seq, VenueEventKind.ORDER_FILLED, coid, vid, ts)
    if name in ("fill_price_nan", "fill_price_negative", "fill_quantity_zero"):
        good = template.fill
        fill = VenueFill(
            fill_id=f"MALFORMED-{seq}-{shape}",
            client_order_id=coid,
            venue_order_id=vid or "SIM-MALFORMED",
            symbol=good.symbol if good else "MALFORMED",
            side=good.side if good else Side.BUY,
            quantity=0.0 if name == "fill_quantity_zero" else 1.0,
            price={"fill_price_nan": math.nan, "fill_price_negative": -1.0}.get(name, 1.0),
            fee=0.0,
            ts=ts,
            liquidity="taker",
        )
        return VenueEvent(seq, VenueEventKind.ORDER_FILLED, coid, vid, ts, None, fill)
    if name == "unknown_kind":
        return VenueEvent(seq, "order_teleported", coid, vid, ts)
    if name == "plain_dict":
        return {"seq": seq, "kind": "order_filled", "client_order_id": coid, "price": 1.0}
    # No fill here: a copy of a real fill id would let a careless reader de-duplicate the real one.
    return VenueEvent(seq, VenueEventKind.ORDER_CANCELLED, "", vid, ts)
