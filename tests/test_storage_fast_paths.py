"""The storage fast paths: rows read back with type checks only, lean audit rows, stored times."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit.conditions import FieldKind
from crmkit.entities import ENTITY_TYPES, Contact, EntityRef, Lead, Opportunity
from crmkit.errors import ValidationError
from crmkit.events import EntityCreated, event_from_data, event_to_data
from crmkit.serialization import from_data, from_stored, to_data
from crmkit.storage._sql import RowWriter, audit_json, compact_json, layout_of, utc_text, utc_text_of
from crmkit.storage.sqlite import SqliteDialect
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


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


@given(JSON_VALUES)
def test_stored_documents_are_the_compact_json_the_standard_encoder_writes(value):
    assert compact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_a_value_json_cannot_hold_is_refused_as_the_standard_encoder_refuses_it():
    with pytest.raises(TypeError, match="not JSON serializable"):
        compact_json({"when": object()})


@given(st.datetimes(min_value=EARLIEST, timezones=st.timezones() | st.just(UTC)))
def test_the_stored_time_cut_from_the_document_text_is_the_formatted_one(moment):
    assert utc_text_of(moment.isoformat(), moment) == utc_text(moment)


def _dialects():
    found = [SqliteDialect()]
    try:
        from crmkit.storage.postgres import PostgresDialect  # noqa: PLC0415 - optional extra
    except ImportError:  # pragma: no cover - the postgres extra is in the test group
        return found
    return [*found, PostgresDialect()]


@pytest.mark.parametrize("dialect", _dialects(), ids=lambda d: type(d).__name__)
@given(record=ANY_ENTITY, actor=st.none() | st.text(alphabet='ab-1é"\\/', min_size=1, max_size=6))
def test_the_generated_row_writer_writes_what_each_column_and_the_converter_give(dialect, record, actor):
    layout = layout_of(type(record))
    writer = RowWriter(layout, dialect)
    expected = ["t1"]
    for column in writer.columns:
        value = column.derive(record) if column.derive else layout.schema.read(column.field, record)
        expected.append(dialect.to_db(column.kind, value))
    expected.append(compact_json(to_data(record)))
    assert writer.values(record, "t1") == expected
    row, audit = writer.created(record, "t1", actor, "null" if actor is None else json.dumps(actor, ensure_ascii=False))
    assert row == expected
    event = EntityCreated(entity=EntityRef.to(record), at=record.updated_at, actor=actor, id=audit[1])
    assert audit == (
        "t1", event.id, "entity_created", record.kind, record.id,
        dialect.to_db(FieldKind.DATETIME, record.updated_at), actor, audit_json(event),
    )  # fmt: skip


def test_a_record_class_the_compiled_writers_do_not_cover_is_written_through_to_data():
    from typing import ClassVar  # noqa: PLC0415

    import attrs  # noqa: PLC0415

    from crmkit.entities import Entity  # noqa: PLC0415
    from crmkit.serialization import json_with_times  # noqa: PLC0415
    from crmkit.storage._sql import _document_writer  # noqa: PLC0415

    @attrs.frozen(kw_only=True)
    class Visit(Entity):
        kind: ClassVar[str] = "visit_with_converter"
        page: str = attrs.field(default="/", converter=str)  # a converter: not compiled

    with pytest.raises(TypeError):
        json_with_times(Visit, ("updated_at",))
    visit = Visit(page="/pricing", tags={"b", "a"})
    text, updated, tags = _document_writer(Visit, ("updated_at",), ("tags",))(visit)
    assert text == compact_json(to_data(visit))
    assert (updated, tags) == (visit.updated_at.isoformat(), '["a","b"]')


def test_redacting_an_event_document_rewrites_its_texts_only():
    from crmkit.storage._base import redact_event_data  # noqa: PLC0415

    data = {
        "type": "stage_changed",
        "entity": {"kind": "lead", "id": "lead-ann"},
        "at": "2026-10-11T05:00:00+00:00",
        "actor": "ann",
        "id": "ann0",
        "from_stage": "ann",  # a text field: redacted
        "to_stage": "won",
        "transition": None,
    }
    assert redact_event_data(data, ["ann", "lead", "10-11"], "[x]") == {**data, "from_stage": "[x]"}
    unknown = {"type": "somebody_elses", "at": "2026-10-11", "actor": "ann", "note": {"ann": ["ann"]}}
    assert redact_event_data(unknown, ["ann", "10-11"], "[x]") == {**unknown, "note": {"[x]": ["[x]"]}}
