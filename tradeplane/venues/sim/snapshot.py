"""The simulated venue's holdings as reconciliation sees them: from a running venue object, or
read from its SQLite file by a tool (``status``, ``preflight``) while no venue has it open.

Reading the file never writes and never creates anything beside it. That rules out a plain
``mode=ro`` connection: on a WAL database it creates ``-wal`` and ``-shm`` files next to it and
leaves them there. Instead:

1. A probe connection in exclusive locking mode asks SQLite for a shared lock. A running venue
   holds the exclusive lock for its whole life, so the probe fails with SQLITE_BUSY and we refuse
   (the running deployment is the one to ask). Without a venue, the probe stops at SQLite's
   attempt to take a write lock through a read-only handle, before it opens any WAL file.
2. A cleanly closed venue leaves no ``-wal``: the main file holds everything and is read with
   ``immutable=1``, which takes no locks and opens no side files.
3. A venue that crashed leaves a ``-wal`` whose committed frames are part of the record. SQLite
   can only replay it by building a WAL index beside it, so the pair is copied to a private
   temporary directory and the copy is read.

Both probes go through SQLite, never through a plain file descriptor held across the venue's
locks: closing any descriptor on a file drops every POSIX lock this process holds on it, which
would silently release a venue running in the same process.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import quote

from tradeplane.core.errors import OperationalError
from tradeplane.core.reconcile import Holdings
from tradeplane.venues.base import VenueOrderState, VenuePosition, holdings_from_venue
from tradeplane.venues.sim.store import check_file, read_working_state
from tradeplane.venues.sim.venue import SimVenue

_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def live_holdings(venue: SimVenue) -> Holdings:
    """What an open venue holds right now."""
    return holdings_from_venue(venue.positions(), venue.open_orders())


def sim_venue_db(state_dir: Path, *, shadow: bool = False) -> Path:
    """Where a deployment's simulated venue keeps its book: the paper venue's ``venue/sim.db``,
    or shadow mode's in-process virtual venue ``shadow/venue.db``."""
    return Path(state_dir) / ("shadow/venue.db" if shadow else "venue/sim.db")


def read_sim_holdings(db_path: Path) -> Holdings:
    """What the venue database at ``db_path`` holds, read without writing or locking it.

    Raises ``OperationalError`` naming the file when it is missing, in use by a running venue,
    or not an intact tradeplane sim-venue database.
    """
    path = Path(db_path)
    if not path.exists():
        raise _fail(path, "does not exist (has this deployment's sim venue ever run?)")
    if not path.is_file():
        raise _fail(path, "exists but is not a regular file")
    _refuse_if_in_use(path)
    check_file(path)
    wal = Path(f"{path}-wal")
    if wal.exists():
        positions, orders = _read_private_copy(path, wal)
    else:
        positions, orders = _read(_uri(path, "mode=ro&immutable=1"), path)
    # A venue that started while we read could have changed what we read under us.
    _refuse_if_in_use(path)
    return holdings_from_venue(positions, orders)


def check_not_in_use(db_path: Path) -> None:
    """Raise ``OperationalError`` when a running venue holds the database at ``db_path`` (it
    holds it exclusively for its whole life, so nothing else can read it consistently)."""
    _refuse_if_in_use(Path(db_path))


def _refuse_if_in_use(path: Path) -> None:
    try:
        conn = sqlite3.connect(_uri(path, "mode=ro"), uri=True, isolation_level=None, timeout=0)
    except sqlite3.Error as exc:
        raise _fail(path, f"cannot be opened read-only ({exc})") from exc
    try:
        # Heap-memory WAL index: this connection never looks for or creates a -shm file.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _BUSY_CODES:
            raise _fail(
                path, "is in use by a running deployment; ask it instead (e.g. its status)"
            ) from exc
        # Anything else (the expected refusal of a write lock, a foreign or damaged file) is
        # left to the checks that follow, which say precisely what is wrong.
    finally:
        conn.close()


def _read_private_copy(
    path: Path, wal: Path
) -> tuple[dict[str, VenuePosition], list[VenueOrderState]]:
    with tempfile.TemporaryDirectory(prefix="tradeplane-sim-snapshot-") as tmp:
        copy = Path(tmp) / path.name
        try:
            shutil.copyfile(path, copy)
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        except FileNotFoundError:
            pass  # the WAL went away: a venue checkpointed it; the post-read probe decides
        except OSError as exc:
            raise _fail(path, f"could not be copied for reading ({exc})") from exc
        # Read-write only so SQLite may build the WAL index beside the copy; nothing is written.
        return _read(_uri(copy, "mode=rw"), path)


def _read(uri: str, path: Path) -> tuple[dict[str, VenuePosition], list[VenueOrderState]]:
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=0)
    except sqlite3.Error as exc:
        raise _fail(path, f"cannot be opened read-only ({exc})") from exc
    try:
        conn.execute("PRAGMA query_only=1")
        return read_working_state(conn, path)
    except sqlite3.Error as exc:
        raise _fail(path, f"is unreadable or corrupt ({exc})") from exc
    finally:
        conn.close()


def _uri(path: Path, query: str) -> str:
    return f"file:{quote(str(path.resolve()))}?{query}"


def _fail(path: Path, what: str) -> OperationalError:
    return OperationalError(f"sim venue database {path}: {what}")
