"""A backtest assembled from a deployment's config: its strategies (the same classes, loaded from
the same files, with the same params and capital), its risk core and the sim venue's matching
rules, fed bars from a source, writing its outputs as it goes.

Bar sources (each an ``Iterator[Bar]`` in non-decreasing ``ts``, streamed):

- the seeded sim market (the offline default): what the sim venue streams for the config's
  ``[venue.sim]`` (symbols, seed, interval, initial prices), from ``--from`` (default
  ``SIM_DEFAULT_START``) to ``--to`` (default one day later);
- a bars file, by its suffix (``BAR_READERS``): CSV or Parquet. A file is read once per symbol
  and the readers are merged by time (``heapq.merge``), so a file grouped by symbol needs no
  sorting and is never loaded whole;
- a directory: the bars a deployment recorded (``[journal] bars = "all"``), its state dir or the
  ``bars`` directory in it.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tradeplane.backtest.bars_file import BarFileError, BarFilter, read_csv_bars
from tradeplane.backtest.engine import (
    BacktestEngine,
    MatchingRules,
    RiskSetup,
    StepResult,
    StrategySpec,
    group_by_time,
)
from tradeplane.backtest.outputs import BacktestWriter
from tradeplane.backtest.report_builder import ReportAccumulator
from tradeplane.backtest.report_json import (
    REPORT_FILE,
    BarsInfo,
    config_hash,
    strategy_code_hashes,
    write_report,
)
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.errors import OperationalError
from tradeplane.core.model import Bar
from tradeplane.core.session import make_calendar
from tradeplane.core.strategy import load_strategy_class
from tradeplane.journal.bar_store import BARS_DIR
from tradeplane.venues.sim.market import MarketSimulator

BarReader = Callable[[Path, BarFilter], Iterator[Bar]]
# Readers by file suffix. The Parquet reader (``bars_parquet``) and the recorded-bars store add
# themselves here when merged; a directory (a state dir's recorded bars) is looked up as "/".


def _parquet(path: Path, keep: BarFilter) -> Iterator[Bar]:
    from tradeplane.backtest.bars_parquet import read_parquet_bars  # pyarrow: only when used

    return read_parquet_bars(path, keep)


def _recorded(state_dir: Path, keep: BarFilter) -> Iterator[Bar]:
    from tradeplane.backtest.bars_recorded import read_recorded_bars  # pyarrow: only when used

    return read_recorded_bars(state_dir, keep)


BAR_READERS: dict[str, BarReader] = {".csv": read_csv_bars, ".parquet": _parquet, ".pq": _parquet}
SIM_DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
SIM_DEFAULT_SPAN = timedelta(days=1)
RUN_ID = "backtest"  # on_start intents derive from it (they differ from a live run's anyway)


class StrategyLoadError(OperationalError):
    """A strategy of the config cannot be loaded or built: which one, and why."""


def bar_interval_s(cfg: TradeplaneConfig) -> float:
    """Seconds per bar of this deployment's feed (the engine's clock reads a bar's close)."""
    if cfg.feed.kind == "venue" and cfg.venue.kind == "sim":
        return float(cfg.venue.sim.bar_interval_s)
    return 60.0  # OKX candle1m, Binance kline_1m, IB minutes folded from 5-s bars


def deployment_symbols(cfg: TradeplaneConfig) -> tuple[str, ...]:
    """The venue's symbols, then any other a strategy trades: the order within a bar time."""
    out = dict.fromkeys(cfg.venue.symbols)
    for s in cfg.strategies:
        out.update(dict.fromkeys(cfg.strategy_symbols(s)))
    return tuple(out)


def engine_from_config(
    cfg: TradeplaneConfig, *, run_id: str = RUN_ID, sources: Mapping[str, str] | None = None
) -> BacktestEngine:
    """The deployment's strategies, risk core and matching rules, as live runs them.
    ``sources``: each strategy's file as text by name (an actor on another node has no file
    there); by default the files are read."""
    specs = []
    for s in cfg.strategies:
        try:
            source = sources[s.name] if sources else Path(s.path).read_text(encoding="utf-8")
            cls = load_strategy_class(source, str(s.path), s.class_name)
            strategy = cls(**s.params)
        except Exception as exc:  # the user's file: whatever it raises, say which and why
            raise StrategyLoadError(
                f"strategy {s.name} ({s.path}): {type(exc).__name__}: {exc}"
            ) from exc
        specs.append(StrategySpec(s.name, strategy, cfg.strategy_symbols(s), s.capital))
    sim = cfg.venue.sim
    return BacktestEngine(
        deployment=cfg.deployment.name,
        strategies=specs,
        interval_s=bar_interval_s(cfg),
        matching=MatchingRules(
            taker_fee_bps=sim.taker_fee_bps,
            maker_fee_bps=sim.maker_fee_bps,
            slippage_bps=sim.slippage_bps,
            max_participation=sim.max_participation,
        ),
        risk=RiskSetup(
            limits=cfg.risk.limits(),
            policy=cfg.risk.kill_switch_policy(),
            calendar=make_calendar(cfg.session.calendar),
            starting_equity=cfg.risk.resolved_starting_equity([s.capital for s in cfg.strategies]),
        ),
        run_id=run_id,
        max_strategy_failures=cfg.supervisor.strategy_max_restarts,
    )


# -- bar sources ---------------------------------------------------------------------------------


