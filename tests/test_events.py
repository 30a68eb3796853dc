import json
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit.clock import FixedClock, use_clock
from crmkit.entities import EntityRef
from crmkit.errors import ValidationError
from crmkit.events import (
    EVENT_TYPES,
    Assigned,
    DomainEvent,
    EntityCreated,
    EntityDeleted,
    EntityUpdated,
    EventBus,
    StageChanged,
    event_from_data,
    event_to_data,
    register_event,
)
from crmkit.testing import aware_datetimes, entity_refs

AT = datetime(2026, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-3)))
LEAD = EntityRef("lead", "l1")


def test_events_take_their_time_from_the_current_clock():
    with use_clock(FixedClock(AT)):
        event = EntityCreated(entity=LEAD)
    assert event.at == AT
    assert event.name == "entity_created"
    assert len(event.id) == 32


def test_events_are_validated_and_report_every_problem():
    with pytest.raises(ValidationError) as caught:
        StageChanged(entity=LEAD, to_stage="", at=datetime(2026, 1, 1), actor="has space")  # noqa: DTZ001
    assert set(caught.value.paths) == {"to_stage", "at", "actor"}
    with pytest.raises(ValidationError) as caught:
        EntityCreated(entity=("lead", "l1"))  # type: ignore[arg-type]
    assert caught.value.paths == ("entity",)


def test_every_built_in_event_is_registered_by_its_name():
    for cls in (EntityCreated, EntityUpdated, EntityDeleted, StageChanged, Assigned):
        assert EVENT_TYPES[cls.name] is cls


EVENTS = st.one_of(
    st.builds(EntityCreated, entity=entity_refs(), at=aware_datetimes()),
    st.builds(EntityUpdated, entity=entity_refs(), at=aware_datetimes(),
              changed=st.lists(st.sampled_from(["email", "stage", "owner_id"]), unique=True).map(tuple)),
    st.builds(EntityDeleted, entity=entity_refs(), at=aware_datetimes(), actor=st.sampled_from([None, "u1"])),
    st.builds(StageChanged, entity=entity_refs(), at=aware_datetimes(), from_stage=st.sampled_from([None, "new"]),
              to_stage=st.sampled_from(["contacted", "won"]), transition=st.sampled_from([None, "qualify"]),
              lifecycle=st.sampled_from([None, "lead"])),
    st.builds(Assigned, entity=entity_refs(), at=aware_datetimes(), owner_id=st.sampled_from([None, "u2"]),
              previous_owner_id=st.sampled_from([None, "u1"]), reason=st.sampled_from([None, "rule: enterprise"])),
)


@given(EVENTS)
def test_every_event_round_trips_through_json(event):
    data = json.loads(json.dumps(event_to_data(event)))
    assert data["type"] == event.name
    assert event_from_data(data) == event


def test_event_data_has_the_documented_form():
    event = StageChanged(entity=LEAD, at=AT, from_stage="new", to_stage="contacted", id="e1")
    assert event_to_data(event) == {
        "type": "stage_changed",
        "entity": {"kind": "lead", "id": "l1"},
        "at": "2026-02-03T04:05:00-03:00",
        "actor": None,
        "id": "e1",
        "from_stage": "new",
        "to_stage": "contacted",
        "transition": None,
        "lifecycle": None,
    }


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"type": "teleported", "entity": {"kind": "lead", "id": "l1"}}, "type"),
        ({"entity": {"kind": "lead", "id": "l1"}}, "type"),
        ({"type": "entity_created", "entity": {"kind": "planet", "id": "l1"}, "at": AT.isoformat(), "id": "e"}, "entity.kind"),
        ({"type": "entity_created", "entity": {"kind": "lead", "id": "l1"}, "at": "yesterday", "id": "e"}, "at"),
        ("not an object", ""),
    ],
)
def test_bad_event_data_is_a_validation_error_naming_the_path(data, path):
    with pytest.raises(ValidationError) as caught:
        event_from_data(data)
    assert path in caught.value.paths


def test_other_projects_register_their_own_events():
    @register_event("test_quote_viewed")
    @attrs.frozen(kw_only=True)
    class QuoteViewed(DomainEvent):
        """A prospect opened a quote."""

        seconds: int = 0

    event = QuoteViewed(entity=EntityRef("quote", "q1"), at=AT, seconds=42)
    assert event_from_data(event_to_data(event)) == event
    with pytest.raises(ValidationError, match="already used"):
        register_event("test_quote_viewed")(EntityCreated)
    with pytest.raises(ValidationError, match="not a DomainEvent"):
        register_event("test_not_an_event")(int)  # type: ignore[type-var]


def test_the_bus_delivers_to_matching_handlers_in_subscription_order():
    bus = EventBus()
    seen: list[tuple[str, str]] = []
    bus.subscribe(StageChanged, lambda e: seen.append(("stage", e.to_stage)))
    bus.subscribe(DomainEvent, lambda e: seen.append(("any", e.name)))
    bus.publish(
        EntityCreated(entity=LEAD, at=AT),
        StageChanged(entity=LEAD, at=AT, to_stage="contacted"),
    )
    assert seen == [("any", "entity_created"), ("stage", "contacted"), ("any", "stage_changed")]


def test_unsubscribing_stops_delivery_and_handler_errors_propagate():
    bus = EventBus()
    seen: list[DomainEvent] = []
    cancel = bus.subscribe(EntityCreated, seen.append)
    cancel()
    cancel()  # idempotent
    bus.publish(EntityCreated(entity=LEAD, at=AT))
    assert seen == []

    def fail(_event):
        raise RuntimeError("handler failed")

    bus.subscribe(EntityCreated, fail)
    with pytest.raises(RuntimeError, match="handler failed"):
        bus.publish(EntityCreated(entity=LEAD, at=AT))
    with pytest.raises(ValidationError):
        bus.subscribe(dict, print)  # type: ignore[arg-type]


def test_event_times_keep_their_offset_but_compare_as_instants():
    utc_event = EntityCreated(entity=LEAD, at=AT.astimezone(UTC), id="e1")
    assert utc_event.at == AT
