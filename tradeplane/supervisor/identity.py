"""What the supervisor holds outside the state dir while a deployment runs: its journal's
identity (genesis, epoch, last acknowledged seq) and the epochs it hands to each child
incarnation, kept in memory and in the run record in Ray's key-value store (through the
adapter), so a journal restarted for this run must open exactly that journal, and a replaced
actor's writes are refused (``core.fencing``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tradeplane.core.errors import OperationalError
from tradeplane.core.fencing import EpochCounter, identity_mismatch
from tradeplane.core.run_record import JournalIdentity
from tradeplane.protocol.api import JournalApi
from tradeplane.protocol.roles import ROLE_JOURNAL
from tradeplane.supervisor.commands import JournalWasLost

if TYPE_CHECKING:
    from tradeplane.supervisor.supervisor import Supervisor

log = logging.getLogger("tradeplane.supervisor")
PUBLISH_EVERY_S = 1.0  # the run record's last_seq follows the journal at most this often


class JournalLost(OperationalError):
    """The journal (re)started for this run is not the run's journal: fail closed."""


class Identity:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        # At a cold `up` the time in ms: above every epoch of an earlier run of this deployment
        # (a run would need more restarts than milliseconds passed to overtake it).
        self.epochs = EpochCounter(int(sup.clock.now() * 1000))
        self.child_epochs: dict[str, int] = {}
        self.expected: JournalIdentity | None = None
        self.lost: str | None = None
        self._published: tuple[Any, ...] | None = None
        self._published_ts = float("-inf")

    # -- epochs --------------------------------------------------------------------------------

    def next_epoch(self, role: str) -> int:
        epoch = self.epochs.next()
        self.child_epochs[role] = epoch
        self.publish(force=True)  # handed out: a restarted supervisor must continue above it
        return epoch

    async def new_incarnation(self, role: str, timeout_s: float) -> int:
        """The epoch of ``role``'s next actor, fenced at the journal before that actor exists:
        the incarnation it replaces writes no more (the journal fences no one for itself)."""
        epoch = self.next_epoch(role)
        await self.fence(role, epoch, timeout_s)
        return epoch

    async def fence(self, role: str, epoch: int, timeout_s: float) -> None:
        """Before ``role``'s incarnation ``epoch`` acts: the journal refuses every older one."""
        if role == ROLE_JOURNAL:
            return
        floor = await self.sup.adapter.call(timeout_s, ROLE_JOURNAL, JournalApi.fence, role, epoch)
        if floor > epoch:
            self.epochs.raise_to(floor)
            raise OperationalError(
                f"{role}: epoch {epoch} is below the journal's fence {floor} (epochs went back); "
                "not started"
            )

    def init_args(self, role: str, restart: bool) -> dict[str, Any]:
        """Creation arguments of this incarnation: a restarted journal's is the identity it
        must find (a cold start expects none: it opens what is there, or a fresh journal)."""
        if role == ROLE_JOURNAL and restart and self.expected is not None:
            return {"expect": self.expected}
        return {}

    @staticmethod
    def raise_if_lost(cause: str | None) -> None:
        """The journal's creation failed because it found another journal, or none."""
        if cause is not None and "journal_lost:" in cause:
            raise JournalLost(cause[cause.index("journal_lost:") :])

    async def fail_closed(self, reason: str) -> None:
        """Never trade on a fresh journal: halted, health failed, and why goes to the log,
        the status and the run record (the journal that would say it is gone)."""
        log.critical("%s: trading halted", reason)
        self.lost = reason
        await self.sup.handle(JournalWasLost(reason))
        self.publish(force=True)

    # -- the journal's identity ----------------------------------------------------------------

    def restore(self, run_id: str) -> None:
        """A restarted supervisor takes the identity and epochs from the run record."""
        record = self.sup.adapter.read_run()
        if record is None or record.run_id != run_id:
            return
        self.epochs.raise_to(record.epoch)
        if record.journal is not None:
            self.expected = record.journal

    def journal_ready(self, answer: dict[str, Any]) -> str | None:
        """The journal's ``ready`` answer: why it is not the expected journal, or None (the
        identity then follows it: same genesis, its epoch, at least as many lines)."""
        self.epochs.raise_to(int(answer.get("max_fence") or 0))
        genesis, last_seq = str(answer.get("genesis") or ""), int(answer.get("last_seq") or 0)
        lost = identity_mismatch(self.expected, found=True, genesis=genesis, last_seq=last_seq)
        if lost is not None:
            return lost
        self.expected = JournalIdentity(genesis, int(answer.get("epoch") or 0), last_seq)
        self.publish(force=True)
        return None

    def journal_beat(self, beat: dict[str, Any]) -> str | None:
        """A journal heartbeat: the last seq it acknowledged moves the identity on; another
        genesis than the expected one means the journal was swapped (journal_lost)."""
        ident = self.expected
        if ident is None or self.lost is not None:
            return None
        genesis, last_seq = str(beat.get("genesis") or ""), int(beat.get("last_seq") or 0)
        if ident.genesis and genesis and genesis != ident.genesis:
            return f"the journal's genesis changed to {genesis[:16]} (was {ident.genesis[:16]})"
        if (genesis and not ident.genesis) or last_seq > ident.last_seq:
            self.expected = replace(
                ident, genesis=genesis or ident.genesis, last_seq=max(last_seq, ident.last_seq)
            )
            self.publish()
        return None

    def publish(self, *, force: bool = False) -> None:
        """The identity and the last epoch into the run record (at most once a second unless
        forced; a failure is logged: the supervisor's memory still holds them)."""
        now = self.sup.clock.monotonic()
        current = (self.expected, self.epochs.last, self.lost)
        if current == self._published or (not force and now - self._published_ts < PUBLISH_EVERY_S):
            return
        try:
            self.sup.adapter.update_run(
                self.sup.run_id,
                journal=self.expected,
                epoch=self.epochs.last,
                **({"failure": self.lost, "phase": "failed"} if self.lost else {}),
            )
        except Exception as exc:
            log.warning("run record not updated: %s", exc)
            return
        self._published, self._published_ts = current, now

    def status(self) -> dict[str, Any]:
        ident = self.expected
        return {
            "genesis": ident.genesis if ident else None,
            "epoch": ident.epoch if ident else None,
            "last_seq": ident.last_seq if ident else None,
            "lost": self.lost,
            "epochs": dict(self.child_epochs),
        }
