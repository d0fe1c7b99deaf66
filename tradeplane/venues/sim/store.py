"""SQLite persistence for the simulated venue: one transaction per state change.

The database is opened in exclusive locking mode so a second process cannot open the same venue
and let two in-memory copies of it drift apart. A new database is built under a temporary name
and linked into place only once its schema is committed, so a crash during creation never leaves
a half-made file that a later open would have to guess about.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tradeplane.core.errors import OperationalError
from tradeplane.core.model import OrderType, Side
from tradeplane.durable import fsync_dir
from tradeplane.venues.sim.model import (
    WORKING_STATUSES,
    EngineChanges,
    EngineState,
    VenueEvent,
    VenueFill,
    VenueOrderState,
    VenuePosition,
)

FORMAT_MARKER = "tradeplane-sim-venue"
FORMAT_VERSION = 1
SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_MIN_SIZE = 100  # the database header alone is 100 bytes
_LOCK_WAIT_S = 2.0

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY, venue_order_id TEXT, symbol TEXT NOT NULL,
    side TEXT NOT NULL, quantity TEXT NOT NULL, order_type TEXT NOT NULL, limit_price TEXT,
    status TEXT NOT NULL, filled_quantity REAL NOT NULL, avg_fill_price REAL NOT NULL,
    fees REAL NOT NULL, reason TEXT, created_ts REAL NOT NULL, updated_ts REAL NOT NULL
);
CREATE TABLE fills (
    fill_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, client_order_id TEXT NOT NULL,
    venue_order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    quantity REAL NOT NULL, price REAL NOT NULL, fee REAL NOT NULL, ts REAL NOT NULL,
    liquidity TEXT NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, client_order_id TEXT NOT NULL,
    venue_order_id TEXT, ts REAL NOT NULL, reason TEXT, fill_id TEXT REFERENCES fills(fill_id)
);
CREATE TABLE positions (symbol TEXT PRIMARY KEY, quantity REAL NOT NULL, avg_price REAL NOT NULL);
CREATE TABLE last_prices (symbol TEXT PRIMARY KEY, price REAL NOT NULL);
"""

_ORDER_COLUMNS = (
    "client_order_id, venue_order_id, symbol, side, quantity, order_type, limit_price, status, "
    "filled_quantity, avg_fill_price, fees, reason, created_ts, updated_ts"
)
_FILL_COLUMNS = (
    "fill_id, client_order_id, venue_order_id, symbol, side, quantity, price, fee, ts, liquidity"
)
_UPSERT_ORDER = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ({', '.join('?' * 14)}) "
    "ON CONFLICT(client_order_id) DO UPDATE SET venue_order_id=excluded.venue_order_id, "
    "status=excluded.status, filled_quantity=excluded.filled_quantity, "
    "avg_fill_price=excluded.avg_fill_price, fees=excluded.fees, reason=excluded.reason, "
    "updated_ts=excluded.updated_ts"
)


def _float_text(value: float) -> str:
    # Rejected orders may carry NaN/inf, which a REAL column would silently turn into NULL.
    return repr(float(value))


def _order_row(o: VenueOrderState) -> tuple[Any, ...]:
    limit = None if o.limit_price is None else _float_text(o.limit_price)
    return (
        o.client_order_id,
        o.venue_order_id,
        o.symbol,
        o.side.value,
        _float_text(o.quantity),
        o.order_type.value,
        limit,
        o.status,
        o.filled_quantity,
        o.avg_fill_price,
        o.fees,
        o.reason,
        o.created_ts,
        o.updated_ts,
    )


def _order_from_row(r: sqlite3.Row) -> VenueOrderState:
    return VenueOrderState(
        r["client_order_id"],
        r["venue_order_id"],
        r["symbol"],
        Side(r["side"]),
        float(r["quantity"]),
        OrderType(r["order_type"]),
        None if r["limit_price"] is None else float(r["limit_price"]),
        r["status"],
        r["filled_quantity"],
        r["avg_fill_price"],
        r["fees"],
        r["reason"],
        r["created_ts"],
        r["updated_ts"],
    )


def _fill_from_row(r: sqlite3.Row) -> VenueFill:
    return VenueFill(
        r["fill_id"],
        r["client_order_id"],
        r["venue_order_id"],
        r["symbol"],
        Side(r["side"]),
        r["quantity"],
        r["price"],
        r["fee"],
        r["ts"],
        r["liquidity"],
    )


