"""Startup reconciliation: compare what the journal says we hold with what the venue holds.

Pure: callers read both snapshots (journal rows, a venue snapshot) and hand them in; this module
only diffs them. Orders are matched by client order id first. A venue order whose id we do not
know (placed by hand, or a venue that dropped our reference) is then matched one-to-one by
fingerprint to an order of ours that is missing by id, so a lost reference does not show up as
one missing and one unexpected order. Whatever is left is named, never guessed away
(DESIGN invariant 3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from tradeplane.core.exposure import QTY_EPS

# Relative tolerance for limit prices in a fingerprint: a price survives a text or float round
# trip through a venue API only to about this precision.
_PRICE_REL_TOL = 1e-9
_SUMMARY_ITEMS = 3  # per category in the one-line summary; lines() lists everything
_SHORT_ID = 10

# The five kinds of mismatch, in report order, and what one of each is called.
_CATEGORY_NOUNS = {
    "missing_positions": "missing position",
    "unexpected_positions": "unexpected position",
    "quantity_mismatches": "quantity mismatch",
    "missing_orders": "missing order",
    "unexpected_orders": "unexpected order",
}
MISMATCH_FIELDS = tuple(_CATEGORY_NOUNS)
# Keys each entry must carry, so a loaded report always renders (see from_dict).
_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "missing_positions": ("symbol", "expected"),
    "unexpected_positions": ("symbol", "venue"),
    "quantity_mismatches": ("symbol", "expected", "venue", "difference"),
    "missing_orders": ("client_order_id", "symbol"),
    "unexpected_orders": ("client_order_id", "venue_order_id", "symbol"),
    "unknown_outcomes_resolved": ("client_order_id",),
    "matched_by_fingerprint": ("client_order_id", "venue_order_id"),
}


@dataclass(frozen=True, slots=True)
class ExpectedOrder:
    """An order the journal has open."""

    client_order_id: str
    strategy: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: float
    remaining: float
    order_type: str  # "market" | "limit"
    limit_price: float | None
    status: str

    def __post_init__(self) -> None:
        _plain_strings(self)


@dataclass(frozen=True, slots=True)
class LiveOrder:
    """An order open at the venue. ``client_order_id`` is None when the venue has none for it."""

    client_order_id: str | None
    venue_order_id: str | None
    symbol: str
    side: str
    quantity: float
    remaining: float
    order_type: str
    limit_price: float | None
    status: str

    def __post_init__(self) -> None:
        _plain_strings(self)


AnyOrder = ExpectedOrder | LiveOrder


def _plain_strings(order: AnyOrder) -> None:
    # Enums (Side, OrderType, OrderStatus) become their plain values, so reports stay JSON.
    for name in ("side", "order_type", "status"):
        object.__setattr__(order, name, str(getattr(order, name)))


@dataclass(frozen=True, slots=True)
class Holdings:
    """Net positions per symbol (signed, short < 0) and open orders, from either side."""

    positions: dict[str, float]
    open_orders: tuple[AnyOrder, ...] = ()


def net_positions(position_rows: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, float]:
    """Net quantity per symbol from ``JournalReader.positions()`` (summed over strategies; the
    venue holds one net position per symbol whichever strategy traded it). Flat ones stay."""
    net: dict[str, float] = {}
    for (_strategy, key_symbol), row in position_rows.items():
        symbol = str(row.get("symbol") or key_symbol)
        net[symbol] = net.get(symbol, 0.0) + float(row.get("quantity") or 0.0)
    return net


def expected_from_journal(
    position_rows: Mapping[tuple[str, str], Mapping[str, Any]],
    open_order_rows: Iterable[Mapping[str, Any]],
) -> Holdings:
    """Holdings from ``JournalReader.positions()`` and ``.orders(open_only=True)``.

    The venue holds one net position per symbol whichever strategy traded it, so the journal's
    per-strategy positions are summed; flat results are dropped.
    """
    net = net_positions(position_rows)
    orders = []
    for row in open_order_rows:
        quantity = float(row.get("quantity") or 0.0)
        filled = float(row.get("filled_quantity") or 0.0)
        limit = row.get("limit_price")
        orders.append(
            ExpectedOrder(
                client_order_id=str(row["client_order_id"]),
                strategy=str(row.get("strategy") or ""),
                # An order first seen in a venue report may lack its terms in the journal.
                symbol=str(row.get("symbol") or ""),
                side=str(row.get("side") or ""),
                quantity=quantity,
                remaining=max(0.0, quantity - filled),
                order_type=str(row.get("order_type") or ""),
                limit_price=None if limit is None else float(limit),
                status=str(row.get("status") or ""),
            )
        )
    return Holdings({s: q for s, q in net.items() if q != 0.0}, tuple(orders))


@dataclass(frozen=True)
class ReconciliationReport:
    checked_at: float
    clean: bool
    missing_positions: list[dict[str, Any]]
    unexpected_positions: list[dict[str, Any]]
    quantity_mismatches: list[dict[str, Any]]
    missing_orders: list[dict[str, Any]]
    unexpected_orders: list[dict[str, Any]]
    unknown_outcomes_resolved: list[dict[str, Any]]
    matched_by_fingerprint: list[dict[str, Any]] = field(default_factory=list)
    venue: str = ""

    def __post_init__(self) -> None:
        at = self.checked_at
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise ValueError(f"checked_at must be a finite number, got {at!r}")
        object.__setattr__(self, "checked_at", float(at))
        if not isinstance(self.clean, bool):
            raise ValueError(f"clean must be a bool, got {self.clean!r}")
        if not isinstance(self.venue, str):
            raise ValueError(f"venue must be a string, got {self.venue!r}")
        for name, required in _REQUIRED_KEYS.items():
            entries = getattr(self, name)
            if not isinstance(entries, list | tuple):
                raise ValueError(f"{name} must be a list, got {type(entries).__name__}")
            copied = []
            for i, entry in enumerate(entries):
                if not isinstance(entry, Mapping):
                    raise ValueError(f"{name}[{i}] must be an object, got {entry!r}")
                lacking = [k for k in required if k not in entry]
                if lacking:
                    raise ValueError(f"{name}[{i}] lacks {', '.join(lacking)}: {dict(entry)!r}")
                copied.append(_json_safe(entry))
            # Own copies in JSON-safe form: to_dict/from_dict then round-trip exactly.
            object.__setattr__(self, name, copied)
        if self.clean != (self.mismatch_count == 0):
            raise ValueError(
                f"clean={self.clean} contradicts {self.mismatch_count} listed mismatches"
            )

    @property
    def mismatch_count(self) -> int:
        return sum(len(getattr(self, name)) for name in MISMATCH_FIELDS)

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dict(_json_safe(asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReconciliationReport:
        """Inverse of ``to_dict``. Unknown keys are ignored, so a newer writer's report still
        loads; anything missing, mistyped or self-contradictory raises ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a reconciliation report must be an object, got {data!r}")
        known = {f.name for f in fields(cls)}
        required = known - {"matched_by_fingerprint", "venue"}
        lacking = sorted(required - data.keys())
        if lacking:
            raise ValueError(f"reconciliation report lacks {', '.join(lacking)}")
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ValueError(f"malformed reconciliation report: {exc}") from exc

    # -- rendering -----------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: "clean", or the count and each category with its first few items."""
        resolved, by_print = len(self.unknown_outcomes_resolved), len(self.matched_by_fingerprint)
        notes = [_count(resolved, "unknown outcome") + " resolved"] if resolved else []
        notes += [_count(by_print, "order") + " matched by fingerprint"] if by_print else []
        if self.clean:
            return "clean" + (f" ({', '.join(notes)})" if notes else "")
        parts = []
        for name, noun in _CATEGORY_NOUNS.items():
            entries = getattr(self, name)
            if entries:
                items = [_short_item(name, e) for e in entries[:_SUMMARY_ITEMS]]
                if len(entries) > _SUMMARY_ITEMS:
                    items.append("…")
                parts.append(f"{_count(len(entries), noun)} ({', '.join(items)})")
        line = f"{_count(self.mismatch_count, 'mismatch')}: {', '.join(parts)}"
        return line + (f"; {', '.join(notes)}" if notes else "")

    def lines(self) -> list[str]:
        """Multi-line rendering for ``status`` and ``preflight``: every entry, full ids."""
        when = datetime.fromtimestamp(self.checked_at, tz=UTC).isoformat(timespec="seconds")
        venue = f" with {self.venue}" if self.venue else ""
        head = "clean" if self.clean else _count(self.mismatch_count, "mismatch")
        out = [f"reconciliation{venue} at {when}: {head}"]
        for name, label in _LINE_LABELS.items():
            out.extend(f"  {label:<24} {_detail(name, e)}" for e in getattr(self, name))
        return out


