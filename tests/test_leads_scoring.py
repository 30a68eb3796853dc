"""Scoring leads: fit and engagement rules, caps, decay, MQL, and the naive-Bayes predictive model."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock, use_clock
from crmkit.conditions import Schema, field
from crmkit.entities import Activity, Lead
from crmkit.errors import RuleError, ValidationError
from crmkit.events import EntityUpdated, StageChanged
from crmkit.leads import (
    Decay,
    MqlThresholds,
    PredictiveModel,
    Scorer,
    ScoreRule,
    ScoringModel,
    apply_score,
    score_lead,
)
from crmkit.lifecycle import LEAD_LIFECYCLE

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CLOCK = FixedClock(NOW)

MODEL = ScoringModel(
    rules=[
        ScoreRule(name="dach", condition=field("country").in_(["DE", "AT", "CH"]), points=20),
        ScoreRule(name="big", condition=field("employees").ge(500), points=30),
        ScoreRule(name="competitor", condition=field("domain").eq("rival.example"), points=-50),
        ScoreRule(
            name="email_open",
            condition=field("activity_type").eq("email"),
            points=5,
            dimension="engagement",
            group="email",
        ),
        ScoreRule(
            name="meeting", condition=field("activity_type").eq("meeting"), points=40, dimension="engagement"
        ),
    ],
    caps={"email": 12},
    decay=Decay(kind="half_life", period="P30D"),
    mql=MqlThresholds(total=60, fit=20),
)


@pytest.fixture(autouse=True)
def _fixed_clock():
    """Every record built without an explicit time gets the test's fixed time."""
    with use_clock(CLOCK):
        yield


def activity(kind, days_ago):
    return Activity(
        activity_type=kind,
        occurred_at=NOW - timedelta(days=days_ago),
        created_at=NOW - timedelta(days=days_ago),
    )


def test_fit_rules_add_their_points_and_each_line_says_which_rule():
    card = Scorer(MODEL, clock=CLOCK).score(Lead(email="a@b.com", country="DE", employees=900))
    assert (card.fit, card.engagement, card.total) == (50, 0, 50)
    assert [line.rule for line in card.lines] == ["dach", "big"]
    assert not card.mql


def test_negative_points_take_some_away():
    card = score_lead(Lead(email="a@rival.example", country="DE", domain="rival.example"), MODEL, clock=CLOCK)
    assert card.fit == -30


def test_engagement_decays_with_a_half_life_and_each_line_shows_the_decay():
    card = Scorer(MODEL, clock=CLOCK).score(
        Lead(email="a@b.com"), [activity("meeting", 30), activity("meeting", 0)]
    )
    assert [line.points for line in card.lines] == [20, 40]
    assert "P30D: 40 -> 20" in card.lines[0].reason
    assert card.engagement == 60


def test_linear_decay_takes_points_per_whole_period_and_stops_at_zero():
    decay = Decay(kind="linear", period="P7D", per_period=2)
    assert [decay.apply(10, timedelta(days=d)) for d in (0, 6, 7, 14, 100)] == [10, 10, 8, 6, 0]
    assert decay.apply(-10, timedelta(days=14)) == -6


def test_a_group_cap_is_a_line_of_its_own_so_the_lines_still_add_up():
    opens = [activity("email", 0) for _ in range(5)]
    card = Scorer(MODEL, clock=CLOCK).score(Lead(email="a@b.com"), opens)
    assert card.engagement == 12
    assert card.lines[-1].rule == "cap:email"
    assert card.lines[-1].points == -13
    assert sum(line.points for line in card.lines) == card.total


def test_reaching_every_threshold_makes_the_lead_marketing_qualified():
    lead = Lead(email="a@b.com", country="DE", stage="contacted")
    card = Scorer(MODEL, clock=CLOCK).score(lead, [activity("meeting", 0)])
    assert card.mql
    assert "marketing-qualified" in card.explain()
    scored = apply_score(lead, card, lifecycle=LEAD_LIFECYCLE, transition="qualify", actor="scoring")
    assert scored.moved
    assert scored.lead.stage == "qualified"
    assert scored.lead.score == 60
    assert "mql" in scored.lead.tags
    assert [type(event) for event in scored.events] == [EntityUpdated, StageChanged]


def test_a_stage_that_does_not_allow_the_transition_keeps_the_lead_in_place():
    lead = Lead(email="a@b.com", country="DE")  # "new" cannot be qualified directly
    card = Scorer(MODEL, clock=CLOCK).score(lead, [activity("meeting", 0)])
    scored = apply_score(lead, card, lifecycle=LEAD_LIFECYCLE, transition="qualify")
    assert not scored.moved
    assert scored.lead.stage == "new"
    assert apply_score(scored.lead, card).events == ()  # nothing changed the second time


def test_a_model_round_trips_through_json():
    assert ScoringModel.from_json(json.loads(json.dumps(MODEL.to_json()))) == MODEL


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {"rules": [{"name": "a", "condition": {"field": "x", "op": "nope"}, "points": 1}]},
            "rules[0].condition.op",
        ),
        (
            {"rules": [{"name": "a", "condition": {"field": "x", "op": "exists"}, "points": "1"}]},
            "rules[0].points",
        ),
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "condition": {"field": "x", "op": "exists"},
                        "points": 1,
                        "dimension": "vibes",
                    }
                ]
            },
            "rules[0].dimension",
        ),
        ({"rules": [], "caps": {"email": 3}}, "caps.email"),
        ({"rules": [], "decay": {"kind": "half_life", "period": "P1M"}}, "decay.period"),
        ({"rules": [], "decay": {"kind": "linear", "period": "P7D"}}, "decay.per_period"),
        ({"rules": [], "mql": {}}, "mql"),
    ],
)
def test_bad_models_are_rule_errors_with_a_path(data, path):
    with pytest.raises(RuleError) as error:
        ScoringModel.from_json(data)
    assert error.value.path == path


