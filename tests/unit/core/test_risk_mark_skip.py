"""``RiskEngine.mark`` skips the kill-switch evaluation for a symbol not held when nothing the
evaluation reads changed since the last one. That is exact only if every change of what it reads
(cash flow, positions, held marks, starting equity, high-water mark, day start, breached limits,
limits) bumps ``state_version``: these tests fail when a method forgets to, and when a new method
is added without being classified here."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from tradeplane.core.clock import ManualClock
from tradeplane.core.model import Fill, Intent, OrderType, Side
from tradeplane.core.risk import RiskEngine, RiskLimits

DAY = 86_400.0
LIMITS = RiskLimits(max_daily_loss=300.0, max_drawdown_pct=2.0, deny_when_market_closed=False)


def evaluation_inputs(e: RiskEngine) -> tuple[Any, ...]:
    book = e.book
    held = {s: q for s, q in book.positions.items() if q != 0.0}
    return (
        book.cash_flow,
        held,
        {s: book.prices.get(s) for s in held},
        e.starting_equity,
        e._hwm,
        e._day_start_equity,
        frozenset(e._breached),
        e.limits,
    )


def intent(n: int, side: Side = Side.BUY, qty: float = 10.0, symbol: str = "AAA") -> Intent:
    return Intent(f"i{n}", f"tpi{n}", "d", "s", symbol, side, qty, OrderType.MARKET, None, 0.0, "t")


def fill(n: int, side: Side, qty: float, price: float, symbol: str = "AAA") -> Fill:
    return Fill(f"f{n}", f"tpi{n}", f"i{n}", "s", symbol, side, qty, price, 0.1, 0.0)


def holding() -> tuple[RiskEngine, ManualClock]:
    clock = ManualClock(1_000.0)
    e = RiskEngine(LIMITS, clock=clock, starting_equity=10_000.0)
    e.mark("AAA", 100.0)
    e.mark("BBB", 50.0)
    e.on_fill(fill(1, Side.BUY, 10.0, 100.0))
    return e, clock


def _restore_state(e: RiskEngine, clock: ManualClock) -> None:
    other, _ = holding()
    other.mark("AAA", 130.0)  # a higher high-water mark
    e.restore_state(other.export_state())


# Each call that may change what the evaluation reads, from a state where it does.
CHANGES: dict[str, Callable[[RiskEngine, ManualClock], object]] = {
    "on_fill": lambda e, c: e.on_fill(fill(2, Side.BUY, 5.0, 101.0, "BBB")),
    "check": lambda e, c: (e.mark("AAA", 70.0), e.check(intent(3))),  # trips on the loss check
    "activate_kill_switch": lambda e, c: e.activate_kill_switch("op"),
    "clear_kill_switch": lambda e, c: (e.activate_kill_switch("op"), e.clear_kill_switch("op")),
    "roll_day_if_due": lambda e, c: (c.advance(DAY), e.roll_day_if_due()),
    "restore": lambda e, c: e.restore({"AAA": 3.0, "BBB": 2.0}, {}, 50.0),
    "adopt": lambda e, c: e.adopt({"AAA": 4.0, "CCC": 1.0}, {}),
    "restore_state": _restore_state,
    "restore_order_history": lambda e, c: e.restore_order_history([c.now() - 1.0]),
    "on_venue_rejection": lambda e, c: e.on_venue_rejection("tpi9"),
    "on_order_closed": lambda e, c: e.on_order_closed("tpi1"),
    "set_reconciling": lambda e, c: e.set_reconciling(True),
    "expire": lambda e, c: e.expire(intent(4), 10.0, 5.0),
}
# Reads only (or, for ``mark``, evaluates itself: the skip's own subject).
READS = {
    "drain_events",
    "equity",
    "export_state",
    "mark",
    "position",
    "price",
    "summary",
    "working_quantity",
}


def test_every_public_method_is_classified_for_the_mark_skip() -> None:
    public = {
        name
        for name in dir(RiskEngine)
        if not name.startswith("_")
        and callable(getattr(RiskEngine, name))
        and not isinstance(inspect.getattr_static(RiskEngine, name), property)
    }
    # A new method: add it to CHANGES (with a call that changes state) or to READS.
    assert public == set(CHANGES) | READS


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_change_of_what_evaluation_reads_then_the_version_is_bumped(name: str) -> None:
    e, clock = holding()
    before, version = evaluation_inputs(e), e.state_version

    CHANGES[name](e, clock)

    assert evaluation_inputs(e) == before or e.state_version > version, name


def test_state_changing_calls_really_change_the_inputs() -> None:
    # The table above must be able to fail: most of its calls do change the inputs.
    changed = set()
    for name, call in CHANGES.items():
        e, clock = holding()
        before = evaluation_inputs(e)
        call(e, clock)
        if evaluation_inputs(e) != before:
            changed.add(name)
    assert {"on_fill", "restore", "adopt", "restore_state", "roll_day_if_due", "check"} <= changed


def evaluating_mark(e: RiskEngine, symbol: str, price: float) -> list[Any]:
    """The reference: ``mark`` as it was before the skip, evaluating on every mark."""
    events = e.roll_day_if_due()  # hands back pending events; rolls the day if due
    e.book.mark(symbol, price, e.clock.now())
    return events + e._evaluate()


def _random_run(seed: int, skip: bool) -> list[Any]:
    rng = random.Random(seed)
    clock = ManualClock(1_000.0)
    e = RiskEngine(LIMITS, clock=clock, starting_equity=10_000.0)
    prices = {"AAA": 100.0, "BBB": 50.0, "CCC": 20.0}
    seen: list[Any] = []
    for n in range(3_000):
        op = rng.random()
        if op < 0.75:
            symbol = rng.choice(sorted(prices))
            prices[symbol] *= 1.0 + rng.gauss(0.0, 0.01)
            clock.advance(rng.choice((0.0, 60.0, 600.0)))
            mark = e.mark if skip else partial(evaluating_mark, e)
            seen.append(("mark", mark(symbol, prices[symbol])))
        elif op < 0.88:
            # half the fills close the position: marks of symbols not held are the skip's case
            symbol = rng.choice(sorted(prices))
            held = e.position(symbol)
            if held and rng.random() < 0.5:
                side, qty = (Side.SELL if held > 0 else Side.BUY), abs(held)
            else:
                side, qty = rng.choice((Side.BUY, Side.SELL)), 5.0
            seen.append(("fill", e.on_fill(fill(n, side, qty, prices[symbol], symbol))))
        elif op < 0.9:
            # state replaced from outside (a restart, a reconciliation): no evaluation follows
            positions = {s: float(rng.choice((0, 5, -5))) for s in rng.sample(sorted(prices), 2)}
            if rng.random() < 0.5:
                e.restore(positions, {}, rng.uniform(-600.0, 600.0))
            else:
                e.adopt(positions, {})
        elif op < 0.95:
            seen.append(("check", e.check(intent(n, symbol=rng.choice(sorted(prices))))))
            seen.append(("drain", e.drain_events()))
        elif op < 0.98:
            seen.append(("clear", e.clear_kill_switch("op")))
        else:
            clock.advance(DAY / 2)
        seen.append(("state", e.summary()))
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_marks_with_the_skip_then_same_events_and_state_as_evaluating_every_mark(
    seed: int,
) -> None:
    with_skip = _random_run(seed, skip=True)
    reference = _random_run(seed, skip=False)

    assert with_skip == reference
    events = [ev for what, evs in reference if what in ("mark", "fill", "drain") for ev in evs]
    kinds = {type(ev).__name__ for ev in events}
    assert "KillSwitchActivated" in kinds  # the runs do cross the limits
