import pickle
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit.errors import CurrencyMismatch, ValidationError
from crmkit.money import CURRENCIES, Money, check_currency, minor_units, sum_money
from crmkit.testing import money


def amounts():
    return st.decimals(min_value=-(10**12), max_value=10**12, places=4)


def test_amounts_are_converted_to_decimal_from_int_and_str():
    assert Money(5, "EUR").amount == Decimal(5)
    assert Money(" 12.50 ", "EUR").amount == Decimal("12.50")
    assert Money(Decimal("0.1"), "EUR").amount == Decimal("0.1")


def test_lower_case_currency_is_upper_cased():
    assert Money(1, "eur").currency == "EUR"


@pytest.mark.parametrize(
    "amount", [1.5, True, Decimal("NaN"), Decimal("Infinity"), "-inf", "twelve", None, [1]]
)
def test_inexact_or_non_numeric_amounts_are_refused_at_amount(amount):
    with pytest.raises(ValidationError) as caught:
        Money(amount, "EUR")
    assert caught.value.paths == ("amount",)


@pytest.mark.parametrize("currency", ["EURO", "XXX", "", "usd1", 840])
def test_unknown_currency_is_refused_at_currency(currency):
    with pytest.raises(ValidationError) as caught:
        Money(1, currency)
    assert caught.value.paths == ("currency",)


def test_bad_amount_and_bad_currency_are_reported_together():
    with pytest.raises(ValidationError) as caught:
        Money(1.0, "ZZZ")
    assert caught.value.paths == ("amount", "currency")


def test_minor_units_follow_iso_4217():
    assert minor_units("EUR") == 2
    assert minor_units("jpy") == 0
    assert minor_units("BHD") == 3
    assert minor_units("CLF") == 4


def test_minor_units_of_an_unknown_code_raises():
    with pytest.raises(ValidationError):
        minor_units("ABC")


def test_currency_table_is_read_only_and_holds_only_three_letter_codes():
    with pytest.raises(TypeError):
        CURRENCIES["ABC"] = 2  # type: ignore[index]
    assert all(len(code) == 3 and code.isupper() for code in CURRENCIES)
    assert set(CURRENCIES.values()) <= {0, 2, 3, 4}


def test_check_currency_names_the_given_field():
    with pytest.raises(ValidationError) as caught:
        check_currency("nope", field="budget.currency")
    assert caught.value.paths == ("budget.currency",)


def test_adding_and_subtracting_the_same_currency():
    assert Money("19.99", "EUR") + Money(1, "EUR") == Money("20.99", "EUR")
    assert Money("0.30", "EUR") - Money("0.10", "EUR") == Money("0.20", "EUR")


def test_adding_two_currencies_raises():
    with pytest.raises(CurrencyMismatch) as caught:
        Money(1, "EUR") + Money(1, "USD")
    assert caught.value.paths == ("currency",)


def test_subtracting_two_currencies_raises():
    with pytest.raises(CurrencyMismatch):
        Money(1, "EUR") - Money(1, "USD")


def test_currency_mismatch_is_a_validation_error():
    assert issubclass(CurrencyMismatch, ValidationError)


def test_negation_and_absolute_value():
    assert -Money("2.5", "GBP") == Money("-2.5", "GBP")
    assert abs(Money("-2.5", "GBP")) == Money("2.5", "GBP")


def test_multiplying_by_int_or_decimal_on_either_side():
    assert Money("2.50", "EUR") * 3 == Money("7.50", "EUR")
    assert 3 * Money("2.50", "EUR") == Money("7.50", "EUR")
    assert Money("10", "EUR") * Decimal("0.15") == Money("1.50", "EUR")


@pytest.mark.parametrize("factor", [1.5, True, "2", Money(1, "EUR")])
def test_multiplying_by_a_float_bool_string_or_money_is_a_type_error(factor):
    with pytest.raises(TypeError):
        Money(1, "EUR") * factor


