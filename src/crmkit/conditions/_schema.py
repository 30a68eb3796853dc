"""Declared fields: what a condition may look at, and the type each value must have."""

from __future__ import annotations

import enum
import keyword
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

import attrs

from crmkit.conditions._tree import AllOf, AnyOf, Condition, Not, Op, Predicate
from crmkit.errors import RuleError

if TYPE_CHECKING:
    from crmkit.clock import Clock
    from crmkit.conditions._evaluate import Explanation

__all__ = ["FieldKind", "FieldSpec", "Schema"]

_MAX_DEPTH = 3


class FieldKind(enum.StrEnum):
    """The kinds of value a declared field holds."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    TEXT_SET = "text_set"


_ORDERED = {Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.IN, Op.NOT_IN, Op.BETWEEN, Op.EXISTS}
_TEXT_OPS = {Op.CONTAINS, Op.STARTS_WITH, Op.ENDS_WITH, Op.MATCHES}
_TIME_OPS = {Op.BEFORE, Op.AFTER, Op.WITHIN_LAST, Op.OLDER_THAN}
_OPERATORS: dict[FieldKind, frozenset[Op]] = {
    FieldKind.TEXT: frozenset(_ORDERED | _TEXT_OPS),
    FieldKind.INTEGER: frozenset(_ORDERED),
    FieldKind.NUMBER: frozenset(_ORDERED),
    FieldKind.DECIMAL: frozenset(_ORDERED),
    FieldKind.BOOLEAN: frozenset({Op.EQ, Op.NE, Op.EXISTS}),
    FieldKind.DATETIME: frozenset(_ORDERED | _TIME_OPS),
    FieldKind.DATE: frozenset(_ORDERED | _TIME_OPS),
    FieldKind.TEXT_SET: frozenset({Op.CONTAINS, Op.EXISTS}),
}
_CHOICE_OPS = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.EXISTS})


def _choices(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


@attrs.frozen
class FieldSpec:
    """One declared field.

    Attributes:
        kind: The kind of value the field holds.
        choices: For a text field with a closed vocabulary (an enum), the allowed values.
    """

    kind: FieldKind = attrs.field(converter=FieldKind)
    choices: frozenset[str] | None = attrs.field(default=None, converter=_choices)

    @property
    def operators(self) -> frozenset[Op]:
        """The operators this field accepts."""
        ops = _OPERATORS[self.kind]
        return ops & _CHOICE_OPS if self.choices is not None else ops


_PLAIN_KINDS: dict[type, FieldKind] = {
    bool: FieldKind.BOOLEAN,
    int: FieldKind.INTEGER,
    float: FieldKind.NUMBER,
    Decimal: FieldKind.DECIMAL,
    str: FieldKind.TEXT,
    datetime: FieldKind.DATETIME,
    date: FieldKind.DATE,
}
_SET_ORIGINS = (frozenset, set, tuple, list, Sequence, typing.AbstractSet)


def _strip_optional(tp: Any) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in {typing.Union, types.UnionType} and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return rest[0] if len(rest) == 1 else tp
    return tp


def _spec_for(tp: Any) -> FieldSpec | None:
    """Map a Python type annotation to a field spec, or None when conditions cannot use it."""
    if isinstance(tp, FieldSpec):
        return tp
    tp = _strip_optional(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        choices: frozenset[str] = frozenset(str(member.value) for member in tp)
        return FieldSpec(FieldKind.TEXT, choices)
    if tp in _PLAIN_KINDS:
        return FieldSpec(_PLAIN_KINDS[tp])
    origin = typing.get_origin(tp)
    if origin is not None and (origin in _SET_ORIGINS or origin is typing.AbstractSet):
        args = [arg for arg in typing.get_args(tp) if arg is not Ellipsis]
        if args == [str]:
            return FieldSpec(FieldKind.TEXT_SET)
    return None


@attrs.frozen
class _Step:
    name: str
    by_key: bool


class Schema:
    """The fields conditions may use, and how to read them from a record.

    Only declared fields are reachable: a condition naming anything else is a
    :class:`~crmkit.errors.RuleError`, and compiled code reads nothing but the
    declared fields.

    Args:
        fields: Field name -> a Python type (``str``, ``int``, ``float``,
            ``Decimal``, ``bool``, ``datetime``, ``date``, an ``enum`` class,
            ``frozenset[str]``, optionally ``X | None``) or a :class:`FieldSpec`.
            Dotted names reach nested values (``"address.country"``).
        records: ``"mapping"`` when records are dicts (read with ``.get``, so a
            missing key is a missing value) or ``"attributes"`` for objects
            such as crmkit entities.

    Raises:
        RuleError: If a field name or type cannot be used.
    """

    __slots__ = ("_fields", "_records", "_steps")

    def __init__(
        self,
        fields: Mapping[str, Any],
        *,
        records: Literal["mapping", "attributes"] = "mapping",
    ) -> None:
        if records not in {"mapping", "attributes"}:
            msg = f"records must be 'mapping' or 'attributes', got {records!r}"
            raise RuleError(msg, "records")
        self._records: Literal["mapping", "attributes"] = records
        self._fields: dict[str, FieldSpec] = {}
        self._steps: dict[str, tuple[_Step, ...]] = {}
        for name, tp in fields.items():
            self._declare(name, tp, tuple(_Step(part, records == "mapping") for part in name.split(".")))

    def _declare(self, name: str, tp: Any, steps: tuple[_Step, ...]) -> None:
        try:
            Predicate(name, Op.EXISTS)  # reuses the field-name check
        except RuleError as exc:
            raise RuleError(exc.message, name) from None
        for step in steps:
            if not step.by_key and keyword.iskeyword(step.name):
                msg = f"{step.name!r} is a Python keyword and cannot be read as an attribute"
                raise RuleError(msg, name)
        spec = _spec_for(tp)
        if spec is None:
            msg = f"conditions cannot use a field of type {tp!r}"
            raise RuleError(msg, name)
        self._fields[name] = spec
        self._steps[name] = steps

    @classmethod
    def for_entity(
        cls,
        entity: type,
        *,
        custom_fields: Mapping[str, Any] | None = None,
        exclude: Iterable[str] = (),
    ) -> Schema:
        """Declare every field of an ``attrs`` class that conditions can use.

        Scalar fields, enums and sets of text are declared by name; nested
        ``attrs`` values (an address, a ``Money`` amount) by dotted name
        (``"address.country"``, ``"amount.amount"``); lists and times of day
        are left out. Typed custom fields are declared under
        ``"custom_fields.<name>"``.

        Args:
            entity: The ``attrs`` class, such as :class:`crmkit.Lead`.
            custom_fields: Custom field name -> type, for fields the host
                application defines.
            exclude: Field names to leave out.
        """
        schema = cls({}, records="attributes")
        skip = set(exclude)
        schema._declare_attrs(entity, (), skip, 0)
        for name, tp in (custom_fields or {}).items():
            steps = (_Step("custom_fields", by_key=False), _Step(name, by_key=True))
            schema._declare(f"custom_fields.{name}", tp, steps)
        return schema

    def _declare_attrs(self, cls: type, prefix: tuple[_Step, ...], skip: set[str], depth: int) -> None:
        hints = typing.get_type_hints(cls)
        for attribute in attrs.fields(cls):
            steps = (*prefix, _Step(attribute.name, by_key=False))
            name = ".".join(step.name for step in steps)
            if name in skip or attribute.name.startswith("_"):
                continue
            tp = _strip_optional(hints.get(attribute.name, attribute.type))
            if isinstance(tp, type) and attrs.has(tp):
                if depth < _MAX_DEPTH:
                    self._declare_attrs(tp, steps, skip, depth + 1)
            elif _spec_for(tp) is not None:
                self._declare(name, tp, steps)

    @property
    def fields(self) -> Mapping[str, FieldSpec]:
        """The declared fields, by name."""
        return types.MappingProxyType(self._fields)

    @property
    def records(self) -> Literal["mapping", "attributes"]:
        """How records are read: ``"mapping"`` or ``"attributes"``."""
        return self._records

    def steps(self, name: str) -> tuple[tuple[str, bool], ...]:
        """How a declared field is read: ``(name, by_key)`` per step."""
        return tuple((step.name, step.by_key) for step in self._steps[name])

    def __repr__(self) -> str:
        return f"Schema({sorted(self._fields)!r}, records={self._records!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schema):
            return NotImplemented
        return self._fields == other._fields and self._steps == other._steps

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._fields)))

    # -- validation ---------------------------------------------------------------------------

    def validate(self, condition: Condition | Mapping[str, Any]) -> Condition:
        """Check a condition against the declared fields; return it with typed values.

        JSON values are turned into the field's type (``"2026-01-31"`` into a
        ``date`` for a date field, ``"12.50"`` into a ``Decimal``), so a
        condition read from JSON and one built in Python validate to equal trees.

        Args:
            condition: A condition tree, or its JSON form.

        Raises:
            RuleError: For an unknown field, an operator the field's kind does
                not support, or a value of the wrong type; ``path`` points at the node.
        """
        if not isinstance(condition, Condition):
            condition = Condition.from_json(condition)
        return self._validate(condition, "")

    def _validate(self, node: Condition, path: str) -> Condition:
        if isinstance(node, Predicate):
            try:
                return self._validate_predicate(node)
            except RuleError as exc:
                raise exc.under(path) if path else exc from None
        if isinstance(node, AllOf | AnyOf):
            word = "all" if isinstance(node, AllOf) else "any"
            children = [
                self._validate(child, _join(path, f"{word}[{index}]"))
                for index, child in enumerate(node.conditions)
            ]
            return type(node)(children)
        if isinstance(node, Not):
            return Not(self._validate(node.condition, _join(path, "not")))
        msg = f"expected a condition, got {type(node).__name__}"
        raise RuleError(msg, path)

    def _validate_predicate(self, node: Predicate) -> Predicate:
        spec = self._fields.get(node.field)
        if spec is None:
            known = ", ".join(sorted(self._fields)) or "none"
            msg = f"unknown field {node.field!r}; declared fields: {known}"
            raise RuleError(msg, "field")
        if node.op not in spec.operators:
            allowed = ", ".join(sorted(op.value for op in spec.operators))
            msg = (
                f"operator '{node.op}' does not apply to {spec.kind} field {node.field!r}; "
                f"use one of: {allowed}"
            )
            raise RuleError(msg, "op")
        if node.op in {Op.EXISTS, Op.WITHIN_LAST, Op.OLDER_THAN, Op.MATCHES}:
            return node
        if spec.kind is FieldKind.TEXT_SET or node.op in _TEXT_OPS:
            return node  # the tree already checked these take a string
        if isinstance(node.value, tuple):
            value: Any = tuple(
                _coerce(spec, item, f"value[{index}]") for index, item in enumerate(node.value)
            )
            if node.op is Op.BETWEEN and value[0] > value[1]:
                msg = f"'between' needs low <= high, got {value[0]!r} > {value[1]!r}"
                raise RuleError(msg, "value")
            if all(new is old for new, old in zip(value, node.value, strict=True)):
                return node
        else:
            value = _coerce(spec, node.value, "value")
            if value is node.value:
                return node  # already of the field's type: the checked node as it is
        return Predicate(node.field, node.op, value)

    # -- evaluation ---------------------------------------------------------------------------

    def compile(
        self, condition: Condition | Mapping[str, Any], *, clock: Clock | None = None
    ) -> Callable[[Any], bool]:
        """Validate a condition and compile it into a fast predicate ``record -> bool``.

        Args:
            condition: A condition tree or its JSON form.
            clock: Where "now" comes from for ``within_last`` and
                ``older_than``; the current clock at each call by default.

        Raises:
            RuleError: If the condition does not fit the schema.
        """
        from crmkit.conditions._compile import compile_predicate  # noqa: PLC0415 - cycle: compile needs Schema

        return compile_predicate(self, self.validate(condition), clock)

    def first_match(
        self,
        conditions: Sequence[Condition | Mapping[str, Any]],
        *,
        clock: Clock | None = None,
    ) -> Callable[[Any], int | None]:
        """Compile ordered conditions into ``record -> index of the first that holds`` (or ``None``).

        This is the shape of routing and assignment rules ("first match
        wins"); all conditions are compiled into one function.

        Raises:
            RuleError: If a condition does not fit; ``path`` starts with ``[index]``.
        """
        from crmkit.conditions._compile import compile_first_match  # noqa: PLC0415 - cycle: compile needs Schema

        checked = []
        for index, condition in enumerate(conditions):
            try:
                checked.append(self.validate(condition))
            except RuleError as exc:
                raise exc.under(f"[{index}]") from None  # noqa: EM102 - a path, not a message
        return compile_first_match(self, checked, clock)

    def evaluate(self, condition: Condition, record: Any, *, now: datetime | None = None) -> bool:
        """Evaluate a condition on one record with the plain interpreter (no compilation).

        Args:
            condition: The condition.
            record: A mapping or an object, as the schema declares.
            now: The time for ``within_last`` and ``older_than``; the current clock's by default.
        """
        from crmkit.conditions._evaluate import interpret  # noqa: PLC0415 - cycle: evaluate needs Schema

        return interpret(self, self.validate(condition), record, now)

    def explain(self, condition: Condition, record: Any, *, now: datetime | None = None) -> Explanation:
        """Evaluate every node of a condition on one record and say which held and which failed.

        Returns:
            The root :class:`Explanation`; its ``children`` mirror the tree.
        """
        from crmkit.conditions._evaluate import explain  # noqa: PLC0415 - cycle: evaluate needs Schema

        return explain(self, self.validate(condition), record, now)

    def read(self, name: str, record: Any) -> Any:
        """Read a declared field from a record; ``None`` when any step is missing."""
        value = record
        for step in self._steps[name]:
            if value is None:
                return None
            value = value.get(step.name) if step.by_key else getattr(value, step.name)
        return value


def _join(path: str, step: str) -> str:
    if not path:
        return step
    return f"{path}{step}" if step.startswith("[") else f"{path}.{step}"


def _coerce(spec: FieldSpec, value: Any, where: str) -> Any:  # noqa: C901, PLR0912, PLR0915 - one branch per kind
    kind = spec.kind
    if kind is FieldKind.TEXT:
        if not isinstance(value, str):
            msg = f"expected text, got {type(value).__name__} {value!r}"
            raise RuleError(msg, where)
        if spec.choices is not None and value not in spec.choices:
            msg = f"{value!r} is not one of: {', '.join(sorted(spec.choices))}"
            raise RuleError(msg, where)
        return value
    if kind is FieldKind.BOOLEAN:
        if not isinstance(value, bool):
            msg = f"expected true or false, got {value!r}"
            raise RuleError(msg, where)
        return value
    if kind in {FieldKind.INTEGER, FieldKind.NUMBER}:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            msg = f"expected a number, got {type(value).__name__} {value!r}"
            raise RuleError(msg, where)
        return value
    if kind is FieldKind.DECIMAL:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            msg = f"expected a decimal number, got {type(value).__name__} {value!r}"
            raise RuleError(msg, where)
        try:
            number = Decimal(str(value)) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            msg = f"expected a decimal number, got {value!r}"
            raise RuleError(msg, where) from None
        if not number.is_finite():
            msg = f"{value!r} is not a comparable number"
            raise RuleError(msg, where)
        return number
    if kind is FieldKind.DATETIME:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                msg = f"expected an ISO 8601 date-time with offset, got {value!r}"
                raise RuleError(msg, where) from None
        if not isinstance(value, datetime):
            msg = f"expected a date-time, got {type(value).__name__} {value!r}"
            raise RuleError(msg, where)
        if value.utcoffset() is None:
            msg = f"date-time {value.isoformat()} has no timezone"
            raise RuleError(msg, where)
        return value
    if kind is FieldKind.DATE:
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                msg = f"expected an ISO 8601 date, got {value!r}"
                raise RuleError(msg, where) from None
        if isinstance(value, datetime) or not isinstance(value, date):
            msg = f"expected a date, got {type(value).__name__} {value!r}"
            raise RuleError(msg, where)
        return value
    msg = f"no values are compared with a {kind} field"  # pragma: no cover - TEXT_SET returns earlier
    raise RuleError(msg, where)
