from __future__ import annotations

import json
from typing import Any

import pytest

from tradeplane.core.model import OrderType, Side
from tradeplane.core.reconcile import (
    ExpectedOrder,
    Holdings,
    LiveOrder,
    ReconciliationReport,
    adopted_positions,
    expected_from_journal,
    reconcile,
)

T = 1_700_000_000.0
OUR_ID = "tp0123456789abcdef01234567"


def ours(
    coid: str = OUR_ID,
    *,
    symbol: str = "AAA",
    side: str = "buy",
    remaining: float = 5.0,
    order_type: str = "limit",
    limit_price: float | None = 90.0,
) -> ExpectedOrder:
    return ExpectedOrder(
        coid, "sma", symbol, side, remaining, remaining, order_type, limit_price, "accepted"
    )


def theirs(
    coid: str | None = OUR_ID,
    venue_id: str | None = "V-1",
    *,
    symbol: str = "AAA",
    side: str = "buy",
    remaining: float = 5.0,
    order_type: str = "limit",
    limit_price: float | None = 90.0,
) -> LiveOrder:
    return LiveOrder(
        coid, venue_id, symbol, side, remaining, remaining, order_type, limit_price, "accepted"
    )


def run(
    expected_positions: dict[str, float] | None = None,
    live_positions: dict[str, float] | None = None,
    expected_orders: tuple[Any, ...] = (),
    live_orders: tuple[Any, ...] = (),
    **kwargs: Any,
) -> ReconciliationReport:
    return reconcile(
        Holdings(expected_positions or {}, expected_orders),
        Holdings(live_positions or {}, live_orders),
        checked_at=T,
        **kwargs,
    )


def test_identical_holdings_are_clean() -> None:
    report = run({"AAA": 10.0, "BBB": -2.0}, {"AAA": 10.0, "BBB": -2.0}, (ours(),), (theirs(),))
    assert report.clean
    assert report.mismatch_count == 0
    assert report.summary() == "clean"


def test_a_position_in_the_journal_but_flat_at_the_venue_is_missing() -> None:
    report = run({"AAA": 10.0}, {})
    assert report.missing_positions == [{"symbol": "AAA", "expected": 10.0}]
    assert not report.clean
    assert report.mismatch_count == 1


def test_a_position_only_at_the_venue_is_unexpected() -> None:
    report = run({}, {"AAA": -3.0})
    assert report.unexpected_positions == [{"symbol": "AAA", "venue": -3.0}]
    assert not report.clean


def test_a_position_of_a_different_size_is_a_quantity_mismatch_with_venue_minus_journal() -> None:
    report = run({"AAA": 10.0}, {"AAA": 14.0})
    assert report.quantity_mismatches == [
        {"kind": "position", "symbol": "AAA", "expected": 10.0, "venue": 14.0, "difference": 4.0}
    ]
    assert report.missing_positions == report.unexpected_positions == []


def test_a_position_that_flipped_side_is_a_quantity_mismatch() -> None:
    report = run({"AAA": 5.0}, {"AAA": -5.0})
    assert [m["difference"] for m in report.quantity_mismatches] == [-10.0]


def test_an_open_order_of_ours_not_open_at_the_venue_is_missing() -> None:
    report = run(expected_orders=(ours(),))
    assert [o["client_order_id"] for o in report.missing_orders] == [OUR_ID]
    assert report.missing_orders[0]["strategy"] == "sma"
    assert report.missing_orders[0]["status"] == "accepted"


def test_an_order_at_the_venue_we_do_not_know_is_unexpected() -> None:
    report = run(live_orders=(theirs("manual-1", "V-9"),))
    assert [(o["client_order_id"], o["venue_order_id"]) for o in report.unexpected_orders] == [
        ("manual-1", "V-9")
    ]


def test_an_order_matched_by_id_with_a_different_remaining_quantity_is_a_mismatch() -> None:
    report = run(expected_orders=(ours(remaining=5.0),), live_orders=(theirs(remaining=2.0),))
    assert report.quantity_mismatches == [
        {
            "kind": "order",
            "client_order_id": OUR_ID,
            "symbol": "AAA",
            "expected": 5.0,
            "venue": 2.0,
            "difference": -3.0,
        }
    ]
    assert report.missing_orders == report.unexpected_orders == []


def test_the_same_id_with_different_terms_is_named_on_both_sides() -> None:
    report = run(expected_orders=(ours(side="buy"),), live_orders=(theirs(side="sell"),))
    assert [o["client_order_id"] for o in report.missing_orders] == [OUR_ID]
    assert [o["client_order_id"] for o in report.unexpected_orders] == [OUR_ID]
    assert "different terms" in report.missing_orders[0]["note"]


