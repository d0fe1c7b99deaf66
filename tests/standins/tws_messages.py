"""Wire codec for the fake TWS: frames, placeOrder parsing and server-message encoders.

Every layout mirrors ib_async 2.1.0 (``client.py`` for what the client sends, ``decoder.py``
for what it reads) for server versions 176..178. Order and contract values travel as the
strings the client sent, keyed by ib_async attribute names, so an order is echoed back in
``openOrder``/``completedOrder`` exactly as it was placed (``orderRef`` included).
"""

from __future__ import annotations

import math
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ib_async.order import OrderCondition

UNSET_DOUBLE_STR = "1.7976931348623157E308"  # how TWS writes an unset double
UNSET_DOUBLE = 1.7976931348623157e308
Fields = list[str]

# The 12 contract fields the client writes for a Contract (client.py, FORMAT_HANDLERS).
CONTRACT_KEYS = (
    "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
    "multiplier", "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass",
)  # fmt: skip
# What the server writes for a contract in openOrder/completedOrder/execDetails/position.
CONTRACT_OUT = tuple(k for k in CONTRACT_KEYS if k != "primaryExchange")

_PLACE_1 = (
    "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif", "ocaGroup",
    "account", "openClose", "origin", "orderRef", "transmit", "parentId", "blockOrder",
    "sweepToFill", "displaySize", "triggerMethod", "outsideRth", "hidden",
)  # fmt: skip
_PLACE_2 = (
    "discretionaryAmt", "goodAfterTime", "goodTillDate", "faGroup", "faMethod", "faPercentage",
)  # fmt: skip
_PLACE_3 = (
    "modelCode", "shortSaleSlot", "designatedLocation", "exemptCode", "ocaType", "rule80A",
    "settlingFirm", "allOrNone", "minQty", "percentOffset", "eTradeOnly", "firmQuoteOnly",
    "nbboPriceCap", "auctionStrategy", "startingPrice", "stockRefPrice", "delta",
    "stockRangeLower", "stockRangeUpper", "overridePercentageConstraints", "volatility",
    "volatilityType", "deltaNeutralOrderType", "deltaNeutralAuxPrice",
)  # fmt: skip
_DN_FULL = (
    "deltaNeutralConId", "deltaNeutralSettlingFirm", "deltaNeutralClearingAccount",
    "deltaNeutralClearingIntent", "deltaNeutralOpenClose", "deltaNeutralShortSale",
    "deltaNeutralShortSaleSlot", "deltaNeutralDesignatedLocation",
)  # fmt: skip
_DN_COMPLETED = (
    "deltaNeutralConId", "deltaNeutralShortSale", "deltaNeutralShortSaleSlot",
    "deltaNeutralDesignatedLocation",
)  # fmt: skip
_PLACE_4 = (
    "continuousUpdate", "referencePriceType", "trailStopPrice", "trailingPercent",
    "scaleInitLevelSize", "scaleSubsLevelSize", "scalePriceIncrement",
)  # fmt: skip
_SCALE = (
    "scalePriceAdjustValue", "scalePriceAdjustInterval", "scaleProfitOffset", "scaleAutoReset",
    "scaleInitPosition", "scaleInitFillQty", "scaleRandomPercent",
)  # fmt: skip
_PEG_BENCH = (
    "referenceContractId", "isPeggedChangeAmountDecrease", "peggedChangeAmount",
    "referenceChangeAmount", "referenceExchangeId",
)  # fmt: skip
_PLACE_8 = (
    "adjustedOrderType", "triggerPrice", "lmtPriceOffset", "adjustedStopPrice",
    "adjustedStopLimitPrice", "adjustedTrailingAmount", "adjustableTrailingUnit", "extOperator",
    "softDollarTierName", "softDollarTierVal", "cashQty", "mifid2DecisionMaker",
    "mifid2DecisionAlgo", "mifid2ExecutionTrader", "mifid2ExecutionAlgo",
    "dontUseAutoPriceForHedge", "isOmsContainer", "discretionaryUpToLimitPrice",
    "usePriceMgmtAlgo",
)  # fmt: skip
_V170_TAIL = (
    "minTradeQty", "minCompeteSize", "competeAgainstBestOffset", "midOffsetAtWhole",
    "midOffsetAtHalf",
)  # fmt: skip
_OPEN_1 = (
    "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif", "ocaGroup",
    "account", "openClose", "origin", "orderRef", "clientId", "permId", "outsideRth", "hidden",
    "discretionaryAmt", "goodAfterTime", "_sharesAllocation", "faGroup", "faMethod",
    "faPercentage",
)  # fmt: skip
_OPEN_2 = (
    "modelCode", "goodTillDate", "rule80A", "percentOffset", "settlingFirm", "shortSaleSlot",
    "designatedLocation", "exemptCode", "auctionStrategy", "startingPrice", "stockRefPrice",
    "delta", "stockRangeLower", "stockRangeUpper", "displaySize", "blockOrder", "sweepToFill",
    "allOrNone", "minQty", "ocaType", "eTradeOnly", "firmQuoteOnly", "nbboPriceCap",
    "parentId", "triggerMethod", "volatility", "volatilityType", "deltaNeutralOrderType",
    "deltaNeutralAuxPrice",
)  # fmt: skip
_OPEN_STATE = (
    "status", "initMarginBefore", "maintMarginBefore", "equityWithLoanBefore",
    "initMarginChange", "maintMarginChange", "equityWithLoanChange", "initMarginAfter",
    "maintMarginAfter", "equityWithLoanAfter", "commission", "minCommission", "maxCommission",
    "commissionCurrency", "warningText",
)  # fmt: skip
_OPEN_4 = (
    "adjustedOrderType", "triggerPrice", "trailStopPrice", "lmtPriceOffset",
    "adjustedStopPrice", "adjustedStopLimitPrice", "adjustedTrailingAmount",
    "adjustableTrailingUnit", "softDollarTierName", "softDollarTierVal",
    "softDollarTierDisplayName", "cashQty", "dontUseAutoPriceForHedge", "isOmsContainer",
    "discretionaryUpToLimitPrice", "usePriceMgmtAlgo",
)  # fmt: skip
_DONE_1 = (
    "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif", "ocaGroup",
    "account", "openClose", "origin", "orderRef", "permId", "outsideRth", "hidden",
    "discretionaryAmt", "goodAfterTime", "faGroup", "faMethod", "faPercentage",
)  # fmt: skip
_DONE_2 = (
    "modelCode", "goodTillDate", "rule80A", "percentOffset", "settlingFirm", "shortSaleSlot",
    "designatedLocation", "exemptCode", "startingPrice", "stockRefPrice", "delta",
    "stockRangeLower", "stockRangeUpper", "displaySize", "sweepToFill", "allOrNone", "minQty",
    "ocaType", "triggerMethod", "volatility", "volatilityType", "deltaNeutralOrderType",
    "deltaNeutralAuxPrice",
)  # fmt: skip
_DONE_4 = (
    "trailStopPrice", "lmtPriceOffset", "cashQty", "dontUseAutoPriceForHedge",
    "isOmsContainer", "autoCancelDate", "filledQuantity", "refFuturesConId",
    "autoCancelParent", "shareholder", "imbalanceOnly", "routeMarketableToBbo", "parentPermId",
    "completedTime", "completedStatus",
)  # fmt: skip


