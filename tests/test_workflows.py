"""Workflow definitions as data: JSON round trips, the action registry, and errors that point at the node."""

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.conditions import field
from crmkit.errors import RuleError
from crmkit.workflows import (
    ACTION_ENTRY_POINTS,
    ActionOutcome,
    ActionSpec,
    ActionStep,
    AddTagParams,
    Branch,
    BusinessCalendar,
    ConditionSpec,
    Delay,
    Reenrolment,
    Template,
    Trigger,
    Workflow,
    _registry,
    register_action,
    register_callback,
    register_condition,
    registered_actions,
    registered_conditions,
)

CALENDAR = BusinessCalendar.office_hours("Europe/London")


def ticket_workflow(**changes):
    data = {
        "name": "late-first-response",
        "entity": "ticket",
        "trigger": {"type": "event", "event": "sla_breached"},
        "event_conditions": {"field": "metric", "op": "eq", "value": "first_response"},
        "conditions": {"field": "priority", "op": "in", "value": ["high", "urgent"]},
        "calendar": CALENDAR.to_json(),
        "steps": [
            {"action": "escalate", "params": {"level": "second_line", "transition": "escalate"}},
            {"wait": {"business_days": 2}},
            {
                "if": {"field": "stage", "op": "eq", "value": "escalated"},
                "then": [{"action": "create_task", "params": {"title": "Chase {subject}", "due_in": "PT4H"}}],
                "else": [{"action": "add_tag", "params": {"tag": "recovered"}}],
            },
        ],
        "reenrolment": {"policy": "cooldown", "cooldown": "P7D"},
    }
    data.update(changes)
    return data


def test_a_workflow_round_trips_through_json_text():
    workflow = Workflow.from_json(ticket_workflow())
    text = json.dumps(workflow.to_json())
    assert Workflow.from_json(json.loads(text)) == workflow
    assert workflow.to_json()["steps"][1] == {"wait": {"business_days": 2}}


def test_a_workflow_built_in_python_equals_the_one_read_from_json():
    built = Workflow(
        "late-first-response",
        "ticket",
        Trigger.on_event("sla_breached"),
        [
            ActionStep("escalate", {"level": "second_line", "transition": "escalate"}),
            Delay(2, "business_days"),
            Branch(
                field("stage").eq("escalated"),
                then=[ActionStep("create_task", {"title": "Chase {subject}", "due_in": "PT4H"})],
                else_=[ActionStep("add_tag", AddTagParams(tag="recovered"))],
            ),
        ],
        conditions=field("priority").in_(["high", "urgent"]),
        event_conditions=field("metric").eq("first_response"),
        calendar=CALENDAR,
        reenrolment=Reenrolment("cooldown", "P7D"),
    )
    assert built == Workflow.from_json(ticket_workflow())