def test_a_venue_order_that_lost_our_id_is_matched_by_fingerprint() -> None:
    report = run(expected_orders=(ours(),), live_orders=(theirs(None, "V-7"),))
    assert report.clean
    assert report.matched_by_fingerprint == [
        {"client_order_id": OUR_ID, "venue_order_id": "V-7", "venue_client_order_id": None}
    ]
    assert report.summary() == "clean (1 order matched by fingerprint)"


def test_fingerprint_matching_is_one_to_one() -> None:
    two_at_venue = run(
        expected_orders=(ours(),), live_orders=(theirs(None, "V-1"), theirs(None, "V-2"))
    )
    assert [m["venue_order_id"] for m in two_at_venue.matched_by_fingerprint] == ["V-1"]
    assert [o["venue_order_id"] for o in two_at_venue.unexpected_orders] == ["V-2"]

    two_of_ours = run(expected_orders=(ours("tp-a"), ours("tp-b")), live_orders=(theirs(None),))
    assert [m["client_order_id"] for m in two_of_ours.matched_by_fingerprint] == ["tp-a"]
    assert [o["client_order_id"] for o in two_of_ours.missing_orders] == ["tp-b"]


@pytest.mark.parametrize(
    "different",
    [
        {"symbol": "BBB"},
        {"side": "sell"},
        {"remaining": 4.0},
        {"order_type": "market", "limit_price": None},
        {"limit_price": 90.01},
    ],
)
def test_a_fingerprint_differing_in_any_part_does_not_match(different: dict[str, Any]) -> None:
    report = run(expected_orders=(ours(),), live_orders=(theirs("manual-1", **different),))
    assert report.matched_by_fingerprint == []
    assert len(report.missing_orders) == len(report.unexpected_orders) == 1


def test_a_limit_price_off_by_float_rounding_still_matches_the_fingerprint() -> None:
    report = run(
        expected_orders=(ours(limit_price=0.1 + 0.2),), live_orders=(theirs(None, limit_price=0.3),)
    )
    assert report.clean
    assert len(report.matched_by_fingerprint) == 1


def test_an_order_matched_by_id_is_never_also_matched_by_fingerprint() -> None:
    report = run(
        expected_orders=(ours("tp-a"), ours("tp-b")),
        live_orders=(theirs("tp-a"), theirs("tp-a", "V-2")),
    )
    # The venue repeating an id it already reported is a foreign order, free to fingerprint.
    assert [m["client_order_id"] for m in report.matched_by_fingerprint] == ["tp-b"]
    assert report.clean


def test_differences_within_the_tolerance_are_not_mismatches() -> None:
    report = run(
        {"AAA": 10.0},
        {"AAA": 10.0 + 1e-12},
        (ours(remaining=5.0),),
        (theirs(remaining=5.0 - 1e-12),),
    )
    assert report.clean


def test_the_tolerance_is_configurable() -> None:
    assert run({"AAA": 10.0}, {"AAA": 10.4}, quantity_tolerance=0.5).clean
    assert not run({"AAA": 10.0}, {"AAA": 10.6}, quantity_tolerance=0.5).clean
    assert run({"AAA": 0.3}, {}, quantity_tolerance=0.5).clean  # dust counts as flat


@pytest.mark.parametrize("tolerance", [-1e-9, float("nan"), float("inf")])
def test_a_meaningless_tolerance_is_refused(tolerance: float) -> None:
    with pytest.raises(ValueError, match="quantity_tolerance"):
        run(quantity_tolerance=tolerance)


def test_resolved_unknown_outcomes_are_passed_through_and_do_not_make_it_dirty() -> None:
    resolved = [{"client_order_id": OUR_ID, "outcome": "filled", "filled_quantity": 5.0}]
    report = run(unknown_outcomes_resolved=resolved, venue="sim")
    assert report.clean
    assert report.unknown_outcomes_resolved == resolved
    assert report.summary() == "clean (1 unknown outcome resolved)"


def test_enum_values_become_plain_strings() -> None:
    order = ExpectedOrder(OUR_ID, "sma", "AAA", Side.BUY, 1.0, 1.0, OrderType.MARKET, None, "x")
    assert type(order.side) is str and order.side == "buy"
    assert type(order.order_type) is str and order.order_type == "market"


def test_expected_holdings_net_positions_over_strategies_and_drop_flat_ones() -> None:
    rows = {
        ("a", "AAA"): {"symbol": "AAA", "quantity": 10.0},
        ("b", "AAA"): {"symbol": "AAA", "quantity": -4.0},
        ("a", "BBB"): {"symbol": "BBB", "quantity": 3.0},
        ("b", "BBB"): {"symbol": "BBB", "quantity": -3.0},
        ("a", "CCC"): {"symbol": "CCC", "quantity": 0.0},
    }
    assert expected_from_journal(rows, []).positions == {"AAA": 6.0}


