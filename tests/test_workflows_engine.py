"""The workflow engine: triggers, conditions, steps, delays across restarts, retries, dry runs, guards."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import Contact, EntityRef, Lead, Ticket
from crmkit.events import EntityCreated, EntityUpdated, StageChanged
from crmkit.storage import open_store
from crmkit.workflows import (
    ActionOutcome,
    BusinessCalendar,
    MemoryState,
    RecordingChannel,
    RetryPolicy,
    RunStatus,
    Services,
    SlaPolicy,
    SlaTarget,
    Workflow,
    WorkflowEngine,
    register_action,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
CALENDAR = BusinessCalendar.office_hours("UTC")


def created(record, at=T0):
    return EntityCreated(entity=EntityRef.to(record), at=at)


def workflow(name="urgent", **changes):
    data = {
        "name": name,
        "entity": "ticket",
        "trigger": {"type": "event", "event": "entity_created"},
        "conditions": {"field": "priority", "op": "eq", "value": "urgent"},
        "calendar": CALENDAR.to_json(),
        "steps": [{"action": "add_tag", "params": {"tag": "hot"}}],
    }
    data.update(changes)
    return Workflow.from_json(data)


def urgent_ticket(**kwargs):
    return Ticket(**{"subject": "Site down", "priority": "urgent", "created_at": T0, **kwargs})


def test_an_event_starts_the_workflow_and_the_trace_says_why():
    engine = WorkflowEngine([workflow()])
    ticket = urgent_ticket()
    result = engine.handle(created(ticket), record=ticket, now=T0)
    (trace,) = result.traces
    assert trace.status is RunStatus.COMPLETED
    assert trace.trigger == "event(event=entity_created)"
    assert [(c.name, c.held, c.why) for c in trace.conditions] == [("conditions", True, "")]
    assert [(step.path, step.outcome) for step in trace.steps] == [("steps[0]", "done")]
    (changed,) = result.records
    assert changed.tags == frozenset({"hot"})
    assert [type(event) for event in result.events] == [EntityUpdated]
    assert "steps[0] action: done tagged 'hot'" in trace.explain()


def test_conditions_that_fail_are_explained_and_nothing_runs():
    engine = WorkflowEngine([workflow()])
    ticket = Ticket(subject="Typo", priority="low", created_at=T0)
    (trace,) = engine.handle(created(ticket), record=ticket, now=T0).traces
    assert trace.status is RunStatus.NOT_STARTED
    assert trace.reason == "conditions did not hold"
    (condition,) = trace.conditions
    assert (condition.name, condition.held) == ("conditions", False)
    assert "'low'" in condition.why


def test_events_about_other_kinds_or_other_types_start_nothing():
    engine = WorkflowEngine([workflow()])
    lead = Lead(email="ada@example.com", created_at=T0)
    assert engine.handle(created(lead), record=lead, now=T0).traces == ()
    ticket = urgent_ticket()
    moved = StageChanged(entity=EntityRef.to(ticket), to_stage="open", at=T0)
    assert engine.handle(moved, record=ticket, now=T0).traces == ()


def test_a_delay_waits_in_business_time_and_run_due_resumes_it():
    flow = workflow(
        steps=[
            {"wait": {"business_hours": 4}},
            {"action": "escalate", "params": {"level": "second_line", "transition": "escalate"}},
        ]
    )
    engine = WorkflowEngine([flow])
    ticket = urgent_ticket(created_at=datetime(2026, 3, 6, 15, tzinfo=UTC))  # Friday 15:00
    start = engine.handle(created(ticket), record=ticket, now=ticket.created_at)
    assert start.traces[0].status is RunStatus.WAITING
    assert start.traces[0].steps[0].detail == "until 2026-03-09T11:00:00+00:00"
    assert engine.run_due(datetime(2026, 3, 9, 10, 59, tzinfo=UTC)).traces == ()
    resumed = engine.run_due(datetime(2026, 3, 9, 11, tzinfo=UTC))
    (trace,) = resumed.traces
    assert trace.status is RunStatus.COMPLETED
    (changed,) = resumed.records
    assert changed.stage == "escalated"
    assert {type(event).__name__ for event in resumed.events} == {"StageChanged", "Escalated"}
    assert engine.run_due(datetime(2026, 3, 10, tzinfo=UTC)).traces == ()


def test_branches_choose_then_or_else_on_the_current_record():
    flow = workflow(
        steps=[
            {
                "if": {"field": "channel", "op": "eq", "value": "phone"},
                "then": [{"action": "add_tag", "params": {"tag": "called"}}],
                "else": [{"action": "add_tag", "params": {"tag": "written"}}],
            },
            {"action": "add_tag", "params": {"tag": "seen"}},
        ]
    )
    engine = WorkflowEngine([flow])
    ticket = urgent_ticket(channel="email")
    result = engine.handle(created(ticket), record=ticket, now=T0)
    assert [step.path for step in result.traces[0].steps] == ["steps[0]", "steps[0].else[0]", "steps[1]"]
    assert result.records[0].tags == frozenset({"written", "seen"})


def test_a_replayed_event_does_not_run_the_workflow_twice():
    engine = WorkflowEngine([workflow(reenrolment={"policy": "every_time"})])
    ticket = urgent_ticket()
    event = created(ticket)
    engine.handle(event, record=ticket, now=T0)
    (again,) = engine.handle(event, record=ticket, now=T0).traces
    assert again.status is RunStatus.NOT_STARTED
    assert "already handled" in again.reason


@pytest.mark.parametrize(
    ("policy", "second_starts", "third_starts"),
    [
        ({"policy": "once"}, False, False),
        ({"policy": "every_time"}, True, True),
        ({"policy": "cooldown", "cooldown": "P1D"}, False, True),
    ],
)
def test_re_enrolment_follows_the_policy(policy, second_starts, third_starts):
    engine = WorkflowEngine([workflow(reenrolment=policy)])
    ticket = urgent_ticket()
    starts = []
    for hours in (0, 1, 30):
        moment = T0 + timedelta(hours=hours)
        (trace,) = engine.handle(created(ticket, moment), record=ticket, now=moment).traces
        starts.append(trace.status is not RunStatus.NOT_STARTED)
    assert starts == [True, second_starts, third_starts]


def test_the_loop_guard_stops_a_workflow_restarting_on_its_own_changes():
    flow = Workflow.from_json(
        {
            "name": "bump",
            "entity": "ticket",
            "trigger": {"type": "field_changed", "field": "tags"},
            "reenrolment": {"policy": "every_time"},
            "steps": [{"action": "add_tag", "params": {"tag": "bumped"}}],
        }
    )
    engine = WorkflowEngine([flow])
    ticket = urgent_ticket()
    event = EntityUpdated(entity=EntityRef.to(ticket), changed=("tags",), at=T0)
    result = engine.handle(event, record=ticket, now=T0)
    statuses = [(trace.status, trace.reason) for trace in result.traces]
    assert statuses == [
        (RunStatus.COMPLETED, None),
        (RunStatus.NOT_STARTED, "loop guard: the event was caused by this workflow's own run"),
    ]


def test_a_dry_run_decides_and_traces_but_changes_nothing():
    channel = RecordingChannel()
    flow = workflow(
        entity="contact",
        conditions=None,
        steps=[
            {"action": "add_tag", "params": {"tag": "x"}},
            {"action": "send_message", "params": {"channel": "email", "body": "Hi {first_name}"}},
        ],
    )
    state = MemoryState()
    engine = WorkflowEngine([flow], services=Services(channels={"email": channel}), state=state)
    contact = Contact(first_name="Ada", email="ada@example.com", created_at=T0)
    result = engine.handle(created(contact), record=contact, now=T0, dry_run=True)
    (trace,) = result.traces
    assert trace.status is RunStatus.DRY_RUN
    assert [step.outcome for step in trace.steps] == ["would_run", "would_run"]
    assert result.records == ()
    assert channel.messages == []
    assert list(state.scan("workflow.enrolled")) == []
    real = engine.handle(created(contact), record=contact, now=T0)
    assert real.traces[0].status is RunStatus.COMPLETED
    assert channel.messages[0].body == "Hi Ada"


@attrs.frozen
class FlakyParams:
    """Parameters of the test action that fails."""

    failures: int


FAILURES: dict[str, int] = {}


def _flaky(context, params):
    seen = FAILURES.get(context.key, 0)
    if seen < params.failures:
        FAILURES[context.key] = seen + 1
        msg = f"mail server down ({seen + 1})"
        raise ConnectionError(msg)
    return ActionOutcome(detail="sent at last")


register_action("test.flaky", FlakyParams, _flaky, replace=True)


def test_a_failing_action_is_retried_with_back_off_then_succeeds():
    FAILURES.clear()
    flow = workflow(
        steps=[
            {"action": "test.flaky", "params": {"failures": 2}},
            {"action": "add_tag", "params": {"tag": "after"}},
        ]
    )
    engine = WorkflowEngine([flow], retry=RetryPolicy(attempts=3, first_delay=timedelta(minutes=1), factor=5))
    ticket = urgent_ticket()
    first = engine.handle(created(ticket), record=ticket, now=T0).traces[0]
    assert first.status is RunStatus.RETRYING
    assert "retry 2 at 2026-03-02T09:01:00+00:00" in first.steps[0].detail
    second = engine.run_due(T0 + timedelta(minutes=1)).traces[0]
    assert "retry 3 at 2026-03-02T09:06:00+00:00" in second.steps[0].detail
    third = engine.run_due(T0 + timedelta(minutes=6))
    assert third.traces[0].status is RunStatus.COMPLETED
    assert third.records[0].tags == frozenset({"after"})


def test_an_action_that_keeps_failing_is_parked_without_blocking_other_runs():
    FAILURES.clear()
    broken = workflow("broken", steps=[{"action": "test.flaky", "params": {"failures": 99}}])
    healthy = workflow("healthy")
    engine = WorkflowEngine(
        [broken, healthy], retry=RetryPolicy(attempts=2, first_delay=timedelta(minutes=1))
    )
    ticket = urgent_ticket()
    result = engine.handle(created(ticket), record=ticket, now=T0)
    by_name = {trace.workflow: trace.status for trace in result.traces}
    assert by_name == {"broken": RunStatus.RETRYING, "healthy": RunStatus.COMPLETED}
    parked = engine.run_due(T0 + timedelta(minutes=1)).traces[0]
    assert parked.status is RunStatus.PARKED
    (entry,) = engine.parked()
    assert entry["error"] == "ConnectionError: mail server down (2)"
    assert entry["attempts"] == 2
    assert engine.run_due(T0 + timedelta(days=1)).traces == ()


def test_assign_routes_through_the_router_the_host_gives():
    flow = workflow(steps=[{"action": "assign", "params": {"router": "support"}}])
    seen = []

    def router(context):
        seen.append((context.record.id, context.now))
        return "agent-7"

    engine = WorkflowEngine([flow], services=Services(routers={"support": router}))
    ticket = urgent_ticket()
    result = engine.handle(created(ticket), record=ticket, now=T0)
    assert result.records[0].owner_id == "agent-7"
    assert result.events[0].owner_id == "agent-7"
    assert seen == [(ticket.id, T0)]


def test_assign_routes_leads_through_the_lead_routing_rules_with_their_turns_in_the_state():
    from crmkit.entities import User  # noqa: PLC0415 - only this test needs the lead engine
    from crmkit.leads import Assign, Directory, Router, RoutingRule, RoutingRules  # noqa: PLC0415

    users = [User(id=f"rep{i}", name=f"Rep {i}", email=f"rep{i}@example.com") for i in (1, 2)]
    everyone = RoutingRule(
        name="everyone",
        condition={"field": "email", "op": "exists"},
        action=Assign(strategy="round_robin", users=["rep1", "rep2"]),
    )
    rules = RoutingRules(rules=[everyone])
    lead_router = Router(rules, Directory(users=users))
    flow = Workflow.from_json(
        {
            "name": "route-new-leads",
            "entity": "lead",
            "trigger": {"type": "event", "event": "entity_created"},
            "steps": [{"action": "assign", "params": {"router": "sales"}}],
        }
    )

    def route(context):
        return lead_router.route(context.record, state=context.services.state, at=context.now)

    state = MemoryState()
    engine = WorkflowEngine([flow], services=Services(routers={"sales": route}), state=state)
    owners = []
    for index in range(3):
        lead = Lead(email=f"buyer{index}@example.com", created_at=T0)
        result = engine.handle(created(lead), record=lead, now=T0)
        owners.append(result.records[0].owner_id)
        assert result.events[0].reason.startswith("router sales: ")
    assert owners == ["rep1", "rep2", "rep1"]


def test_an_sla_breach_escalates_the_ticket_through_a_workflow():
    policy = SlaPolicy("support", CALENDAR, [SlaTarget("first_response", "PT1H")])
    escalation = Workflow.from_json(
        {
            "name": "escalate-late",
            "entity": "ticket",
            "trigger": {"type": "event", "event": "sla_breached"},
            "event_conditions": {"field": "metric", "op": "eq", "value": "first_response"},
            "steps": [
                {
                    "action": "escalate",
                    "params": {"level": "manager", "owner_id": "manager-1", "transition": "escalate"},
                }
            ],
        }
    )
    engine = WorkflowEngine([escalation])
    ticket = urgent_ticket()
    report = policy.evaluate(ticket, now=T0 + timedelta(hours=2))
    (breach,) = report.events
    result = engine.handle(breach, record=ticket, now=T0 + timedelta(hours=2))
    (changed,) = result.records
    assert (changed.stage, changed.owner_id) == ("escalated", "manager-1")


def test_tick_starts_no_activity_workflows_once_per_quiet_spell():
    flow = Workflow.from_json(
        {
            "name": "stale-tickets",
            "entity": "ticket",
            "trigger": {"type": "no_activity", "period": "P3D"},
            "reenrolment": {"policy": "every_time"},
            "steps": [{"action": "create_reminder", "params": {"title": "Nudge {subject}"}}],
        }
    )
    engine = WorkflowEngine([flow])
    quiet = urgent_ticket()
    busy = urgent_ticket(updated_at=T0 + timedelta(days=3))
    result = engine.tick([quiet, busy], T0 + timedelta(days=4))
    assert [trace.record.id for trace in result.traces] == [quiet.id]
    assert result.created[0].title == "Nudge Site down"
    assert "reminder" in result.created[0].tags
    assert engine.tick([quiet, busy], T0 + timedelta(days=5)).started == ()


def test_tick_starts_schedule_workflows_at_each_occurrence():
    flow = Workflow.from_json(
        {
            "name": "monday-review",
            "entity": "ticket",
            "trigger": {"type": "schedule", "rule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8;BYMINUTE=0"},
            "reenrolment": {"policy": "every_time"},
            "steps": [{"action": "add_tag", "params": {"tag": "reviewed"}}],
        }
    )
    engine = WorkflowEngine([flow])
    ticket = urgent_ticket()
    sunday = datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert engine.tick([ticket], sunday).traces == ()  # the first tick remembers the time
    assert engine.tick([ticket], sunday + timedelta(hours=19)).traces == ()  # Monday 07:00
    fired = engine.tick([ticket], sunday + timedelta(hours=21))  # Monday 09:00
    assert [trace.status for trace in fired.traces] == [RunStatus.COMPLETED]
    assert engine.tick([ticket], sunday + timedelta(hours=22)).traces == ()


# -- a real store: nothing lost and nothing twice across a restart ------------------------------------------


def test_delayed_steps_survive_a_restart_and_run_once_with_a_sqlite_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'crm.db'}")
    channel = RecordingChannel()
    flow = Workflow.from_json(
        {
            "name": "welcome",
            "entity": "contact",
            "trigger": {"type": "event", "event": "entity_created"},
            "steps": [
                {"wait": {"days": 1}},
                {
                    "action": "send_message",
                    "params": {"channel": "email", "subject": "Welcome", "body": "Hello {first_name}"},
                },
                {"action": "add_tag", "params": {"tag": "welcomed"}},
            ],
        }
    )
    first = WorkflowEngine([flow], services=Services(channels={"email": channel}))
    with store.transaction() as tx:
        contact = tx[Contact].add(Contact(first_name="Ada", email="ada@example.com", created_at=T0))
        result = first.handle(created(contact), record=contact, now=T0, state=tx.state)
        assert result.traces[0].status is RunStatus.WAITING
        tx.commit()
    del first  # the process "restarts": a new engine, with nothing in memory

    later = T0 + timedelta(days=1, minutes=5)
    second = WorkflowEngine([flow], services=Services(channels={"email": channel}))
    # A worker that crashes before committing changes nothing in the store; the message it may have sent
    # carries the step's idempotency key, which a channel (the recording one here) delivers once.
    with store.transaction() as tx:
        second.run_due(later, state=tx.state)
    with store.transaction() as tx:
        resumed = second.run_due(later, state=tx.state)
        assert resumed.traces[0].status is RunStatus.COMPLETED
        for record in resumed.records:
            tx[Contact].update(record)
        tx.commit()
    third = WorkflowEngine([flow], services=Services(channels={"email": channel}))
    with store.transaction() as tx:
        assert third.run_due(later + timedelta(days=1), state=tx.state).traces == ()
        assert tx[Contact].get(contact.id).tags == frozenset({"welcomed"})
        tx.commit()
    assert [message.body for message in channel.messages] == ["Hello Ada"]
    store.close()


def test_the_same_step_is_never_run_twice_with_the_memory_store():
    store = open_store("memory://")
    flow = workflow(
        steps=[{"action": "add_tag", "params": {"tag": "once"}}], reenrolment={"policy": "every_time"}
    )
    ticket = urgent_ticket()
    event = created(ticket)
    for _ in range(2):
        engine = WorkflowEngine([flow])
        with store.transaction() as tx:
            result = engine.handle(event, record=ticket, now=T0, state=tx.state)
            tx.commit()
    assert result.records == ()
    assert "already handled" in result.traces[0].reason


@settings(max_examples=30, deadline=None)
@given(hours=st.lists(st.integers(0, 400), min_size=1, max_size=6))
def test_run_due_at_any_sequence_of_times_runs_every_step_exactly_once(hours):
    counted: list[str] = []
    register_action(
        "test.count",
        FlakyParams,
        lambda context, _params: counted.append(context.key) or ActionOutcome(),
        replace=True,
    )
    flow = workflow(
        steps=[
            {"action": "test.count", "params": {"failures": 0}},
            {"wait": {"business_hours": 8}},
            {"action": "test.count", "params": {"failures": 0}},
            {"wait": {"hours": 30}},
            {"action": "test.count", "params": {"failures": 0}},
        ]
    )
    state = MemoryState()
    ticket = urgent_ticket()
    WorkflowEngine([flow], state=state).handle(created(ticket), record=ticket, now=T0)
    for hour in sorted(hours):
        WorkflowEngine([flow], state=state).run_due(T0 + timedelta(hours=hour))
    WorkflowEngine([flow], state=state).run_due(T0 + timedelta(days=30))
    WorkflowEngine([flow], state=state).run_due(T0 + timedelta(days=60))
    assert len(counted) == len(set(counted)) == 3


def test_a_delay_at_the_end_of_a_workflow_completes_the_run():
    engine = WorkflowEngine(
        [workflow(steps=[{"action": "add_tag", "params": {"tag": "x"}}, {"wait": {"hours": 2}}])]
    )
    ticket = urgent_ticket()
    (trace,) = engine.handle(created(ticket), record=ticket, now=T0).traces
    assert trace.status is RunStatus.COMPLETED
    assert trace.steps[-1].outcome == "skipped"


def test_the_other_built_in_actions_change_the_record_and_say_what_they_did():
    from crmkit.workflows import register_callback  # noqa: PLC0415 - only this test registers one

    calls = []
    register_callback(
        "test.audit", lambda context, data: calls.append((context.record.id, data)) or "logged", replace=True
    )
    flow = workflow(
        custom_fields={"tier": "text"},
        steps=[
            {"action": "set_field", "params": {"field": "priority", "value": "high"}},
            {"action": "set_field", "params": {"field": "custom_fields.tier", "value": "gold"}},
            {"action": "transition_stage", "params": {"transition": "accept"}},
            {"action": "transition_stage", "params": {"transition": "close"}},
            {"action": "create_activity", "params": {"subject": "Auto-accepted {subject}"}},
            {
                "action": "create_task",
                "params": {"title": "Follow up", "due_in": "PT4H", "business_time": True},
            },
            {"action": "callback", "params": {"name": "test.audit", "data": {"n": 1}}},
        ],
    )
    engine = WorkflowEngine([flow])
    ticket = urgent_ticket(created_at=datetime(2026, 3, 6, 15, tzinfo=UTC))
    result = engine.handle(created(ticket, ticket.created_at), record=ticket, now=ticket.created_at)
    outcomes = [(step.outcome, step.detail) for step in result.traces[0].steps]
    assert outcomes[0] == ("done", "priority = 'high'")
    assert outcomes[2] == ("done", "new -> open")
    assert outcomes[3] == ("skipped", "'close' is not allowed from stage 'open'")
    assert outcomes[6] == ("done", "callback test.audit returned 'logged'")
    (changed,) = result.records
    assert (changed.priority, changed.custom_fields, changed.stage) == ("high", {"tier": "gold"}, "open")
    activity, task = result.created
    assert activity.subject == "Auto-accepted Site down"
    assert activity.regarding == EntityRef.to(ticket)
    assert task.due_at == datetime(2026, 3, 9, 11, tzinfo=UTC)  # 4 business hours from Friday 15:00
    assert calls == [(ticket.id, {"n": 1})]
