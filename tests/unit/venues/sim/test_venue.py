from __future__ import annotations

import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import CORRUPTION_SEEDS, garbage, seed_id
from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import OperationalError
from tradeplane.core.model import Bar, OrderType, Side
from tradeplane.venues.sim import store as store_module
from tradeplane.venues.sim.model import EngineChanges, VenueEvent, VenueOrderRequest
from tradeplane.venues.sim.store import SimVenueStore
from tradeplane.venues.sim.venue import SimVenue

T0 = datetime(2024, 1, 1, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[4]


def bar(
    o: float,
    h: float,
    low: float,
    c: float,
    *,
    symbol: str = "ACME",
    minute: int = 0,
    volume: float = 1_000.0,
) -> Bar:
    return Bar(symbol, T0 + timedelta(minutes=minute), o, h, low, c, volume)


def market(coid: str, side: Side, qty: float, symbol: str = "ACME") -> VenueOrderRequest:
    return VenueOrderRequest(coid, symbol, side, qty, OrderType.MARKET, None)


def limit(
    coid: str, side: Side, qty: float, price: float, symbol: str = "ACME"
) -> VenueOrderRequest:
    return VenueOrderRequest(coid, symbol, side, qty, OrderType.LIMIT, price)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "venue" / "sim.db"


def _trade_a_little(venue: SimVenue, clock: ManualClock) -> None:
    """Orders in every status, partial fills, a flip, duplicate and cancel rejects."""
    venue.submit(market("buy", Side.BUY, 4.0))
    venue.submit(limit("rest-buy", Side.BUY, 2.0, 50.0))
    venue.submit(limit("rest-sell", Side.SELL, 3.0, 150.0, symbol="OTHER"))
    venue.submit(limit("partial", Side.SELL, 10.0, 100.0))
    venue.submit(market("bad", Side.BUY, -1.0))
    venue.submit(market("buy", Side.BUY, 1.0))
    clock.advance(60)
    venue.on_bar(bar(100.0, 101.0, 99.0, 100.5, volume=20.0))
    venue.on_bar(bar(120.0, 121.0, 119.0, 120.0, symbol="OTHER"))
    venue.submit(market("to-cancel", Side.BUY, 1.0))
    venue.cancel("to-cancel")
    venue.cancel("to-cancel")
    venue.cancel("ghost")
    clock.advance(60)
    venue.on_bar(bar(101.0, 102.0, 100.0, 101.5, minute=1, volume=20.0))


def _observable(venue: SimVenue) -> dict[str, object]:
    coids = ["buy", "rest-buy", "rest-sell", "partial", "bad", "to-cancel", "ghost"]
    return {
        "orders": {c: venue.order(c) for c in coids},
        "fills": {c: venue.fills_for(c) for c in coids},
        "open": sorted(venue.open_orders(), key=lambda o: o.client_order_id),
        "positions": venue.positions(),
        "prices": {s: venue.last_price(s) for s in ("ACME", "OTHER", "NONE")},
        "events": venue.events_since(0),
        "seq": venue.last_seq,
        "stats": venue.stats,
    }


# ---------------------------------------------------------------------------- in-memory mode


def test_open_without_path_then_in_memory_venue_behaves_like_engine(clock: ManualClock) -> None:
    venue = SimVenue.open(None, clock=clock)
    _trade_a_little(venue, clock)
    assert venue.path is None
    assert venue.positions()["ACME"].quantity == pytest.approx(4.0 - 10.0)
    assert [e.seq for e in venue.events_since(0)] == list(range(1, venue.last_seq + 1))
    venue.close()


def test_closed_venue_then_calls_raise_operational_error_and_close_is_idempotent(
    clock: ManualClock,
) -> None:
    venue = SimVenue.open(None, clock=clock)
    venue.close()
    venue.close()
    with pytest.raises(OperationalError, match="closed"):
        venue.submit(market("x", Side.BUY, 1.0))


# ------------------------------------------------------------------------------- persistence


def test_reopen_same_path_then_identical_state(db: Path, clock: ManualClock) -> None:
    with SimVenue.open(db, clock=clock, max_participation=0.25) as venue:
        _trade_a_little(venue, clock)
        before = _observable(venue)

    with SimVenue.open(db, clock=clock, max_participation=0.25) as reopened:
        assert _observable(reopened) == before


def test_reopen_then_next_seq_and_venue_order_ids_continue(db: Path, clock: ManualClock) -> None:
    with SimVenue.open(db, clock=clock) as venue:
        _trade_a_little(venue, clock)
        last_seq = venue.last_seq

    with SimVenue.open(db, clock=clock) as reopened:
        event = reopened.submit(market("after", Side.BUY, 1.0))[0]
        assert event.seq == last_seq + 1
        assert event.venue_order_id == "SIM-000006"
        assert [e.seq for e in reopened.events_since(0)] == list(range(1, last_seq + 2))


def test_reopen_then_duplicate_client_order_ids_still_rejected_and_counted(
    db: Path, clock: ManualClock
) -> None:
    with SimVenue.open(db, clock=clock) as venue:
        _trade_a_little(venue, clock)
        duplicates = venue.stats["duplicate_submits"]

    with SimVenue.open(db, clock=clock) as reopened:
        for coid in ("buy", "rest-buy", "bad", "to-cancel"):
            event = reopened.submit(market(coid, Side.BUY, 1.0))[0]
            assert (event.kind, event.reason) == ("order_rejected", "DUPLICATE_CLIENT_ORDER_ID")
        assert reopened.stats["duplicate_submits"] == duplicates + 4


def test_store_with_fill_ids_of_the_old_form_then_read_and_continued_in_that_form(
    db: Path, clock: ManualClock
) -> None:
    with SimVenue.open(db, clock=clock, max_participation=0.1) as venue:
        venue.submit(market("big", Side.BUY, 5.0))
        venue.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=20.0))
    # A store written before fill ids were derived from the client order id.
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("UPDATE fills SET fill_id = 'SIM-000001-1'")
        conn.execute("UPDATE events SET fill_id = 'SIM-000001-1' WHERE fill_id IS NOT NULL")
    conn.close()

    with SimVenue.open(db, clock=clock, max_participation=0.1) as reopened:
        assert [f.fill_id for f in reopened.fills_for("big")] == ["SIM-000001-1"]
        reopened.submit(market("new", Side.BUY, 1.0))
        events = reopened.on_bar(bar(100.0, 101.0, 99.0, 100.0, minute=1, volume=20.0))
        assert [e.fill.fill_id for e in events if e.fill] == ["SIM-000001-2", "SIM-new-1"]
        stored = [e.fill.fill_id for e in reopened.events_since(0) if e.fill]
        assert stored == ["SIM-000001-1", "SIM-000001-2", "SIM-new-1"]