def test_expected_open_orders_carry_what_is_left_to_fill() -> None:
    row = {
        "client_order_id": OUR_ID,
        "strategy": "sma",
        "symbol": "AAA",
        "side": "sell",
        "quantity": 10.0,
        "filled_quantity": 4.0,
        "status": "partially_filled",
        "order_type": "limit",
        "limit_price": 101.5,
    }
    (order,) = expected_from_journal({}, [row]).open_orders
    assert order == ExpectedOrder(
        OUR_ID, "sma", "AAA", "sell", 10.0, 6.0, "limit", 101.5, "partially_filled"
    )


def test_an_order_the_journal_knows_only_by_id_still_becomes_an_expected_order() -> None:
    row = {"client_order_id": OUR_ID, "status": "unknown", "quantity": None, "symbol": None}
    (order,) = expected_from_journal({}, [row]).open_orders
    assert (order.symbol, order.remaining, order.status) == ("", 0.0, "unknown")


def dirty_report() -> ReconciliationReport:
    return run(
        {"AAA": 10.0, "CCC": 1.0},
        {"AAA": 14.0, "BBB": 2.0},
        (ours(), ours("tp-lost", limit_price=80.0), ours("tp-gone", limit_price=70.0)),
        (
            theirs(remaining=3.0),
            theirs("manual-1", "V-9", side="sell"),
            theirs(None, "V-3", limit_price=80.0),
        ),
        unknown_outcomes_resolved=[{"client_order_id": "tp-x", "outcome": "rejected"}],
        venue="sim",
    )


def test_a_report_round_trips_through_json() -> None:
    report = dirty_report()
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert ReconciliationReport.from_dict(data) == report
    clean = run()
    assert ReconciliationReport.from_dict(json.loads(json.dumps(clean.to_dict()))) == clean


def test_loading_ignores_keys_a_newer_writer_added() -> None:
    data = run().to_dict() | {"added_later": [1, 2]}
    assert ReconciliationReport.from_dict(data) == run()


def _mutations() -> list[tuple[str, Any]]:
    return [
        ("checked_at", "yesterday"),
        ("checked_at", True),
        ("checked_at", float("nan")),
        ("clean", "yes"),
        ("clean", True),  # contradicts the listed mismatches
        ("missing_positions", "AAA"),
        ("missing_positions", ["AAA"]),
        ("missing_positions", [{"symbol": "AAA"}]),  # lacks "expected"
        ("unexpected_orders", [{"venue_order_id": "V-1", "symbol": "AAA"}]),
        ("venue", 7),
    ]


@pytest.mark.parametrize(("key", "value"), _mutations())
def test_a_malformed_report_is_refused(key: str, value: Any) -> None:
    data = dirty_report().to_dict()
    data[key] = value
    with pytest.raises(ValueError):
        ReconciliationReport.from_dict(data)


@pytest.mark.parametrize("data", [None, [], "report", {"clean": True}])
def test_something_that_is_not_a_report_is_refused(data: Any) -> None:
    with pytest.raises(ValueError):
        ReconciliationReport.from_dict(data)


def test_the_summary_names_each_category_with_its_first_items() -> None:
    report = run({}, {"AAA": 10.0}, (ours(),))
    assert report.summary() == (
        "2 mismatches: 1 unexpected position (AAA +10), 1 missing order (tp01234567…)"
    )


def test_the_summary_stops_after_three_items_per_category() -> None:
    report = run({}, {s: 1.0 for s in ("A", "B", "C", "D")})
    assert report.summary() == "4 mismatches: 4 unexpected positions (A +1, B +1, C +1, …)"


def test_the_summary_of_a_dirty_report_mentions_every_category() -> None:
    summary = dirty_report().summary()
    assert summary.startswith("6 mismatches: ")
    for phrase in (
        "1 missing position (CCC +1)",
        "1 unexpected position (BBB +2)",
        "2 quantity mismatches (AAA +10 vs venue +14, tp01234567… 5 vs venue 3)",
        "1 missing order (tp-gone)",
        "1 unexpected order (manual-1)",
    ):
        assert phrase in summary
    assert summary.endswith("; 1 unknown outcome resolved, 1 order matched by fingerprint")


def test_lines_render_every_entry_with_full_ids() -> None:
    lines = dirty_report().lines()
    assert lines[0] == "reconciliation with sim at 2023-11-14T22:13:20+00:00: 6 mismatches"
    text = "\n".join(lines)
    assert OUR_ID in text  # never shortened here
    assert "manual-1 / V-9" in text
    assert "unknown outcome resolved" in text and "tp-x: rejected" in text
    assert len(lines) == 1 + 6 + 1 + 1  # header, mismatches, fingerprint match, resolved


def test_the_adopted_positions_are_the_venues() -> None:
    expected = Holdings({"AAA": 10.0, "CCC": 1.0, "DDD": 4.0})
    live = Holdings({"AAA": 14.0, "BBB": -2.0, "DDD": 4.0})
    report = reconcile(expected, live, checked_at=T)
    assert adopted_positions(report, expected) == live.positions