_LINE_LABELS = _CATEGORY_NOUNS | {
    "matched_by_fingerprint": "matched by fingerprint",
    "unknown_outcomes_resolved": "unknown outcome resolved",
}


def reconcile(
    expected: Holdings,
    live: Holdings,
    *,
    checked_at: float,
    unknown_outcomes_resolved: Iterable[Mapping[str, Any]] = (),
    quantity_tolerance: float = QTY_EPS,
    venue: str = "",
) -> ReconciliationReport:
    """Diff the journal's holdings (``expected``) against the venue's (``live``)."""
    if not (math.isfinite(quantity_tolerance) and quantity_tolerance >= 0):
        raise ValueError(f"quantity_tolerance must be finite and >= 0, got {quantity_tolerance}")
    tol = quantity_tolerance
    missing_pos, unexpected_pos, mismatches = _diff_positions(
        expected.positions, live.positions, tol
    )
    missing_orders, unexpected_orders, order_mismatches, by_fingerprint = _diff_orders(
        expected.open_orders, live.open_orders, tol
    )
    mismatches += order_mismatches
    lists = (missing_pos, unexpected_pos, mismatches, missing_orders, unexpected_orders)
    return ReconciliationReport(
        checked_at=checked_at,
        clean=not any(lists),
        missing_positions=missing_pos,
        unexpected_positions=unexpected_pos,
        quantity_mismatches=mismatches,
        missing_orders=missing_orders,
        unexpected_orders=unexpected_orders,
        unknown_outcomes_resolved=[dict(u) for u in unknown_outcomes_resolved],
        matched_by_fingerprint=by_fingerprint,
        venue=venue,
    )


