"""Deterministic identifiers.

An intent id is a hash of who asked (deployment, strategy), what caused it (the trigger: a bar's
symbol and open time, a fill id, a start) and its position among the intents that one trigger
produced. Replaying the same bar history therefore yields the same ids, which is what lets the
broker refuse to submit the same intent twice after a restart.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

INTENT_ID_HEX = 24
CLIENT_ORDER_PREFIX = "tp"


def intent_id(deployment: str, strategy: str, trigger: str, ordinal: int) -> str:
    raw = f"{deployment}\x1f{strategy}\x1f{trigger}\x1f{ordinal}".encode()
    return hashlib.sha256(raw).hexdigest()[:INTENT_ID_HEX]


def client_order_id(intent_id_: str) -> str:
    """26 alphanumerics: fits OKX clOrdId (32), Binance newClientOrderId (36) and IB orderRef."""
    return f"{CLIENT_ORDER_PREFIX}{intent_id_}"


def intent_id_from_client_order_id(coid: str) -> str | None:
    expected_len = len(CLIENT_ORDER_PREFIX) + INTENT_ID_HEX
    if coid.startswith(CLIENT_ORDER_PREFIX) and len(coid) == expected_len:
        return coid[len(CLIENT_ORDER_PREFIX) :]
    return None


# How a trigger starts: what made a strategy emit (a bar or a fill; start and stop are per run).
BAR_TRIGGER = "bar:"
FILL_TRIGGER = "fill:"


def bar_trigger(symbol: str, ts: datetime) -> str:
    global _last_stamp
    ts_, text = _last_stamp
    if ts_ is not ts:  # the same object: bars of one bar time share theirs (a backtest's)
        text = ts.isoformat()
        _last_stamp = (ts, text)
    return f"{BAR_TRIGGER}{symbol}:{text}"


# The last bar time's ISO form, keyed by identity (an equal time in another offset prints
# differently). A backtest asks for the same bar time once per intent.
_last_stamp: tuple[datetime | None, str] = (None, "")


def bar_trigger_time(trigger: str | None) -> datetime | None:
    """The open time of the bar in a ``bar_trigger`` (``bar:<symbol>:<iso>``); None for any
    other trigger or one that does not parse."""
    if not trigger or not trigger.startswith(BAR_TRIGGER):
        return None
    try:
        return datetime.fromisoformat(trigger.split(":", 2)[2])
    except (IndexError, ValueError):
        return None


def fill_trigger(fill_id: str) -> str:
    return f"{FILL_TRIGGER}{fill_id}"


def start_trigger(run_id: str) -> str:
    """One per deployment run: an actor restart inside the same run re-derives the same ids."""
    return f"start:{run_id}"


def stop_trigger(run_id: str) -> str:
    return f"stop:{run_id}"


def unique_event_id(kind: str) -> str:
    """For events with no natural identity (health changes, restarts)."""
    return f"{kind}/{uuid.uuid4().hex}"
