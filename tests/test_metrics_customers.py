"""Retention, churn and acquisition cost per period, pinned on a small base computed by hand."""

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import LineItem, Order, OrderStatus
from crmkit.errors import CurrencyMismatch, ValidationError
from crmkit.metrics import (
    ExchangeRates,
    PeriodRange,
    SpendRow,
    Subscription,
    acquisition_cost,
    customer_base,
    retention,
)
from crmkit.money import Money
from crmkit.segmentation import OrderRow

Q1 = PeriodRange("month", date(2026, 1, 1), date(2026, 3, 31))


def at(y, m, d, h=12):
    return datetime(y, m, d, h, tzinfo=UTC)


def row(customer, when, amount="10", campaign=None):
    return OrderRow(customer, when, Decimal(amount), None, campaign)


ORDERS = [
    row("A", at(2025, 12, 20)),
    row("A", at(2026, 1, 10)),
    row("A", at(2026, 2, 25)),
    row("B", at(2025, 12, 5)),
    row("C", at(2026, 1, 15), campaign="c1"),
    row("D", at(2026, 2, 10), campaign="c2"),
    row("E", at(2026, 3, 31, 23)),
    row("F", at(2026, 4, 2)),  # after the last period: ignored
]
SPEND = [
    SpendRow(date(2026, 1, 3), Money("100", "USD"), channel="ads", campaign_id="c1"),
    SpendRow(date(2026, 2, 1), Money("50", "USD"), channel="ads", campaign_id="c2"),
    SpendRow(date(2026, 2, 9), Money("30", "USD"), channel="email"),
    SpendRow(date(2025, 12, 31), Money("999", "USD"), channel="ads"),  # before the periods
]


def test_periods_are_calendar_months_quarters_or_years_with_labels():
    assert Q1.labels == ("2026-01", "2026-02", "2026-03")
    assert PeriodRange("quarter", date(2025, 11, 5), date(2026, 2, 1)).labels == ("2025-Q4", "2026-Q1")
    assert PeriodRange("year", date(2025, 6, 1), date(2026, 6, 1)).labels == ("2025", "2026")
    assert Q1.index_of(date(2026, 2, 28)) == 1
    assert Q1.index_of(date(2026, 4, 1)) is None


def test_a_period_range_refuses_bad_bounds():
    with pytest.raises(ValidationError) as caught:
        PeriodRange("week", date(2026, 2, 1), date(2026, 1, 1))  # type: ignore[arg-type]
    assert "period" in caught.value.paths
    with pytest.raises(ValidationError) as caught:
        PeriodRange("month", date(2026, 2, 1), date(2026, 1, 1))
    assert caught.value.paths == ("end",)


def test_retention_and_churn_follow_the_definitions_by_hand():
    # 30-day window: active at Jan 1 = A, B; at Feb 1 = A, C; at Mar 1 = A, D; at Apr 1 = E.
    rows = retention(ORDERS, periods=Q1, activity_days=30)
    assert [(r.customers_at_start, r.new_customers, r.customers_at_end, r.lost_customers) for r in rows] == [
        (2, 1, 2, 1),
        (2, 1, 2, 1),
        (2, 1, 1, 2),
    ]
    # retention = (E - N) / S, churn = lost / S
    assert [r.retention_rate for r in rows] == [0.5, 0.5, 0.0]
    assert [r.churn_rate for r in rows] == [0.5, 0.5, 1.0]


def test_a_period_without_customers_at_its_start_has_no_rates():
    rows = retention([row("A", at(2026, 1, 10))], periods=Q1, activity_days=30)
    assert rows[0].customers_at_start == 0
    assert rows[0].retention_rate is None
    assert rows[0].churn_rate is None
    assert rows[1].churn_rate == 1.0  # active at Feb 1, gone by Mar 1


def test_an_open_subscription_keeps_a_customer_active_without_orders():
    subscriptions = [Subscription("B", at(2025, 12, 1), None)]
    rows = retention(ORDERS, periods=Q1, activity_days=30, subscriptions=subscriptions)
    assert [r.lost_customers for r in rows] == [0, 1, 2]  # B never lost
    assert rows[0].customers_at_end == 3