def frame(fields: Iterable[object]) -> bytes:
    """One length-prefixed message: each field followed by NUL."""
    payload = "".join(f"{f}\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def split_payload(payload: bytes) -> Fields:
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def num(value: float) -> str:
    """Format a number as TWS does: integral values without a fraction, unset as the max."""
    if value >= UNSET_DOUBLE or math.isinf(value):
        return UNSET_DOUBLE_STR
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def to_float(text: str, default: float = 0.0) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


class _Reader:
    """Sequential field reader that yields "" past the end (tolerates short messages)."""

    def __init__(self, fields: Sequence[str]) -> None:
        self._fields = fields
        self._pos = 0

    def next(self) -> str:
        if self._pos >= len(self._fields):
            return ""
        self._pos += 1
        return self._fields[self._pos - 1]

    def take(self, keys: Iterable[str], into: dict[str, str]) -> None:
        for key in keys:
            into[key] = self.next()

    def count(self) -> int:
        text = self.next()
        return int(text) if text.lstrip("-").isdigit() else 0


@dataclass
class ParsedOrder:
    """A decoded placeOrder message."""

    order_id: int
    contract: dict[str, str]
    order: dict[str, str]
    algo_params: list[tuple[str, str]] = field(default_factory=list)
    conditions: list[list[str]] = field(default_factory=list)
    is_bag: bool = False


def read_contract(reader: _Reader) -> dict[str, str]:
    contract: dict[str, str] = {}
    reader.take(CONTRACT_KEYS, contract)
    return contract


def parse_contract(fields: Sequence[str]) -> dict[str, str]:
    return read_contract(_Reader(fields))


def parse_place_order(fields: Sequence[str], version: int) -> ParsedOrder:
    """Mirror of ib_async ``Client.placeOrder`` (fields[0] is the message id 3)."""
    r = _Reader(fields[1:])
    order_id = int(r.next() or 0)
    contract = read_contract(r)
    o: dict[str, str] = {}
    r.take(("secIdType", "secId", *_PLACE_1), o)
    parsed = ParsedOrder(order_id, contract, o, is_bag=contract["secType"] == "BAG")
    if parsed.is_bag:
        for _ in range(r.count()):
            r.take(("_leg",) * 8, {})
        for _ in range(r.count()):
            r.next()
        for _ in range(r.count()):
            r.take(("_tag", "_value"), {})
    r.next()  # deprecated sharesAllocation
    r.take(_PLACE_2, o)
    if version < 177:
        o["faProfile"] = r.next()
    r.take(_PLACE_3, o)
    if o["deltaNeutralOrderType"]:
        r.take(_DN_FULL, o)
    r.take(_PLACE_4, o)
    if 0 < to_float(o["scalePriceIncrement"], UNSET_DOUBLE) < UNSET_DOUBLE:
        r.take(_SCALE, o)
    r.take(("scaleTable", "activeStartTime", "activeStopTime", "hedgeType"), o)
    if o["hedgeType"]:
        o["hedgeParam"] = r.next()
    r.take(("optOutSmartRouting", "clearingAccount", "clearingIntent", "notHeld"), o)
    if r.next() == "1":
        r.take(("dncConId", "dncDelta", "dncPrice"), o)
    o["algoStrategy"] = r.next()
    if o["algoStrategy"]:
        parsed.algo_params = [(r.next(), r.next()) for _ in range(r.count())]
    r.take(("algoId", "whatIf", "orderMiscOptions", "solicited", "randomizeSize"), o)
    o["randomizePrice"] = r.next()
    if o["orderType"] in {"PEG BENCH", "PEGBENCH"}:
        r.take(_PEG_BENCH, o)
    for _ in range(r.count()):
        cond_type = r.next()
        cls = OrderCondition.createClass(int(cond_type))
        n = len(cls.__dataclass_fields__) - 1
        parsed.conditions.append([cond_type] + [r.next() for _ in range(n)])
    if parsed.conditions:
        r.take(("conditionsIgnoreRth", "conditionsCancelOrder"), o)
    r.take(_PLACE_8, o)
    for min_version, key in (
        (158, "duration"),
        (160, "postToAts"),
        (162, "autoCancelParent"),
        (166, "advancedErrorOverride"),
        (169, "manualOrderTime"),
    ):
        if version >= min_version:
            o[key] = r.next()
    if version >= 170:
        if contract["exchange"] == "IBKRATS":
            o["minTradeQty"] = r.next()
        if o["orderType"] in {"PEG BEST", "PEGBEST"}:
            r.take(("minCompeteSize", "competeAgainstBestOffset"), o)
            if o["competeAgainstBestOffset"] == "Infinite":
                r.take(("midOffsetAtWhole", "midOffsetAtHalf"), o)
        elif o["orderType"] in {"PEG MID", "PEGMID"}:
            r.take(("midOffsetAtWhole", "midOffsetAtHalf"), o)
    return parsed


@dataclass
class WireOrder:
    """What the encoders need to echo an order (values are wire strings)."""

    contract: dict[str, str]
    order: dict[str, str]
    algo_params: list[tuple[str, str]] = field(default_factory=list)
    conditions: list[list[str]] = field(default_factory=list)


def _algo_and_conditions(o: WireOrder, get: dict[str, str]) -> tuple[Fields, Fields]:
    algo = [get.get("algoStrategy", "")]
    if algo[0]:
        algo.append(str(len(o.algo_params)))
        for tag, value in o.algo_params:
            algo += [tag, value]
    conds = [str(len(o.conditions))]
    for cond in o.conditions:
        conds += cond
    if o.conditions:
        conds += [get.get("conditionsIgnoreRth", "0"), get.get("conditionsCancelOrder", "0")]
    return algo, conds


def _common_mid(get: dict[str, str], dn_keys: Sequence[str]) -> Fields:
    out: Fields = []
    if get.get("deltaNeutralOrderType"):
        out += [get.get(k, "") for k in dn_keys]
    return out


def _scale_and_hedge(get: dict[str, str]) -> Fields:
    out = [get.get(k, "") for k in ("scaleInitLevelSize", "scaleSubsLevelSize")]
    increment = get.get("scalePriceIncrement", "")
    out.append(increment)
    if 0 < to_float(increment, UNSET_DOUBLE) < UNSET_DOUBLE:
        out += [get.get(k, "") for k in _SCALE]
    out.append(get.get("hedgeType", ""))
    if get.get("hedgeType"):
        out.append(get.get("hedgeParam", ""))
    return out


def _dnc(get: dict[str, str]) -> Fields:
    if get.get("dncConId"):
        return ["1", get["dncConId"], get.get("dncDelta", ""), get.get("dncPrice", "")]
    return ["0"]


def _pick(get: dict[str, str], keys: Iterable[str]) -> Fields:
    return [get.get(k, "") for k in keys]


def encode_open_order(o: WireOrder, order_id: int, extra: dict[str, str], version: int) -> Fields:
    """openOrder (msg 5) as decoder.openOrder reads it. ``extra`` overrides/adds values
    (clientId, permId, status, margin fields...)."""
    get = {**o.contract, **o.order, **extra}
    out: Fields = ["5", str(order_id), *_pick(get, CONTRACT_OUT), *_pick(get, _OPEN_1)]
    if version < 177:
        out.append(get.get("faProfile", ""))
    out += _pick(get, _OPEN_2) + _common_mid(get, _DN_FULL)
    out += _pick(get, ("continuousUpdate", "referencePriceType", "trailStopPrice"))
    out += _pick(get, ("trailingPercent", "basisPoints", "basisPointsType", "comboLegsDescrip"))
    out += ["0", "0", "0"]  # combo legs, order combo legs, smart combo routing params
    out += _scale_and_hedge(get)
    out += _pick(get, ("optOutSmartRouting", "clearingAccount", "clearingIntent", "notHeld"))
    out += _dnc(get)
    algo, conds = _algo_and_conditions(o, get)
    out += algo + _pick(get, ("solicited", "whatIf", *_OPEN_STATE))
    out += _pick(get, ("randomizeSize", "randomizePrice"))
    if get.get("orderType") in {"PEG BENCH", "PEGBENCH"}:
        out += _pick(get, _PEG_BENCH)
    out += conds + _pick(get, _OPEN_4)
    if version >= 159:
        out.append(get.get("duration", ""))
    if version >= 160:
        out.append(get.get("postToAts", ""))
    if version >= 162:
        out.append(get.get("autoCancelParent", ""))
    if version >= 170:
        out += _pick(get, _V170_TAIL)
    return out


def encode_completed_order(o: WireOrder, extra: dict[str, str], version: int) -> Fields:
    """completedOrder (msg 101) as decoder.completedOrder reads it."""
    get = {**o.contract, **o.order, **extra}
    out: Fields = ["101", *_pick(get, CONTRACT_OUT), *_pick(get, _DONE_1)]
    if version < 177:
        out.append(get.get("faProfile", ""))
    out += _pick(get, _DONE_2) + _common_mid(get, _DN_COMPLETED)
    out += _pick(get, ("continuousUpdate", "referencePriceType", "trailStopPrice"))
    out += [*_pick(get, ("trailingPercent", "comboLegsDescrip")), "0", "0", "0"]
    out += _scale_and_hedge(get)
    out += _pick(get, ("clearingAccount", "clearingIntent", "notHeld")) + _dnc(get)
    algo, conds = _algo_and_conditions(o, get)
    out += algo + _pick(get, ("solicited", "status", "randomizeSize", "randomizePrice"))
    if get.get("orderType") in {"PEG BENCH", "PEGBENCH"}:
        out += _pick(get, _PEG_BENCH)
    out += conds + _pick(get, _DONE_4)
    if version >= 170:
        out += _pick(get, _V170_TAIL)
    return out


def encode_order_status(
    order_id: int,
    status: str,
    filled: float,
    remaining: float,
    avg_price: float,
    perm_id: int,
    last_price: float,
    client_id: int,
    parent_id: str = "0",
) -> Fields:
    return [
        "3", str(order_id), status, num(filled), num(remaining), num(avg_price), str(perm_id),
        parent_id or "0", num(last_price), str(client_id), "", "0",
    ]  # fmt: skip


@dataclass
class WireExecution:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    contract: dict[str, str]
    time: str
    account: str
    exchange: str
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    currency: str
    realized_pnl: float | None


def encode_exec_details(req_id: int, ex: WireExecution, version: int) -> Fields:
    c = ex.contract
    out = ["11", str(req_id), str(ex.order_id), *_pick(c, CONTRACT_OUT), ex.exec_id, ex.time]
    out += [ex.account, ex.exchange, ex.side, num(ex.shares), num(ex.price), str(ex.perm_id)]
    out += [str(ex.client_id), "0", num(ex.cum_qty), num(ex.avg_price), ex.order_ref]
    out += ["", "", "", "2"]  # evRule, evMultiplier, modelCode, lastLiquidity (2 = removed)
    if version >= 178:
        out.append("0")  # pendingPriceRevision
    return out


def encode_commission(ex: WireExecution) -> Fields:
    pnl = UNSET_DOUBLE_STR if ex.realized_pnl is None else num(round(ex.realized_pnl, 6))
    return ["59", "1", ex.exec_id, num(ex.commission), ex.currency, pnl, UNSET_DOUBLE_STR, ""]


def encode_position(account: str, contract: dict[str, str], qty: float, avg: float) -> Fields:
    return ["61", "3", account, *_pick(contract, CONTRACT_OUT), num(qty), num(avg)]


def encode_portfolio(
    account: str, contract: dict[str, str], qty: float, price: float, avg: float
) -> Fields:
    keys = [k for k in CONTRACT_KEYS if k != "exchange"]  # updatePortfolio has no exchange
    value, unrealized = qty * price, (price - avg) * qty
    out = ["7", "8", *_pick(contract, keys), num(qty), num(price), num(value), num(avg)]
    return [*out, num(round(unrealized, 6)), "0", account]


def encode_error(req_id: int, code: int, msg: str, version: int, advanced: str = "") -> Fields:
    out = ["4", "2", str(req_id), str(code), msg]
    if version >= 166:
        out.append(advanced)
    return out


def encode_contract_details(req_id: int, c: dict[str, str], primary: str) -> Fields:
    """contractDetails (msg 10, server >= 164 layout) for a stock."""
    sym = c["symbol"]
    return [
        "10", str(req_id), sym, "STK", "", "0", "", c.get("exchange") or "SMART",
        c.get("currency") or "USD", sym, "NMS", "NMS", c["conId"], "0.01", "",
        "ACTIVETIM,ADJUST,ALERT,ALLOC,DAY,GTC,LMT,MKT,MOC,STP,STPLMT,TRAIL",
        "SMART,AMEX,NYSE,ARCA,ISLAND,IEX", "1", "0", f"{sym} INC", primary, "", "", "", "",
        "US/Eastern", "", "", "", "", "0", "1", "", "", "26,26", "", "COMMON", "1", "1",
        "100",
    ]  # fmt: skip


def encode_bar_fields(bar: Sequence[float], count: int) -> Fields:
    """open, high, low, close, volume, wap, count."""
    o, h, low, c, v = bar
    return [num(o), num(h), num(low), num(c), num(v), num(round((h + low + c) / 3, 6)), str(count)]


# --------------------------------------------------------------------------- state helpers
MSG_326 = "Unable to connect as the client id is already in use.  Retry with a unique client id."
CONNECTIVITY = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
}
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
OPEN_STATES = ("PreSubmitted", "Submitted")
WELL_KNOWN_CON_IDS = {"AAPL": 265598, "MSFT": 272093, "SPY": 756733, "IBM": 8314}


