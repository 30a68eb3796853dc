"""Property tests: the compiled closure agrees with the plain interpreter, and JSON round-trips."""

import enum
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.conditions import Condition, FieldKind, Op, Predicate, Schema, format_duration, parse_duration
from crmkit.conditions._tree import AllOf, AnyOf, Not

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


class Stage(enum.StrEnum):
    NEW = "new"
    WON = "won"
    LOST = "lost"


SCHEMA = Schema(
    {
        "name": str,
        "stage": Stage,
        "employees": int,
        "ratio": float,
        "amount": Decimal,
        "active": bool,
        "seen_at": datetime,
        "born_on": date,
        "tags": frozenset[str],
    }
)

TEXTS = st.sampled_from(["", "a", "ab", "abc", "b", "ba", "Acme", "acme inc"])
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
DATETIMES = st.builds(
    lambda minutes, tz: (NOW + timedelta(minutes=minutes)).astimezone(tz),
    st.integers(-60 * 24 * 90, 60 * 24 * 10),
    OFFSETS,
)
DATES = st.builds(lambda days: NOW.date() + timedelta(days=days), st.integers(-90, 10))

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": TEXTS,
    "stage": st.sampled_from(["new", "won", "lost"]),
    "employees": st.integers(-3, 3),
    "ratio": st.sampled_from([-1.5, 0.0, 0.5, 2.0]),
    "amount": st.sampled_from([Decimal(-1), Decimal(0), Decimal("0.50"), Decimal(2)]),
    "active": st.booleans(),
    "seen_at": DATETIMES,
    "born_on": DATES,
    "tags": st.frozensets(st.sampled_from(["a", "b", "vip"]), max_size=3),
}
DURATIONS = st.sampled_from(["P1D", "PT6H", "P2W", "P1M", "P1Y", "PT90M", "P3DT4H"])


@st.composite
def predicates(draw: st.DrawFn) -> Predicate:
    name = draw(st.sampled_from(sorted(SCHEMA.fields)))
    spec = SCHEMA.fields[name]
    op = draw(st.sampled_from(sorted(spec.operators)))
    value: Any
    if op is Op.EXISTS:
        value = draw(st.booleans())
    elif op in {Op.WITHIN_LAST, Op.OLDER_THAN}:
        value = draw(DURATIONS)
    elif op in {Op.CONTAINS, Op.STARTS_WITH, Op.ENDS_WITH}:
        value = draw(st.sampled_from(["a", "b", "vip", "acme", ""]))
    elif op is Op.MATCHES:
        value = draw(st.sampled_from(["^a", "b$", "c+", "(?i)ACME", "a|b"]))
    elif op in {Op.IN, Op.NOT_IN}:
        value = draw(st.lists(VALUES[name], min_size=1, max_size=3))
    elif op is Op.BETWEEN:
        low, high = sorted(draw(st.lists(VALUES[name], min_size=2, max_size=2)))
        value = (low, high)
    else:
        value = draw(VALUES[name])
    return Predicate(name, op, value)


CONDITIONS = st.recursive(
    predicates(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4).map(AllOf),
        st.lists(children, min_size=1, max_size=4).map(AnyOf),
        children.map(Not),
    ),
    max_leaves=12,
)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name in SCHEMA.fields:
        choice = draw(st.integers(0, 5))
        if choice == 0:
            continue  # missing key
        record[name] = None if choice == 1 else draw(VALUES[name])
    return record


@given(CONDITIONS, st.lists(records(), min_size=1, max_size=5))
@settings(max_examples=300, deadline=None)
def test_compiled_condition_agrees_with_the_reference_interpreter(condition, rows):
    compiled = SCHEMA.compile(condition, clock=_Fixed())
    for row in rows:
        assert compiled(row) == SCHEMA.evaluate(condition, row, now=NOW)


@given(st.lists(CONDITIONS, max_size=6), st.lists(records(), min_size=1, max_size=5))
@settings(max_examples=150, deadline=None)
def test_first_match_agrees_with_evaluating_rules_in_order(conditions, rows):
    matcher = SCHEMA.first_match(conditions, clock=_Fixed())
    for row in rows:
        expected = next(
            (index for index, rule in enumerate(conditions) if SCHEMA.evaluate(rule, row, now=NOW)),
            None,
        )
        assert matcher(row) == expected


@given(CONDITIONS)
@settings(max_examples=300, deadline=None)
def test_json_form_round_trips_through_text(condition):
    text = json.dumps(condition.to_json())
    restored = Condition.from_json(json.loads(text))
    assert SCHEMA.validate(restored) == SCHEMA.validate(condition)
    assert restored.to_json() == condition.to_json()


@given(CONDITIONS, records())
@settings(max_examples=200, deadline=None)
def test_explain_agrees_with_evaluate(condition, row):
    assert SCHEMA.explain(condition, row, now=NOW).held == SCHEMA.evaluate(condition, row, now=NOW)


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=5000)))
def test_formatted_durations_parse_back_to_the_same_length(delta):
    assert NOW + parse_duration(format_duration(delta)) == NOW + delta


def test_every_kind_is_exercised_by_the_strategies():
    assert {spec.kind for spec in SCHEMA.fields.values()} == set(FieldKind)


class _Fixed:
    def now(self) -> datetime:
        return NOW
