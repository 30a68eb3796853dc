"""The one condition language of crmkit.

Routing, scoring, workflows, segmentation and storage queries all use the
same predicates: ``field``, ``op``, ``value``, combined with all / any / not.
A condition has two equal forms, a Python builder and JSON::

    from crmkit.conditions import Schema, field

    rule = field("country").in_(["DE", "AT"]) & field("employees").ge(50)
    rule.to_json()
    # {'all': [{'field': 'country', 'op': 'in', 'value': ['DE', 'AT']},
    #          {'field': 'employees', 'op': 'ge', 'value': 50}]}

A :class:`Schema` declares the fields a condition may use. It validates a tree
(an unknown field, an operator the field's kind does not support, or a value
of the wrong type is a :class:`~crmkit.errors.RuleError` whose ``path`` points
at the node) and compiles it once into a fast function::

    schema = Schema({"country": str, "employees": int})
    is_target = schema.compile(rule)
    is_target({"country": "DE", "employees": 120})   # True

Semantics: a comparison with a missing value (``None`` or an absent key) is
false for every operator but ``exists``; ``exists`` treats an empty text or set
as missing; ``not`` is plain negation; ``in`` compares with ``==``;
``matches`` is ``re.search`` with a pattern of at most
:data:`MAX_PATTERN_LENGTH` characters; ``between`` includes both ends;
``within_last`` holds for ``now - duration <= value <= now`` and
``older_than`` for ``value < now - duration`` (ISO 8601 durations such as
``P30D``; on a date field, whole days in the clock's timezone).
"""

from crmkit.conditions._durations import format_duration, parse_duration
from crmkit.conditions._evaluate import Explanation
from crmkit.conditions._schema import FieldKind, FieldSpec, Schema
from crmkit.conditions._tree import (
    MAX_PATTERN_LENGTH,
    AllOf,
    AnyOf,
    Condition,
    FieldRef,
    Not,
    Op,
    Predicate,
    all_,
    any_,
    field,
    not_,
)

__all__ = [
    "MAX_PATTERN_LENGTH",
    "AllOf",
    "AnyOf",
    "Condition",
    "Explanation",
    "FieldKind",
    "FieldRef",
    "FieldSpec",
    "Not",
    "Op",
    "Predicate",
    "Schema",
    "all_",
    "any_",
    "field",
    "format_duration",
    "not_",
    "parse_duration",
]
