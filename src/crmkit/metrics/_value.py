"""Customer value per period: revenue, ARPU, order value, purchase frequency, revenue retention, CLV."""

from __future__ import annotations

from bisect import bisect_right
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.errors import Problem, ValidationError
from crmkit.metrics._inputs import as_rows, bad_row
from crmkit.metrics._periods import PeriodRange, Result, Table

if TYPE_CHECKING:
    from collections.abc import Iterable

    from crmkit.entities import Order
    from crmkit.segmentation import OrderRow

__all__ = ["RevenueRetentionRow", "ValueRow", "customer_value", "historical_clv", "revenue_retention"]

_ZERO = Decimal(0)


@attrs.frozen
class ValueRow(Result):
    """Revenue and what it says about customers, for one period.

    Attributes:
        period: The period's label.
        revenue: Sum of the order amounts in the period.
        orders: Orders in the period.
        buyers: Customers with an order in the period.
        active_customers: Customers active at some time in the period: an order in the period or in the
            ``activity_days`` before its start.
        arpu: Average revenue per user = revenue / active customers; ``None`` without any.
        average_order_value: revenue / orders; ``None`` without orders.
        purchase_frequency: orders / buyers; ``None`` without buyers.
    """

    period: str
    revenue: Decimal
    orders: int
    buyers: int
    active_customers: int
    arpu: Decimal | None
    average_order_value: Decimal | None
    purchase_frequency: Decimal | None


def _quotient(numerator: Decimal | int, denominator: int) -> Decimal | None:
    return Decimal(numerator) / denominator if denominator else None


def customer_value(
    orders: Iterable[OrderRow] | Iterable[Order],
    *,
    periods: PeriodRange,
    activity_days: int = 90,
) -> Table[ValueRow]:
    """Revenue, ARPU, average order value and purchase frequency per period.

    - **ARPU** = revenue in the period / active customers (an order in the period or in the
      ``activity_days`` days before its start)
    - **Average order value** = revenue in the period / orders in the period
    - **Purchase frequency** = orders in the period / customers with an order in the period

    Args:
        orders: Order rows (amounts in one currency) or entities.
        periods: The reporting periods.
        activity_days: The activity window, in days.

    Raises:
        ValidationError: For a bad activity window or a row that is not an order.
    """
    if isinstance(activity_days, bool) or not isinstance(activity_days, int) or activity_days < 1:
        raise ValidationError.single(
            "activity_days", f"must be a whole number of days >= 1, got {activity_days!r}"
        )
    tz = periods.tz
    ordinals = [day.toordinal() for day in periods.firsts]
    count = len(ordinals) - 1
    revenue = [_ZERO] * count
    order_counts = [0] * count
    buyers: list[set[str]] = [set() for _ in range(count)]
    active: list[set[str]] = [set() for _ in range(count)]
    row: Any = None
    try:
        for row in as_rows(orders):
            at = row[1]
            if at.tzinfo is not tz:
                if at.tzinfo is None:
                    raise bad_row(row)
                at = at.astimezone(tz)
            day = at.toordinal()
            # Active in period i when the order is in [start_i - window, end_i).
            first = bisect_right(ordinals, day) - 1
            last = bisect_right(ordinals, day + activity_days) - 1
            for i in range(max(first, 0), min(last, count - 1) + 1):
                active[i].add(row[0])
            if 0 <= first < count:
                revenue[first] += row[2]
                order_counts[first] += 1
                buyers[first].add(row[0])
    except (TypeError, IndexError, AttributeError, InvalidOperation):
        raise bad_row(row) from None
    rows = []
    for i, label in enumerate(periods.labels):
        total, n, paying, users = revenue[i], order_counts[i], len(buyers[i]), len(active[i])
        rows.append(
            ValueRow(
                label,
                total,
                n,
                paying,
                users,
                _quotient(total, users),
                _quotient(total, n),
                _quotient(n, paying),
            )
        )
    return Table(tuple(rows))


