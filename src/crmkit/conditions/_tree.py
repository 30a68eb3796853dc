"""The condition tree: nodes, the Python builder, and the JSON form of the same tree."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias

import attrs

from crmkit.conditions._durations import format_duration, parse_duration
from crmkit.errors import RuleError

__all__ = [
    "MAX_PATTERN_LENGTH",
    "AllOf",
    "AnyOf",
    "Condition",
    "FieldRef",
    "Not",
    "Op",
    "Predicate",
    "all_",
    "any_",
    "field",
    "not_",
]

#: The longest regular expression ``matches`` accepts; longer patterns are a RuleError.
MAX_PATTERN_LENGTH = 256

_MISSING: Any = object()
_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
_MAX_PATH = 200
_MAX_LIST = 10_000


class Op(enum.StrEnum):
    """The operators of a predicate, by their JSON name."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    MATCHES = "matches"
    EXISTS = "exists"
    BETWEEN = "between"
    BEFORE = "before"
    AFTER = "after"
    WITHIN_LAST = "within_last"
    OLDER_THAN = "older_than"


#: A value a predicate compares with (after the schema coerced it).
Scalar: TypeAlias = str | int | float | Decimal | bool | datetime | date


class Condition:
    """A node of a condition tree: a :class:`Predicate` or a combination of conditions.

    Conditions are immutable values. Combine them with ``&`` (all), ``|`` (any)
    and ``~`` (not), or with :func:`all_`, :func:`any_` and :func:`not_`.
    """

    __slots__ = ()

    def __and__(self, other: Condition) -> AllOf:
        # a & b & c builds one AllOf of three, not a nested pair.
        head = self.conditions if isinstance(self, AllOf) else (self,)
        return AllOf((*head, other))

    def __or__(self, other: Condition) -> AnyOf:
        head = self.conditions if isinstance(self, AnyOf) else (self,)
        return AnyOf((*head, other))

    def __invert__(self) -> Not:
        return Not(self)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form of this tree (plain dicts, lists, strings and numbers)."""
        raise NotImplementedError

    @staticmethod
    def from_json(data: Any) -> Condition:
        """Build a condition tree from its JSON form.

        Raises:
            RuleError: If a node is malformed; its ``path`` points at the node.
        """
        return _from_json(data)


def _check_path(name: Any) -> str:
    if not isinstance(name, str) or len(name) > _MAX_PATH or not _PATH.fullmatch(name):
        msg = f"a field name is letters, digits and underscores, dot-separated; got {name!r}"
        raise RuleError(msg, "field")
    return name


def _check_scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, float) and not math.isfinite(value):
        msg = f"{value!r} is not a comparable number"
        raise RuleError(msg, where)
    if isinstance(value, Decimal) and not value.is_finite():
        msg = f"{value!r} is not a comparable number"
        raise RuleError(msg, where)
    if isinstance(value, datetime) and value.utcoffset() is None:
        msg = f"datetime {value.isoformat()} has no timezone"
        raise RuleError(msg, where)
    if not isinstance(value, str | int | float | Decimal | datetime | date):
        msg = f"expected a string, number, boolean, date or datetime, got {type(value).__name__}"
        raise RuleError(msg, where)
    return value


def _value_list(value: Any, *, unique: bool) -> tuple[Scalar, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        msg = f"expected a list of values, got {type(value).__name__}"
        raise RuleError(msg, "value")
    items = list(value)
    if len(items) > _MAX_LIST:
        msg = f"a value list holds at most {_MAX_LIST} values, got {len(items)}"
        raise RuleError(msg, "value")
    checked = [_check_scalar(item, f"value[{i}]") for i, item in enumerate(items)]
    if isinstance(value, set | frozenset):
        # Sets have no order; sorting keeps equal conditions equal and their JSON stable.
        checked.sort(key=lambda item: (type(item).__name__, str(item)))
    return tuple(dict.fromkeys(checked)) if unique else tuple(checked)


def _check_value(op: Op, value: Any) -> Any:  # noqa: C901, PLR0912 - one branch per operator family
    if op in {Op.IN, Op.NOT_IN}:
        items = _value_list(value, unique=True)
        if not items:
            msg = f"'{op}' needs at least one value"
            raise RuleError(msg, "value")
        return items
    if op is Op.BETWEEN:
        bounds = _value_list(value, unique=False)
        if len(bounds) != 2:  # noqa: PLR2004 - a range has two ends
            msg = f"'between' needs [low, high], got {len(bounds)} values"
            raise RuleError(msg, "value")
        return bounds
    if op is Op.EXISTS:
        if not isinstance(value, bool):
            msg = f"'exists' takes true or false, got {value!r}"
            raise RuleError(msg, "value")
        return value
    if op is Op.MATCHES:
        if not isinstance(value, str):
            msg = f"'matches' takes a regular expression string, got {type(value).__name__}"
            raise RuleError(msg, "value")
        if len(value) > MAX_PATTERN_LENGTH:
            msg = f"a pattern is at most {MAX_PATTERN_LENGTH} characters, got {len(value)}"
            raise RuleError(msg, "value")
        try:
            re.compile(value)
        except re.error as exc:
            msg = f"invalid regular expression {value!r}: {exc}"
            raise RuleError(msg, "value") from exc
        return value
    if op in {Op.WITHIN_LAST, Op.OLDER_THAN}:
        text = format_duration(value) if isinstance(value, timedelta) else value
        try:
            parse_duration(text)
        except RuleError as exc:
            raise exc.under("value") from None
        return text
    if op in {Op.CONTAINS, Op.STARTS_WITH, Op.ENDS_WITH} and not isinstance(value, str):
        msg = f"'{op}' takes a string, got {type(value).__name__}"
        raise RuleError(msg, "value")
    return _check_scalar(value, "value")


@attrs.frozen(init=False)
class Predicate(Condition):
    """A test of one field: ``field op value``.

    A comparison with a missing value (``None``) is false, whatever the
    operator, except ``exists``; ``not`` is plain negation.

    Attributes:
        field: The field's name, dot-separated for nested fields.
        op: The operator.
        value: What the field is compared with; a tuple for ``in``, ``not_in``
            and ``between``, ``True``/``False`` for ``exists``, an ISO 8601
            duration string for ``within_last`` and ``older_than``.
    """

    field: str
    op: Op
    value: Any

    def __init__(self, field: str, op: Op | str, value: Any = _MISSING) -> None:
        try:
            operator = Op(op)
        except ValueError:
            known = ", ".join(o.value for o in Op)
            msg = f"unknown operator {op!r}; known operators: {known}"
            raise RuleError(msg, "op") from None
        if value is _MISSING:
            if operator is not Op.EXISTS:
                msg = f"'{operator}' needs a value"
                raise RuleError(msg, "value")
            value = True
        self.__attrs_init__(_check_path(field), operator, _check_value(operator, value))

    def to_json(self) -> dict[str, Any]:
        """Return ``{"field": ..., "op": ..., "value": ...}`` with JSON-ready values."""
        return {"field": self.field, "op": self.op.value, "value": _value_to_json(self.value)}


def _value_to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_value_to_json(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    return value


def _conditions(items: Iterable[Any], name: str) -> tuple[Condition, ...]:
    result = tuple(items)
    for index, item in enumerate(result):
        if not isinstance(item, Condition):
            msg = f"expected a condition, got {type(item).__name__}"
            raise RuleError(msg, f"{name}[{index}]")
    if not result:
        msg = f"'{name}' needs at least one condition"
        raise RuleError(msg, name)
    return result


def _all_children(items: Iterable[Condition]) -> tuple[Condition, ...]:
    return _conditions(items, "all")


def _any_children(items: Iterable[Condition]) -> tuple[Condition, ...]:
    return _conditions(items, "any")


@attrs.frozen
class AllOf(Condition):
    """Holds when every one of its conditions holds."""

    conditions: tuple[Condition, ...] = attrs.field(converter=_all_children)

    def to_json(self) -> dict[str, Any]:
        """Return ``{"all": [...]}``."""
        return {"all": [item.to_json() for item in self.conditions]}


@attrs.frozen
class AnyOf(Condition):
    """Holds when at least one of its conditions holds."""

    conditions: tuple[Condition, ...] = attrs.field(converter=_any_children)

    def to_json(self) -> dict[str, Any]:
        """Return ``{"any": [...]}``."""
        return {"any": [item.to_json() for item in self.conditions]}


@attrs.frozen
class Not(Condition):
    """Holds when its condition does not."""

    condition: Condition = attrs.field()

    @condition.validator
    def _check(self, _attribute: Any, value: Any) -> None:
        if not isinstance(value, Condition):
            msg = f"expected a condition, got {type(value).__name__}"
            raise RuleError(msg, "not")

    def to_json(self) -> dict[str, Any]:
        """Return ``{"not": {...}}``."""
        return {"not": self.condition.to_json()}


def all_(*conditions: Condition) -> AllOf:
    """Combine conditions so that all of them must hold."""
    return AllOf(conditions)


def any_(*conditions: Condition) -> AnyOf:
    """Combine conditions so that at least one must hold."""
    return AnyOf(conditions)


def not_(condition: Condition) -> Not:
    """Negate a condition."""
    return Not(condition)


class FieldRef:
    """The builder for predicates on one field: ``field("employees").ge(50)``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = _check_path(name)

    def __repr__(self) -> str:
        return f"field({self.name!r})"

    def eq(self, value: Any) -> Predicate:
        """Holds when the field equals ``value``."""
        return Predicate(self.name, Op.EQ, value)

    def ne(self, value: Any) -> Predicate:
        """Holds when the field is set and differs from ``value``."""
        return Predicate(self.name, Op.NE, value)

    def lt(self, value: Any) -> Predicate:
        """Holds when the field is less than ``value``."""
        return Predicate(self.name, Op.LT, value)

    def le(self, value: Any) -> Predicate:
        """Holds when the field is less than or equal to ``value``."""
        return Predicate(self.name, Op.LE, value)

    def gt(self, value: Any) -> Predicate:
        """Holds when the field is greater than ``value``."""
        return Predicate(self.name, Op.GT, value)

    def ge(self, value: Any) -> Predicate:
        """Holds when the field is greater than or equal to ``value``."""
        return Predicate(self.name, Op.GE, value)

    def in_(self, values: Iterable[Any]) -> Predicate:
        """Holds when the field equals one of ``values``."""
        return Predicate(self.name, Op.IN, values)

    def not_in(self, values: Iterable[Any]) -> Predicate:
        """Holds when the field is set and equals none of ``values``."""
        return Predicate(self.name, Op.NOT_IN, values)

    def contains(self, value: Any) -> Predicate:
        """Holds when a text field contains ``value``, or a set field holds it."""
        return Predicate(self.name, Op.CONTAINS, value)

    def starts_with(self, prefix: str) -> Predicate:
        """Holds when a text field starts with ``prefix``."""
        return Predicate(self.name, Op.STARTS_WITH, prefix)

    def ends_with(self, suffix: str) -> Predicate:
        """Holds when a text field ends with ``suffix``."""
        return Predicate(self.name, Op.ENDS_WITH, suffix)

    def matches(self, pattern: str) -> Predicate:
        """Holds when the regular expression ``pattern`` is found in a text field (``re.search``)."""
        return Predicate(self.name, Op.MATCHES, pattern)

    def exists(self, present: bool = True) -> Predicate:  # noqa: FBT001, FBT002 - reads as field("x").exists(False)
        """Holds when the field has a value (not missing, not an empty text or set); or lacks one."""
        return Predicate(self.name, Op.EXISTS, present)

    def between(self, low: Any, high: Any) -> Predicate:
        """Holds when ``low <= field <= high``."""
        return Predicate(self.name, Op.BETWEEN, (low, high))

    def before(self, moment: date) -> Predicate:
        """Holds when a date or time field is earlier than ``moment``."""
        return Predicate(self.name, Op.BEFORE, moment)

    def after(self, moment: date) -> Predicate:
        """Holds when a date or time field is later than ``moment``."""
        return Predicate(self.name, Op.AFTER, moment)

    def within_last(self, duration: str | timedelta) -> Predicate:
        """Holds when a date or time field lies in the last ``duration`` (ISO 8601, e.g. ``"P30D"``)."""
        return Predicate(self.name, Op.WITHIN_LAST, duration)

    def older_than(self, duration: str | timedelta) -> Predicate:
        """Holds when a date or time field lies more than ``duration`` before now."""
        return Predicate(self.name, Op.OLDER_THAN, duration)


