import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import attrs
import pytest
from hypothesis import given

from crmkit.entities import (
    ENTITY_TYPES,
    Address,
    Consent,
    Contact,
    EntityRef,
    Lead,
    LineItem,
    Order,
    StageChange,
    Team,
    User,
    WorkingHours,
)
from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.serialization import converter, from_data, from_json, to_data, to_json
from crmkit.testing import addresses, entities, entity_refs, line_items, money, stage_changes, working_hours

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def an_order():
    return Order(
        id="o1",
        number="SO-1",
        currency="EUR",
        created_at=T0,
        ordered_at=T0,
        lines=[
            LineItem(quantity=Decimal(2), unit_price=Money("9.99", "EUR"), discount=Decimal("0.1")),
            LineItem(product_id="p1", quantity=Decimal("0.5"), unit_price=Money(100, "EUR")),
        ],
        tags=["vip", "b2b"],
        custom_fields={"mrr": Decimal("1.50"), "renews_at": T0, "signed_on": date(2026, 1, 1), "seats": 3},
    )


def problems_of(cls, data):
    with pytest.raises(ValidationError) as caught:
        from_data(cls, data)
    return {problem.path: problem.message for problem in caught.value.problems}


# The data form


def test_data_form_is_plain_json():
    data = to_data(an_order())
    assert json.loads(json.dumps(data)) == data


def test_decimals_times_and_collections_have_their_documented_form():
    data = to_data(an_order())
    assert data["created_at"] == "2026-01-05T09:00:00+01:00"
    assert data["tags"] == ["b2b", "vip"]
    assert data["status"] == "placed"
    assert data["lines"][0] == {
        "product_id": None,
        "description": "",
        "quantity": "2",
        "unit_price": {"amount": "9.99", "currency": "EUR"},
        "discount": "0.1",
        "tax_rate": "0",
    }
    assert "kind" not in data


def test_custom_field_values_use_a_tagged_encoding_for_non_json_types():
    assert to_data(an_order())["custom_fields"] == {
        "mrr": {"$decimal": "1.50"},
        "renews_at": {"$datetime": "2026-01-05T09:00:00+01:00"},
        "signed_on": {"$date": "2026-01-01"},
        "seats": 3,
    }


def test_working_hours_times_are_iso():
    user = User(name="G", email="g@example.com", working_hours=[WorkingHours(4, time(8, 30), time(16))])
    assert to_data(user)["working_hours"] == [{"weekday": 4, "start": "08:30:00", "end": "16:00:00"}]


def test_money_has_amount_as_string_and_currency():
    assert to_data(Money("12.50", "eur")) == {"amount": "12.50", "currency": "EUR"}


def test_round_trip_keeps_decimal_exponents_and_offsets():
    order = from_json(Order, to_json(an_order()))
    assert order == an_order()
    assert str(order.lines[0].unit_price.amount) == "9.99"
    assert str(order.custom_fields["mrr"]) == "1.50"
    assert order.created_at.utcoffset() == timedelta(hours=1)


def test_to_data_refuses_non_crmkit_values():
    with pytest.raises(ValidationError):
        to_data({"a": 1})


def test_one_converter_is_shared():
    assert converter.forbid_extra_keys
    assert converter.detailed_validation


# Reading input


def test_from_data_normalises_like_the_constructor():
    lead = from_data(
        Lead, {"email": " ADA@Example.com", "source": "web_form", "created_at": "2026-01-05T09:00:00Z"}
    )
    assert lead.email == "ada@example.com"
    assert lead.created_at == datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_integer_decimals_are_accepted():
    assert from_data(Money, {"amount": 12, "currency": "EUR"}) == Money(12, "EUR")


def test_unknown_keys_are_named():
    assert problems_of(Team, {"name": "A", "unexpected_key": 1, "colour": "red"}) == {
        "unexpected_key": "unexpected key",
        "colour": "unexpected key",
    }


def test_missing_required_keys_are_named():
    assert set(problems_of(Order, {"number": "1"})) == {"currency"}
    assert set(problems_of(Consent, {})) == {"subject", "purpose", "status"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 5),
        ("version", "1"),
        ("version", True),
        ("version", 1.0),
        ("tags", "vip"),
        ("tags", [1]),
        ("created_at", 1700000000),
        ("created_at", "yesterday"),
        ("created_at", "2026-01-05T09:00:00"),
        ("custom_fields", [1]),
        ("manager_id", 7),
    ],
)
def test_wrong_json_types_are_named_without_coercion(field, value):
    problems = problems_of(Team, {"name": "Support", field: value})
    assert [path.split("[")[0] for path in problems] == [field]


