"""The simulated venue: seeded market data, a paper matching engine and its durable façade."""

from __future__ import annotations

from tradeplane.venues.sim.market import MarketSimulator, default_initial_price
from tradeplane.venues.sim.matching import PaperMatchingEngine
from tradeplane.venues.sim.model import (
    EngineChanges,
    EngineState,
    VenueEvent,
    VenueFill,
    VenueOrderRequest,
    VenueOrderState,
    VenuePosition,
    apply_fill_to_position,
)
from tradeplane.venues.sim.store import FORMAT_MARKER, FORMAT_VERSION, SimVenueStore
from tradeplane.venues.sim.venue import SimVenue

__all__ = [
    "FORMAT_MARKER",
    "FORMAT_VERSION",
    "EngineChanges",
    "EngineState",
    "MarketSimulator",
    "PaperMatchingEngine",
    "SimVenue",
    "SimVenueStore",
    "VenueEvent",
    "VenueFill",
    "VenueOrderRequest",
    "VenueOrderState",
    "VenuePosition",
    "apply_fill_to_position",
    "default_initial_price",
]
