"""The chaos tooling's pure part: durations, kinds to roles, the seeded kill plan, and a run
driven by fakes (no Ray)."""

from __future__ import annotations

import ast
import inspect
import itertools
from typing import Any

import pytest

from tradeplane.supervisor import chaos
from tradeplane.supervisor.chaos import (
    ACTOR_KINDS,
    ChaosPlan,
    ChaosStep,
    expand_kinds,
    kills_by_role,
    parse_duration,
    run_chaos,
    split_kinds,
)

ROLES = ["journal", "venue", "broker", "risk", "reconciler", "strategy/b", "strategy/a", "feed"]


def test_chaos_module_imports_no_ray_at_top_level() -> None:
    tree = ast.parse(inspect.getsource(chaos))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name for n in top for a in n.names} | {
        n.module or "" for n in top if isinstance(n, ast.ImportFrom)
    }
    assert not any(name == "ray" or name.startswith("ray.") for name in names)
    assert not any(name.startswith("tradeplane.actors") for name in names)


# -- parse_duration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("2m", 120.0),
        ("1.5", 1.5),
        ("500ms", 0.5),
        ("1h", 3600.0),
        (" 10S ", 10.0),
        (".25s", 0.25),
        ("0", 0.0),
        (3, 3.0),
    ],
)
def test_parse_duration_with_unit_or_bare_number_then_seconds(
    text: str | float, seconds: float
) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "five", "5x", "-1s", "1.2.3", "s", "5 s s"])
def test_parse_duration_with_bad_text_then_value_error_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


def test_parse_duration_with_negative_number_then_value_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration(-1.0)


# -- expand_kinds -----------------------------------------------------------------------------


def test_expand_strategy_kind_then_every_strategy_role_sorted() -> None:
    assert expand_kinds(["strategy"], ROLES) == ["strategy/a", "strategy/b"]


def test_expand_supervisor_kind_then_the_supervisor_even_though_not_a_child() -> None:
    assert expand_kinds(["supervisor"], ROLES) == ["supervisor"]


def test_expand_kinds_then_given_order_without_repeats() -> None:
    kinds = ["broker", "strategy", "journal", "broker", "supervisor", "feed"]
    assert expand_kinds(kinds, ROLES) == [
        "broker",
        "strategy/a",
        "strategy/b",
        "journal",
        "supervisor",
        "feed",
    ]


def test_expand_every_kind_on_a_sim_deployment_then_each_has_a_role() -> None:
    roles = expand_kinds(ACTOR_KINDS, ROLES)
    assert "reconciler" not in roles  # not a kill target: it runs once at start
    assert set(roles) == {*ROLES, "supervisor"} - {"reconciler"}


def test_expand_kinds_with_case_and_spaces_then_normalised() -> None:
    assert expand_kinds([" Risk ", "FEED"], ROLES) == ["risk", "feed"]


def test_expand_unknown_kind_then_value_error_listing_valid_kinds() -> None:
    with pytest.raises(ValueError, match="unknown actor kind") as info:
        expand_kinds(["broker", "brokr"], ROLES)
    assert "'brokr'" in str(info.value)
    for kind in ACTOR_KINDS:
        assert kind in str(info.value)


def test_expand_no_kinds_then_value_error() -> None:
    with pytest.raises(ValueError, match="no actor kind"):
        expand_kinds(["", " "], ROLES)


def test_expand_kind_the_deployment_lacks_then_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="no venue actor"):
        expand_kinds(["venue"], [r for r in ROLES if r != "venue"])


def test_split_kinds_then_comma_separated_trimmed_lowercase() -> None:
    assert split_kinds("strategy, Risk,,broker ") == ["strategy", "risk", "broker"]


# -- ChaosPlan --------------------------------------------------------------------------------

TARGETS = ["broker", "risk", "strategy/a", "supervisor"]


def test_plan_with_same_seed_then_same_steps() -> None:
    first = ChaosPlan.build(TARGETS, 5.0, 300.0, seed=42)
    assert first == ChaosPlan.build(TARGETS, 5.0, 300.0, seed=42)
    assert first and all(isinstance(s, ChaosStep) for s in first)


def test_plan_with_other_seed_then_other_steps() -> None:
    assert ChaosPlan.build(TARGETS, 5.0, 300.0, seed=1) != ChaosPlan.build(
        TARGETS, 5.0, 300.0, seed=2
    )


def test_plan_then_gaps_within_twenty_percent_of_interval() -> None:
    steps = ChaosPlan.build(TARGETS, 5.0, 1000.0, seed=7)
    times = [0.0] + [s.at_s for s in steps]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(4.0 - 1e-3 <= g <= 6.0 + 1e-3 for g in gaps)
    assert min(gaps) < 4.5 and max(gaps) > 5.5  # jittered, not a fixed period


def test_plan_then_steps_end_within_duration_at_about_duration_over_interval() -> None:
    steps = ChaosPlan.build(TARGETS, 5.0, 120.0, seed=3)
    assert steps[-1].at_s <= 120.0
    assert 20 <= len(steps) <= 30


