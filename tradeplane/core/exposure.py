"""What an order does to a position: the one rule for "reduces" and "increases", with one
quantity tolerance.

Risk (pre-trade checks, the flatten check, the flag the broker's halt gate reads) and the book
all judge by these, so an order that is "reducing" for one is reducing for all.

A flip is *not* reducing: selling 15 against a long 10 closes the 10 and opens a short 5, and
while the kill switch only lets exposure shrink, that new short is new risk. An overshoot within
``QTY_EPS`` (float noise, e.g. a close sized from summed fills) still counts as an exact close.
"""

from __future__ import annotations

QTY_EPS = 1e-9
"""Absolute quantity tolerance: two quantities closer than this are equal; a position within
it of zero is flat."""


def is_flat(quantity: float) -> bool:
    return abs(quantity) <= QTY_EPS


def reduces_position(before: float, signed: float) -> bool:
    """Whether an order of ``signed`` quantity only moves ``before`` toward zero: the position
    is not flat, the order is on the other side, and it closes at most the whole position
    (within ``QTY_EPS``), never flipping it. A flat position cannot be reduced."""
    if is_flat(before) or before * signed >= 0:
        return False
    return abs(signed) <= abs(before) + QTY_EPS


def increases_exposure(before: float, signed: float) -> bool:
    """Whether an order of ``signed`` quantity leaves |position| larger than it found it (by
    more than ``QTY_EPS``). A flip to a smaller opposite position does not increase it, and
    is not reducing either (see ``reduces_position``)."""
    return abs(before + signed) > abs(before) + QTY_EPS