def stamp(epoch: float) -> str:
    """TWS date-time text with an explicit zone, as ib_async's parseIBDatetime reads it."""
    return time.strftime("%Y%m%d %H:%M:%S", time.gmtime(epoch)) + " UTC"


def con_id_for(symbol: str) -> int:
    """Deterministic conId: the real one for a few well-known stocks, else a crc32 of the name."""
    return WELL_KNOWN_CON_IDS.get(symbol, 10_000_000 + zlib.crc32(symbol.encode()) % 89_999_999)


def stock_contract(symbol: str, currency: str = "USD") -> dict[str, str]:
    return {
        "conId": str(con_id_for(symbol)), "symbol": symbol, "secType": "STK",
        "lastTradeDateOrContractMonth": "", "strike": "0", "right": "", "multiplier": "",
        "exchange": "SMART", "primaryExchange": "NASDAQ", "currency": currency or "USD",
        "localSymbol": symbol, "tradingClass": "NMS",
    }  # fmt: skip


@dataclass(frozen=True)
class PlacedOrder:
    """One placeOrder the fake accepted (new orders and modifications)."""

    client_id: int
    order_id: int
    perm_id: int
    symbol: str
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    order_ref: str
    account: str
    fields: dict[str, str]  # every placeOrder value, keyed by ib_async Order attribute name


