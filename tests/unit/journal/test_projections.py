from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.journal.factories import (
    DEPLOYMENT,
    T0,
    denied,
    filled,
    intent,
    rec,
    status,
    submitting,
)
from tradeplane.actors.records import denial_record, intent_record, submitting_record
from tradeplane.core.clock import ManualClock
from tradeplane.core.execution import ExecutionCore
from tradeplane.core.model import Intent, OrderDenied, OrderType, Side, SubmitOrder
from tradeplane.journal import queries
from tradeplane.journal.records import JournalRecord
from tradeplane.journal.store import JournalStore
from tradeplane.telemetry.context import intent_context


def order(store: JournalStore, n: int) -> dict:
    (row,) = [o for o in queries.orders(store.conn) if o["client_order_id"] == f"c{n}"]
    return row


def intent_row(store: JournalStore, n: int) -> dict:
    (row,) = [i for i in queries.intents(store.conn) if i["intent_id"] == f"i{n}"]
    return row


def test_intent_is_projected_undecided_with_its_fields(store: JournalStore) -> None:
    store.commit([intent(1)])
    row = intent_row(store, 1)
    assert row["decision"] is None and row["reason"] is None
    assert (row["strategy"], row["symbol"], row["side"], row["quantity"]) == (
        "s1",
        "BTC-USDT",
        "buy",
        2.0,
    )
    assert (row["order_type"], row["limit_price"], row["ts"]) == ("limit", 100.0, T0)
    assert row["client_order_id"] == "c1" and row["trigger"] == "bar:1"
    assert row["traceparent"].startswith("00-") and row["seq"] == 1
    assert [i["intent_id"] for i in queries.intents(store.conn, undecided_only=True)] == ["i1"]


def test_denied_intent_records_the_decision_and_reason(store: JournalStore) -> None:
    store.commit([intent(1), intent(2)])
    store.commit([denied(1, "max_position")])
    assert (intent_row(store, 1)["decision"], intent_row(store, 1)["reason"]) == (
        "denied",
        "max_position",
    )
    assert [i["intent_id"] for i in queries.intents(store.conn, undecided_only=True)] == ["i2"]
    assert queries.orders(store.conn) == []


def test_order_lifecycle_submitting_accepted_partial_fill_then_fill(store: JournalStore) -> None:
    store.commit([intent(1), submitting(1)])
    assert intent_row(store, 1)["decision"] == "approved"
    row = order(store, 1)
    assert row["status"] == "pending_submit" and row["filled_quantity"] == 0
    assert (row["intent_id"], row["strategy"], row["symbol"], row["side"]) == (
        "i1",
        "s1",
        "BTC-USDT",
        "buy",
    )
    assert (row["quantity"], row["order_type"], row["limit_price"]) == (2.0, "limit", 100.0)
    assert row["created_ts"] == row["updated_ts"] == T0 + 1

    store.commit([status(1, "order_submitted"), status(1, "order_accepted", venue_order_id="v1")])
    row = order(store, 1)
    assert (row["status"], row["venue_order_id"], row["updated_ts"]) == ("accepted", "v1", T0 + 2)

    store.commit(
        [filled(1, "f1", 0.5, 99.0, cumulative=0.5, avg=99.0, order_status="partially_filled")]
    )
    row = order(store, 1)
    assert (row["status"], row["filled_quantity"], row["avg_fill_price"]) == (
        "partially_filled",
        0.5,
        99.0,
    )
    assert [o["client_order_id"] for o in queries.orders(store.conn, open_only=True)] == ["c1"]

    store.commit([filled(1, "f2", 1.5, 101.0, cumulative=2.0, avg=100.5, order_status="filled")])
    row = order(store, 1)
    assert (row["status"], row["filled_quantity"], row["avg_fill_price"]) == ("filled", 2.0, 100.5)
    assert queries.orders(store.conn, open_only=True) == []
    fills = queries.fills(store.conn, client_order_id="c1")
    assert [(f["fill_id"], f["quantity"], f["price"]) for f in fills] == [
        ("f1", 0.5, 99.0),
        ("f2", 1.5, 101.0),
    ]
    assert fills[0]["intent_id"] == "i1" and fills[0]["strategy"] == "s1"
    assert fills[0]["liquidity"] == "taker" and fills[0]["venue_order_id"] == "v1"
    assert queries.order_counts_by_status(store.conn) == {"filled": 1}


