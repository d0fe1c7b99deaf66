"""A child's view of its supervisor: every call the supervisor makes renews the lease; a child
whose lease has lapsed knows nobody watches it any more (the supervisor's node, the state node,
is lost, or Ray's control plane is and the supervisor with it) and stops acting on its own: a
strategy emits nothing, the broker lets no order out. It says so once, and again when the
supervisor is back.

Its times are a monotonic clock's (the child's own): the lease is a duration within one process,
so a wall-clock step neither lapses it (holding orders back for nothing) nor keeps a lapsed one
alive (an hour's step back would hide a lost supervisor for an hour)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SupervisionLease:
    lapse_s: float
    renewed_ts: float
    lapses: int = 0
    """How many times the lease lapsed (each counted once, when first noticed)."""
    _lapsed: bool = False

    def renew(self, now: float) -> float | None:
        """The supervisor called. Returns how long it had been away when the lease had lapsed
        (it is back), else None."""
        away = now - self.renewed_ts if self._lapsed else None
        self.renewed_ts, self._lapsed = now, False
        return away

    def check(self, now: float) -> bool:
        """True the first time the lease is found lapsed (to say so once)."""
        if self._lapsed or now - self.renewed_ts < self.lapse_s:
            return False
        self._lapsed = True
        self.lapses += 1
        return True

    def lapsed(self, now: float) -> bool:
        self.check(now)
        return self._lapsed

    def silent_s(self, now: float) -> float:
        return max(0.0, now - self.renewed_ts)
