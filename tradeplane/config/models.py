"""Deployment configuration: frozen pydantic models, ``extra="forbid"``, units in names.

Every field carries a docstring stating its meaning and default; a bad value fails at load with
the field's dotted path (see ``loading``).
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Mode(StrEnum):
    SHADOW = "shadow"
    PAPER = "paper"
    LIVE = "live"


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False
    )


class DeploymentConfig(_Model):
    name: str
    """Deployment name: names the Ray actors (``<name>/supervisor``) and the state dir. Required."""
    mode: Mode = Mode.PAPER
    """``shadow`` (virtual portfolio, no order leaves), ``paper`` or ``live``. Default ``paper``."""
    state_dir: Path | None = None
    """Where the journal and state live. Default ``.tradeplane/<name>`` (relative to the cwd)."""
    starting_cash: float = Field(default=1_000_000.0, gt=0)
    """Cash of the virtual portfolio in shadow mode, in account currency. Default 1,000,000."""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError("must be 1-63 letters, digits, '_', '.', '-' and start alphanumeric")
        return v

    def resolved_state_dir(self) -> Path:
        return (self.state_dir or Path(".tradeplane") / self.name).expanduser().resolve()


class SimVenueConfig(_Model):
    symbols: tuple[str, ...] = ("AAA", "BBB", "CCC")
    """Symbols the simulator produces bars for. Default AAA, BBB, CCC."""
    seed: int = 7
    """Random seed: the same seed gives the same bars. Default 7."""
    bar_interval_s: int = Field(default=60, gt=0)
    """Bar length in simulated seconds. Default 60 (1-minute bars)."""
    speed: float = Field(default=60.0, gt=0)
    """Simulated seconds per wall-clock second: 1 is real time, 60 is one 1-minute bar a second.
    Default 60."""
    history_bars: int = Field(default=120, ge=0)
    """Bars of history before now the simulated clock starts at. Default 120."""
    initial_prices: dict[str, float] = Field(default_factory=dict)
    """Starting price per symbol; unset symbols get a deterministic price. Default none."""
    taker_fee_bps: float = Field(default=5.0, ge=0)
    """Fee on fills that take liquidity, in basis points. Default 5."""
    maker_fee_bps: float = Field(default=2.0, ge=0)
    """Fee on resting limit fills, in basis points. Default 2."""
    slippage_bps: float = Field(default=1.0, ge=0)
    """Slippage applied to market fills, in basis points. Default 1."""
    max_participation: float | None = Field(default=None, gt=0, le=1)
    """Largest fraction of a bar's volume one order fills per bar; unset fills whole.
    Default unset."""

    @field_validator("symbols")
    @classmethod
    def _symbols_ok(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one symbol is required")
        if len(set(v)) != len(v):
            raise ValueError("symbols must be unique")
        return v

    @field_validator("initial_prices")
    @classmethod
    def _prices_ok(cls, v: dict[str, float]) -> dict[str, float]:
        for sym, price in v.items():
            if not math.isfinite(price) or price <= 0:
                raise ValueError(f"price for {sym} must be finite and > 0, got {price}")
        return v


class VenueConfig(_Model):
    kind: Literal["sim"] = "sim"
    """Which venue: ``sim`` (built-in simulator, offline). Real venues come with their adapters.
    Default ``sim``."""
    sim: SimVenueConfig = SimVenueConfig()
    """Simulated venue settings (used when kind is ``sim``)."""

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.sim.symbols


class RiskConfig(_Model):
    max_order_value: float | None = Field(default=None, gt=0)
    """Largest notional (quantity x price) of one order, account currency; unset = no limit.
    Default unset."""
    max_position_value: float | None = Field(default=None, gt=0)
    """Largest absolute notional of one symbol's position after the order, including working
    orders; unset = no limit. Default unset."""


class JournalConfig(_Model):
    fsync: bool = True
    """fsync every batch (durable against power loss, not only process crash). Default true."""
    batch_max_records: int = Field(default=512, ge=1, le=100_000)
    """Most records written in one transaction. Default 512."""
    batch_max_delay_ms: float = Field(default=0.0, ge=0, le=1000)
    """Extra wait for other writes to share a transaction. Default 0: appends that arrive while
    a commit runs share the next one anyway (group commit), so waiting only adds latency."""
    bars: Literal["all", "summary"] = "summary"
    """Journal every bar (``all``) or a per-symbol summary every ``bar_summary_interval_s``.
    Default ``summary``."""
    bar_summary_interval_s: float = Field(default=10.0, gt=0)
    """Seconds between bar summaries when ``bars = "summary"``. Default 10."""


class SupervisorConfig(_Model):
    monitor_interval_s: float = Field(default=0.25, gt=0, le=10)
    """Seconds between supervisor reconcile ticks. Default 0.25."""
    heartbeat_timeout_s: float = Field(default=5.0, gt=0)
    """A child that does not answer a heartbeat within this is treated as hung. Default 5."""
    feed_silence_s: float = Field(default=30.0, gt=0)
    """No bar for this long while the market is open gives health ``feed_silent``. Default 30."""
    startup_timeout_s: float = Field(default=60.0, gt=0)
    """How long deployment start may take before it fails. Default 60."""
    max_restarts: int = Field(default=5, ge=0)
    """Restarts allowed per child within ``restart_window_s`` before the deployment fails
    closed. Default 5."""
    restart_window_s: float = Field(default=300.0, gt=0)
    """Window over which restarts are counted. Default 300."""
    restart_cooldown_s: float = Field(default=0.0, ge=0)
    """Pause before a restart. Default 0 (restart at once)."""
    inflight_limit: int = Field(default=256, ge=1)
    """Most un-acknowledged messages the feed keeps in flight per subscriber before it waits
    (backpressure, reported in status). Default 256."""
    replay_bars: int = Field(default=2000, ge=0)
    """Recent bars per symbol the feed keeps to replay to a restarted strategy. Default 2000."""
    resubmit_unconfirmed: bool = False
    """Whether the broker may resubmit, after a restart, an order journaled as submitting that the
    venue never saw. Off: such orders are closed as rejected (never guessed). Default false."""
    unconfirmed_grace_s: float = Field(default=2.0, ge=0)
    """How long the broker waits for the venue to show an order left in submitting by a crash
    before it closes it. Default 2."""


class StrategyConfig(_Model):
    name: str
    """Strategy name, unique in the deployment; part of every intent id. Required."""
    path: Path
    """Python file defining the strategy class, relative to the config file. Required."""
    class_name: str
    """Name of the ``Strategy`` subclass in that file. Required."""
    symbols: tuple[str, ...] = ()
    """Symbols it trades; empty = every venue symbol. Default empty."""
    capital: float = Field(default=100_000.0, gt=0)
    """Capital of its virtual book (positions and P&L per strategy). Default 100,000."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments passed to the strategy's constructor. Default none."""
    resources: dict[str, float] = Field(default_factory=dict)
    """Ray custom resources to place this strategy's actor (e.g. a node label). Default none."""
    snapshot_interval_s: float = Field(default=1.0, gt=0)
    """Most seconds between state snapshots while bars flow (also after every intent).
    Default 1."""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError("must be 1-63 letters, digits, '_', '.', '-' and start alphanumeric")
        return v


