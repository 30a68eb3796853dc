"""Bad input to every constructor and to the converter is a ValidationError naming the field."""

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from crmkit.entities import ENTITY_TYPES, Address, EntityRef, LineItem, StageChange, WorkingHours
from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.serialization import from_data, to_data
from crmkit.testing import addresses, entities, entity_refs, line_items, money, stage_changes, working_hours

VALUE_TYPES = {
    Money: money(),
    EntityRef: entity_refs(),
    Address: addresses(),
    StageChange: stage_changes(),
    LineItem: line_items(),
    WorkingHours: working_hours(),
}
CASES = [(cls, entities(kind)) for kind, cls in sorted(ENTITY_TYPES.items())] + list(VALUE_TYPES.items())
IDS = [cls.__name__ for cls, _ in CASES]


class Unusable:
    """A value no field accepts."""


def init_name(field: attrs.Attribute) -> str:
    return field.alias or field.name


@pytest.mark.parametrize(("cls", "strategy"), CASES, ids=IDS)
def test_a_wrong_value_for_any_constructor_argument_names_that_field(cls, strategy):
    @given(strategy)
    @settings(max_examples=5, suppress_health_check=[HealthCheck.too_slow])
    def check(record):
        values = {init_name(f): getattr(record, f.name) for f in attrs.fields(cls) if f.init}
        for name in values:
            with pytest.raises(ValidationError) as caught:
                cls(**{**values, name: Unusable()})
            assert any(path == name or path.startswith((f"{name}.", f"{name}[")) for path in caught.value.paths), (
                name,
                caught.value.paths,
            )

    check()


@pytest.mark.parametrize(("cls", "strategy"), CASES, ids=IDS)
def test_a_wrong_json_value_for_any_field_is_named_by_the_converter(cls, strategy):
    @given(strategy)
    @settings(max_examples=5, suppress_health_check=[HealthCheck.too_slow])
    def check(record):
        data = to_data(record)
        for key in data:
            with pytest.raises(ValidationError) as caught:
                from_data(cls, {**data, key: [[{"?": None}]]})
            assert any(path == key or path.startswith((f"{key}.", f"{key}[")) for path in caught.value.paths), (
                key,
                caught.value.paths,
            )

    check()


@pytest.mark.parametrize(("cls", "strategy"), CASES, ids=IDS)
def test_unknown_and_missing_keys_are_named_by_the_converter(cls, strategy):
    @given(strategy)
    @settings(max_examples=3, suppress_health_check=[HealthCheck.too_slow])
    def check(record):
        data = to_data(record)
        with pytest.raises(ValidationError) as caught:
            from_data(cls, {**data, "no_such_field": 1})
        assert "no_such_field" in caught.value.paths
        required = [init_name(f) for f in attrs.fields(cls) if f.init and f.default is attrs.NOTHING]
        for name in required:
            with pytest.raises(ValidationError) as caught:
                from_data(cls, {key: value for key, value in data.items() if key != name})
            assert name in caught.value.paths

    check()
