"""What to do with an order a crash or a timeout left in submitting/unknown, once the venue has
answered whether it has it (DESIGN §3.4: resolve by asking the venue, never by guessing).

Pure: the broker's resolver asks the venue and carries out the answer.
"""

from __future__ import annotations

from enum import StrEnum

NOT_RECEIVED = "NOT_RECEIVED_BY_VENUE"


class Settle(StrEnum):
    FOUND = "found"
    """The venue has it: its events settle it on the stream; nothing to do but say so."""
    WAIT = "wait"
    """The venue has not seen it yet, but a submit can still be in flight: ask again later."""
    CLOSE = "close"
    """Not at the venue after the grace period: it never arrived; close it ``NOT_RECEIVED``."""


def settle(*, at_venue: bool, unanswered_for_s: float, grace_s: float) -> Settle:
    """``at_venue``: the venue reports the order; ``unanswered_for_s``: since the order last
    changed. An order the venue does not know is closed only once ``grace_s`` has passed, so a
    submit still on its way is never declared lost."""
    if at_venue:
        return Settle.FOUND
    return Settle.WAIT if unanswered_for_s < grace_s else Settle.CLOSE
