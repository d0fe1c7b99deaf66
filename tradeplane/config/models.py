"""Deployment configuration: frozen pydantic models, ``extra="forbid"``, units in names.

Every field carries a docstring stating its meaning and default; a bad value fails at load with
the field's dotted path (see ``loading``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from tradeplane.config.alerts import AlertsConfig
from tradeplane.config.base import FrozenModel
from tradeplane.config.drift import DriftConfig
from tradeplane.config.faults import FaultSpec
from tradeplane.config.telemetry import TelemetryConfig
from tradeplane.config.venues import FEED_SILENCE_DEFAULT_S, FeedConfig, IbConfig
from tradeplane.core.risk_types import KillSwitchPolicy, RiskLimits

IB_CALENDAR = "XNYS"

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Mode(StrEnum):
    SHADOW = "shadow"
    PAPER = "paper"
    LIVE = "live"


class DeploymentConfig(FrozenModel):
    name: str
    """Deployment name: names the Ray actors (``<name>/supervisor``) and the state dir. Required."""
    mode: Mode = Mode.PAPER
    """``shadow`` (virtual portfolio, no order leaves), ``paper`` or ``live``. Default ``paper``."""
    state_dir: Path | None = None
    """Where the journal and state live. Default ``.tradeplane/<name>`` (relative to the cwd)."""
    starting_cash: float = Field(default=1_000_000.0, gt=0)
    """Cash of the virtual portfolio in shadow mode, in account currency. Default 1,000,000."""
    state_node: str | None = None
    """The node that holds the deployment's record: the journal, telemetry, sim or shadow venue,
    reconciler, supervisor, risk, broker and (unless ``feed_node`` says otherwise) the feed run
    there at every start and restart. A Ray node id, an IP, a node label ``key=value``, or a
    custom resource or label key; it must name exactly one live node at ``up``. Default: the
    node the CLI runs on."""
    feed_node: str | None = None
    """Where the feed runs, in the same forms as ``state_node``, resolved at every (re)start.
    Default: the state node (a venue bound to a host, like IB's TWS, must be reached there)."""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError("must be 1-63 letters, digits, '_', '.', '-' and start alphanumeric")
        return v

    def resolved_state_dir(self) -> Path:
        return (self.state_dir or Path(".tradeplane") / self.name).expanduser().resolve()


class SimVenueConfig(FrozenModel):
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
    faults: tuple[FaultSpec, ...] = ()
    """Faults injected on a schedule (chaos testing), each ``at_s`` seconds after deployment
    start; see ``FaultSpec``. Default none."""

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


class CredentialsConfig(FrozenModel):
    """Venue credentials. Set ONLY from the environment or ``.env`` (``TRADEPLANE_API_KEY``,
    ``TRADEPLANE_API_SECRET``, ``TRADEPLANE_API_PASSPHRASE``, ``TRADEPLANE_ACCOUNT_ID``); a
    config file that writes them is refused. Masked in repr, dumps and errors."""

    api_key: SecretStr | None = None
    """API key, from ``TRADEPLANE_API_KEY``. Default unset."""
    api_secret: SecretStr | None = None
    """API secret, from ``TRADEPLANE_API_SECRET``. Default unset."""
    passphrase: SecretStr | None = None
    """API passphrase (venues that have one), from ``TRADEPLANE_API_PASSPHRASE``. Default unset."""
    account_id: SecretStr | None = None
    """Account id, from ``TRADEPLANE_ACCOUNT_ID``. Default unset."""


class VenueConfig(FrozenModel):
    kind: Literal["sim", "ib"] = "sim"
    """Where orders go: ``sim`` (built-in simulator, offline; paper) or ``ib`` (Interactive
    Brokers through TWS or IB Gateway). Default ``sim``."""
    sim: SimVenueConfig = SimVenueConfig()
    """Simulated venue settings (used when kind is ``sim``)."""
    ib: IbConfig = IbConfig()
    """Interactive Brokers connection (used when kind is ``ib``)."""
    credentials: CredentialsConfig = CredentialsConfig()
    """Credentials, from the environment or ``.env`` only (never the config file)."""

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.ib.symbols if self.kind == "ib" else self.sim.symbols


class RiskConfig(FrozenModel):
    max_order_value: float | None = Field(default=None, gt=0)
    """Largest notional (quantity x price) of one order, account currency; unset = no limit.
    Default unset."""
    max_order_quantity: float | None = Field(default=None, gt=0)
    """Largest quantity of one order; unset = no limit. Default unset."""
    max_position_value: float | None = Field(default=None, gt=0)
    """Largest absolute notional of one symbol's position after the order, including working
    orders; unset = no limit. Default unset."""
    max_position_quantity: float | None = Field(default=None, gt=0)
    """Largest absolute quantity of one symbol's position after the order, including working
    orders; unset = no limit. Default unset."""
    max_gross_exposure: float | None = Field(default=None, gt=0)
    """Largest sum over symbols of |position incl. same-side working| x price, account currency;
    unset = no limit. Default unset."""
    max_positions: int | None = Field(default=None, ge=1)
    """Most symbols with a position (or working order) at once; unset = no limit. Default unset."""
    max_orders_per_second: int | None = Field(default=None, ge=1)
    """Most orders approved in any 1 s; unset = no limit. Default unset."""
    max_orders_per_minute: int | None = Field(default=None, ge=1)
    """Most orders approved in any 60 s; unset = no limit. Default unset."""
    max_daily_loss: float | None = Field(default=None, gt=0)
    """Loss from the risk day's start equity, account currency, that trips the kill switch;
    unset = no limit. Default unset."""
    max_drawdown_pct: float | None = Field(default=None, gt=0, le=100)
    """Drawdown from the equity high-water mark, in percent (0-100], that trips the kill switch;
    unset = no limit. Default unset."""
    max_price_deviation_pct: float | None = Field(default=None, gt=0)
    """Largest distance of a limit price from the last price, in percent (fat-finger check);
    unset = no check. Default unset."""
    max_data_staleness_s: float | None = Field(default=None, gt=0)
    """Oldest acceptable age of the symbol's last price, in seconds; unset = no check.
    Default unset."""
    recovered_intent_max_age_s: float = Field(default=5.0, gt=0)
    """An intent journaled but never decided (risk died with it in hand) is decided when risk
    restarts if it is at most this old, and denied ``INTENT_EXPIRED`` if older: it is never
    left without a decision, nor sent late. Default 5."""
    duplicate_order_window_s: float | None = Field(default=None, gt=0)
    """Deny an order identical (strategy, symbol, side, quantity, type, limit price) to one
    approved within this many seconds; unset = no check. Default unset."""
    allowed_symbols: tuple[str, ...] | None = None
    """Only these symbols may be traded; unset = all. Default unset."""
    blocked_symbols: tuple[str, ...] = ()
    """These symbols may not be traded. Default empty."""
    deny_when_market_closed: bool = True
    """Deny new orders (``MARKET_CLOSED``) while the session calendar says the market is
    closed, rather than leave them waiting at the broker for the open. A 24/7 calendar is
    never closed; the kill switch's flatten still goes. Default true."""
    kill_switch_cancel_orders: bool = True
    """Cancel working orders when the kill switch trips. Default true."""
    kill_switch_flatten: bool = False
    """Flatten positions when the kill switch trips. Default false."""
    kill_switch_allow_reducing: bool = True
    """With the kill switch active, still allow orders that reduce a position (state
    ``reducing``); false halts everything but the flatten (state ``halted``). Default true."""
    max_venue_rejections: int | None = Field(default=None, ge=1)
    """This many venue rejections within ``venue_rejection_window_s`` trip the kill switch;
    unset = off. Default unset."""
    venue_rejection_window_s: float = Field(default=60.0, gt=0)
    """Window over which venue rejections are counted, in seconds. Default 60."""
    starting_equity: float | None = Field(default=None, gt=0)
    """Account equity, account currency, that daily loss and drawdown are measured from;
    unset = the sum of the strategies' capital. Default unset."""

    LIMIT_FIELDS: ClassVar[tuple[str, ...]] = (
        "max_order_value",
        "max_order_quantity",
        "max_position_value",
        "max_position_quantity",
        "max_gross_exposure",
        "max_positions",
        "max_orders_per_second",
        "max_orders_per_minute",
        "max_daily_loss",
        "max_drawdown_pct",
        "max_price_deviation_pct",
        "max_data_staleness_s",
        "duplicate_order_window_s",
        "allowed_symbols",
        "blocked_symbols",
        "max_venue_rejections",
    )

    @field_validator("allowed_symbols", "blocked_symbols")
    @classmethod
    def _symbols_ok(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if any(not s or s != s.strip() for s in v):
            raise ValueError("symbols must be non-empty and without surrounding spaces")
        if len(set(v)) != len(v):
            raise ValueError("symbols must be unique")
        return v

    @model_validator(mode="after")
    def _symbol_lists_consistent(self) -> RiskConfig:
        if self.allowed_symbols is not None and not self.allowed_symbols:
            raise ValueError("allowed_symbols: empty list allows nothing; leave unset to allow all")
        both = set(self.allowed_symbols or ()) & set(self.blocked_symbols)
        if both:
            raise ValueError(f"blocked_symbols: {sorted(both)} also in allowed_symbols")
        return self

    def limits(self) -> RiskLimits:
        """The risk core's limits from this section (same field names)."""
        return RiskLimits(**{f.name: getattr(self, f.name) for f in fields(RiskLimits)})

    def kill_switch_policy(self) -> KillSwitchPolicy:
        return KillSwitchPolicy(
            cancel_orders=self.kill_switch_cancel_orders,
            flatten=self.kill_switch_flatten,
            allow_reducing=self.kill_switch_allow_reducing,
            max_venue_rejections=self.max_venue_rejections,
            venue_rejection_window_s=self.venue_rejection_window_s,
        )

    def disabled_limits(self) -> list[str]:
        """Names of the limits that are unset (off); journaled at start."""
        return [n for n in self.LIMIT_FIELDS if getattr(self, n) in (None, ())]

    def resolved_starting_equity(self, strategy_capitals: Iterable[float]) -> float:
        """``starting_equity``, or the sum of the strategies' capital when unset."""
        if self.starting_equity is not None:
            return self.starting_equity
        return float(sum(strategy_capitals))


class SessionConfig(FrozenModel):
    calendar: str = "24/7"
    """Trading calendar: ``"24/7"`` (always open, risk day rolls at 00:00 UTC) or an
    exchange_calendars code such as ``"XNYS"`` (risk day rolls at each session close).
    Default ``"24/7"``, or ``"XNYS"`` when ``venue.kind = "ib"`` (US stocks)."""

    @field_validator("calendar")
    @classmethod
    def _calendar_known(cls, v: str) -> str:
        from tradeplane.core.session import validate_calendar_name

        return validate_calendar_name(v)


class JournalConfig(FrozenModel):
    fsync: bool = True
    """fsync every batch (durable against power loss, not only process crash). Default true."""
    batch_max_records: int = Field(default=512, ge=1, le=100_000)
    """Most records written in one transaction. Default 512."""
    batch_max_delay_ms: float = Field(default=0.0, ge=0, le=1000)
    """Extra wait for other writes to share a transaction. Default 0: appends that arrive while
    a commit runs share the next one anyway (group commit), so waiting only adds latency."""
    bars: Literal["all", "summary"] = "summary"
    """Record every bar (``all``) in ``<state_dir>/bars/`` as closed Parquet chunks (readable by
    a backtest, see README "Recorded bars"), or not (``summary``). Either way the journal gets a
    per-symbol summary every ``bar_summary_interval_s``, never one event per bar. Default
    ``summary``."""
    bar_summary_interval_s: float = Field(default=10.0, gt=0)
    """Seconds between bar summaries in the journal. Default 10."""
    bar_chunk_max_bars: int = Field(default=10_000, ge=1, le=10_000_000)
    """With ``bars = "all"``: a chunk holding this many bars is closed (written) at once.
    Default 10000."""
    bar_chunk_interval_s: float = Field(default=60.0, gt=0)
    """With ``bars = "all"``: a chunk is closed at the latest this long after its first bar
    came, so a crash loses at most this long of bars (refetched after the restart from the
    feed's recent bars). Default 60."""
    venue_rejections_per_window: int = Field(default=10, ge=0, le=10_000)
    """Rejected venue messages (``venue_message_rejected``) journaled one by one per source in
    each ``venue_rejection_window_s``; past it they are counted, and one
    ``venue_messages_suppressed`` record per window gives the count by reason. Bounds what a
    venue sending garbage adds to the journal. Default 10."""
    venue_rejection_window_s: float = Field(default=60.0, gt=0, le=86_400)
    """The window of ``venue_rejections_per_window``, in seconds. Default 60."""


class SupervisorConfig(FrozenModel):
    monitor_interval_s: float = Field(default=0.25, gt=0, le=10)
    """Seconds between supervisor reconcile ticks (each heartbeats every child) while anything
    is wrong or changing. A steady deployment (health ok, every child up and answering) is
    ticked less often: every ``heartbeat_timeout_s / 2``, ``lease_s / 6`` or
    ``feed_silence_s / 20``, whichever is least, at most 2 s (never faster than this). A death
    wakes the supervisor at once either way. Default 0.25."""
    heartbeat_timeout_s: float = Field(default=5.0, gt=0)
    """A child that does not answer a heartbeat within this is treated as hung. Default 5."""
    feed_silence_s: float | None = Field(default=None, gt=0)
    """No bar for this long while the market is open gives health ``feed_silent`` and a
    recovery (the broker/feed pair is restarted). Unset: 30 s for a streaming feed, 90 s for a
    REST-polled one, and never less than one and a half bar gaps (so 90 s on the 1-minute bars of
    OKX, Binance and IB, whose closed bars come a minute apart). Default unset."""
    startup_timeout_s: float = Field(default=60.0, gt=0)
    """How long deployment start (or one actor's restart) may take before it fails. Default 60."""
    lease_s: float = Field(default=15.0, gt=0)
    """A child that hears nothing from the supervisor for this long (its node, the state node,
    lost; or Ray's control plane and the supervisor with it) stops acting on its own and says
    so: a strategy emits nothing, the broker lets no order out, until the supervisor calls
    again. Default 15."""
    auto_recover: bool = True
    """Recover by itself: restart a dead actor, restart a silent feed, resync a reconnected
    broker. Off: the first such failure stops the deployment fail-closed. Default true."""
    recovery_cooldown_s: float = Field(default=0.5, ge=0)
    """The first recovery attempt within the window goes at once; the second waits this long,
    each further one twice as long as the one before (with jitter), up to
    ``recovery_backoff_max_s``. Default 0.5."""
    recovery_backoff_max_s: float = Field(default=30.0, gt=0)
    """Longest wait before a recovery attempt. Default 30."""
    recovery_jitter: float = Field(default=0.2, ge=0, lt=1)
    """Random spread of each wait, as a fraction (0.2 = +/-20 %). Default 0.2."""
    max_recovery_attempts: int = Field(default=5, ge=0)
    """Recovery attempts allowed per actor (or per fault: silent feed, lost venue connection)
    within ``recovery_window_s``; one more failure stops the deployment fail-closed. Default 5."""
    recovery_window_s: float = Field(default=300.0, gt=0)
    """Window over which recovery attempts are counted; older attempts no longer count.
    Default 300."""
    on_recovery_exhausted: Literal["failed", "stopped"] = "failed"
    """When recovery gives up, trading is halted (no bars, nothing queued leaves) and then the
    deployment either stays up for inspection with health ``failed``, or is stopped (actors gone,
    health ``stopped``). Default ``failed``."""
    cancel_orders_on_exhausted: bool = True
    """Cancel working orders when recovery gives up. Default true."""
    strategy_max_restarts: int = Field(default=3, ge=0)
    """Restarts of one strategy (it raised, or its actor died) within ``recovery_window_s``
    before it is suspended; the other strategies keep trading. Default 3."""
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
    before it closes it, where the venue's answer is not final: a submit may still be on its way
    (IB). An order sent to an earlier incarnation of a venue whose answers are final once it has
    restarted (the built-in sim venue) and not at the new one is closed at once. Default 2."""
    standbys: bool = True
    """Keep a pre-started standby actor per node that hosts the deployment's pinned roles (the
    state node, the feed's node): a role that dies there is taken over by it, skipping a new
    process's start and imports (most of a restart). Costs one idle Ray worker process per such
    node (its memory and CPU are in ``status``). Off: every restart creates a new actor.
    Default true."""
    fail_on_reconciliation_mismatch: bool = False
    """Stop the start (health ``failed``, the report as the reason) when the start-up
    reconciliation, or the one after a venue reconnect, finds any difference. Off: the mismatch is
    logged and journaled and the venue's holdings are adopted. Default false."""


class PromotionConfig(FrozenModel):
    """``tradeplane promote``: what a live config must show of its paper deployment. Read from
    the config being promoted (the live one); a paper config's own section is not used."""

    paper_config: Path | None = None
    """The paper deployment this config is promoted from: its config file, relative to this
    file. Its state dir holds the journal the gates read. ``promote --paper FILE`` overrides it.
    Default none (then ``--paper`` is required)."""
    clean_starts: int = Field(default=3, ge=1)
    """How many of the paper deployment's most recent starts must each have had a clean
    start-up reconciliation (fewer starts journaled fails too). Default 3."""
    size_params: tuple[str, ...] = ("quantity",)
    """Strategy params that are size: they may differ between the paper and the live config
    (as may each strategy's ``capital``, the ``[risk]`` limits and the venue connection and
    credentials). Every other param must be equal. Default ``["quantity"]``."""
    allowed_differences: tuple[str, ...] = ()
    """More dotted config paths allowed to differ, shell-style wildcards allowed (for example
    ``"strategies.*.resources.*"`` or ``"telemetry.otlp_endpoint"``). Default none."""


class StrategyConfig(FrozenModel):
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
    """Ray custom resources this strategy's actor asks for: only nodes that have them take it.
    Default none."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Ray node labels (``ray start --labels``) a node must carry to take this strategy's actor.
    Strategies spread over the eligible nodes. Default none (any node)."""
    snapshot_interval_s: float = Field(default=1.0, gt=0)
    """Most seconds between state snapshots while bars flow (also after every intent).
    Default 1."""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError("must be 1-63 letters, digits, '_', '.', '-' and start alphanumeric")
        return v


class TradeplaneConfig(FrozenModel):
    deployment: DeploymentConfig
    """Name, mode and state dir."""
    venue: VenueConfig = VenueConfig()
    """Where bars come from and orders go."""
    risk: RiskConfig = RiskConfig()
    """Pre-trade limits."""
    session: SessionConfig = SessionConfig()
    """Trading calendar: market hours and when the risk day rolls over."""
    journal: JournalConfig = JournalConfig()
    """Journal durability and batching."""
    supervisor: SupervisorConfig = SupervisorConfig()
    """Monitoring and restart policy."""
    feed: FeedConfig = FeedConfig()
    """Where bars come from: the venue's own feed, or OKX / Binance public market data."""
    telemetry: TelemetryConfig = TelemetryConfig()
    """Traces (OTLP to Jaeger) and the Prometheus metrics endpoint."""
    strategies: tuple[StrategyConfig, ...] = ()
    """The strategies of this deployment; at least one."""
    drift: DriftConfig | None = None
    """Live drift against a backtest: ``live_drift.csv``, ``live_performance.json`` and
    ``drift_alert``. Default none (not tracked)."""
    promotion: PromotionConfig = PromotionConfig()
    """What ``tradeplane promote`` requires before this config goes live."""
    alerts: AlertsConfig = AlertsConfig()
    """Where operator events are POSTed (``webhook_url``). Default: no webhook."""
    source_path: Path | None = Field(default=None, exclude=True)
    """Where this config was loaded from (set by the loader)."""
    loaded_from_dir: Path | None = Field(default=None, exclude=True)
    """The working directory of the process that loaded it (set by the loader): the actors
    that read credentials on their node look for a ``.env`` there too."""

    @model_validator(mode="before")
    @classmethod
    def _venue_calendar(cls, raw: Any) -> Any:
        """IB trades US stocks: unless the file names a calendar, the NYSE's, so a closed
        market reads ``idle_market_closed`` and not ``feed_silent``."""
        if not isinstance(raw, dict):
            return raw
        venue, session = raw.get("venue"), raw.get("session", {})
        kind = venue.get("kind") if isinstance(venue, dict) else getattr(venue, "kind", None)
        if kind == "ib" and isinstance(session, dict) and "calendar" not in session:
            raw = {**raw, "session": {**session, "calendar": IB_CALENDAR}}
        return raw

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
        if self.feed.kind != "venue" and self.venue.kind != "sim":
            raise ValueError(
                f"feed.kind: {self.feed.kind!r} data can drive the sim venue (paper) or shadow "
                f"mode, not orders at {self.venue.kind!r}"
            )
        if self.drift is not None:
            if self.journal.bars != "all":
                raise ValueError(
                    'drift: the shadow backtest replays recorded bars: set [journal] bars = "all"'
                )
            if "total" in names:
                raise ValueError("drift: a strategy may not be named 'total' (the drift total row)")

        return self

    def strategy_symbols(self, strategy: StrategyConfig) -> tuple[str, ...]:
        return strategy.symbols or self.venue.symbols

    def resolved_feed_silence_s(self) -> float:
        """``supervisor.feed_silence_s``, or the default for how this venue's feed delivers."""
        if self.supervisor.feed_silence_s is not None:
            return self.supervisor.feed_silence_s
        # Health ages the last *closed* bar, so a healthy feed goes a whole bar gap without one:
        # the threshold must leave room for a bar half a gap late, or every gap reads silent.
        return max(FEED_SILENCE_DEFAULT_S[self.feed.style], 1.5 * self.bar_gap_s())

    def bar_length_s(self) -> float:
        """Bar time one bar of this deployment's feed covers (its open to its close)."""
        if self.feed.kind == "venue" and self.venue.kind == "sim":
            return float(self.venue.sim.bar_interval_s)
        return 60.0  # OKX candle1m, Binance kline_1m, IB minutes

    def bar_gap_s(self) -> float:
        """Wall-clock seconds between two closed bars of this deployment's feed."""
        if self.feed.kind == "venue" and self.venue.kind == "sim":
            return self.venue.sim.bar_interval_s / self.venue.sim.speed
        return 60.0  # OKX candle1m, Binance kline_1m, IB minutes folded from 5-s bars
