"""The ``workflows-*`` cases: SLA deadlines in business hours, and events through a workflow engine.

* ``workflows-deadlines-1d``, ``-30d``, ``-365d``: for each ticket, the first-response deadline (4 business
  hours) and the resolution deadline (1, 30 or 365 business days of 8 hours) in a London calendar, Monday to
  Friday 09:00-17:00, with holidays given as RFC 5545 rules (Christmas, Boxing Day, New Year, Good Friday,
  Easter Monday, the May bank holidays). Tickets open at any time of day or week, in 2026-2027. The answer
  per ticket is the two deadlines as UTC ISO texts. The three cases side by side show whether the cost grows
  with the target: crmkit's calendar skips whole years by their totals and finds the day by binary search;
  the peer ``businesstimedelta`` (a ``WorkDayRule`` and a ``HolidayRule`` over the same dates) walks from
  period to period. A day-walking loop written out by hand is the third contender.
* ``workflows-engine``: domain events (ticket created, stage changed, field changed) through a
  ``WorkflowEngine`` holding 100 workflows, each with a trigger and a condition over the ticket's priority,
  channel, stage and tags, about 1 in 20 running an ``add_tag`` step. The answer per event is the sorted
  names of the workflows it started. Only crmkit runs it: the figure is its throughput in events per second.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from benchmarks.harness import Case, Contender, Skip

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.harness import Work

__all__ = ["CASES", "HOLIDAY_RULES", "SEED", "make_events", "make_tickets"]

SEED = 20_261_122
ZONE = "Europe/London"
HOLIDAY_RULES = (
    "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
    "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=26",
    "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1",
    "FREQ=YEARLY;BYEASTER=-2",
    "FREQ=YEARLY;BYEASTER=1",
    "FREQ=YEARLY;BYMONTH=5;BYDAY=1MO",
    "FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO",
)
FIRST_RESPONSE = timedelta(hours=4)
WORKDAY_HOURS = 8
START = datetime(2026, 1, 1, tzinfo=UTC)
Answer = tuple[str, str]


def make_tickets(n: int, seed: int = SEED) -> list[datetime]:
    """The opening times of the first ``n`` tickets: any minute of 2026 and 2027, in UTC."""
    rng = random.Random(seed)
    return [START + timedelta(minutes=rng.randrange(2 * 365 * 24 * 60)) for _ in range(n)]


def _holiday_dates(first_year: int = 2025, last_year: int = 2040) -> set[date]:
    from dateutil.rrule import rrulestr  # noqa: PLC0415 - only the peers need the expanded dates

    first = datetime(first_year, 1, 1)  # noqa: DTZ001 - holiday rules work on local dates
    last = datetime(last_year, 12, 31)  # noqa: DTZ001
    days: set[date] = set()
    for text in HOLIDAY_RULES:
        days.update(moment.date() for moment in rrulestr(text, dtstart=first).between(first, last, inc=True))
    return days


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _crmkit(resolution: timedelta) -> Any:
    def prepare(tickets: Sequence[datetime]) -> Work:
        from crmkit.workflows import BusinessCalendar  # noqa: PLC0415 - measured import stays out of timing

        calendar = BusinessCalendar.office_hours(ZONE, holiday_rules=HOLIDAY_RULES)
        add = calendar.add_business_time

        def work() -> list[Answer]:
            return [(_iso(add(opened, FIRST_RESPONSE)), _iso(add(opened, resolution))) for opened in tickets]

        return work

    return prepare


def _businesstimedelta(resolution: timedelta, limit: int | None) -> Any:
    def prepare(tickets: Sequence[datetime]) -> Work:
        if limit is not None and len(tickets) > limit:
            msg = f"walks period by period: run it with --slow-cap {limit} or less"
            raise Skip(msg)
        import businesstimedelta  # noqa: PLC0415 - optional peer
        import pytz  # noqa: PLC0415 - the peer's time zones

        zone = pytz.timezone(ZONE)
        workday = businesstimedelta.WorkDayRule(
            start_time=time(9), end_time=time(17), working_days=[0, 1, 2, 3, 4], tz=zone
        )
        rules = businesstimedelta.Rules([workday, businesstimedelta.HolidayRule(_holiday_dates(), tz=zone)])
        first = businesstimedelta.BusinessTimeDelta(rules, hours=FIRST_RESPONSE // timedelta(hours=1))
        last = businesstimedelta.BusinessTimeDelta(rules, hours=resolution // timedelta(hours=1))

        def work() -> list[Answer]:
            return [(_iso(opened + first), _iso(opened + last)) for opened in tickets]

        return work

    return prepare


def _day_walk(resolution: timedelta) -> Any:
    """The loop many CRMs write: walk day by day, adding each working day's hours until the target is met."""

    def prepare(tickets: Sequence[datetime]) -> Work:
        zone = ZoneInfo(ZONE)
        holidays = _holiday_dates()
        one_day = timedelta(days=1)

        def add(opened: datetime, target: timedelta) -> datetime:
            local = opened.astimezone(zone)
            day = local.date()
            left = target
            while True:
                if day.weekday() < 5 and day not in holidays:
                    begin = datetime.combine(day, time(9), zone)
                    end = datetime.combine(day, time(17), zone)
                    begin = max(begin, opened)
                    if end > begin:
                        span = end.astimezone(UTC) - begin.astimezone(UTC)
                        if left <= span:
                            return (begin.astimezone(UTC) + left).astimezone(zone)
                        left -= span
                day += one_day

        def work() -> list[Answer]:
            return [(_iso(add(opened, FIRST_RESPONSE)), _iso(add(opened, resolution))) for opened in tickets]

        return work

    return prepare