@attrs.frozen
class RevenueRetentionRow(Result):
    """How much of the previous period's customer revenue came back, for one period.

    Attributes:
        period: The period's label.
        starting_revenue: Revenue in the previous period of the customers who bought then (R0).
        retained_revenue: Their revenue in this period, each customer capped at their R0 (gross).
        revenue: Their revenue in this period, uncapped (net: expansion counts, new customers do not).
        gross_revenue_retention: retained / starting; ``None`` when starting is 0.
        net_revenue_retention: revenue / starting; ``None`` when starting is 0.
    """

    period: str
    starting_revenue: Decimal
    retained_revenue: Decimal
    revenue: Decimal
    gross_revenue_retention: Decimal | None
    net_revenue_retention: Decimal | None


def revenue_retention(
    orders: Iterable[OrderRow] | Iterable[Order], *, periods: PeriodRange
) -> Table[RevenueRetentionRow]:
    """Gross and net revenue retention per period.

    The base of a period is the customers with revenue in the previous period (R0 per customer) and R1
    is their revenue in the period:

    - **Net revenue retention** = sum of R1 / sum of R0 (expansion counts; new customers do not)
    - **Gross revenue retention** = sum of min(R0, R1) / sum of R0 (at most 1)

    The first period's base is the period before it.

    Args:
        orders: Order rows (amounts in one currency) or entities.
        periods: The reporting periods.

    Raises:
        ValidationError: For a row that is not an order.
    """
    tz = periods.tz
    previous = PeriodRange(periods.period, _day_before(periods.firsts[0]), periods.end, periods.tz)
    ordinals = [day.toordinal() for day in previous.firsts]
    count = len(ordinals) - 1
    by_customer: dict[str, dict[int, Decimal]] = {}
    row: Any = None
    try:
        for row in as_rows(orders):
            at = row[1]
            if at.tzinfo is not tz:
                if at.tzinfo is None:
                    raise bad_row(row)
                at = at.astimezone(tz)
            i = bisect_right(ordinals, at.toordinal()) - 1
            if 0 <= i < count:
                spend = by_customer.setdefault(row[0], {})
                spend[i] = spend.get(i, _ZERO) + row[2]
    except (TypeError, IndexError, AttributeError, InvalidOperation):
        raise bad_row(row) from None
    start = [_ZERO] * count
    kept = [_ZERO] * count
    net = [_ZERO] * count
    for spend in by_customer.values():
        for i, before in spend.items():
            if i + 1 < count:
                after = spend.get(i + 1, _ZERO)
                start[i + 1] += before
                kept[i + 1] += min(before, after)
                net[i + 1] += after
    rows = []
    for j, label in enumerate(periods.labels, start=1):
        base = start[j]
        rows.append(
            RevenueRetentionRow(
                label,
                base,
                kept[j],
                net[j],
                kept[j] / base if base else None,
                net[j] / base if base else None,
            )
        )
    return Table(tuple(rows))


def _day_before(first: Any) -> Any:
    return first.fromordinal(first.toordinal() - 1)


def historical_clv(
    *,
    average_order_value: Decimal | None,
    purchase_frequency: Decimal | None,
    churn_rate: float | Decimal | None,
    gross_margin: Decimal = Decimal(1),
) -> Decimal | None:
    """Historical customer lifetime value per customer.

    CLV = average order value x purchase frequency x gross margin x expected lifetime, with expected
    lifetime = 1 / churn rate (in periods; purchase frequency per period).

    Args:
        average_order_value: Revenue per order.
        purchase_frequency: Orders per customer per period.
        churn_rate: Share of customers lost per period.
        gross_margin: Share of revenue that is profit (1 counts revenue).

    Returns:
        The value, or ``None`` when an input is missing or the churn rate is 0 (no lifetime can be
        estimated).

    Raises:
        ValidationError: For a negative churn rate or a margin outside 0..1.
    """
    problems = []
    if churn_rate is not None and churn_rate < 0:
        problems.append(Problem("churn_rate", f"must not be negative, got {churn_rate}"))
    if not 0 <= gross_margin <= 1:
        problems.append(Problem("gross_margin", f"must be from 0 to 1, got {gross_margin}"))
    if problems:
        raise ValidationError(problems)
    if average_order_value is None or purchase_frequency is None or not churn_rate:
        return None
    lifetime = 1 / Decimal(str(churn_rate)) if isinstance(churn_rate, float) else 1 / churn_rate
    return average_order_value * purchase_frequency * gross_margin * lifetime