@dataclass(frozen=True)
class OrderRecord:
    perm_id: int
    client_id: int
    order_id: int
    symbol: str
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    order_ref: str
    account: str
    status: str
    filled: float
    avg_fill_price: float


@dataclass(frozen=True)
class PositionRecord:
    account: str
    symbol: str
    con_id: int
    quantity: float
    avg_cost: float


@dataclass(eq=False)
class BookOrder:
    """An order as the fake's order book keeps it."""

    perm_id: int
    client_id: int
    order_id: int
    wire: WireOrder
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_price: float = 0.0
    last_price: float = 0.0
    triggered: bool = False
    completed: tuple[str, str] = ("", "")  # completedTime, completedStatus

    def val(self, key: str) -> str:
        return self.wire.order.get(key, "")

    @property
    def quantity(self) -> float:
        return to_float(self.val("totalQuantity"))

    @property
    def symbol(self) -> str:
        return self.wire.contract["symbol"]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    def record(self) -> OrderRecord:
        lmt = to_float(self.val("lmtPrice"), UNSET_DOUBLE)
        return OrderRecord(
            self.perm_id, self.client_id, self.order_id, self.symbol, self.val("action"),
            self.quantity, self.val("orderType"), None if lmt >= UNSET_DOUBLE else lmt,
            self.val("orderRef"), self.val("account"), self.status, self.filled, self.avg_price,
        )  # fmt: skip

    def fill_price(self, price: float, arrival: bool) -> float | None:
        """The price this order executes at given the last price, or None. MKT/STP take the
        last price; a LMT takes it when marketable on arrival, else its own limit."""
        kind, buy = self.val("orderType"), self.val("action") == "BUY"
        if kind in ("STP", "STP LMT") and not self.triggered:
            aux = to_float(self.val("auxPrice"))
            self.triggered = price >= aux if buy else price <= aux
            if not self.triggered:
                return None
        if kind in ("MKT", "STP"):
            return price
        if kind in ("LMT", "STP LMT"):
            lmt = to_float(self.val("lmtPrice"))
            if price <= lmt if buy else price >= lmt:
                return price if arrival else lmt
        return None


