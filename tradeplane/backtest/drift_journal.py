"""Journal lines as the drift tracker's live inputs: intents (from the strategy's record, or the
copy the broker's ``order_submitting`` or risk's ``order_denied`` carries, since the strategy's
record is journaled off the critical path and may be lost), and fills with their order's submit
and acknowledgement times and risk's reference price at submit. Pure: lines in, inputs out.

What it remembers of earlier lines (each order's submit, ack, reference price and trigger; the
intents already given) is part of the drift state: after a restart the tracker reads on from the
saved journal seq, and a fill whose order was journaled before it must still be placed at its
bar, with its latencies, and an intent told again (the broker's copy) counted once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tradeplane.backtest.drift_model import LiveFill, LiveIntent, trim_oldest
from tradeplane.core.model import Side
from tradeplane.protocol.events import EventKind

# The kinds the tracker reads (the journal is asked for these only).
DRIFT_KINDS = (
    EventKind.INTENT.value,
    EventKind.ORDER_DENIED.value,
    EventKind.ORDER_SUBMITTING.value,
    EventKind.ORDER_ACCEPTED.value,
    EventKind.ORDER_PARTIALLY_FILLED.value,
    EventKind.ORDER_FILLED.value,
)
_FILLS = (EventKind.ORDER_PARTIALLY_FILLED.value, EventKind.ORDER_FILLED.value)
ORDERS_KEPT = 20_000  # orders remembered for their submit and ack times
SNAPSHOT_VERSION = 1


@dataclass(slots=True)
class _Order:
    submit_ts: float | None = None
    ack_ts: float | None = None
    ref_price: float | None = None
    trigger: str | None = None


class JournalInputs:
    def __init__(self, venue: str) -> None:
        self.venue = venue
        self._orders: dict[str, _Order] = {}
        self._intents: dict[str, None] = {}  # intent ids already given (insertion-ordered set)
        self.malformed = 0

    def read(self, lines: Iterable[dict[str, Any]]) -> Iterator[LiveIntent | LiveFill]:
        for line in lines:
            try:
                found = self._one(line)
            except (KeyError, TypeError, ValueError):
                self.malformed += 1  # the journal validated it; a line we cannot read is skipped
                continue
            if found is not None:
                yield found

    def _one(self, line: dict[str, Any]) -> LiveIntent | LiveFill | None:
        kind, data = line["kind"], line["data"]
        ts = datetime.fromisoformat(line["ts"]).timestamp()
        coid = line.get("client_order_id")
        if kind in _FILLS:
            fill = data["fill"]
            order = self._orders.get(coid or "", _Order())
            if kind == EventKind.ORDER_FILLED.value:
                self._orders.pop(coid or "", None)  # its last fill: nothing more will ask
            return LiveFill(
                strategy=str(line["strategy"]),
                intent_id=str(line["intent_id"]),
                fill_id=str(fill["fill_id"]),
                symbol=str(fill["symbol"]),
                side=Side(fill["side"]),
                quantity=float(fill["quantity"]),
                price=float(fill["price"]),
                fee=float(fill.get("fee") or 0.0),
                ts=ts,
                venue=self.venue,
                submit_ts=order.submit_ts,
                ack_ts=order.ack_ts,
                ref_price=order.ref_price,
                trigger=order.trigger,
            )
        if kind == EventKind.ORDER_ACCEPTED.value:
            acked = self._orders.get(coid or "")
            if acked is not None and acked.ack_ts is None:
                acked.ack_ts = ts
            return None
        if kind == EventKind.ORDER_SUBMITTING.value and coid:
            ref = (data.get("decision") or {}).get("reference_price")
            carried_trigger = (data.get("intent") or {}).get("trigger")
            self._orders[coid] = _Order(
                ts, None, None if ref is None else float(ref), carried_trigger
            )
            trim_oldest(self._orders, ORDERS_KEPT)
        carried = data if kind == EventKind.INTENT.value else data.get("intent") or {}
        trigger = carried.get("trigger")
        intent_id = line.get("intent_id")
        if not trigger or not intent_id or intent_id in self._intents:
            return None
        self._intents[intent_id] = None
        trim_oldest(self._intents, ORDERS_KEPT)
        return LiveIntent(
            strategy=str(line["strategy"]),
            intent_id=str(intent_id),
            symbol=str(data["symbol"]),
            trigger=str(trigger),
            ts=float(carried.get("ts") or ts),
        )

    # -- persistence ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What earlier lines told (JSON-serialisable), oldest first as kept."""
        return {
            "version": SNAPSHOT_VERSION,
            "orders": {
                coid: [o.submit_ts, o.ack_ts, o.ref_price, o.trigger]
                for coid, o in self._orders.items()
            },
            "intents": list(self._intents),
            "malformed": self.malformed,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        if snap.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"journal inputs snapshot v{snap.get('version')} is not v1")
        self._orders = {
            str(coid): _Order(
                _number(submit_ts),
                _number(ack_ts),
                _number(ref),
                None if trig is None else str(trig),
            )
            for coid, (submit_ts, ack_ts, ref, trig) in snap["orders"].items()
        }
        self._intents = dict.fromkeys(str(i) for i in snap["intents"])
        self.malformed = int(snap.get("malformed", 0))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
