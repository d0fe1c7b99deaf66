"""Session calendars: when the market is open and when the risk day rolls over.

Two kinds:

- ``"24/7"`` (crypto, the simulator): always open; the risk day is the UTC date and rolls at
  00:00 UTC.
- an ``exchange_calendars`` code such as ``"XNYS"``: holidays and early closes come from the
  package. The risk day is the session's label; time after a session's close and before the next
  session belongs to the *next* session, so daily counters roll at each session close.

``exchange_calendars`` imports pandas, so it is imported only when an exchange calendar is asked
for. Calendars are cached per name.
"""

from __future__ import annotations

import threading
import time
import warnings
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Protocol

ALWAYS_OPEN = "24/7"
DAY_S = 86_400.0
_YEAR_S = 365.25 * DAY_S
_RANGE_YEARS = 2


def iso_utc(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string (``None`` stays ``None``)."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat()


class SessionCalendar(Protocol):
    name: str

    def risk_day(self, ts: float) -> str:
        """Label (ISO date) of the risk day containing epoch ``ts``."""
        ...

    def next_boundary(self, ts: float) -> float:
        """Epoch at which the risk day containing ``ts`` ends (always > ``ts``)."""
        ...

    def is_open(self, ts: float) -> bool: ...

    def next_open(self, ts: float) -> float | None:
        """First market open strictly after ``ts``; ``None`` for an always-open calendar."""
        ...

    def next_close(self, ts: float) -> float | None:
        """First market close strictly after ``ts``; ``None`` for an always-open calendar."""
        ...

    def describe(self, ts: float) -> dict[str, Any]: ...


def _describe(cal: SessionCalendar, ts: float) -> dict[str, Any]:
    return {
        "calendar": cal.name,
        "is_open": cal.is_open(ts),
        "risk_day": cal.risk_day(ts),
        "next_boundary": iso_utc(cal.next_boundary(ts)),
        "next_open": iso_utc(cal.next_open(ts)),
        "next_close": iso_utc(cal.next_close(ts)),
    }


class AlwaysOpenCalendar:
    """Always open; the risk day is the UTC date and rolls at 00:00 UTC."""

    name = ALWAYS_OPEN

    def risk_day(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()

    def next_boundary(self, ts: float) -> float:
        day = datetime.fromtimestamp(ts, tz=UTC).date()
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return (start + timedelta(days=1)).timestamp()

    def is_open(self, ts: float) -> bool:
        return True

    def next_open(self, ts: float) -> float | None:
        return None

    def next_close(self, ts: float) -> float | None:
        return None

    def describe(self, ts: float) -> dict[str, Any]:
        return _describe(self, ts)


@dataclass(frozen=True, slots=True)
class _Schedule:
    """Sessions between two dates as plain floats, sorted by close."""

    first_ts: float  # the covered range, as epochs: queries outside it widen the schedule
    last_ts: float
    labels: tuple[str, ...]
    opens: tuple[float, ...]
    closes: tuple[float, ...]
    breaks: tuple[tuple[float, float] | None, ...]


def _epochs(series: Any) -> list[float | None]:
    import pandas as pd

    return [None if pd.isna(t) else float(pd.Timestamp(t).timestamp()) for t in series]


def _load_schedule(name: str, first_ts: float, last_ts: float) -> _Schedule:
    import exchange_calendars as xcals

    start = datetime.fromtimestamp(first_ts, tz=UTC).date().isoformat()
    end = datetime.fromtimestamp(last_ts, tz=UTC).date().isoformat()
    with warnings.catch_warnings():
        # exchange_calendars 4.13 uses pandas APIs that pandas 3.1 deprecates: not ours to fix.
        warnings.filterwarnings("ignore", module=r"exchange_calendars(\.|$)")
        warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
        cal = xcals.get_calendar(name, start=start, end=end)
    sched = cal.schedule
    opens = _epochs(sched["open"])
    closes = _epochs(sched["close"])
    b_starts = _epochs(sched["break_start"])
    b_ends = _epochs(sched["break_end"])
    breaks = tuple(
        (bs, be) if bs is not None and be is not None else None
        for bs, be in zip(b_starts, b_ends, strict=True)
    )
    if any(t is None for t in opens) or any(t is None for t in closes):
        raise ValueError(f"calendar {name}: schedule has sessions without open or close")
    return _Schedule(
        first_ts=first_ts,
        last_ts=last_ts,
        labels=tuple(pd_label.date().isoformat() for pd_label in sched.index),
        opens=tuple(float(t) for t in opens if t is not None),
        closes=tuple(float(t) for t in closes if t is not None),
        breaks=breaks,
    )


class ExchangeSessionCalendar:
    """An ``exchange_calendars`` calendar; the risk day ends at each session's close.

    The schedule covers now-2y..now+2y and widens (rebuilds) when asked about a time outside it.
    """

    def __init__(self, name: str, *, now: float | None = None) -> None:
        self.name = name
        now = time.time() if now is None else now
        self._lock = threading.Lock()
        self._sched = _load_schedule(
            name, now - _RANGE_YEARS * _YEAR_S, now + _RANGE_YEARS * _YEAR_S
        )

    def _schedule_for(self, ts: float) -> _Schedule:
        s = self._sched
        # Keep a margin so "the next session" after ts is inside the range too.
        if s.first_ts + 30 * DAY_S <= ts <= s.last_ts - 30 * DAY_S:
            return s
        with self._lock:
            s = self._sched
            first = min(s.first_ts, ts - _YEAR_S)
            last = max(s.last_ts, ts + _YEAR_S)
            if (first, last) != (s.first_ts, s.last_ts):
                self._sched = _load_schedule(self.name, first, last)
            return self._sched

    def _session_index(self, ts: float) -> tuple[_Schedule, int]:
        """Index of the session whose risk day contains ts: the first with close > ts."""
        s = self._schedule_for(ts)
        i = bisect_right(s.closes, ts)
        if i >= len(s.closes):  # pragma: no cover - the widened range always has a next session
            raise ValueError(f"calendar {self.name}: no session after {iso_utc(ts)}")
        return s, i

    def risk_day(self, ts: float) -> str:
        s, i = self._session_index(ts)
        return s.labels[i]

    def next_boundary(self, ts: float) -> float:
        s, i = self._session_index(ts)
        return s.closes[i]

    def is_open(self, ts: float) -> bool:
        s, i = self._session_index(ts)
        if not s.opens[i] <= ts < s.closes[i]:
            return False
        brk = s.breaks[i]
        return brk is None or not brk[0] <= ts < brk[1]

    def next_open(self, ts: float) -> float | None:
        s, i = self._session_index(ts)
        if ts < s.opens[i]:
            return s.opens[i]
        brk = s.breaks[i]
        if brk is not None and ts < brk[1]:
            return brk[1]  # the end of a lunch break (calendars such as XHKG) is an open too
        s, j = self._session_index(s.closes[i])
        return s.opens[j]

    def next_close(self, ts: float) -> float | None:
        s, i = self._session_index(ts)
        brk = s.breaks[i]
        if brk is not None and s.opens[i] <= ts < brk[0]:
            return brk[0]
        return s.closes[i]

    def describe(self, ts: float) -> dict[str, Any]:
        return _describe(self, ts)


def calendar_names() -> list[str]:
    """Every accepted calendar name: ``"24/7"`` plus the exchange_calendars codes."""
    import exchange_calendars as xcals

    return [ALWAYS_OPEN, *sorted(xcals.get_calendar_names())]


def validate_calendar_name(name: str) -> str:
    """Return ``name`` if it is a known calendar, else raise ``ValueError`` with suggestions."""
    if name == ALWAYS_OPEN:
        return name
    names = calendar_names()
    if name not in names:
        close = [n for n in names if n.upper().startswith(name[:2].upper())][:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise ValueError(f"unknown calendar {name!r}: use '24/7' or an exchange code{hint}")
    return name


@cache
def make_calendar(name: str = ALWAYS_OPEN) -> SessionCalendar:
    """The calendar called ``name`` (cached): ``"24/7"`` or an exchange_calendars code."""
    if name == ALWAYS_OPEN:
        return AlwaysOpenCalendar()
    validate_calendar_name(name)
    return ExchangeSessionCalendar(name)
