"""Service metrics: first response and resolution times, SLA attainment, backlog age, CSAT and NPS.

Durations are wall-clock time, or business time when a calendar is given: any object with
``business_time_between(start, end) -> timedelta``, such as :class:`crmkit.workflows.BusinessCalendar`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import attrs

from crmkit.entities import FeedbackKind
from crmkit.errors import ValidationError
from crmkit.metrics._periods import Result, check_aware, median_time, ratio

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from crmkit.entities import Feedback, Ticket

__all__ = [
    "BacklogAge",
    "BusinessHours",
    "NpsScore",
    "ResponseTimes",
    "SlaAttainment",
    "SurveyScore",
    "backlog_age",
    "csat",
    "nps",
    "response_times",
    "sla_attainment",
]

_PROMOTER = 9
_DETRACTOR = 6
_SATISFIED = 4


class BusinessHours(Protocol):
    """A calendar that measures business time, such as :class:`crmkit.workflows.BusinessCalendar`."""

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The business time from ``start`` to ``end``."""
        ...


def _measure(calendar: BusinessHours | None) -> Callable[[datetime, datetime], timedelta]:
    if calendar is None:
        return _wall_clock
    return calendar.business_time_between


def _wall_clock(start: datetime, end: datetime) -> timedelta:
    return end - start


def _period(start: datetime, end: datetime, as_of: datetime) -> tuple[datetime, datetime, datetime]:
    start, end, as_of = check_aware(start, "start"), check_aware(end, "end"), check_aware(as_of, "as_of")
    if end < start:
        raise ValidationError.single("end", "must not be before start")
    return start, end, as_of


def _mean(durations: list[timedelta]) -> timedelta | None:
    return sum(durations, timedelta()) / len(durations) if durations else None


@attrs.frozen
class ResponseTimes(Result):
    """How fast the tickets created in a period were answered and resolved.

    Attributes:
        tickets: Tickets created in the period.
        responded: Of those, answered by ``as_of``.
        median_first_response: Median time from creation to the first response; ``None`` if none.
        mean_first_response: Mean of that time; ``None`` if none.
        resolved: Tickets resolved by ``as_of``.
        median_resolution: Median time from creation to resolution; ``None`` if none.
        mean_resolution: Mean of that time; ``None`` if none.
        business_time: Whether the times are business time (a calendar was given).
    """

    tickets: int
    responded: int
    median_first_response: timedelta | None
    mean_first_response: timedelta | None
    resolved: int
    median_resolution: timedelta | None
    mean_resolution: timedelta | None
    business_time: bool


def response_times(
    tickets: Iterable[Ticket],
    *,
    start: datetime,
    end: datetime,
    as_of: datetime,
    calendar: BusinessHours | None = None,
) -> ResponseTimes:
    """First response time and resolution time of the tickets created in ``[start, end)``.

    - **First response time** = first_response_at - created_at
    - **Resolution time** = resolved_at - created_at

    both in business time when ``calendar`` is given; responses and resolutions after ``as_of`` do not
    count yet.

    Raises:
        ValidationError: For a naive or inverted period.
    """
    start, end, as_of = _period(start, end, as_of)
    measure = _measure(calendar)
    count = 0
    first: list[timedelta] = []
    resolution: list[timedelta] = []
    for ticket in tickets:
        if not start <= ticket.created_at < end:
            continue
        count += 1
        if ticket.first_response_at is not None and ticket.first_response_at <= as_of:
            first.append(measure(ticket.created_at, ticket.first_response_at))
        if ticket.resolved_at is not None and ticket.resolved_at <= as_of:
            resolution.append(measure(ticket.created_at, ticket.resolved_at))
    return ResponseTimes(
        count,
        len(first),
        median_time(first),
        _mean(first),
        len(resolution),
        median_time(resolution),
        _mean(resolution),
        calendar is not None,
    )


@attrs.frozen
class SlaAttainment(Result):
    """How many tickets met a response or resolution target.

    Attributes:
        due: Tickets whose target has come: answered (or resolved), or past the target without it.
        met: Of those, the ones answered (or resolved) within the target.
        attainment: met / due; ``None`` when none is due.
    """

    due: int
    met: int
    attainment: float | None


