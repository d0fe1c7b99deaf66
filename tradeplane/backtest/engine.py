"""The backtest engine: the deployment's strategies, its one risk core and the sim venue's matching
core, driven one bar time at a time. Pure: no IO, time from a clock the engine sets to the close
of the bars it is processing (a bar is known only once it has closed).

The ordering contract (parity with a paper deployment on the sim venue relies on it), for each bar
time T:

1. the matching core matches the orders resting before T against the bars of T (an order never
   fills on the bar that triggered it: a market order takes the next bar's open plus slippage);
2. risk is marked with the bars' closes, then each strategy's ``on_bar`` runs for the bars of T,
   strategies in config order, symbols in source order; each intent goes through risk (a denial
   is an ``OrderDenied``, counted by reason) and, if approved, is submitted to the matching core;
3. the fills of step 1 are applied, in fill order: risk first, then the strategy's portfolio and
   its ``on_fill``; what ``on_fill`` emits goes through risk and is submitted as in step 2.

Live, the fill of bar T also reaches a strategy after its ``on_bar(T)``: the venue -> broker ->
journal path is longer than feed -> strategy. ``step`` is incremental so the live drift tracker
can feed it bars as they arrive; ``run`` is a loop over it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tradeplane.core.errors import StrategyError
from tradeplane.core.exposure import is_flat
from tradeplane.core.flatten import flatten_intents
from tradeplane.core.model import Bar, CancelIntent, Fill, Intent, OrderDenied
from tradeplane.core.risk import KillSwitchActivated, RiskEngine, RiskEvent, RiskLimits
from tradeplane.core.risk_types import KillSwitchPolicy
from tradeplane.core.session import SessionCalendar
from tradeplane.core.slot_init import slot_init
from tradeplane.core.strategy import Emitted, Strategy, StrategyRunner
from tradeplane.protocol.events import VenueEventKind
from tradeplane.venues.sim.matching import PaperMatchingEngine
from tradeplane.venues.sim.model import (
    TERMINAL_STATUSES,
    VenueEvent,
    VenueFill,
    VenueOrderRequest,
)

APPROVED = "approved"
DENIED = "denied"
# (module names: an enum class's attribute lookup costs several times a global's on Python 3.11)
_REJECTED = VenueEventKind.ORDER_REJECTED
_CANCELLED = VenueEventKind.ORDER_CANCELLED
_FILLED = VenueEventKind.ORDER_FILLED


class BarClock:
    """The engine's clock: the close time of the bars being processed. Never goes back."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def set(self, ts: float) -> None:
        if ts < self._now:
            raise ValueError(f"the bar clock cannot go back from {self._now} to {ts}")
        self._now = ts


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """One strategy as the config declares it (config order matters: see the contract)."""

    name: str
    strategy: Strategy
    symbols: tuple[str, ...]
    capital: float


@dataclass(frozen=True, slots=True)
class MatchingRules:
    """The sim venue's fees, slippage and participation cap (``[venue.sim]``)."""

    taker_fee_bps: float = 5.0
    maker_fee_bps: float = 2.0
    slippage_bps: float = 1.0
    max_participation: float | None = None


@dataclass(frozen=True, slots=True)
class RiskSetup:
    """The deployment's risk core: limits, kill-switch policy, calendar, starting equity."""

    limits: RiskLimits = field(default_factory=RiskLimits)
    policy: KillSwitchPolicy = field(default_factory=KillSwitchPolicy)
    calendar: SessionCalendar | None = None
    starting_equity: float | None = None  # None: the strategies' capital summed


@slot_init
@dataclass(frozen=True, slots=True)
class Decision:
    """An intent and what risk decided (``reason`` is the denial's code, None if approved)."""

    intent: Intent
    decision: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StrategyFailure:
    strategy: str
    error: str
    ts: float
    suspended: bool


@dataclass(slots=True)
class StepResult:
    """What happened at one bar time. ``equity`` holds (cash, position value) per strategy in
    config order; equity is their sum."""

    ts: datetime
    close_ts: float
    bars: int
    decisions: list[Decision] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    risk_events: list[RiskEvent] = field(default_factory=list)
    failures: list[StrategyFailure] = field(default_factory=list)
    equity: tuple[tuple[float, float], ...] = ()
    exposed: tuple[bool, ...] = ()  # per strategy in config order: holding a position at T


