"""Where an id was journaled, without inserting at random places in one large B-tree.

Event, intent and client order ids are hashes, so an index keyed on them takes each insert at a
random place: once such an index outgrows the cache every record dirties pages of its own, and
each commit writes them all (what made a 1M-line journal two to three times slower than a new
one). Here an id is kept as a 64-bit ``key`` (a keyed BLAKE2b of it) in a table ordered by
``(bucket, key, seq)`` with ``bucket = seq >> BUCKET_BITS``: an insert lands in the newest
bucket, a few pages wide, whatever the journal's size. A key match is always confirmed on the
events row, so two ids that share a key (64-bit hashes can collide) are never confused.

``event_keys`` holds event ids (de-duplication), ``ref_keys`` intent and client order ids (for
``trace``: every event of one intent or order, found by probing each bucket; and for ``RowIds``,
which finds the ``intents`` and ``order_rows`` row of an id with the same window-and-filters
scheme as the de-duplication below, over the rows each block created).

De-duplication (``EventIds``) is exact for every event id ever journaled, from the first line,
across restarts; memory only makes the usual case, an id that is new, cheap:

* the window: the keys of the event ids journaled in the open block (the seqs since the last
  multiple of ``BLOCK``, so at most the last 65,536), in memory, loaded from ``event_keys`` on
  open. Resends come after a receiver's death, so they fall here;
* each closed block (65,536 seqs) has a Bloom filter of its keys, written to ``id_blooms`` in the
  transaction that completes the block and loaded on open (128 KiB per block, 2 bytes per id).

An id whose key the window or a block's filter may hold is looked up in ``event_keys`` and
confirmed on the events row (the durable check); a key neither holds is in no block, because
a Bloom filter has no false negatives and both are built from the committed keys themselves.
Each closed block adds a filter to check (15 at 1M lines, 2 MiB in all), so the check grows with
the journal, slowly: merging old blocks' filters is the step to take beyond ~10M lines.

numpy is imported where the filters are built or checked, not with this module: the journal's
readers import it for the key functions, and a process that only holds a handle to the journal
actor (the supervisor, whose Ray loads the journal's actor class to make one) needs none of it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

BUCKET_BITS = 12  # 4,096 seqs per bucket: the insert range of event_keys and ref_keys
BLOCK_BITS = 16  # 65,536 seqs per block: the window's span and one Bloom filter's
BUCKETS_PER_BLOCK = 1 << (BLOCK_BITS - BUCKET_BITS)
BLOOM_BITS = 1 << 20  # 16 bits per id of a full block
BLOOM_HASHES = 7  # false positives about 1 in 1,400 per block
_MASK64 = (1 << 64) - 1
_CHUNK = 1024  # keys checked against every filter at once
_FEW = 16  # up to this many keys are checked in plain Python

EVENT_KEYS_DDL = (
    "CREATE TABLE event_keys (bucket INTEGER NOT NULL, key INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, PRIMARY KEY (bucket, key, seq)) WITHOUT ROWID"
)
REF_KEYS_DDL = EVENT_KEYS_DDL.replace("event_keys", "ref_keys")
BLOOMS_DDL = "CREATE TABLE id_blooms (block INTEGER PRIMARY KEY, bits BLOB NOT NULL)"
ROW_BLOOMS_DDL = BLOOMS_DDL.replace("id_blooms", "row_blooms")
# An event, or a row of a closed block, by its key within the block's buckets, confirmed on
# its id (``_BlockFilters._confirm``).
_EVENT_PROBE = (
    "SELECT k.seq FROM event_keys AS k JOIN events AS e ON e.seq = k.seq"
    " WHERE k.bucket IN ({}) AND k.key = ? AND e.event_id = ?"
)
_INTENT_PROBE = (
    "SELECT i.seq FROM ref_keys AS r JOIN intents AS i ON i.seq = r.seq"
    " WHERE r.bucket IN ({}) AND r.key = ? AND i.intent_id = ?"
)
_ORDER_PROBE = (
    "SELECT o.created_seq FROM ref_keys AS r JOIN order_rows AS o ON o.created_seq = r.seq"
    " WHERE r.bucket IN ({}) AND r.key = ? AND o.client_order_id = ?"
)
INSERT_EVENT_KEY = "INSERT INTO event_keys (bucket, key, seq) VALUES (?, ?, ?)"
INSERT_REF_KEY = "INSERT OR IGNORE INTO ref_keys (bucket, key, seq) VALUES (?, ?, ?)"


def _hasher(person: bytes) -> Callable[[str], int]:
    """The key function of one kind of id: a keyed BLAKE2b of it, 64 bits (copying a primed
    hash object costs less than building one from its parameters)."""
    primed = hashlib.blake2b(digest_size=8, person=person)
    from_bytes = int.from_bytes

    def key(text: str) -> int:
        h = primed.copy()
        h.update(text.encode())
        return from_bytes(h.digest(), "little", signed=True)  # SQLite integers are signed

    return key


def _remembered(key: Callable[[str], int]) -> Callable[[str], int]:
    """``key`` with a memory of recent ids: an intent's or an order's id comes back in most of
    its events (decision, acks, fills), usually within a few batches. Forgotten wholesale
    when full, so memory stays bounded."""
    memo: dict[str, int] = {}

    def remembered(text: str) -> int:
        k = memo.get(text)
        if k is None:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            k = memo[text] = key(text)
        return k

    return remembered


_MEMO_SIZE = 1 << 16
event_key = _hasher(b"tp-event")
intent_key = _remembered(_hasher(b"tp-intent"))
order_key = _remembered(_hasher(b"tp-order"))


def bucket_of(seq: int) -> int:
    return seq >> BUCKET_BITS


def last_bucket(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM events").fetchone()
    return bucket_of(int(row[0] or 0))


def _positions(keys: Sequence[int]) -> npt.NDArray[np.uint64]:
    """(len(keys), BLOOM_HASHES) bit positions: double hashing on the key's two halves."""
    import numpy as np

    # Keys are signed 64-bit (SQLite's integers): their two's-complement bits, as unsigned.
    u = np.array(keys, dtype=np.int64).view(np.uint64)
    h1 = u & np.uint64(0xFFFFFFFF)
    h2 = (u >> np.uint64(32)) | np.uint64(1)
    i = np.arange(BLOOM_HASHES, dtype=np.uint64)
    with np.errstate(over="ignore"):
        pos = h1[:, None] + i[None, :] * h2[:, None]
    return pos & np.uint64(BLOOM_BITS - 1)