def test_parameters_are_read_into_their_typed_class():
    workflow = Workflow.from_json(ticket_workflow())
    step = workflow.step_at("steps[2].else[0]")
    assert step.params == AddTagParams(tag="recovered")


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"trigger": {"type": "sometimes"}}, "trigger.type"),
        ({"trigger": {"type": "event", "event": "ticket_exploded"}}, "trigger.event"),
        ({"trigger": {"type": "field_changed", "field": "colour"}}, "trigger.field"),
        ({"trigger": {"type": "no_activity", "period": "-P1D"}}, "trigger.period"),
        ({"trigger": {"type": "no_activity", "period": "P1M"}}, "trigger.period"),
        ({"trigger": {"type": "no_activity", "period": "soon"}}, "trigger.period"),
        ({"trigger": {"type": "schedule", "rule": "FREQ=NEVER"}}, "trigger.rule"),
        ({"entity": "spaceship"}, "entity"),
        ({"conditions": {"field": "colour", "op": "eq", "value": "red"}}, "conditions.field"),
        ({"event_conditions": {"field": "metric", "op": "gt", "value": 3}}, "event_conditions.value"),
        ({"steps": []}, "steps"),
        ({"steps": [{"action": "teleport"}]}, "steps[0].action"),
        ({"steps": [{"action": "add_tag", "params": {"tag": 5}}]}, "steps[0].params.tag"),
        ({"steps": [{"action": "add_tag", "params": {"tag": "x", "label": "x"}}]}, "steps[0].params.label"),
        ({"steps": [{"action": "add_tag"}]}, "steps[0].params.tag"),
        ({"steps": [{"wait": {"days": -2}}]}, "steps[0].wait.amount"),
        ({"steps": [{"wait": {"days": 100000}}]}, "steps[0].wait.amount"),
        ({"steps": [{"wait": {"fortnights": 1}}]}, "steps[0].wait.unit"),
        ({"steps": [{"wait": {"business_days": 1}}], "calendar": None}, "steps[0].wait"),
        (
            {"steps": [{"action": "set_field", "params": {"field": "colour", "value": 1}}]},
            "steps[0].params.field",
        ),
        (
            {"steps": [{"action": "set_field", "params": {"field": "priority", "value": "asap"}}]},
            "steps[0].params.value",
        ),
        (
            {"steps": [{"action": "create_task", "params": {"title": "Call {nickname}"}}]},
            "steps[0].params.title",
        ),
        (
            {"steps": [{"action": "transition_stage", "params": {"transition": "fly"}}]},
            "steps[0].params.transition",
        ),
        (
            {"steps": [{"action": "callback", "params": {"name": "nobody_registered_this"}}]},
            "steps[0].params.name",
        ),
        (
            {"steps": [{"if": {"field": "stage", "op": "eq", "value": "x"}, "then": [{"action": "nope"}]}]},
            "steps[0].then[0].action",
        ),
        ({"steps": [{"if": {"check": "unknown_check"}, "then": []}]}, "steps[0].if.check"),
        ({"reenrolment": {"policy": "cooldown"}}, "reenrolment.cooldown"),
        ({"reenrolment": {"policy": "sometimes"}}, "reenrolment.policy"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_workflows_are_rule_errors_pointing_at_the_node(changes, path):
    data = ticket_workflow(**changes)
    data = {key: value for key, value in data.items() if value is not None}
    if changes.get("trigger", {}).get("type") not in {None, "event"}:
        data.pop("event_conditions", None)
    with pytest.raises(RuleError) as caught:
        Workflow.from_json(data)
    assert caught.value.path == path


def test_a_message_template_naming_an_unknown_recipient_field_is_refused():
    data = ticket_workflow(
        steps=[
            {
                "action": "send_message",
                "params": {"channel": "email", "to": "contact_id", "body": "Hi {recipient.nickname}"},
            }
        ]
    )
    with pytest.raises(RuleError) as caught:
        Workflow.from_json(data)
    assert caught.value.path == "steps[0].params.body"
    assert "recipient.first_name" in caught.value.message


def test_a_message_to_the_record_needs_a_person_workflow():
    data = ticket_workflow(steps=[{"action": "send_message", "params": {"channel": "email", "body": "Hi"}}])
    with pytest.raises(RuleError) as caught:
        Workflow.from_json(data)
    assert caught.value.path == "steps[0].params.to"


def test_templates_fill_fields_and_keep_escaped_braces():
    workflow = Workflow.from_json(ticket_workflow())
    template = Template("{{ref}} {subject} ({priority})")
    assert template.fields == ("subject", "priority")

    @attrs.frozen
    class Record:
        subject: str
        priority: str

    rendered = template.render({"": (workflow.schema, Record("Printer", "high"))})
    assert rendered == "{ref} Printer (high)"


def test_a_template_placeholder_must_be_a_field_name():
    with pytest.raises(RuleError):
        Template("{first name!r}")
    workflow = Workflow.from_json(ticket_workflow())
    with pytest.raises(RuleError):
        Template("{__class__.__init__}").check({"": workflow.schema})


# -- the registry ---------------------------------------------------------------------------------------


@attrs.frozen
class StampParams:
    """Test action parameters."""

    stamp: str
    times: int = 1


def _stamp(context, params):
    return ActionOutcome(detail=f"{params.stamp} x{params.times} on {context.record.id}")


def test_hosts_register_actions_with_typed_parameters():
    register_action("test.stamp", StampParams, _stamp, replace=True)
    assert "test.stamp" in registered_actions()
    data = ticket_workflow(steps=[{"action": "test.stamp", "params": {"stamp": "ok", "times": 2}}])
    assert Workflow.from_json(data).steps[0].params == StampParams(stamp="ok", times=2)
    bad = ticket_workflow(steps=[{"action": "test.stamp", "params": {"stamp": "ok", "times": "two"}}])
    with pytest.raises(RuleError) as caught:
        Workflow.from_json(bad)
    assert caught.value.path == "steps[0].params.times"


def test_a_name_cannot_be_registered_twice_by_accident():
    register_action("test.once", StampParams, _stamp, replace=True)
    with pytest.raises(RuleError):
        register_action("test.once", StampParams, lambda _context, _params: ActionOutcome())


def test_registered_conditions_and_callbacks_are_usable_in_workflows():
    register_condition("test.always", StampParams, lambda _record, _event, _params: True, replace=True)
    register_callback("test.ping", lambda _context, _data: "pong", replace=True)
    data = ticket_workflow(
        checks=[{"check": "test.always", "params": {"stamp": "s"}}],
        steps=[{"action": "callback", "params": {"name": "test.ping", "data": {"n": 1}}}],
    )
    workflow = Workflow.from_json(data)
    assert Workflow.from_json(workflow.to_json()) == workflow


def test_actions_declared_as_entry_points_are_loaded(monkeypatch):
    spec = ActionSpec("test.from_plugin", StampParams, _stamp, description="from a plugin")

    class Point:
        name = "plugin"

        def load(self):
            return spec

    class ConditionPoint:
        name = "plugin-checks"

        def load(self):
            return lambda: [ConditionSpec("test.plugin_check", StampParams, lambda _r, _e, _p: True)]

    def entry_points(group):
        return [Point()] if group == ACTION_ENTRY_POINTS else [ConditionPoint()]

    monkeypatch.setattr(_registry, "entry_points", entry_points)
    monkeypatch.setitem(_registry._LOADED, "entry_points", False)  # force a reload
    assert "test.from_plugin" in registered_actions()
    assert "test.plugin_check" in registered_conditions()


# -- properties ---------------------------------------------------------------------------------------------

tags = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
leaf_steps = st.one_of(
    st.builds(lambda tag: {"action": "add_tag", "params": {"tag": tag}}, tags),
    st.builds(
        lambda n, unit: {"wait": {unit: n}}, st.integers(1, 50), st.sampled_from(["hours", "business_days"])
    ),
    st.builds(lambda tag: {"action": "create_task", "params": {"title": f"{tag} {{subject}}"}}, tags),
)
step_lists = st.recursive(
    st.lists(leaf_steps, min_size=1, max_size=3),
    lambda inner: st.lists(
        st.one_of(
            leaf_steps,
            st.builds(
                lambda stage, then, other: {
                    "if": {"field": "stage", "op": "eq", "value": stage},
                    "then": then,
                    "else": other,
                },
                tags,
                inner,
                inner,
            ),
        ),
        min_size=1,
        max_size=3,
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(steps=step_lists, policy=st.sampled_from(["once", "every_time"]))
def test_any_valid_workflow_round_trips_through_json(steps, policy):
    data = ticket_workflow(steps=steps, reenrolment={"policy": policy})
    workflow = Workflow.from_json(data)
    again = Workflow.from_json(json.loads(json.dumps(workflow.to_json())))
    assert again == workflow
    assert again.to_json() == workflow.to_json()


pieces = st.lists(
    st.one_of(
        st.text(alphabet="abc xyz.,!", min_size=1, max_size=6).map(lambda text: ("text", text)),
        st.sampled_from(["subject", "priority"]).map(lambda name: ("field", name)),
        st.just(("brace", "{{")),
        st.just(("brace", "}}")),
    ),
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(parts=pieces)
def test_templates_render_literals_as_written_and_fields_from_the_record(parts):
    workflow = Workflow.from_json(ticket_workflow())

    @attrs.frozen
    class Record:
        subject: str
        priority: str

    record = Record("Printer", "high")
    text = "".join(f"{{{value}}}" if kind == "field" else value for kind, value in parts)
    expected = "".join(
        getattr(record, value) if kind == "field" else value[0] if kind == "brace" else value
        for kind, value in parts
    )
    template = Template(text)
    template.check({"": workflow.schema})
    assert template.render({"": (workflow.schema, record)}) == expected


def test_a_lone_brace_in_a_template_is_refused():
    with pytest.raises(RuleError):
        Template("50% off {first_name")
    assert Template("{{literal}}").fields == ()