def test_naive_datetimes_are_refused():
    problems = problems_of(Team, {"name": "A", "created_at": "2026-01-05T09:00:00"})
    assert problems == {"created_at": "'2026-01-05T09:00:00' has no UTC offset"}


def test_floats_for_decimals_are_refused_as_inexact():
    assert set(problems_of(Money, {"amount": 0.1, "currency": "EUR"})) == {"amount"}


def test_bad_values_inside_lists_name_their_index():
    data = to_data(an_order())
    data["tags"] = ["ok", 3]
    data["lines"][1]["unit_price"]["amount"] = 1.5
    data["lines"][0]["quantity"] = None
    assert set(problems_of(Order, data)) == {"tags[1]", "lines[0].quantity", "lines[1].unit_price.amount"}


def test_many_structural_problems_are_reported_at_once():
    data = to_data(an_order())
    del data["number"]
    data["unexpected_key"] = True
    data["status"] = "shipped-ish"
    data["ordered_at"] = "2026-01-05"
    data["lines"][0]["unit_price"] = {"amount": "1", "currency": "EUR", "tax": "0.2"}
    data["lines"][1] = "a line"
    problems = problems_of(Order, data)
    assert set(problems) == {
        "number",
        "unexpected_key",
        "status",
        "ordered_at",
        "lines[0].unit_price.tax",
        "lines[1]",
    }
    assert "draft, placed, paid" in problems["status"]


def test_record_rules_are_reported_with_their_paths():
    data = to_data(an_order())
    data["lines"][1]["quantity"] = "-1"
    data["lines"][0]["unit_price"]["currency"] = "ZZZ"
    assert set(problems_of(Order, data)) == {"lines[0].unit_price.currency", "lines[1].quantity"}


def test_cross_field_rules_are_reported_with_their_paths():
    data = to_data(an_order())
    data["lines"][1]["unit_price"]["currency"] = "USD"
    data["version"] = -1
    assert set(problems_of(Order, data)) == {"version"}
    data["version"] = 0
    assert set(problems_of(Order, data)) == {"lines[1].unit_price.currency"}


def test_entity_validation_failures_surface_as_one_error():
    problems = problems_of(Contact, {"email": "not-an-email", "phone": "12", "timezone": "Nowhere"})
    assert set(problems) == {"email", "phone", "timezone"}


def test_nested_value_errors_name_the_nested_path():
    assert set(problems_of(Contact, {"address": {"country": "France"}})) == {"address.country"}
    assert set(problems_of(Contact, {"address": "Paris"})) == {"address"}
    assert set(
        problems_of(Consent, {"subject": {"kind": "alien", "id": "x"}, "purpose": "p", "status": "granted"})
    ) == {"subject.kind"}


def test_enum_values_must_be_exact():
    assert set(problems_of(Lead, {"email": "a@b.co", "source": "WEB_FORM"})) == {"source"}


def test_stage_history_entries_are_checked():
    problems = problems_of(Lead, {"email": "a@b.co", "stage_history": [{"to_stage": "new", "at": "soon"}]})
    assert set(problems) == {"stage_history[0].at"}


@pytest.mark.parametrize(
    "value",
    [[1, 2], {"$decimal": 1.5}, {"$money": "1"}, {"$date": "2026-02-30"}, {"$datetime": "2026-01-01T00:00"}],
)
def test_bad_custom_field_values_are_named(value):
    assert set(problems_of(Team, {"name": "A", "custom_fields": {"field": value}})) == {"custom_fields.field"}


def test_custom_field_names_are_checked_by_the_record():
    assert set(problems_of(Team, {"name": "A", "custom_fields": {"Bad Name": 1}})) == {
        "custom_fields.Bad Name"
    }


def test_top_level_data_must_be_an_object():
    assert problems_of(Team, ["name", "A"]) == {"": "expected an object, got list"}


def test_invalid_json_is_a_validation_error():
    with pytest.raises(ValidationError) as caught:
        from_json(Team, "{not json")
    assert caught.value.paths == ("",)


def test_from_json_accepts_bytes():
    team = Team(name="A", created_at=T0)
    assert from_json(Team, to_json(team).encode()) == team


def test_unicode_survives_json():
    team = Team(name="Équipe Zürich 東京", created_at=T0)
    assert "Zürich" in to_json(team)
    assert from_json(Team, to_json(team)) == team


# Round trips


