"""First response and resolution times (wall clock and business hours), SLA, backlog, CSAT and NPS."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import Feedback, FeedbackKind, Priority, Ticket
from crmkit.errors import ValidationError
from crmkit.metrics import backlog_age, csat, nps, response_times, sla_attainment

MONDAY = datetime(2026, 3, 2, 9, tzinfo=UTC)
PERIOD = {"start": MONDAY, "end": MONDAY + timedelta(days=7), "as_of": MONDAY + timedelta(days=10)}


def ticket(created_hours, response_hours=None, resolved_hours=None, priority=Priority.NORMAL):
    created = MONDAY + timedelta(hours=created_hours)
    return Ticket(
        subject="help",
        created_at=created,
        priority=priority,
        first_response_at=None if response_hours is None else created + timedelta(hours=response_hours),
        resolved_at=None if resolved_hours is None else created + timedelta(hours=resolved_hours),
    )


TICKETS = [
    ticket(0, response_hours=1, resolved_hours=5),
    ticket(1, response_hours=3, resolved_hours=30, priority=Priority.URGENT),
    ticket(2, response_hours=8),
    ticket(3),  # never answered
    ticket(200, response_hours=1),  # created after the period
]


class NineToFive:
    """A fake calendar: business time counts only 09:00-17:00 UTC, every day (enough for these tests)."""

    def business_time_between(self, start, end):
        total, moment = timedelta(), start
        while moment < end:
            step = min(end, moment + timedelta(minutes=30))
            if 9 <= moment.hour < 17:
                total += step - moment
            moment = step
        return total


def test_first_response_and_resolution_times_are_medians_and_means_over_the_period():
    times = response_times(TICKETS, **PERIOD)
    assert (times.tickets, times.responded, times.resolved) == (4, 3, 2)
    assert times.median_first_response == timedelta(hours=3)  # of 1, 3 and 8 hours
    assert times.mean_first_response == timedelta(hours=4)
    assert times.median_resolution == times.mean_resolution == timedelta(hours=17.5)  # of 5 and 30 hours
    assert not times.business_time


def test_with_a_calendar_times_are_business_hours():
    times = response_times(TICKETS, **PERIOD, calendar=NineToFive())
    # Created at 11:00 with a response at 19:00: only 6 business hours (11:00-17:00).
    assert times.median_first_response == timedelta(hours=3)
    assert times.mean_first_response == (timedelta(hours=1) + timedelta(hours=3) + timedelta(hours=6)) / 3
    # Created 10:00, resolved 16:00 the next day: 7 hours on Monday and 7 on Tuesday.
    assert times.median_resolution == (timedelta(hours=5) + timedelta(hours=14)) / 2
    assert times.business_time


def test_the_workflows_business_calendar_fits_the_protocol():
    workflows = pytest.importorskip("crmkit.workflows")
    calendar = workflows.BusinessCalendar(
        "UTC", {day: [("09:00", "17:00")] for day in ("mon", "tue", "wed", "thu", "fri")}
    )
    times = response_times(TICKETS, **PERIOD, calendar=calendar)
    assert times.mean_first_response == (timedelta(hours=1) + timedelta(hours=3) + timedelta(hours=6)) / 3


def test_sla_attainment_counts_met_over_due_including_breaches_without_response():
    # Target 4 hours: met by the 1h and 3h responses; the 8h response and the unanswered ticket breached.
    result = sla_attainment(TICKETS, target=timedelta(hours=4), **PERIOD)
    assert (result.due, result.met, result.attainment) == (4, 2, 0.5)
    # Early on, the unanswered ticket is not due yet.
    early = sla_attainment(
        TICKETS,
        target=timedelta(hours=4),
        start=MONDAY,
        end=MONDAY + timedelta(days=7),
        as_of=MONDAY + timedelta(hours=5),
    )
    assert (early.due, early.met) == (2, 2)


def test_sla_targets_per_priority_and_for_resolution():
    targets = {"urgent": timedelta(hours=2), "normal": timedelta(hours=10)}
    result = sla_attainment(TICKETS, target=targets, **PERIOD)
    assert (result.due, result.met) == (4, 2)  # urgent answered in 3h misses 2h; the unanswered breaches
    resolution = sla_attainment(TICKETS, target=timedelta(hours=24), measure="resolution", **PERIOD)
    assert (resolution.due, resolution.met) == (4, 1)
    with pytest.raises(ValidationError) as caught:
        sla_attainment(TICKETS, target=timedelta(hours=1), measure="csat", **PERIOD)
    assert caught.value.paths == ("measure",)


def test_nothing_due_gives_no_attainment():
    assert sla_attainment([], target=timedelta(hours=1), **PERIOD).attainment is None


def test_backlog_age_counts_open_tickets_at_as_of():
    backlog = backlog_age(TICKETS, as_of=MONDAY + timedelta(hours=10))
    # Open at 19:00 Monday: created at 1h (resolves at 31h), 2h, 3h; the first is resolved at 5h.
    assert backlog.open_tickets == 3
    assert backlog.oldest == timedelta(hours=9)
    assert backlog.median_age == timedelta(hours=8)
    assert backlog_age([], as_of=MONDAY).median_age is None


def survey(kind, score, day=0):
    return Feedback(survey=kind, score=score, responded_at=MONDAY + timedelta(days=day))


def test_csat_is_the_share_of_four_and_five():
    answers = [survey(FeedbackKind.CSAT, s) for s in (5, 4, 3, 1)] + [survey(FeedbackKind.NPS, 10)]
    result = csat(answers, start=MONDAY, end=MONDAY + timedelta(days=1))
    assert (result.responses, result.satisfied, result.score) == (4, 2, 0.5)
    assert csat([], start=MONDAY, end=MONDAY).score is None


def test_nps_is_percent_promoters_minus_percent_detractors():
    answers = [survey(FeedbackKind.NPS, s) for s in (10, 9, 9, 8, 7, 6, 0, 5, 10, 10)]
    result = nps(answers, start=MONDAY, end=MONDAY + timedelta(days=1))
    assert (result.promoters, result.passives, result.detractors) == (5, 2, 3)
    assert result.nps == 20.0  # 50 % - 30 %
    outside = nps([survey(FeedbackKind.NPS, 10, day=5)], start=MONDAY, end=MONDAY + timedelta(days=1))
    assert outside.nps is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=40))
def test_nps_lies_between_minus_and_plus_one_hundred(scores):
    result = nps([survey(FeedbackKind.NPS, s) for s in scores], start=MONDAY, end=MONDAY + timedelta(days=1))
    assert -100 <= result.nps <= 100
    assert result.promoters + result.passives + result.detractors == len(scores)
    if all(s >= 9 for s in scores):
        assert result.nps == 100


def test_a_single_result_converts_to_a_one_row_frame_when_pandas_is_installed():
    pytest.importorskip("pandas")
    answers = [survey(FeedbackKind.NPS, s) for s in (10, 0)]
    frame = nps(answers, start=MONDAY, end=MONDAY + timedelta(days=1)).to_pandas()
    assert list(frame.columns) == ["responses", "promoters", "passives", "detractors", "nps"]
    assert frame.iloc[0]["nps"] == 0.0
