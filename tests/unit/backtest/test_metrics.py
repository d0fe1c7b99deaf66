"""Performance figures of an equity curve (``backtest.metrics``): a hand-computed case, the edge
cases (flat, one bar, a loss to near zero and to zero, NaN refused), chunked streaming equal to
the whole series, and the definitions equal to empyrical's, the library people compare with."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tradeplane.backtest.metrics import (
    DrawdownTracker,
    RoundTrips,
    annualised_volatility,
    exposure,
    finite_array,
    max_drawdown,
    round_trips,
    sharpe_ratio,
    simple_returns,
    sortino_ratio,
    total_return,
    turnover,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
# The hand-computed case, 1-minute bars from a starting equity of 100, P = 100 bars a year (so
# sqrt(P) = 10):
#   equity   110     99     99     118.8   112.86
#   return   +0.10  -0.10   0.00   +0.20   -0.05      (118.8/99 = 1.2; 112.86/118.8 = 0.95)
#   mean return = 0.15 / 5 = 0.03
#   deviations 0.07 -0.13 -0.03 0.17 -0.08; squares sum to 0.0049 + 0.0169 + 0.0009 + 0.0289
#     + 0.0064 = 0.058; variance (ddof 1) = 0.058 / 4 = 0.0145
#   annualised volatility = sqrt(0.0145) * 10 = sqrt(1.45) = 1.2041594578792296
#   Sharpe = 0.03 / sqrt(0.0145) * 10 = 2.4913644054581455
#   downside: losses -0.10 and -0.05, squares 0.01 + 0.0025 = 0.0125, over all 5 bars 0.0025,
#     root 0.05; Sortino = 0.03 / 0.05 * 10 = 6.0
#   total return = 112.86 / 100 - 1 = 0.1286
#   drawdown: peak 110 at bar 0, trough 99 at bar 1 (1 - 99/110 = 0.1; bar 2's equal 99 does not
#     replace it), back above the peak at bar 3: duration 3 x 60 = 180 s. The later fall from
#     118.8 to 112.86 is 0.05, shallower.
EQUITY = [110.0, 99.0, 99.0, 118.8, 112.86]
TS = [T0 + 60.0 * i for i in range(5)]
P = 100.0


def test_hand_computed_case_then_every_figure_as_worked_out() -> None:
    returns = simple_returns(EQUITY, 100.0)
    assert returns is not None
    assert returns == pytest.approx([0.10, -0.10, 0.0, 0.20, -0.05], abs=1e-12)
    assert total_return(100.0, EQUITY[-1]) == pytest.approx(0.1286, abs=1e-12)
    assert annualised_volatility(returns, P) == pytest.approx(math.sqrt(1.45), rel=1e-12)
    assert sharpe_ratio(returns, P) == pytest.approx(0.3 / math.sqrt(0.0145), rel=1e-12)
    assert sortino_ratio(returns, P) == pytest.approx(6.0, rel=1e-12)
    dd = max_drawdown(TS, EQUITY, starting_equity=100.0)
    assert dd.depth == pytest.approx(0.1, rel=1e-12)
    assert (dd.peak_ts, dd.trough_ts, dd.recovery_ts) == (TS[0], TS[1], TS[3])
    assert (dd.peak_equity, dd.trough_equity) == (110.0, 99.0)
    assert dd.duration_s == 180.0


def test_drawdown_not_recovered_then_duration_runs_to_the_last_bar() -> None:
    dd = max_drawdown(TS[:4], [100.0, 120.0, 90.0, 100.0], starting_equity=100.0)
    assert dd.depth == pytest.approx(0.25)
    assert dd.recovery_ts is None
    assert dd.peak_ts == TS[1]
    assert dd.duration_s == TS[3] - TS[1]


def test_drawdown_from_the_starting_equity_then_peak_is_the_first_bar_time() -> None:
    dd = max_drawdown(TS[:3], [95.0, 90.0, 101.0], starting_equity=100.0)
    assert dd.depth == pytest.approx(0.1)
    assert (dd.peak_ts, dd.peak_equity, dd.recovery_ts) == (TS[0], 100.0, TS[2])
    assert dd.duration_s == 120.0


def test_equity_back_exactly_at_the_peak_then_recovered() -> None:
    dd = max_drawdown(TS[:3], [100.0, 80.0, 100.0], starting_equity=100.0)
    assert dd.recovery_ts == TS[2]
    assert dd.duration_s == 120.0


def test_flat_curve_then_zero_risk_and_undefined_ratios() -> None:
    returns = simple_returns([100.0] * 50, 100.0)
    assert returns is not None
    assert total_return(100.0, 100.0) == 0.0
    assert annualised_volatility(returns, P) == 0.0
    assert sharpe_ratio(returns, P) is None
    assert sortino_ratio(returns, P) is None
    dd = max_drawdown([T0 + i for i in range(50)], [100.0] * 50, 100.0)
    assert (dd.depth, dd.duration_s) == (0.0, 0.0)


def test_constant_growth_then_sharpe_undefined_not_a_rounding_error() -> None:
    equity = 100.0 * np.cumprod(np.full(1000, 1.001))
    returns = simple_returns(equity, 100.0)
    assert returns is not None
    assert sharpe_ratio(returns, P) is None
    assert sortino_ratio(returns, P) is None  # no losing bar


def test_one_bar_then_only_return_and_drawdown_defined() -> None:
    returns = simple_returns([90.0], 100.0)
    assert returns is not None and returns.tolist() == pytest.approx([-0.1])
    assert total_return(100.0, 90.0) == pytest.approx(-0.1)
    assert annualised_volatility(returns, P) is None
    assert sharpe_ratio(returns, P) is None
    assert sortino_ratio(returns, P) is None
    dd = max_drawdown([T0], [90.0], 100.0)
    assert dd.depth == pytest.approx(0.1)
    assert dd.duration_s == 0.0  # peak and last bar are the same bar time


def test_loss_to_near_zero_then_figures_stay_finite() -> None:
    equity = [50.0, 1e-9, 2e-9]
    returns = simple_returns(equity, 100.0)
    assert returns is not None
    assert total_return(100.0, 2e-9) == pytest.approx(-1.0, abs=1e-9)
    for figure in (annualised_volatility, sharpe_ratio, sortino_ratio):
        value = figure(returns, P)
        assert value is not None and math.isfinite(value)
    assert max_drawdown(TS[:3], equity, 100.0).depth == pytest.approx(1.0, abs=1e-10)


def test_equity_reaching_zero_then_return_figures_undefined() -> None:
    assert simple_returns([50.0, 0.0, 10.0], 100.0) is None
    assert simple_returns([50.0, -5.0], 100.0) is not None  # only returns *from* <= 0 are undefined
    assert simple_returns([50.0, -5.0, 1.0], 100.0) is None
    assert max_drawdown(TS[:3], [50.0, 0.0, 10.0], 100.0).depth == 1.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_then_refused_with_its_index(bad: float) -> None:
    with pytest.raises(ValueError, match="index 2"):
        simple_returns([100.0, 101.0, bad], 100.0)
    with pytest.raises(ValueError, match="index 1"):
        sharpe_ratio([0.01, bad], P)
    with pytest.raises(ValueError, match="finite"):
        max_drawdown(TS[:2], [100.0, 100.0], starting_equity=bad)
    with pytest.raises(ValueError, match="not finite"):
        total_return(100.0, bad)
    with pytest.raises(ValueError):
        finite_array("ts", [T0, bad])


def test_bar_times_not_increasing_then_drawdown_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        max_drawdown([T0, T0], [1.0, 2.0])


def test_starting_equity_not_positive_then_refused() -> None:
    with pytest.raises(ValueError, match="> 0"):
        DrawdownTracker(0.0)


def test_turnover_then_traded_notional_over_mean_equity() -> None:
    # Buy 1 at 100, sell 1 at 118: 218 traded over the hand-computed case's mean equity
    # (110 + 99 + 99 + 118.8 + 112.86) / 5 = 107.932.
    assert turnover(218.0, 107.932) == pytest.approx(218.0 / 107.932)
    assert turnover(0.0, 100.0) == 0.0
    assert turnover(10.0, 0.0) is None


def test_exposure_then_fraction_of_bar_times_holding() -> None:
    assert exposure([False, True, True, False, True]) == pytest.approx(0.6)
    assert exposure([]) is None


def test_round_trips_then_flat_to_flat_and_flips_count() -> None:
    fills = [
        ("AAA", 1.0),  # open long
        ("AAA", -1.0),  # flat: 1
        ("AAA", 2.0),  # open long
        ("BBB", -1.0),  # open short on another symbol
        ("AAA", -3.0),  # flip to short: 2
        ("AAA", 0.5),  # still short
        ("AAA", 0.5),  # flat: 3
        ("BBB", 0.4),  # still short at the end: not counted
    ]
    assert round_trips(fills) == 3


def test_round_trips_with_float_dust_then_flat() -> None:
    trips = RoundTrips()
    for qty in (0.1, 0.2, -0.3):
        trips.add("X", qty)
    assert trips.completed == 1
    assert trips.positions["X"] == 0.0


def _naive_drawdown(ts: list[float], equity: list[float], start: float) -> tuple[float, float]:
    """The definition, one bar at a time."""
    peak, peak_ts = start, ts[0]
    best, best_peak_ts, recovery, is_open = 0.0, ts[0], None, False
    for t, e in zip(ts, equity, strict=True):
        if e >= peak:
            if is_open:
                recovery, is_open = t, False
            peak, peak_ts = e, t
            continue
        depth = 1.0 - e / peak
        if depth > best:
            best, best_peak_ts, recovery, is_open = depth, peak_ts, None, True
    if best == 0.0:
        return 0.0, 0.0
    end = ts[-1] if is_open else recovery
    assert end is not None
    return best, end - best_peak_ts


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("chunk", [1, 3, 64, 10_000])
def test_drawdown_in_chunks_then_same_as_one_bar_at_a_time(seed: int, chunk: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    equity = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.02, n))
    # Some exact returns to earlier peaks, to exercise "back at the peak is recovered".
    equity[rng.integers(0, n, n // 10)] = 100.0
    ts = T0 + 60.0 * np.arange(n)
    tracker = DrawdownTracker(100.0)
    for i in range(0, n, chunk):
        tracker.add(ts[i : i + chunk], equity[i : i + chunk])
    depth, duration = _naive_drawdown(ts.tolist(), equity.tolist(), 100.0)
    result = tracker.result()
    assert result.depth == pytest.approx(depth, abs=1e-15)
    assert result.duration_s == duration


@pytest.mark.parametrize("seed", range(10))
def test_figures_then_equal_to_empyrical(seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its pandas and numpy deprecations are not ours
        import empyrical  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    returns = rng.normal(rng.uniform(-1e-3, 1e-3), rng.uniform(1e-4, 5e-2), n)
    equity = 1000.0 * np.cumprod(1.0 + returns)
    ours = simple_returns(equity, 1000.0)
    assert ours is not None
    ppy = float(rng.choice([252.0, 8766.0, 525_960.0, 96_960.0]))
    assert annualised_volatility(ours, ppy) == pytest.approx(
        empyrical.annual_volatility(returns, annualization=ppy), rel=1e-9
    )
    assert sharpe_ratio(ours, ppy) == pytest.approx(
        empyrical.sharpe_ratio(returns, annualization=ppy), rel=1e-8
    )
    assert sortino_ratio(ours, ppy) == pytest.approx(
        empyrical.sortino_ratio(returns, annualization=ppy), rel=1e-8
    )
    assert total_return(1000.0, float(equity[-1])) == pytest.approx(
        empyrical.cum_returns_final(returns), rel=1e-9, abs=1e-12
    )
    dd = max_drawdown(T0 + 60.0 * np.arange(n), equity, 1000.0)
    assert -dd.depth == pytest.approx(empyrical.max_drawdown(returns), rel=1e-9, abs=1e-15)