class SimVenueStore:
    """Owns the SQLite connection of one persistent simulated venue."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    # ------------------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: Path) -> SimVenueStore:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, mode=0o700)
        except FileExistsError:
            pass  # an existing directory keeps the permissions its owner chose
        else:
            path.parent.chmod(0o700)  # mkdir's mode is filtered through the umask
        if not path.exists():
            _create(path)
        _check_header(path)
        conn = _connect(path)
        store = cls(path, conn)
        try:
            store._check_format()  # read-only: a foreign file must come out untouched
            store._take_ownership()
        except BaseException:
            conn.close()
            raise
        return store

    def _fail(self, what: str) -> OperationalError:
        return OperationalError(f"sim venue database {self.path}: {what}")

    def _sqlite_failure(self, exc: sqlite3.Error) -> OperationalError:
        if "locked" in str(exc) or "busy" in str(exc):
            return self._fail(f"is in use by another process ({exc})")
        return self._fail(f"is unreadable or corrupt ({exc})")

    def _take_ownership(self) -> None:
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise self._fail(f"cannot enable WAL journaling (got {mode!r})")
            self._conn.execute("PRAGMA synchronous=FULL")
            # Take the exclusive lock now, so a second opener fails at open, not mid-trading.
            self._conn.execute("BEGIN EXCLUSIVE")
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._sqlite_failure(exc) from exc

    def _check_format(self) -> None:
        try:
            tables = {
                r[0]
                for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "meta" not in tables:
                raise self._fail(
                    "is an SQLite database but not a tradeplane sim-venue database "
                    f"(no meta table; tables: {sorted(tables) or 'none'}); refusing to touch it"
                )
            meta = self._meta()
            if meta.get("format") != FORMAT_MARKER:
                raise self._fail(
                    f"format marker is {meta.get('format')!r}, expected {FORMAT_MARKER!r}"
                )
            if meta.get("version") != str(FORMAT_VERSION):
                raise self._fail(
                    f"format version {meta.get('version')!r} is not supported "
                    f"(this build reads version {FORMAT_VERSION})"
                )
            check = [r[0] for r in self._conn.execute("PRAGMA quick_check")]
            if check != ["ok"]:
                raise self._fail(f"is corrupt (integrity check: {'; '.join(check[:5])})")
            max_seq = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            if int(meta.get("last_seq", -1)) != max_seq:
                raise self._fail(
                    f"is inconsistent: meta last_seq={meta.get('last_seq')} but the last "
                    f"stored event is {max_seq}"
                )
        except sqlite3.Error as exc:
            raise self._sqlite_failure(exc) from exc

    def _meta(self) -> dict[str, str]:
        return {k: v for k, v in self._conn.execute("SELECT key, value FROM meta")}

    # ------------------------------------------------------------------------------ reading

    def load(self) -> EngineState:
        try:
            conn = self._conn
            meta = self._meta()
            # rowid order is submit order: upserts keep the rowid of the first insert.
            orders = [
                _order_from_row(r)
                for r in conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders ORDER BY rowid")
            ]
            fills = [
                _fill_from_row(r)
                for r in conn.execute(f"SELECT {_FILL_COLUMNS} FROM fills ORDER BY seq")
            ]
            positions = {
                r["symbol"]: VenuePosition(r["symbol"], r["quantity"], r["avg_price"])
                for r in conn.execute("SELECT symbol, quantity, avg_price FROM positions")
            }
            prices = {
                r["symbol"]: r["price"]
                for r in conn.execute("SELECT symbol, price FROM last_prices")
            }
            return EngineState(
                orders=orders,
                fills=fills,
                positions=positions,
                last_prices=prices,
                last_seq=int(meta["last_seq"]),
                order_counter=int(meta["order_counter"]),
                stats={k: int(v) for k, v in json.loads(meta["stats"]).items()},
            )
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            raise self._fail(f"could not be loaded ({type(exc).__name__}: {exc})") from exc

    def events_since(self, seq: int, limit: int) -> list[VenueEvent]:
        rows = self._conn.execute(
            "SELECT e.seq, e.kind, e.client_order_id AS event_coid, "
            "e.venue_order_id AS event_vid, e.ts AS event_ts, e.reason, "
            f"{', '.join('f.' + c for c in _FILL_COLUMNS.split(', '))} "
            "FROM events e LEFT JOIN fills f ON f.fill_id = e.fill_id "
            "WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (seq, max(0, limit)),
        )
        return [
            VenueEvent(
                r["seq"],
                r["kind"],
                r["event_coid"],
                r["event_vid"],
                r["event_ts"],
                r["reason"],
                None if r["fill_id"] is None else _fill_from_row(r),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------------------ writing

    def commit(self, events: Iterable[VenueEvent], changes: EngineChanges) -> None:
        """Write one call's effect atomically; on failure nothing is written and we raise."""
        with self._transaction():
            conn = self._conn
            if changes.orders:
                conn.executemany(_UPSERT_ORDER, [_order_row(o) for o in changes.orders.values()])
            for event in events:
                fill = event.fill
                if fill is not None:
                    conn.execute(
                        f"INSERT INTO fills (seq, {_FILL_COLUMNS}) VALUES ({', '.join('?' * 11)})",
                        (
                            event.seq,
                            fill.fill_id,
                            fill.client_order_id,
                            fill.venue_order_id,
                            fill.symbol,
                            fill.side.value,
                            fill.quantity,
                            fill.price,
                            fill.fee,
                            fill.ts,
                            fill.liquidity,
                        ),
                    )
                conn.execute(
                    "INSERT INTO events (seq, kind, client_order_id, venue_order_id, ts, reason, "
                    "fill_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.seq,
                        event.kind,
                        event.client_order_id,
                        event.venue_order_id,
                        event.ts,
                        event.reason,
                        None if fill is None else fill.fill_id,
                    ),
                )
            for symbol, position in changes.positions.items():
                if position.quantity == 0.0:
                    conn.execute("DELETE FROM positions WHERE symbol = ?", (symbol,))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO positions (symbol, quantity, avg_price) "
                        "VALUES (?, ?, ?)",
                        (symbol, position.quantity, position.avg_price),
                    )
            if changes.last_prices:
                conn.executemany(
                    "INSERT OR REPLACE INTO last_prices (symbol, price) VALUES (?, ?)",
                    list(changes.last_prices.items()),
                )
            conn.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                [
                    (str(changes.last_seq), "last_seq"),
                    (str(changes.order_counter), "order_counter"),
                    (json.dumps(changes.stats, sort_keys=True), "stats"),
                ],
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._fail(f"could not start a transaction ({exc})") from exc
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._fail(f"write failed and was rolled back ({exc})") from exc
            raise

    def close(self) -> None:
        self._conn.close()