def bloom(keys: Sequence[int]) -> bytes:
    import numpy as np

    # Bit ``pos`` is bit ``pos & 7`` of byte ``pos >> 3`` (what ``_hits`` reads): one bool a
    # bit, packed little-endian within each byte (a ufunc's ``at`` is several times slower, on
    # the path of the batch that closes a block).
    bits = np.zeros(BLOOM_BITS, dtype=np.bool_)
    if len(keys):
        bits[_positions(keys).ravel().astype(np.intp)] = True
    return np.packbits(bits, bitorder="little").tobytes()


def _masks(pos: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    import numpy as np

    return (np.uint8(1) << (pos & np.uint64(7)).astype(np.uint8)).astype(np.uint8)


def _block_buckets(block: int) -> list[int]:
    first = block * BUCKETS_PER_BLOCK
    return list(range(first, first + BUCKETS_PER_BLOCK))


Bloom = tuple[int, bytes]  # a closed block and its filter


class _BlockFilters:
    """The Bloom filters of the closed blocks, one row of ``filters`` per block in ``blocks``,
    checked all at once."""

    blocks: list[int]
    filters: npt.NDArray[np.uint8]
    _filter_bytes: list[bytes]

    def _load_filters(
        self, stored: dict[int, bytes], upto: int, keys_of: Callable[[int], list[int]]
    ) -> None:
        """The filters of blocks ``0 .. upto - 1``: ``stored`` ones, or rebuilt from
        ``keys_of(block)`` when missing or of the wrong size (e.g. lost to a manual edit)."""
        import numpy as np

        self.blocks = []
        filters = []
        for block in range(upto):
            bits = stored.get(block)
            if bits is None or len(bits) != BLOOM_BITS // 8:
                bits = bloom(keys_of(block))
            self.blocks.append(block)
            filters.append(np.frombuffer(bits, dtype=np.uint8))
        self.filters = np.stack(filters) if filters else np.zeros((0, BLOOM_BITS // 8), np.uint8)
        self._filter_bytes = [f.tobytes() for f in filters]

    def _add_filters(self, blooms: Sequence[tuple[int, bytes]]) -> None:
        import numpy as np

        added = [np.frombuffer(bits, dtype=np.uint8) for _, bits in blooms]
        self.filters = np.concatenate([self.filters, np.stack(added)])
        self.blocks += [b for b, _ in blooms]
        self._filter_bytes += [bits for _, bits in blooms]

    def _hits(self, keys: Sequence[int], maybe: dict[int, list[int]]) -> None:
        """Adds to ``maybe`` (block -> indexes into ``keys``) every closed block whose filter
        may hold a key."""
        import numpy as np

        if not self.blocks:
            return
        if len(keys) <= _FEW:  # numpy's fixed cost per call would outweigh a few keys' checks
            for i, k in enumerate(keys):
                for b in self._few_hits(k):
                    maybe.setdefault(self.blocks[b], []).append(i)
            return
        # In chunks, so a big batch on a journal of many blocks stays small in memory. Every
        # (filter, key) pair is checked on its first bit; only the pairs still in the running
        # are checked on the next (about a third of a full filter's bits are set), so a check
        # costs about 1.5 bit reads per pair instead of BLOOM_HASHES.
        filters = self.filters
        for start in range(0, len(keys), _CHUNK):
            pos = _positions(keys[start : start + _CHUNK])
            at = (pos >> np.uint64(3)).astype(np.intp)
            masks = _masks(pos)
            rows, cols = np.nonzero(filters[:, at[:, 0]] & masks[:, 0])
            for h in range(1, BLOOM_HASHES):
                if not len(rows):
                    break
                still = np.nonzero(filters[rows, at[cols, h]] & masks[cols, h])[0]
                rows, cols = rows[still], cols[still]
            for b, i in zip(rows.tolist(), cols.tolist(), strict=True):
                maybe.setdefault(self.blocks[b], []).append(start + i)

    @staticmethod
    def _confirm(
        conn: sqlite3.Connection,
        probe: str,
        maybe: dict[int, list[int]],
        keys: Sequence[int],
        wanted: Sequence[str],
        found: dict[str, int],
    ) -> None:
        """Each possible hit (``maybe``: block -> indexes into ``keys`` and ``wanted``) looked up
        in its block's buckets and confirmed on its row (``probe``: a query with the buckets'
        placeholders to fill, taking the key and the id); ``found`` gets each confirmed id's seq."""
        for block, indexes in maybe.items():
            buckets = _block_buckets(block)
            sql = probe.format(",".join("?" * len(buckets)))
            for i in indexes:
                row = conn.execute(sql, (*buckets, keys[i], wanted[i])).fetchone()
                if row is not None:
                    found[wanted[i]] = int(row[0])

    def _few_hits(self, key: int) -> list[int]:
        """Indexes into ``blocks`` of the filters that may hold ``key`` (``_positions`` and the
        checks of ``_hits``, for one key in plain Python)."""
        u = key & _MASK64
        h1, h2 = u & 0xFFFFFFFF, (u >> 32) | 1
        pos = [(h1 + i * h2) & (BLOOM_BITS - 1) for i in range(BLOOM_HASHES)]
        probes = [(p >> 3, 1 << (p & 7)) for p in pos]
        out = []
        for b, bits in enumerate(self._filter_bytes):
            for byte, mask in probes:
                if not bits[byte] & mask:
                    break
            else:
                out.append(b)
        return out


class EventIds(_BlockFilters):
    """The de-duplication index of one open journal (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection, last_seq: int) -> None:
        self.open_block = (last_seq + 1) >> BLOCK_BITS
        first = self.open_block * BUCKETS_PER_BLOCK
        rows = conn.execute("SELECT key FROM event_keys WHERE bucket >= ?", (first,)).fetchall()
        self.window: set[int] = {r[0] for r in rows}
        stored = dict(conn.execute("SELECT block, bits FROM id_blooms").fetchall())
        self._load_filters(stored, self.open_block, lambda block: block_keys(conn, block))
        self._staged: tuple[int, list[int], list[tuple[int, bytes]]] | None = None

    def find(
        self, conn: sqlite3.Connection, event_ids: Sequence[str], keys: Sequence[int]
    ) -> dict[str, int]:
        """The seq of each of ``event_ids`` already journaled (``keys``: their ``event_key``)."""
        maybe: dict[int, list[int]] = {}  # block -> indexes into event_ids
        for i, k in enumerate(keys):
            if k in self.window:
                maybe.setdefault(self.open_block, []).append(i)
        self._hits(keys, maybe)
        found: dict[str, int] = {}
        self._confirm(conn, _EVENT_PROBE, maybe, keys, event_ids, found)
        return found

    def stage(
        self, conn: sqlite3.Connection, new: Sequence[tuple[int, int]], last_seq: int
    ) -> None:
        """Within the batch's transaction: write the filter of each block the batch completes
        (``new``: the batch's ``(key, seq)``, in seq order). Takes effect on ``committed``."""
        new_open = (last_seq + 1) >> BLOCK_BITS
        if new_open == self.open_block:  # the usual batch: every seq in the open block
            self._staged = (new_open, [key for key, _ in new], [])
            return
        by_block: dict[int, list[int]] = {}
        for key, seq in new:
            by_block.setdefault(seq >> BLOCK_BITS, []).append(key)
        blooms = []
        for block in range(self.open_block, new_open):
            keys = by_block.get(block, [])
            if block == self.open_block:
                keys = [*self.window, *keys]
            blooms.append((block, bloom(keys)))
        if blooms:
            conn.executemany("INSERT INTO id_blooms (block, bits) VALUES (?, ?)", blooms)
        self._staged = (new_open, by_block.get(new_open, []), blooms)

    def committed(self) -> None:
        if self._staged is None:
            return
        new_open, keys, blooms = self._staged
        self._staged = None
        if blooms:
            self._add_filters(blooms)
            self.window = set(keys)
        else:
            self.window.update(keys)
        self.open_block = new_open

    def rolled_back(self) -> None:
        self._staged = None


class RowIds(_BlockFilters):
    """Which ``intents`` and ``order_rows`` row holds an intent or order id, without an index
    on the id (see the module docstring). A row's ``rowid`` (``intents.seq``,
    ``order_rows.created_seq``) is the seq of the record that created it, so rows append; an id
    is found by

    * the window: the ids of the rows created in the open block, with their rowids, in memory
      (loaded on open by a rowid range); acks, fills and decisions usually come this soon;
    * each closed block's Bloom filter of its rows' keys (``intent_key``, ``order_key``), in
      ``row_blooms``; a possible hit is looked up in ``ref_keys`` within that block's buckets
      and confirmed on the row (every row has a ``ref_keys`` row at its rowid: the store
      writes those of the ids a record names, ``projections`` the others).

    A key in neither is in no row: the filters have no false negatives and are built from the
    rows themselves, in the transaction that completes their block."""

    def __init__(self, conn: sqlite3.Connection, last_seq: int) -> None:
        self.open_block = (last_seq + 1) >> BLOCK_BITS
        first_seq = self.open_block << BLOCK_BITS
        self.intents: dict[str, int] = dict(
            conn.execute("SELECT intent_id, seq FROM intents WHERE seq >= ?", (first_seq,))
        )
        self.orders: dict[str, int] = dict(
            conn.execute(
                "SELECT client_order_id, created_seq FROM order_rows WHERE created_seq >= ?",
                (first_seq,),
            )
        )
        stored = dict(conn.execute("SELECT block, bits FROM row_blooms").fetchall())
        self._load_filters(stored, self.open_block, lambda block: row_keys(conn, block))
        # (the new open block, the rows to remember, the filters written): until committed.
        self._staged: tuple[int, dict[str, int], dict[str, int], list[Bloom]] | None = None

    def find(
        self, conn: sqlite3.Connection, intent_ids: Sequence[str], order_ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """The rowid of each of ``intent_ids`` that has an ``intents`` row, and of each of
        ``order_ids`` that has an ``order_rows`` row."""
        intents = {i: r for i in intent_ids if (r := self.intents.get(i)) is not None}
        orders = {o: r for o in order_ids if (r := self.orders.get(o)) is not None}
        if self.blocks:
            self._find_closed(conn, _INTENT_PROBE, intent_key, intent_ids, intents)
            self._find_closed(conn, _ORDER_PROBE, order_key, order_ids, orders)
        return intents, orders

    def _find_closed(
        self,
        conn: sqlite3.Connection,
        probe: str,
        key_of: Callable[[str], int],
        wanted: Sequence[str],
        found: dict[str, int],
    ) -> None:
        rest = [w for w in wanted if w not in found]
        keys = [key_of(w) for w in rest]
        maybe: dict[int, list[int]] = {}
        self._hits(keys, maybe)
        self._confirm(conn, probe, maybe, keys, rest, found)

    def stage(
        self,
        conn: sqlite3.Connection,
        new_intents: dict[str, int],
        new_orders: dict[str, int],
        last_seq: int,
    ) -> None:
        """Within the batch's transaction: the rows it created (id -> rowid), and the filter of
        each block it completes (the batch's seqs end at ``last_seq``). Takes effect on
        ``committed``."""
        new_open = (last_seq + 1) >> BLOCK_BITS
        if new_open == self.open_block:  # the usual batch: every seq in the open block
            self._staged = (new_open, new_intents, new_orders, [])
            return
        intents = {**self.intents, **new_intents}
        orders = {**self.orders, **new_orders}
        by_block: dict[int, list[int]] = {}
        for table, key_of in ((intents, intent_key), (orders, order_key)):
            for text, rowid in table.items():
                by_block.setdefault(rowid >> BLOCK_BITS, []).append(key_of(text))
        blooms = [(b, bloom(by_block.get(b, []))) for b in range(self.open_block, new_open)]
        conn.executemany("INSERT INTO row_blooms (block, bits) VALUES (?, ?)", blooms)
        first_open = new_open << BLOCK_BITS
        self._staged = (
            new_open,
            {i: r for i, r in intents.items() if r >= first_open},
            {o: r for o, r in orders.items() if r >= first_open},
            blooms,
        )

    def committed(self) -> None:
        if self._staged is None:
            return
        new_open, intents, orders, blooms = self._staged
        self._staged = None
        if blooms:  # the window is the new open block's rows alone
            self._add_filters(blooms)
            self.intents, self.orders = intents, orders
        else:
            self.intents.update(intents)
            self.orders.update(orders)
        self.open_block = new_open

    def rolled_back(self) -> None:
        self._staged = None


def block_keys(conn: sqlite3.Connection, block: int) -> list[int]:
    first = block * BUCKETS_PER_BLOCK
    rows = conn.execute(
        "SELECT key FROM event_keys WHERE bucket >= ? AND bucket < ?",
        (first, first + BUCKETS_PER_BLOCK),
    )
    return [r[0] for r in rows.fetchall()]


def row_keys(conn: sqlite3.Connection, block: int) -> list[int]:
    """The keys of the ``intents`` and ``order_rows`` rows of ``block`` (its filter's)."""
    span = (block << BLOCK_BITS, (block + 1) << BLOCK_BITS)
    intents = conn.execute("SELECT intent_id FROM intents WHERE seq >= ? AND seq < ?", span)
    out = [intent_key(r[0]) for r in intents.fetchall()]
    orders = conn.execute(
        "SELECT client_order_id FROM order_rows WHERE created_seq >= ? AND created_seq < ?", span
    )
    return out + [order_key(r[0]) for r in orders.fetchall()]
