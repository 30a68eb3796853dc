import enum
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from dateutil.relativedelta import relativedelta

from crmkit.clock import FixedClock, use_clock
from crmkit.conditions import (
    MAX_PATTERN_LENGTH,
    AllOf,
    AnyOf,
    Condition,
    FieldKind,
    FieldSpec,
    Not,
    Op,
    Predicate,
    Schema,
    all_,
    any_,
    field,
    format_duration,
    not_,
    parse_duration,
)
from crmkit.conditions._compile import generate
from crmkit.errors import RuleError, ValidationError

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


class Source(enum.StrEnum):
    WEB = "web_form"
    EVENT = "event"


LEADS = Schema(
    {
        "country": str,
        "industry": str | None,
        "employees": int,
        "revenue": Decimal,
        "ratio": float,
        "vip": bool,
        "source": Source,
        "created_at": datetime,
        "birthday": date,
        "tags": frozenset[str],
        "address.city": str,
    }
)


def lead(**values: Any) -> dict[str, Any]:
    return values


def holds(condition: Condition, record: Any, schema: Schema = LEADS) -> bool:
    """Evaluate with both the compiled function and the interpreter, which must agree."""
    with use_clock(FixedClock(NOW)):
        compiled = schema.compile(condition)(record)
        interpreted = schema.evaluate(condition, record)
    assert compiled == interpreted
    return compiled


# -- the builder and the tree -------------------------------------------------------------------


def test_builder_methods_build_predicates_with_their_operator():
    assert field("employees").ge(50) == Predicate("employees", Op.GE, 50)
    assert field("country").in_({"FR", "DE"}).value == ("DE", "FR")
    assert field("tags").exists() == Predicate("tags", "exists", value=True)
    assert field("created_at").between(NOW, NOW).value == (NOW, NOW)


def test_operators_combine_and_chains_stay_flat():
    a, b, c = field("country").eq("DE"), field("employees").ge(5), field("vip").eq(True)
    assert a & b & c == AllOf((a, b, c))
    assert a | b | c == AnyOf((a, b, c))
    assert ~a == Not(a) == not_(a)
    assert all_(a, b) == AllOf((a, b))
    assert any_(a) == AnyOf((a,))


def test_json_form_round_trips_the_builder_tree():
    rule = all_(
        field("country").in_(["DE", "AT"]),
        any_(field("employees").ge(50), not_(field("industry").exists())),
        field("created_at").within_last("P30D"),
    )
    data = json.loads(json.dumps(rule.to_json()))
    assert data["all"][0] == {"field": "country", "op": "in", "value": ["DE", "AT"]}
    assert Condition.from_json(data) == rule


def test_json_values_become_typed_when_validated():
    built = field("created_at").after(NOW) & field("revenue").ge(Decimal("10.5")) & field("birthday").lt(date(2000, 1, 1))
    from_json = Condition.from_json(json.loads(json.dumps(built.to_json())))
    assert from_json != built  # JSON holds strings ...
    assert LEADS.validate(from_json) == LEADS.validate(built)  # ... the schema types them


def test_a_predicate_whose_value_is_already_typed_validates_to_itself():
    typed = field("country").in_(["DE", "AT"])
    assert LEADS.validate(typed) is typed
    single = field("revenue").ge(Decimal("10.5"))
    assert LEADS.validate(single) is single
    loose = Condition.from_json({"field": "birthday", "op": "lt", "value": "2000-01-01"})
    assert LEADS.validate(loose) is not loose
    assert LEADS.validate(loose).value == date(2000, 1, 1)


def test_exists_may_omit_its_value_in_json():
    assert Condition.from_json({"field": "tags", "op": "exists"}) == field("tags").exists()


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"field": "country", "op": "like", "value": "x"}, "op", "unknown operator"),
        ({"field": "country", "op": "eq"}, "value", "needs a value"),
        ({"field": "country; drop", "op": "eq", "value": 1}, "field", "field name"),
        ({"all": []}, "all", "non-empty list"),
        ({"all": [{"any": [{"field": "x", "op": "in", "value": "DE"}]}]}, "all[0].any[0].value", "list of values"),
        ({"not": {"field": "x", "op": "between", "value": [1]}}, "not.value", "[low, high]"),
        ({"field": "x", "op": "eq", "value": 1, "extra": 2}, "", "expected"),
        (["field", "x"], "", "JSON object"),
        ({"field": "x", "op": "within_last", "value": "30 days"}, "value", "ISO 8601"),
        ({"field": "x", "op": "matches", "value": "(unclosed"}, "value", "regular expression"),
        ({"field": "x", "op": "matches", "value": "a" * (MAX_PATTERN_LENGTH + 1)}, "value", "at most"),
        ({"field": "x", "op": "eq", "value": {"a": 1}}, "value", "expected a string"),
        ({"field": "x", "op": "eq", "value": float("nan")}, "value", "not a comparable number"),
        ({"field": "x", "op": "exists", "value": "yes"}, "value", "true or false"),
        ({"field": "x", "op": "in", "value": []}, "value", "at least one"),
    ],
)
def test_malformed_json_is_a_rule_error_pointing_at_the_node(data, path, message):
    with pytest.raises(RuleError) as caught:
        Condition.from_json(data)
    assert caught.value.path == path
    assert message in caught.value.message


