"""The run record: what a running deployment is, held outside its state dir (the supervisor's
memory and Ray's key-value store) so that a journal, a CLI or a restarted supervisor on any node
can check what they find against it. Pure data; ``tradeplane.cluster.kv`` stores it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Self


@dataclass(frozen=True, slots=True)
class JournalIdentity:
    """Which journal a running deployment writes to: a journal (re)started for it must open
    exactly this one (same genesis, at least ``last_seq`` lines) or fail closed."""

    genesis: str
    """Hash of the journal's first line: unique to one journal, kept by every copy of it."""
    epoch: int
    """Raised at every journal start; writes stamped with an older epoch are refused."""
    last_seq: int
    """The last sequence number the journal acknowledged to a writer."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    deployment: str
    run_id: str
    phase: str
    """The supervisor's phase (``deploying``, ``running``, ``stopped``, ``failed``...)."""
    state_node_id: str
    state_node_ip: str
    state_dir: str
    """The state dir's path on the state node."""
    journal: JournalIdentity | None = None
    placement: dict[str, str] = field(default_factory=dict)
    """Role -> node id of its current actor."""
    updated_ts: float = 0.0
    epoch: int = 0
    """The last epoch the supervisor handed to a child incarnation: a restarted supervisor
    continues above it, so epochs only grow for as long as the cluster keeps this record."""
    failure: str = ""
    """Why the deployment failed (``journal_lost: ...``), where the journal cannot say it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        data = dict(raw)
        journal = data.pop("journal", None)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        ident = JournalIdentity(**journal) if journal else None
        return cls(**known, journal=ident)

    def with_(self, **changes: Any) -> Self:
        return replace(self, **changes)
