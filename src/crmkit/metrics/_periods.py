"""Reporting periods: calendar months, quarters or years in one time zone, and the results' table type."""

from __future__ import annotations

import importlib
from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import attrs

from crmkit.errors import Problem, ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Period", "PeriodRange", "Result", "Table", "check_aware", "median_time", "ratio"]

Period = Literal["month", "quarter", "year"]
_MONTHS_IN = {"month": 1, "quarter": 3, "year": 12}

Row = TypeVar("Row")


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` (no data) when the denominator is zero."""
    return numerator / denominator if denominator else None


def median_time(durations: list[timedelta]) -> timedelta | None:
    """The median of ``durations`` (the mean of the two middle ones for an even count); ``None`` if empty."""
    if not durations:
        return None
    ordered = sorted(durations)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def check_aware(value: object, name: str) -> datetime:
    """An aware datetime, or a ValidationError naming ``name``."""
    if not isinstance(value, datetime):
        raise ValidationError.single(name, f"must be a datetime, got {value!r}")
    if value.utcoffset() is None:
        raise ValidationError.single(name, "must be timezone-aware")
    return value


def _period_start(day: date, months: int) -> date:
    month0 = (day.month - 1) // months * months
    return date(day.year, month0 + 1, 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@attrs.frozen
class PeriodRange:
    """Consecutive calendar periods, from the one holding ``start`` to the one holding ``end``.

    Periods are calendar months, quarters or years in the time zone ``tz``: a period runs from its
    first day at midnight (included) to the next period's first day at midnight (excluded).

    Attributes:
        period: ``"month"``, ``"quarter"`` or ``"year"``.
        start: A day in the first period.
        end: A day in the last period; not before ``start``.
        tz: The time zone whose calendar decides the periods (UTC by default).
    """

    period: Period
    start: date
    end: date
    tz: tzinfo = UTC
    _firsts: tuple[date, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        problems = []
        if self.period not in _MONTHS_IN:
            problems.append(Problem("period", f"must be month, quarter or year, got {self.period!r}"))
        if isinstance(self.start, datetime) or not isinstance(self.start, date):
            problems.append(Problem("start", f"must be a date, got {self.start!r}"))
        if isinstance(self.end, datetime) or not isinstance(self.end, date):
            problems.append(Problem("end", f"must be a date, got {self.end!r}"))
        elif not problems and self.end < self.start:
            problems.append(Problem("end", "must not be before start"))
        zone: object = self.tz  # typed as tzinfo, but a host may pass a name
        if not isinstance(zone, tzinfo):
            problems.append(Problem("tz", f"must be a tzinfo such as datetime.UTC, got {zone!r}"))
        if problems:
            raise ValidationError(problems)
        months = _MONTHS_IN[self.period]
        day = _period_start(self.start, months)
        days = [day]
        while day <= self.end:
            day = _add_months(day, months)
            days.append(day)
        object.__setattr__(self, "_firsts", tuple(days))

    @property
    def firsts(self) -> tuple[date, ...]:
        """The first day of every period, then the first day after the last period (one more than periods)."""
        return self._firsts

    @property
    def labels(self) -> tuple[str, ...]:
        """The periods' labels: ``"2026-03"``, ``"2026-Q1"`` or ``"2026"``."""
        return tuple(self.label(day) for day in self.firsts[:-1])

    def label(self, first: date) -> str:
        """The label of the period starting on ``first``."""
        if self.period == "month":
            return f"{first.year:04d}-{first.month:02d}"
        if self.period == "quarter":
            return f"{first.year:04d}-Q{(first.month - 1) // 3 + 1}"
        return f"{first.year:04d}"

    def boundaries(self) -> tuple[datetime, ...]:
        """The periods' starts as aware datetimes (midnight in ``tz``), then the end of the last one."""
        return tuple(datetime.combine(day, time(), self.tz) for day in self.firsts)

    def index_of(self, day: date) -> int | None:
        """The position of the period holding ``day``, or ``None`` outside the range."""
        firsts = self.firsts
        i = bisect_right(firsts, day) - 1
        return i if 0 <= i < len(firsts) - 1 else None

    def __len__(self) -> int:
        return len(self.firsts) - 1


class Result:
    """A metric's result value: an attrs class that also converts to a one-row pandas ``DataFrame``."""

    __slots__ = ()

    def to_pandas(self) -> Any:
        """This value as a one-row ``pandas.DataFrame``, one column per field (needs pandas installed).

        Raises:
            ImportError: If pandas is not installed.
        """
        return Table((self,)).to_pandas()


@attrs.frozen
class Table(Generic[Row]):
    """Result rows, in order, with an optional conversion to a pandas ``DataFrame``.

    A table is a sequence: iterate over it, index it, take its ``len``.

    Attributes:
        rows: The rows (attrs classes).
    """

    rows: tuple[Row, ...]

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Row:
        return self.rows[index]

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame``, one column per field (needs pandas installed).

        Raises:
            ImportError: If pandas is not installed.
        """
        pd: Any = importlib.import_module("pandas")  # optional: imported only when asked for
        if not self.rows:
            return pd.DataFrame()
        rows: tuple[Any, ...] = self.rows
        columns = [field.name for field in attrs.fields(type(rows[0]))]
        return pd.DataFrame([attrs.astuple(row, recurse=False) for row in rows], columns=columns)
