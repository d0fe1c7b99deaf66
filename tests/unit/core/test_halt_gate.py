"""The broker's halt gate: which orders approved earlier may still leave (DESIGN §3.5, §3.6)."""

import itertools

import pytest

from tradeplane.core.halt_gate import (
    HoldCause,
    gate_state,
    held_back,
    may_leave_in,
    restored_trading_state,
)
from tradeplane.core.model import Intent, OrderType, Side, SubmitOrder
from tradeplane.core.risk_types import TradingState

_ids = itertools.count(1)


def order(*, reduces: bool = False, flatten: bool = False) -> SubmitOrder:
    n = next(_ids)
    intent = Intent(
        f"i{n}", f"k{n}", "d", "s", "AAA", Side.SELL, 1.0, OrderType.MARKET, None, 0.0, "t"
    )
    return SubmitOrder(intent, 0.0, 100.0, reduces_position=reduces, flatten=flatten)


@pytest.mark.parametrize(
    ("reduces", "flatten"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_gate_when_trading_active_then_every_order_leaves(reduces: bool, flatten: bool) -> None:
    assert held_back(order(reduces=reduces, flatten=flatten), TradingState.ACTIVE) is None


def test_gate_when_kill_switch_active_then_risk_increasing_order_held_whatever_the_state() -> None:
    for state in (TradingState.REDUCING, TradingState.HALTED):
        held = held_back(order(), state)
        assert held is not None and held.cause is HoldCause.KILL_SWITCH
        assert held.reason == f"TRADING_{state.value.upper()}: kill switch active"


def test_gate_when_reducing_then_reducing_order_leaves() -> None:
    assert held_back(order(reduces=True), TradingState.REDUCING) is None


def test_gate_when_halted_then_reducing_order_held() -> None:
    held = held_back(order(reduces=True), TradingState.HALTED)
    assert held is not None and held.reason == "TRADING_HALTED: kill switch active"


@pytest.mark.parametrize("state", list(TradingState))
def test_gate_when_flatten_then_it_leaves_in_any_trading_state(state: TradingState) -> None:
    assert held_back(order(flatten=True), state) is None
    assert may_leave_in(state, order(flatten=True))


@pytest.mark.parametrize("state", list(TradingState))
def test_gate_when_resyncing_then_nothing_leaves_not_even_a_flatten(state: TradingState) -> None:
    held = held_back(order(flatten=True), state, resyncing=True, resync_reason="socket closed")
    assert held is not None and held.cause is HoldCause.RESYNCING
    assert held.reason == "RECONCILING: venue connection resyncing (socket closed)"


def test_restored_state_when_journal_holds_active_kill_switch_then_halted() -> None:
    kill = {"active": True, "reason": "loss"}
    assert restored_trading_state(kill) == (TradingState.HALTED, kill)


@pytest.mark.parametrize("kill", [None, {}, {"active": False, "reason": "cleared"}])
def test_restored_state_when_no_active_kill_switch_then_active(kill: dict | None) -> None:
    assert restored_trading_state(kill) == (TradingState.ACTIVE, None)


def test_gate_state_when_wire_value_unknown_then_halted_so_orders_are_held() -> None:
    assert gate_state("reducing") is TradingState.REDUCING
    assert gate_state("bogus") is TradingState.HALTED
    held = held_back(order(reduces=True), gate_state("bogus"))
    assert held is not None and held.cause is HoldCause.KILL_SWITCH


@pytest.mark.parametrize("flatten", [False, True])
def test_gate_when_supervisor_lease_lapsed_then_nothing_leaves_flatten_included(
    flatten: bool,
) -> None:
    held = held_back(order(flatten=flatten), TradingState.ACTIVE, unsupervised_s=16.4)
    assert held is not None and held.cause is HoldCause.UNSUPERVISED
    assert held.reason == "UNSUPERVISED: no supervisor for 16s"