def test_whole_lifecycle_in_one_batch_projects_in_order(store: JournalStore) -> None:
    store.commit(
        [
            intent(1),
            submitting(1),
            status(1, "order_accepted"),
            filled(1, "f1", 2.0, 100.0, cumulative=2.0, avg=100.0, order_status="filled"),
        ]
    )
    assert order(store, 1)["status"] == "filled" and intent_row(store, 1)["decision"] == "approved"


def test_duplicate_fill_id_is_ignored_and_does_not_move_the_order(store: JournalStore) -> None:
    store.commit([submitting(1)])
    store.commit(
        [filled(1, "f1", 0.5, 99.0, cumulative=0.5, avg=99.0, order_status="partially_filled")]
    )
    store.commit([filled(1, "f2", 1.5, 101.0, cumulative=2.0, avg=100.5, order_status="filled")])
    # the venue re-reports f1 under a new event id with stale cumulative figures
    replay = filled(
        1,
        "f1",
        0.5,
        99.0,
        cumulative=0.5,
        avg=99.0,
        order_status="partially_filled",
        event_id="fill/f1/replayed",
    )
    store.commit([replay])
    assert len(queries.fills(store.conn)) == 2
    row = order(store, 1)
    assert (row["status"], row["filled_quantity"]) == ("filled", 2.0)
    assert queries.counts_by_kind(store.conn)["order_filled"] == 3  # still journaled


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("order_cancelled", "cancelled"),
        ("order_rejected", "rejected"),
        ("order_expired", "expired"),
        ("order_unknown", "unknown"),
        ("order_pending_cancel", "pending_cancel"),
        ("order_submitted", "submitted"),
    ],
)
def test_status_kinds_set_the_order_status(store: JournalStore, kind: str, expected: str) -> None:
    store.commit([submitting(1), status(1, kind, reason="venue says so")])
    row = order(store, 1)
    assert row["status"] == expected and row["reason"] == "venue says so"


def test_rejected_order_keeps_its_reason_and_counts_by_status(store: JournalStore) -> None:
    store.commit([submitting(1), submitting(2), submitting(3, strategy="s2")])
    store.commit([status(1, "order_rejected", reason="insufficient margin")])
    assert queries.order_counts_by_status(store.conn) == {"rejected": 1, "pending_submit": 2}
    assert queries.order_counts_by_status(store.conn, "s2") == {"pending_submit": 1}
    assert [o["client_order_id"] for o in queries.orders(store.conn, strategy="s2")] == ["c3"]
    assert order(store, 1)["reason"] == "insufficient margin"


def test_update_for_an_order_never_seen_submitting_still_creates_a_row(store: JournalStore) -> None:
    store.commit([status(7, "order_accepted", venue_order_id="v7", symbol="ETH-USDT")])
    row = order(store, 7)
    assert (row["status"], row["venue_order_id"], row["symbol"]) == ("accepted", "v7", "ETH-USDT")


def test_health_changed_upserts_the_health_state(store: JournalStore) -> None:
    store.commit([rec("h1", "health_changed", {"component": "feed", "health": "degraded"})])
    store.commit([rec("h2", "health_changed", {"component": "feed", "health": "healthy"})])
    store.commit([rec("h3", "health_changed", {"component": "broker", "health": "healthy"})])
    health = queries.states(store.conn, "health")
    assert health["feed"]["health"] == "healthy" and set(health) == {"feed", "broker"}


