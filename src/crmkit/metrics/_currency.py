"""Money across currencies: dated exchange rates supplied by the host, never guessed.

A metric reports in one currency. Amounts in another currency are converted with the rate of the day
they happened (the latest quote on or before that day); without rates, mixing currencies raises
:class:`~crmkit.errors.CurrencyMismatch`.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Literal

import attrs

from crmkit.errors import CurrencyMismatch, Problem, ValidationError
from crmkit.money import Money, check_currency
from crmkit.segmentation import COUNTED_STATUSES, OrderRow

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from crmkit.entities import Order, OrderStatus

__all__ = ["ExchangeRates", "converted_order_rows"]

Quote = tuple[date, str, str, Decimal | str | int]


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


@attrs.frozen
class ExchangeRates:
    """Dated exchange rates: how many units of one currency buy one unit of another, day by day.

    Build it with :meth:`of` from quotes ``(day, from_currency, to_currency, rate)``: one unit of
    ``from_currency`` is worth ``rate`` units of ``to_currency`` from ``day`` on, until a later quote.
    A pair quoted one way converts the other way with the inverse rate.

    Attributes:
        quotes: For each ``(from, to)`` pair, the quotes by day, oldest first.
    """

    quotes: dict[tuple[str, str], tuple[tuple[date, Decimal], ...]]

    @classmethod
    def of(cls, quotes: Iterable[Quote]) -> ExchangeRates:
        """Build the rates from ``(day, from_currency, to_currency, rate)`` quotes.

        Raises:
            ValidationError: For a bad currency code or a rate that is not a positive decimal
                (path ``quotes[i]...``).
        """
        by_pair: dict[tuple[str, str], dict[date, Decimal]] = {}
        problems: list[Problem] = []
        for index, (day, source, target, rate) in enumerate(quotes):
            try:
                pair = (check_currency(source, field="from"), check_currency(target, field="to"))
            except ValidationError as exc:
                problems.extend(problem.under(f"quotes[{index}]") for problem in exc.problems)
                continue
            try:
                value = Decimal(rate) if isinstance(rate, str | int) and not isinstance(rate, bool) else rate
            except InvalidOperation:
                value = Decimal(-1)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                problems.append(Problem(f"quotes[{index}].rate", f"must be a positive decimal, got {rate!r}"))
                continue
            if isinstance(day, datetime) or not isinstance(day, date):
                problems.append(Problem(f"quotes[{index}].day", f"must be a date, got {day!r}"))
                continue
            by_pair.setdefault(pair, {})[day] = value
        if problems:
            raise ValidationError(problems)
        return cls({pair: tuple(sorted(days.items())) for pair, days in by_pair.items()})

    def rate(self, source: str, target: str, on: date | datetime) -> Decimal:
        """The rate from ``source`` to ``target`` on a day: the latest quote on or before it.

        Raises:
            CurrencyMismatch: If no quote (direct or inverse) covers that day.
        """
        if source == target:
            return Decimal(1)
        day = _day(on)
        direct = self._latest((source, target), day)
        if direct is not None:
            return direct
        inverse = self._latest((target, source), day)
        if inverse is not None:
            return 1 / inverse
        message = f"no {source}->{target} rate on or before {day.isoformat()}"
        raise CurrencyMismatch([Problem("rates", message)])

    def _latest(self, pair: tuple[str, str], day: date) -> Decimal | None:
        quotes = self.quotes.get(pair)
        if not quotes:
            return None
        i = bisect_right(quotes, (day, Decimal("Infinity"))) - 1
        return quotes[i][1] if i >= 0 else None

    def convert(self, money: Money, currency: str, on: date | datetime) -> Money:
        """``money`` in ``currency`` at the rate of ``on`` (full precision; round when printing).

        Raises:
            CurrencyMismatch: If no rate covers that day.
        """
        target = check_currency(currency)
        return Money(money.amount * self.rate(money.currency, target, on), target)


class Converter:
    """Brings amounts into one reporting currency; refuses to mix currencies without rates."""

    __slots__ = ("currency", "rates")

    def __init__(self, currency: str, rates: ExchangeRates | None) -> None:
        self.currency = check_currency(currency)
        self.rates = rates

    def amount(self, money: Money, on: date | datetime, where: str) -> Decimal:
        """The amount of ``money`` in the reporting currency.

        Raises:
            CurrencyMismatch: For another currency without rates (path ``where``), or a day without a rate.
        """
        if money.currency == self.currency:
            return money.amount
        if self.rates is None:
            message = f"is in {money.currency}, not {self.currency}; give exchange rates to convert it"
            raise CurrencyMismatch([Problem(where, message)])
        return money.amount * self.rates.rate(money.currency, self.currency, on)


def converted_order_rows(
    orders: Iterable[Order],
    *,
    currency: str,
    rates: ExchangeRates | None = None,
    customer: Literal["contact", "account"] = "contact",
    statuses: frozenset[OrderStatus] = COUNTED_STATUSES,
) -> Iterator[OrderRow]:
    """Order entities as rows in one currency, each converted at the rate of its order day.

    Like :func:`crmkit.segmentation.order_rows`, but orders in other currencies are converted instead of
    refused (with the rates given).

    Args:
        orders: The orders.
        currency: The reporting currency.
        rates: The exchange rates; without them every order must be in ``currency``.
        customer: Whose id is the customer: the contact's or the account's.
        statuses: The statuses that count as a purchase.

    Yields:
        One row per counted order.

    Raises:
        CurrencyMismatch: For an order in another currency without rates (path ``orders[i].currency``), or
            an order day no rate covers.
    """
    converter = Converter(currency, rates)
    attribute = "contact_id" if customer == "contact" else "account_id"
    for index, order in enumerate(orders):
        customer_id = getattr(order, attribute)
        if order.status not in statuses or customer_id is None:
            continue
        amount = converter.amount(order.total, order.ordered_at, f"orders[{index}].currency")
        yield OrderRow(
            customer_id,
            order.ordered_at,
            amount,
            order.id,
            order.campaign_id,
            tuple(line.product_id for line in order.lines if line.product_id is not None),
        )
