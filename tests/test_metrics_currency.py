"""Dated exchange rates: the latest quote on or before the day, inverse pairs, and no silent mixing."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import LineItem, Order, OrderStatus
from crmkit.errors import CurrencyMismatch, ValidationError
from crmkit.metrics import ExchangeRates, converted_order_rows
from crmkit.money import Money

RATES = ExchangeRates.of(
    [
        (date(2026, 1, 1), "EUR", "USD", "1.10"),
        (date(2026, 2, 1), "EUR", "USD", Decimal("1.20")),
        (date(2026, 1, 1), "GBP", "EUR", 2),
    ]
)


def test_the_rate_of_a_day_is_the_latest_quote_on_or_before_it():
    assert RATES.rate("EUR", "USD", date(2026, 1, 31)) == Decimal("1.10")
    assert RATES.rate("EUR", "USD", date(2026, 2, 1)) == Decimal("1.20")
    assert RATES.rate("EUR", "USD", datetime(2026, 3, 5, 8, tzinfo=UTC)) == Decimal("1.20")
    assert RATES.rate("USD", "USD", date(1990, 1, 1)) == 1


def test_a_pair_quoted_one_way_converts_the_other_way_by_the_inverse():
    assert RATES.rate("USD", "EUR", date(2026, 2, 1)) == 1 / Decimal("1.20")
    assert RATES.convert(Money("10", "GBP"), "EUR", date(2026, 1, 2)) == Money("20", "EUR")


def test_no_quote_for_the_day_or_the_pair_is_a_currency_mismatch():
    with pytest.raises(CurrencyMismatch):
        RATES.rate("EUR", "USD", date(2025, 12, 31))
    with pytest.raises(CurrencyMismatch):
        RATES.rate("GBP", "USD", date(2026, 1, 2))  # no chaining through EUR: quote the pair


def test_bad_quotes_are_all_reported_with_their_index():
    with pytest.raises(ValidationError) as caught:
        ExchangeRates.of(
            [
                (date(2026, 1, 1), "EUR", "XXX", "1"),
                (date(2026, 1, 1), "EUR", "USD", "-1"),
                (date(2026, 1, 1), "EUR", "USD", "abc"),
                ("2026-01-01", "EUR", "USD", "1"),
            ]
        )
    assert caught.value.paths == ("quotes[0].to", "quotes[1].rate", "quotes[2].rate", "quotes[3].day")


def order(currency, amount, day, contact="c1", status=OrderStatus.PLACED):
    line = LineItem(quantity=Decimal(1), unit_price=Money(amount, currency))
    return Order(
        number="n",
        contact_id=contact,
        currency=currency,
        lines=[line],
        ordered_at=datetime(2026, 1, day, tzinfo=UTC),
        status=status,
    )


def test_orders_in_several_currencies_become_rows_in_one_at_their_days_rate():
    orders = [
        order("USD", "10", 5),
        order("EUR", "10", 6),
        order("EUR", "99", 7, status=OrderStatus.CANCELLED),
    ]
    rows = list(converted_order_rows(orders, currency="USD", rates=RATES))
    assert [row.amount for row in rows] == [Decimal(10), Decimal("11.00")]
    assert rows[1].customer_id == "c1"


def test_mixing_currencies_without_rates_raises_naming_the_order():
    orders = [order("USD", "10", 5), order("EUR", "10", 6)]
    with pytest.raises(CurrencyMismatch) as caught:
        list(converted_order_rows(orders, currency="USD"))
    assert caught.value.paths == ("orders[1].currency",)


@settings(max_examples=60, deadline=None)
@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=4), st.integers(0, 10**6))
def test_converting_there_and_back_returns_the_amount(rate, cents):
    rates = ExchangeRates.of([(date(2026, 1, 1), "EUR", "JPY", rate)])
    money = Money(Decimal(cents) / 100, "EUR")
    back = rates.convert(rates.convert(money, "JPY", date(2026, 6, 1)), "EUR", date(2026, 6, 1))
    assert abs(back.amount - money.amount) <= Decimal("1e-20") * max(1, money.amount)
