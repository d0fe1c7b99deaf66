"""The strategy contract users subclass, and the pure runner that drives it.

A strategy sees only closed bars, in order, once each. What it asks for becomes ``Intent``s with
deterministic ids (see ``ids``), so replaying bars after a restart cannot submit twice. Its
``ctx.state`` dict is saved in snapshots and given back after a restart.
"""

from __future__ import annotations

import json
import types
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tradeplane.core import ids
from tradeplane.core.clock import Clock, utc_from_ts
from tradeplane.core.errors import StrategyError
from tradeplane.core.model import Bar, CancelIntent, Fill, Intent, OrderType, Position, Side
from tradeplane.core.portfolio import VirtualPortfolio

SNAPSHOT_VERSION = 2
# Intent ids remembered in memory to refuse a replayed intent. Not part of the snapshot: after a
# restart they come back from the journal (see ``remember_intents``), which holds every intent
# the snapshot could have seen, so the snapshot stays small however long the run.
REMEMBERED_INTENTS = 20_000


_SIDES: dict[str, Side] = {side.value: side for side in Side}  # a Side hashes as its value
# (module names: an enum class's attribute lookup costs several times a global's on Python 3.11)
_MARKET, _LIMIT = OrderType.MARKET, OrderType.LIMIT


class Strategy:
    """Subclass this. Every hook is optional; ``ctx`` is a ``StrategyContext``."""

    def __init__(self, **params: Any) -> None:
        self.params = params

    def on_start(self, ctx: StrategyContext) -> None:
        pass

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        pass

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        pass

    def on_stop(self, ctx: StrategyContext) -> None:
        pass


@dataclass(slots=True)
class Emitted:
    intents: list[Intent] = field(default_factory=list)
    cancels: list[CancelIntent] = field(default_factory=list)

    def extend(self, other: Emitted) -> None:
        self.intents.extend(other.intents)
        self.cancels.extend(other.cancels)

    def __bool__(self) -> bool:
        return bool(self.intents or self.cancels)


@dataclass(slots=True)
class RunnerStats:
    bars: int = 0
    duplicate_bars: int = 0
    out_of_order_bars: int = 0
    foreign_bars: int = 0
    intents: int = 0
    replayed_intents: int = 0
    errors: int = 0


class StrategyContext:
    """What a strategy may see and do. Only valid inside a hook call."""

    def __init__(self, runner: StrategyRunner) -> None:
        self._runner = runner

    @property
    def strategy(self) -> str:
        return self._runner.name

    @property
    def now(self) -> datetime:
        return utc_from_ts(self._runner.clock.now())

    @property
    def state(self) -> dict[str, Any]:
        return self._runner.state

    @property
    def positions(self) -> dict[str, Position]:
        return self._runner.portfolio.positions()

    def position(self, symbol: str) -> Position:
        # Asked on most bars: the position the portfolio has already built (what its
        # ``position`` returns until the next fill), without that call.
        portfolio = self._runner.portfolio
        return portfolio._positions.get(symbol) or portfolio.position(symbol)

    @property
    def cash(self) -> float:
        return self._runner.portfolio.cash

    @property
    def equity(self) -> float:
        return self._runner.portfolio.equity

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._runner.symbols

    def submit(
        self,
        symbol: str,
        quantity: float,
        side: str | Side = "buy",
        limit_price: float | None = None,
    ) -> str:
        """Ask to trade; returns the intent id (the client order id is derived from it)."""
        # A dict lookup for the usual "buy"/"sell" (or a Side): the Enum call costs several
        # times more; anything else still goes through it (and is refused as it was).
        known = _SIDES.get(side) if isinstance(side, str) else None
        return self._runner.emit_intent(symbol, quantity, known or Side(side), limit_price)

    def cancel(self, intent_id: str) -> None:
        self._runner.emit_cancel(intent_id)


def load_strategy_class(source: str, filename: str, class_name: str) -> type[Strategy]:
    """Compile a strategy file's source (sent as text, so it runs on any node; a backtest
    loads it the same way, so both run the same class)."""
    module = types.ModuleType(f"tradeplane_user_{class_name}")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    cls = module.__dict__.get(class_name)
    if not isinstance(cls, type) or not issubclass(cls, Strategy):
        raise StrategyError(f"{filename}: {class_name} is not a tradeplane.Strategy subclass")
    return cls


