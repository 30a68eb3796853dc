"""Predictive CLV: BG/NBD and Gamma-Gamma reproduce the published CDNOW fits and lifetimes' predictions."""

import csv
import importlib.util
import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import ValidationError
from crmkit.metrics import BetaGeoModel, GammaGammaModel, fit_bg_nbd, fit_gamma_gamma, predictive_clv
from crmkit.metrics._numeric import digamma, hyp2f1, minimize_bfgs
from crmkit.segmentation import BtydSummary, OrderRow, btyd_summary

CDNOW = Path(__file__).parent / "data" / "CDNOW_sample.txt"
CALIBRATION_END = datetime(1997, 9, 30, tzinfo=UTC)
# Parameters near the CDNOW fit, and lifetimes 0.11.3's answers for them (computed with numpy/scipy).
MODEL = BetaGeoModel(r=0.25, alpha=4.0, a=0.8, b=2.5)
SPEND = GammaGammaModel(p=6.0, q=4.0, v=15.0)
CUSTOMERS = [
    BtydSummary("c1", 2, 30.0, 38.0, Decimal("22.5")),
    BtydSummary("c2", 0, 0.0, 20.0, Decimal(0)),
    BtydSummary("c3", 5, 10.0, 38.0, Decimal(40)),
]


def cdnow_rows():
    rows = []
    for line in CDNOW.read_text(encoding="utf-8").splitlines():
        _, customer, day, _, amount = line.split()
        at = datetime(int(day[:4]), int(day[4:6]), int(day[6:]), tzinfo=UTC)
        rows.append(OrderRow(customer, at, Decimal(amount)))
    return rows


@pytest.fixture(scope="module")
def cdnow():
    # Weeks as in Fader, Hardie & Lee (2005): whole days divided by 7.
    return btyd_summary(cdnow_rows(), CALIBRATION_END, unit="day", multiplier=7)


def test_the_cdnow_sample_has_2357_customers_followed_for_39_weeks(cdnow):
    assert len(cdnow) == 2357
    assert max(h.T for h in cdnow) == pytest.approx(38.857, abs=1e-3)
    assert sum(h.frequency for h in cdnow) == 2457


def test_bg_nbd_reproduces_the_published_cdnow_fit_to_three_decimals(cdnow):
    model = fit_bg_nbd(cdnow)
    assert model.converged
    assert round(model.r, 3) == 0.243
    assert round(model.alpha, 3) == 4.414
    assert round(model.a, 3) == 0.793
    assert round(model.b, 3) == 2.426
    assert round(model.log_likelihood, 1) == -9582.4
    assert model.customers == 2357


def test_gamma_gamma_reproduces_lifetimes_documented_fit_on_the_repeat_customers(cdnow):
    # lifetimes' documented example fits its "CDNOW summary with monetary value" (x, t_x, T, zbar), which
    # is exactly this summary: calibration to 1997-09-30, zbar the mean spend of the repeat purchase days.
    spend = fit_gamma_gamma(cdnow)
    assert spend.converged
    assert spend.customers == 946  # the customers with a repeat purchase
    assert (round(spend.p, 2), round(spend.q, 2), round(spend.v, 2)) == (6.25, 3.74, 15.44)


def test_expected_purchases_of_a_new_customer_match_lifetimes():
    for t, expected in [(1.0, 0.060300688385342), (39.0, 1.318132720300343), (78.0, 2.03452589693357)]:
        assert MODEL.expected_purchases(t) == pytest.approx(expected, rel=1e-12)


def test_conditional_expected_purchases_match_lifetimes():
    expected = [1.270051237275448, 0.337314383725733, 0.096784329968865]
    for customer, value in zip(CUSTOMERS, expected, strict=True):
        assert MODEL.conditional_expected_purchases(customer, 39) == pytest.approx(value, rel=1e-12)


def test_probability_alive_matches_lifetimes_and_is_one_without_repeats():
    expected = [0.731149218685168, 1.0, 0.024776554726436]
    for customer, value in zip(CUSTOMERS, expected, strict=True):
        assert MODEL.probability_alive(customer) == pytest.approx(value, rel=1e-12)


