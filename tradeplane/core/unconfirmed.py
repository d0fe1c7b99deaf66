"""What to do with an order a crash or a timeout left in submitting/unknown, once the venue has
answered whether it has it (DESIGN §3.4: resolve by asking the venue, never by guessing).

Pure: the broker's resolver asks the venue and carries out the answer.

An order the venue does not know is waited for because its submit may still be on its way. That
wait is needed only while a submit can still land. A venue whose answers are final once it has
restarted (``VenueClient.final_lookups``: the built-in sim venue, one process over a durable
store that a new incarnation opens only once the previous one has let go of it, and that places
a submit only when it is addressed to its own incarnation) can never be reached by a submit sent
to an earlier incarnation: so "not there, and asked of a newer incarnation than the submit went
to" is the final answer, and the order is closed at once. Every other case waits the grace.
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
    """It never arrived and never will: close it ``NOT_RECEIVED``."""


def settle(
    *,
    at_venue: bool,
    unanswered_for_s: float,
    grace_s: float,
    submitted_to: int | None = None,
    answered_by: int | None = None,
    answers_final: bool = False,
) -> Settle:
    """``at_venue``: the venue reports the order; ``unanswered_for_s``: since the order last
    changed. An order the venue does not know is closed once ``grace_s`` has passed, so a
    submit still on its way is never declared lost; or at once when the venue's answers are
    final (``answers_final``) and the incarnation that answered (``answered_by``) is newer than
    the one the submit was addressed to (``submitted_to``). Either incarnation unknown (None):
    the grace applies."""
    if at_venue:
        return Settle.FOUND
    if (
        answers_final
        and submitted_to is not None
        and answered_by is not None
        and answered_by > submitted_to
    ):
        return Settle.CLOSE
    return Settle.WAIT if unanswered_for_s < grace_s else Settle.CLOSE
