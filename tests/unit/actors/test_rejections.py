"""Rejected venue messages as journal records: the first few one by one with their payload,
then one ``venue_messages_suppressed`` count per window; the payload of a suppressed one is
never even built."""

from __future__ import annotations

from tradeplane.actors.rejections import BoundedRejections
from tradeplane.config.models import JournalConfig
from tradeplane.protocol.events import EventKind


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_flood_then_few_rejected_records_and_one_summary_per_window() -> None:
    clock = Clock()
    cfg = JournalConfig(venue_rejections_per_window=2, venue_rejection_window_s=30.0)
    bounded = BoundedRejections("demo", cfg, clock=clock, wall=lambda: 1.7e9)
    built = []

    def payload() -> dict[str, object]:
        built.append(1)
        return {"source": "okx", "reason": "bad", "message": "{...}"}

    records = [r for _ in range(50) for r in bounded.rejected("okx", "bad", payload)]
    assert [r.kind for r in records] == [EventKind.VENUE_MESSAGE_REJECTED] * 2
    assert len(built) == 2 and bounded.suppressed == 48
    clock.now = 30.0
    (summary,) = bounded.due()
    assert summary.kind == EventKind.VENUE_MESSAGES_SUPPRESSED
    assert summary.data == {
        "source": "okx",
        "window_s": 30.0,
        "journaled": 2,
        "suppressed": 48,
        "reasons": {"bad": 48},
    }


def test_defaults_then_ten_per_minute() -> None:
    cfg = JournalConfig()
    assert (cfg.venue_rejections_per_window, cfg.venue_rejection_window_s) == (10, 60.0)
