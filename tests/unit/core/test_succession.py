"""The supervisor's succession: terms claimed once each, so exactly one instance acts."""

from __future__ import annotations

from tradeplane.core.succession import (
    Start,
    Term,
    contend,
    latest_of,
    next_number,
    on_start,
    should_take_over,
    superseded,
    term_key,
)

FIRST, STANDBY = "d/supervisor", "d/supervisor-standby"


class FakeTerms:
    """Ray's key-value store as the succession uses it: put-if-absent per term."""

    def __init__(self) -> None:
        self.held: dict[int, str] = {}

    def latest(self) -> Term | None:
        if not self.held:
            return None
        number = max(self.held)
        return Term(number, self.held[number])

    def claim(self, number: int, holder: str) -> bool:
        if number in self.held:
            return False
        self.held[number] = holder
        return True

    def claimed(self, number: int) -> bool:
        return number in self.held


def test_first_instance_of_a_run_when_no_term_then_claims():
    assert on_start(FIRST, None, standby=False) is Start.CLAIM


def test_standby_when_no_term_yet_then_stands_by():
    assert on_start(STANDBY, None, standby=True) is Start.STAND_BY


def test_holder_restarted_in_place_then_contends_again():
    assert on_start(FIRST, Term(3, FIRST), standby=False) is Start.CLAIM
    assert on_start(STANDBY, Term(3, STANDBY), standby=True) is Start.CLAIM


def test_instance_restarted_after_another_took_over_then_stands_by():
    assert on_start(FIRST, Term(2, STANDBY), standby=False) is Start.STAND_BY


def test_next_term_after_none_is_one():
    assert next_number(None) == 1
    assert next_number(Term(4, FIRST)) == 5


def test_watched_holder_died_while_its_term_is_still_latest_then_take_over():
    assert should_take_over(Term(1, FIRST), Term(1, FIRST))


def test_watched_holder_died_after_the_run_was_stopped_then_no_take_over():
    # The acting instance goes last at a stop: a standby taking over would outlive `down`.
    assert not should_take_over(Term(1, FIRST), Term(1, FIRST), run_phase="stopped")
    assert should_take_over(Term(1, FIRST), Term(1, FIRST), run_phase="failed")


def test_watched_died_but_a_later_term_is_claimed_then_no_take_over():
    # Its own restart won the next term: the standby watches it again.
    assert not should_take_over(Term(1, FIRST), Term(2, FIRST))
    assert not should_take_over(Term(1, FIRST), Term(2, STANDBY))


def test_restart_and_standby_contend_for_the_same_term_then_exactly_one_wins():
    terms = FakeTerms()
    assert contend(FIRST, None, terms) == 1
    seen = terms.latest()
    # The first instance dies: Ray restarts it in place and the standby takes over, both
    # having seen term 1.
    results = [contend(STANDBY, seen, terms), contend(FIRST, seen, terms)]
    assert results == [2, None]
    assert terms.latest() == Term(2, STANDBY)


def test_contender_that_saw_an_older_term_then_never_claims_past_the_latest():
    terms = FakeTerms()
    contend(FIRST, None, terms)
    old = terms.latest()
    assert contend(FIRST, old, terms) == 2  # the holder's restart won
    assert contend(STANDBY, old, terms) is None  # the standby's view is stale: it loses
    assert terms.latest() == Term(2, FIRST)


def test_holder_when_a_later_term_is_claimed_then_superseded():
    terms = FakeTerms()
    contend(FIRST, None, terms)
    assert not superseded(1, terms)
    contend(STANDBY, terms.latest(), terms)
    assert superseded(1, terms)
    assert not superseded(2, terms)


def test_instance_standing_by_is_never_superseded():
    assert not superseded(None, FakeTerms())


def test_latest_of_keys_then_highest_number_under_the_prefix():
    prefix = "supterm/d/run-1/"
    keys = [term_key(prefix, 2), term_key(prefix, 10), "supterm/d/run-0/0000000099", prefix + "x"]
    assert latest_of(prefix, keys) == 10
    assert latest_of(prefix, []) is None
