"""RFM computed where the orders are stored: the database groups, sums and scores; Python reads scores."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol

from crmkit.entities import OrderStatus
from crmkit.errors import ValidationError
from crmkit.money import check_currency, minor_units
from crmkit.segmentation._rfm import RfmScore, new_score
from crmkit.segmentation._rows import COUNTED_STATUSES, check_as_of

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["RfmRow", "RfmSource", "rfm_scores_in_store"]

#: One customer's RFM as a store computes it: ``(customer_id, recency_days, frequency, monetary_minor,
#: tenure_days, r, f, m)``, the monetary value in minor units of the currency (cents).
RfmRow = tuple[str, int, int, int, int, int, int, int]

_CUSTOMERS = ("contact", "account")


class RfmSource(Protocol):
    """Where RFM can be computed without reading the orders out: a store transaction.

    ``with store.transaction() as tx:`` gives one for every crmkit store. SQLite and PostgreSQL run
    one query (grouping, sums and ``NTILE(5)`` in the database); the in-memory store computes in
    Python. A transaction restricted by an access policy counts only the orders its principal may see.
    """

    def rfm_rows(
        self,
        as_of: datetime,
        *,
        currency: str,
        customer: Literal["contact", "account"],
        statuses: tuple[str, ...],
    ) -> Iterable[RfmRow]:
        """The RFM rows of the orders in ``currency`` with one of ``statuses`` up to ``as_of``.

        One row per customer with such an order, sorted by customer id, computed exactly as
        :func:`crmkit.segmentation.rfm_scores` defines it (whole days, ``NTILE(5)`` ties by id).
        """
        ...


def _customer(value: object) -> Literal["contact", "account"]:
    if value == "contact":
        return "contact"
    if value == "account":
        return "account"
    raise ValidationError.single("customer", f"must be 'contact' or 'account', got {value!r}")


def _statuses(value: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Collection):
        raise ValidationError.single("statuses", f"must be a collection of order statuses, got {value!r}")
    if not value:
        raise ValidationError.single("statuses", "must name at least one order status")
    names = set()
    for index, status in enumerate(sorted(value, key=str)):
        try:
            names.add(OrderStatus(status).value)
        except ValueError:
            allowed = ", ".join(member.value for member in OrderStatus)
            where, message = f"statuses[{index}]", f"must be an order status ({allowed}), got {status!r}"
            raise ValidationError.single(where, message) from None
    return tuple(sorted(names))


def rfm_scores_in_store(
    source: RfmSource,
    as_of: datetime,
    *,
    currency: str,
    customer: Literal["contact", "account"] = "contact",
    statuses: Collection[OrderStatus] = COUNTED_STATUSES,
) -> list[RfmScore]:
    """Score every customer from the stored orders, computed by the store (no order leaves the database).

    The same definitions as :func:`~crmkit.segmentation.rfm_scores` (``DESIGN.md``), on the orders
    in ``currency`` whose status is in ``statuses`` and that name a customer, placed at or before
    ``as_of``:

    - recency = whole days from the customer's last order to ``as_of``
    - frequency = number of orders
    - monetary = sum of the order totals
    - tenure = whole days from the first order to ``as_of``
    - R, F, M = ``NTILE(5)`` over the customers ordered by recency descending (by frequency, by
      monetary ascending), ties by ascending customer id

    so for the same orders it returns exactly what ``rfm_scores(order_rows(orders), as_of)`` does.
    Orders in other currencies are left out: RFM is computed per currency.

    Args:
        source: A store transaction (``with store.transaction() as tx``), or anything with the
            :class:`RfmSource` method.
        as_of: The date the summary is computed for (timezone-aware).
        currency: The ISO 4217 code of the orders that count.
        customer: Whose id is the customer: ``"contact"`` (the order's ``contact_id``) or
            ``"account"`` (its ``account_id``).
        statuses: The order statuses that count; placed, paid and fulfilled by default.

    Returns:
        One :class:`~crmkit.segmentation.RfmScore` per customer, sorted by customer id; the monetary
        value is a ``Decimal`` with the currency's minor units.

    Raises:
        ValidationError: Naming the argument that is wrong (``as_of``, ``currency``, ``customer``,
            ``statuses[i]``, ``source``).
    """
    as_of = check_as_of(as_of)
    code = check_currency(currency)
    who = _customer(customer)
    names = _statuses(statuses)
    compute = getattr(source, "rfm_rows", None)
    if not callable(compute):
        message = f"must be a store transaction (or have an rfm_rows method), got {type(source).__name__}"
        raise ValidationError.single("source", message)
    exponent = -minor_units(code)
    return [
        new_score((customer_id, recency, frequency, Decimal(monetary).scaleb(exponent), tenure, r, f, m))
        for customer_id, recency, frequency, monetary, tenure, r, f, m in compute(
            as_of, currency=code, customer=who, statuses=names
        )
    ]
