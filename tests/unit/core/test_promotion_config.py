"""The promotion gates over the two configs: modes, strategy code, size versus system."""

from __future__ import annotations

from typing import Any

import pytest

from tradeplane.core import promotion_config as promotion
from tradeplane.core.promotion_config import (
    check_config_diff,
    check_modes,
    check_strategy_code,
    flatten_config,
)


def test_promote_when_modes_are_paper_to_live_then_passes() -> None:
    assert check_modes("paper", "live").passed


@pytest.mark.parametrize(
    ("paper", "live", "said"),
    [("shadow", "live", "paper config's mode"), ("paper", "paper", "config to promote")],
)
def test_promote_when_modes_are_not_paper_to_live_then_fails(
    paper: str, live: str, said: str
) -> None:
    gate = check_modes(paper, live)
    assert not gate.passed and said in gate.detail


A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_promote_when_strategy_code_differs_then_fails() -> None:
    gate = check_strategy_code({"s": A, "t": B}, {"s": A, "t": C}, {"s": A, "t": B})
    assert not gate.passed and gate.detail.endswith("last paper session for t")
    assert gate.evidence["strategies"][1] == {
        "strategy": "t",
        "paper": B,
        "live": C,
        "ran": B,
        "same": False,
    }


def test_promote_when_strategy_code_changed_since_the_paper_session_ran_then_fails() -> None:
    gate = check_strategy_code({"s": B}, {"s": B}, {"s": A})  # both files edited since
    assert not gate.passed and gate.detail.endswith("for s")


def test_promote_when_the_paper_session_recorded_no_code_hashes_then_fails() -> None:
    gate = check_strategy_code({"s": A}, {"s": A}, None)
    assert not gate.passed and "recorded no strategy code hashes" in gate.detail


def test_promote_when_strategy_file_is_unreadable_then_fails() -> None:
    assert not check_strategy_code({"s": None}, {"s": None}, {"s": None}).passed


def test_promote_when_strategy_code_is_the_same_everywhere_then_passes() -> None:
    assert check_strategy_code({"s": A}, {"s": A}, {"s": A}).passed


def test_code_hash_is_sha256_of_the_utf8_source() -> None:
    import hashlib

    assert promotion.code_hash("x = 1\n") == hashlib.sha256(b"x = 1\n").hexdigest()


def config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "deployment": {"name": "paper-ib", "mode": "paper", "state_dir": "/s/paper"},
        "venue": {"kind": "ib", "ib": {"port": 7497, "live": False, "symbols": ["SPY"]}},
        "risk": {"max_order_value": 25_000.0},
        "session": {"calendar": "XNYS"},
        "telemetry": {"metrics_port": 9467},
        "strategies": [
            {
                "name": "sma",
                "path": "/x/sma_cross.py",
                "class_name": "SmaCross",
                "capital": 50_000.0,
                "params": {"fast": 10, "slow": 30, "quantity": 20},
            }
        ],
        "promotion": {"clean_starts": 3},
    }
    for path, value in changes.items():
        node = base
        *head, last = path.split("__")
        for key in head:
            node = node[key] if not isinstance(node, list) else node[int(key)]
        node[last] = value
    return base


ALLOWED = promotion.allowed_patterns(["quantity"])


def test_promote_when_only_size_limits_and_venue_differ_then_passes() -> None:
    live = config(
        deployment__name="live-ib",
        deployment__mode="live",
        deployment__state_dir="/s/live",
        venue__ib__port=7496,
        venue__ib__live=True,
        risk__max_order_value=5_000.0,
        strategies__0__capital=10_000.0,
        strategies__0__params__quantity=2,
        telemetry__metrics_port=9470,
    )
    gate = check_config_diff(config(), live, ALLOWED)
    assert gate.passed, gate
    paths = [d["path"] for d in gate.evidence["allowed"]]
    assert "strategies.sma.params.quantity" in paths and "venue.ib.live" in paths


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"strategies__0__params__fast": 5}, "strategies.sma.params.fast"),
        ({"strategies__0__class_name": "Other"}, "strategies.sma.class_name"),
        ({"venue__ib__symbols": ["SPY", "QQQ"]}, "venue.ib.symbols"),
        ({"session__calendar": "24/7"}, "session.calendar"),
        ({"venue__kind": "sim"}, "venue.kind"),
    ],
)
def test_promote_when_a_system_setting_differs_then_fails_naming_it(
    change: dict[str, Any], path: str
) -> None:
    gate = check_config_diff(config(), config(**change), ALLOWED)
    assert not gate.passed
    assert gate.detail.startswith("a system change, not a size change: " + path), gate.detail
    assert [d["path"] for d in gate.evidence["not_allowed"]] == [path]


def test_promote_when_a_param_is_added_then_fails() -> None:
    live = config()
    live["strategies"][0]["params"]["stop_loss"] = 0.02
    gate = check_config_diff(config(), live, ALLOWED)
    assert not gate.passed
    assert gate.evidence["not_allowed"][0] == {
        "path": "strategies.sma.params.stop_loss",
        "paper": "<unset>",
        "live": 0.02,
    }


def test_promote_when_a_strategy_is_added_then_fails() -> None:
    live = config()
    live["strategies"].append({**live["strategies"][0], "name": "extra"})
    gate = check_config_diff(config(), live, ALLOWED)
    assert not gate.passed
    assert gate.evidence["not_allowed"][0]["path"] == "strategies (names, in order)"


def test_promote_when_strategies_are_reordered_then_fails() -> None:
    two = config()
    two["strategies"].append({**two["strategies"][0], "name": "b"})
    swapped = config()
    swapped["strategies"] = [{**swapped["strategies"][0], "name": "b"}, two["strategies"][0]]
    gate = check_config_diff(two, swapped, ALLOWED)
    assert not gate.passed and "names, in order" in gate.detail


def test_promote_when_a_param_is_named_a_size_param_then_it_may_differ() -> None:
    live = config(strategies__0__params__fast=5)
    assert not check_config_diff(config(), live, ALLOWED).passed
    assert check_config_diff(config(), live, promotion.allowed_patterns(["fast"])).passed


def test_promote_when_a_path_is_in_allowed_differences_then_it_may_differ() -> None:
    live = config(session__calendar="24/7")
    allowed = promotion.allowed_patterns(["quantity"], ["session.*"])
    assert check_config_diff(config(), live, allowed).passed


def test_flatten_keys_strategies_by_name_and_keeps_lists_whole() -> None:
    flat = flatten_config(config())
    assert flat["strategies.sma.params.quantity"] == 20
    assert flat["venue.ib.symbols"] == ["SPY"]
    assert "strategies" not in flat