def test_adding_a_number_is_a_type_error():
    with pytest.raises(TypeError):
        Money(1, "EUR") + 1  # type: ignore[operator]


def test_comparisons_within_one_currency():
    small, large = Money(1, "EUR"), Money(2, "EUR")
    assert small < large
    assert small <= large
    assert large > small
    assert large >= small
    assert small <= Money("1.00", "EUR")


def test_ordering_two_currencies_raises():
    with pytest.raises(CurrencyMismatch):
        _ = Money(1, "EUR") < Money(2, "USD")


def test_equal_amounts_in_different_currencies_are_not_equal():
    assert Money(1, "EUR") != Money(1, "USD")


def test_equal_amounts_with_different_exponents_are_equal_and_hash_alike():
    assert Money("1.0", "EUR") == Money("1.00", "EUR")
    assert hash(Money("1.0", "EUR")) == hash(Money("1.00", "EUR"))


def test_zero_and_is_zero():
    assert Money.zero("JPY") == Money(0, "JPY")
    assert Money.zero("JPY").is_zero
    assert not Money("0.01", "EUR").is_zero


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.125", "EUR", "0.12"),
        ("0.135", "EUR", "0.14"),
        ("2.5", "JPY", "2"),
        ("3.5", "JPY", "4"),
        ("1.23456", "BHD", "1.235"),
        ("-0.125", "EUR", "-0.12"),
    ],
)
def test_rounded_uses_half_even_to_the_currency_minor_units(amount, currency, expected):
    rounded = Money(amount, currency).rounded()
    assert rounded.amount == Decimal(expected)
    assert rounded.amount.as_tuple().exponent == -minor_units(currency)


def test_sum_money_adds_up_and_an_empty_sum_is_zero():
    assert sum_money([Money(1, "EUR"), Money("2.5", "EUR")], "EUR") == Money("3.5", "EUR")
    assert sum_money([], "usd") == Money(0, "USD")


def test_sum_money_refuses_a_foreign_amount():
    with pytest.raises(CurrencyMismatch):
        sum_money([Money(1, "EUR"), Money(1, "USD")], "EUR")


def test_money_is_immutable_and_pickles():
    price = Money("9.99", "EUR")
    with pytest.raises(AttributeError):
        price.amount = Decimal(1)  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(price)) == price  # noqa: S301 - our own bytes


def test_str_shows_amount_and_currency():
    assert str(Money("9.99", "EUR")) == "9.99 EUR"


@given(amounts(), amounts(), amounts())
def test_addition_is_associative_and_commutative(a, b, c):
    x, y, z = Money(a, "EUR"), Money(b, "EUR"), Money(c, "EUR")
    assert (x + y) + z == x + (y + z)
    assert x + y == y + x


@given(amounts(), amounts())
def test_subtraction_undoes_addition(a, b):
    x, y = Money(a, "USD"), Money(b, "USD")
    assert (x + y) - y == x
    assert x - x == Money.zero("USD")
    assert x + -x == Money.zero("USD")


@given(amounts(), st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_multiplication_distributes_over_integer_addition(a, m, n):
    x = Money(a, "GBP")
    assert x * (m + n) == x * m + x * n


@given(money())
def test_rounding_is_idempotent_and_close(value):
    once = value.rounded()
    assert once.rounded() == once
    assert abs(once - value).amount <= Decimal(1).scaleb(-minor_units(value.currency)) / 2


@given(st.lists(amounts(), max_size=10))
def test_sum_money_equals_the_decimal_sum(values):
    assert sum_money((Money(v, "CHF") for v in values), "CHF").amount == sum(values, Decimal(0))


@given(amounts(), amounts())
def test_ordering_agrees_with_the_amounts(a, b):
    assert (Money(a, "EUR") < Money(b, "EUR")) == (a < b)
    assert (Money(a, "EUR") == Money(b, "EUR")) == (a == b)
