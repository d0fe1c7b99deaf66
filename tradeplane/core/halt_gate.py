"""The broker's last gate: may an order that risk approved earlier, and that is still queued at
the broker, leave for the venue now?

Risk approves against the trading state it knew; the kill switch can trip (or the venue
connection drop) between that approval and the send. Halt means halt (DESIGN §3.6): with the
kill switch active only risk's own flatten orders leave, plus, while trading is REDUCING (the
kill switch configured with ``kill_switch_allow_reducing``), orders that only reduced the
worst-case exposure when risk approved them (``SubmitOrder.reduces_position``, judged by
``core.exposure.reduces_position``). While the venue connection resyncs nothing leaves at all,
the flatten included (DESIGN §3.5): it is sent again once reconciled, never blind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tradeplane.core.model import SubmitOrder
from tradeplane.core.risk_types import TradingState


class HoldCause(StrEnum):
    RESYNCING = "resyncing"
    KILL_SWITCH = "kill_switch"
    UNSUPERVISED = "unsupervised"


@dataclass(frozen=True, slots=True)
class HeldBack:
    """The order may not leave; ``reason`` closes it in the journal (code first)."""

    cause: HoldCause
    reason: str


def held_back(
    order: SubmitOrder,
    trading_state: TradingState,
    *,
    resyncing: bool = False,
    resync_reason: str | None = None,
    unsupervised_s: float | None = None,
) -> HeldBack | None:
    """Why ``order`` may not leave now, or None when it may. ``unsupervised_s``: how long the
    broker has gone without its supervisor once its lease lapsed: nothing leaves, the flatten
    included (nobody could act on what follows it)."""
    if unsupervised_s is not None:
        return HeldBack(
            HoldCause.UNSUPERVISED, f"UNSUPERVISED: no supervisor for {unsupervised_s:.0f}s"
        )
    if resyncing:
        return HeldBack(
            HoldCause.RESYNCING, f"RECONCILING: venue connection resyncing ({resync_reason})"
        )
    if may_leave_in(trading_state, order):
        return None
    return HeldBack(
        HoldCause.KILL_SWITCH, f"TRADING_{trading_state.value.upper()}: kill switch active"
    )


def may_leave_in(trading_state: TradingState, order: SubmitOrder) -> bool:
    """ACTIVE: anything; REDUCING: a flatten or an order approved as reducing; HALTED: only a
    flatten."""
    if trading_state is TradingState.ACTIVE or order.flatten:
        return True
    return trading_state is TradingState.REDUCING and order.reduces_position


def gate_state(wire_value: str) -> TradingState:
    """The trading state a wire string names; one the gate does not know counts as HALTED, so
    a garbled state holds orders back instead of letting them out."""
    try:
        return TradingState(wire_value)
    except ValueError:
        return TradingState.HALTED


def restored_trading_state(
    kill_switch: dict[str, Any] | None,
) -> tuple[TradingState, dict[str, Any] | None]:
    """The state a restarted broker gates by before risk tells it: a kill switch the journal
    holds as active means HALTED (the strictest, so nothing queued slips out until risk says
    whether reducing is allowed); otherwise ACTIVE. Returns the state and the active record."""
    if kill_switch and kill_switch.get("active"):
        return TradingState.HALTED, kill_switch
    return TradingState.ACTIVE, None
