"""``backtest_report.json`` (issue 16): its schema, the atomic writer, the loader that drift,
``report`` and ``promote`` read baselines with, and the hashes that tie a report to its config
and strategy code.

The schema is the model below (``schema`` 1); the builder is
``tradeplane.backtest.report_builder.ReportAccumulator``. Numbers are JSON numbers; a figure
that is undefined is ``null``, never NaN. Loading refuses a file that is not this schema with
the first offending field named (``strategies.sma.sharpe: ...``), never half-reads one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tradeplane.core.errors import TradeplaneError
from tradeplane.core.promotion_config import code_hash
from tradeplane.durable import fsync_dir, fsync_file

if TYPE_CHECKING:
    from tradeplane.config.models import TradeplaneConfig

SCHEMA_VERSION: Literal[1] = 1
REPORT_KIND: Literal["backtest_report"] = "backtest_report"
REPORT_FILE = "backtest_report.json"
MAX_CURVE_POINTS = 2000

Count = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class BarsInfo(_Model):
    source: str
    """Where the bars came from: ``sim``, a file path, ``recorded:<state dir>``."""
    first_ts: AwareDatetime
    """Open time of the first bar."""
    last_ts: AwareDatetime
    """Open time of the last bar."""
    count: Count
    """Bars processed (all symbols)."""
    symbols: tuple[str, ...]
    interval_s: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _ordered(self) -> BarsInfo:
        if self.last_ts < self.first_ts:
            raise ValueError("last_ts is before first_ts")
        return self


class Block(_Model):
    """The figures of one strategy, or of the total (the sum of the strategies' equities)."""

    starting_equity: Annotated[float, Field(gt=0)]
    final_equity: float
    total_return: float | None
    annualised_volatility: Fraction | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: Fraction
    max_drawdown_duration_s: Fraction
    turnover: Fraction | None
    exposure: Annotated[float, Field(ge=0, le=1)] | None
    intents: Count
    orders: Count
    fills: Count
    trades: Count
    fees: float
    denials_by_reason: dict[str, Count]
    equity_curve: Annotated[
        tuple[tuple[AwareDatetime, float], ...], Field(min_length=1, max_length=MAX_CURVE_POINTS)
    ]

    @field_validator("equity_curve")
    @classmethod
    def _curve_in_time_order(
        cls, curve: tuple[tuple[datetime, float], ...]
    ) -> tuple[tuple[datetime, float], ...]:
        if any(b[0] <= a[0] for a, b in pairwise(curve)):
            raise ValueError("times must be strictly increasing")
        return curve


class BacktestReport(_Model):
    model_config = ConfigDict(populate_by_name=True)

    schema_version: Literal[1] = Field(validation_alias="schema", serialization_alias="schema")
    kind: Literal["backtest_report"]
    generated_at: AwareDatetime
    deployment: str
    config_hash: Sha256
    strategy_code_hashes: dict[str, Sha256]
    bars: BarsInfo
    calendar: str
    """``"24/7"`` or an exchange_calendars code."""
    periods_per_year: Annotated[float, Field(gt=0)]
    strategies: Annotated[dict[str, Block], Field(min_length=1)]
    total: Block

    @model_validator(mode="after")
    def _hash_per_strategy(self) -> BacktestReport:
        if set(self.strategy_code_hashes) != set(self.strategies):
            raise ValueError("strategy_code_hashes must name exactly the report's strategies")
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode() + b"\n"


class ReportError(TradeplaneError):
    """A backtest report that cannot be used: which file, which field, why."""

    def __init__(self, path: Path, field: str | None, reason: str) -> None:
        where = f"{path}" if field is None else f"{path}: {field}"
        super().__init__(f"{where}: {reason}")
        self.path, self.field, self.reason = path, field, reason


def write_report(path: Path, report: BacktestReport) -> Path:
    """Write ``report`` to ``path`` atomically (temp file, fsync, rename, fsync of the dir), mode
    0644: a reader sees the old file or the new one, never a torn one."""
    path = Path(path)
    data = report.to_json()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            fsync_file(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def load_report(path: Path) -> BacktestReport:
    """Read and validate a ``backtest_report.json``; ``ReportError`` names the first bad field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ReportError(path, None, f"cannot read: {e.strerror or e}") from e
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ReportError(path, None, f"not valid JSON ({e})") from e
    if not isinstance(doc, dict):
        raise ReportError(path, None, f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("kind") != REPORT_KIND:
        raise ReportError(path, "kind", f"expected {REPORT_KIND!r}, got {doc.get('kind')!r}")
    if doc.get("schema") != SCHEMA_VERSION:
        raise ReportError(
            path,
            "schema",
            f"version {doc.get('schema')!r} is not supported (this tradeplane reads "
            f"{SCHEMA_VERSION})",
        )
    try:
        return BacktestReport.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise ReportError(path, field, f"{first['msg']}{more}") from e


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, shortest float repr: equal values give equal bytes."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def result_affecting_config(config: TradeplaneConfig) -> dict[str, Any]:
    """The parts of a config that change a backtest's result: strategies (in config order, with
    class, symbols, capital and params), starting cash, the session calendar, every risk limit
    and the sim matching settings. Not the deployment's name, mode or state dir, not
    credentials, not supervision or telemetry; strategy code is hashed apart."""
    sim = config.venue.sim
    return {
        "strategies": [
            {
                "name": s.name,
                "class_name": s.class_name,
                "symbols": list(s.symbols),
                "capital": s.capital,
                "params": s.params,
            }
            for s in config.strategies
        ],
        "starting_cash": config.deployment.starting_cash,
        "calendar": config.session.calendar,
        "risk": config.risk.model_dump(mode="json"),
        "matching": {
            "taker_fee_bps": sim.taker_fee_bps,
            "maker_fee_bps": sim.maker_fee_bps,
            "slippage_bps": sim.slippage_bps,
            "max_participation": sim.max_participation,
        },
    }


def config_hash(config: TradeplaneConfig) -> str:
    """sha256 (hex) of the canonical JSON of ``result_affecting_config``."""
    return hashlib.sha256(canonical_json(result_affecting_config(config))).hexdigest()


def strategy_code_hash(path: Path) -> str:
    """A strategy's code hash as a deployment records it (``core.promotion_config.code_hash``:
    sha256 of the source text as the deployer reads and ships it), so a backtest's report,
    ``deployment_started`` and ``promote`` name the same code by the same hash."""
    return code_hash(Path(path).read_text(encoding="utf-8"))


def strategy_code_hashes(config: TradeplaneConfig) -> dict[str, str]:
    """Per strategy of ``config`` (whose paths the loader resolved), its code hash."""
    return {s.name: strategy_code_hash(s.path) for s in config.strategies}


def utc(ts: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (the report's time fields)."""
    return datetime.fromtimestamp(ts, tz=UTC)