def field(name: str) -> FieldRef:
    """Start a predicate on the field ``name``: ``field("country").in_(["DE", "FR"])``."""
    return FieldRef(name)


_COMBINATORS = {"all": AllOf, "any": AnyOf}


def _from_json(data: Any, path: str = "") -> Condition:
    def here(step: str) -> str:
        return f"{path}.{step}" if path and not step.startswith("[") else f"{path}{step}"

    if not isinstance(data, Mapping):
        msg = f"a condition is a JSON object, got {type(data).__name__}"
        raise RuleError(msg, path)
    keys = set(data)
    if len(keys) == 1 and (key := next(iter(keys))) in {"all", "any", "not"}:
        body = data[key]
        if key == "not":
            return Not(_from_json(body, here("not")))
        if not isinstance(body, list) or not body:
            msg = f"'{key}' takes a non-empty list of conditions"
            raise RuleError(msg, here(key))
        children = [_from_json(item, here(f"{key}[{i}]")) for i, item in enumerate(body)]
        return _COMBINATORS[key](children)
    if "field" in keys and "op" in keys and keys <= {"field", "op", "value"}:
        try:
            return Predicate(data["field"], data["op"], data.get("value", _MISSING))
        except RuleError as exc:
            raise exc.under(path) if path else exc from None
    msg = (
        "expected {'all': [...]}, {'any': [...]}, {'not': {...}} or "
        f"{{'field': ..., 'op': ..., 'value': ...}}; got keys {sorted(map(str, keys))}"
    )
    raise RuleError(msg, path)
