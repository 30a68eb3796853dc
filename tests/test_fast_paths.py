"""The compiled validators, replace, converters and normaliser fast paths agree with their reference paths."""

import inspect
import pickle
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit import _validation
from crmkit.clock import FixedClock, use_clock
from crmkit.entities import (
    ENTITY_TYPES,
    Contact,
    EntityRef,
    Lead,
    Opportunity,
    StageChange,
    Ticket,
    _hash_by_identity,
    _new_id,
)
from crmkit.errors import Problem, TransitionError, ValidationError
from crmkit.events import StageChanged
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


SHORT_EMAILS = st.builds(
    lambda local, labels: f"{local}@{'.'.join(labels)}",
    st.text(alphabet="az09.-_+!`{", min_size=0, max_size=14),
    st.lists(st.text(alphabet="az09-", min_size=0, max_size=9), min_size=1, max_size=4),
)
BOUNDARY_EMAILS = st.builds(
    lambda local, label, tld: f"{'a' * local}@{'b' * label}.{tld}",
    st.integers(min_value=1, max_value=70),
    st.integers(min_value=1, max_value=70),
    st.sampled_from(["c", "co", "12", "c-1", "1c"]),
)


@given(st.one_of(EMAILS, SHORT_EMAILS, BOUNDARY_EMAILS))
@settings(max_examples=500)
def test_the_email_rule_agrees_with_the_full_normaliser(text):
    assert outcome(_validation.email, text) == outcome(_normalize_email_fully, text, "")
    if len(text) <= _validation._SHORT and _validation._SHORT_EMAIL.fullmatch(text):
        assert _normalize_email_fully(text, "") == text


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
                    st.sampled_from(
                        [None, Unusable(), "", " X ", "new", "ADA@Example.com", -1, 0, (), frozenset(), {}]
                    )
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
                    [
                        None,
                        {"lost_reason": "price"},
                        {"custom_fields": {"disqualification_reason": "x"}},
                        {"title": "CTO"},
                        {"description": "more"},
                        {"amount": None},
                        {"email": "bad"},
                    ]
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


# The compiled moves of Lifecycle.apply (lifecycle/_fast) against the reference apply, with times in
# several zones, times from a clock, repeated and bad actors, and records of subclasses


class NoOffset(tzinfo):
    """A tzinfo that knows no offset: a datetime carrying it is naive."""

    def utcoffset(self, _dt):
        return None

    def dst(self, _dt):
        return None


class Instant(datetime):
    """A datetime subclass, as some libraries return."""


ZONES = [
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5, minutes=-30)),
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/New_York"),
]


@st.composite
def timed_moves(draw):
    lifecycle = draw(st.sampled_from(list(LIFECYCLES.values())))
    names = [transition.name for transition in lifecycle.transitions] + ["no_such_transition"]
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(names),
                st.integers(min_value=-2, max_value=48).map(lambda hours: timedelta(hours=hours)),
                st.sampled_from(ZONES),
                st.sampled_from(
                    ["at", "at", "at", "clock", "current clock", "naive", "no offset", "subclass"]
                ),
                st.sampled_from([None, None, "u-1", "u-1", "bad actor", "", 7]),
            ),
            max_size=15,
        )
    )
    return lifecycle, steps


def when(kind, at, zone):
    """The keyword arguments of one move giving its time as ``kind`` says."""
    local = at.astimezone(zone)
    if kind == "clock":
        return {"clock": FixedClock(local)}
    if kind == "current clock":
        return {}
    if kind == "naive":
        return {"at": local.replace(tzinfo=None)}
    if kind == "no offset":
        return {"at": local.replace(tzinfo=NoOffset())}
    if kind == "subclass":
        return {"at": Instant.fromisoformat(local.isoformat())}
    return {"at": local}


def applied_fully(function, *args, **kwargs):
    """Like ``applied``, with the event's own values (not only its equality) and classes kept."""
    outcome_, event_id = applied(function, *args, **kwargs)
    if outcome_[0] != "ok":
        return outcome_, event_id
    record, event = outcome_[1], outcome_[2]
    return (
        "ok",
        record,
        type(record),
        field_values(record),
        event,
        type(event),
        field_values(event),
    ), event_id


