"""The plain interpreter: the reference semantics, and ``explain``.

The compiler in ``_compile`` must agree with this module on every tree and
record; a property test holds them to it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import clock as _clock
from crmkit.conditions._durations import parse_duration
from crmkit.conditions._schema import FieldKind, Schema
from crmkit.conditions._tree import AllOf, AnyOf, Condition, Not, Op, Predicate
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Explanation", "bad_record", "interpret"]


@attrs.frozen
class Explanation:
    """How one node of a condition fared on one record.

    Attributes:
        condition: The node.
        held: Whether it held.
        actual: For a predicate, the record's value of the field; ``None`` otherwise.
        children: The explanations of the node's children, in order.
    """

    condition: Condition
    held: bool
    actual: Any = None
    children: tuple[Explanation, ...] = ()

    def predicates(self) -> Iterator[Explanation]:
        """Yield the explanations of every predicate (leaf) under this node."""
        if isinstance(self.condition, Predicate):
            yield self
        for child in self.children:
            yield from child.predicates()

    @property
    def failed(self) -> tuple[Explanation, ...]:
        """The predicates that did not hold."""
        return tuple(item for item in self.predicates() if not item.held)

    @property
    def passed(self) -> tuple[Explanation, ...]:
        """The predicates that held."""
        return tuple(item for item in self.predicates() if item.held)

    def lines(self, indent: int = 0) -> list[str]:
        """Render the tree, one node a line: ``[held]`` or ``[failed]``, then the node."""
        mark = "held" if self.held else "failed"
        node = self.condition
        if isinstance(node, Predicate):
            text = f"{node.field} {node.op.value} {node.to_json()['value']!r} (actual: {self.actual!r})"
        else:
            text = "all" if isinstance(node, AllOf) else "any" if isinstance(node, AnyOf) else "not"
        out = [f"{'  ' * indent}[{mark}] {text}"]
        for child in self.children:
            out.extend(child.lines(indent + 1))
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | frozenset | set | tuple | list):
        return len(value) > 0
    return True


def _test(schema: Schema, node: Predicate, value: Any, now: datetime) -> bool:  # noqa: C901, PLR0911, PLR0912 - one branch per operator
    op, expected = node.op, node.value
    if op is Op.EXISTS:
        return _present(value) is expected
    if value is None:
        return False
    if op is Op.EQ:
        return bool(value == expected)
    if op is Op.NE:
        return bool(value != expected)
    if op in {Op.LT, Op.BEFORE}:
        return bool(value < expected)
    if op is Op.LE:
        return bool(value <= expected)
    if op in {Op.GT, Op.AFTER}:
        return bool(value > expected)
    if op is Op.GE:
        return bool(value >= expected)
    if op is Op.IN:
        return any(value == item for item in expected)
    if op is Op.NOT_IN:
        return all(value != item for item in expected)
    if op is Op.BETWEEN:
        return bool(expected[0] <= value) and bool(value <= expected[1])
    if op is Op.CONTAINS:
        return expected in value
    if op is Op.STARTS_WITH:
        return bool(value.startswith(expected))
    if op is Op.ENDS_WITH:
        return bool(value.endswith(expected))
    if op is Op.MATCHES:
        return re.search(expected, value) is not None
    cutoff: date = now - parse_duration(expected)
    upper: date = now
    if schema.fields[node.field].kind is FieldKind.DATE:
        cutoff, upper = cutoff.date(), now.date()  # type: ignore[attr-defined]
    if op is Op.WITHIN_LAST:
        return bool(cutoff <= value <= upper)
    return bool(value < cutoff)  # Op.OLDER_THAN


def _walk(schema: Schema, node: Condition, record: Any, now: datetime, *, explain: bool) -> Explanation:
    if isinstance(node, Predicate):
        value = schema.read(node.field, record)
        return Explanation(node, _test(schema, node, value, now), value)
    if isinstance(node, Not):
        inner = _walk(schema, node.condition, record, now, explain=explain)
        return Explanation(node, not inner.held, None, (inner,) if explain else ())
    assert isinstance(node, AllOf | AnyOf)  # noqa: S101 - the schema validated the tree
    want_all = isinstance(node, AllOf)
    children: list[Explanation] = []
    for child in node.conditions:
        result = _walk(schema, child, record, now, explain=explain)
        children.append(result)
        if not explain and result.held is not want_all:
            break  # short-circuit like the compiled code does
    held = all(c.held for c in children) if want_all else any(c.held for c in children)
    return Explanation(node, held, None, tuple(children) if explain else ())


def _run(
    schema: Schema, condition: Condition, record: Any, now: datetime | None, *, explain: bool
) -> Explanation:
    moment = now if now is not None else _clock.now()
    try:
        return _walk(schema, condition, record, moment, explain=explain)
    except (TypeError, AttributeError) as exc:
        problem = bad_record(schema, record)
        if problem is None:
            raise
        raise problem from exc


def interpret(schema: Schema, condition: Condition, record: Any, now: datetime | None) -> bool:
    """Evaluate a validated condition on a record (the reference semantics)."""
    return _run(schema, condition, record, now, explain=False).held


def explain(schema: Schema, condition: Condition, record: Any, now: datetime | None) -> Explanation:
    """Evaluate every node of a validated condition on a record."""
    return _run(schema, condition, record, now, explain=True)


_KIND_TYPES: dict[FieldKind, tuple[type, ...]] = {
    FieldKind.TEXT: (str,),
    FieldKind.INTEGER: (int,),
    FieldKind.NUMBER: (int, float),
    FieldKind.DECIMAL: (int, float, Decimal),
    FieldKind.BOOLEAN: (bool,),
    FieldKind.DATETIME: (datetime,),
    FieldKind.DATE: (date,),
    FieldKind.TEXT_SET: (frozenset, set, tuple, list),
}


def bad_record(schema: Schema, record: Any) -> ValidationError | None:
    """Say which declared field of a record does not hold the declared kind of value.

    Used when evaluation failed with a ``TypeError``/``AttributeError``, to turn
    it into an error that names the field. Returns ``None`` when every field fits.
    """
    if schema.records == "mapping" and not hasattr(record, "get"):
        msg = f"expected a mapping record, got {type(record).__name__}"
        return ValidationError.single("", msg)
    for name, spec in schema.fields.items():
        try:
            value = schema.read(name, record)
        except AttributeError:
            msg = f"the record ({type(record).__name__}) has no field {name!r}"
            return ValidationError.single(name, msg)
        if value is None:
            continue
        wrong_type = not isinstance(value, _KIND_TYPES[spec.kind]) or (
            spec.kind in {FieldKind.INTEGER, FieldKind.NUMBER, FieldKind.DECIMAL} and isinstance(value, bool)
        )
        naive = isinstance(value, datetime) and value.utcoffset() is None
        if spec.kind is FieldKind.DATE and isinstance(value, datetime):
            wrong_type = True
        if wrong_type:
            msg = f"expected a value of kind {spec.kind}, got {type(value).__name__} {value!r}"
            return ValidationError.single(name, msg)
        if naive:
            msg = f"date-time {value.isoformat()} has no timezone"
            return ValidationError.single(name, msg)
    return None