class TradeplaneConfig(_Model):
    deployment: DeploymentConfig
    """Name, mode and state dir."""
    venue: VenueConfig = VenueConfig()
    """Where bars come from and orders go."""
    risk: RiskConfig = RiskConfig()
    """Pre-trade limits."""
    journal: JournalConfig = JournalConfig()
    """Journal durability and batching."""
    supervisor: SupervisorConfig = SupervisorConfig()
    """Monitoring and restart policy."""
    strategies: tuple[StrategyConfig, ...] = ()
    """The strategies of this deployment; at least one."""
    source_path: Path | None = Field(default=None, exclude=True)
    """Where this config was loaded from (set by the loader)."""

    @model_validator(mode="after")
    def _consistent(self) -> TradeplaneConfig:
        if not self.strategies:
            raise ValueError("strategies: at least one [[strategies]] entry is required")
        names = [s.name for s in self.strategies]
        if len(set(names)) != len(names):
            raise ValueError(f"strategies: names must be unique, got {names}")
        venue_symbols = set(self.venue.symbols)
        for s in self.strategies:
            unknown = set(s.symbols) - venue_symbols
            if unknown:
                raise ValueError(
                    f"strategies.{s.name}.symbols: {sorted(unknown)} not offered by the venue"
                )
        if self.deployment.mode is Mode.LIVE and self.venue.kind == "sim":
            raise ValueError("deployment.mode: 'live' needs a real venue, not 'sim'")
        return self

    def strategy_symbols(self, strategy: StrategyConfig) -> tuple[str, ...]:
        return strategy.symbols or self.venue.symbols