def sim_window(
    cfg: TradeplaneConfig, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """The sim market's window: ``start`` rounded up to a bar boundary; defaults as above."""
    interval = cfg.venue.sim.bar_interval_s
    first = start or SIM_DEFAULT_START
    epoch = first.timestamp()
    aligned = -(-epoch // interval) * interval
    first = datetime.fromtimestamp(aligned, tz=UTC)
    last = end or first + SIM_DEFAULT_SPAN
    return first, last


def sim_bars(cfg: TradeplaneConfig, start: datetime, end: datetime) -> Iterator[Bar]:
    """What the sim venue streams for ``cfg`` from ``start`` (aligned) until ``end``."""
    sim = cfg.venue.sim
    market = MarketSimulator(
        list(sim.symbols),
        seed=sim.seed,
        start=start,
        interval_s=sim.bar_interval_s,
        initial_prices=sim.initial_prices,
    )
    while market.next_ts < end:
        yield from market.next_bars()


def file_bars(path: Path, symbols: Sequence[str], keep: BarFilter) -> Iterator[Bar]:
    """The bars of ``symbols`` in ``path``, merged by time (one streamed reader per symbol).
    A directory is a deployment's recorded bars (its state dir, or the ``bars`` dir in it):
    already one series in time order, within a bar time in the order the feed delivered."""
    if path.is_dir():
        inside = path.name == BARS_DIR and not (path / BARS_DIR).is_dir()
        chosen = frozenset(s for s in symbols if keep.symbols is None or s in keep.symbols)
        return _recorded(path.parent if inside else path, BarFilter(chosen, keep.start, keep.end))
    reader = BAR_READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(BAR_READERS))
        raise BarFileError(path, None, f"no reader for this kind of file (known: {known})")
    wanted = [s for s in symbols if keep.symbols is None or s in keep.symbols]
    readers = [reader(path, BarFilter(frozenset({s}), keep.start, keep.end)) for s in wanted]
    return merge_by_time(readers)


def merge_by_time(sources: Sequence[Iterable[Bar]]) -> Iterator[Bar]:
    """Bars of several sources in ``ts`` order; within one ``ts``, in the sources' order."""
    if len(sources) == 1:
        return iter(sources[0])
    keyed = [_keyed(rank, source) for rank, source in enumerate(sources)]
    return (bar for _, _, bar in heapq.merge(*keyed))


def _keyed(rank: int, source: Iterable[Bar]) -> Iterator[tuple[datetime, int, Bar]]:
    for bar in source:
        yield bar.ts, rank, bar


# -- a whole run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Progress:
    """What a progress display needs after each bar time."""

    bars: int
    steps: int
    ts: datetime


@dataclass(slots=True)
class BacktestRun:
    """A finished run: where its outputs are and the report it wrote."""

    out_dir: Path
    report: dict[str, Any]
    elapsed_s: float
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        total = self.report["total"]
        return {
            "out": str(self.out_dir),
            "deployment": self.report["deployment"],
            "bars": self.report["bars"],
            "elapsed_s": round(self.elapsed_s, 3),
            "bars_per_s": round(self.report["bars"]["count"] / self.elapsed_s)
            if self.elapsed_s > 0
            else None,
            "final_equity": total["final_equity"],
            "total_return": total["total_return"],
            "intents": total["intents"],
            "orders": total["orders"],
            "fills": total["fills"],
            "fees": total["fees"],
            "denials_by_reason": total["denials_by_reason"],
            "strategy_errors": self.failures,
            "report": str(self.out_dir / "backtest_report.json"),
        }


def run_backtest(
    cfg: TradeplaneConfig,
    *,
    bars: Iterable[Bar],
    source: str,
    out_dir: Path,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: int = 1000,
) -> BacktestRun:
    """Drive the engine over ``bars``, streaming the CSVs, then write the report."""
    started = time.monotonic()
    engine = engine_from_config(cfg)
    accumulator = ReportAccumulator.for_config(cfg)
    writer = BacktestWriter(out_dir, [s.name for s in engine.specs], accumulator)
    failures: list[str] = []
    try:
        result: StepResult | None = None
        for group in group_by_time(bars):
            result = engine.step(group)
            writer.write(result)
            if result.failures:
                failures.extend(f"{f.strategy}: {f.error}" for f in result.failures)
            if on_progress is not None and engine.steps % progress_every == 0:
                on_progress(Progress(engine.bars, engine.steps, result.ts))
        stopped = engine.finish()
        if stopped is not None:
            writer.write(stopped)
            failures.extend(f"{f.strategy}: {f.error}" for f in stopped.failures)
        if on_progress is not None and result is not None:
            on_progress(Progress(engine.bars, engine.steps, result.ts))
    finally:
        writer.close()
    first, last = engine.first_ts, engine.last_ts
    if first is None or last is None:
        raise OperationalError(f"no bars from {source} in the range asked: nothing to backtest")
    bars_info = BarsInfo(
        source=source,
        first_ts=first,
        last_ts=last,
        count=engine.bars,
        symbols=tuple(engine.symbols),
        interval_s=engine.interval_s,
    )
    built = accumulator.finish(
        deployment=cfg.deployment.name,
        config_hash=config_hash(cfg),
        strategy_code_hashes=strategy_code_hashes(cfg),
        bars=bars_info,
        calendar=cfg.session.calendar,
    )
    write_report(out_dir / REPORT_FILE, built)
    report = orjson.loads(built.to_json())
    return BacktestRun(out_dir, report, time.monotonic() - started, failures)