def adopted_positions(report: ReconciliationReport, expected: Holdings) -> dict[str, float]:
    """The net positions to carry on with when the operator chose not to fail on a mismatch:
    the venue's, i.e. the journal's corrected by every position difference the report names."""
    positions = dict(expected.positions)
    for e in report.missing_positions:
        positions.pop(e["symbol"], None)
    for e in report.unexpected_positions:
        positions[e["symbol"]] = float(e["venue"])
    for e in report.quantity_mismatches:
        if e.get("kind", "position") == "position":
            positions[e["symbol"]] = float(e["venue"])
    return {s: q for s, q in positions.items() if q != 0.0}


# -- diffing ---------------------------------------------------------------------------------------

Entries = list[dict[str, Any]]


def _diff_positions(
    expected: Mapping[str, float], live: Mapping[str, float], tol: float
) -> tuple[Entries, Entries, Entries]:
    missing: Entries = []
    unexpected: Entries = []
    mismatches: Entries = []
    for symbol in sorted(set(expected) | set(live)):
        ours, theirs = float(expected.get(symbol, 0.0)), float(live.get(symbol, 0.0))
        if abs(ours - theirs) <= tol:
            continue
        if abs(theirs) <= tol:
            missing.append({"symbol": symbol, "expected": ours})
        elif abs(ours) <= tol:
            unexpected.append({"symbol": symbol, "venue": theirs})
        else:
            diff = theirs - ours
            mismatches.append(
                dict(kind="position", symbol=symbol, expected=ours, venue=theirs, difference=diff)
            )
    return missing, unexpected, mismatches


def _diff_orders(
    expected: Iterable[AnyOrder], live: Iterable[AnyOrder], tol: float
) -> tuple[Entries, Entries, Entries, Entries]:
    ours: dict[str, AnyOrder] = {}
    for o in expected:
        if o.client_order_id is not None:
            ours.setdefault(o.client_order_id, o)
    matched_ids: set[str] = set()
    missing: Entries = []
    unexpected: Entries = []
    mismatches: Entries = []
    unknown_live: list[AnyOrder] = []
    for theirs in live:
        coid = theirs.client_order_id
        mine = ours.get(coid) if coid is not None and coid not in matched_ids else None
        if mine is None or coid is None:
            unknown_live.append(theirs)
            continue
        matched_ids.add(coid)
        if not _same_terms(mine, theirs):
            # Same id, different order: neither side's version can be trusted over the other.
            note = "the venue has this id with different terms"
            missing.append(asdict(mine) | {"note": note})
            unexpected.append(asdict(theirs) | {"note": note})
        elif abs(mine.remaining - theirs.remaining) > tol:
            ours_left, theirs_left = mine.remaining, theirs.remaining
            mismatches.append(
                dict(kind="order", client_order_id=coid, symbol=mine.symbol, expected=ours_left)
                | dict(venue=theirs_left, difference=theirs_left - ours_left)
            )
    # One-to-one, first come first served in the order each side listed them.
    candidates = [o for o in ours.values() if o.client_order_id not in matched_ids]
    by_fingerprint: Entries = []
    for theirs in unknown_live:
        mine = next((c for c in candidates if _same_fingerprint(c, theirs, tol)), None)
        if mine is None:
            unexpected.append(asdict(theirs))
            continue
        candidates.remove(mine)
        venue_order_id = getattr(theirs, "venue_order_id", None)
        by_fingerprint.append(
            dict(client_order_id=mine.client_order_id, venue_order_id=venue_order_id)
            | dict(venue_client_order_id=theirs.client_order_id)
        )
    missing.extend(asdict(o) for o in candidates)
    return missing, unexpected, mismatches, by_fingerprint


