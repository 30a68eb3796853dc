"""The storage fast paths: rows read back with type checks only, lean audit rows, stored times."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit.entities import ENTITY_TYPES, Contact, EntityRef, Lead, Opportunity
from crmkit.errors import ValidationError
from crmkit.events import EntityCreated, event_from_data, event_to_data
from crmkit.serialization import from_data, from_stored, to_data
from crmkit.storage._sql import audit_json, utc_text
from crmkit.testing import entities

ANY_ENTITY = st.sampled_from(sorted(ENTITY_TYPES)).flatmap(entities)


@given(ANY_ENTITY)
def test_a_stored_record_reads_back_equal_through_both_paths(record):
    data = to_data(record)
    stored = from_stored(type(record), data)
    assert stored == from_data(type(record), data) == record
    assert type(stored) is type(record)
    assert to_data(stored) == data


@given(ANY_ENTITY)
def test_a_record_read_back_is_immutable_like_any_other(record):
    stored = from_stored(type(record), to_data(record))
    with pytest.raises(AttributeError):
        stored.id = "other"  # type: ignore[misc]
    assert hash(stored.id)


def test_wrong_types_are_still_refused_with_their_paths():
    data = to_data(Lead(email="ada@example.com"))
    data["score"] = "a lot"
    data["created_at"] = "2026-01-01T00:00:00"  # naive
    with pytest.raises(ValidationError) as caught:
        from_stored(Lead, data)
    assert set(caught.value.paths) == {"score", "created_at"}


def test_rules_are_not_run_again_on_stored_values():
    # A value the rules would normalise is kept as stored: the store only holds what passed them.
    data = to_data(Contact(email="ada@example.com"))
    data["email"] = "Ada@Example.COM"
    assert from_stored(Contact, data).email == "Ada@Example.COM"
    assert from_data(Contact, data).email == "ada@example.com"


def test_a_row_missing_a_key_goes_through_the_full_constructor():
    data = to_data(Opportunity(name="Deal", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    del data["tags"]
    assert from_stored(Opportunity, data).tags == frozenset()


# Hypothesis takes naive bounds; the timezones make every drawn value aware.
EARLIEST = datetime(1000, 1, 1)  # noqa: DTZ001


@given(
    at=st.datetimes(min_value=EARLIEST, timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))])),
    actor=st.none() | st.text(alphabet='ab-1é"\\/😀', min_size=1, max_size=8),
    kind=st.sampled_from(sorted(ENTITY_TYPES)),
)
def test_audit_rows_of_new_records_carry_what_the_converter_writes(at, actor, kind):
    event = EntityCreated(entity=EntityRef(kind, "rec-1"), at=at, actor=actor)
    assert json.loads(audit_json(event)) == event_to_data(event)
    assert event_from_data(json.loads(audit_json(event))) == event


@given(st.datetimes(min_value=EARLIEST, timezones=st.timezones()))
def test_stored_times_are_fixed_width_utc_text_that_sorts_as_the_instants(moment):
    text = utc_text(moment)
    assert text == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert len(text) == 26
