"""Light order rows: what the analytical functions read, one tuple per order.

A million :class:`~crmkit.entities.Order` entities are heavy (every line priced, every field checked);
analysis needs three values per order. :class:`OrderRow` is a plain named tuple, so a caller reading orders
from CSV or SQL builds rows directly and the hot loops unpack tuples without checks; entities go through
:func:`order_rows` once.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, tzinfo
from decimal import Decimal
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from crmkit.entities import Order, OrderStatus
from crmkit.errors import CurrencyMismatch, Problem, ValidationError

__all__ = ["COUNTED_STATUSES", "LineRow", "OrderRow", "line_rows", "order_rows"]

#: The order statuses that count as a purchase: placed, paid or fulfilled (not draft, cancelled, refunded).
COUNTED_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.PLACED, OrderStatus.PAID, OrderStatus.FULFILLED}
)


_CUSTOMER = itemgetter(0)


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


def by_customer(orders: Iterable[OrderRow] | Iterable[Order]) -> dict[str, list[Any]]:
    """Rows grouped by customer id (the groups share the row objects, nothing is copied).

    The grouping runs entirely in C: the customer ids are collected with ``map`` into a set, then every
    row is appended to its group by ``map(list.append, groups, rows)``, so no Python bytecode runs per
    order.

    Raises:
        ValidationError: Naming the first row that is not a row.
    """
    source = as_rows(orders)
    rows = source if isinstance(source, list) else list(source)
    try:
        groups: dict[str, list[Any]] = {customer: [] for customer in set(map(_CUSTOMER, rows))}
        deque(map(list.append, map(groups.__getitem__, map(_CUSTOMER, rows)), rows), maxlen=0)
    except (TypeError, IndexError, KeyError):
        raise bad_row(rows, None) from None
    empty = groups.get("") or groups.get(None)  # type: ignore[call-overload]
    if empty:
        raise bad_row(rows, empty[0])
    return groups


def bad_group_row(orders: object, groups: dict[str, list[Any]]) -> ValidationError:
    """The error for a row that broke a computation over grouped rows."""
    if isinstance(orders, Sequence) and not isinstance(orders, str):
        return bad_row(orders, None)
    for group in groups.values():
        for row in group:
            error = row_problem("orders[?]", row)
            if error is not None:
                return error
    return ValidationError.single("orders", "a row could not be read")


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