def apply_fill(
    pos: float, avg: float, signed_qty: float, price: float
) -> tuple[float, float, float | None]:
    """New (position, average cost) after a fill and the gross realized PnL if it reduced."""
    new = pos + signed_qty
    if pos == 0 or (pos > 0) == (signed_qty > 0):
        return new, (avg * abs(pos) + price * abs(signed_qty)) / abs(new), None
    closed = min(abs(pos), abs(signed_qty))
    realized = (price - avg) * closed * (1 if pos > 0 else -1)
    if abs(signed_qty) > abs(pos):
        avg = price
    elif new == 0:
        avg = 0.0
    return new, avg, realized


def split_quantity(quantity: float, parts: int) -> list[float]:
    """Whole-share slices (the last takes the remainder)."""
    parts = max(1, min(parts, int(quantity)))
    base = float(int(quantity // parts))
    return [base] * (parts - 1) + [quantity - base * (parts - 1)]


def bar_merge(
    bar: list[float] | None, o: float, h: float, low: float, c: float, v: float
) -> list[float]:
    """Fold (o, h, l, c, v) into an OHLCV bar (a new one when ``bar`` is None)."""
    if bar is None:
        return [o, h, low, c, v]
    bar[1:5] = [max(bar[1], h), min(bar[2], low), c, bar[4] + v]
    return bar


class BarBook:
    """Per-symbol OHLCV of the open 5 s bar and of the current minute, fed by prices."""

    def __init__(self) -> None:
        self.open: dict[str, list[float]] = {}
        self.minute: dict[str, tuple[int, list[float]]] = {}

    def tick(self, symbol: str, price: float, volume: float) -> None:
        self.open[symbol] = bar_merge(self.open.get(symbol), price, price, price, price, volume)

    def close_5s(self, start: int) -> dict[str, list[float]]:
        """Close the 5 s bars starting at ``start``; fold them into their minute bars."""
        closed, minute = dict(self.open), start // 60 * 60
        for sym, bar in closed.items():
            self.open[sym] = [bar[3]] * 4 + [0.0]
            prev = self.minute.get(sym)
            base = None if prev is None or prev[0] != minute else prev[1]
            self.minute[sym] = (minute, bar_merge(base, *bar))
        return closed


def encode_historical_data(req_id: int, end: int, count: int, price: float, epoch: bool) -> Fields:
    """historicalData (msg 17): ``count`` flat 1-min bars ending at ``end``."""
    start = end - count * 60
    out = ["17", str(req_id), stamp(start), stamp(end), str(count)]
    for t in range(start, end, 60):
        out += [str(t) if epoch else stamp(t), *encode_bar_fields([price] * 4 + [0.0], 0)]
    return out


def encode_historical_update(req_id: int, start: int, bar: list[float], epoch: bool) -> Fields:
    """historicalDataUpdate (msg 90): barCount, date, open, close, high, low, wap, volume."""
    o, h, low, c, v, wap, count = encode_bar_fields(bar, 0)
    return ["90", str(req_id), count, str(start) if epoch else stamp(start), o, c, h, low, wap, v]