def test_order_entities_count_like_rows_and_cancelled_orders_do_not_count():
    def order(contact, when, status=OrderStatus.PLACED):
        line = LineItem(quantity=Decimal(1), unit_price=Money("10", "USD"))
        return Order(
            number="n", contact_id=contact, ordered_at=when, currency="USD", lines=[line], status=status
        )

    entities = [
        order("A", at(2025, 12, 20)),
        order("A", at(2026, 1, 10)),
        order("B", at(2026, 1, 20), OrderStatus.CANCELLED),
    ]
    rows = retention(entities, periods=Q1, activity_days=30)
    assert rows[0].customers_at_start == 1
    assert rows[0].new_customers == 0


def test_cac_overall_divides_spend_in_the_period_by_new_customers():
    rows = acquisition_cost(ORDERS, SPEND, periods=Q1, currency="USD")
    assert [(r.period, r.spend, r.new_customers, r.cac) for r in rows] == [
        ("2026-01", Decimal(100), 1, Decimal(100)),
        ("2026-02", Decimal(80), 1, Decimal(80)),
        ("2026-03", Decimal(0), 1, Decimal(0)),
    ]


def test_cac_per_campaign_and_per_channel_credit_first_orders():
    rows = acquisition_cost(ORDERS, SPEND, periods=Q1, currency="USD", by="campaign")
    by_key = {(r.period, r.key): (r.spend, r.new_customers, r.cac) for r in rows}
    assert by_key["2026-01", "c1"] == (Decimal(100), 1, Decimal(100))
    assert by_key["2026-02", "c2"] == (Decimal(50), 1, Decimal(50))
    assert by_key["2026-02", None] == (Decimal(30), 0, None)  # spend without campaign, nobody new
    assert by_key["2026-03", None] == (Decimal(0), 1, Decimal(0))
    channels = {"c1": "ads", "c2": "ads"}
    rows = acquisition_cost(ORDERS, SPEND, periods=Q1, currency="USD", by="channel", channels=channels)
    by_key = {(r.period, r.key): (r.spend, r.new_customers, r.cac) for r in rows}
    assert by_key["2026-02", "ads"] == (Decimal(50), 1, Decimal(50))
    assert by_key["2026-02", "email"] == (Decimal(30), 0, None)


def test_spend_in_another_currency_needs_rates_and_converts_at_the_rate_of_its_day():
    spend = [*SPEND, SpendRow(date(2026, 1, 20), Money("100", "EUR"))]
    with pytest.raises(CurrencyMismatch) as caught:
        acquisition_cost(ORDERS, spend, periods=Q1, currency="USD")
    assert caught.value.paths == ("spend[4].amount",)
    rates = ExchangeRates.of(
        [(date(2026, 1, 1), "EUR", "USD", "1.10"), (date(2026, 1, 25), "EUR", "USD", "1.20")]
    )
    rows = acquisition_cost(ORDERS, spend, periods=Q1, currency="USD", rates=rates)
    assert rows[0].spend == Decimal("210.00")


def test_one_customer_base_answers_retention_and_cac_from_one_pass():
    base = customer_base(ORDERS, periods=Q1, activity_days=30)
    assert base.customers == 5
    assert base.retention() == retention(ORDERS, periods=Q1, activity_days=30)
    assert base.acquisition_cost(SPEND, currency="USD")[0].cac == Decimal(100)


def test_bad_inputs_are_named():
    with pytest.raises(ValidationError) as caught:
        retention(ORDERS, periods=Q1, activity_days=0)
    assert caught.value.paths == ("activity_days",)
    with pytest.raises(ValidationError) as caught:
        retention([("A", datetime(2026, 1, 1), Decimal(1), None, None)], periods=Q1)  # noqa: DTZ001 - the point
    assert caught.value.paths == ("orders.ordered_at",)
    with pytest.raises(ValidationError) as caught:
        acquisition_cost(ORDERS, SPEND, periods=Q1, currency="USD", by="team")  # type: ignore[arg-type]
    assert caught.value.paths == ("by",)


def test_results_convert_to_pandas_when_it_is_installed():
    pd = pytest.importorskip("pandas")
    frame = retention(ORDERS, periods=Q1, activity_days=30).to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["churn_rate"]) == [0.5, 0.5, 1.0]


days = st.integers(0, 120)
orders_strategy = st.lists(st.tuples(st.sampled_from("ABCDEFG"), days), max_size=40)


