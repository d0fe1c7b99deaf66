"""The collector settings of the actors on the order path (``actors.gc_tuning``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tradeplane.actors import gc_tuning


@pytest.fixture
def fresh_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts unsettled and leaves the test process's collector as it found it."""
    threshold = gc.get_threshold()
    monkeypatch.setattr(gc_tuning, "_SETTLED", False)
    monkeypatch.setattr(gc_tuning, "_PAUSES", None)
    callbacks = list(gc.callbacks)
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks


def test_settle_after_start_up_then_start_up_objects_frozen_and_young_threshold_raised(
    fresh_collector: None,
) -> None:
    kept = [[i] for i in range(1000)]  # start-up state
    gc_tuning.settle_after_start_up(threshold0=12_345)
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold()[0] == 12_345


def test_settle_after_start_up_when_called_again_then_changes_nothing(
    fresh_collector: None,
) -> None:
    gc_tuning.settle_after_start_up(threshold0=12_345)
    gc.set_threshold(700, 10, 10)
    gc_tuning.settle_after_start_up(threshold0=12_345)
    assert gc.get_threshold()[0] == 700


def test_gc_pauses_when_the_collector_runs_then_counted_by_generation(
    fresh_collector: None,
) -> None:
    pauses = gc_tuning.gc_pauses()
    gc.collect(1)
    gc.collect(2)
    summary = pauses.summary()
    assert summary["collections"][1] == 1
    assert summary["collections"][2] == 1
    assert [gen for _, _, gen in pauses.recent] == [1, 2]
    assert gc_tuning.gc_pauses() is pauses  # one per process
