"""Acquisition cohorts and the cohort retention matrix."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Literal

import attrs

from crmkit.errors import ValidationError
from crmkit.segmentation._rows import bad_row, check_as_of, collector_paused, in_zone, sorted_groups

if TYPE_CHECKING:
    from collections.abc import Iterable

    from crmkit.entities import Order
    from crmkit.segmentation._rows import OrderRow

__all__ = ["CohortMatrix", "cohort_retention", "period_label"]

Period = Literal["month", "week", "quarter"]
_PERIODS = ("month", "week", "quarter")


def _index(local: datetime | date, period: str) -> int:
    """A running period number: months and quarters since year 0, weeks (Monday first) since 0001-01-01."""
    if period == "month":
        return local.year * 12 + local.month - 1
    if period == "quarter":
        return local.year * 4 + (local.month - 1) // 3
    return (local.toordinal() - 1) // 7


def period_label(index: int, period: Period) -> str:
    """The label of a period number: ``"2026-03"``, ``"2026-Q1"``, or the week's Monday ``"2026-03-02"``."""
    if period == "month":
        return f"{index // 12:04d}-{index % 12 + 1:02d}"
    if period == "quarter":
        return f"{index // 4:04d}-Q{index % 4 + 1}"
    return date.fromordinal(index * 7 + 1).isoformat()


@attrs.frozen
class CohortMatrix:
    """Acquisition cohorts and who of each ordered again, period by period.

    Attributes:
        period: ``"month"``, ``"week"`` or ``"quarter"``.
        cohorts: The cohort labels, oldest first (only periods in which someone placed a first order).
        sizes: Customers per cohort (first order in that period).
        active: ``active[i][k]``: customers of cohort ``i`` with at least one order in period
            ``cohort + k``; a row runs up to the last period observed.
    """

    period: Period
    cohorts: tuple[str, ...]
    sizes: tuple[int, ...]
    active: tuple[tuple[int, ...], ...]

    @property
    def retention(self) -> tuple[tuple[float, ...], ...]:
        """``retention[i][k] = active[i][k] / sizes[i]``; ``retention[i][0]`` is 1.0."""
        return tuple(
            tuple(count / size for count in row) for row, size in zip(self.active, self.sizes, strict=True)
        )

    def cell(self, cohort: str, k: int) -> float | None:
        """The share of ``cohort`` active ``k`` periods after acquisition; ``None`` when not observed yet."""
        try:
            i = self.cohorts.index(cohort)
        except ValueError:
            return None
        row = self.active[i]
        return row[k] / self.sizes[i] if 0 <= k < len(row) else None


def cohort_retention(
    orders: Iterable[OrderRow] | Iterable[Order],
    *,
    period: Period = "month",
    as_of: datetime | None = None,
    tz: tzinfo = UTC,
) -> CohortMatrix:
    """Build the cohort retention matrix.

    Cohort = the calendar period (in ``tz``) of a customer's first order. Cell ``(cohort, k)`` = the share
    of the cohort with at least one order in period ``cohort + k``; ``k = 0`` is 1.0. Rows run to the
    period of ``as_of`` (orders after it are left out), or to the last order's period.

    Args:
        orders: Rows or order entities.
        period: ``"month"`` (the definition), ``"week"`` (Monday first) or ``"quarter"``.
        as_of: Ignore later orders and run the rows to this period.
        tz: The time zone whose calendar decides the periods.

    Raises:
        ValidationError: For an unknown period, a naive ``as_of`` or a bad row.
    """
    if period not in _PERIODS:
        raise ValidationError.single("period", f"must be one of {', '.join(_PERIODS)}, got {period!r}")
    end: int | None = None
    if as_of is not None:
        end = _index(check_as_of(as_of).astimezone(tz), period)
    with collector_paused():
        return _cohorts(orders, period, end, tz)


def _cohorts(
    orders: Iterable[OrderRow] | Iterable[Order], period: Period, end: int | None, tz: tzinfo
) -> CohortMatrix:
    source, ids, groups = sorted_groups(orders)
    when, zone_of, year_month = itemgetter(1), attrgetter("tzinfo"), attrgetter("year", "month")
    ordinal = datetime.toordinal
    only_tz = {tz}
    seen: dict[str, set[int]] = {}
    try:
        for customer, rows in zip(ids, groups, strict=True):
            # map and set run in C: Python code runs per customer and per distinct month, not per order.
            times = list(map(when, rows))
            if set(map(zone_of, times)) != only_tz:
                times = [in_zone(t, tz) for t in times]
            if period == "month":
                periods = {year * 12 + month - 1 for year, month in set(map(year_month, times))}
            elif period == "quarter":
                periods = {year * 4 + (month - 1) // 3 for year, month in set(map(year_month, times))}
            else:
                periods = {(day - 1) // 7 for day in set(map(ordinal, times))}
            if end is not None and max(periods) > end:
                periods = {p for p in periods if p <= end}
            if periods:
                seen[customer] = periods
    except (TypeError, AttributeError, ValueError):
        raise bad_row(source, None) from None
    return _matrix(seen, period, end)


def _matrix(seen: dict[str, set[int]], period: Period, end: int | None) -> CohortMatrix:
    if not seen:
        return CohortMatrix(period, (), (), ())
    last = end if end is not None else max(max(periods) for periods in seen.values())
    counts: dict[int, list[int]] = {}
    for periods in seen.values():
        first = min(periods)
        row = counts.get(first)
        if row is None:
            row = counts[first] = [0] * (last - first + 1)
        for p in periods:
            row[p - first] += 1
    firsts = sorted(counts)
    return CohortMatrix(
        period,
        tuple(period_label(first, period) for first in firsts),
        tuple(counts[first][0] for first in firsts),
        tuple(tuple(counts[first]) for first in firsts),
    )
