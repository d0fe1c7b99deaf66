"""Intents and orders rows found by id without an index on the id (``ids.RowIds``): across
block boundaries, after a restart, with colliding keys, lost filters and failed commits."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.journal.factories import (
    DEPLOYMENT,
    denied,
    filled,
    intent,
    notes,
    status,
    submitting,
)
from tradeplane.journal import ids, queries
from tradeplane.journal.records import JournalRecord
from tradeplane.journal.store import JournalStore

BLOCK = 32  # seqs per block under ``small_blocks``


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 32 seqs in buckets of 4, so tests cross many of each."""
    monkeypatch.setattr(ids, "BUCKET_BITS", 2)
    monkeypatch.setattr(ids, "BLOCK_BITS", 5)
    monkeypatch.setattr(ids, "BUCKETS_PER_BLOCK", 8)


def _counts(store: JournalStore) -> tuple[int, int, int, int]:
    conn = store.conn
    return (
        conn.execute("SELECT count(*) FROM intents").fetchone()[0],
        conn.execute("SELECT count(DISTINCT intent_id) FROM intents").fetchone()[0],
        conn.execute("SELECT count(*) FROM orders").fetchone()[0],
        conn.execute("SELECT count(DISTINCT client_order_id) FROM orders").fetchone()[0],
    )


def _only_in_data(record: JournalRecord, **data: Any) -> JournalRecord:
    return dataclasses.replace(
        record, client_order_id=None, intent_id=None, data={**record.data, **data}
    )


@pytest.mark.usefixtures("small_blocks")
def test_orders_and_intents_of_closed_blocks_updated_after_a_restart_then_one_row_each(
    state_dir: Path,
) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        for n in range(10):
            store.commit([intent(n), submitting(n), *notes(12, start=100 * n)])
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.last_seq > 4 * BLOCK
        store.commit([status(n, "order_accepted") for n in range(10)] + [denied(3, "late")])
        store.commit([status(0, "order_cancelled", reason="gone"), *notes(40, start=5000)])
        store.commit([status(1, "order_cancelled")])  # alone, in a later block
        orders = {o["client_order_id"]: o for o in queries.orders(store.conn)}
        intents = {i["intent_id"]: i for i in queries.intents(store.conn)}
        assert _counts(store) == (10, 10, 10, 10)
    assert orders["c0"]["status"] == "cancelled" and orders["c0"]["reason"] == "gone"
    assert orders["c1"]["status"] == "cancelled"
    assert {orders[f"c{n}"]["status"] for n in range(2, 10)} == {"accepted"}
    assert orders["c9"]["seq"] == store.last_seq - 43  # its update moved it
    assert (intents["i3"]["decision"], intents["i3"]["reason"]) == ("denied", "late")
    assert {intents[f"i{n}"]["decision"] for n in range(10) if n != 3} == {"approved"}


