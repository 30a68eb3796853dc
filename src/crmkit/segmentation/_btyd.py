"""The summary probabilistic "buy till you die" models read: repeat periods, recency, age, repeat spend."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import partial
from itertools import chain, compress, islice, repeat
from operator import attrgetter, eq, getitem, itemgetter, not_, sub, truediv
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from crmkit.errors import ValidationError
from crmkit.segmentation._rows import (
    bad_row,
    check_as_of,
    collector_paused,
    in_zone,
    per_group,
    sorted_groups,
    time_ordered,
)

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


_WHEN, _VALUE, _ZONE, _FIRST_ROW = itemgetter(1), itemgetter(2), attrgetter("tzinfo"), itemgetter(0)
_new_summary = partial(tuple.__new__, BtydSummary)


def _period_days(groups: list[list[Any]], tz: tzinfo, *, week: bool) -> list[int]:
    """The day ordinal of each row's period start, the groups' rows in order (``map``: in C)."""
    times: list[datetime] = list(map(_WHEN, chain.from_iterable(groups)))
    if set(map(_ZONE, times)) != {tz}:
        # Another zone (or a naive time, which in_zone refuses): convert, one call per order.
        times = [in_zone(at, tz) for at in times]
    days: list[int] = list(map(datetime.toordinal, times))
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
    rows, ids, groups = sorted_groups(orders)
    scale = _UNIT_DAYS[unit]
    try:
        flat = _period_days(groups, tz, week=unit == "week")
        shape = _in_time_order(flat, groups, end)
        if shape is None:
            ids, groups, shape = _in_any_order(flat, ids, groups, end)
        firsts, lasts, periods, openings = shape
        totals = list(map(sum, map(map, repeat(_VALUE), groups)))
        frequency = list(map(sub, periods, repeat(1)))
        monetary = _mean_repeat_spend(totals, openings, frequency)
    except (TypeError, IndexError, AttributeError, InvalidOperation):
        raise bad_row(rows, None) from None
    recency = map(truediv, map(truediv, map(sub, lasts, firsts), repeat(scale)), repeat(multiplier))
    age = map(truediv, map(truediv, map(sub, repeat(end), firsts), repeat(scale)), repeat(multiplier))
    return list(map(_new_summary, zip(ids, frequency, recency, age, monetary, strict=True)))


#: Per customer: the first and last period, the number of periods and the first period's spend.
_Shape = tuple[list[int], list[int], list[int], list[Any]]


def _in_time_order(flat: list[int], groups: list[list[Any]], end: int) -> _Shape | None:
    """The shape of every customer read from the flat periods, when each group is in time order.

    Orders usually come in time order, and the stable sort by customer keeps it within each group:
    then a customer's first period is its first row's, its last its last row's, and its periods are
    its rows less the rows in the same period as the row before. Everything is a ``map`` over the
    flat list; Python code runs only per repeated period. ``None`` when some group is not in time
    order, or some period is after ``end`` (the general path handles those).
    """
    bounds = time_ordered(flat, groups)
    if bounds is None:
        return None
    starts, ends = bounds
    firsts = list(map(flat.__getitem__, starts))
    lasts = list(map(flat.__getitem__, map(sub, ends, repeat(1))))
    if lasts and max(lasts) > end:
        return None
    group_starts = set(starts)
    periods = list(map(len, groups))
    openings = list(map(_VALUE, map(_FIRST_ROW, groups)))
    crowded_firsts = set()
    for position in compress(range(1, len(flat)), map(eq, flat, islice(flat, 1, None))):
        if position in group_starts:
            continue  # the next customer's first row, on the same day as this one's last
        group = bisect_right(starts, position) - 1
        periods[group] -= 1
        if flat[position] == firsts[group]:
            crowded_firsts.add(group)
    for group in crowded_firsts:  # several orders in the first period: their sum
        first, begin = firsts[group], starts[group]
        rows = groups[group]
        openings[group] = sum([row[2] for offset, row in enumerate(rows) if flat[begin + offset] == first])
    return firsts, lasts, periods, openings


def _in_any_order(
    flat: list[int], ids: list[str], groups: list[list[Any]], end: int
) -> tuple[list[str], list[list[Any]], _Shape]:
    """The shape of every customer from per-customer lists of periods (``map`` of builtins over them)."""
    days = per_group(groups, flat)
    lasts = list(map(max, days))
    if lasts and max(lasts) > end:
        ids, groups, days, lasts = _until(end, ids, groups, days)
    firsts = list(map(min, days))
    periods = list(map(len, map(set, days)))
    # The first period's spend: the row on the first day, summed in Python only when it has several.
    openings = list(map(_VALUE, map(getitem, groups, map(list.index, days, firsts))))
    for index in compress(range(len(ids)), map((1).__lt__, map(list.count, days, firsts))):
        first = firsts[index]
        openings[index] = sum(
            [row[2] for day, row in zip(days[index], groups[index], strict=True) if day == first]
        )
    return ids, groups, (firsts, lasts, periods, openings)


def _mean_repeat_spend(totals: list[Any], openings: list[Any], frequency: list[int]) -> list[Decimal]:
    """``(total - opening) / frequency`` per customer as a ``Decimal``; ``Decimal(0)`` without repeats."""
    spent = list(map(sub, totals, openings))
    if set(map(type, spent)) != {Decimal}:  # int amounts: the mean is still a Decimal
        spent = list(map(Decimal, spent))
    # Divided by at least 1 in C; the customers without repeats (spent 0) then get an exact zero.
    monetary: list[Decimal] = list(map(truediv, spent, map(max, frequency, repeat(1))))
    zero = Decimal(0)
    for index in compress(range(len(frequency)), map(not_, frequency)):
        monetary[index] = zero
    return monetary


def _until(
    end: int, ids: list[str], groups: list[list[Any]], days: list[list[int]]
) -> tuple[list[str], list[list[Any]], list[list[int]], list[int]]:
    """The customers and rows without the periods after ``end`` (customers left empty dropped)."""
    kept_ids, kept_groups, kept_days = [], [], []
    for customer, rows, starts in zip(ids, groups, days, strict=True):
        if max(starts) > end:
            pairs = [(day, row) for day, row in zip(starts, rows, strict=True) if day <= end]
            if not pairs:
                continue
            starts, rows = [day for day, _ in pairs], [row for _, row in pairs]  # noqa: PLW2901 - kept part
        kept_ids.append(customer)
        kept_groups.append(rows)
        kept_days.append(starts)
    return kept_ids, kept_groups, kept_days, list(map(max, kept_days))