def test_naive_datetime_values_are_refused_when_built():
    with pytest.raises(RuleError, match="no timezone"):
        field("created_at").after(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


# -- validation against the schema --------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        (field("contry").eq("DE"), "field", "unknown field 'contry'"),
        (all_(field("country").eq("DE"), any_(field("employes").ge(1))), "all[1].any[0].field", "unknown field"),
        (field("vip").gt(True), "op", "does not apply to boolean"),
        (field("tags").eq("x"), "op", "does not apply to text_set"),
        (field("source").lt("event"), "op", "does not apply"),
        (field("employees").starts_with("1"), "op", "does not apply"),
        (field("country").within_last("P1D"), "op", "does not apply"),
        (field("employees").ge("50"), "value", "expected a number"),
        (field("vip").eq(1), "value", "true or false"),
        (field("country").in_(["DE", 5]), "value[1]", "expected text"),
        (field("source").eq("fax"), "value", "not one of: event, web_form"),
        (field("employees").between(10, 5), "value", "low <= high"),
        (field("revenue").ge("ten"), "value", "decimal number"),
        (not_(field("created_at").after("2026-01-01T00:00:00")), "not.value", "no timezone"),
        (field("created_at").after(date(2026, 1, 1)), "value", "expected a date-time"),
        (field("birthday").before(NOW), "value", "expected a date"),
        (field("birthday").eq("31/12/2000"), "value", "ISO 8601 date"),
    ],
)
def test_schema_validation_errors_point_at_the_node(condition, path, message):
    with pytest.raises(RuleError) as caught:
        LEADS.validate(condition)
    assert caught.value.path == path
    assert message in caught.value.message


def test_first_match_errors_name_the_rule_index():
    with pytest.raises(RuleError) as caught:
        LEADS.first_match([field("country").eq("DE"), field("nope").eq(1)])
    assert caught.value.path == "[1].field"


def test_enum_members_and_their_values_are_both_accepted():
    assert LEADS.validate(field("source").eq(Source.EVENT)) == LEADS.validate(field("source").eq("event"))


@pytest.mark.parametrize("name", ["__class__", "_secret", "a..b", "1abc", "x.__dict__", "a b"])
def test_schema_refuses_field_names_that_could_reach_private_attributes(name):
    with pytest.raises(RuleError):
        Schema({name: str}, records="attributes")


def test_schema_refuses_keywords_as_attribute_names_and_unusable_types():
    with pytest.raises(RuleError, match="keyword"):
        Schema({"class": str}, records="attributes")
    with pytest.raises(RuleError, match="cannot use a field of type"):
        Schema({"lines": list[int]})
    with pytest.raises(RuleError, match="records must be"):
        Schema({}, records="rows")  # type: ignore[arg-type]


def test_field_spec_lists_the_operators_of_its_kind():
    assert FieldSpec(FieldKind.BOOLEAN).operators == {Op.EQ, Op.NE, Op.EXISTS}
    assert Op.STARTS_WITH not in FieldSpec("text", choices=["a"]).operators
    assert LEADS.fields["source"].choices == {"web_form", "event"}