def test_reopen_then_resting_orders_keep_filling_with_continued_fill_numbers(
    db: Path, clock: ManualClock
) -> None:
    with SimVenue.open(db, clock=clock, max_participation=0.1) as venue:
        venue.submit(market("big", Side.BUY, 5.0))
        venue.on_bar(bar(100.0, 101.0, 99.0, 100.0, volume=20.0))

    with SimVenue.open(db, clock=clock, max_participation=0.1) as reopened:
        events = reopened.on_bar(bar(100.0, 101.0, 99.0, 100.0, minute=1, volume=20.0))
        assert [e.fill.fill_id for e in events if e.fill] == ["SIM-big-2"]
        assert reopened.order("big").filled_quantity == pytest.approx(4.0)  # type: ignore[union-attr]


def test_reject_then_rejection_persisted_like_a_genuine_one(db: Path, clock: ManualClock) -> None:
    with SimVenue.open(db, clock=clock) as venue:
        venue.submit(market("a", Side.BUY, 1.0))
        event = venue.reject(limit("x", Side.BUY, 1.0, 90.0), "INJECTED_REJECT")[0]
        assert (event.seq, event.kind, event.reason) == (2, "order_rejected", "INJECTED_REJECT")

    with SimVenue.open(db, clock=clock) as reopened:
        order = reopened.order("x")
        assert order is not None and (order.status, order.reason) == ("rejected", "INJECTED_REJECT")
        assert reopened.events_since(1) == [event]
        assert reopened.stats["rejects"] == 1
        assert reopened.submit(market("x", Side.BUY, 1.0))[0].reason == (
            "DUPLICATE_CLIENT_ORDER_ID"
        )


def test_reject_on_closed_venue_then_operational_error(clock: ManualClock) -> None:
    venue = SimVenue.open(None, clock=clock)
    venue.close()
    with pytest.raises(OperationalError, match="closed"):
        venue.reject(market("x", Side.BUY, 1.0), "INJECTED_REJECT")