@settings(max_examples=150, deadline=None)
@given(timed_moves())
def test_compiled_moves_agree_with_the_reference_apply_for_any_time_and_actor(journey):
    lifecycle, steps = journey
    record, at = staged_record(lifecycle), T0
    for name, step, zone, kind, actor in steps:
        kwargs = {"actor": actor, **when(kind, at + step, zone)}
        if kind == "current clock":
            with use_clock(FixedClock((at + step).astimezone(zone))):
                fast, event_id = applied_fully(lifecycle.apply, record, name, **kwargs)
                slow, _ = applied_fully(lifecycle._apply_by_plan, record, name, **kwargs)
        else:
            fast, event_id = applied_fully(lifecycle.apply, record, name, **kwargs)
            slow, _ = applied_fully(lifecycle._apply_by_plan, record, name, **kwargs)
        assert fast == slow
        if fast[0] == "ok":
            assert uuid.UUID(hex=event_id).version == 4
            assert fast[1].stage_history[-1].at is fast[4].at  # the very time given, not a copy
            record, at = fast[1], at + step


def test_a_transition_without_payload_takes_a_compiled_move_per_record_class_and_step():
    lifecycle = LIFECYCLES["lead"]
    lead = Lead(email="a@example.com", created_at=T0)
    moved, event = lifecycle.apply(lead, "contact", actor="u-1", at=T0)
    step = lifecycle._machine.steps["new", "contact"]
    assert callable(step.moves[Lead])
    again, event_again = lifecycle.apply(lead, "contact", actor="u-1", at=T0)
    assert again == moved
    assert attrs.evolve(event_again, id=event.id) == event
    assert event_again.id != event.id


def test_a_rule_of_a_subclass_reading_the_stage_still_runs_on_the_fast_path():
    @attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
    class CarefulLead(Lead):
        @_validation.cross_rule("stage")
        def _never_contacted(self, _before):
            return [Problem("stage", "this lead is never contacted")] if self.stage == "contacted" else []

    lifecycle = LIFECYCLES["lead"]
    lead = CarefulLead(email="a@example.com", created_at=T0)
    assert _trusted_record(CarefulLead)
    for _ in range(2):  # the first call compiles the move, the second takes it
        fast = applied(lifecycle.apply, lead, "contact", at=T0)
        assert fast == applied(lifecycle._apply_by_plan, lead, "contact", at=T0)
        assert fast[0] == ("invalid", (Problem("stage", "this lead is never contacted"),))
    assert callable(lifecycle._machine.steps["new", "contact"].moves[CarefulLead])
    reason = {"custom_fields": {"disqualification_reason": "no budget"}}
    moved, _ = lifecycle.apply(lead, "disqualify", at=T0, payload=reason)
    assert type(moved) is CarefulLead
    assert (
        applied(lifecycle.apply, moved, "recycle", at=T0)[0]
        == applied(lifecycle._apply_by_plan, moved, "recycle", at=T0)[0]
    )


def test_the_stamped_and_static_fields_of_a_move_are_set_as_the_reference_sets_them():
    lifecycle = LIFECYCLES["opportunity"]
    deal = staged_record(lifecycle)
    names = list(lifecycle.allowed_transitions(deal.stage))
    at = T0
    for _ in range(6):
        name = names[0]
        fast = applied(lifecycle.apply, deal, name, at=at)
        assert fast[0][:2] == applied(lifecycle._apply_by_plan, deal, name, at=at)[0][:2]
        deal = fast[0][1]
        names = list(lifecycle.allowed_transitions(deal.stage))
        if not names:
            break
        at += timedelta(hours=1)
    assert deal.probability == lifecycle.stage(deal.stage).probability


def test_a_datetime_whose_tzinfo_has_no_offset_is_naive_everywhere():
    naive = datetime(2026, 3, 2, 9, tzinfo=NoOffset())
    with pytest.raises(ValidationError) as caught:
        Lead(email="a@example.com", created_at=naive)
    assert caught.value.paths == ("created_at", "updated_at")  # updated_at defaults to created_at
    lead = Lead(email="a@example.com", created_at=T0)
    for apply in (LIFECYCLES["lead"].apply, LIFECYCLES["lead"]._apply_by_plan):
        with pytest.raises(ValidationError) as caught:
            apply(lead, "contact", at=naive)
        assert caught.value.paths == ("at",)
    for zone in ZONES:
        assert Lead(email="a@example.com", created_at=T0.astimezone(zone)).created_at.tzinfo is zone


