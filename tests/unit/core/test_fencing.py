from __future__ import annotations

import pickle

import pytest

from tradeplane.core.errors import StaleEpochError
from tradeplane.core.fencing import EpochCounter, FenceTable, identity_mismatch
from tradeplane.core.run_record import JournalIdentity

G = "a" * 64


def test_write_when_its_epoch_is_below_the_roles_fence_then_refused_naming_the_role() -> None:
    fences = FenceTable()
    fences.fence("broker", 7)
    with pytest.raises(StaleEpochError, match="broker epoch 6 has been replaced") as err:
        fences.check([("broker", 6)])
    assert err.value.role == "broker"


def test_write_at_or_above_the_fence_or_of_an_unfenced_role_then_accepted() -> None:
    fences = FenceTable({"broker": 7})
    fences.check([("broker", 7), ("broker", 8), ("risk", 1)])
    fences.check([])


def test_any_stale_stamp_of_a_write_then_refused_as_that_roles() -> None:
    fences = FenceTable({"risk": 5})
    with pytest.raises(StaleEpochError) as err:
        fences.check([("broker", 9), ("risk", 4)])
    assert err.value.role == "risk"


def test_fence_never_moves_back() -> None:
    fences = FenceTable()
    assert fences.fence("risk", 9) == 9
    assert fences.fence("risk", 3) == 9
    assert fences.floor("risk") == 9 and fences.max_epoch() == 9


def test_stale_epoch_error_keeps_its_role_through_pickling() -> None:
    err = pickle.loads(pickle.dumps(StaleEpochError("stale_epoch: x", "risk")))
    assert (str(err), err.role) == ("stale_epoch: x", "risk")


def test_epoch_counter_only_grows() -> None:
    epochs = EpochCounter(100)
    assert [epochs.next(), epochs.next()] == [101, 102]
    epochs.raise_to(50)
    assert epochs.next() == 103
    epochs.raise_to(500)
    assert epochs.next() == 501


def test_identity_when_nothing_expected_then_any_journal_opens() -> None:
    assert identity_mismatch(None, found=False, genesis="", last_seq=0) is None
    nothing_yet = JournalIdentity("", 3, 0)
    assert identity_mismatch(nothing_yet, found=False, genesis="", last_seq=0) is None


def test_identity_when_files_missing_then_lost() -> None:
    lost = identity_mismatch(JournalIdentity(G, 3, 40), found=False, genesis="", last_seq=0)
    assert lost is not None and "no journal files" in lost and "40 lines" in lost


def test_identity_when_another_journal_then_lost() -> None:
    lost = identity_mismatch(JournalIdentity(G, 3, 40), found=True, genesis="b" * 64, last_seq=90)
    assert lost is not None and "different journal" in lost


def test_identity_when_fewer_lines_than_acknowledged_then_lost() -> None:
    lost = identity_mismatch(JournalIdentity(G, 3, 40), found=True, genesis=G, last_seq=39)
    assert lost is not None and "39 lines but 40 were acknowledged" in lost


def test_identity_when_same_journal_with_as_many_lines_or_more_then_opens() -> None:
    expected = JournalIdentity(G, 3, 40)
    assert identity_mismatch(expected, found=True, genesis=G, last_seq=40) is None
    assert identity_mismatch(expected, found=True, genesis=G, last_seq=41) is None
