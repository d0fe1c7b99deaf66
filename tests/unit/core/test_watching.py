"""The standby's mark in Ray's key-value store, parsed (``SupervisorTerms.watching``)."""

from __future__ import annotations

from tradeplane.core.succession import Watching, parse_watching


def test_parse_watching_when_term_name_and_pid_then_all_three() -> None:
    assert parse_watching("7 d/supervisor-standby 4242") == Watching(
        7, "d/supervisor-standby", 4242
    )


def test_parse_watching_when_written_without_pid_then_pid_unknown() -> None:
    assert parse_watching("7 d/supervisor") == Watching(7, "d/supervisor", None)


def test_parse_watching_when_garbled_then_none() -> None:
    assert parse_watching("x d/supervisor 1") is None
    assert parse_watching("7") is None