def _same_terms(a: AnyOrder, b: AnyOrder) -> bool:
    return (
        a.symbol == b.symbol
        and a.side == b.side
        and a.order_type == b.order_type
        and _same_price(a.limit_price, b.limit_price)
    )


def _same_fingerprint(a: AnyOrder, b: AnyOrder, tol: float) -> bool:
    """Fingerprint: symbol, side, remaining quantity, order type and limit price."""
    return _same_terms(a, b) and abs(a.remaining - b.remaining) <= tol


def _same_price(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=_PRICE_REL_TOL, abs_tol=1e-12)


# -- helpers ---------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum becomes its plain value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def _count(n: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("h") else "s")
    return f"{n} {noun if n == 1 else plural}"


def _num(value: Any, *, sign: bool = True) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:+.10g}" if sign else f"{value:.10g}"
    return str(value)


def _short_id(coid: Any) -> str:
    text = str(coid) if coid else "?"
    return text if len(text) <= _SHORT_ID + 2 else text[:_SHORT_ID] + "…"


def _short_item(category: str, e: Mapping[str, Any]) -> str:
    if category == "missing_positions":
        return f"{e['symbol']} {_num(e['expected'])}"
    if category == "unexpected_positions":
        return f"{e['symbol']} {_num(e['venue'])}"
    if category == "quantity_mismatches":
        if e.get("kind") == "order":
            coid = _short_id(e.get("client_order_id"))
            return (
                f"{coid} {_num(e['expected'], sign=False)} vs venue {_num(e['venue'], sign=False)}"
            )
        return f"{e['symbol']} {_num(e['expected'])} vs venue {_num(e['venue'])}"
    return _short_id(e.get("client_order_id") or e.get("venue_order_id"))


def _detail(category: str, e: Mapping[str, Any]) -> str:
    if category == "missing_positions":
        return f"{e['symbol']}: journal {_num(e['expected'])}, venue flat"
    if category == "unexpected_positions":
        return f"{e['symbol']}: venue {_num(e['venue'])}, journal flat"
    if category == "quantity_mismatches" and e.get("kind") == "order":
        return (
            f"order {e.get('client_order_id')} ({e['symbol']}): remaining journal "
            f"{_num(e['expected'], sign=False)}, venue {_num(e['venue'], sign=False)}"
        )
    if category == "quantity_mismatches":
        return (
            f"{e['symbol']}: journal {_num(e['expected'])}, venue {_num(e['venue'])} "
            f"(venue - journal = {_num(e['difference'])})"
        )
    if category == "matched_by_fingerprint":
        return f"{e['client_order_id']} is venue order {e['venue_order_id']} (our id not reported)"
    if category == "unknown_outcomes_resolved":
        return f"{e['client_order_id']}: {e.get('outcome', '?')}"
    ours = category == "missing_orders"
    ids = " / ".join(str(i) for i in (e["client_order_id"], e.get("venue_order_id")) if i)
    qty = _num(e["remaining"], sign=False) if e.get("remaining") is not None else "?"
    terms = f"{e['symbol'] or '?'} {e.get('side') or '?'} {qty} {e.get('order_type') or '?'}"
    if e.get("limit_price") is not None:
        terms += f" @ {_num(e['limit_price'], sign=False)}"
    where = f"strategy {e.get('strategy') or '?'}, journal" if ours else "venue"
    default_note = "not open at the venue" if ours else "not in the journal"
    return (
        f"{ids or '?'} ({terms}; {where} status {e.get('status') or '?'}): "
        f"{e.get('note') or default_note}"
    )
