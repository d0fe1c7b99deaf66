"""What the IB adapter checks before it acts on an ib_async object.

ib_async's decoder never fails loudly: a frame with a field missing or unparsable is logged and
dropped, or decoded with that field at its dataclass default (``""``, ``0``, ``0.0``, the epoch
for a time) or TWS's "unset" marker (``UNSET_DOUBLE``, ``UNSET_INTEGER``). A default looks like a
value: an execution without a side would read as a sell, one without a price as a fill at 0.
So each object is checked here first; one that lacks what we would act on is rejected with a
reason naming the message kind and the field, never turned into a fill, a status or a position.
Pure: duck-typed attribute reads, no IO.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from tradeplane.core.errors import TransientError

UNSET_DOUBLE = 1.7976931348623157e308  # TWS's "no value" for a double (ib_async.util)
UNSET_INTEGER = 2**31 - 1  # ... and for an integer
EPOCH_YEAR = 1970  # ib_async's default for a time it could not parse
SIDES = {"BOT": "buy", "SLD": "sell"}  # TWS's execution sides
ACTIONS = {"BUY": "buy", "SELL": "sell"}  # and order actions
RAW_CHARS = 300


class IbMessageUnusable(TransientError):
    """TWS sent an object the adapter must not act on (a field missing or defaulted); the
    answer is asked again, never guessed."""


def _get(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except Exception:  # a missing or hostile attribute is a missing field
        return None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _number(value: Any, *, positive: bool) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    if not math.isfinite(value) or value == UNSET_DOUBLE:
        return False
    return value > 0 if positive else True


def _an_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < UNSET_INTEGER


def venue_order_id(obj: Any) -> str | None:
    """IB's permanent id, else its order id, of an ``Order``/``Execution``/``OrderStatus``;
    None when both are missing (0) or unset."""
    for name in ("permId", "orderId"):
        value = _get(obj, name)
        if _an_id(value):
            return str(value)
    return None


def describe(obj: Any) -> str:
    """A bounded text of what was rejected, for the journal."""
    try:
        text = repr(obj)
    except Exception as exc:
        text = f"<{type(obj).__name__}: repr failed: {type(exc).__name__}>"
    return text if len(text) <= RAW_CHARS else text[: RAW_CHARS - 3] + "..."


def status_problem(trade: Any) -> str | None:
    """Why an order status update (a ``Trade``) must not change our order, or None."""
    order, status = _get(trade, "order"), _get(trade, "orderStatus")
    if order is None or status is None:
        return "orderStatus: no order or status"
    coid = _get(order, "orderRef")
    if not _text(coid):
        return "orderStatus: orderRef missing"
    if not _text(_get(status, "status")):
        return f"orderStatus {coid}: status missing"
    if venue_order_id(order) is None and venue_order_id(status) is None:
        return f"orderStatus {coid}: permId and orderId missing"
    log = _get(trade, "log")
    if not isinstance(log, list):
        return f"orderStatus {coid}: log is not a list"
    return None


def execution_problem(fill: Any) -> str | None:
    """Why an execution with its commission (a ``Fill``) must not become a fill, or None."""
    ex, report, contract = (_get(fill, n) for n in ("execution", "commissionReport", "contract"))
    if ex is None:
        return "execDetails: no execution"
    coid = _get(ex, "orderRef")
    where = f"execDetails {coid}" if _text(coid) else "execDetails"
    if not _text(coid):
        return "execDetails: orderRef missing"
    exec_id = _get(ex, "execId")
    if not _text(exec_id):
        return f"{where}: execId missing"
    where = f"{where} {exec_id}"
    if _get(ex, "side") not in SIDES:
        return f"{where}: side {describe(_get(ex, 'side'))[:20]} is neither BOT nor SLD"
    for name in ("shares", "price"):
        if not _number(_get(ex, name), positive=True):
            return f"{where}: {name} missing or not > 0 ({describe(_get(ex, name))[:30]})"
    if venue_order_id(ex) is None:
        return f"{where}: permId and orderId missing"
    ts = _get(ex, "time")
    if not isinstance(ts, datetime) or ts.year <= EPOCH_YEAR or ts.tzinfo is None:
        return f"{where}: time missing"
    if contract is None or not _text(_get(contract, "symbol")):
        return f"{where}: contract symbol missing"
    if report is None or _get(report, "execId") != exec_id:
        return f"{where}: commissionReport missing"
    commission = _get(report, "commission")
    if not _number(commission, positive=False) or commission < 0:
        return f"{where}: commission missing or negative ({describe(commission)[:30]})"
    return None


def position_problem(position: Any) -> str | None:
    """Why a ``Position`` row must not be taken as the account's position, or None."""
    contract = _get(position, "contract")
    if contract is None or not _text(_get(contract, "symbol")):
        return "position: contract symbol missing"
    symbol = _get(contract, "symbol")
    if not _number(_get(position, "position"), positive=False):
        return f"position {symbol}: position missing"
    if not _number(_get(position, "avgCost"), positive=False):
        return f"position {symbol}: avgCost missing"
    return None


def order_state_problem(trade: Any) -> str | None:
    """Why an open or completed order (a ``Trade``) must not be reported as our order's state
    (lookups and reconciliation), or None."""
    order, status, contract = (_get(trade, n) for n in ("order", "orderStatus", "contract"))
    if order is None or status is None:
        return "openOrder: no order or status"
    name = _get(order, "orderRef") or venue_order_id(order) or "?"
    where = f"openOrder {name}"
    if venue_order_id(order) is None:
        return f"{where}: permId and orderId missing"
    if contract is None or not _text(_get(contract, "symbol")):
        return f"{where}: contract symbol missing"
    if not isinstance(_get(order, "action"), str) or order.action.upper() not in ACTIONS:
        return f"{where}: action {describe(_get(order, 'action'))[:20]} is neither BUY nor SELL"
    if not _number(_get(order, "totalQuantity"), positive=True):
        return f"{where}: totalQuantity missing or not > 0"
    if _get(order, "orderType") == "LMT" and not _number(_get(order, "lmtPrice"), positive=True):
        return f"{where}: lmtPrice missing on a limit order"
    if not isinstance(_get(status, "status"), str):
        return f"{where}: status missing"
    fills = _get(trade, "fills")
    for fill in fills if isinstance(fills, list) else ():
        commission = _get(_get(fill, "commissionReport"), "commission")
        if not _number(commission, positive=False) or commission < 0:
            return f"{where}: a fill's commission is missing or negative"
    for name in ("filled", "avgFillPrice"):
        value = _get(status, name)
        if value is not None and not _number(value or 0.0, positive=False):
            return f"{where}: {name} is not a finite number"
    return None