def test_plan_then_every_target_drawn_and_nothing_else() -> None:
    steps = ChaosPlan.build(TARGETS, 1.0, 400.0, seed=5)
    assert {s.role for s in steps} == set(TARGETS)


def test_plan_shorter_than_one_interval_then_no_steps() -> None:
    assert ChaosPlan.build(TARGETS, 5.0, 3.0, seed=1) == []


def test_plan_in_mixed_mode_then_modes_alternate_and_times_match_single_mode() -> None:
    mixed = ChaosPlan.build(TARGETS, 5.0, 100.0, seed=9, mode="mixed")
    single = ChaosPlan.build(TARGETS, 5.0, 100.0, seed=9, mode="ray-kill")
    assert [(s.at_s, s.role) for s in mixed] == [(s.at_s, s.role) for s in single]
    modes = [s.mode for s in mixed]
    assert all(a != b for a, b in itertools.pairwise(modes))
    assert set(modes) == {"sigkill", "ray-kill"}
    assert {s.mode for s in single} == {"ray-kill"}


@pytest.mark.parametrize(
    ("targets", "every_s", "duration_s", "mode", "match"),
    [
        ([], 5.0, 10.0, "sigkill", "no kill targets"),
        (TARGETS, 0.0, 10.0, "sigkill", "interval must be positive"),
        (TARGETS, 5.0, -1.0, "sigkill", "must not be negative"),
        (TARGETS, 5.0, 10.0, "nuke", "unknown kill mode"),
    ],
)
def test_plan_with_bad_arguments_then_value_error(
    targets: list[str], every_s: float, duration_s: float, mode: str, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        ChaosPlan.build(targets, every_s, duration_s, seed=1, mode=mode)


# -- run_chaos with fakes ---------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def status(phase: str = "running", health: str = "ok") -> dict[str, Any]:
    return {"phase": phase, "health": health, "children": {r: {} for r in ROLES}}


def test_run_chaos_then_kills_follow_the_plan_in_time_and_are_reported() -> None:
    clock = FakeClock()
    kills: list[tuple[str, str, str, float]] = []
    seen: list[dict[str, Any]] = []

    def kill(deployment: str, role: str, mode: str) -> dict[str, Any]:
        kills.append((deployment, role, mode, clock.now))
        return {"role": role, "mode": mode, "ok": True}

    results = run_chaos(
        "dep",
        ["broker", "strategy"],
        2.0,
        20.0,
        "sigkill",
        11,
        on_step=seen.append,
        status_fn=lambda _: status(),
        kill_fn=kill,
        sleep=clock.sleep,
        clock=clock,
    )
    plan = ChaosPlan.build(["broker", "strategy/a", "strategy/b"], 2.0, 20.0, 11, "sigkill")
    assert [(k[1], k[2]) for k in kills] == [(s.role, s.mode) for s in plan]
    assert [round(k[3] - 100.0, 3) for k in kills] == [s.at_s for s in plan]
    assert seen == results and len(results) == len(plan)
    assert all(r["planned_at_s"] == s.at_s for r, s in zip(results, plan, strict=True))


def test_run_chaos_when_deployment_failed_then_stops_killing() -> None:
    clock = FakeClock()
    states = iter([status(), status(), status(), status(phase="failed", health="failed")])
    last = status(phase="failed", health="failed")
    results = run_chaos(
        "dep",
        ["risk"],
        1.0,
        60.0,
        status_fn=lambda _: next(states, last),
        kill_fn=lambda d, r, m: {"role": r, "mode": m, "ok": True},
        sleep=clock.sleep,
        clock=clock,
    )
    assert len(results) == 2  # one status for the roles, then one before each kill


def test_run_chaos_when_deployment_never_answers_then_lookup_error() -> None:
    clock = FakeClock()
    with pytest.raises(LookupError, match="not running"):
        run_chaos(
            "dep",
            ["risk"],
            1.0,
            5.0,
            status_fn=lambda _: None,
            kill_fn=lambda d, r, m: {},
            sleep=clock.sleep,
            clock=clock,
        )


def test_run_chaos_with_unknown_kind_then_value_error_before_any_kill() -> None:
    clock = FakeClock()
    kills: list[str] = []
    with pytest.raises(ValueError, match="unknown actor kind"):
        run_chaos(
            "dep",
            ["riskk"],
            1.0,
            5.0,
            status_fn=lambda _: status(),
            kill_fn=lambda d, r, m: kills.append(r) or {},
            sleep=clock.sleep,
            clock=clock,
        )
    assert kills == []


def test_kill_with_unknown_mode_then_value_error_before_touching_ray() -> None:
    with pytest.raises(ValueError, match="unknown kill mode"):
        chaos.kill_actor("dep", "broker", "mixed")


def test_kills_by_role_then_counts_ok_and_failed_per_role() -> None:
    results = [
        {"role": "broker", "ok": True},
        {"role": "broker", "ok": False},
        {"role": "risk", "ok": True},
    ]
    assert kills_by_role(results) == {
        "broker": {"kills": 2, "ok": 1, "failed": 1},
        "risk": {"kills": 1, "ok": 1, "failed": 0},
    }