@dataclass(slots=True)
class StrategyTotals:
    intents: int = 0
    orders: int = 0
    fills: int = 0
    fees: float = 0.0
    traded_value: float = 0.0
    trades: int = 0  # round trips: a position brought back to flat (or flipped through it)
    exposed_steps: int = 0  # bar times ending with a non-zero position
    errors: int = 0
    suspended: bool = False
    denials: Counter[str] = field(default_factory=Counter)


class BacktestEngine:
    def __init__(
        self,
        *,
        deployment: str,
        strategies: Sequence[StrategySpec],
        interval_s: float,
        matching: MatchingRules = MatchingRules(),
        risk: RiskSetup = RiskSetup(),
        run_id: str = "backtest",
        max_strategy_failures: int = 3,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        names = [s.name for s in strategies]
        if len(set(names)) != len(names):
            raise ValueError(f"strategy names repeat: {names}")
        self.deployment = deployment
        self.interval_s = float(interval_s)
        self.clock = BarClock()
        self.specs = tuple(strategies)
        self.runners = [
            StrategyRunner(
                s.strategy,
                deployment=deployment,
                name=s.name,
                run_id=run_id,
                clock=self.clock,
                starting_cash=s.capital,
                symbols=s.symbols,
            )
            for s in self.specs
        ]
        self._by_name = {r.name: r for r in self.runners}
        self.totals = {s.name: StrategyTotals() for s in self.specs}
        self.matching = PaperMatchingEngine(
            clock=self.clock,
            taker_fee_bps=matching.taker_fee_bps,
            maker_fee_bps=matching.maker_fee_bps,
            slippage_bps=matching.slippage_bps,
            max_participation=matching.max_participation,
            keep_events=0,
            keep_closed_orders=False,
        )
        self._risk_setup = risk
        self.risk: RiskEngine | None = None  # built at the first bar time (its day starts then)
        self._max_failures = max_strategy_failures
        self.suspended: set[str] = set()
        self._held: dict[tuple[str, str], float] = {}  # net quantity by (strategy, symbol)
        self.exposed_steps = 0  # bar times ending with any strategy holding a position
        self._flat = (False,) * len(self.specs)
        # (the totals of the strategies holding a position, exposed per strategy), None after a
        # fill until the next bar time works it out again
        self._exposure: tuple[list[StrategyTotals], tuple[bool, ...]] | None = None
        self._orders: dict[str, Intent] = {}  # working orders by client order id
        self._last_ts: datetime | None = None
        self.steps = 0
        self.bars = 0
        self.first_ts: datetime | None = None
        self.symbols: dict[str, None] = {}  # in order of first appearance

    # -- driving -------------------------------------------------------------------------------

    def run(self, bars: Iterable[Bar]) -> Iterator[StepResult]:
        """Group a source (non-decreasing ``ts``) into bar times and ``step`` through them."""
        for group in group_by_time(bars):
            yield self.step(group)

    def step(self, bars: Sequence[Bar]) -> StepResult:
        """Process every bar of one bar time T (see the module's ordering contract)."""
        if not bars:
            raise ValueError("step needs the bars of one bar time, got none")
        ts = bars[0].ts
        last = self._last_ts
        if last is not None and ts <= last:
            raise ValueError(f"bar time {ts.isoformat()} is not after {last.isoformat()}")
        symbols = self.symbols
        for bar in bars:  # checked before anything moves: a refused step changes nothing
            if bar.ts is not ts and bar.ts != ts:  # (bars of one time often share the object)
                raise ValueError(f"one step takes one bar time: {bar.ts} in the step of {ts}")
            if bar.symbol not in symbols:
                symbols[bar.symbol] = None
        close = ts.timestamp() + self.interval_s
        self._last_ts = ts
        self.clock.set(close)
        # (its lists given: the dataclass's default factories cost a third of the construction)
        result = StepResult(ts, close, len(bars), [], [], [], [])
        self.steps += 1
        self.bars += len(bars)

        # 1. resting orders meet the bars of T. Each fill's intent is looked up now: step 2 may
        # cancel a partly filled order (a strategy's cancel, the kill switch) and forget it.
        venue_events = self.matching.on_bars(bars)
        filled = self._filled_intents(venue_events) if venue_events else None

        # 2. marks, then on_bar per strategy in config order
        risk = self.risk
        first = risk is None
        if risk is None:
            risk = self._start(result)
        mark = risk.mark
        for bar in bars:
            tripped = mark(bar.symbol, bar.close)
            if tripped:
                self._on_risk_events(tripped, result)
        suspended = self.suspended
        if first:
            # on_start runs once, at the first bar time, once risk has the marks it needs
            # (live, risk waits for a symbol's first mark before deciding an on_start intent).
            for runner in self.runners:
                self._guarded(runner, result, runner.start)
        for runner in self.runners:
            if runner.name in suspended:  # a suspended strategy is not called again
                continue
            try:
                emitted = runner.on_bars(bars)
            except StrategyError as exc:
                self._failed(runner, exc, result)
                continue
            if emitted.intents or emitted.cancels:
                self._route(emitted, result)

        # 3. the fills of step 1: risk first, then each strategy, in fill order
        if filled:
            self._apply(filled, result)
        if self._held:
            self.exposed_steps += 1
            exposure = self._exposure
            if exposure is None:  # changes only with a fill: worked out again after one
                holding = [strategy for strategy, _ in self._held]
                holders = [self.totals[name] for name in dict.fromkeys(holding)]
                exposed = tuple([r.name in holding for r in self.runners])
                exposure = self._exposure = (holders, exposed)
            for holder in exposure[0]:
                holder.exposed_steps += 1
            result.exposed = exposure[1]
        else:
            result.exposed = self._flat
        runners = self.runners
        if len(runners) == 1:  # the usual deployment: its tuple built directly, without a loop
            portfolio = runners[0].portfolio
            result.equity = ((portfolio.cash, portfolio.market_value),)
        else:
            result.equity = tuple([(r.portfolio.cash, r.portfolio.market_value) for r in runners])
        return result

    def finish(self) -> StepResult | None:
        """Call ``on_stop`` (strategies in config order); what it emits is decided by risk but
        never fills (there is no bar after the last one)."""
        if self._last_ts is None:
            return None
        result = StepResult(self._last_ts, self.clock.now(), 0)
        for runner in self.runners:
            if runner.name not in self.suspended:
                self._guarded(runner, result, runner.stop)
        result.equity = tuple((r.portfolio.cash, r.portfolio.market_value) for r in self.runners)
        return result

    # -- internals -----------------------------------------------------------------------------

    def _start(self, result: StepResult) -> RiskEngine:
        setup = self._risk_setup
        starting = setup.starting_equity
        if starting is None:
            starting = sum(s.capital for s in self.specs)
        self.risk = RiskEngine(
            setup.limits,
            clock=self.clock,
            calendar=setup.calendar,
            starting_equity=starting,
            policy=setup.policy,
        )
        self.first_ts = result.ts
        self._on_risk_events(self.risk.drain_events(), result)
        return self.risk

    def _guarded(
        self, runner: StrategyRunner, result: StepResult, call: Callable[..., Emitted], *args: Any
    ) -> None:
        """Run a hook as the live strategy actor does: a raise emits nothing from that call and
        is counted; past ``max_strategy_failures`` (the supervisor's strategy_max_restarts) the
        strategy is suspended and never called again, while the others trade on."""
        try:
            emitted = call(*args)
        except StrategyError as exc:
            self._failed(runner, exc, result)
            return
        if emitted.intents or emitted.cancels:  # (``bool(emitted)`` without its call)
            self._route(emitted, result)

    def _failed(self, runner: StrategyRunner, exc: StrategyError, result: StepResult) -> None:
        totals = self.totals[runner.name]
        totals.errors += 1
        suspended = totals.errors > self._max_failures
        if suspended:
            totals.suspended = True
            self.suspended.add(runner.name)
        result.failures.append(StrategyFailure(runner.name, str(exc), self.clock.now(), suspended))

    def _route(self, emitted: Emitted, result: StepResult) -> None:
        for intent in emitted.intents:
            self._decide(intent, result)
        for cancel in emitted.cancels:
            self._cancel(cancel, result)

    def _decide(self, intent: Intent, result: StepResult, *, flatten: bool = False) -> None:
        risk = self.risk
        assert risk is not None
        totals = self.totals.get(intent.strategy)
        decision = risk.check(intent, flatten=flatten)
        tripped = risk.drain_events()
        if tripped:
            self._on_risk_events(tripped, result)
        if isinstance(decision, OrderDenied):
            result.decisions.append(Decision(intent, DENIED, decision.reason))
            if totals is not None:
                totals.intents += 1
                totals.denials[decision.reason] += 1
            return
        result.decisions.append(Decision(intent, APPROVED))
        if totals is not None:
            totals.intents += 1
            totals.orders += 1
        self._orders[intent.client_order_id] = intent
        events = self.matching.submit(
            VenueOrderRequest(
                intent.client_order_id,
                intent.symbol,
                intent.side,
                intent.quantity,
                intent.order_type,
                intent.limit_price,
            )
        )
        for event in events:
            if event.kind == _REJECTED:
                self._orders.pop(intent.client_order_id, None)
                risk.on_order_closed(intent.client_order_id)
                tripped = risk.on_venue_rejection(intent.client_order_id)
                if tripped:
                    self._on_risk_events(tripped, result)

    def _cancel(self, cancel: CancelIntent | str, result: StepResult) -> None:
        coid = cancel if isinstance(cancel, str) else cancel.client_order_id
        for event in self.matching.cancel(coid):
            if event.kind == _CANCELLED:
                self._orders.pop(coid, None)
                assert self.risk is not None
                self.risk.on_order_closed(coid)

    def _filled_intents(self, events: list[VenueEvent]) -> list[tuple[VenueFill, Intent]]:
        orders = self._orders
        return [
            (event.fill, orders[event.client_order_id])
            for event in events
            if event.kind == _FILLED and event.fill is not None
        ]

    def _apply(self, filled: list[tuple[VenueFill, Intent]], result: StepResult) -> None:
        risk = self.risk
        assert risk is not None
        fills: list[Fill] = []
        for vf, intent in filled:
            coid = vf.client_order_id
            # Positional, in the fields' order (keywords cost a third more to bind)
            fill = Fill(
                vf.fill_id,
                coid,  # client_order_id
                intent.intent_id,
                intent.strategy,
                vf.symbol,
                vf.side,
                vf.quantity,
                vf.price,
                vf.fee,
                vf.ts,
                vf.venue_order_id,
                vf.liquidity,
            )
            fills.append(fill)
            tripped = risk.on_fill(fill)
            if tripped:
                self._on_risk_events(tripped, result)
            state = self.matching.order(coid)
            if state is None or state.status in TERMINAL_STATUSES:  # closed ones are forgotten
                self._orders.pop(coid, None)
                risk.on_order_closed(coid)
        result.fills.extend(fills)
        held = self._held
        if fills:
            self._exposure = None
        for fill in fills:
            totals = self.totals.get(fill.strategy)
            if totals is not None:
                totals.fills += 1
                totals.fees += fill.fee
                totals.traded_value += fill.quantity * fill.price
                key = (fill.strategy, fill.symbol)
                before = held.get(key, 0.0)
                after = before + fill.signed_quantity
                if is_flat(after):
                    held.pop(key, None)
                else:
                    held[key] = after
                if not is_flat(before) and (is_flat(after) or (before > 0) != (after > 0)):
                    totals.trades += 1
            runner = self._by_name.get(fill.strategy)
            if runner is not None and runner.name not in self.suspended:
                self._guarded(runner, result, runner.on_fill, fill)
            elif runner is not None:  # suspended: its book still moves
                runner.portfolio.apply_fill(fill)

    def _on_risk_events(self, events: list[RiskEvent], result: StepResult) -> None:
        """Carry out what risk raised as the live risk actor does: a tripped kill switch
        cancels every working order (and flattens, if the policy says so)."""
        result.risk_events.extend(events)
        for event in events:
            if not isinstance(event, KillSwitchActivated):
                continue
            if event.cancel_orders or event.flatten:
                for coid in list(self._orders):
                    self._cancel(coid, result)
            if event.flatten:
                positions = {
                    (r.name, symbol): {"quantity": p.quantity}
                    for r in self.runners
                    for symbol, p in r.portfolio.positions().items()
                }
                request = f"kill-{event.ts}"
                for intent in flatten_intents(
                    self.deployment, positions, request_id=request, ts=self.clock.now()
                ):
                    self._decide(intent, result, flatten=True)

    # -- views ---------------------------------------------------------------------------------

    @property
    def last_ts(self) -> datetime | None:
        """The last bar time stepped through."""
        return self._last_ts

    def denials(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for totals in self.totals.values():
            out.update(totals.denials)
        return out


def group_by_time(bars: Iterable[Bar]) -> Iterator[list[Bar]]:
    """Consecutive bars of the same ``ts``, as lists; a source going back in time is refused."""
    group: list[Bar] = []
    ts: datetime | None = None
    for bar in bars:
        if bar.ts != ts:
            if group:
                yield group
                if bar.ts < group[0].ts:
                    raise ValueError(
                        f"bars go back in time: {bar.symbol} at {bar.ts.isoformat()} after "
                        f"{group[0].ts.isoformat()}"
                    )
            group = [bar]
            ts = bar.ts
        else:
            group.append(bar)
    if group:
        yield group
