"""Who is the deployment's supervisor: terms claimed once each, so that exactly one instance acts.

A deployment has two supervisor instances, both detached named actors on the state node that Ray
restarts in place: the one deployed first (``<deployment>/supervisor``) and a standby
(``<deployment>/supervisor-standby``), started with the runtime and the supervisor's code already
imported. Whichever holds the latest *term* acts; the other stands by, watching it through an
outstanding call that fails the moment Ray sees its process die. On that death the standby claims
the next term and re-attaches to the children, which skips what Ray's in-place restart waits for
(a fresh process, then importing the runtime and the supervisor's code).

Ray still restarts the dead instance in place: that is the fallback when the standby is gone too
(never no supervisor). Both contenders claim the *same* next term, and a term is claimed once
(put-if-absent in Ray's key-value store), so only one of them acts; the other stands by in turn,
which is also how a new standby comes after a promotion (the restarted instance becomes it). An
acting instance that finds a later term claimed (it was thought dead and was not) stops acting:
it exits its process, and its restart stands by.

Terms are kept per run (``run_id``), so an earlier run's claims never count. The decisions here
are pure; the key-value store is passed in (``TermStore``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Term:
    number: int
    holder: str  # the Ray actor name of the instance that claimed it


class Start(Enum):
    CLAIM = "claim"  # claim the next term, then re-attach (or deploy) and act
    STAND_BY = "stand_by"  # watch the holder of the latest term


class TermStore(Protocol):
    def latest(self) -> Term | None: ...

    def claim(self, number: int, holder: str) -> bool:
        """Claim term ``number`` for ``holder``; False when it was claimed already."""
        ...

    def claimed(self, number: int) -> bool: ...


def term_key(prefix: str, number: int) -> str:
    # Zero-padded so that keys sort as numbers.
    return f"{prefix}{number:010d}"


def latest_of(prefix: str, keys: list[str]) -> int | None:
    """The highest term number among ``keys`` (those under ``prefix``), or None."""
    numbers = [
        int(k[len(prefix) :]) for k in keys if k.startswith(prefix) and k[len(prefix) :].isdigit()
    ]
    return max(numbers, default=None)


def on_start(me: str, latest: Term | None, standby: bool) -> Start:
    """What an instance does when Ray has (re)started it. The holder of the latest term, restarted
    in place, contends for the next term (today's restart); so does the first instance of a run
    before any term exists. Any other instance stands by."""
    if latest is None:
        return Start.STAND_BY if standby else Start.CLAIM
    return Start.CLAIM if latest.holder == me else Start.STAND_BY


def next_number(latest: Term | None) -> int:
    return 1 if latest is None else latest.number + 1


def should_take_over(watched: Term, latest: Term | None, run_phase: str | None = None) -> bool:
    """The instance a standby watched (the holder of term ``watched``) has died: take over only
    if no later term was claimed since (else another instance acts by now, its restart
    included, and the standby watches that one instead), and never a run that was stopped
    (``run_phase``, its run record's): the acting instance goes last at a stop, and a standby
    taking over then would outlive ``down`` and answer ``status`` for a run that is over."""
    return latest == watched and run_phase != "stopped"


def superseded(my_term: int | None, store: TermStore) -> bool:
    """An acting instance whose term is no longer the latest must stop acting."""
    return my_term is not None and store.claimed(my_term + 1)


def contend(me: str, after: Term | None, store: TermStore) -> int | None:
    """Claim the term after ``after`` (the latest term this instance saw when it decided to
    contend, never a later one: a term claimed since then means another instance acts); the term
    claimed, or None when another instance claimed it first (then this one stands by)."""
    number = next_number(after)
    return number if store.claim(number, me) else None


@dataclass(frozen=True, slots=True)
class Watching:
    """What the standby wrote when it began to watch: the term, its name, its pid."""

    term: int
    name: str
    pid: int | None


def parse_watching(text: str) -> Watching | None:
    number, _, rest = text.partition(" ")
    name, _, pid = rest.partition(" ")
    if not number.isdigit() or not name:
        return None
    return Watching(int(number), name, int(pid) if pid.isdigit() else None)