def test_a_factory_declared_sound_skips_its_check_only_when_the_check_keeps_its_products():
    @_validation.sound_factory
    def padded() -> str:
        return " padded "

    @attrs.frozen(kw_only=True)
    class Labelled(_validation.Validated):
        kept: str = attrs.field(factory=padded)
        stripped: str = attrs.field(factory=padded, metadata=_validation.rules(_validation.non_empty))

    first = Labelled()
    assert (first.kept, first.stripped) == (" padded ", "padded")
    assert Labelled(kept="x").kept == "x"
    with pytest.raises(ValidationError) as caught:
        Labelled(kept=3)
    assert caught.value.paths == ("kept",)


def test_records_and_events_draw_distinct_uuid4_ids_from_one_pool():
    ids = [Lead(email="a@example.com").id for _ in range(600)]
    ids += [StageChanged(entity=EntityRef("lead", "l1"), to_stage="new").id for _ in range(600)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert (parsed.hex, parsed.version, parsed.variant) == (value, 4, uuid.RFC_4122)


def test_defaults_copying_a_field_or_shared_empty_sets_agree_with_attrs():
    @attrs.frozen(kw_only=True)
    class Span(_validation.Validated):
        start: datetime
        end: datetime = attrs.field()
        before: datetime = attrs.field()  # names a later field: its default is called as attrs does
        labels: frozenset[str] = attrs.field(factory=frozenset)

        @end.default
        @_validation.copy_of("start")
        def _end(self):
            return self.start

        @before.default
        @_validation.copy_of("after")
        def _before(self):
            return self.start

    Span(start=T0)  # the first one compiles the generated __init__
    span, other = Span(start=T0), Span(start=T0 + timedelta(hours=1))
    assert (span.end, span.before, span.labels) == (T0, T0, frozenset())
    assert span.labels is other.labels  # one shared empty frozenset
    slow = object.__new__(Span)
    attrs_init(Span)(slow, start=T0)
    assert field_values(span) == field_values(slow)
    with pytest.raises(ValidationError) as caught:
        Span(start=T0.replace(tzinfo=None))
    assert caught.value.paths == ("start", "end", "before")
    Lead(email="a@example.com")  # compiles Lead's __init__, if no test did yet
    lead = Lead(email="a@example.com", created_at=T0)
    assert lead.updated_at is lead.created_at
    assert lead.tags is Lead(email="b@example.com").tags == frozenset()


def test_a_lifecycle_pickles_as_before_once_its_moves_are_compiled():
    lifecycle = LIFECYCLES["ticket"]  # no guard: it pickles (a compiled guard does not)
    ticket = staged_record(lifecycle)
    name = lifecycle.allowed_transitions(ticket.stage)[0]
    lifecycle.apply(ticket, name, at=T0)
    copy = pickle.loads(pickle.dumps(lifecycle))  # noqa: S301 - our own data
    assert copy == lifecycle
    assert applied(copy.apply, ticket, name, at=T0)[0] == applied(lifecycle.apply, ticket, name, at=T0)[0]


@pytest.mark.parametrize("text", ["ok", "Émile", "a\x00b", "\ud800x", "é\x00", "", " x "])
def test_text_with_nul_or_lone_surrogates_is_refused_by_the_compiled_checks_as_by_the_plan(text):
    lead = Lead(email="a@example.com", created_at=T0)
    for name in ("first_name", "title", "owner_id", "stage"):
        values = field_values(lead) | {name: text}
        (fast, slow), fast_values, slow_values = validated_both_ways(Lead, values)
        assert fast == slow
        assert fast_values == slow_values
        built_fast, built_slow = built_both_ways(Lead, values)  # the generated __init__ and attrs'
        assert built_fast[0] == built_slow[0]
        if built_fast[0] == "ok":
            assert field_values(built_fast[1]) == field_values(built_slow[1])
        else:
            assert built_fast == built_slow


def test_a_record_class_with_its_own_new_is_moved_without_calling_it():
    calls = []

    @attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
    class CountedLead(Lead):
        def __new__(cls, *_args, **_kwargs):
            calls.append(cls)
            return super().__new__(cls)

    lifecycle = LIFECYCLES["lead"]
    lead = CountedLead(email="a@example.com", created_at=T0)
    built = len(calls)
    for _ in range(2):  # the first call compiles the move, the second takes it
        fast = applied(lifecycle.apply, lead, "contact", actor="u-1", at=T0)
        assert fast[0] == applied(lifecycle._apply_by_plan, lead, "contact", actor="u-1", at=T0)[0]
        assert type(fast[0][1]) is CountedLead
    assert len(calls) == built  # copies are made without __new__, as replace makes them