def test_a_condition_on_an_unknown_field_is_refused_when_the_scorer_is_built():
    model = ScoringModel(
        rules=[
            ScoreRule(name="ok", condition=field("country").eq("DE"), points=1),
            ScoreRule(name="bad", condition=field("planet").eq("mars"), points=1),
        ]
    )
    with pytest.raises(RuleError) as error:
        Scorer(model)
    assert error.value.path == "rules[1].condition.field"


def test_an_engagement_without_an_aware_time_is_a_validation_error():
    schema = Schema({"kind": str, "occurred_at": datetime})
    model = ScoringModel(
        rules=[ScoreRule(name="e", condition=field("kind").eq("x"), points=1, dimension="engagement")]
    )
    with pytest.raises(ValidationError) as error:
        Scorer(model, engagement_schema=schema).score(Lead(email="a@b.com"), [{"kind": "x"}], at=NOW)
    assert error.value.paths == ("engagements[0]",)


@settings(max_examples=50, deadline=None)
@given(
    ages=st.lists(st.integers(0, 400), max_size=8),
    kinds=st.lists(st.sampled_from(["email", "meeting", "call"]), min_size=8, max_size=8),
    employees=st.integers(0, 5000),
)
def test_the_lines_always_add_up_to_the_score(ages, kinds, employees):
    engagements = [activity(kind, age) for kind, age in zip(kinds, ages, strict=False)]
    card = Scorer(MODEL, clock=CLOCK).score(Lead(email="a@b.com", employees=employees), engagements)
    assert sum(line.points for line in card.lines) == card.total == card.fit + card.engagement
    assert sum(line.points for line in card.lines if line.group == "email") <= 12


# -- predictive scoring --------------------------------------------------------------------------------

HISTORY = [
    (Lead(email="a@b.com", country="DE", source="referral"), True),
    (Lead(email="a@b.com", country="DE", source="web_form"), True),
    (Lead(email="a@b.com", country="DE", source="referral"), True),
    (Lead(email="a@b.com", country="US", source="web_form"), False),
    (Lead(email="a@b.com", country="US", source="purchased_list"), False),
    (Lead(email="a@b.com", country="DE", source="purchased_list"), False),
]


def test_the_predictive_model_learns_frequency_tables_with_laplace_smoothing():
    model = PredictiveModel.train(HISTORY, ["country", "source"])
    assert model.counts["country"] == {"DE": (3, 1), "US": (0, 2)}
    prediction = model.predict(Lead(email="x@y.com", country="DE", source="referral"))
    # prior 4/8; P(DE|won)=(3+1)/(3+3), P(DE|lost)=(1+1)/(3+3); P(ref|won)=(2+1)/(3+4), P(ref|lost)=(0+1)/(3+4)
    expected_odds = (4 / 6) / (2 / 6) * (3 / 7) / (1 / 7)
    assert prediction.probability == pytest.approx(expected_odds / (1 + expected_odds))
    assert [f.field for f in prediction.factors] == ["(prior)", "country", "source"]
    assert math.fsum(f.log_odds for f in prediction.factors) == pytest.approx(prediction.log_odds)
    assert "country = DE" in prediction.explain()


def test_missing_values_say_nothing_and_unseen_values_are_smoothed():
    model = PredictiveModel.train(HISTORY, ["country", "source"])
    assert len(model.predict(Lead(email="x@y.com")).factors) == 1
    unseen = model.predict(Lead(email="x@y.com", country="JP"))
    assert unseen.factors[1].won == unseen.factors[1].lost == 0


def test_numbers_can_be_grouped_into_ranges():
    history = [(Lead(email="a@b.com", employees=n), n > 100) for n in (5, 50, 150, 900)]
    model = PredictiveModel.train(history, ["employees"], buckets={"employees": [10, 100, 1000]})
    assert model.counts["employees"] == {"<10": (0, 1), "10-100": (0, 1), "100-1000": (2, 0)}
    assert model.predict(Lead(email="a@b.com", employees=500)).probability > 0.5


def test_the_predictive_model_round_trips_through_json_and_refuses_bad_data():
    model = PredictiveModel.train(HISTORY, ["country", "source", "tags"])
    assert PredictiveModel.from_json(json.loads(json.dumps(model.to_json()))) == model
    with pytest.raises(RuleError) as error:
        PredictiveModel.from_json(
            {"fields": ["country"], "won": 1, "lost": 1, "counts": {"country": {"DE": [1]}}}
        )
    assert error.value.path == "counts.country.DE"
    with pytest.raises(RuleError):
        PredictiveModel.train(HISTORY, ["planet"])
    with pytest.raises(RuleError):
        PredictiveModel.train(HISTORY, ["country"], alpha=0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["DE", "US", "FR", None]),
            st.sampled_from(["referral", "web_form", None]),
            st.booleans(),
        ),
        max_size=30,
    ),
    st.sampled_from(["DE", "US", "JP", None]),
)
def test_a_prediction_is_a_probability_and_its_factors_add_up(rows, country):
    history = [(Lead(email="a@b.com", country=c, source=s), won) for c, s, won in rows]
    model = PredictiveModel.train(history, ["country", "source"])
    prediction = model.predict(Lead(email="a@b.com", country=country))
    assert 0 < prediction.probability < 1
    assert math.fsum(f.log_odds for f in prediction.factors) == pytest.approx(prediction.log_odds)
    assert PredictiveModel.from_json(model.to_json()) == model
