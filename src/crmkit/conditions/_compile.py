"""Compile a validated condition tree into one Python function.

Why generate code: a tree of nested closures costs a Python call per node,
which is several times slower than a hand-written lambda. Instead the tree is
turned into the source of one function, from the validated tree only:

* every value the user gave (strings, numbers, lists, patterns, durations) is
  bound as a constant in the function's namespace and referenced by a
  generated name (``_c0``), never written into the source;
* a field is read by a generated local (``v0``); a mapping key is a bound
  constant too; an attribute name comes from the schema's declared fields,
  which are checked identifiers (letters, digits and ``_``, starting with a
  letter, not a keyword);
* the function runs with no builtins.

So no user text is ever evaluated as code, and nothing beyond the declared
fields is reachable.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from crmkit import clock as _clock
from crmkit.conditions._durations import parse_duration
from crmkit.conditions._evaluate import bad_record
from crmkit.conditions._schema import FieldKind
from crmkit.conditions._tree import AllOf, AnyOf, Not, Op, Predicate

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from crmkit.clock import Clock
    from crmkit.conditions._schema import Schema
    from crmkit.conditions._tree import Condition

__all__ = ["compile_first_match", "compile_predicate", "generate"]

_COMPARE = {Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">=", Op.BEFORE: "<", Op.AFTER: ">"}


class _Generator:
    """Turns validated trees into expressions over hoisted field reads."""

    def __init__(self, schema: Schema, clock: Clock | None) -> None:
        self.schema = schema
        self.namespace: dict[str, Any] = {"__builtins__": {}}
        self.reads: dict[str, str] = {}
        self.read_lines: list[str] = []
        self.time_lines: list[str] = []
        self._now_fn = clock.now if clock is not None else _clock.now
        self._consts = 0

    def const(self, value: Any) -> str:
        name = f"_c{self._consts}"
        self._consts += 1
        self.namespace[name] = value
        return name

    def read(self, field: str) -> str:
        """Return the local holding the field's value, emitting its read once."""
        if field in self.reads:
            return self.reads[field]
        var = f"v{len(self.reads)}"
        self.reads[field] = var
        for index, (name, by_key) in enumerate(self.schema.steps(field)):
            source = "r" if index == 0 else var
            access = f"{source}.get({self.const(name)})" if by_key else f"{source}.{name}"
            if index == 0:
                self.read_lines.append(f"{var} = {access}")
            else:
                self.read_lines.append(f"{var} = None if {var} is None else {access}")
        return var

    def now(self) -> str:
        if not self.time_lines:
            self.time_lines.append(f"now = {self.const(self._now_fn)}()")
        return "now"

    def cutoff(self, node: Predicate) -> tuple[str, str]:
        """Emit the per-call window for a relative time operator: (cutoff, upper bound)."""
        now = self.now()
        delta = self.const(parse_duration(node.value))
        index = len(self.time_lines)
        if self.schema.fields[node.field].kind is FieldKind.DATE:
            self.time_lines.append(f"t{index} = ({now} - {delta}).date()")
            if "today = now.date()" not in self.time_lines:
                self.time_lines.append("today = now.date()")
            return f"t{index}", "today"
        self.time_lines.append(f"t{index} = {now} - {delta}")
        return f"t{index}", now

    def expr(self, node: Condition) -> str:
        if isinstance(node, AllOf | AnyOf):
            joiner = " and " if isinstance(node, AllOf) else " or "
            return "(" + joiner.join(self.expr(child) for child in node.conditions) + ")"
        if isinstance(node, Not):
            return f"(not {self.expr(node.condition)})"
        assert isinstance(node, Predicate)  # noqa: S101 - the schema validated the tree
        return self.predicate(node)

    def predicate(self, node: Predicate) -> str:  # noqa: C901, PLR0911, PLR0912 - one branch per operator
        v = self.read(node.field)
        op = node.op
        kind = self.schema.fields[node.field].kind
        if op is Op.EXISTS:
            if kind in {FieldKind.TEXT, FieldKind.TEXT_SET}:
                present = f"({v} is not None and {self.const(len)}({v}) > 0)"
            else:
                present = f"({v} is not None)"
            return present if node.value else f"(not {present})"
        if op is Op.EQ:
            return f"({v} == {self.const(node.value)})"
        if op is Op.IN:
            return f"({v} in {self.const(frozenset(node.value))})"
        # Every other operator is false on a missing value.
        guard = f"{v} is not None and "
        if op is Op.NE:
            return f"({guard}{v} != {self.const(node.value)})"
        if op is Op.NOT_IN:
            return f"({guard}{v} not in {self.const(frozenset(node.value))})"
        if op in _COMPARE:
            return f"({guard}{v} {_COMPARE[op]} {self.const(node.value)})"
        if op is Op.BETWEEN:
            low, high = (self.const(bound) for bound in node.value)
            return f"({guard}{low} <= {v} <= {high})"
        if op is Op.CONTAINS:
            return f"({guard}{self.const(node.value)} in {v})"
        if op is Op.STARTS_WITH:
            return f"({guard}{v}.startswith({self.const(node.value)}))"
        if op is Op.ENDS_WITH:
            return f"({guard}{v}.endswith({self.const(node.value)}))"
        if op is Op.MATCHES:
            return f"({guard}{self.const(re.compile(node.value).search)}({v}) is not None)"
        cutoff, upper = self.cutoff(node)
        if op is Op.WITHIN_LAST:
            return f"({guard}{cutoff} <= {v} <= {upper})"
        return f"({guard}{v} < {cutoff})"  # Op.OLDER_THAN

    def function(self, name: str, body: list[str]) -> str:
        lines = [f"def {name}(r):", "    try:"]
        lines += [f"        {line}" for line in (*self.read_lines, *self.time_lines, *body)]
        lines += [
            "    except _record_errors as exc:",
            "        problem = _bad_record(r)",
            "        if problem is None:",
            "            raise",
            "        raise problem from exc",
        ]
        self.namespace["_record_errors"] = (TypeError, AttributeError)
        self.namespace["_bad_record"] = lambda record: bad_record(self.schema, record)
        return "\n".join(lines) + "\n"


def generate(
    schema: Schema, conditions: Sequence[Condition], clock: Clock | None, *, first_match: bool
) -> tuple[str, dict[str, Any]]:
    """Return the generated source and its namespace (exposed for tests and debugging)."""
    gen = _Generator(schema, clock)
    if first_match:
        body = [f"if {gen.expr(node)}: return {index}" for index, node in enumerate(conditions)]
        body.append("return None")
        return gen.function("first_match", body), gen.namespace
    (condition,) = conditions
    expression = gen.expr(condition)
    return gen.function("predicate", [f"return {expression}"]), gen.namespace


def _build(source: str, namespace: dict[str, Any], name: str) -> Callable[[Any], Any]:
    code = compile(source, f"<crmkit {name}>", "exec")
    exec(code, namespace)  # noqa: S102 - source built from a validated tree only; values are bound constants
    function: Callable[[Any], Any] = namespace[name]
    return function


def compile_predicate(schema: Schema, condition: Condition, clock: Clock | None) -> Callable[[Any], bool]:
    """Compile one validated condition into ``record -> bool``."""
    source, namespace = generate(schema, [condition], clock, first_match=False)
    return _build(source, namespace, "predicate")


def compile_first_match(
    schema: Schema, conditions: Sequence[Condition], clock: Clock | None
) -> Callable[[Any], int | None]:
    """Compile validated ordered conditions into ``record -> index of the first that holds``."""
    source, namespace = generate(schema, conditions, clock, first_match=True)
    return _build(source, namespace, "first_match")