def test_expected_purchases_are_continuous_where_a_equals_one():
    at_one = BetaGeoModel(r=0.25, alpha=4.0, a=1.0, b=2.5)
    below = BetaGeoModel(r=0.25, alpha=4.0, a=1.0 - 1e-3, b=2.5)
    above = BetaGeoModel(r=0.25, alpha=4.0, a=1.0 + 1e-3, b=2.5)
    for value in (
        lambda m: m.expected_purchases(39),
        lambda m: m.conditional_expected_purchases(CUSTOMERS[0], 39),
    ):
        assert min(value(below), value(above)) <= value(at_one) <= max(value(below), value(above))


def test_probability_alive_follows_its_formula_by_hand():
    customer = CUSTOMERS[0]
    odds = 0.8 / (2.5 + 2 - 1) * ((4.0 + 38.0) / (4.0 + 30.0)) ** (0.25 + 2)
    assert MODEL.probability_alive(customer) == pytest.approx(1 / (1 + odds), rel=1e-14)


def test_expected_spend_is_the_weighted_mean_of_population_and_customer():
    assert SPEND.expected_average_value(CUSTOMERS[0]) == pytest.approx(24.0)
    assert SPEND.expected_average_value(CUSTOMERS[2]) == pytest.approx(39.090909090909086)
    # p (v + x m) / (p x + q - 1) by hand for c1: 6 * (15 + 45) / (12 + 3).
    assert SPEND.expected_average_value(CUSTOMERS[0]) == 6 * (15 + 2 * 22.5) / (6 * 2 + 4 - 1)


def test_predictive_clv_matches_lifetimes_monthly_discounted_sum():
    for customer, expected in [(CUSTOMERS[0], 36.55110523392632), (CUSTOMERS[2], 4.502848805506653)]:
        value = predictive_clv(MODEL, SPEND, customer, periods=12, period_length=4.345, discount_rate=0.01)
        assert value == pytest.approx(expected, rel=1e-10)


def test_predictive_clv_scales_with_margin_and_is_zero_for_no_periods():
    customer = CUSTOMERS[0]
    full = predictive_clv(MODEL, SPEND, customer, periods=6, period_length=4.345, discount_rate=0.0)
    half = predictive_clv(
        MODEL, SPEND, customer, periods=6, period_length=4.345, discount_rate=0.0, margin=0.5
    )
    assert half == pytest.approx(full / 2)
    assert full == pytest.approx(24.0 * MODEL.conditional_expected_purchases(customer, 6 * 4.345))
    assert predictive_clv(MODEL, SPEND, customer, periods=0, period_length=4.345, discount_rate=0.01) == 0


def test_predictive_clv_refuses_bad_parameters_naming_each():
    with pytest.raises(ValidationError) as caught:
        predictive_clv(MODEL, SPEND, CUSTOMERS[0], periods=-1, period_length=0, discount_rate=-1)
    assert set(caught.value.paths) == {"periods", "period_length", "discount_rate"}


def test_fitting_nothing_or_no_repeat_purchases_is_a_validation_error():
    with pytest.raises(ValidationError, match="no customers"):
        fit_bg_nbd([])
    with pytest.raises(ValidationError, match="repeat"):
        fit_bg_nbd([BtydSummary("a", 0, 0.0, 10.0, Decimal(0))])
    with pytest.raises(ValidationError, match="repeat"):
        fit_gamma_gamma([BtydSummary("a", 0, 0.0, 10.0, Decimal(0))])


@pytest.mark.parametrize(
    ("history", "path"),
    [
        (BtydSummary("a", -1, 0.0, 10.0, Decimal(0)), "histories[1].frequency"),
        (BtydSummary("a", 2, 11.0, 10.0, Decimal(3)), "histories[1].recency"),
        (BtydSummary("a", 0, 1.0, 10.0, Decimal(0)), "histories[1].recency"),
        (BtydSummary("a", 2, 1.0, 10.0, Decimal(-3)), "histories[1].monetary"),
    ],
)
def test_an_impossible_history_is_refused_with_its_index(history, path):
    good = BtydSummary("ok", 1, 2.0, 10.0, Decimal(5))
    with pytest.raises(ValidationError) as caught:
        fit_bg_nbd([good, history])
    assert caught.value.paths == (path,)


def test_digamma_knows_its_special_values():
    euler = 0.5772156649015329
    assert digamma(1.0) == pytest.approx(-euler, abs=1e-14)
    assert digamma(0.5) == pytest.approx(-euler - 2 * math.log(2), abs=1e-14)
    with pytest.raises(ValueError, match="x > 0"):
        digamma(0.0)


