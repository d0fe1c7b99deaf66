"""Epochs and fences: what keeps a replaced actor (left running on a cut-off node, or stopped and
resumed) from writing to the journal or trading after its replacement started. Pure.

Every child incarnation gets an epoch from the supervisor's ``EpochCounter`` (strictly increasing
across restarts, supervisor restarts and ``up``s). Before a replacement is created, the journal is
told to fence the role at the new epoch (``FenceTable.fence``); from then on it refuses every
write stamped with an older epoch of that role (``FenceTable.check``), so the old incarnation can
neither journal nor get an order past the durable-before-venue rule.

The journal's identity is checked here too (``identity_mismatch``): a journal (re)started for a
running deployment must be exactly the one the run record names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tradeplane.core.errors import StaleEpochError
from tradeplane.core.run_record import JournalIdentity

Stamp = tuple[str, int]
"""(role, epoch) of a writer, or of the actor whose say-so a write carries out (the risk
incarnation that approved an order the broker journals)."""

FENCE_SCOPE = "fence"
"""The journal's ``state`` scope holding each role's fence (key: role, data: {"epoch": n})."""


class FenceTable:
    """Per role, the lowest epoch whose writes are still accepted."""

    def __init__(self, fences: Mapping[str, int] | None = None) -> None:
        self._floor: dict[str, int] = dict(fences or {})

    def fence(self, role: str, epoch: int) -> int:
        """Refuse ``role``'s writes below ``epoch`` from now on; returns the fence in force (a
        fence never moves back: an older request leaves the newer one in place)."""
        floor = max(self._floor.get(role, 0), int(epoch))
        self._floor[role] = floor
        return floor

    def check(self, stamps: Iterable[Stamp]) -> None:
        """Raise ``StaleEpochError`` when any stamp is from a replaced incarnation."""
        for role, epoch in stamps:
            floor = self._floor.get(role)
            if floor is not None and epoch < floor:
                raise StaleEpochError(
                    f"stale_epoch: {role} epoch {epoch} has been replaced (fenced at epoch "
                    f"{floor}): write refused; the replaced actor must stop",
                    role,
                )

    def floor(self, role: str) -> int | None:
        return self._floor.get(role)

    def max_epoch(self) -> int:
        return max(self._floor.values(), default=0)

    def as_dict(self) -> dict[str, int]:
        return dict(self._floor)


class EpochCounter:
    """The supervisor's source of epochs. ``floor`` seeds it above anything handed out before
    (the run record's last epoch; at a cold ``up`` the time in ms, so a later run starts above
    an earlier one); ``raise_to`` moves it past an epoch seen elsewhere (the journal's fences)."""

    def __init__(self, floor: int = 0) -> None:
        self.last = int(floor)

    def raise_to(self, seen: int) -> None:
        self.last = max(self.last, int(seen))

    def next(self) -> int:
        self.last += 1
        return self.last


def identity_mismatch(
    expected: JournalIdentity | None, *, found: bool, genesis: str, last_seq: int
) -> str | None:
    """Why the journal opened is not the expected one (``journal_lost``), or None when it is.

    ``found``: the state dir held a journal before this open. A running deployment whose
    journal has acknowledged nothing yet (no genesis, seq 0) may open an empty one: nothing
    recorded can be lost by it."""
    if expected is None:
        return None
    recorded = bool(expected.genesis) or expected.last_seq > 0
    if not recorded:
        return None
    if not found:
        return (
            f"no journal files where the running deployment's journal was (genesis "
            f"{expected.genesis[:16]}, {expected.last_seq} lines acknowledged)"
        )
    if expected.genesis and genesis != expected.genesis:
        return (
            f"a different journal (genesis {genesis[:16] or 'none'}, expected "
            f"{expected.genesis[:16]})"
        )
    if last_seq < expected.last_seq:
        return (
            f"the journal has {last_seq} lines but {expected.last_seq} were acknowledged: "
            "lines are missing"
        )
    return None
