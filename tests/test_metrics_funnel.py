"""Funnel conversion (cohort view), time in stage, lead velocity, cost per lead, lead conversion, ROI."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import Channel, Lead, StageChange
from crmkit.errors import ValidationError
from crmkit.metrics import (
    PeriodRange,
    SpendRow,
    cost_per_lead,
    funnel,
    lead_conversion,
    lead_velocity,
    marketing_roi,
    stage_times,
)
from crmkit.money import Money
from crmkit.segmentation import OrderRow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def lead(name, created_day, path=(), **fields):
    """A lead created on day ``created_day`` of 2026 in 'new', then moved along ``path`` of (stage, day)."""
    created = T0 + timedelta(days=created_day)
    history, stage, previous = [], "new", "new"
    for target, day in path:
        history.append(StageChange(from_stage=previous, to_stage=target, at=T0 + timedelta(days=day)))
        previous = stage = target
    return Lead(
        email=f"{name}@example.com", created_at=created, stage=stage, stage_history=tuple(history), **fields
    )


LEADS = [
    lead("a", 0, [("contacted", 2), ("qualified", 6)]),
    lead("b", 3, [("contacted", 4)]),
    lead("c", 10, [("contacted", 20), ("qualified", 24), ("contacted", 30)]),
    lead("d", 12),
    lead("e", 40, [("contacted", 41), ("qualified", 42)]),  # created in February: another cohort
]
JANUARY = {"start": T0, "end": datetime(2026, 2, 1, tzinfo=UTC), "as_of": AS_OF}


def test_the_funnel_follows_the_cohort_that_entered_the_first_stage_in_the_period():
    steps = funnel(LEADS, ["new", "contacted", "qualified"], **JANUARY)
    assert [(s.stage, s.reached) for s in steps] == [("new", 4), ("contacted", 3), ("qualified", 2)]
    assert steps[0].conversion_rate == 1.0
    assert steps[1].conversion_rate == 3 / 4
    assert steps[1].drop_off == pytest.approx(1 / 4)
    assert steps[2].conversion_rate == 2 / 3
    # new -> contacted: a 2 days, b 1 day, c 10 days; the median is 2 days.
    assert steps[1].median_time == timedelta(days=2)
    # contacted -> qualified: a 4 days, c 4 days.
    assert steps[2].median_time == timedelta(days=4)


def test_the_funnel_reads_history_as_it_stood_at_as_of():
    early = funnel(LEADS, ["new", "contacted"], start=T0, end=JANUARY["end"], as_of=T0 + timedelta(days=5))
    assert [s.reached for s in early] == [2, 2]  # c and d were not created yet; a and b were contacted


def test_an_empty_cohort_has_no_rates():
    steps = funnel([], ["new", "contacted"], **JANUARY)
    assert steps[0].conversion_rate is None
    assert steps[1].conversion_rate is None
    assert steps[1].median_time is None


def test_a_funnel_needs_two_stages_and_an_ordered_aware_period():
    with pytest.raises(ValidationError) as caught:
        funnel(LEADS, ["new"], **JANUARY)
    assert caught.value.paths == ("stages",)
    with pytest.raises(ValidationError) as caught:
        funnel(LEADS, ["new", "won"], start=JANUARY["end"], end=T0, as_of=AS_OF)
    assert caught.value.paths == ("end",)
    with pytest.raises(ValidationError) as caught:
        funnel(LEADS, ["new", "won"], start=T0, end=JANUARY["end"], as_of=datetime(2026, 6, 1))  # noqa: DTZ001
    assert caught.value.paths == ("as_of",)


def test_time_in_stage_counts_completed_stays_and_sets_open_ones_apart():
    result = stage_times(LEADS, "contacted", **JANUARY)
    # a: 4 days, b: still contacted, c: 4 days then re-entered on day 30 (still open).
    assert (result.stays, result.open_stays) == (2, 2)
    assert result.median == result.mean == timedelta(days=4)
    assert stage_times(LEADS, "lost", **JANUARY).median is None


def test_lead_velocity_is_the_growth_of_qualified_leads_period_on_period():
    periods = PeriodRange("month", date(2026, 1, 1), date(2026, 2, 28))
    rows = lead_velocity(LEADS, periods=periods, stage="qualified", as_of=AS_OF)
    assert [(r.period, r.entered, r.previous) for r in rows] == [("2026-01", 2, 0), ("2026-02", 1, 2)]
    assert rows[0].velocity is None  # nothing in December to grow from
    assert rows[1].velocity == -0.5


def test_lead_conversion_is_converted_over_created_for_the_cohort():
    leads = [
        Lead(email="a@x.com", created_at=T0, converted_at=T0 + timedelta(days=3), source=Channel.WEB_FORM),
        Lead(email="b@x.com", created_at=T0, converted_at=T0 + timedelta(days=200), source=Channel.WEB_FORM),
        Lead(email="c@x.com", created_at=T0 + timedelta(days=1), source=Channel.EVENT),
        Lead(email="d@x.com", created_at=T0 + timedelta(days=40), converted_at=T0 + timedelta(days=41)),
    ]
    (row,) = lead_conversion(leads, **JANUARY)
    assert (row.leads, row.converted) == (3, 1)  # b converted after as_of, d is February's
    assert row.conversion_rate == 1 / 3
    assert row.median_time_to_convert == timedelta(days=3)
    by_source = {r.key: r.conversion_rate for r in lead_conversion(leads, **JANUARY, by="source")}
    assert by_source == {"web_form": 0.5, "event": 0.0}
    (empty,) = lead_conversion([], **JANUARY)
    assert empty.conversion_rate is None


def test_cost_per_lead_divides_spend_by_leads_created():
    leads = [
        Lead(email="a@x.com", created_at=T0, source=Channel.SOCIAL),
        Lead(email="b@x.com", created_at=T0 + timedelta(days=2), source=Channel.SOCIAL),
        Lead(email="c@x.com", created_at=T0 + timedelta(days=3), source=Channel.EVENT),
    ]
    spend = [
        SpendRow(date(2026, 1, 5), Money("90", "EUR"), channel="social"),
        SpendRow(date(2026, 1, 9), Money("30", "EUR"), channel="event"),
    ]
    periods = PeriodRange("month", date(2026, 1, 1), date(2026, 1, 31))
    (overall,) = cost_per_lead(leads, spend, periods=periods, currency="EUR")
    assert overall.cost_per_lead == Decimal(40)
    rows = {
        r.key: r.cost_per_lead
        for r in cost_per_lead(leads, spend, periods=periods, currency="EUR", by="channel")
    }
    assert rows == {"social": Decimal(45), "event": Decimal(30)}


def test_marketing_roi_compares_attributed_revenue_with_spend():
    orders = [
        OrderRow("a", T0, Decimal(300), None, "spring"),
        OrderRow("b", T0 + timedelta(days=3), Decimal(100), None, "autumn"),
        OrderRow("c", T0, Decimal(999), None, None),  # not attributed to marketing
    ]
    spend = [
        SpendRow(date(2026, 1, 2), Money("100", "USD"), campaign_id="spring"),
        SpendRow(date(2026, 1, 2), Money("200", "USD"), campaign_id="autumn"),
    ]
    (overall,) = marketing_roi(orders, spend, start=date(2026, 1, 1), end=date(2026, 1, 31), currency="USD")
    assert (overall.revenue, overall.spend, overall.roi) == (
        Decimal(400),
        Decimal(300),
        Decimal(100) / Decimal(300),
    )
    rows = {
        r.key: r.roi
        for r in marketing_roi(
            orders, spend, start=date(2026, 1, 1), end=date(2026, 1, 31), currency="USD", by="campaign"
        )
    }
    assert rows == {"spring": Decimal(2), "autumn": Decimal("-0.5")}
    (nothing,) = marketing_roi([], [], start=date(2026, 1, 1), end=date(2026, 1, 31), currency="USD")
    assert nothing.roi is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), max_size=4), max_size=12))
def test_funnel_counts_never_grow_down_the_funnel(paths):
    stages = ["new", "contacted", "qualified", "won"]
    leads = []
    for index, gaps in enumerate(paths):
        day, steps = 0, []
        for gap, stage in zip(gaps, stages[1:], strict=False):
            day += gap
            steps.append((stage, day))
        leads.append(lead(f"l{index}", 0, steps))
    result = funnel(leads, stages, start=T0, end=T0 + timedelta(days=1), as_of=AS_OF)
    counts = [s.reached for s in result]
    assert counts[0] == len(paths)
    assert counts == sorted(counts, reverse=True)
    for step in result:
        if step.conversion_rate is not None:
            assert 0 <= step.conversion_rate <= 1
