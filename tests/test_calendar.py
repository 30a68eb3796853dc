"""Business-hours calendars: periods, holidays, daylight saving, validation and JSON."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import RuleError, ValidationError
from crmkit.workflows import BusinessCalendar

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def office(**kwargs):
    return BusinessCalendar.office_hours("Europe/London", **kwargs)


def at(*args, tz=LONDON):
    return datetime(*args, tzinfo=tz)


# -- adding and measuring ---------------------------------------------------------------------------


def test_adding_within_one_day_stays_in_that_day():
    assert office().add_business_time(at(2026, 3, 2, 10), 3 * H) == at(2026, 3, 2, 13)


def test_adding_past_the_end_of_the_day_continues_next_morning():
    assert office().add_business_time(at(2026, 3, 2, 16), 2 * H) == at(2026, 3, 3, 10)


def test_a_deadline_that_lands_on_the_end_of_a_day_is_that_evening_not_the_next_morning():
    assert office().add_business_time(at(2026, 3, 2, 16), H) == at(2026, 3, 2, 17)


def test_friday_afternoon_plus_two_hours_is_monday_morning():
    assert office().add_business_time(at(2026, 3, 6, 16), 2 * H) == at(2026, 3, 9, 10)


def test_a_start_outside_working_hours_counts_from_the_next_opening():
    calendar = office()
    assert calendar.add_business_time(at(2026, 3, 7, 12), H) == at(2026, 3, 9, 10)
    assert calendar.add_business_time(at(2026, 3, 2, 7), H) == at(2026, 3, 2, 10)


def test_adding_zero_returns_the_start_itself():
    start = at(2026, 3, 7, 12)
    assert office().add_business_time(start, timedelta()) == start


def test_business_time_between_counts_only_working_periods():
    calendar = office()
    assert calendar.business_time_between(at(2026, 3, 6, 16), at(2026, 3, 9, 10)) == 2 * H
    assert calendar.business_time_between(at(2026, 3, 7, 0), at(2026, 3, 8, 23)) == timedelta()


def test_business_time_between_reversed_ends_is_negative():
    calendar = office()
    assert calendar.business_time_between(at(2026, 3, 9, 10), at(2026, 3, 6, 16)) == -2 * H


def test_several_periods_a_day_leave_the_lunch_break_out():
    calendar = BusinessCalendar("Europe/Paris", {"mon": [("09:00", "12:00"), ("13:00", "17:00")]})
    paris = ZoneInfo("Europe/Paris")
    assert calendar.add_business_time(at(2026, 3, 2, 11, tz=paris), 2 * H) == at(2026, 3, 2, 14, tz=paris)
    assert calendar.business_time_between(at(2026, 3, 2, 9, tz=paris), at(2026, 3, 2, 17, tz=paris)) == 7 * H


def test_the_result_keeps_the_time_zone_of_the_start():
    result = office().add_business_time(datetime(2026, 3, 2, 9, tzinfo=UTC), H)
    assert result.tzinfo is UTC
    assert result == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_a_long_target_crosses_years_and_counts_every_working_day():
    calendar = office()
    start = at(2026, 1, 5, 9)
    deadline = calendar.add_business_time(start, 8 * H * 365)
    assert calendar.business_time_between(start, deadline) == 8 * H * 365
    assert deadline.year == 2027


def test_business_days_after_keeps_the_time_of_day_and_skips_weekends_and_holidays():
    calendar = office(holidays=["2026-04-03"])
    assert calendar.business_days_after(at(2026, 4, 2, 11), 2) == at(2026, 4, 7, 11)
    assert calendar.business_days_after(at(2026, 4, 4, 11), 1) == at(2026, 4, 7, 9)


# -- holidays -------------------------------------------------------------------------------------------


def test_listed_holidays_have_no_working_time():
    calendar = office(holidays=[date(2026, 12, 24), "2026-12-25"])
    assert calendar.add_business_time(at(2026, 12, 23, 16), 2 * H) == at(2026, 12, 28, 10)
    assert calendar.is_holiday(date(2026, 12, 25))


def test_holiday_rules_follow_rfc_5545_including_easter():
    rules = ["FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25", "FREQ=YEARLY;BYEASTER=-2", "FREQ=YEARLY;BYEASTER=1"]
    calendar = office(holiday_rules=rules)
    assert calendar.is_holiday(date(2030, 12, 25))
    assert calendar.is_holiday(date(2026, 4, 3))  # Good Friday 2026
    assert calendar.is_holiday(date(2026, 4, 6))  # Easter Monday 2026
    assert not calendar.is_holiday(date(2026, 4, 7))
    assert calendar.add_business_time(at(2026, 4, 2, 16), 2 * H) == at(2026, 4, 7, 10)


def test_a_calendar_whose_rules_remove_every_day_refuses_to_search_forever():
    calendar = office(holiday_rules=["FREQ=DAILY"])
    with pytest.raises(RuleError) as caught:
        calendar.add_business_time(at(2026, 1, 5, 9), H)
    assert caught.value.path == "holiday_rules"


# -- daylight saving -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [(LONDON, date(2026, 3, 29), date(2026, 10, 25)), (NEW_YORK, date(2026, 3, 8), date(2026, 11, 1))],
)
def test_a_round_the_clock_day_lasts_23_hours_in_spring_and_25_in_autumn(zone, spring, autumn):
    calendar = BusinessCalendar.always(zone.key)
    for day, hours in ((spring, 23), (autumn, 25)):
        start = datetime.combine(day, time(), zone)
        end = datetime.combine(day + timedelta(days=1), time(), zone)
        assert calendar.business_time_between(start, end) == hours * H
        assert calendar.add_business_time(start, hours * H) == end


@pytest.mark.parametrize(("zone", "day"), [(LONDON, date(2026, 3, 29)), (NEW_YORK, date(2026, 11, 1))])
def test_office_hours_on_a_daylight_saving_sunday_and_monday_stay_eight_hours(zone, day):
    calendar = BusinessCalendar(zone.key, {day: [("09:00", "17:00")] for day in range(7)})
    start = datetime.combine(day, time(9), zone)
    assert calendar.add_business_time(start, 8 * H) == datetime.combine(day, time(17), zone)
    assert calendar.add_business_time(start, 9 * H) == datetime.combine(
        day + timedelta(days=1), time(10), zone
    )


def test_a_period_crossing_the_spring_gap_lasts_the_real_time():
    calendar = BusinessCalendar("Europe/London", {"sun": [("00:00", "04:00")]})
    start = at(2026, 3, 29, 0)
    end = at(2026, 3, 29, 4)
    assert calendar.business_time_between(start, end) == 3 * H
    assert calendar.add_business_time(start, 3 * H) == end


def test_a_period_inside_the_spring_gap_has_no_time():
    calendar = BusinessCalendar("America/New_York", {"sun": [("02:00", "02:30"), ("09:00", "10:00")]})
    start = datetime(2026, 3, 8, 0, tzinfo=NEW_YORK)
    assert calendar.add_business_time(start, H) == datetime(2026, 3, 8, 10, tzinfo=NEW_YORK)


# -- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "path"),
    [
        ({"mon": [("09:00", "12:00"), ("11:00", "13:00")]}, "hours.mon[1]"),
        ({"tue": [("10:00", "10:00")]}, "hours.tue[0]"),
        ({"wed": [("17:00", "09:00")]}, "hours.wed[0]"),
        ({"thu": [("9am", "17:00")]}, "hours.thu[0][0]"),
        ({"fri": [("09:00", "24:30")]}, "hours.fri[0][1]"),
        ({}, "hours"),
        ({"mon": []}, "hours"),
        ({"someday": [("09:00", "17:00")]}, "hours"),
    ],
)
def test_bad_working_hours_are_rule_errors_naming_the_period(hours, path):
    with pytest.raises(RuleError) as caught:
        BusinessCalendar("UTC", hours)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"holidays": ["2026-02-30"]}, "holidays[0]"),
        ({"holiday_rules": ["FREQ=SOMETIMES"]}, "holiday_rules[0]"),
        ({"holiday_rules": ["FREQ=HOURLY"]}, "holiday_rules[0]"),
        ({"holiday_rules": ["DTSTART:20260101T000000\nRRULE:FREQ=YEARLY"]}, "holiday_rules[0]"),
    ],
)
def test_bad_holidays_are_rule_errors_naming_the_entry(kwargs, path):
    with pytest.raises(RuleError) as caught:
        office(**kwargs)
    assert caught.value.path == path


def test_an_unknown_time_zone_is_a_rule_error():
    with pytest.raises(RuleError) as caught:
        BusinessCalendar.office_hours("Mars/Olympus")
    assert caught.value.path == "timezone"


def test_naive_datetimes_are_validation_errors_naming_the_argument():
    calendar = office()
    with pytest.raises(ValidationError) as caught:
        calendar.add_business_time(datetime(2026, 3, 2, 9), H)  # noqa: DTZ001 - the point of the test
    assert caught.value.problems[0].path == "start"
    with pytest.raises(ValidationError) as caught:
        calendar.business_time_between(at(2026, 3, 2, 9), datetime(2026, 3, 2, 10))  # noqa: DTZ001
    assert caught.value.problems[0].path == "end"


@pytest.mark.parametrize("duration", [-H, timedelta(days=100_000)])
def test_negative_or_absurd_durations_are_refused(duration):
    with pytest.raises(ValidationError) as caught:
        office().add_business_time(at(2026, 3, 2, 9), duration)
    assert caught.value.problems[0].path == "duration"


# -- JSON -------------------------------------------------------------------------------------------------


def test_a_calendar_round_trips_through_json():
    calendar = BusinessCalendar(
        "America/New_York",
        {"mon": [("08:00", "12:00"), ("13:00", "17:30")], "sat": [("10:00", "14:00")]},
        holidays=["2026-07-03"],
        holiday_rules=["FREQ=YEARLY;BYMONTH=11;BYDAY=4TH"],
        name="us support",
    )
    data = calendar.to_json()
    assert data["hours"]["mon"] == [["08:00", "12:00"], ["13:00", "17:30"]]
    assert BusinessCalendar.from_json(data) == calendar


def test_unknown_keys_in_calendar_json_are_rule_errors():
    with pytest.raises(RuleError) as caught:
        BusinessCalendar.from_json({"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "tz": "x"})
    assert caught.value.path == "tz"


# -- properties -------------------------------------------------------------------------------------------

CALENDARS = [
    BusinessCalendar.office_hours(
        "Europe/London", holidays=["2026-12-25"], holiday_rules=["FREQ=YEARLY;BYEASTER=-2"]
    ),
    BusinessCalendar(
        "America/New_York", {"mon": [("08:00", "12:00"), ("13:00", "24:00")], "sun": [("00:00", "03:00")]}
    ),
    BusinessCalendar.always("Europe/London"),
]
starts = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis attaches the zone
    max_value=datetime(2028, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, LONDON, NEW_YORK]),
)
durations = st.timedeltas(min_value=timedelta(), max_value=timedelta(days=400))


@settings(max_examples=150, deadline=None)
@given(calendar=st.sampled_from(CALENDARS), start=starts, duration=durations)
def test_adding_business_time_then_measuring_it_back_gives_the_same_duration(calendar, start, duration):
    deadline = calendar.add_business_time(start, duration)
    assert deadline >= start
    assert calendar.business_time_between(start, deadline) == duration


@settings(max_examples=150, deadline=None)
@given(calendar=st.sampled_from(CALENDARS), first=starts, second=starts, duration=durations)
def test_deadlines_are_monotone_in_the_start_time(calendar, first, second, duration):
    early, late = sorted((first, second))
    assert calendar.add_business_time(early, duration) <= calendar.add_business_time(late, duration)


@settings(max_examples=100, deadline=None)
@given(calendar=st.sampled_from(CALENDARS), first=starts, second=starts, third=starts)
def test_business_time_adds_up_over_consecutive_spans(calendar, first, second, third):
    a, b, c = sorted((first, second, third))
    assert calendar.business_time_between(a, b) + calendar.business_time_between(b, c) == (
        calendar.business_time_between(a, c)
    )


@settings(max_examples=50, deadline=None)
@given(
    hours=st.dictionaries(
        st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        st.lists(st.tuples(st.integers(0, 47), st.integers(1, 48)), min_size=1, max_size=3),
        min_size=1,
    )
)
def test_any_valid_calendar_round_trips_through_json(hours):
    def text(half_hours):
        return f"{half_hours // 2:02d}:{30 * (half_hours % 2):02d}"

    periods = {day: [(text(a), text(b)) for a, b in spans] for day, spans in hours.items()}
    try:
        calendar = BusinessCalendar("Europe/Berlin", periods)
    except RuleError:
        return  # empty or overlapping periods: refused, as tested above
    assert BusinessCalendar.from_json(calendar.to_json()) == calendar