@pytest.mark.usefixtures("small_blocks")
def test_intent_decided_in_a_later_block_then_its_row_updated_in_place(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([intent(1), *notes(3 * BLOCK)])
        seq = queries.intents(store.conn)[0]["seq"]
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([denied(1, "max_position")])
        rows = queries.intents(store.conn)
    assert [(r["intent_id"], r["seq"], r["decision"], r["reason"]) for r in rows] == [
        ("i1", seq, "denied", "max_position")
    ]


@pytest.mark.usefixtures("small_blocks")
def test_ids_named_only_in_the_data_then_found_in_closed_blocks_after_a_restart(
    state_dir: Path,
) -> None:
    found = _only_in_data(status(7, "order_accepted"), client_order_id="c7", intent_id="i7")
    late_intent = _only_in_data(submitting(8), client_order_id="c8", intent_id="i8")
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([found, late_intent, *notes(3 * BLOCK)])
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([status(7, "order_cancelled"), status(8, "order_accepted"), intent(8)])
        orders = {o["client_order_id"]: o["status"] for o in queries.orders(store.conn)}
        intents = {i["intent_id"]: i["decision"] for i in queries.intents(store.conn)}
        assert _counts(store) == (1, 1, 2, 2)
    assert orders == {"c7": "cancelled", "c8": "accepted"}
    assert intents == {"i8": "approved"}


@pytest.mark.usefixtures("small_blocks")
def test_keys_that_all_collide_then_each_id_still_has_one_row(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tradeplane.journal.store as store_module

    for module in (ids, store_module):
        monkeypatch.setattr(module, "intent_key", lambda intent_id: 7)
        monkeypatch.setattr(module, "order_key", lambda client_order_id: 7)
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        for n in range(6):
            store.commit([intent(n), submitting(n), *notes(20, start=100 * n)])
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([status(n, "order_accepted") for n in range(6)])
        store.commit([status(2, "order_cancelled")])
        orders = {o["client_order_id"]: o["status"] for o in queries.orders(store.conn)}
        assert _counts(store) == (6, 6, 6, 6)
    assert orders == {f"c{n}": "cancelled" if n == 2 else "accepted" for n in range(6)}


@pytest.mark.usefixtures("small_blocks")
def test_lost_row_filters_are_rebuilt_on_open_then_old_rows_still_found(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        for n in range(4):
            store.commit([intent(n), submitting(n), *notes(BLOCK, start=100 * n)])
        store.conn.execute("DELETE FROM row_blooms")
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([status(n, "order_accepted") for n in range(4)])
        assert _counts(store) == (4, 4, 4, 4)


@pytest.mark.usefixtures("small_blocks")
def test_batch_spanning_several_blocks_then_each_gets_its_row_filter_and_rows_are_found(
    state_dir: Path,
) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        batch = []
        for n in range(12):
            batch += [intent(n), submitting(n), *notes(8, start=100 * n)]
        store.commit(batch)  # 120 seqs: blocks 0, 1 and 2 complete
        blocks = [r[0] for r in store.conn.execute("SELECT block FROM row_blooms ORDER BY 1")]
        assert blocks == [0, 1, 2]
        store.commit([status(n, "order_accepted") for n in range(12)])
        assert _counts(store) == (12, 12, 12, 12)
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([status(n, "order_cancelled") for n in range(12)])
        assert _counts(store) == (12, 12, 12, 12)
        assert {o["status"] for o in queries.orders(store.conn)} == {"cancelled"}


def test_failed_commit_then_its_rows_are_not_remembered_and_the_retry_creates_them(
    state_dir: Path,
) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit([intent(0), submitting(0)])
        store.conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON fills BEGIN SELECT "
            "RAISE(ABORT, 'disk says no'); END"
        )
        fill = filled(1, "f1", 1.0, 100.0, cumulative=1.0, avg=100.0, order_status="filled")
        with pytest.raises(Exception, match="disk says no"):
            store.commit([intent(1), submitting(1), fill])
        store.conn.execute("DROP TRIGGER boom")
        store.commit([intent(1), submitting(1), fill])
        assert _counts(store) == (2, 2, 2, 2)
        assert queries.orders(store.conn)[1]["status"] == "filled"


def test_new_rows_append_by_the_seq_of_the_record_that_created_them(store: JournalStore) -> None:
    store.commit([*notes(3), intent(1), submitting(1), status(1, "order_accepted")])
    store.commit([submitting(2), intent(2)])
    conn = store.conn
    assert conn.execute("SELECT intent_id, seq FROM intents ORDER BY seq").fetchall() == [
        ("i1", 4),
        ("i2", 7),
    ]
    rows = conn.execute("SELECT client_order_id, created_seq, seq FROM order_rows ORDER BY 2")
    assert rows.fetchall() == [("c1", 5, 6), ("c2", 7, 7)]
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert not any(
        n.startswith(("sqlite_autoindex_intents", "sqlite_autoindex_order")) for n in indexes
    )


# --- the same records through small blocks and restarts, or one big block: the same rows ---------

_KINDS = ("intent", "submitting", "accepted", "cancelled", "denied", "fill", "data_only")


def _record(kind: str, n: int, k: int) -> JournalRecord:
    if kind == "intent":
        return intent(n)
    if kind == "submitting":
        return submitting(n)
    if kind == "denied":
        return denied(n, "max_position")
    if kind == "fill":
        return filled(
            n, f"f{n}-{k}", 1.0, 100.0 + k, cumulative=k, avg=100.0, order_status="filled"
        )
    if kind == "data_only":
        return _only_in_data(status(n, "order_expired"), client_order_id=f"c{n}", intent_id=f"i{n}")
    return status(n, f"order_{kind}")


def _rows(store: JournalStore) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "intents": store.conn.execute("SELECT * FROM intents ORDER BY intent_id").fetchall(),
        "orders": store.conn.execute("SELECT * FROM orders ORDER BY client_order_id").fetchall(),
        "fills": store.conn.execute("SELECT * FROM fills ORDER BY fill_id").fetchall(),
    }


def _replay(state_dir: Path, batches: list[list[JournalRecord]], reopen: set[int]) -> dict:
    store = JournalStore.open(state_dir, DEPLOYMENT)
    try:
        for i, batch in enumerate(batches):
            if i in reopen:
                store.close()
                store = JournalStore.open(state_dir, DEPLOYMENT)
            store.commit(batch)
        return _rows(store)
    finally:
        store.close()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_KINDS), st.integers(0, 12), st.integers(0, 9)),
        min_size=1,
        max_size=120,
    ),
    st.lists(st.integers(1, 30), min_size=1, max_size=12),
    st.sets(st.integers(0, 12), max_size=4),
    st.integers(0, 25),
)
def test_records_through_small_blocks_and_restarts_then_the_rows_one_big_block_makes(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[str, int, int]],
    sizes: list[int],
    reopen: set[int],
    padding: int,
) -> None:
    records = []
    for k, (kind, n, filler) in enumerate(ops, 1):
        records.append(_record(kind, n, k))
        records += notes(filler % 3 * padding % 17, start=10_000 * k, prefix=f"p{k}-")
    batches, start = [], 0
    while start < len(records):
        size = sizes[len(batches) % len(sizes)]
        batches.append(records[start : start + size])
        start += size
    expected = _replay(tmp_path_factory.mktemp("big"), batches, set())
    with pytest.MonkeyPatch.context() as m:
        m.setattr(ids, "BUCKET_BITS", 1)
        m.setattr(ids, "BLOCK_BITS", 3)
        m.setattr(ids, "BUCKETS_PER_BLOCK", 4)
        got = _replay(tmp_path_factory.mktemp("small"), batches, reopen)
    assert got == expected


def test_row_filter_lookups_find_nothing_for_ids_never_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ids, "BUCKET_BITS", 2)
    monkeypatch.setattr(ids, "BLOCK_BITS", 5)
    monkeypatch.setattr(ids, "BUCKETS_PER_BLOCK", 8)
    with JournalStore.open(tmp_path / "s", DEPLOYMENT) as store:
        for n in range(8):
            store.commit([intent(n), submitting(n), *notes(BLOCK, start=100 * n)])
        rows = ids.RowIds(store.conn, store.last_seq)
        assert len(rows.blocks) >= 8
        intents, orders = rows.find(store.conn, ["i3", "nope", "c3"], ["c3", "nope", "i3"])
        conn = sqlite3.connect(store.db_path)
        try:
            seq_i3 = conn.execute("SELECT seq FROM intents WHERE intent_id='i3'").fetchone()[0]
            seq_c3 = conn.execute(
                "SELECT created_seq FROM order_rows WHERE client_order_id='c3'"
            ).fetchone()[0]
        finally:
            conn.close()
        assert intents == {"i3": seq_i3} and orders == {"c3": seq_c3}