def test_hyp2f1_knows_closed_forms():
    z = 0.7
    assert hyp2f1(1, 1, 2, z) == pytest.approx(-math.log(1 - z) / z, rel=1e-13)
    assert hyp2f1(0.5, 1, 1.5, z * z) == pytest.approx(math.atanh(z) / z, rel=1e-13)
    with pytest.raises(ValueError, match="z < 1"):
        hyp2f1(1, 1, 2, 1.0)


def test_bfgs_finds_the_minimum_of_the_rosenbrock_valley():
    def rosenbrock(point):
        x, y = point
        value = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        return value, [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)]

    found = minimize_bfgs(rosenbrock, [-1.2, 1.0])
    assert found.converged
    assert found.x == pytest.approx((1.0, 1.0), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.05, 50))
def test_digamma_satisfies_its_recurrence(x):
    assert digamma(x + 1) == pytest.approx(digamma(x) + 1 / x, rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.1, 5), st.floats(0.1, 5), st.floats(0, 0.95))
def test_hyp2f1_with_equal_b_and_c_is_a_power(a, b, z):
    assert hyp2f1(a, b, b, z) == pytest.approx((1 - z) ** -a, rel=1e-10)


histories = st.builds(
    lambda x, share, age, m: BtydSummary("h", x, 0.0 if x == 0 else share * age, age, Decimal(m)),
    st.integers(0, 30),
    st.floats(0, 1),
    st.floats(0.5, 100),
    st.integers(1, 500),
)
models = st.builds(BetaGeoModel, st.floats(0.05, 5), st.floats(0.5, 20), st.floats(0.1, 5), st.floats(0.1, 5))


@settings(max_examples=60, deadline=None)
@given(models, histories, st.floats(0.5, 52))
def test_p_alive_is_a_probability_and_expected_purchases_grow_with_the_horizon(model, history, t):
    alive = model.probability_alive(history)
    assert 0 <= alive <= 1
    shorter = model.conditional_expected_purchases(history, t)
    longer = model.conditional_expected_purchases(history, 2 * t)
    assert 0 <= shorter <= longer * (1 + 1e-9) + 1e-12


@settings(max_examples=40, deadline=None)
@given(histories)
def test_expected_spend_lies_between_population_and_customer_means(history):
    spend = SPEND
    population = spend.p * spend.v / (spend.q - 1)
    value = spend.expected_average_value(history)
    own = float(history.monetary) if history.frequency else population
    assert min(population, own) - 1e-9 <= value <= max(population, own) + 1e-9


def test_the_summary_equals_the_one_lifetimes_ships_for_its_examples(cdnow):
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lifetimes is not installed (the bench extra)")
    # Read the data file without importing lifetimes (its import warns under pandas 3).
    shipped = (
        Path(spec.submodule_search_locations[0])
        / "datasets"
        / "cdnow_customers_summary_with_transactions.csv"
    )
    rows = list(csv.DictReader(shipped.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == len(cdnow)
    for row, ours in zip(rows, cdnow, strict=True):  # the file has two decimals
        assert int(row["ID"]) == int(ours.customer_id)
        assert int(row["x"]) == ours.frequency
        assert float(row["t_x"]) == pytest.approx(ours.recency, abs=0.0051)
        assert float(row["T"]) == pytest.approx(ours.T, abs=0.0051)
        assert float(row["zbar"]) == pytest.approx(float(ours.monetary), abs=0.0051)


def test_a_penalty_shrinks_the_parameters_and_the_likelihood_is_reported_without_it(cdnow):
    plain = fit_bg_nbd(cdnow)
    shrunk = fit_bg_nbd(cdnow, penalty=0.05)
    assert shrunk.alpha < plain.alpha
    assert shrunk.log_likelihood < plain.log_likelihood  # the unpenalised likelihood, lower off the optimum
    spend = fit_gamma_gamma(cdnow, penalty=0.01)
    assert spend.v < 15.44
    with pytest.raises(ValidationError) as caught:
        fit_bg_nbd(cdnow, penalty=-1)
    assert caught.value.paths == ("penalty",)


def test_a_fit_whose_parameters_run_off_is_not_converged():
    # Every customer buys at the same steady pace: no drop-out, so r and alpha grow without bound.
    steady = [BtydSummary(f"c{i}", 4, 20.0 + i % 3, 21.0 + i % 3, Decimal(10)) for i in range(30)]
    model = fit_bg_nbd(steady)
    assert not model.converged
