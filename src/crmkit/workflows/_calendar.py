"""Business-hours calendars: working hours per weekday, a time zone and holidays (private).

Business time is computed by intervals, never by stepping. For each calendar
year a table is built once: for every local day, its working intervals as UTC
instants (in integer microseconds since the epoch), and the business time
elapsed from the start of the year to the start of each day. Adding a duration
then skips whole years by their totals and finds the day with a binary search,
so its cost does not grow with the length of the duration.

Wall-clock hours are turned into instants day by day through :mod:`zoneinfo`,
so on a daylight-saving day a 09:00-17:00 period still lasts 8 hours, and a
period crossing the change lasts the real time between its ends (a 00:00-24:00
period lasts 23 hours on the spring-forward day and 25 on the fall-back day).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

from crmkit._json import read_object
from crmkit.conditions import parse_duration
from crmkit.errors import RuleError, ValidationError

__all__ = ["WEEKDAYS", "BusinessCalendar"]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The weekday keys of a calendar's hours, Monday first (index = :meth:`datetime.date.weekday`)."""

_CLOCK = re.compile(r"(?P<hour>[01]\d|2[0-4]):(?P<minute>[0-5]\d)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MAX_DURATION = timedelta(days=36_600)
_MAX_IDLE_YEARS = 5
_DAY_MINUTES = 24 * 60
_RULE_START = datetime(1900, 1, 1)  # noqa: DTZ001 - holiday rules work on naive local dates
_ALLOWED_FREQUENCIES = {YEARLY, MONTHLY, WEEKLY, DAILY}
_MAX_HOLIDAY_RULE = 500

Period = tuple[str, str]


def _minutes(text: Any, path: str) -> int:
    if isinstance(text, time):
        if text.second or text.microsecond:
            msg = f"working hours are whole minutes, got {text.isoformat()}"
            raise RuleError(msg, path)
        return text.hour * 60 + text.minute
    match = _CLOCK.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match["hour"] == "24" and match["minute"] != "00"):
        msg = f"expected a time of day 'HH:MM' (00:00 to 24:00), got {text!r}"
        raise RuleError(msg, path)
    return int(match["hour"]) * 60 + int(match["minute"])


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day_key(key: Any) -> int:
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(WEEKDAYS):
        return key
    if isinstance(key, str) and key.lower()[:3] in WEEKDAYS:
        return WEEKDAYS.index(key.lower()[:3])
    msg = f"unknown weekday {key!r}; use one of: {', '.join(WEEKDAYS)} (or 0-6)"
    raise RuleError(msg, "hours")


def _period(period: Any, path: str) -> tuple[int, int]:
    """Read one ``[start, end]`` period as minutes of the day; it must not be empty."""
    if isinstance(period, str | bytes) or not isinstance(period, Iterable) or len(list(period)) != 2:  # noqa: PLR2004
        msg = f"a period is [start, end], got {period!r}"
        raise RuleError(msg, path)
    start_text, end_text = period
    start, end = _minutes(start_text, f"{path}[0]"), _minutes(end_text, f"{path}[1]")
    if end <= start:
        msg = f"empty period: end {_clock_text(end)} must be after start {_clock_text(start)}"
        raise RuleError(msg, path)
    return start, end


