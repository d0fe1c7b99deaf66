"""De-duplication by event id and lookup by intent/order id without a random-key index."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.journal.factories import (
    DEPLOYMENT,
    filled,
    intent,
    notes,
    status,
    submitting,
)
from tradeplane.journal import ids, queries
from tradeplane.journal.reader import verify_journal
from tradeplane.journal.store import JournalStore


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 32 seqs in buckets of 4, so tests cross many of each."""
    monkeypatch.setattr(ids, "BUCKET_BITS", 2)
    monkeypatch.setattr(ids, "BLOCK_BITS", 5)
    monkeypatch.setattr(ids, "BUCKETS_PER_BLOCK", 8)


def _lines(store: JournalStore) -> int:
    return int(store.conn.execute("SELECT count(*) FROM events").fetchone()[0])


@pytest.mark.usefixtures("small_blocks")
def test_resend_of_any_old_id_after_a_restart_then_same_seqs_and_nothing_journaled(
    state_dir: Path,
) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        first = store.commit(notes(50))
        first += store.commit(notes(97, start=50))
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.commit(notes(147)) == first  # closed blocks, the open one, across a restart
        assert store.commit(notes(3, start=10) + notes(1, start=500)) == [11, 12, 13, 148]
        assert _lines(store) == store.last_seq == 148
        blooms = store.conn.execute("SELECT count(*) FROM id_blooms").fetchone()[0]
        assert blooms == (148 + 1) // 32


@pytest.mark.usefixtures("small_blocks")
def test_batch_spanning_several_blocks_then_each_block_gets_its_filter(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(20))
        store.commit(notes(100, start=20))  # completes blocks 0, 1 and 2
        assert store.commit(notes(120)) == list(range(1, 121))
        blocks = [r[0] for r in store.conn.execute("SELECT block FROM id_blooms ORDER BY block")]
        assert blocks == [0, 1, 2]


@pytest.mark.usefixtures("small_blocks")
def test_lost_filter_rows_are_rebuilt_on_open_then_old_ids_still_deduplicated(
    state_dir: Path,
) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(100))
        store.conn.execute("DELETE FROM id_blooms")
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.commit(notes(5, start=2)) == [3, 4, 5, 6, 7]
        assert _lines(store) == 100


@pytest.mark.usefixtures("small_blocks")
def test_ids_sharing_a_key_then_each_journaled_once(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tradeplane.journal.store as store_module

    monkeypatch.setattr(store_module, "event_key", lambda event_id: 7)  # every id collides
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        seqs = store.commit(notes(40))
        assert store.commit(notes(40)) == seqs
        assert store.commit(notes(2, start=40)) == [41, 42]
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.commit(notes(42)) == list(range(1, 43))
        assert _lines(store) == 42


def test_failed_commit_then_nothing_remembered_and_the_retry_journals(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        store.commit(notes(3))
        store.conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON event_keys BEGIN SELECT "
            "RAISE(ABORT, 'disk says no'); END"
        )
        with pytest.raises(Exception, match="disk says no"):
            store.commit(notes(2, start=3))
        store.conn.execute("DROP TRIGGER boom")
        assert store.commit(notes(2, start=3)) == [4, 5]
        assert store.commit(notes(5)) == [1, 2, 3, 4, 5]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=300, unique=True))
def test_bloom_filter_never_misses_a_key_it_was_built_from(keys: list[int]) -> None:
    import numpy as np

    bits = np.frombuffer(ids.bloom(keys), dtype=np.uint8)
    pos = ids._positions(keys)
    assert ((bits[(pos >> np.uint64(3)).astype(np.intp)] & ids._masks(pos)) != 0).all()


@pytest.mark.usefixtures("small_blocks")
def test_events_for_an_intent_or_order_across_buckets_then_all_of_them_in_order(
    store: JournalStore,
) -> None:
    store.commit([intent(1), *notes(30), submitting(1), *notes(30, start=30)])
    store.commit([intent(2), status(1, "order_accepted"), *notes(40, start=60)])
    kinds = [e["kind"] for e in queries.events_for(store.conn, intent_id="i1")]
    assert kinds == ["intent", "order_submitting", "order_accepted"]
    by_order = queries.events_for(store.conn, client_order_id="c1")
    assert [e["seq"] for e in by_order] == [1, 32, 64]
    assert [e["seq"] for e in queries.events_for(store.conn, intent_id="i2")] == [63]
    assert queries.events_for(store.conn, intent_id="nope") == []