def test_unknown_kind_is_journaled_with_no_projection(store: JournalStore) -> None:
    store.commit([rec("x1", "bar", {"close": 1.0}), rec("x2", "recovery_exhausted", {})])
    assert queries.counts_by_kind(store.conn) == {"bar": 1, "recovery_exhausted": 1}
    assert queries.orders(store.conn) == [] and queries.intents(store.conn) == []


@pytest.mark.parametrize(
    ("record", "missing"),
    [
        (rec("e1", "order_submitting", {"symbol": "X"}), "client_order_id"),
        (rec("e1", "intent", {"symbol": "X"}), "intent_id"),
        (rec("e1", "order_filled", {"fill": {"price": 1.0}}, client_order_id="c1"), "fill_id"),
        (rec("e1", "health_changed", {"health": "ok"}), "component"),
    ],
)
def test_known_kind_missing_its_key_is_a_clear_error_and_changes_nothing(
    store: JournalStore, record: object, missing: str
) -> None:
    with pytest.raises(ValueError, match=missing):
        store.commit([record])  # type: ignore[list-item]
    assert store.last_seq == 0 and queries.counts_by_kind(store.conn) == {}


# -- the intent known only from the broker's order_submitting (its own record lost) ----------


def _approved(n: int, ts: float) -> tuple[Intent, SubmitOrder]:
    i = Intent(
        intent_id=f"i{n}",
        client_order_id=f"c{n}",
        deployment="demo",
        strategy="s1",
        symbol="BTC-USDT",
        side=Side.BUY,
        quantity=2.0,
        order_type=OrderType.LIMIT,
        limit_price=100.0,
        ts=ts,
        trigger=f"bar:{n}",
        bar_recv_ts=ts - 0.001,
        traceparent=intent_context("demo", f"i{n}").traceparent,
    )
    return i, SubmitOrder(i, approved_ts=ts + 0.002, reference_price=100.0, received_ts=ts + 0.001)


def _submitting_only(n: int, ts: float) -> JournalRecord:
    _, cmd = _approved(n, ts)
    begun = ExecutionCore(ManualClock(ts + 0.5)).begin_submit(cmd)
    assert begun is not None
    broker_span = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    return submitting_record(
        "demo", begun, cmd, broker_received_ts=ts + 0.4, traceparent=broker_span
    )


def test_intent_known_only_from_order_submitting_then_a_decided_row_with_the_intents_own_fields(
    store: JournalStore,
) -> None:
    i, _ = _approved(1, T0)
    store.commit([_submitting_only(1, T0)])

    row = intent_row(store, 1)
    assert row["decision"] == "approved"
    assert (row["ts"], row["trigger"], row["traceparent"]) == (T0, "bar:1", i.traceparent)
    assert (row["strategy"], row["symbol"], row["side"], row["quantity"]) == (
        "s1",
        "BTC-USDT",
        "buy",
        2.0,
    )
    assert (row["order_type"], row["limit_price"], row["client_order_id"]) == ("limit", 100.0, "c1")


def test_intent_known_only_from_order_submitting_then_the_query_since_a_snapshot_sees_it(
    store: JournalStore,
) -> None:
    store.commit([_submitting_only(1, T0), _submitting_only(2, T0 + 100)])

    rows = queries.intents(store.conn, strategy="s1", since_ts=T0 + 50)

    assert [r["intent_id"] for r in rows] == ["i2"]
    assert queries.intents(store.conn, undecided_only=True) == []


def test_intent_record_after_its_order_submitting_then_still_approved(store: JournalStore) -> None:
    store.commit([_submitting_only(1, T0)])
    i, _ = _approved(1, T0)
    store.commit([intent_record(i)])

    assert intent_row(store, 1)["decision"] == "approved"
    assert queries.intents(store.conn, undecided_only=True) == []