@settings(max_examples=60, deadline=None)
@given(orders_strategy, st.integers(1, 60))
def test_retention_agrees_with_a_direct_check_of_every_customer(pairs, window):
    base_day = date(2025, 11, 1).toordinal()
    rows = [
        row(c, datetime.combine(date.fromordinal(base_day + d), datetime.min.time(), UTC)) for c, d in pairs
    ]
    result = retention(rows, periods=Q1, activity_days=window)
    boundaries = [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)]

    def active(customer, boundary):
        b = boundary.toordinal()
        return any(c == customer and base_day + d < b <= base_day + d + window for c, d in pairs)

    customers = {c for c, _ in pairs}
    for i, r in enumerate(result):
        start, end = boundaries[i], boundaries[i + 1]
        s = {c for c in customers if active(c, start)}
        e = {c for c in customers if active(c, end)}
        first = {c: min(base_day + d for cc, d in pairs if cc == c) for c in customers}
        n = {c for c in customers if start.toordinal() <= first[c] < end.toordinal()}
        assert (r.customers_at_start, r.customers_at_end, r.new_customers) == (len(s), len(e), len(n))
        assert r.lost_customers == len(s - e)
        if s:
            assert r.churn_rate == len(s - e) / len(s)
            assert 0 <= r.churn_rate <= 1
        else:
            assert r.churn_rate is None


def test_quarterly_and_yearly_periods_use_the_same_definitions():
    year = PeriodRange("year", date(2026, 1, 1), date(2026, 12, 31))
    (row,) = retention(ORDERS, periods=year, activity_days=30)
    # Active on 1 January 2026: A and B; new in 2026: C, D, E and F; on 1 January 2027: nobody.
    assert (row.customers_at_start, row.new_customers, row.customers_at_end, row.lost_customers) == (
        2,
        4,
        0,
        2,
    )
    assert row.churn_rate == 1.0
    quarters = retention(
        ORDERS, periods=PeriodRange("quarter", date(2026, 1, 1), date(2026, 6, 30)), activity_days=30
    )
    assert [r.period for r in quarters] == ["2026-Q1", "2026-Q2"]
    assert quarters[0].customers_at_end == 1  # E, active on 1 April


def test_periods_follow_the_calendar_of_their_time_zone():
    tokyo = PeriodRange("month", date(2026, 1, 1), date(2026, 1, 31), tz=ZoneInfo("Asia/Tokyo"))
    # 31 December 20:00 UTC is already 1 January in Tokyo: a new customer of January there.
    late = [row("Z", datetime(2025, 12, 31, 20, tzinfo=UTC))]
    assert retention(late, periods=tokyo)[0].new_customers == 1
    assert (
        retention(late, periods=PeriodRange("month", date(2026, 1, 1), date(2026, 1, 31)))[0].new_customers
        == 0
    )
    with pytest.raises(ValidationError) as caught:
        PeriodRange("month", date(2026, 1, 1), date(2026, 1, 31), tz="UTC")  # type: ignore[arg-type]
    assert caught.value.paths == ("tz",)


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_orders_streamed_from_a_store_give_the_same_retention_as_a_list(url, tmp_path):
    from crmkit.storage import open_store  # noqa: PLC0415 - the metrics never import storage; this test does

    def entity(customer, when):
        line = LineItem(quantity=Decimal(1), unit_price=Money("10", "USD"))
        return Order(number="n", contact_id=customer, ordered_at=when, currency="USD", lines=[line])

    orders = [entity(r.customer_id, r.ordered_at) for r in ORDERS]
    store = open_store(f"sqlite:///{tmp_path / 'crm.db'}" if url == "sqlite" else url)
    try:
        with store.transaction() as tx:
            tx[Order].bulk_add(orders, strict=True)
            tx.commit()
        with store.transaction() as tx:
            streamed = retention(tx[Order].stream(), periods=Q1, activity_days=30)
    finally:
        store.close()
    assert streamed == retention(ORDERS, periods=Q1, activity_days=30)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["month", "quarter", "year"]),
    st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 1, 1)),
    st.integers(0, 2000),
    st.integers(0, 2000),
)
def test_periods_tile_the_range_without_gaps(period, start, length, probe):
    end = date.fromordinal(start.toordinal() + length)
    periods = PeriodRange(period, start, end)
    firsts = periods.firsts
    assert firsts[0] <= start
    assert end < firsts[-1]
    assert all(a < b for a, b in itertools.pairwise(firsts))
    assert all(day.day == 1 for day in firsts)
    assert len(periods) == len(periods.labels) == len(set(periods.labels))
    day = date.fromordinal(start.toordinal() + probe % (length + 1))
    i = periods.index_of(day)
    assert i is not None
    assert firsts[i] <= day < firsts[i + 1]