def sla_attainment(
    tickets: Iterable[Ticket],
    *,
    target: timedelta | Mapping[str, timedelta],
    start: datetime,
    end: datetime,
    as_of: datetime,
    measure: str = "first_response",
    calendar: BusinessHours | None = None,
) -> SlaAttainment:
    """SLA attainment = tickets meeting the target / tickets due, for the tickets created in ``[start, end)``.

    A ticket is due once it was answered (``measure="first_response"``) or resolved
    (``measure="resolution"``) by ``as_of``, or once the target has passed at ``as_of`` without it (a
    breach). It meets the target when the time taken is at most the target, in business time when a
    calendar is given.

    Args:
        tickets: The tickets.
        target: One target for all, or a target per priority (``{"urgent": timedelta(hours=1), ...}``);
            tickets of a priority without a target are left out.
        start: The period's start (included), by ticket creation.
        end: Its end (excluded).
        as_of: The moment the tickets are judged at.
        measure: ``"first_response"`` or ``"resolution"``.
        calendar: Business hours, if the targets are in business time.

    Raises:
        ValidationError: For an unknown measure or a naive or inverted period.
    """
    start, end, as_of = _period(start, end, as_of)
    if measure not in {"first_response", "resolution"}:
        raise ValidationError.single("measure", f"must be 'first_response' or 'resolution', got {measure!r}")
    elapsed = _measure(calendar)
    attribute = "first_response_at" if measure == "first_response" else "resolved_at"
    due = met = 0
    for ticket in tickets:
        if not start <= ticket.created_at < end:
            continue
        goal = target if isinstance(target, timedelta) else target.get(ticket.priority.value)
        if goal is None:
            continue
        done: datetime | None = getattr(ticket, attribute)
        if done is not None and done <= as_of:
            due += 1
            met += elapsed(ticket.created_at, done) <= goal
        elif elapsed(ticket.created_at, as_of) > goal:
            due += 1
    return SlaAttainment(due, met, ratio(met, due))


@attrs.frozen
class BacklogAge(Result):
    """The open tickets at a moment, and how old they are.

    Attributes:
        open_tickets: Tickets created by ``as_of`` and not resolved by then.
        median_age: Their median age at ``as_of``; ``None`` without open tickets.
        mean_age: Their mean age; ``None`` without open tickets.
        oldest: The age of the oldest; ``None`` without open tickets.
    """

    open_tickets: int
    median_age: timedelta | None
    mean_age: timedelta | None
    oldest: timedelta | None


def backlog_age(
    tickets: Iterable[Ticket], *, as_of: datetime, calendar: BusinessHours | None = None
) -> BacklogAge:
    """The backlog at ``as_of``: open tickets and their age (as_of - created_at, or business time).

    Raises:
        ValidationError: For a naive ``as_of``.
    """
    as_of = check_aware(as_of, "as_of")
    measure = _measure(calendar)
    ages = [
        measure(ticket.created_at, as_of)
        for ticket in tickets
        if ticket.created_at <= as_of and (ticket.resolved_at is None or ticket.resolved_at > as_of)
    ]
    return BacklogAge(len(ages), median_time(ages), _mean(ages), max(ages) if ages else None)


@attrs.frozen
class SurveyScore(Result):
    """Customer satisfaction over a period.

    Attributes:
        responses: CSAT answers in the period.
        satisfied: Answers of 4 or 5 (of 5).
        score: satisfied / responses; ``None`` without responses.
    """

    responses: int
    satisfied: int
    score: float | None


def _answers(feedback: Iterable[Feedback], survey: FeedbackKind, start: datetime, end: datetime) -> list[int]:
    start, end = check_aware(start, "start"), check_aware(end, "end")
    if end < start:
        raise ValidationError.single("end", "must not be before start")
    return [item.score for item in feedback if item.survey is survey and start <= item.responded_at < end]


def csat(feedback: Iterable[Feedback], *, start: datetime, end: datetime) -> SurveyScore:
    """CSAT = satisfied responses (4 or 5 of 5) / responses, for CSAT answers in ``[start, end)``.

    Raises:
        ValidationError: For a naive or inverted period.
    """
    scores = _answers(feedback, FeedbackKind.CSAT, start, end)
    satisfied = sum(1 for score in scores if score >= _SATISFIED)
    return SurveyScore(len(scores), satisfied, ratio(satisfied, len(scores)))


@attrs.frozen
class NpsScore(Result):
    """Net Promoter Score over a period.

    Attributes:
        responses: NPS answers in the period.
        promoters: Answers of 9 or 10.
        passives: Answers of 7 or 8.
        detractors: Answers of 0 to 6.
        nps: % promoters - % detractors, from -100 to 100; ``None`` without responses.
    """

    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None


def nps(feedback: Iterable[Feedback], *, start: datetime, end: datetime) -> NpsScore:
    """NPS = % promoters (9-10) - % detractors (0-6), for NPS answers in ``[start, end)``.

    Raises:
        ValidationError: For a naive or inverted period.
    """
    scores = _answers(feedback, FeedbackKind.NPS, start, end)
    promoters = sum(1 for score in scores if score >= _PROMOTER)
    detractors = sum(1 for score in scores if score <= _DETRACTOR)
    passives = len(scores) - promoters - detractors
    score = 100 * (promoters - detractors) / len(scores) if scores else None
    return NpsScore(len(scores), promoters, passives, detractors, score)
