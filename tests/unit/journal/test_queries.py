from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.journal.factories import NOTE, T0, intent, notes, rec, submitting, trade
from tradeplane.journal import queries
from tradeplane.journal.store import JournalStore


def position(store: JournalStore, strategy: str = "s1", symbol: str = "BTC-USDT") -> dict:
    return queries.positions(store.conn)[(strategy, symbol)]


def test_positions_long_builds_average_price_and_realizes_on_reduce(store: JournalStore) -> None:
    store.commit([*trade(1, "buy", 1.0, 100.0, fee=0.5), *trade(2, "buy", 3.0, 104.0, fee=0.5)])
    p = position(store)
    assert (
        p["quantity"] == 4.0 and p["avg_price"] == pytest.approx(103.0) and p["realized_pnl"] == 0
    )
    store.commit(trade(3, "sell", 1.0, 110.0))
    p = position(store)
    assert p["quantity"] == 3.0 and p["avg_price"] == pytest.approx(103.0)
    assert p["realized_pnl"] == pytest.approx(7.0) and p["fees"] == pytest.approx(1.0)
    assert p["fills"] == 3


def test_positions_short_is_negative_and_profits_when_covered_lower(store: JournalStore) -> None:
    store.commit([*trade(1, "sell", 2.0, 100.0), *trade(2, "buy", 1.0, 90.0)])
    p = position(store)
    assert p["quantity"] == -1.0 and p["avg_price"] == pytest.approx(100.0)
    assert p["realized_pnl"] == pytest.approx(10.0)


def test_positions_flip_from_long_to_short_opens_the_rest_at_the_fill_price(
    store: JournalStore,
) -> None:
    store.commit([*trade(1, "buy", 2.0, 100.0), *trade(2, "sell", 5.0, 110.0)])
    p = position(store)
    assert p["quantity"] == -3.0 and p["avg_price"] == pytest.approx(110.0)
    assert p["realized_pnl"] == pytest.approx(20.0)
    store.commit(trade(3, "buy", 3.0, 105.0))
    p = position(store)
    assert (
        p["quantity"] == 0.0 and p["avg_price"] == 0.0 and p["realized_pnl"] == pytest.approx(35.0)
    )


def test_positions_are_per_strategy_and_symbol(store: JournalStore) -> None:
    store.commit(
        [
            *trade(1, "buy", 1.0, 100.0),
            *trade(2, "sell", 2.0, 50.0, symbol="ETH-USDT"),
            *trade(3, "buy", 4.0, 10.0, strategy="s2"),
        ]
    )
    allpos = queries.positions(store.conn)
    assert {k: v["quantity"] for k, v in allpos.items()} == {
        ("s1", "BTC-USDT"): 1.0,
        ("s1", "ETH-USDT"): -2.0,
        ("s2", "BTC-USDT"): 4.0,
    }
    assert set(queries.positions(store.conn, strategy="s2")) == {("s2", "BTC-USDT")}


def test_tail_returns_the_last_lines_parsed_oldest_first(store: JournalStore) -> None:
    store.commit(notes(10))
    assert [line["seq"] for line in queries.tail(store.conn, 3)] == [8, 9, 10]
    assert len(queries.tail(store.conn, 100)) == 10 and queries.tail(store.conn, 0) == []


def test_events_filter_by_kind_since_and_limit(store: JournalStore) -> None:
    store.commit([*notes(3), intent(1), submitting(1), *notes(2, start=3)])
    assert [e["seq"] for e in queries.events(store.conn)] == [1, 2, 3, 4, 5, 6, 7]
    assert [
        e["kind"] for e in queries.events(store.conn, kinds=["intent", "order_submitting"])
    ] == [
        "intent",
        "order_submitting",
    ]
    assert [e["seq"] for e in queries.events(store.conn, since_seq=4, limit=2)] == [5, 6]
    assert queries.events(store.conn, kinds=[]) == []


def test_events_for_an_intent_trace_its_whole_story(store: JournalStore) -> None:
    store.commit([intent(1), intent(2), *notes(1), submitting(1)])
    story = queries.events_for(store.conn, intent_id="i1")
    assert [e["kind"] for e in story] == ["intent", "order_submitting"]
    assert queries.events_for(store.conn) == []


def test_fills_filter_by_strategy_order_and_seq(store: JournalStore) -> None:
    store.commit([*trade(1, "buy", 1.0, 100.0), *trade(2, "buy", 1.0, 100.0, strategy="s2")])
    assert [f["fill_id"] for f in queries.fills(store.conn)] == ["f1", "f2"]
    assert [f["fill_id"] for f in queries.fills(store.conn, strategy="s2")] == ["f2"]
    assert [f["fill_id"] for f in queries.fills(store.conn, client_order_id="c1")] == ["f1"]
    assert [f["fill_id"] for f in queries.fills(store.conn, since_seq=2)] == ["f2"]


def test_counts_by_kind_and_meta(store: JournalStore) -> None:
    store.commit([*notes(2), rec("x", "intent", {"intent_id": "i9"})])
    assert queries.counts_by_kind(store.conn) == {NOTE: 2, "intent": 1}
    assert queries.meta(store.conn)["last_seq"] == 3 == queries.last_seq(store.conn)


def test_intents_since_a_time_then_read_through_the_time_index_not_the_whole_table(
    store: JournalStore,
) -> None:
    store.commit(
        [replace(r, data={**r.data, "ts": T0 + n}) for n, r in enumerate(map(intent, range(20)))]
    )
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        recent = queries.intents(store.conn, strategy="s1", since_ts=T0 + 15)
    finally:
        store.conn.set_trace_callback(None)
    (sql,) = statements
    plan = [r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
    assert any("USING INDEX intents_ts" in step for step in plan), plan
    assert [i["seq"] for i in recent] == sorted(i["seq"] for i in recent)
    assert len(recent) == 5
    assert recent == [i for i in queries.intents(store.conn) if i["ts"] >= T0 + 15]