def test_intent_known_only_from_its_denial_then_a_denied_row_with_the_intents_own_fields(
    store: JournalStore,
) -> None:
    i, _ = _approved(1, T0)
    store.commit([denial_record(OrderDenied(i, "max_position", "too big", ts=T0 + 0.003))])

    row = intent_row(store, 1)
    assert (row["decision"], row["reason"]) == ("denied", "max_position")
    assert (row["ts"], row["trigger"], row["traceparent"]) == (T0, "bar:1", i.traceparent)


# -- a batch is folded into one write per key: the rows are those of one record at a time ------


def test_several_updates_of_one_order_in_one_batch_then_the_later_ones_win(
    store: JournalStore,
) -> None:
    seqs = store.commit(
        [
            submitting(1),
            status(1, "order_accepted", venue_order_id="v1"),
            filled(1, "f1", 0.5, 99.0, cumulative=0.5, avg=99.0, order_status="partially_filled"),
            filled(1, "f2", 1.5, 101.0, cumulative=2.0, avg=100.5, order_status="filled"),
            # f1 re-reported in the same batch with stale figures: a duplicate, it moves nothing
            filled(
                1,
                "f1",
                0.5,
                99.0,
                cumulative=0.5,
                avg=99.0,
                order_status="partially_filled",
                event_id="fill/f1/replayed",
            ),
        ]
    )
    row = order(store, 1)
    assert (row["status"], row["filled_quantity"], row["avg_fill_price"]) == ("filled", 2.0, 100.5)
    assert (row["venue_order_id"], row["created_ts"], row["updated_ts"]) == ("v1", T0 + 1, T0 + 3)
    assert row["seq"] == seqs[3]  # the last record that moved it
    assert [f["fill_id"] for f in queries.fills(store.conn)] == ["f1", "f2"]


def _mixed_batch() -> list[JournalRecord]:
    return [
        intent(1),
        status(9, "order_accepted", venue_order_id="v9"),  # never seen submitting
        submitting(1),
        intent(2),
        denied(2, "max_position"),
        intent(3),
        status(1, "order_accepted", venue_order_id="v1"),
        submitting(9),  # after its first update: the 'unknown' row stays
        filled(1, "f1", 0.5, 99.0, cumulative=0.5, avg=99.0, order_status="partially_filled"),
        rec("h1", "health_changed", {"component": "risk", "status": "degraded"}),
        status(9, "order_rejected", reason="no margin"),
        filled(1, "f2", 1.5, 101.0, cumulative=2.0, avg=100.5, order_status="filled"),
        filled(
            1,
            "f1",
            0.5,
            99.0,
            cumulative=0.5,
            avg=99.0,
            order_status="partially_filled",
            event_id="fill/f1/replayed",
        ),
        submitting(3),
        rec("h2", "health_changed", {"component": "risk", "status": "ok"}),
        status(3, "order_cancelled"),
        denied(4, "kill_switch"),  # a decision for an intent never journaled
        intent(4),
    ]


def _projected_rows(store: JournalStore) -> dict[str, list[tuple]]:
    return {
        table: store.conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        for table in ("intents", "orders", "fills")
    } | {"state": store.conn.execute("SELECT * FROM state ORDER BY scope, key").fetchall()}


@pytest.mark.parametrize("first", [0, 1, 7, 9])
def test_a_batch_projects_exactly_as_its_records_do_one_at_a_time(
    tmp_path: Path, first: int
) -> None:
    """``first`` records are committed before, one at a time, so the batch also meets rows (and
    a fill) already journaled."""
    records = _mixed_batch()
    with (
        JournalStore.open(tmp_path / "one", DEPLOYMENT) as one,
        JournalStore.open(tmp_path / "batch", DEPLOYMENT) as batch,
    ):
        for r in records:
            one.commit([r])
        for r in records[:first]:
            batch.commit([r])
        batch.commit(records[first:])
        assert _projected_rows(batch) == _projected_rows(one)
