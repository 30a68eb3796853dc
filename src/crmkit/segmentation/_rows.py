"""Light order rows: what the analytical functions read, one tuple per order.

A million :class:`~crmkit.entities.Order` entities are heavy (every line priced, every field checked);
analysis needs three values per order. :class:`OrderRow` is a plain named tuple, so a caller reading orders
from CSV or SQL builds rows directly and the hot loops unpack tuples without checks; entities go through
:func:`order_rows` once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, tzinfo
from decimal import Decimal
from itertools import accumulate, compress, groupby, islice
from operator import gt, itemgetter
from typing import Any, Literal, NamedTuple

from crmkit.entities import Order, OrderStatus
from crmkit.errors import CurrencyMismatch, Problem, ValidationError

__all__ = ["COUNTED_STATUSES", "LineRow", "OrderRow", "line_rows", "order_rows"]

#: The order statuses that count as a purchase: placed, paid or fulfilled (not draft, cancelled, refunded).
COUNTED_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.PLACED, OrderStatus.PAID, OrderStatus.FULFILLED}
)


_CUSTOMER = itemgetter(0)
_FIRST = itemgetter(0)
_MEMBERS = itemgetter(1)


class OrderRow(NamedTuple):
    """One purchase, as the segmentation functions read it.

    Attributes:
        customer_id: Who bought (a contact or account id).
        ordered_at: When, timezone-aware.
        amount: The order total, in the one currency of the analysis.
        order_id: The order's id, when known.
        campaign_id: The campaign the order is credited to, when known.
        products: The ids of the products bought (for affinity and recommendations).
    """

    customer_id: str
    ordered_at: datetime
    amount: Decimal
    order_id: str | None = None
    campaign_id: str | None = None
    products: tuple[str, ...] = ()


def order_rows(
    orders: Iterable[Order],
    *,
    customer: Literal["contact", "account"] = "contact",
    statuses: frozenset[OrderStatus] = COUNTED_STATUSES,
) -> Iterator[OrderRow]:
    """Turn order entities into rows, skipping orders that do not count.

    An order counts when its status is in ``statuses`` and it names a customer (its ``contact_id``, or
    ``account_id`` with ``customer="account"``). All orders must share one currency.

    Args:
        orders: The orders.
        customer: Whose id is the customer: the contact's or the account's.
        statuses: The statuses that count as a purchase.

    Yields:
        One row per counted order, in input order.

    Raises:
        CurrencyMismatch: When two counted orders are in different currencies (path ``orders[i].currency``).
    """
    currency: str | None = None
    attribute = "contact_id" if customer == "contact" else "account_id"
    for index, order in enumerate(orders):
        if order.status not in statuses:
            continue
        customer_id = getattr(order, attribute)
        if customer_id is None:
            continue
        if currency is None:
            currency = order.currency
        elif order.currency != currency:
            message = f"must be {currency} like the orders before it, got {order.currency}"
            raise CurrencyMismatch([Problem(f"orders[{index}].currency", message)])
        yield OrderRow(
            customer_id,
            order.ordered_at,
            order.total.amount,
            order.id,
            order.campaign_id,
            tuple(line.product_id for line in order.lines if line.product_id is not None),
        )


class LineRow(NamedTuple):
    """One order line, as affinity and recommendations read it.

    Attributes:
        customer_id: Who bought.
        ordered_at: When, timezone-aware.
        order_id: The order the line belongs to (lines of one order are one basket).
        product_id: What was bought.
        amount: The line total.
    """

    customer_id: str
    ordered_at: datetime
    order_id: str
    product_id: str
    amount: Decimal


def line_rows(
    orders: Iterable[Order],
    *,
    customer: Literal["contact", "account"] = "contact",
    statuses: frozenset[OrderStatus] = COUNTED_STATUSES,
) -> Iterator[LineRow]:
    """Turn the lines of counted orders (see :func:`order_rows`) that name a product into rows."""
    attribute = "contact_id" if customer == "contact" else "account_id"
    for order in orders:
        customer_id = getattr(order, attribute)
        if order.status not in statuses or customer_id is None:
            continue
        for line in order.lines:
            if line.product_id is not None:
                yield LineRow(customer_id, order.ordered_at, order.id, line.product_id, line.total.amount)


def as_rows(orders: Iterable[OrderRow] | Iterable[Order]) -> Iterable[OrderRow]:
    """Rows as they are; entities converted with :func:`order_rows` defaults (decided by the first item)."""
    if isinstance(orders, Sequence):
        if orders and isinstance(orders[0], Order):
            return order_rows(orders)
        return orders
    iterator: Iterator[Any] = iter(orders)
    first = next(iterator, None)
    if first is None:
        return ()
    if isinstance(first, Order):
        return order_rows(_chain(first, iterator))
    return _chain(first, iterator)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause automatic garbage collection during a bulk computation, then restore it as it was.

    The computations build no reference cycles, but the hundred thousand short-lived lists they make
    would trigger collections that walk every row object (millions for a large input), which can take
    longer than the computation itself. Collection is only deferred, never skipped.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def sorted_groups(
    orders: Iterable[OrderRow] | Iterable[Order],
) -> tuple[list[Any], list[str], list[list[Any]]]:
    """The rows, the customer ids in ascending order, and each customer's rows in input order.

    One stable sort of the rows by customer id and ``itertools.groupby`` build the groups in C: no
    Python bytecode runs per order or per customer, and each group is ready in id order. (A sort by the
    text key beats appending every row to its customer's list: it keeps no hundred thousand growing
    lists.)

    Raises:
        ValidationError: Naming the first row that is not a row.
    """
    source = as_rows(orders)
    rows = source if isinstance(source, list) else list(source)
    try:
        ordered = sorted(rows, key=_CUSTOMER)
        groups: list[list[Any]] = list(map(list, map(_MEMBERS, groupby(ordered, _CUSTOMER))))
    except (TypeError, IndexError, KeyError):
        raise bad_row(rows, None) from None
    ids: list[str] = list(map(_CUSTOMER, map(_FIRST, groups)))
    if ids and not ids[0]:  # an empty id sorts first
        raise bad_row(rows, groups[0][0])
    return rows, ids, groups


def per_group(groups: list[list[Any]], values: list[Any]) -> list[list[Any]]:
    """``values``, one per row of ``groups`` in their order, cut back into lists of the groups' lengths.

    A column taken from all the rows at once (one ``map`` over the chained groups) and then sliced
    costs less than a ``map`` object per customer.
    """
    ends = list(accumulate(map(len, groups)))
    cut: list[list[Any]] = list(map(values.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    return cut


def time_ordered(flat: list[Any], groups: list[list[Any]]) -> tuple[list[int], list[int]] | None:
    """Where each group starts and ends in ``flat`` (its rows' values in order), if no group goes back.

    Orders usually come in time order, and the stable sort by customer keeps it within each group:
    then a group's first and last values are its least and greatest, read without a list per group.
    A step back in ``flat`` is allowed only where the next group begins. ``None`` when some group
    steps back. Compares neighbours in C (``map`` over the flat list).
    """
    if not flat:
        return [], []
    ends = list(accumulate(map(len, groups)))
    starts = [0, *ends[:-1]]
    steps_back = compress(range(1, len(flat)), map(gt, flat, islice(flat, 1, None)))
    return (starts, ends) if set(starts).issuperset(steps_back) else None


def row_problem(where: str, row: object) -> ValidationError | None:
    """The error for the first thing wrong with one row, or ``None`` when it looks sound."""
    if not isinstance(row, tuple) or len(row) < 3:  # noqa: PLR2004 - customer, time, amount
        return ValidationError.single(where, f"expected an OrderRow or an Order, got {type(row).__name__}")
    customer_id, at, amount = row[0], row[1], row[2]
    problem: str | None = None
    if not isinstance(customer_id, str) or not customer_id:
        where, problem = f"{where}.customer_id", f"must be a non-empty text, got {customer_id!r}"
    elif not isinstance(at, datetime):
        where, problem = f"{where}.ordered_at", f"must be a datetime, got {at!r}"
    elif at.utcoffset() is None:
        where, problem = f"{where}.ordered_at", f"must be timezone-aware, got {at!r}"
    elif not isinstance(amount, Decimal | int) or isinstance(amount, bool):
        where, problem = f"{where}.amount", f"must be a Decimal, got {amount!r}"
    elif isinstance(amount, Decimal) and not amount.is_finite():
        where, problem = f"{where}.amount", f"must be finite, got {amount!r}"
    return None if problem is None else ValidationError.single(where, problem)


def bad_row(rows: Iterable[object], failed: object) -> ValidationError:
    """The error naming the row that broke a fast loop (by index when the rows can be read again)."""
    if isinstance(rows, Sequence):
        for index, row in enumerate(rows):
            error = row_problem(f"orders[{index}]", row)
            if error is not None:
                return error
    error = row_problem("orders[?]", failed)
    return error or ValidationError.single("orders", f"a row could not be read: {failed!r}")


def in_zone(at: datetime, zone: tzinfo) -> datetime:
    """``at`` in ``zone``; a naive time is a TypeError (``astimezone`` would take it as local time)."""
    if at.tzinfo is None:
        msg = "naive datetime"
        raise TypeError(msg)
    return at.astimezone(zone)


def check_as_of(value: datetime, name: str = "as_of") -> datetime:
    """An aware datetime, or a ValidationError naming ``name``."""
    if not isinstance(value, datetime):
        raise ValidationError.single(name, f"must be a datetime, got {value!r}")
    if value.utcoffset() is None:
        raise ValidationError.single(name, "must be timezone-aware")
    return value