class StrategyRunner:
    """Drives one strategy: validates and de-duplicates bars, collects intents, snapshots."""

    def __init__(
        self,
        strategy: Strategy,
        *,
        deployment: str,
        name: str,
        run_id: str,
        clock: Clock,
        starting_cash: float,
        symbols: Iterable[str],
    ) -> None:
        self.strategy = strategy
        self.deployment = deployment
        self.name = name
        self.run_id = run_id
        self.clock = clock
        self.symbols = tuple(symbols)
        self.portfolio = VirtualPortfolio(starting_cash)
        self.state: dict[str, Any] = {}
        self.stats = RunnerStats()
        self.last_bar_ts: dict[str, datetime] = {}
        self.fill_seq = 0  # highest journal seq of a fill applied (0: none / unknown)
        self._recent_intents: deque[str] = deque(maxlen=REMEMBERED_INTENTS)
        self._recent_set: set[str] = set()
        self._ctx = StrategyContext(self)
        self._trigger: str | None = None
        self._hook_bar: Bar | None = None  # the bar whose on_bar runs (its trigger is lazy)
        self._wanted = frozenset(self.symbols)
        self._ordinal = 0
        self._bar_recv_ts: float | None = None
        self._pending = Emitted()
        self.started = False

    # -- hooks -------------------------------------------------------------------------------

    def start(self) -> Emitted:
        self.started = True
        return self._call("on_start", ids.start_trigger(self.run_id), None)

    def stop(self) -> Emitted:
        return self._call("on_stop", ids.stop_trigger(self.run_id), None)

    def on_bars(self, bars: Iterable[Bar], recv_ts: float | None = None) -> Emitted:
        """Feed closed bars; a bar not newer than the last one seen for its symbol is dropped.

        The hot path of a backtest (millions of bars): what ``_call`` does, inlined, with the
        bar's trigger string built only when the strategy submits (most bars submit nothing).
        A raise loses everything this call emitted, as ``_call`` would."""
        out = Emitted([], [])  # (its lists given: the factories' defaults cost more)
        intents = out.intents
        wanted = self._wanted
        last_bar_ts = self.last_bar_ts
        stats = self.stats
        mark = self.portfolio.mark
        on_bar = self.strategy.on_bar
        ctx = self._ctx
        self._pending, self._bar_recv_ts = out, recv_ts  # a hook cannot change them
        for bar in bars:
            symbol, ts = bar.symbol, bar.ts
            if symbol not in wanted:
                stats.foreign_bars += 1
                continue
            last = last_bar_ts.get(symbol)
            if last is not None and ts <= last:
                if ts == last:
                    stats.duplicate_bars += 1
                else:
                    stats.out_of_order_bars += 1
                continue
            last_bar_ts[symbol] = ts
            mark(symbol, bar.close)
            stats.bars += 1
            emitted_before = len(intents)
            self._hook_bar, self._ordinal = bar, 0
            try:
                on_bar(bar, ctx)
            except Exception as exc:
                stats.errors += 1
                raise StrategyError(
                    f"{self.name}.on_bar raised {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                self._hook_bar = self._trigger = None
            # (``_pending`` may keep pointing at ``out``: outside a hook nothing can add to it)
            if len(intents) > emitted_before:
                for intent in intents[emitted_before:]:
                    self._remember(intent.intent_id)
        return out

    def _current_trigger(self) -> str:
        """The trigger of the hook running now (a bar's is built on first use)."""
        trigger = self._trigger
        if trigger is None:
            bar = self._hook_bar
            if bar is None:
                raise StrategyError("submit() and cancel() are only valid inside a strategy hook")
            trigger = self._trigger = ids.bar_trigger(bar.symbol, bar.ts)
        return trigger

    def on_fill(self, fill: Fill, journal_seq: int | None = None) -> Emitted:
        """Apply a fill once. ``journal_seq`` (its sequence in the journal) lets a restarted
        strategy skip every fill its snapshot already holds, however many there were."""
        if journal_seq is not None:
            if journal_seq <= self.fill_seq:
                return Emitted()
            self.fill_seq = journal_seq
        if not self.portfolio.apply_fill(fill):
            return Emitted()
        return self._call("on_fill", ids.fill_trigger(fill.fill_id), fill)

    def _call(self, hook: str, trigger: str, arg: Any, recv_ts: float | None = None) -> Emitted:
        self._trigger, self._ordinal, self._bar_recv_ts = trigger, 0, recv_ts
        self._pending = Emitted([], [])  # (as in ``on_bars``)
        try:
            fn = getattr(self.strategy, hook)
            if arg is None:
                fn(self._ctx)
            else:
                fn(arg, self._ctx)
        except Exception as exc:
            self.stats.errors += 1
            self._pending = Emitted()  # a failed callback emits nothing
            raise StrategyError(f"{self.name}.{hook} raised {type(exc).__name__}: {exc}") from exc
        finally:
            self._trigger = None
        # ``_pending`` may keep pointing at it: outside a hook nothing can add to it (as in
        # ``on_bars``), so no fresh one is needed until the next hook.
        emitted = self._pending
        for intent in emitted.intents:
            self._remember(intent.intent_id)
        return emitted

    # -- emission ----------------------------------------------------------------------------

    def emit_intent(
        self, symbol: str, quantity: float, side: Side, limit_price: float | None
    ) -> str:
        trigger = self._current_trigger()
        if symbol not in self._wanted:
            raise StrategyError(f"{self.name} may not trade {symbol!r}: not in its symbols")
        iid = ids.intent_id(self.deployment, self.name, trigger, self._ordinal)
        self._ordinal += 1
        if iid in self._recent_set:
            self.stats.replayed_intents += 1
            return iid  # already emitted before a restart: never emit twice
        # Positional, in the fields' order (keywords cost a third more to bind, once per intent)
        intent = Intent(
            iid,  # intent_id
            ids.client_order_id(iid),  # client_order_id
            self.deployment,  # deployment
            self.name,  # strategy
            symbol,
            side,
            float(quantity),  # quantity
            _MARKET if limit_price is None else _LIMIT,  # order_type
            None if limit_price is None else float(limit_price),  # limit_price
            self.clock.now(),  # ts
            trigger,
            self._bar_recv_ts,  # bar_recv_ts
        )
        self._pending.intents.append(intent)
        self.stats.intents += 1
        return iid

    def emit_cancel(self, intent_id: str) -> None:
        self._current_trigger()
        self._pending.cancels.append(
            CancelIntent(intent_id, ids.client_order_id(intent_id), self.name, self.clock.now())
        )

    def _remember(self, intent_id: str) -> None:
        if len(self._recent_intents) == self._recent_intents.maxlen:
            self._recent_set.discard(self._recent_intents[0])
        self._recent_intents.append(intent_id)
        self._recent_set.add(intent_id)

    # -- persistence -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        try:
            state = json.loads(json.dumps(self.state))
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"{self.name}: ctx.state is not JSON-serialisable: {exc}") from exc
        return {
            "version": SNAPSHOT_VERSION,
            "strategy": self.name,
            "state": state,
            "last_bar_ts": {s: t.isoformat() for s, t in self.last_bar_ts.items()},
            "fill_seq": self.fill_seq,
            "taken_ts": self.clock.now(),
            "portfolio": self.portfolio.snapshot(),
            "started": self.started,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        if snap.get("version") != SNAPSHOT_VERSION or snap.get("strategy") != self.name:
            raise StrategyError(
                f"snapshot for {snap.get('strategy')!r} v{snap.get('version')} "
                f"cannot restore {self.name!r} v{SNAPSHOT_VERSION}"
            )
        self.state = dict(snap["state"])
        self.last_bar_ts = {s: datetime.fromisoformat(t) for s, t in snap["last_bar_ts"].items()}
        self.fill_seq = int(snap.get("fill_seq", 0))
        self.portfolio = VirtualPortfolio.restore(snap["portfolio"])
        self.started = bool(snap.get("started", False))

    def remember_intents(self, intent_ids: Iterable[str]) -> None:
        """Intents the journal holds that a stale snapshot may not (emitted after it was taken)."""
        for iid in intent_ids:
            if iid not in self._recent_set:
                self._remember(iid)
