"""The compiled validators, replace, converters and normaliser fast paths agree with their reference paths."""

import inspect
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit import _validation
from crmkit.clock import FixedClock, use_clock
from crmkit.entities import (
    ENTITY_TYPES,
    Contact,
    Lead,
    Opportunity,
    StageChange,
    Ticket,
    _hash_by_identity,
    _new_id,
)
from crmkit.errors import TransitionError, ValidationError
from crmkit.lifecycle import LIFECYCLES
from crmkit.lifecycle._definition import _trusted_record
from crmkit.money import Money
from crmkit.normalize import _normalize_email_fully, normalize_email
from crmkit.serialization import _problems, converter, from_data, to_data
from crmkit.testing import entities


def outcome(function, *args, **kwargs):
    """The result, or the problems raised, so a fast and a slow path can be compared."""
    try:
        return ("ok", function(*args, **kwargs))
    except ValidationError as exc:
        return ("error", exc.problems)


# Emails

LOCAL = st.text(alphabet="abcXYZ09._+-!é@ ", min_size=0, max_size=70)
LABEL = st.text(alphabet="abcXYZ09-ü", min_size=0, max_size=66)
EMAILS = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda local, labels, tail: f"{local}@{'.'.join(labels)}{tail}",
        LOCAL,
        st.lists(LABEL, min_size=1, max_size=5),
        st.sampled_from(["", ".", " ", "\n"]),
    ),
)


@given(EMAILS)
@settings(max_examples=500)
def test_the_email_fast_path_agrees_with_the_full_normaliser(text):
    assert outcome(normalize_email, text) == outcome(_normalize_email_fully, text, "email")


@given(EMAILS)
def test_canonical_emails_stay_idempotent(text):
    first = outcome(normalize_email, text)
    if first[0] == "ok":
        assert normalize_email(first[1]) == first[1]


def test_no_letter_or_digit_is_whitespace_so_the_identifier_fast_path_is_sound():
    whitespace = re.compile(r"\s")
    assert not [c for c in map(chr, range(sys.maxunicode + 1)) if c.isalnum() and whitespace.search(c)]


def test_new_ids_are_uuid4_hex():
    for _ in range(1000):
        value = _new_id()
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


# Compiled validators against the plan


class Unusable:
    """A value no field accepts."""


def field_values(record):
    return {field.name: getattr(record, field.name) for field in attrs.fields(type(record))}


def unvalidated(cls, values):
    instance = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(instance, name, value)
    return instance


def validated_both_ways(cls, values):
    fast, slow = unvalidated(cls, values), unvalidated(cls, values)
    results = outcome(_validation.validate, fast), outcome(_validation._validate_by_plan, slow)
    return results, field_values(fast), field_values(slow)


@pytest.mark.parametrize("kind", sorted(ENTITY_TYPES))
def test_the_compiled_validator_agrees_with_the_plan(kind):
    cls = ENTITY_TYPES[kind]

    @given(entities(kind), st.data())
    @settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
    def check(record, data):
        values = field_values(record)
        names = data.draw(st.lists(st.sampled_from(sorted(values)), max_size=3, unique=True))
        for name in names:
            values[name] = data.draw(
                st.sampled_from([None, Unusable(), "", " X ", "ADA@Example.com", -1, (), [], frozenset(), {}])
            )
        (fast, slow), fast_values, slow_values = validated_both_ways(cls, values)
        assert fast == slow
        if fast[0] == "ok":
            assert fast_values == slow_values

    check()


# replace against the reference replace and attrs.evolve


@pytest.mark.parametrize("kind", sorted(ENTITY_TYPES))
def test_replace_agrees_with_the_reference_and_with_evolve(kind):
    @given(entities(kind), entities(kind), st.data())
    @settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
    def check(record, other, data):
        names = sorted(field.name for field in attrs.fields(type(record)) if field.init)
        changed = data.draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
        changes = {name: getattr(other, name) for name in changed}
        fast = outcome(_validation.replace, record, **changes)
        assert fast == outcome(_validation._replace_by_plan, record, **changes)
        evolved = outcome(attrs.evolve, record, **changes)
        assert fast[0] == evolved[0]
        if fast[0] == "ok":
            assert fast[1] == evolved[1]
            assert type(fast[1]) is type(record)
        else:
            assert set(fast[1]) == set(evolved[1])

    check()


def test_replace_checks_only_the_new_stage_history_entries_but_finds_their_problems():
    t1, t2 = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)
    lead = Lead(email="a@example.com", created_at=t1)
    first = StageChange(from_stage="new", to_stage="working", at=t2)
    moved = _validation.replace(lead, stage="working", stage_history=(first,))
    assert moved == attrs.evolve(lead, stage="working", stage_history=(first,))
    back = StageChange(from_stage="working", to_stage="new", at=t1)
    assert outcome(_validation.replace, moved, stage="new", stage_history=(first, back)) == outcome(
        attrs.evolve, moved, stage="new", stage_history=(first, back)
    )
    assert outcome(_validation.replace, moved, stage="lost")[1][0].path == "stage"


def test_replace_names_unknown_fields_and_keeps_the_original():
    lead = Lead(email="a@example.com")
    with pytest.raises(ValidationError) as caught:
        _validation.replace(lead, colour="red", stage="x")
    assert caught.value.paths == ("colour",)
    assert lead.stage == "new"


# Compiled converters against cattrs


@given(entities())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_to_data_agrees_with_the_converter(record):
    assert to_data(record) == converter.unstructure(record)


def cattrs_from_data(cls, data):
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # noqa: BLE001 - every failure becomes problems, as from_data reports them
        raise ValidationError(_problems(exc)) from None