def _hours(value: Any) -> tuple[tuple[Period, ...], ...]:
    """Read ``{"mon": [("09:00", "17:00")], ...}`` into seven sorted tuples of periods, checking them."""
    if not isinstance(value, Mapping):
        if isinstance(value, tuple) and len(value) == len(WEEKDAYS):
            value = dict(enumerate(value))
        else:
            msg = f"expected a mapping of weekday to periods, got {type(value).__name__}"
            raise RuleError(msg, "hours")
    days: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
    for key, periods in value.items():
        day = _day_key(key)
        where = f"hours.{WEEKDAYS[day]}"
        if isinstance(periods, str | bytes) or not isinstance(periods, Iterable):
            msg = f"expected a list of [start, end] periods, got {type(periods).__name__}"
            raise RuleError(msg, where)
        for index, period in enumerate(periods):
            path = f"{where}[{index}]"
            start, end = _period(period, path)
            for other_index, (other_start, other_end) in enumerate(days[day]):
                if start < other_end and other_start < end:
                    other = f"{_clock_text(other_start)}-{_clock_text(other_end)}"
                    msg = f"overlaps {where}[{other_index}] ({other})"
                    raise RuleError(msg, path)
            days[day].append((start, end))
    if not any(days):
        msg = "a calendar needs at least one working period"
        raise RuleError(msg, "hours")
    return tuple(
        tuple((_clock_text(start), _clock_text(end)) for start, end in sorted(periods)) for periods in days
    )


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        msg = f"expected an IANA time zone name, got {type(value).__name__}"
        raise RuleError(msg, "timezone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown IANA time zone {value!r}"
        raise RuleError(msg, "timezone") from None
    return value


def _holidays(value: Any) -> frozenset[date]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"expected a list of dates, got {type(value).__name__}"
        raise RuleError(msg, "holidays")
    result = set()
    for index, item in enumerate(value):
        if isinstance(item, date) and not isinstance(item, datetime):
            result.add(item)
            continue
        try:
            result.add(date.fromisoformat(item))
        except (TypeError, ValueError):
            msg = f"expected a date 'YYYY-MM-DD', got {item!r}"
            raise RuleError(msg, f"holidays[{index}]") from None
    return frozenset(result)


def _parse_rule(text: Any, path: str) -> rrule:
    if not isinstance(text, str) or not text or len(text) > _MAX_HOLIDAY_RULE:
        msg = f"expected an RFC 5545 RRULE such as 'FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25', got {text!r}"
        raise RuleError(msg, path)
    if "\n" in text or "DTSTART" in text.upper():
        msg = "give a single RRULE without DTSTART"
        raise RuleError(msg, path)
    try:
        rule = rrulestr(text, dtstart=_RULE_START)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        msg = f"not a valid RFC 5545 RRULE: {exc}"
        raise RuleError(msg, path) from None
    if not isinstance(rule, rrule):
        msg = "expected a single RRULE"
        raise RuleError(msg, path)
    if getattr(rule, "_freq", None) not in _ALLOWED_FREQUENCIES:  # dateutil has no public accessor
        msg = "a holiday rule repeats yearly, monthly, weekly or daily"
        raise RuleError(msg, path)
    return rule


def _holiday_rules(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        msg = f"expected a list of RRULE texts, got {type(value).__name__}"
        raise RuleError(msg, "holiday_rules")
    rules = tuple(value)
    for index, text in enumerate(rules):
        _parse_rule(text, f"holiday_rules[{index}]")
    return rules


def _name(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and 0 < len(value.strip()) <= 100):  # noqa: PLR2004
        return value
    msg = f"a calendar name is 1 to 100 characters, got {value!r}"
    raise RuleError(msg, "name")


def _aware(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        msg = f"expected a datetime, got {type(value).__name__}"
        raise ValidationError.single(name, msg)
    if value.utcoffset() is None:
        msg = f"{value.isoformat()} has no timezone"
        raise ValidationError.single(name, msg)
    return value


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _instant(micros: int, tz: Any) -> datetime:
    return (_EPOCH + timedelta(microseconds=micros)).astimezone(tz)


def _wall(day: date, minutes: int, zone: ZoneInfo) -> int:
    """The instant (epoch microseconds) of a wall-clock time on a local date.

    An ambiguous time (the hour repeated in autumn) is its first occurrence; a time that
    does not exist (skipped in spring) is the moment the clocks jump, so a period inside
    the gap has no time and one crossing it lasts the real time between its ends.
    """
    first = datetime.combine(day, time(minutes // 60, minutes % 60), zone)
    early, late = _micros(first.replace(fold=1)), _micros(first)
    if early >= late:
        return late  # an ordinary time (equal) or the first of two occurrences (fold=0 is earlier)
    # In a gap, fold=1 reads the time with the offset after the jump and lands before it, fold=0
    # with the offset before and lands after: the jump is in between, where the offset changes.
    after = first.replace(fold=1).utcoffset()
    while late - early > 1:
        middle = (early + late) // 2
        if _instant(middle, zone).utcoffset() == after:
            late = middle
        else:
            early = middle
    return late


@attrs.frozen(eq=False)
class _Year:
    """One calendar year's table: intervals per local day and the business time before each day."""

    first: date
    intervals: tuple[tuple[int, ...], ...]  # per day: start, end, start, end ... (epoch microseconds)
    before: tuple[int, ...]  # business microseconds from the year's start to each day's start; one extra
    working: tuple[int, ...]  # working days before each day; one extra

    @property
    def total(self) -> int:
        return self.before[-1]


@attrs.frozen(eq=False)
class BusinessCalendar:
    """When a team works: periods per weekday in one IANA time zone, minus holidays.

    A calendar is immutable data, checked when it is built, and converts to JSON and back
    (:meth:`to_json`, :meth:`from_json`). Business time is computed by intervals: adding a
    365-day target costs about what adding a 1-day target costs.

    Attributes:
        timezone: The IANA time zone the hours are in, such as ``"Europe/London"``.
        hours: Weekday (``"mon"`` ... ``"sun"`` or 0-6) -> periods ``("09:00", "17:00")``;
            several periods a day are allowed (a lunch break), ``"24:00"`` ends a day.
        holidays: Dates (or ISO ``"YYYY-MM-DD"`` texts) without working time.
        holiday_rules: RFC 5545 RRULE texts for recurring holidays, read with
            :mod:`dateutil.rrule`, such as ``"FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25"`` or
            ``"FREQ=YEARLY;BYEASTER=-2"`` (Good Friday).
        name: A name for the calendar.

    Raises:
        RuleError: For an unknown time zone, an empty or overlapping period, a bad date or
            rule, or no working period at all; ``path`` names the node (``"hours.tue[1]"``).
    """

    timezone: str = attrs.field(converter=_timezone)
    hours: tuple[tuple[Period, ...], ...] = attrs.field(converter=_hours)
    holidays: frozenset[date] = attrs.field(default=frozenset(), converter=_holidays)
    holiday_rules: tuple[str, ...] = attrs.field(default=(), converter=_holiday_rules)
    name: str | None = attrs.field(default=None, converter=_name)
    _zone: ZoneInfo = attrs.field(init=False, repr=False)
    _minutes: tuple[tuple[tuple[int, int], ...], ...] = attrs.field(init=False, repr=False)
    _rules: tuple[rrule, ...] = attrs.field(init=False, repr=False)
    _years: dict[int, _Year] = attrs.field(init=False, repr=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        minutes = tuple(
            tuple((_minutes(start, ""), _minutes(end, "")) for start, end in periods)
            for periods in self.hours
        )
        object.__setattr__(self, "_minutes", minutes)
        rules = tuple(_parse_rule(text, "") for text in self.holiday_rules)
        object.__setattr__(self, "_rules", rules)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessCalendar):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.timezone, self.hours, self.holidays, self.holiday_rules, self.name))

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def office_hours(
        cls,
        timezone: str,
        start: str = "09:00",
        end: str = "17:00",
        *,
        holidays: Iterable[date | str] = (),
        holiday_rules: Iterable[str] = (),
        name: str | None = None,
    ) -> BusinessCalendar:
        """Return a Monday-to-Friday calendar with one period a day.

        Args:
            timezone: The IANA time zone.
            start: When the working day starts, ``"HH:MM"``.
            end: When it ends.
            holidays: Dates without working time.
            holiday_rules: RRULE texts for recurring holidays.
            name: A name for the calendar.
        """
        hours = {day: [(start, end)] for day in WEEKDAYS[:5]}
        return cls(timezone, hours, holidays=list(holidays), holiday_rules=list(holiday_rules), name=name)

    @classmethod
    def always(cls, timezone: str = "UTC", *, name: str | None = None) -> BusinessCalendar:
        """Return a calendar that works around the clock, every day (24/7 support)."""
        return cls(timezone, {day: [("00:00", "24:00")] for day in WEEKDAYS}, name=name)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form; :meth:`from_json` reads it back to an equal calendar."""
        data: dict[str, Any] = {
            "timezone": self.timezone,
            "hours": {
                WEEKDAYS[day]: [list(period) for period in periods]
                for day, periods in enumerate(self.hours)
                if periods
            },
        }
        if self.holidays:
            data["holidays"] = [day.isoformat() for day in sorted(self.holidays)]
        if self.holiday_rules:
            data["holiday_rules"] = list(self.holiday_rules)
        if self.name is not None:
            data["name"] = self.name
        return data

    @classmethod
    def from_json(cls, data: Any) -> BusinessCalendar:
        """Build and check a calendar from its JSON form.

        Raises:
            RuleError: If the data is malformed; ``path`` points at the problem.
        """
        keys = {"timezone", "hours", "holidays", "holiday_rules", "name"}
        read_object(data, keys, ("timezone", "hours"))
        return cls(
            data["timezone"],
            data["hours"],
            holidays=data.get("holidays", ()),
            holiday_rules=data.get("holiday_rules", ()),
            name=data.get("name"),
        )

    # -- queries -------------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        """Whether ``day`` (a local date) is a holiday, listed or by rule."""
        if day in self.holidays:
            return True
        moment = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - rules work on local dates
        return any(rule.between(moment, moment, inc=True) for rule in self._rules)

    def is_working_time(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside a working period (start included, end excluded).

        Raises:
            ValidationError: If ``moment`` is naive (field ``moment``).
        """
        at = _micros(_aware(moment, "moment"))
        local = moment.astimezone(self._zone).date()
        year = self._year(local.year)
        spans = year.intervals[(local - year.first).days]
        return any(spans[i] <= at < spans[i + 1] for i in range(0, len(spans), 2))

    def working_periods(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Return the working periods of a local date as aware datetimes in the calendar's zone."""
        year = self._year(day.year)
        spans = year.intervals[(day - year.first).days]
        return tuple(
            (_instant(spans[i], self._zone), _instant(spans[i + 1], self._zone))
            for i in range(0, len(spans), 2)
        )

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """Return when ``duration`` of business time has elapsed after ``start``.

        The result is the earliest instant at which :meth:`business_time_between` from
        ``start`` reaches ``duration``; a period's end (17:00) rather than the next
        morning's start. A zero duration returns ``start`` itself. The result is in
        ``start``'s time zone.

        Args:
            start: An aware datetime; it may fall outside working hours.
            duration: Business time to add, from zero to 100 years.

        Raises:
            ValidationError: If ``start`` is naive (field ``start``) or ``duration`` is
                negative or absurdly long (field ``duration``).
            RuleError: If the calendar has no working time for years on end (its holiday
                rules remove every working day).
        """
        _aware(start, "start")
        if not isinstance(duration, timedelta) or duration < timedelta() or duration > _MAX_DURATION:
            msg = f"expected a business duration from 0 to {_MAX_DURATION.days} days, got {duration!r}"
            raise ValidationError.single("duration", msg)
        if not duration:
            return start
        local_year = start.astimezone(self._zone).year
        target = self._position(start, local_year) + duration // _US
        year_number, idle = local_year, 0
        year = self._year(year_number)
        while target > year.total:
            target -= year.total
            idle = idle + 1 if not year.total else 0
            if idle >= _MAX_IDLE_YEARS:
                msg = f"the calendar has no working time in {_MAX_IDLE_YEARS} years on end"
                raise RuleError(msg, "holiday_rules")
            year_number += 1
            year = self._year(year_number)
        # The day whose business time ends at or after the target: before[day] < target <= before[day + 1].
        day = bisect_left(year.before, target) - 1
        left = target - year.before[day]
        spans = year.intervals[day]
        for i in range(0, len(spans), 2):
            length = spans[i + 1] - spans[i]
            if left <= length:
                return _instant(spans[i] + left, start.tzinfo)
            left -= length
        msg = "unreachable: the day table disagrees with its intervals"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Return the business time from ``start`` to ``end``.

        Negative when ``end`` is before ``start`` (the same amount, with a minus sign).

        Raises:
            ValidationError: If either time is naive (naming ``start`` or ``end``).
        """
        _aware(start, "start")
        _aware(end, "end")
        if end < start:
            return -self.business_time_between(end, start)
        first = start.astimezone(self._zone).year
        last = end.astimezone(self._zone).year
        total = self._position(end, last) - self._position(start, first)
        for year_number in range(first, last):
            total += self._year(year_number).total
        return timedelta(microseconds=total)

    def business_days_after(self, start: datetime, days: int) -> datetime:
        """Return the same business moment ``days`` working days later ("in 2 business days").

        ``start`` is first moved to the next working moment if it is outside working hours;
        the result is as far into its working day (in business time) as that moment was
        into its own, or the end of the day when the day is shorter.

        Raises:
            ValidationError: If ``start`` is naive, or ``days`` is negative or over 36,500.
        """
        _aware(start, "start")
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= _MAX_DURATION.days:
            msg = f"expected a whole number of days from 0 to {_MAX_DURATION.days}, got {days!r}"
            raise ValidationError.single("days", msg)
        moment = start
        if days or not self.is_working_time(start):
            moment = self.add_business_time(start, _US) - _US  # the next working moment
        local = moment.astimezone(self._zone).date()
        year_number = local.year
        year = self._year(year_number)
        index = (local - year.first).days
        offset = self._position(moment, year_number) - year.before[index]
        wanted = year.working[index] + days  # the working-day count to reach, counted in this year
        idle = 0
        while wanted >= year.working[-1]:
            wanted -= year.working[-1]
            idle = idle + 1 if not year.working[-1] else 0
            if idle >= _MAX_IDLE_YEARS:
                msg = f"the calendar has no working time in {_MAX_IDLE_YEARS} years"
                raise RuleError(msg, "holiday_rules")
            year_number += 1
            year = self._year(year_number)
        day = bisect_right(year.working, wanted) - 1
        length = year.before[day + 1] - year.before[day]
        target = year.before[day] + min(offset, length)
        spans = year.intervals[day]
        left = target - year.before[day]
        for i in range(0, len(spans), 2):
            span = spans[i + 1] - spans[i]
            if left < span or i == len(spans) - 2:
                return _instant(spans[i] + left, start.tzinfo)
            left -= span
        msg = "unreachable: a working day has no interval"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    # -- the tables ------------------------------------------------------------------------------

    def _position(self, moment: datetime, year_number: int) -> int:
        """Business microseconds from the start of local year ``year_number`` to ``moment`` (in that year)."""
        at = _micros(moment)
        local = moment.astimezone(self._zone).date()
        year = self._year(year_number)
        index = (local - year.first).days
        position = year.before[index]
        spans = year.intervals[index]
        for i in range(0, len(spans), 2):
            if at <= spans[i]:
                break
            position += min(at, spans[i + 1]) - spans[i]
        return position

    def _year(self, number: int) -> _Year:
        year = self._years.get(number)
        if year is None:
            year = self._years[number] = self._build_year(number)
        return year

    def _build_year(self, number: int) -> _Year:
        if not 1 < number < 9999:  # noqa: PLR2004 - datetime's range, with a day of margin
            msg = f"business time is computed for years 2 to 9998, not {number}"
            raise ValidationError.single("start", msg)
        first = date(number, 1, 1)
        days = (date(number + 1, 1, 1) - first).days
        holidays = {day for day in self.holidays if day.year == number}
        for rule in self._rules:
            holidays.update(
                moment.date()
                for moment in rule.between(datetime(number, 1, 1), datetime(number, 12, 31), inc=True)  # noqa: DTZ001
            )
        zone = self._zone
        intervals: list[tuple[int, ...]] = []
        before = [0]
        working = [0]
        one_day = timedelta(days=1)
        for offset in range(days):
            day = first + timedelta(days=offset)
            spans: list[int] = []
            if day not in holidays:
                last_end = None
                for start, end in self._minutes[day.weekday()]:
                    begin = _wall(day, start, zone)
                    finish = _wall(day + one_day, 0, zone) if end == _DAY_MINUTES else _wall(day, end, zone)
                    if last_end is not None:
                        begin = max(begin, last_end)
                    if finish > begin:  # a period inside a daylight-saving gap can vanish
                        spans.extend((begin, finish))
                        last_end = finish
            intervals.append(tuple(spans))
            before.append(before[-1] + sum(spans[i + 1] - spans[i] for i in range(0, len(spans), 2)))
            working.append(working[-1] + (1 if spans else 0))
        return _Year(first, tuple(intervals), tuple(before), tuple(working))


def fixed_duration(value: Any, path: str, *, what: str) -> timedelta:
    """A ``timedelta``, or ISO 8601 duration text (``"PT4H"``, ``"P2D"``) of a fixed length.

    Years and months are refused, because their length is not fixed; a day is 24 hours.

    Args:
        value: The duration as given.
        path: Where it was given, for the error.
        what: What the duration is, for the error (``"a business duration"``).

    Raises:
        RuleError: For unreadable text, or years or months.
    """
    if isinstance(value, timedelta):
        return value
    try:
        parsed = parse_duration(value)
    except RuleError as exc:
        raise RuleError(exc.message, path) from None
    if parsed.years or parsed.months:
        msg = f"{what} is in weeks, days, hours or minutes, not years or months: {value!r}"
        raise RuleError(msg, path)
    return timedelta(
        days=parsed.days,
        hours=parsed.hours,
        minutes=parsed.minutes,
        seconds=parsed.seconds,
        microseconds=parsed.microseconds,
    )
