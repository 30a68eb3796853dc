"""The summary probabilistic "buy till you die" models read: repeat periods, recency, age, repeat spend."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from crmkit.errors import ValidationError
from crmkit.segmentation._rows import bad_group_row, by_customer, check_as_of, collector_paused, in_zone

if TYPE_CHECKING:
    from collections.abc import Iterable

    from crmkit.entities import Order
    from crmkit.segmentation._rows import OrderRow

__all__ = ["BtydSummary", "btyd_summary"]

_UNIT_DAYS = {"day": 1, "week": 7}


class BtydSummary(NamedTuple):
    """One customer's repeat-purchase summary (the input of BG/NBD, Pareto/NBD and Gamma-Gamma).

    Attributes:
        customer_id: The customer.
        frequency: Number of periods with a purchase after the first one (repeat purchase periods).
        recency: Age of the customer at their last purchase: last period - first period, in units.
        T: Age at the end of observation: observation period - first period, in units.
        monetary: Mean spend per repeat period (first period excluded); 0 without repeats.
    """

    customer_id: str
    frequency: int
    recency: float
    T: float
    monetary: Decimal


def _period_of(at: datetime, zone: tzinfo, week: bool) -> int:  # noqa: FBT001 - private helper
    """The day ordinal where the period of ``at`` (in ``zone``) starts."""
    local = at if at.tzinfo is zone else at.astimezone(zone)
    ordinal = local.toordinal()
    # date(1, 1, 1) is a Monday (ordinal 1): weeks start on Monday, as pandas' "W" periods do.
    return ordinal - (ordinal - 1) % 7 if week else ordinal


_WHEN, _ZONE = itemgetter(1), attrgetter("tzinfo")


def _period_starts(rows: list[Any], tz: tzinfo, *, week: bool) -> list[int]:
    """The day ordinal of each row's period start (map and set run in C: no Python code per order)."""
    times = list(map(_WHEN, rows))
    if set(map(_ZONE, times)) == {tz}:
        days = list(map(datetime.toordinal, times))
    else:
        days = [in_zone(t, tz).toordinal() for t in times]
    if week:
        start_of = {day: day - (day - 1) % 7 for day in set(days)}
        days = list(map(start_of.__getitem__, days))
    return days


def btyd_summary(
    orders: Iterable[OrderRow] | Iterable[Order],
    observation_end: datetime,
    *,
    unit: Literal["day", "week"] = "day",
    multiplier: int = 1,
    tz: tzinfo = UTC,
) -> list[BtydSummary]:
    """Summarise transactions the way ``lifetimes.utils.summary_data_from_transaction_data`` does.

    Every order is truncated to its period (its calendar day, or its week starting on Monday, in ``tz``);
    orders in the same period are one purchase whose amount is their sum. Orders whose period starts
    after the period of ``observation_end`` are left out (so the whole last period counts, as in
    lifetimes). With ``first``, ``last`` and ``end`` the period starts:

    - frequency = number of purchase periods - 1
    - recency = (last - first) / unit / multiplier
    - T = (end - first) / unit / multiplier
    - monetary = sum of the amounts of the repeat periods / frequency (0 when frequency is 0)

    Args:
        orders: Rows or order entities.
        observation_end: The end of observation (timezone-aware).
        unit: The period: ``"day"`` or ``"week"`` (lifetimes' ``freq="D"`` / ``"W"``).
        multiplier: Divides recency and T (lifetimes' ``freq_multiplier``).
        tz: The time zone whose calendar days the periods are.

    Returns:
        One summary per customer, sorted by customer id.

    Raises:
        ValidationError: For a naive ``observation_end``, an unknown unit, a multiplier below 1, or a bad
            row.
    """
    observation_end = check_as_of(observation_end, "observation_end")
    if unit not in _UNIT_DAYS:
        raise ValidationError.single("unit", f"must be 'day' or 'week', got {unit!r}")
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 1:
        message = f"must be a whole number of at least 1, got {multiplier!r}"
        raise ValidationError.single("multiplier", message)
    week = unit == "week"
    end = _period_of(observation_end, tz, week)
    with collector_paused():
        return _summaries(orders, end, unit=unit, multiplier=multiplier, tz=tz)


def _summaries(
    orders: Iterable[OrderRow] | Iterable[Order], end: int, *, unit: str, multiplier: int, tz: tzinfo
) -> list[BtydSummary]:
    week = unit == "week"
    groups = by_customer(orders)
    value = itemgetter(2)
    scale = _UNIT_DAYS[unit]
    zero = Decimal(0)
    result = []
    try:
        for customer in sorted(groups):
            rows = groups[customer]
            days = _period_starts(rows, tz, week=week)
            if max(days) > end:
                kept = [(day, row) for day, row in zip(days, rows, strict=True) if day <= end]
                if not kept:
                    continue
                days, rows = [day for day, _ in kept], [row for _, row in kept]
            distinct = set(days)
            first, last = min(distinct), max(distinct)
            frequency = len(distinct) - 1
            if frequency:
                # Repeat spend: everything but the first period's purchases.
                total = sum(map(value, rows))
                if days.count(first) == 1:
                    opening = rows[days.index(first)][2]
                else:
                    opening = sum([row[2] for day, row in zip(days, rows, strict=True) if day == first])
                monetary = Decimal(total - opening) / frequency
            else:
                monetary = zero
            result.append(
                BtydSummary(
                    customer,
                    frequency,
                    (last - first) / scale / multiplier,
                    (end - first) / scale / multiplier,
                    monetary,
                )
            )
    except (TypeError, IndexError, AttributeError, InvalidOperation):
        raise bad_group_row(orders, groups) from None
    return result