# -- semantics -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "record", "expected"),
    [
        (field("country").eq("DE"), lead(country="DE"), True),
        (field("country").eq("DE"), lead(country="de"), False),
        (field("country").ne("DE"), lead(country="FR"), True),
        (field("country").ne("DE"), lead(), False),
        (field("employees").lt(10), lead(employees=9), True),
        (field("employees").le(10), lead(employees=10), True),
        (field("employees").gt(10), lead(employees=10), False),
        (field("employees").ge(10), lead(employees=10), True),
        (field("employees").between(10, 20), lead(employees=20), True),
        (field("employees").between(10, 20), lead(employees=21), False),
        (field("revenue").ge("99.99"), lead(revenue=Decimal(100)), True),
        (field("ratio").lt(0.5), lead(ratio=0.25), True),
        (field("country").in_(["DE", "AT"]), lead(country="AT"), True),
        (field("country").not_in(["DE", "AT"]), lead(country="CH"), True),
        (field("country").not_in(["DE", "AT"]), lead(), False),
        (field("industry").contains("soft"), lead(industry="software"), True),
        (field("industry").starts_with("soft"), lead(industry="software"), True),
        (field("industry").ends_with("ware"), lead(industry="software"), True),
        (field("industry").matches(r"^s.f"), lead(industry="software"), True),
        (field("industry").matches(r"^s.f"), lead(industry="hardware"), False),
        (field("tags").contains("vip"), lead(tags=frozenset({"vip", "new"})), True),
        (field("tags").contains("vip"), lead(tags=frozenset()), False),
        (field("vip").eq(True), lead(vip=True), True),
        (field("source").in_(["event"]), lead(source=Source.EVENT), True),
        (field("source").eq("event"), lead(source="event"), True),
        (field("created_at").before(NOW), lead(created_at=NOW - timedelta(seconds=1)), True),
        (field("created_at").after(NOW), lead(created_at=NOW), False),
        (field("created_at").within_last("P7D"), lead(created_at=NOW - timedelta(days=7)), True),
        (field("created_at").within_last("P7D"), lead(created_at=NOW - timedelta(days=7, seconds=1)), False),
        (field("created_at").within_last("P7D"), lead(created_at=NOW + timedelta(hours=1)), False),
        (field("created_at").older_than("P1M"), lead(created_at=datetime(2026, 2, 14, 12, tzinfo=UTC)), True),
        (field("created_at").older_than("P1M"), lead(created_at=datetime(2026, 2, 15, 12, tzinfo=UTC)), False),
        (field("birthday").within_last("P1D"), lead(birthday=date(2026, 3, 14)), True),
        (field("birthday").older_than("P1D"), lead(birthday=date(2026, 3, 14)), False),
        (field("birthday").older_than("P1D"), lead(birthday=date(2026, 3, 13)), True),
        (field("address.city").eq("Berlin"), lead(address={"city": "Berlin"}), True),
        (field("address.city").eq("Berlin"), lead(address=None), False),
    ],
)
def test_each_operator_means_what_the_docs_say(condition, record, expected):
    assert holds(condition, record) is expected


def test_times_in_other_offsets_compare_as_instants():
    plus_two = timezone(timedelta(hours=2))
    record = lead(created_at=datetime(2026, 3, 15, 13, 30, tzinfo=plus_two))  # 11:30 UTC
    assert holds(field("created_at").before(NOW), record)


@pytest.mark.parametrize(
    "condition",
    [
        field("country").eq("DE"),
        field("employees").ge(0),
        field("country").not_in(["DE"]),
        field("country").ne("DE"),
        field("industry").contains(""),
        field("created_at").older_than("P1D"),
        field("tags").contains("x"),
    ],
)
def test_every_comparison_with_a_missing_value_is_false(condition):
    assert holds(condition, lead()) is False
    assert holds(condition, lead(country=None, employees=None, industry=None, created_at=None, tags=None)) is False
    assert holds(~condition, lead()) is True  # not is plain negation


def test_exists_treats_missing_and_empty_as_absent():
    assert holds(field("industry").exists(), lead(industry="retail"))
    assert not holds(field("industry").exists(), lead(industry=""))
    assert not holds(field("industry").exists(), lead())
    assert holds(field("industry").exists(False), lead(industry=None))
    assert not holds(field("tags").exists(), lead(tags=frozenset()))
    assert holds(field("employees").exists(), lead(employees=0))


def test_first_match_returns_the_index_of_the_first_rule_that_holds():
    matcher = LEADS.first_match(
        [
            field("country").eq("DE") & field("employees").ge(1000),
            field("country").eq("DE"),
            {"field": "employees", "op": "ge", "value": 1},
        ]
    )
    assert matcher(lead(country="DE", employees=5000)) == 0
    assert matcher(lead(country="DE", employees=5)) == 1
    assert matcher(lead(country="FR", employees=5)) == 2
    assert matcher(lead(country="FR")) is None
    assert LEADS.first_match([])(lead()) is None


def test_relative_time_uses_the_given_clock_at_each_call():
    clock = FixedClock(NOW)
    recent = LEADS.compile(field("created_at").within_last("PT1H"), clock=clock)
    record = lead(created_at=NOW - timedelta(minutes=30))
    assert recent(record)
    clock.advance(hours=1)
    assert not recent(record)


def test_compiled_predicates_read_the_current_clock_by_default():
    recent = LEADS.compile(field("created_at").within_last("P1D"))
    record = lead(created_at=NOW)
    with use_clock(FixedClock(NOW)):
        assert recent(record)
    with use_clock(FixedClock(NOW + timedelta(days=2))):
        assert not recent(record)


@attrs.frozen
class Address:
    city: str | None = None


@attrs.frozen
class Person:
    name: str
    age: int | None = None
    address: Address | None = None
    tags: frozenset[str] = frozenset()
    lines: tuple[int, ...] = ()
    _secret: str = "hidden"