@pytest.mark.parametrize("kind", sorted(ENTITY_TYPES))
def test_every_entity_round_trips_through_data_and_json(kind):
    cls = ENTITY_TYPES[kind]

    @given(entities(kind))
    def check(record):
        assert from_data(cls, to_data(record)) == record
        assert from_data(cls, json.loads(json.dumps(to_data(record)))) == record
        assert from_json(cls, to_json(record)) == record

    check()


def _standard_json(obj):
    return json.dumps(to_data(obj), ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("kind", sorted(ENTITY_TYPES))
def test_to_json_writes_exactly_what_the_standard_encoder_writes_of_to_data(kind):
    @given(entities(kind))
    def check(record):
        assert to_json(record) == _standard_json(record)

    check()


@pytest.mark.parametrize(
    "value",
    [
        Money(amount=Decimal("-0.000"), currency="EUR"),
        Money(amount=Decimal("1E+3"), currency="JPY"),
        Address(street='Quote " and back\\slash', city="Zürich \u2028 \x07", country="CH"),
        StageChange(
            from_stage=None,
            to_stage="lead",
            at=datetime(2026, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        ),
    ],
    ids=repr,
)
def test_to_json_escapes_and_formats_values_as_the_standard_encoder(value):
    assert to_json(value) == _standard_json(value)
    assert from_json(type(value), to_json(value)) == value


def test_to_json_of_odd_custom_values_matches_the_standard_encoder():
    record = Contact(
        first_name="Ada",
        custom_fields={
            "big": 10**30,
            "neg": -0.0,
            "tiny": 5e-324,
            "flag": True,
            "none": None,
            "text": "bell \x07 ✓",
        },
    )
    assert to_json(record) == _standard_json(record)


def test_to_json_refuses_what_is_not_a_crmkit_record():
    with pytest.raises(ValidationError):
        to_json({"plain": "dict"})


@pytest.mark.parametrize(
    ("cls", "strategy"),
    [
        (Money, money()),
        (EntityRef, entity_refs()),
        (Address, addresses()),
        (StageChange, stage_changes()),
        (LineItem, line_items()),
        (WorkingHours, working_hours()),
    ],
)
def test_value_types_round_trip_through_json(cls, strategy):
    @given(strategy)
    def check(value):
        assert from_json(cls, to_json(value)) == value
        assert to_json(value) == _standard_json(value)

    check()


@given(entities())
def test_data_form_is_stable_across_a_round_trip(record):
    data = to_data(record)
    assert to_data(from_data(type(record), data)) == data


def _only_json_types(value):
    """True when value is built from exactly the JSON types (no str or int subclasses such as enums)."""
    if isinstance(value, dict):
        return all(type(key) is str and _only_json_types(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_only_json_types(item) for item in value)
    return value is None or type(value) in {str, int, float, bool}


@given(entities())
def test_data_form_holds_only_plain_json_types(record):
    assert _only_json_types(to_data(record))


def test_enum_fields_are_written_as_their_plain_value():
    source = to_data(Lead(email="ada@example.com", source="web_form"))["source"]
    assert type(source) is str
    assert source == "web_form"


def test_the_stores_json_writer_returns_the_iso_text_of_the_times_it_is_asked_for():
    from crmkit.serialization import json_with_times  # noqa: PLC0415 - private, for the stores

    record = Contact(
        first_name="Ada", created_at=datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    )
    text, updated, created = json_with_times(Contact, ("updated_at", "created_at"))(record)
    assert text == _standard_json(record)
    assert (updated, created) == (record.updated_at.isoformat(), record.created_at.isoformat())
    tagged = attrs.evolve(record, tags={"vip", "b2b"}, custom_fields={"n": 1, "x": 1.5, "s": "é"})
    text, updated, tags = json_with_times(Contact, ("updated_at",), ("tags",))(tagged)
    assert (text, updated) == (_standard_json(tagged), tagged.updated_at.isoformat())
    assert tags == '["b2b","vip"]' == json.dumps(sorted(tagged.tags), separators=(",", ":"))
    with pytest.raises(TypeError, match="first_name"):
        json_with_times(Contact, ("first_name",))
    with pytest.raises(TypeError, match="nickname"):
        json_with_times(Contact, (), ("nickname",))
    with pytest.raises(TypeError):
        json_with_times(dict, ("updated_at",))


def test_to_json_of_a_value_smuggled_past_its_declared_type_takes_the_general_path():
    record = Contact(first_name="Ada", tags={"vip"})
    object.__setattr__(record, "first_name", 42)  # not what the class declares: no fast path applies
    assert to_json(record) == _standard_json(record)
    assert '"first_name":42' in to_json(record)