def check_file(path: Path) -> None:
    """The checks ``SimVenueStore.open`` makes before SQLite touches a file (header, size), for
    readers that open the database themselves. Reads the first page only; never writes."""
    _check_header(path)


def read_working_state(
    conn: sqlite3.Connection, path: Path
) -> tuple[dict[str, VenuePosition], list[VenueOrderState]]:
    """Positions and working orders through a connection the caller opened read-only (or to a
    private copy), after the same format checks ``open`` makes. ``path`` names the file in
    messages. Reads only what a snapshot needs, not the whole fill history ``load`` builds."""
    conn.row_factory = sqlite3.Row
    store = SimVenueStore(path, conn)
    store._check_format()
    working = sorted(WORKING_STATUSES)
    try:
        positions = {
            r["symbol"]: VenuePosition(r["symbol"], r["quantity"], r["avg_price"])
            for r in conn.execute("SELECT symbol, quantity, avg_price FROM positions")
        }
        orders = [
            _order_from_row(r)
            for r in conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders "
                f"WHERE status IN ({', '.join('?' * len(working))}) ORDER BY rowid",
                working,
            )
        ]
    except (sqlite3.Error, KeyError, ValueError) as exc:
        raise store._fail(f"could not be read ({type(exc).__name__}: {exc})") from exc
    return positions, orders


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(
            path, isolation_level=None, timeout=_LOCK_WAIT_S, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise OperationalError(f"sim venue database {path}: cannot open ({exc})") from exc
    conn.row_factory = sqlite3.Row
    # Must precede the first read: the WAL index then lives in process memory and the locks,
    # once taken, are held until close.
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    return conn


def _check_header(path: Path) -> None:
    if not path.is_file():
        raise OperationalError(f"sim venue database {path}: exists but is not a regular file")
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.read(_SQLITE_MIN_SIZE)
    if size == 0:
        raise OperationalError(
            f"sim venue database {path}: is empty (0 bytes), not a sim-venue database; "
            "refusing to recreate it over an existing file"
        )
    if header[: len(SQLITE_HEADER)] != SQLITE_HEADER:
        raise OperationalError(
            f"sim venue database {path}: is not an SQLite database (header {header[:16]!r}); "
            "refusing to touch it"
        )
    if size < _SQLITE_MIN_SIZE:
        raise OperationalError(f"sim venue database {path}: is truncated ({size} bytes)")
    # SQLite only ever writes whole pages and would read a cut-off tail as if it were fine.
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or size % page_size:
        raise OperationalError(
            f"sim venue database {path}: is truncated ({size} bytes is not a whole number of "
            f"{page_size}-byte pages)"
        )
    # The page count in the header is authoritative when its change counter is current; a WAL
    # left by a crash may legitimately still hold pages the file does not have yet.
    counter_current = header[24:28] == header[92:96]
    declared_pages = int.from_bytes(header[28:32], "big")
    wal = Path(f"{path}-wal")
    if counter_current and declared_pages * page_size > size and not wal.exists():
        raise OperationalError(
            f"sim venue database {path}: is truncated ({size} bytes, header declares "
            f"{declared_pages} pages of {page_size} bytes)"
        )


def _create(path: Path) -> None:
    staging = path.with_name(path.name + ".creating")
    for leftover in (staging, Path(f"{staging}-wal"), Path(f"{staging}-shm")):
        # Only ever a remnant of our own interrupted creation: it was never linked into place.
        leftover.unlink(missing_ok=True)
    fd = os.open(staging, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    conn = sqlite3.connect(staging, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        # Statements run one by one: executescript() would COMMIT our transaction early.
        for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("format", FORMAT_MARKER),
                ("version", str(FORMAT_VERSION)),
                ("last_seq", "0"),
                ("order_counter", "0"),
                ("stats", json.dumps({})),
            ],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    with open(staging, "rb") as fh:
        os.fsync(fh.fileno())
    try:
        # link() refuses to overwrite: if someone created the path meanwhile, we never clobber.
        os.link(staging, path)
    except FileExistsError:
        pass
    finally:
        staging.unlink(missing_ok=True)
    fsync_dir(path.parent)
