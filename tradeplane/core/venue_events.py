"""Checks on messages from a venue, made at the broker's edge before anything acts on them.

A venue (or its adapter) can send garbage: a fill without a price, an unknown kind, a dict where
an event belongs. Acting on one could book a phantom fill or move the stream cursor past a real
event, so each message is checked here and a broken one is journaled and dropped. Duck-typed:
any object with the ``VenueEvent`` attributes passes, so real-venue adapters need not import the
simulator. Pure, no IO.
"""

from __future__ import annotations

import math
from typing import Any

from tradeplane.protocol.events import VenueEventKind

VENUE_EVENT_KINDS: frozenset[str] = frozenset(VenueEventKind)
_EVENT_ATTRS = ("seq", "kind", "client_order_id", "venue_order_id", "ts", "fill")
_FILL_ATTRS = ("fill_id", "client_order_id", "quantity", "price", "fee")
MAX_REPR_CHARS = 1000
_MAX_FIELD_CHARS = 200


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: Any) -> str:
    text = _safe_repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_venue_event(ev: object) -> str | None:
    """Why ``ev`` is not a usable venue event, or None when it is."""
    missing = [a for a in _EVENT_ATTRS if not hasattr(ev, a)]
    if missing:
        return f"not a venue event: {type(ev).__name__} lacks {', '.join(missing)}"
    e: Any = ev
    if not isinstance(e.seq, int) or isinstance(e.seq, bool) or e.seq < 0:
        return f"seq must be an integer >= 0, got {_short(e.seq)}"
    if not isinstance(e.kind, str) or e.kind not in VENUE_EVENT_KINDS:
        return f"unknown event kind {_short(e.kind)}"
    if not isinstance(e.client_order_id, str) or not e.client_order_id:
        return (
            f"{e.kind}: client_order_id must be a non-empty string, got {_short(e.client_order_id)}"
        )
    if e.venue_order_id is not None and not isinstance(e.venue_order_id, str):
        return f"{e.kind}: venue_order_id must be a string or None, got {_short(e.venue_order_id)}"
    if not _is_real(e.ts):
        return f"{e.kind}: ts must be a finite number, got {_short(e.ts)}"
    if e.kind == VenueEventKind.ORDER_FILLED:
        return _check_fill(e.fill, e.client_order_id)
    return None


def _check_fill(fill: Any, client_order_id: str) -> str | None:
    if fill is None:
        return "order_filled without a fill"
    missing = [a for a in _FILL_ATTRS if not hasattr(fill, a)]
    if missing:
        return f"order_filled: fill {type(fill).__name__} lacks {', '.join(missing)}"
    if not isinstance(fill.fill_id, str) or not fill.fill_id:
        return f"order_filled: fill_id must be a non-empty string, got {_short(fill.fill_id)}"
    if fill.client_order_id != client_order_id:
        return (
            f"order_filled: fill {fill.fill_id} is for order {_short(fill.client_order_id)}, "
            f"not {client_order_id!r}"
        )
    for name in ("price", "quantity"):
        value = getattr(fill, name)
        if not _is_real(value) or value <= 0:
            return (
                f"order_filled: fill {fill.fill_id} {name} must be finite and > 0, "
                f"got {_short(value)}"
            )
    if not _is_real(fill.fee) or fill.fee < 0:
        return (
            f"order_filled: fill {fill.fill_id} fee must be finite and >= 0, got {_short(fill.fee)}"
        )
    return None


def describe_raw(ev: object) -> dict[str, Any]:
    """A JSON-safe, size-bounded description of a rejected message, for the journal."""
    text = _safe_repr(ev)
    if len(text) > MAX_REPR_CHARS:
        text = text[: MAX_REPR_CHARS - 3] + "..."
    out: dict[str, Any] = {"type": type(ev).__name__, "repr": text}
    for name in ("seq", "kind", "client_order_id"):
        try:
            value = ev.get(name) if isinstance(ev, dict) else getattr(ev, name, None)
        except Exception:  # a hostile attribute must not stop the journaling either
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
        elif isinstance(value, str):
            out[name] = value[:_MAX_FIELD_CHARS]
    return out


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not stop the journaling of the message
        return f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"