def _summarize(answers: Sequence[Answer]) -> str:
    spans = [datetime.fromisoformat(last) - datetime.fromisoformat(first) for first, last in answers]
    mean_days = sum(span.total_seconds() for span in spans) / len(spans) / 86_400 if spans else 0
    return (
        f"{len(answers):,} tickets; resolution on average {mean_days:,.1f} calendar days after first response"
    )


def _deadline_case(days: int, peer_limit: int | None) -> Case:
    resolution = timedelta(hours=WORKDAY_HOURS * days)
    return Case(
        name=f"workflows-deadlines-{days}d",
        description=(
            f"first-response (4 business hours) and resolution ({days} business day{'s' if days > 1 else ''})"
            " deadlines per ticket, London office hours with RRULE holidays"
        ),
        unit="ticket",
        sizes={"tiny": 2_000, "small": 20_000, "full": 100_000},
        make_items=make_tickets,
        contenders=(
            Contender("crmkit", _crmkit(resolution), distribution="crmkit"),
            Contender(
                "businesstimedelta",
                _businesstimedelta(resolution, peer_limit),
                distribution="businesstimedelta",
                slow=True,
            ),
            Contender("day-walk", _day_walk(resolution), slow=True),
        ),
        summarize=_summarize,
    )


# -- the engine -------------------------------------------------------------------------------------------

PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("email", "phone", "chat", "web_form", "social")
STAGES = ("new", "open", "pending", "escalated", "resolved")
TAGS = ("vip", "billing", "outage", "refund", "churn-risk", "beta")
WORKFLOW_COUNT = 100


def make_workflows(seed: int = SEED) -> list[dict[str, Any]]:
    """100 ticket workflows in JSON form: a trigger and a two- or three-part condition each."""
    rng = random.Random(seed + 1)
    workflows = []
    for index in range(WORKFLOW_COUNT):
        kind = index % 3
        if kind == 0:
            trigger: dict[str, Any] = {"type": "event", "event": "entity_created"}
        elif kind == 1:
            trigger = {"type": "stage_changed", "to_stage": rng.choice(STAGES)}
        else:
            trigger = {"type": "field_changed", "field": rng.choice(["priority", "channel", "tags"])}
        parts: list[dict[str, Any]] = [
            {"field": "priority", "op": "in", "value": rng.sample(PRIORITIES, 2)},
            {"field": "channel", "op": "eq", "value": rng.choice(CHANNELS)},
        ]
        if rng.random() < 0.5:
            parts.append({"field": "tags", "op": "contains", "value": rng.choice(TAGS)})
        workflows.append(
            {
                "name": f"wf-{index:03d}",
                "entity": "ticket",
                "trigger": trigger,
                "conditions": {"all": parts},
                "reenrolment": {"policy": "every_time"},
                "steps": [{"action": "add_tag", "params": {"tag": f"wf-{index:03d}"}}],
            }
        )
    return workflows


def make_events(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """The first ``n`` events as plain data: the event's type and the ticket it is about."""
    rng = random.Random(seed)
    return [
        {
            "index": index,
            "type": rng.choice(["created", "stage", "field"]),
            "priority": rng.choice(PRIORITIES),
            "channel": rng.choice(CHANNELS),
            "stage": rng.choice(STAGES),
            "tags": rng.sample(TAGS, rng.randint(0, 2)),
            "field": rng.choice(["priority", "channel", "tags"]),
        }
        for index in range(n)
    ]


def _engine(items: Sequence[dict[str, Any]]) -> Work:
    from crmkit.entities import EntityRef, Ticket  # noqa: PLC0415 - kept out of the timed work
    from crmkit.events import EntityCreated, EntityUpdated, StageChanged  # noqa: PLC0415
    from crmkit.workflows import MemoryState, Workflow, WorkflowEngine  # noqa: PLC0415

    workflows = [Workflow.from_json(data) for data in make_workflows()]
    pairs = []
    for item in items:
        ticket = Ticket(
            id=f"t{item['index']}",
            subject="Help",
            priority=item["priority"],
            channel=item["channel"],
            stage=item["stage"],
            tags=item["tags"],
            created_at=START,
        )
        ref = EntityRef.to(ticket)
        event: Any
        if item["type"] == "created":
            event = EntityCreated(entity=ref, at=START, id=f"e{item['index']}")
        elif item["type"] == "stage":
            event = StageChanged(entity=ref, to_stage=item["stage"], at=START, id=f"e{item['index']}")
        else:
            event = EntityUpdated(entity=ref, changed=(item["field"],), at=START, id=f"e{item['index']}")
        pairs.append((event, ticket))

    def work() -> list[tuple[str, ...]]:
        engine = WorkflowEngine(workflows, state=MemoryState())
        answers = []
        for event, ticket in pairs:
            result = engine.handle(event, record=ticket, now=START)
            answers.append(tuple(sorted(trace.workflow for trace in result.started)))
        return answers

    return work


def _summarize_engine(answers: Sequence[tuple[str, ...]]) -> str:
    runs = sum(len(started) for started in answers)
    return f"{len(answers):,} events through {WORKFLOW_COUNT} workflows started {runs:,} runs"


ENGINE_CASE = Case(
    name="workflows-engine",
    description=f"events through a WorkflowEngine with {WORKFLOW_COUNT} conditional workflows",
    unit="event",
    sizes={"tiny": 1_000, "small": 10_000, "full": 50_000},
    make_items=make_events,
    contenders=(Contender("crmkit", _engine, distribution="crmkit"),),
    summarize=_summarize_engine,
)

CASES = (_deadline_case(1, None), _deadline_case(30, None), _deadline_case(365, 500), ENGINE_CASE)