def test_bars_without_events_then_nothing_written_but_last_prices_saved_on_close(
    db: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[int] = []
    original = SimVenueStore.commit

    def counting_commit(self: SimVenueStore, events: list[VenueEvent], c: EngineChanges) -> None:
        commits.append(len(list(events)))
        original(self, events, c)

    monkeypatch.setattr(SimVenueStore, "commit", counting_commit)
    venue = SimVenue.open(db, clock=clock)
    venue.submit(limit("far", Side.BUY, 1.0, 1.0))
    assert commits == [1]
    for minute in range(50):
        venue.on_bar(bar(100.0, 101.0, 99.0, 100.0 + minute / 100, minute=minute))
        venue.on_bar(bar(10.0, 11.0, 9.0, 10.0, symbol="QUIET", minute=minute))
    assert commits == [1]
    venue.close()
    assert commits == [1, 0]

    with SimVenue.open(db, clock=clock) as reopened:
        assert reopened.last_price("ACME") == 100.49
        assert reopened.last_price("QUIET") == 10.0


def test_committed_calls_survive_a_crash_without_close(db: Path) -> None:
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from tradeplane.core.clock import ManualClock
        from tradeplane.core.model import OrderType, Side
        from tradeplane.venues.sim import SimVenue, VenueOrderRequest
        venue = SimVenue.open(Path({str(db)!r}), clock=ManualClock())
        venue.submit(VenueOrderRequest("kept", "ACME", Side.BUY, 1.0, OrderType.LIMIT, 90.0))
        venue.cancel("kept")
        venue.submit(VenueOrderRequest("open", "ACME", Side.SELL, 2.0, OrderType.LIMIT, 110.0))
        os._exit(0)  # no close(), no atexit: as abrupt as a kill
    """)
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True, timeout=60)

    with SimVenue.open(db, clock=ManualClock()) as venue:
        assert venue.order("kept").status == "cancelled"  # type: ignore[union-attr]
        assert [o.client_order_id for o in venue.open_orders()] == ["open"]
        assert venue.last_seq == 3


def test_in_memory_mode_then_no_files_written(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SimVenue.open(None, clock=clock) as venue:
        _trade_a_little(venue, clock)
    assert list(tmp_path.iterdir()) == []


def test_write_failure_then_venue_refuses_further_calls(
    db: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = SimVenue.open(db, clock=clock)

    def failing_commit(self: SimVenueStore, events: object, changes: object) -> None:
        raise OperationalError(f"sim venue database {self.path}: disk full")

    monkeypatch.setattr(SimVenueStore, "commit", failing_commit)
    with pytest.raises(OperationalError, match="disk full"):
        venue.submit(market("x", Side.BUY, 1.0))
    monkeypatch.undo()
    with pytest.raises(OperationalError, match="earlier write failed"):
        venue.submit(market("y", Side.BUY, 1.0))
    venue.close()
    with SimVenue.open(db, clock=clock) as reopened:
        assert reopened.order("x") is None and reopened.last_seq == 0


# ------------------------------------------------------------------------ files and failures


def test_created_files_are_private_and_parent_dir_is_0700(db: Path, clock: ManualClock) -> None:
    with SimVenue.open(db, clock=clock) as venue:
        venue.submit(market("x", Side.BUY, 1.0))
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
        written = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
        assert db in written
        for path in written:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert [p.name for p in db.parent.iterdir()] == [db.name]


def test_second_open_while_first_is_open_then_operational_error(
    db: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_LOCK_WAIT_S", 0.0)
    with SimVenue.open(db, clock=clock):
        with pytest.raises(OperationalError, match="in use") as caught:
            SimVenue.open(db, clock=clock)
        assert str(db) in str(caught.value)


def _assert_refused(path: Path, clock: ManualClock, message: str) -> None:
    before = path.read_bytes()
    with pytest.raises(OperationalError, match=message) as caught:
        SimVenue.open(path, clock=clock)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before, "the file must never be recreated or modified"


def test_foreign_sqlite_file_then_operational_error_naming_path(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "foreign.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    _assert_refused(path, clock, "not a tradeplane sim-venue database")


def test_sqlite_file_with_other_format_marker_then_operational_error(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('format', 'someone-else')")
    _assert_refused(path, clock, "format marker")


def test_database_from_newer_version_then_operational_error(db: Path, clock: ManualClock) -> None:
    SimVenue.open(db, clock=clock).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
    conn.close()
    _assert_refused(db, clock, "version '99' is not supported")


@pytest.mark.parametrize("seed", CORRUPTION_SEEDS, ids=seed_id)
def test_garbage_bytes_then_operational_error_naming_path(
    tmp_path: Path, clock: ManualClock, seed: int
) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(garbage(seed, 4096))
    _assert_refused(path, clock, "not an SQLite database")


def test_empty_file_then_operational_error_not_silently_recreated(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    _assert_refused(path, clock, "empty")


@pytest.mark.parametrize("keep", [50, 4096, 0.5, -4096, -1])
def test_truncated_database_then_operational_error_naming_path(
    tmp_path: Path, db: Path, clock: ManualClock, keep: float
) -> None:
    with SimVenue.open(db, clock=clock) as venue:
        for i in range(200):
            venue.submit(limit(f"o{i}", Side.BUY, 1.0, 10.0))
    data = db.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path = tmp_path / "truncated.db"
    path.write_bytes(data[:cut])
    _assert_refused(path, clock, "truncated|corrupt")


def test_path_is_a_directory_then_operational_error(tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(OperationalError, match="not a regular file"):
        SimVenue.open(tmp_path, clock=clock)


def test_copy_of_database_with_wal_opens_with_same_state(
    tmp_path: Path, db: Path, clock: ManualClock
) -> None:
    venue = SimVenue.open(db, clock=clock)
    _trade_a_little(venue, clock)
    expected_events = venue.events_since(0)
    copy = tmp_path / "copy.db"
    # Copy while still open: the last commits may live only in the WAL, as after a crash.
    shutil.copy(db, copy)
    if Path(f"{db}-wal").exists():
        shutil.copy(f"{db}-wal", f"{copy}-wal")
    venue.close()
    with SimVenue.open(copy, clock=clock) as restored:
        assert restored.events_since(0) == expected_events
