"""What a start does with its reconciliation report: go on (clean), adopt the venue's holdings
and go on (logged, the report names each difference), or stop (``block_start``, when
``supervisor.fail_on_reconciliation_mismatch`` asks for it). Pure: the reconciler journals the
choice, the supervisor carries it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tradeplane.core.reconcile import Holdings, ReconciliationReport


class ReconcileAction(StrEnum):
    NONE = "none"
    """The journal and the venue agree."""
    ADOPT_VENUE = "adopt_venue"
    """They differ: the venue is the truth; risk takes its positions and working orders."""
    BLOCK_START = "block_start"
    """They differ and the configuration says a mismatch stops the start."""


@dataclass(frozen=True, slots=True)
class ReconcileDecision:
    action: ReconcileAction
    adopt_positions: dict[str, float] | None = None
    """The venue's net positions for risk to adopt (only with ``ADOPT_VENUE``)."""
    external_orders: list[dict[str, Any]] = field(default_factory=list)
    """Open orders the venue has and the journal does not (only with ``ADOPT_VENUE``): risk
    counts them as working exposure."""


def choose_action(report: ReconciliationReport, *, fail_on_mismatch: bool) -> ReconcileAction:
    if report.clean:
        return ReconcileAction.NONE
    return ReconcileAction.BLOCK_START if fail_on_mismatch else ReconcileAction.ADOPT_VENUE


def decide(
    report: ReconciliationReport, live: Holdings, *, fail_on_mismatch: bool
) -> ReconcileDecision:
    """The action and, when adopting, what risk adopts."""
    action = choose_action(report, fail_on_mismatch=fail_on_mismatch)
    if action is not ReconcileAction.ADOPT_VENUE:
        return ReconcileDecision(action)
    return ReconcileDecision(
        action,
        adopt_positions=dict(live.positions),
        external_orders=[dict(o) for o in report.unexpected_orders],
    )