@given(entities(), st.data())
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_from_data_agrees_with_the_converter_on_good_and_bad_data(record, data):
    cls = type(record)
    values = to_data(record)
    for key in data.draw(st.lists(st.sampled_from(sorted(values)), max_size=3, unique=True)):
        change = data.draw(st.sampled_from(["drop", "bad", "null", "extra"]))
        if change == "drop" and key == "id":
            change = "null"  # a dropped id takes a random default, which differs between the two calls
        if change == "drop":
            del values[key]
        elif change == "bad":
            values[key] = data.draw(st.sampled_from([[[{"?": None}]], "x", 1.5, {"a": 1}, [1, "x"], True]))
        elif change == "null":
            values[key] = None
        else:
            values[f"{key}_extra"] = 1
    with use_clock(FixedClock(datetime(2026, 1, 5, tzinfo=UTC))):  # a dropped time takes the same default
        assert outcome(from_data, cls, values) == outcome(cattrs_from_data, cls, values)


# The generated __init__ against attrs' own __init__ followed by the compiled validator


def attrs_init(cls):
    """attrs' generated ``__init__`` of ``cls``, which the fast one replaced."""
    return _validation._ATTRS_INITS[cls]


def built(function, *args, **kwargs):
    try:
        return outcome(function, *args, **kwargs)
    except TypeError as exc:  # a required argument left out
        return ("type error", str(exc))


def built_both_ways(cls, kwargs):
    fast = built(cls, **kwargs)
    slow_instance = object.__new__(cls)
    slow = built(attrs_init(cls), slow_instance, **kwargs)
    if slow[0] == "ok":
        slow = ("ok", slow_instance)
    return fast, slow


@pytest.mark.parametrize("kind", sorted(ENTITY_TYPES))
def test_the_generated_init_agrees_with_attrs_and_the_validator(kind):
    cls = ENTITY_TYPES[kind]

    @given(entities(kind), st.data())
    @settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
    def check(record, data):
        kwargs = field_values(record)
        for name in data.draw(st.lists(st.sampled_from(sorted(kwargs)), max_size=4, unique=True)):
            change = data.draw(st.sampled_from(["default", "bad"]))
            if change == "default" and name != "id":  # a default id is random: the two ids would differ
                del kwargs[name]
            else:
                kwargs[name] = data.draw(
                    st.sampled_from([None, Unusable(), "", " X ", "new", "ADA@Example.com", -1, 0, (), frozenset(), {}])
                )
        with use_clock(FixedClock(datetime(2026, 1, 5, tzinfo=UTC))):
            fast, slow = built_both_ways(cls, kwargs)
        assert fast[0] == slow[0]
        if fast[0] == "ok":
            assert type(fast[1]) is cls
            assert field_values(fast[1]) == field_values(slow[1])
        else:
            assert fast == slow

    check()


def test_the_generated_init_keeps_the_attrs_signature():
    Lead(email="a@example.com")
    assert Lead in _validation._ATTRS_INITS
    for cls, init in _validation._ATTRS_INITS.items():
        assert inspect.signature(cls.__init__) == inspect.signature(init)


# Lifecycle.apply against the reference apply that checks every value it builds


@st.composite
def moves(draw):
    lifecycle = draw(st.sampled_from(list(LIFECYCLES.values())))
    names = [transition.name for transition in lifecycle.transitions] + ["no_such_transition"]
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(names),
                st.integers(min_value=-2, max_value=48).map(lambda hours: timedelta(hours=hours)),
                st.sampled_from(
                    [None, {"lost_reason": "price"}, {"custom_fields": {"disqualification_reason": "x"}},
                     {"title": "CTO"}, {"description": "more"}, {"amount": None}, {"email": "bad"}]
                ),
                st.sampled_from([None, "u-1", "bad actor", "", "x" * 65]),
            ),
            max_size=15,
        )
    )
    return lifecycle, steps


def applied(function, *args, **kwargs):
    try:
        record, event = function(*args, **kwargs)
    except TransitionError as exc:
        return ("refused", exc.transition, exc.reasons, exc.stage, exc.entity), None
    except ValidationError as exc:
        return ("invalid", exc.problems), None
    return ("ok", record, attrs.evolve(event, id="same")), event.id


def staged_record(lifecycle):
    fields = {"created_at": T0, "stage": lifecycle.initial}
    if lifecycle.entity == "lead":
        return Lead(email="ada@example.com", **fields)
    if lifecycle.entity == "opportunity":
        return Opportunity(name="Deal", amount=Money("100", "EUR"), **fields)
    if lifecycle.entity == "ticket":
        return Ticket(subject="Help", **fields)
    return Contact(email="ada@example.com", **fields)


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(moves())
def test_apply_agrees_with_the_reference_apply(journey):
    lifecycle, steps = journey
    record, at = staged_record(lifecycle), T0
    for name, step, payload, actor in steps:
        kwargs = {"at": at + step, "payload": payload, "actor": actor}
        (fast, event_id) = applied(lifecycle.apply, record, name, **kwargs)
        (slow, _) = applied(lifecycle._apply_by_plan, record, name, **kwargs)
        assert fast == slow
        if fast[0] == "ok":
            assert uuid.UUID(hex=event_id).version == 4
            assert type(fast[1]) is type(record)
            record, at = fast[1], at + step


def test_a_record_class_declaring_its_stage_otherwise_takes_the_reference_path():
    @attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
    class LooseLead(Lead):
        stage: str = attrs.field(default="new")  # no short_label rule

    assert not _trusted_record(LooseLead)
    assert _trusted_record(Lead)
    lifecycle = LIFECYCLES["lead"]
    moved, _ = lifecycle.apply(LooseLead(email="a@example.com", created_at=T0), "contact", at=T0)
    assert type(moved) is LooseLead
    assert moved.stage == "contacted"
