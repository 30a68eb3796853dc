"""SLA policies: targets by priority and tier, pauses in business time, warnings and sticky breaches."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import Ticket
from crmkit.errors import RuleError, ValidationError
from crmkit.events import event_from_data, event_to_data
from crmkit.lifecycle import TICKET_LIFECYCLE
from crmkit.workflows import (
    BusinessCalendar,
    SlaBreached,
    SlaMetric,
    SlaPolicy,
    SlaReport,
    SlaStatus,
    SlaTarget,
    SlaWarning,
    business_elapsed,
)

LONDON = ZoneInfo("Europe/London")
H = timedelta(hours=1)
CALENDAR = BusinessCalendar.office_hours("Europe/London", holidays=["2026-12-25"])


def at(*args):
    return datetime(*args, tzinfo=LONDON)


def policy(**kwargs):
    return SlaPolicy(
        "support",
        CALENDAR,
        [
            SlaTarget("first_response", "PT1H", priority="urgent"),
            SlaTarget("first_response", "PT2H", tier="gold"),
            SlaTarget("first_response", "PT4H"),
            SlaTarget("next_response", "PT4H"),
            SlaTarget("resolution", "PT16H", warn_before="PT2H"),
        ],
        **kwargs,
    )


def ticket(created, **kwargs):
    return Ticket(subject="Printer on fire", created_at=created, **kwargs)


def moved(record, *steps):
    for transition, when in steps:
        record, _ = TICKET_LIFECYCLE.apply(record, transition, at=when)
    return record


def test_the_first_matching_target_applies_by_priority_then_tier():
    sla = policy()
    assert sla.target_for("first_response", "urgent", "gold").within == H
    assert sla.target_for("first_response", "normal", "gold").within == 2 * H
    assert sla.target_for("first_response", "normal", None).within == 4 * H
    assert sla.target_for(SlaMetric.RESOLUTION, "low").within == 16 * H


def test_deadlines_are_measured_in_business_hours():
    report = policy().evaluate(ticket(at(2026, 3, 6, 15)), now=at(2026, 3, 6, 16))
    first = report.clock("first_response")
    assert first.deadline == at(2026, 3, 9, 11)  # 2 h on Friday, 2 h on Monday
    assert first.elapsed == H
    assert first.remaining == 3 * H
    assert first.status is SlaStatus.RUNNING
    assert report.clock("next_response") is None  # nothing awaits a reply


def test_a_response_before_the_deadline_meets_the_target():
    record = ticket(at(2026, 3, 2, 9), first_response_at=at(2026, 3, 2, 12))
    clock = policy().evaluate(record, now=at(2026, 3, 3, 9)).clock("first_response")
    assert clock.status is SlaStatus.MET
    assert clock.elapsed == 3 * H


def test_a_late_response_is_a_breach_with_one_event():
    record = ticket(at(2026, 3, 2, 9), first_response_at=at(2026, 3, 2, 15))
    report = policy().evaluate(record, now=at(2026, 3, 2, 15))
    assert report.clock("first_response").status is SlaStatus.BREACHED
    (event,) = [e for e in report.events if isinstance(e, SlaBreached)]
    assert event.metric == "first_response"
    assert event.deadline == at(2026, 3, 2, 13)
    assert event.at == at(2026, 3, 2, 13)
    assert event_from_data(event_to_data(event)) == event


def test_a_pause_over_a_weekend_does_not_move_the_deadline():
    record = moved(
        ticket(at(2026, 3, 5, 9)),
        ("accept", at(2026, 3, 5, 9, 30)),
        ("wait_on_customer", at(2026, 3, 6, 17)),  # Friday evening
        ("customer_replied", at(2026, 3, 9, 9)),  # Monday morning
    )
    clock = policy().evaluate(record, now=at(2026, 3, 9, 10)).clock("resolution")
    # 16 business hours from Thursday 09:00 end on Friday 17:00; the weekend pause costs nothing.
    assert clock.deadline == at(2026, 3, 6, 17)
    assert clock.status is SlaStatus.BREACHED


def test_a_pause_during_business_hours_moves_the_deadline_by_its_business_time():
    record = moved(
        ticket(at(2026, 3, 2, 9)),
        ("accept", at(2026, 3, 2, 9)),
        ("wait_on_customer", at(2026, 3, 2, 11)),
        ("customer_replied", at(2026, 3, 2, 14)),
    )
    report = policy().evaluate(record, now=at(2026, 3, 2, 15))
    clock = report.clock("resolution")
    assert clock.deadline == at(2026, 3, 4, 12)  # 16 h + 3 h paused
    assert clock.elapsed == 3 * H


def test_an_ongoing_pause_has_no_deadline_and_a_paused_status():
    record = moved(
        ticket(at(2026, 3, 2, 9)), ("accept", at(2026, 3, 2, 9)), ("wait_on_customer", at(2026, 3, 2, 10))
    )
    clock = policy().evaluate(record, now=at(2026, 3, 20, 10)).clock("resolution")
    assert clock.status is SlaStatus.PAUSED
    assert clock.deadline is None
    assert clock.elapsed == H


def test_a_pause_after_the_deadline_does_not_undo_a_breach():
    record = moved(
        ticket(at(2026, 3, 2, 9)),
        ("accept", at(2026, 3, 2, 9)),
        ("wait_on_customer", at(2026, 3, 5, 10)),  # after the deadline, 3 March 17:00
    )
    clock = policy().evaluate(record, now=at(2026, 3, 5, 11)).clock("resolution")
    assert clock.status is SlaStatus.BREACHED
    assert clock.deadline == at(2026, 3, 3, 17)


def test_a_warning_comes_once_before_the_breach_then_the_breach_once():
    sla = policy()
    record = ticket(at(2026, 3, 2, 9), first_response_at=at(2026, 3, 2, 9, 5))
    first = sla.evaluate(record, now=at(2026, 3, 3, 15, 30))
    assert first.clock("resolution").status is SlaStatus.WARNING
    assert [type(e) for e in first.events] == [SlaWarning]
    again = sla.evaluate(record, now=at(2026, 3, 3, 16), previous=first)
    assert again.events == ()
    late = sla.evaluate(record, now=at(2026, 3, 3, 17), previous=again)
    assert [type(e) for e in late.events] == [SlaBreached]


def test_a_breached_sla_stays_breached_even_when_the_ticket_is_reprioritised():
    sla = policy()
    record = ticket(at(2026, 3, 2, 9), priority="urgent")
    breached = sla.evaluate(record, now=at(2026, 3, 2, 11))
    assert breached.clock("first_response").status is SlaStatus.BREACHED
    relaxed = attrs.evolve(record, priority="normal")
    later = sla.evaluate(relaxed, now=at(2026, 3, 2, 11), previous=breached)
    assert later.clock("first_response").status is SlaStatus.BREACHED
    assert later.events == ()


def test_the_next_response_clock_runs_from_the_unanswered_message():
    record = ticket(at(2026, 3, 2, 9), first_response_at=at(2026, 3, 2, 10))
    clock = (
        policy()
        .evaluate(record, now=at(2026, 3, 2, 15), awaiting_reply_since=at(2026, 3, 2, 14))
        .clock("next_response")
    )
    assert clock.deadline == at(2026, 3, 3, 10)
    assert clock.status is SlaStatus.RUNNING


def test_a_policy_round_trips_through_json():
    sla = policy(warn_before="PT30M", pause_stages=["pending", "on_hold"])
    assert SlaPolicy.from_json(sla.to_json()) == sla


@pytest.mark.parametrize(
    ("targets", "path"),
    [
        ([{"metric": "first_reply", "within": "PT1H"}], "targets[0].metric"),
        ([{"metric": "resolution", "within": "P1M"}], "targets[0].within"),
        (
            [{"metric": "resolution", "within": "PT1H"}, {"metric": "resolution", "within": "-PT1H"}],
            "targets[1].within",
        ),
        ([{"metric": "resolution", "within": "PT1H", "priority": "asap"}], "targets[0].priority"),
        ([{"metric": "resolution", "within": "P4000D"}], "targets[0].within"),
        ([], "targets"),
    ],
)
def test_bad_targets_are_rule_errors_naming_the_node(targets, path):
    with pytest.raises(RuleError) as caught:
        SlaPolicy.from_json({"name": "x", "calendar": CALENDAR.to_json(), "targets": targets})
    assert caught.value.path == path


def test_a_bad_calendar_inside_a_policy_points_into_it():
    data = {
        "name": "x",
        "calendar": {"timezone": "UTC", "hours": {"mon": [["10:00", "09:00"]]}},
        "targets": [],
    }
    with pytest.raises(RuleError) as caught:
        SlaPolicy.from_json(data)
    assert caught.value.path == "calendar.hours.mon[0]"


def test_a_naive_now_is_refused():
    with pytest.raises(ValidationError) as caught:
        policy().evaluate(ticket(at(2026, 3, 2, 9)), now=datetime(2026, 3, 2, 10))  # noqa: DTZ001
    assert caught.value.problems[0].path == "now"


# -- properties ---------------------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis attaches the zone
    max_value=datetime(2026, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=150, deadline=None)
@given(start=moments, end=moments, pauses=st.lists(st.tuples(moments, moments), max_size=6))
def test_pauses_never_make_elapsed_time_negative_or_longer_than_the_span(start, end, pauses):
    elapsed = business_elapsed(CALENDAR, start, end, pauses)
    assert timedelta() <= elapsed
    assert elapsed <= max(CALENDAR.business_time_between(start, end), timedelta())


@settings(max_examples=75, deadline=None)
@given(
    start=moments,
    target=st.integers(1, 200).map(lambda hours: hours * H),
    pauses=st.lists(st.tuples(moments, st.integers(0, 400).map(lambda h: h * H)), max_size=4),
)
def test_at_the_deadline_the_unpaused_business_time_is_exactly_the_target(start, target, pauses):
    spans = []
    for moment, length in sorted(pauses):
        begin = max(moment, spans[-1][1] if spans else moment)
        spans.append((begin, begin + length))
    sla = policy()
    deadline = sla.deadline(start, target, spans)
    assert business_elapsed(CALENDAR, start, deadline, spans) == target


targets = st.builds(
    lambda metric, hours, priority, tier, warn: {
        "metric": metric,
        "within": f"PT{hours}H",
        **({"priority": priority} if priority else {}),
        **({"tier": tier} if tier else {}),
        **({"warn_before": f"PT{warn}M"} if warn else {}),
    },
    st.sampled_from(["first_response", "next_response", "resolution"]),
    st.integers(1, 500),
    st.sampled_from([None, "low", "normal", "high", "urgent"]),
    st.sampled_from([None, "gold", "silver"]),
    st.sampled_from([None, 15, 90]),
)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(targets, min_size=1, max_size=6), stages=st.sets(st.sampled_from(["pending", "on_hold"]))
)
def test_any_valid_policy_round_trips_through_json(items, stages):
    data = {"name": "p", "calendar": CALENDAR.to_json(), "targets": items, "pause_stages": sorted(stages)}
    sla = SlaPolicy.from_json(data)
    assert SlaPolicy.from_json(sla.to_json()) == sla
    assert [t.to_json() for t in sla.targets] == [
        SlaTarget(**{**t, "metric": t["metric"]}).to_json() for t in items
    ]


@settings(max_examples=60, deadline=None)
@given(
    first=moments,
    second=moments,
    target=st.integers(1, 100).map(lambda hours: hours * H),
    pause=st.tuples(moments, st.integers(0, 100).map(lambda h: h * H)),
)
def test_sla_deadlines_are_monotone_in_the_start_for_the_same_pauses(first, second, target, pause):
    early, late = sorted((first, second))
    spans = [(pause[0], pause[0] + pause[1])]
    sla = policy()
    assert sla.deadline(early, target, spans) <= sla.deadline(late, target, spans)


def test_a_report_kept_as_json_keeps_the_breach_breached_in_the_next_process():
    sla = policy()
    record = ticket(at(2026, 3, 2, 9), priority="urgent")
    breached = sla.evaluate(record, now=at(2026, 3, 2, 11))
    kept = json.loads(json.dumps(breached.to_json()))
    restored = SlaReport.from_json(kept)
    assert restored.clocks == breached.clocks
    relaxed = attrs.evolve(record, priority="normal")
    later = sla.evaluate(relaxed, now=at(2026, 3, 2, 11), previous=restored)
    assert later.clock("first_response").status is SlaStatus.BREACHED
    assert later.events == ()
    with pytest.raises(ValidationError):
        SlaReport.from_json({"ticket_id": "t", "policy": "p", "clocks": [{"metric": "nope"}]})
