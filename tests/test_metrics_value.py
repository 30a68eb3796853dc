"""ARPU, average order value, purchase frequency, revenue retention and historical CLV, by hand."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import ValidationError
from crmkit.metrics import PeriodRange, customer_value, historical_clv, revenue_retention
from crmkit.segmentation import OrderRow

Q1 = PeriodRange("month", date(2026, 1, 1), date(2026, 3, 31))


def row(customer, m, d, amount, y=2026):
    return OrderRow(customer, datetime(y, m, d, 9, tzinfo=UTC), Decimal(amount))


ORDERS = [
    row("A", 12, 20, "40", y=2025),
    row("A", 1, 10, "100"),
    row("A", 1, 20, "50"),
    row("B", 1, 5, "30"),
    row("A", 2, 3, "200"),
    row("C", 2, 14, "10"),
]


def test_arpu_order_value_and_frequency_follow_their_formulas():
    rows = customer_value(ORDERS, periods=Q1, activity_days=30)
    january, february, march = rows
    assert (january.revenue, january.orders, january.buyers) == (Decimal(180), 3, 2)
    # Active in January: A (December order within 30 days of Jan 1, and orders) and B.
    assert january.active_customers == 2
    assert january.arpu == Decimal(90)  # revenue / active customers
    assert january.average_order_value == Decimal(60)  # revenue / orders
    assert january.purchase_frequency == Decimal("1.5")  # orders / buyers
    # February: A and C bought; B is active from the window (ordered Jan 5, within 30 days of Feb 1).
    assert (february.buyers, february.active_customers) == (2, 3)
    assert february.arpu == Decimal(70)
    # March: nobody bought; A and C are still active from February orders.
    assert (march.revenue, march.orders, march.active_customers) == (Decimal(0), 0, 2)
    assert march.average_order_value is None
    assert march.purchase_frequency is None
    assert march.arpu == Decimal(0)


def test_revenue_retention_compares_each_customer_with_the_previous_period():
    rows = revenue_retention(ORDERS, periods=Q1)
    january, february, march = rows
    # January's base is December: A spent 40, then 150 in January (expansion).
    assert (january.starting_revenue, january.retained_revenue, january.revenue) == (
        Decimal(40),
        Decimal(40),
        Decimal(150),
    )
    assert january.gross_revenue_retention == 1
    assert january.net_revenue_retention == Decimal("3.75")
    # February's base: A 150 and B 30 in January; in February A 200, B nothing; C is new (not counted).
    assert (february.starting_revenue, february.retained_revenue, february.revenue) == (
        Decimal(180),
        Decimal(150),
        Decimal(200),
    )
    assert february.gross_revenue_retention == Decimal(150) / Decimal(180)
    assert february.net_revenue_retention == Decimal(200) / Decimal(180)
    assert march.net_revenue_retention == 0


def test_no_revenue_in_the_base_period_gives_none():
    rows = revenue_retention([row("A", 3, 1, "10")], periods=Q1)
    assert rows[0].gross_revenue_retention is None
    assert rows[0].net_revenue_retention is None


def test_historical_clv_is_value_times_frequency_margin_and_lifetime():
    value = historical_clv(
        average_order_value=Decimal(60),
        purchase_frequency=Decimal("1.5"),
        churn_rate=0.25,
        gross_margin=Decimal("0.4"),
    )
    assert value == Decimal(60) * Decimal("1.5") * Decimal("0.4") * 4
    assert (
        historical_clv(average_order_value=Decimal(60), purchase_frequency=Decimal(1), churn_rate=0) is None
    )
    assert historical_clv(average_order_value=None, purchase_frequency=Decimal(1), churn_rate=0.5) is None
    with pytest.raises(ValidationError) as caught:
        historical_clv(
            average_order_value=Decimal(1),
            purchase_frequency=Decimal(1),
            churn_rate=-1,
            gross_margin=Decimal(2),
        )
    assert set(caught.value.paths) == {"churn_rate", "gross_margin"}


amounts = st.integers(1, 500).map(Decimal)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("ABCD"), st.integers(1, 3), st.integers(1, 28), amounts), max_size=30)
)
def test_revenue_adds_up_and_gross_retention_never_exceeds_one(pairs):
    orders = [row(c, m, d, a) for c, m, d, a in pairs]
    values = customer_value(orders, periods=Q1)
    assert sum(v.revenue for v in values) == sum((a for *_, a in pairs), Decimal(0))
    assert sum(v.orders for v in values) == len(pairs)
    for v in values:
        assert v.buyers <= v.active_customers
    for r in revenue_retention(orders, periods=Q1):
        assert r.retained_revenue <= r.starting_revenue
        assert r.retained_revenue <= r.revenue
        if r.gross_revenue_retention is not None:
            assert 0 <= r.gross_revenue_retention <= 1