@pytest.mark.usefixtures("small_blocks")
def test_fills_of_an_order_across_buckets_then_all_found_even_one_naming_it_only_in_its_data(
    store: JournalStore,
) -> None:
    first = filled(1, "f1", 1.0, 100.0, cumulative=1.0, avg=100.0, order_status="partially_filled")
    second = filled(1, "f2", 1.0, 102.0, cumulative=2.0, avg=101.0, order_status="filled")
    second = dataclasses.replace(
        second, client_order_id=None, data={**second.data, "client_order_id": "c1"}
    )
    other = filled(2, "f3", 1.0, 99.0, cumulative=1.0, avg=99.0, order_status="filled")
    store.commit([submitting(1), submitting(2), first, *notes(30)])
    store.commit([*notes(30, start=30), second, other])
    fills = queries.fills(store.conn, client_order_id="c1")
    assert [(f["fill_id"], f["client_order_id"]) for f in fills] == [("f1", "c1"), ("f2", "c1")]
    assert [f["fill_id"] for f in queries.fills(store.conn, client_order_id="c2")] == ["f3"]
    assert [f["fill_id"] for f in queries.fills(store.conn, client_order_id="c1", since_seq=3)] == [
        "f2"
    ]
    assert queries.fills(store.conn, client_order_id="c1", strategy="other") == []
    assert queries.fills(store.conn, client_order_id="nope") == []
    # The fill that names its order only in its data is not an event of that order for trace.
    assert [e["event_id"] for e in queries.events_for(store.conn, client_order_id="c1")] == [
        "submitting/1",
        "fill/f1",
    ]


def test_id_keys_are_the_keyed_blake2b_journals_already_hold() -> None:
    """Existing journals hold these keys: the key functions must never change them."""

    def reference(person: bytes, text: str) -> int:
        digest = hashlib.blake2b(text.encode(), digest_size=8, person=person).digest()
        return int.from_bytes(digest, "little", signed=True)

    for text in ("", "intent/1", "c-\u00e9\u6771\U0001f600", "x" * 300):
        for _ in range(2):  # the second time from the remembered keys
            assert ids.event_key(text) == reference(b"tp-event", text)
            assert ids.intent_key(text) == reference(b"tp-intent", text)
            assert ids.order_key(text) == reference(b"tp-order", text)


def test_journal_with_new_schema_still_verifies(store: JournalStore) -> None:
    store.commit(notes(10))
    result = verify_journal(store.jsonl_path)
    assert result.ok and result.lines == 10
    conn = sqlite3.connect(store.db_path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert not {"events_intent", "events_order"} & names
    assert not any(n.startswith("sqlite_autoindex_events") for n in names)


@pytest.mark.usefixtures("small_blocks")
def test_resend_batch_larger_than_a_check_chunk_then_every_old_id_found(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ids, "_CHUNK", 7)
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        seqs = store.commit(notes(100))
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert store.commit(notes(100)) == seqs


@pytest.mark.usefixtures("small_blocks")
def test_old_ids_resent_one_by_one_then_each_found(state_dir: Path) -> None:
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        seqs = store.commit(notes(100))
    with JournalStore.open(state_dir, DEPLOYMENT) as store:
        assert [store.commit([r])[0] for r in notes(100)] == seqs
        assert store.commit(notes(1, start=100)) == [101]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=200, unique=True),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50),
)
def test_plain_python_filter_check_agrees_with_numpys(built: list[int], probe: list[int]) -> None:
    import numpy as np

    index = ids.EventIds.__new__(ids.EventIds)
    filters = [ids.bloom(built[::2]), ids.bloom(built[1::2])]
    index._filter_bytes = filters
    stacked = np.stack([np.frombuffer(f, dtype=np.uint8) for f in filters])
    for key in [*built, *probe]:
        pos = ids._positions([key])
        hit = (stacked[:, (pos >> np.uint64(3)).astype(np.intp)] & ids._masks(pos)) != 0
        assert index._few_hits(key) == np.nonzero(hit.all(axis=2))[0].tolist()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=300, unique=True),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=17, max_size=80),
)
def test_filter_check_bit_by_bit_then_the_same_hits_as_every_bit_at_once(
    built: list[int], probe: list[int]
) -> None:
    import numpy as np

    with pytest.MonkeyPatch.context() as m:
        m.setattr(ids, "BLOOM_BITS", 1 << 10)  # dense filters: many keys match some bits only
        index = ids.EventIds.__new__(ids.EventIds)
        index._load_filters(
            {0: ids.bloom(built[::3]), 1: ids.bloom(built[1::3]), 2: ids.bloom(built[2::3])},
            3,
            lambda block: [],
        )
        keys = [*built, *probe]
        pos = ids._positions(keys)
        every_bit = (index.filters[:, (pos >> np.uint64(3)).astype(np.intp)] & ids._masks(pos)) != 0
        expected: dict[int, list[int]] = {}
        for b, i in zip(*np.nonzero(every_bit.all(axis=2)), strict=True):
            expected.setdefault(int(b), []).append(int(i))
        found: dict[int, list[int]] = {}
        index._hits(keys, found)
    assert found == expected
    assert all(n in found.get(n % 3, []) for n in range(len(built)))  # no false negative
