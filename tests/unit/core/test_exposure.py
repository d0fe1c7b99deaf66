"""The one "reduces the position" rule and its tolerance."""

import pytest

from tradeplane.core.exposure import QTY_EPS, increases_exposure, is_flat, reduces_position


@pytest.mark.parametrize("position", [0.0, QTY_EPS / 2, -QTY_EPS / 2])
def test_reduces_when_position_flat_then_false_whatever_the_side(position: float) -> None:
    assert not reduces_position(position, 1.0)
    assert not reduces_position(position, -1.0)


@pytest.mark.parametrize(("position", "signed"), [(10.0, -4.0), (-10.0, 4.0), (0.3, -0.1)])
def test_reduces_when_order_closes_part_then_true(position: float, signed: float) -> None:
    assert reduces_position(position, signed)


@pytest.mark.parametrize(("position", "signed"), [(10.0, -10.0), (-10.0, 10.0)])
def test_reduces_when_order_closes_exactly_then_true(position: float, signed: float) -> None:
    assert reduces_position(position, signed)


def test_reduces_when_close_overshoots_by_float_noise_then_still_an_exact_close() -> None:
    position = 0.1 + 0.2  # 0.30000000000000004 from summed fills
    assert reduces_position(position, -0.3)
    assert reduces_position(0.3, -position)
    assert reduces_position(10.0, -(10.0 + QTY_EPS / 2))


@pytest.mark.parametrize(("position", "signed"), [(10.0, -15.0), (-10.0, 10.5), (10.0, -20.0)])
def test_reduces_when_order_flips_the_side_then_false(position: float, signed: float) -> None:
    # A flip closes the position and opens new risk on the other side: not purely reducing.
    assert not reduces_position(position, signed)


def test_reduces_when_overshoot_beyond_tolerance_then_false() -> None:
    assert not reduces_position(10.0, -(10.0 + 10 * QTY_EPS))


@pytest.mark.parametrize(("position", "signed"), [(10.0, 1.0), (-10.0, -1.0), (10.0, QTY_EPS / 2)])
def test_reduces_when_order_adds_on_the_same_side_then_false(
    position: float, signed: float
) -> None:
    assert not reduces_position(position, signed)


def test_increases_when_same_side_or_opening_or_larger_flip_then_true() -> None:
    assert increases_exposure(10.0, 1.0)
    assert increases_exposure(0.0, -1.0)
    assert increases_exposure(10.0, -25.0)  # flips to a larger short


def test_increases_when_reducing_or_smaller_flip_or_within_tolerance_then_false() -> None:
    assert not increases_exposure(10.0, -4.0)
    assert not increases_exposure(10.0, -15.0)  # flips, but |5| < |10|: not reducing either
    assert not reduces_position(10.0, -15.0)
    assert not increases_exposure(10.0, QTY_EPS / 2)


def test_is_flat_uses_the_same_tolerance() -> None:
    assert is_flat(0.0) and is_flat(QTY_EPS) and is_flat(-QTY_EPS)
    assert not is_flat(2 * QTY_EPS)
