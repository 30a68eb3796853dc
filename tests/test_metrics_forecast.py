"""Holt-Winters: exact on a clean trend and season, intervals that widen, a backtest beating seasonal naive."""

import itertools
import math
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import ValidationError
from crmkit.metrics import HoltWinters, backtest, fit_holt_winters
from crmkit.metrics._numeric import minimize_nelder_mead


def clean(t):
    return 100 + 2 * t + 10 * math.sin(2 * math.pi * t / 12)


def noisy(n, seed=1):
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    return [clean(t) + rng.gauss(0, 3) for t in range(n)]


def test_a_clean_trend_and_season_is_forecast_exactly():
    model = fit_holt_winters([clean(t) for t in range(48)], season_length=12)
    assert model.sigma == pytest.approx(0, abs=1e-9)
    for point in model.forecast(15):
        assert point.value == pytest.approx(clean(47 + point.step), abs=1e-9)


def test_revenue_as_decimals_is_accepted():
    model = fit_holt_winters([Decimal(str(round(clean(t), 2))) for t in range(30)], season_length=12)
    assert model.observations == 30


def test_forecast_follows_the_additive_formula_and_its_interval():
    model = HoltWinters(
        4,
        alpha=0.5,
        beta=0.1,
        gamma=0.2,
        level=100.0,
        trend=2.0,
        seasonals=(1.0, -1.0, 3.0, -3.0),
        observations=8,
        sigma=2.0,
    )
    points = model.forecast(5, level=0.95)
    # h periods ahead: level + h * trend + the season of period 8 + h - 1.
    assert [p.value for p in points] == [103.0, 103.0, 109.0, 105.0, 111.0]
    z = 1.959963984540054
    assert points[0].upper - points[0].value == pytest.approx(z * 2.0)
    # h = 2: sigma^2 (1 + (alpha^2 + alpha beta 2 + beta^2 2 (3) / 6))
    variance = 4 * (1 + (0.25 + 0.1 + 0.01 * 2 * 3 / 6))
    assert points[1].upper - points[1].value == pytest.approx(z * math.sqrt(variance))
    # h = 5 reaches into the next season: k = 1 adds gamma k (gamma + 2 alpha + beta h (k + 1)).
    h, k = 5, 1
    variance = 4 * (
        1
        + (h - 1) * (0.25 + 0.05 * h + 0.01 * h * (2 * h - 1) / 6)
        + 0.2 * k * (0.2 + 1.0 + 0.1 * h * (k + 1))
    )
    assert points[4].value - points[4].lower == pytest.approx(z * math.sqrt(variance))


def test_intervals_widen_with_the_horizon():
    points = fit_holt_winters(noisy(60)).forecast(24)
    widths = [p.upper - p.lower for p in points]
    assert all(later >= earlier for earlier, later in itertools.pairwise(widths))
    assert all(p.lower < p.value < p.upper for p in points)


def test_the_smoothing_parameters_respect_their_bounds():
    model = fit_holt_winters(noisy(60))
    assert 0 <= model.beta <= model.alpha <= 1
    assert 0 <= model.gamma <= 1 - model.alpha


def test_the_backtest_reports_mape_against_a_seasonal_naive_baseline():
    result = backtest(noisy(60), horizon=12)
    assert len(result.forecast) == len(result.actual) == len(result.seasonal_naive) == 12
    # The naive forecast repeats last year's values and misses a year of trend.
    assert result.naive_mape > 3 * result.mape
    by_hand = 100 * sum(abs(a - f) / abs(a) for a, f in zip(result.actual, result.forecast, strict=True)) / 12
    assert result.mape == pytest.approx(by_hand)
    assert result.seasonal_naive[0] == noisy(60)[36]


def test_all_zero_actuals_have_no_mape():
    history = [0.0] * 12 + [5.0] * 12 + [0.0] * 4
    assert backtest(history, horizon=4, season_length=4).mape is None


def test_bad_input_is_named():
    with pytest.raises(ValidationError) as caught:
        fit_holt_winters([1.0] * 10, season_length=12)
    assert caught.value.paths == ("history",)
    with pytest.raises(ValidationError) as caught:
        fit_holt_winters([1.0] * 10, season_length=1)
    assert caught.value.paths == ("season_length",)
    with pytest.raises(ValidationError) as caught:
        fit_holt_winters([1.0] * 8 + [math.nan], season_length=4)
    assert caught.value.paths == ("history[8]",)
    with pytest.raises(ValidationError) as caught:
        fit_holt_winters(noisy(30)).forecast(0, level=1.5)
    assert set(caught.value.paths) == {"horizon", "level"}
    with pytest.raises(ValidationError):
        backtest(noisy(30), horizon=0)


def test_nelder_mead_finds_a_quadratic_minimum():
    found = minimize_nelder_mead(lambda p: (p[0] - 3) ** 2 + 2 * (p[1] + 1) ** 2, [0.0, 0.0])
    assert found.converged
    assert found.x == pytest.approx((3, -1), abs=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.floats(-5, 5), st.floats(0, 50), st.integers(0, 2**16))
def test_a_season_shifted_by_a_constant_shifts_the_forecast(season_length, slope, shift, seed):
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    pattern = [rng.uniform(-10, 10) for _ in range(season_length)]
    history = [
        50 + slope * t + pattern[t % season_length] + rng.gauss(0, 1) for t in range(4 * season_length)
    ]
    base = fit_holt_winters(history, season_length=season_length)
    moved = fit_holt_winters([v + shift for v in history], season_length=season_length)
    for a, b in zip(base.forecast(3), moved.forecast(3), strict=True):
        assert b.value - a.value == pytest.approx(shift, abs=1e-3 * max(1.0, abs(shift)) + 0.5)