def test_schema_for_an_attrs_class_declares_its_scalar_and_nested_fields():
    schema = Schema.for_entity(Person, custom_fields={"tier": str})
    assert set(schema.fields) == {"name", "age", "address.city", "tags", "custom_fields.tier"}
    assert schema.fields["tags"].kind is FieldKind.TEXT_SET
    ada = Person("Ada", 36, Address("London"))
    assert holds(field("address.city").eq("London") & field("age").gt(30), ada, schema)
    assert not holds(field("address.city").eq("London"), Person("Bob"), schema)
    with pytest.raises(RuleError, match="unknown field 'secret'"):
        schema.validate(field("secret").eq("hidden"))


def test_schema_for_entity_reads_custom_fields_by_key():
    @attrs.frozen
    class WithCustom:
        custom_fields: dict[str, Any] = attrs.Factory(dict)

    schema = Schema.for_entity(WithCustom, custom_fields={"tier": str})
    assert holds(field("custom_fields.tier").eq("gold"), WithCustom({"tier": "gold"}), schema)
    assert not holds(field("custom_fields.tier").eq("gold"), WithCustom(), schema)


# -- explain -------------------------------------------------------------------------------------


def test_explain_says_which_nodes_held_and_which_failed():
    rule = field("country").in_(["DE", "AT"]) & (field("employees").ge(50) | field("vip").eq(True))
    result = LEADS.explain(rule, lead(country="DE", employees=10, vip=False))
    assert result.held is False
    assert [(item.condition.field, item.held, item.actual) for item in result.predicates()] == [
        ("country", True, "DE"),
        ("employees", False, 10),
        ("vip", False, False),
    ]
    assert [item.condition.field for item in result.failed] == ["employees", "vip"]
    assert [item.condition.field for item in result.passed] == ["country"]
    assert str(result).splitlines()[0] == "[failed] all"
    assert "[held] country in ['DE', 'AT'] (actual: 'DE')" in str(result)


def test_explain_evaluates_every_node_even_after_the_outcome_is_known():
    rule = field("country").eq("FR") & field("employees").ge(1)
    assert len(LEADS.explain(rule, lead(country="DE", employees=5)).children) == 2


# -- safety --------------------------------------------------------------------------------------

HOSTILE = "'); __import__('os').system('echo pwned') #"


def test_user_values_are_bound_as_constants_never_written_into_generated_code():
    rule = any_(
        field("country").eq(HOSTILE),
        field("industry").in_([HOSTILE, "x"]),
        field("industry").matches(re.escape(HOSTILE)),
        field("address.city").starts_with(HOSTILE),
    )
    source, namespace = generate(LEADS, [LEADS.validate(rule)], None, first_match=False)
    assert HOSTILE not in source
    assert "import" not in source
    assert "address" not in source  # mapping keys are constants too
    assert namespace["__builtins"+"__"] == {}
    assert LEADS.compile(rule)(lead(country=HOSTILE)) is True


def test_records_with_values_of_the_wrong_type_raise_a_validation_error_naming_the_field():
    predicate = LEADS.compile(field("employees").ge(10))
    with pytest.raises(ValidationError) as caught:
        predicate(lead(employees="many"))
    assert caught.value.paths == ("employees",)
    with pytest.raises(ValidationError) as caught:
        LEADS.evaluate(field("created_at").before(NOW), lead(created_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    assert caught.value.paths == ("created_at",)


def test_a_record_that_is_not_a_mapping_is_a_validation_error():
    with pytest.raises(ValidationError, match="mapping record"):
        LEADS.compile(field("country").eq("DE"))(["DE"])


def test_an_attribute_record_missing_a_field_is_a_validation_error():
    schema = Schema({"name": str, "age": int}, records="attributes")
    with pytest.raises(ValidationError) as caught:
        schema.compile(field("age").ge(1))(Address("x"))
    assert caught.value.paths == ("name",)


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P30D", relativedelta(days=30)),
        ("PT4H", relativedelta(hours=4)),
        ("P1Y2M3W4DT5H6M7.5S", relativedelta(years=1, months=2, days=25, hours=5, minutes=6, seconds=7, microseconds=500000)),
        ("PT0,25S", relativedelta(microseconds=250000)),
    ],
)
def test_iso_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "P0D", "30D", "P-1D", "P1.5D", "p1d", "P" + "1" * 70 + "D", 30])
def test_malformed_durations_are_rule_errors(text):
    with pytest.raises(RuleError):
        parse_duration(text)


def test_timedeltas_are_written_as_iso_durations():
    assert format_duration(timedelta(days=2, hours=3, seconds=4.5)) == "P2DT3H4.5S"
    assert format_duration(timedelta(minutes=90)) == "PT1H30M"
    assert field("created_at").within_last(timedelta(days=7)).value == "P7D"
    with pytest.raises(RuleError):
        format_duration(timedelta())
