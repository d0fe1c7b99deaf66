from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tradeplane.core.clock import ManualClock
from tradeplane.core.errors import OperationalError
from tradeplane.core.model import Bar, OrderType, Side
from tradeplane.core.reconcile import Holdings, LiveOrder
from tradeplane.venues.sim.model import VenueOrderRequest, VenueOrderState, VenuePosition
from tradeplane.venues.sim.snapshot import holdings_from_venue, live_holdings, read_sim_holdings
from tradeplane.venues.sim.venue import SimVenue

T0 = datetime(2024, 1, 1, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[4]


def trade(venue: SimVenue) -> None:
    """A filled long in AAA, a filled short in BBB, one limit order left open, one cancelled."""
    venue.submit(VenueOrderRequest("buy-aaa", "AAA", Side.BUY, 10.0, OrderType.MARKET))
    venue.submit(VenueOrderRequest("sell-bbb", "BBB", Side.SELL, 3.0, OrderType.MARKET))
    venue.submit(VenueOrderRequest("rest", "AAA", Side.BUY, 5.0, OrderType.LIMIT, 90.0))
    venue.submit(VenueOrderRequest("gone", "AAA", Side.SELL, 1.0, OrderType.LIMIT, 150.0))
    venue.cancel("gone")
    for symbol in ("AAA", "BBB"):
        venue.on_bar(Bar(symbol, T0, 100.0, 101.0, 99.0, 100.0, 1_000.0))


EXPECTED = Holdings(
    positions={"AAA": 10.0, "BBB": -3.0},
    open_orders=(
        LiveOrder("rest", "SIM-000003", "AAA", "buy", 5.0, 5.0, "limit", 90.0, "accepted"),
    ),
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "venue" / "sim.db"
    with SimVenue.open(path, clock=ManualClock()) as venue:
        trade(venue)
    return path


def fingerprint(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def test_live_holdings_are_the_open_venues_positions_and_working_orders(tmp_path: Path) -> None:
    with SimVenue.open(None, clock=ManualClock()) as venue:
        trade(venue)
        assert live_holdings(venue) == EXPECTED


def test_holdings_from_a_venue_report_leave_out_flat_positions_and_finished_orders() -> None:
    def order(coid: str, status: str, filled: float) -> VenueOrderState:
        return VenueOrderState(
            coid, "V-" + coid, "AAA", Side.SELL, 4.0, OrderType.LIMIT, 120.0, status, filled,
            120.0 if filled else 0.0, 0.0, None, 0.0, 0.0,
        )  # fmt: skip

    holdings = holdings_from_venue(
        {"AAA": VenuePosition("AAA", -1.5, 100.0), "BBB": VenuePosition("BBB", 0.0, 0.0)},
        [order("part", "partially_filled", 1.0), order("done", "filled", 4.0)],
    )
    assert holdings.positions == {"AAA": -1.5}
    assert holdings.open_orders == (
        LiveOrder("part", "V-part", "AAA", "sell", 4.0, 3.0, "limit", 120.0, "partially_filled"),
    )


def test_a_closed_venues_file_reads_as_the_same_holdings(db_path: Path) -> None:
    assert read_sim_holdings(db_path) == EXPECTED


def test_reading_leaves_the_file_byte_identical_and_creates_nothing(db_path: Path) -> None:
    before = fingerprint(db_path.parent)
    assert set(before) == {"sim.db"}
    read_sim_holdings(db_path)
    read_sim_holdings(db_path)
    assert fingerprint(db_path.parent) == before


def test_reading_does_not_stop_the_venue_from_opening_again(db_path: Path) -> None:
    read_sim_holdings(db_path)
    with SimVenue.open(db_path, clock=ManualClock()) as venue:
        assert live_holdings(venue) == EXPECTED


def test_what_a_crashed_venue_left_in_its_write_ahead_log_is_read(db_path: Path) -> None:
    # A venue that dies without closing leaves committed writes in sim.db-wal only.
    script = textwrap.dedent(
        f"""
        import os
        from datetime import UTC, datetime
        from pathlib import Path
        from tradeplane.core.clock import ManualClock
        from tradeplane.core.model import Bar, OrderType, Side
        from tradeplane.venues.sim.model import VenueOrderRequest
        from tradeplane.venues.sim.venue import SimVenue
        venue = SimVenue.open(Path({str(db_path)!r}), clock=ManualClock())
        venue.submit(VenueOrderRequest("crash", "CCC", Side.BUY, 2.0, OrderType.MARKET))
        venue.on_bar(Bar("CCC", datetime(2024, 1, 1, 0, 1, tzinfo=UTC), 50, 51, 49, 50, 1e3))
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO_ROOT, timeout=120)
    before = fingerprint(db_path.parent)
    assert "sim.db-wal" in before

    holdings = read_sim_holdings(db_path)

    assert holdings.positions == {"AAA": 10.0, "BBB": -3.0, "CCC": 2.0}
    assert fingerprint(db_path.parent) == before


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "venue" / "sim.db"
    with pytest.raises(OperationalError, match=r"sim\.db: does not exist"):
        read_sim_holdings(path)
    assert not path.parent.exists()  # nothing created on the way


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="not a regular file"):
        read_sim_holdings(tmp_path)


def test_a_file_held_by_a_running_venue_is_refused_as_in_use(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    with SimVenue.open(path, clock=ManualClock()) as venue:
        trade(venue)
        with pytest.raises(OperationalError) as refused:
            read_sim_holdings(path)
        message = str(refused.value)
        assert str(path) in message
        assert "in use by a running deployment; ask it instead" in message
        # The venue is unharmed and still trades.
        venue.submit(VenueOrderRequest("after", "AAA", Side.BUY, 1.0, OrderType.MARKET))
        venue.on_bar(Bar("AAA", T0 + timedelta(minutes=1), 100.0, 101.0, 99.0, 100.0, 1e3))
        assert live_holdings(venue).positions["AAA"] == 11.0
    assert read_sim_holdings(path).positions["AAA"] == 11.0


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"", "is empty"),
        (b"these are not the bytes you are looking for" * 100, "not an SQLite database"),
        (b"SQLite format 3\x00" + b"\x00" * 50, "truncated"),
    ],
)
def test_a_file_that_is_not_a_sim_venue_database_is_refused(
    tmp_path: Path, content: bytes, complaint: str
) -> None:
    path = tmp_path / "sim.db"
    path.write_bytes(content)
    with pytest.raises(OperationalError, match=complaint) as refused:
        read_sim_holdings(path)
    assert str(path) in str(refused.value)
    assert path.read_bytes() == content
    assert {p.name for p in tmp_path.iterdir()} == {"sim.db"}


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    before = fingerprint(tmp_path)
    with pytest.raises(OperationalError, match="not a tradeplane sim-venue database"):
        read_sim_holdings(path)
    assert fingerprint(tmp_path) == before


def test_a_damaged_database_is_refused(db_path: Path) -> None:
    data = bytearray(db_path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size : 3 * page_size] = b"\xa5" * (2 * page_size)  # scribble over tables
    db_path.write_bytes(bytes(data))
    with pytest.raises(OperationalError, match=str(db_path)):
        read_sim_holdings(db_path)
