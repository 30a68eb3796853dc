"""Win rate, deal size, cycle, velocity, weighted pipeline, forecast categories and coverage, by hand."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import Opportunity, StageChange
from crmkit.errors import CurrencyMismatch, ValidationError
from crmkit.lifecycle import ForecastCategory
from crmkit.metrics import (
    ExchangeRates,
    PeriodRange,
    forecast_by_category,
    pipeline_coverage,
    sales_summary,
    weighted_pipeline,
)
from crmkit.money import Money

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 4, 1, tzinfo=UTC)


def deal(name, created_day, path=(), *, amount="1000", currency="USD", close=None, probability=None):
    history, previous = [], "prospecting"
    for target, day in path:
        history.append(StageChange(from_stage=previous, to_stage=target, at=T0 + timedelta(days=day)))
        previous = target
    return Opportunity(
        name=name,
        created_at=T0 + timedelta(days=created_day),
        stage=previous,
        stage_history=tuple(history),
        amount=None if amount is None else Money(amount, currency),
        expected_close=close,
        probability=None if probability is None else Decimal(probability),
    )


DEALS = [
    deal("won fast", 0, [("proposal", 2), ("won", 10)], amount="1000"),
    deal("won slow", 0, [("proposal", 5), ("negotiation", 20), ("won", 30)], amount="3000"),
    deal("lost", 0, [("lost", 15)]),
    deal("lost in february", 0, [("lost", 40)]),
    deal("open proposal", 5, [("proposal", 6)], amount="2000", close=date(2026, 4, 15)),
    deal("open negotiation", 5, [("negotiation", 7)], amount="1000", close=date(2026, 5, 2)),
    deal("open custom", 5, amount="500", close=date(2026, 4, 20), probability="0.3"),
    deal("won later", 0, [("won", 100)]),  # after AS_OF: still open at AS_OF
]
JANUARY = {"start": T0, "end": datetime(2026, 2, 1, tzinfo=UTC), "as_of": AS_OF}


def test_win_rate_deal_size_and_cycle_of_the_deals_closed_in_the_period():
    summary = sales_summary(DEALS, **JANUARY, currency="USD")
    assert (summary.won, summary.lost) == (2, 1)
    assert summary.win_rate == Decimal(2) / 3  # won / (won + lost)
    assert summary.average_deal_size == Decimal(2000)
    assert summary.sales_cycle_days == Decimal(20)  # median of 10 and 30 days
    assert summary.average_cycle_days == Decimal(20)
    # open at AS_OF: the three open deals and "won later"
    assert summary.open_opportunities == 4
    # velocity = open x win rate x deal size / cycle days
    assert summary.sales_velocity == 4 * (Decimal(2) / 3) * Decimal(2000) / Decimal(20)


def test_a_period_without_closed_deals_has_no_rates():
    summary = sales_summary(DEALS, start=AS_OF, end=AS_OF + timedelta(days=30), as_of=AS_OF, currency="USD")
    assert (summary.won, summary.lost, summary.win_rate, summary.average_deal_size) == (0, 0, None, None)
    assert summary.sales_cycle_days is None
    assert summary.sales_velocity is None


def test_weighted_pipeline_sums_amount_times_probability_by_close_month():
    periods = PeriodRange("month", date(2026, 4, 1), date(2026, 5, 31))
    april, may = weighted_pipeline(DEALS, periods=periods, as_of=AS_OF, currency="USD")
    # April: proposal 2000 x 0.5 and the custom 500 x 0.3 (its own probability wins).
    assert (april.opportunities, april.amount, april.weighted_amount) == (2, Decimal(2500), Decimal(1150))
    # May: negotiation 1000 x 0.8.
    assert (may.opportunities, may.weighted_amount) == (1, Decimal(800))


def test_forecast_by_category_puts_open_deals_in_their_stage_category_and_won_deals_in_closed():
    rows = forecast_by_category(
        DEALS,
        start=datetime(2026, 4, 1, tzinfo=UTC),
        end=datetime(2026, 5, 1, tzinfo=UTC),
        as_of=AS_OF,
        currency="USD",
    )
    by_category = {row.category: (row.opportunities, row.amount) for row in rows}
    assert by_category[ForecastCategory.BEST_CASE] == (1, Decimal(2000))
    assert by_category[ForecastCategory.PIPELINE] == (1, Decimal(500))
    assert by_category[ForecastCategory.COMMIT] == (0, Decimal(0))
    january = forecast_by_category(DEALS, **JANUARY, currency="USD")
    assert {row.category: row.amount for row in january}[ForecastCategory.CLOSED] == Decimal(4000)


def test_pipeline_coverage_is_pipeline_over_quota():
    assert pipeline_coverage(Decimal(30000), Decimal(10000)) == 3
    assert pipeline_coverage(Decimal(30000), Decimal(0)) is None
    with pytest.raises(ValidationError):
        pipeline_coverage(Decimal(1), Decimal(-1))


def test_deals_in_another_currency_need_rates():
    deals = [*DEALS, deal("euro", 0, [("won", 3)], amount="100", currency="EUR")]
    with pytest.raises(CurrencyMismatch) as caught:
        sales_summary(deals, **JANUARY, currency="USD")
    assert caught.value.paths == ("opportunities[8].amount",)
    rates = ExchangeRates.of([(date(2025, 12, 1), "EUR", "USD", "1.5")])
    summary = sales_summary(deals, **JANUARY, currency="USD", rates=rates)
    assert summary.average_deal_size == (Decimal(1000) + Decimal(3000) + Decimal(150)) / 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["won", "lost", None]), st.integers(1, 60)), max_size=15))
def test_win_rate_is_a_share_and_counts_add_up(outcomes):
    deals = [deal(f"d{i}", 0, [(stage, day)] if stage else []) for i, (stage, day) in enumerate(outcomes)]
    summary = sales_summary(deals, start=T0, end=T0 + timedelta(days=61), as_of=AS_OF, currency="USD")
    assert summary.won == sum(1 for stage, _ in outcomes if stage == "won")
    assert summary.won + summary.lost + summary.open_opportunities == len(outcomes)
    if summary.win_rate is not None:
        assert 0 <= summary.win_rate <= 1
