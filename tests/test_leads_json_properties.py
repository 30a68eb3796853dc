"""Every lead definition read from JSON either builds or raises a RuleError; valid ones round-trip."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.errors import RuleError
from crmkit.leads import ConversionMapping, MatchRule, MergePolicy, RoutingRules, ScoringModel

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)

VALID = {
    RoutingRules: {
        "rules": [
            {
                "name": "dach",
                "condition": {"field": "country", "op": "in", "value": ["DE", "AT"]},
                "action": {"strategy": "round_robin", "team_id": "emea", "quota": 3, "period": "week"},
            },
            {
                "name": "w",
                "condition": {"field": "email", "op": "exists", "value": True},
                "action": {"strategy": "weighted_round_robin", "weights": {"anna": 2, "ben": 1}},
            },
            {
                "name": "t",
                "condition": {"field": "email", "op": "exists", "value": True},
                "action": {"strategy": "territory", "field": "country", "territories": {"US": ["dan"]}},
            },
        ],
        "fallback_queue": "triage",
        "seed": 3,
    },
    ScoringModel: {
        "rules": [
            {
                "name": "dach",
                "condition": {"field": "country", "op": "eq", "value": "DE"},
                "points": 10,
                "dimension": "fit",
            },
            {
                "name": "open",
                "condition": {"field": "activity_type", "op": "eq", "value": "email"},
                "points": 2,
                "dimension": "engagement",
                "group": "mail",
            },
        ],
        "caps": {"mail": 6},
        "decay": {"kind": "linear", "period": "P7D", "per_period": 1},
        "mql": {"total": 20, "fit": 5},
    },
    MatchRule: {"name": "n", "keys": ["domain"], "similar": "name", "threshold": 0.8},
    MergePolicy: {
        "default": "newest",
        "fields": {"company": "longest"},
        "source_priority": ["referral"],
        "survivor": "oldest",
    },
    ConversionMapping: {
        "contact": {"email": "email"},
        "account": {"name": "company"},
        "opportunity": {},
        "opportunity_name": "{company}",
        "create_opportunity": True,
    },
}


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(value, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


@pytest.mark.parametrize("cls", list(VALID), ids=lambda cls: cls.__name__)
def test_the_valid_form_round_trips(cls):
    built = cls.from_json(VALID[cls])
    assert cls.from_json(json.loads(json.dumps(built.to_json()))) == built


@pytest.mark.parametrize("cls", list(VALID), ids=lambda cls: cls.__name__)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_builds_or_is_a_rule_error(cls, data):
    document = VALID[cls]
    path = data.draw(st.sampled_from(list(paths(document))))
    mutated = replaced(document, path, data.draw(JSON_VALUES))
    try:
        built = cls.from_json(mutated)
    except RuleError:
        return
    assert cls.from_json(json.loads(json.dumps(built.to_json()))) == built
