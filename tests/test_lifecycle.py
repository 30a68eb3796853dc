"""Lifecycles: definitions as validated data, pure transitions, built-ins and presets, helpers."""

import json
import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from crmkit import FixedClock, use_clock
from crmkit.conditions import field
from crmkit.entities import Contact, EntityRef, Lead, Opportunity, StageChange, Ticket
from crmkit.errors import NotFound, RuleError, TransitionError, ValidationError
from crmkit.events import StageChanged, event_from_data, event_to_data
from crmkit.lifecycle import (
    CUSTOMER_LIFECYCLE,
    FRAPPE_CRM_DEAL_STAGES,
    HUBSPOT_LIFECYCLE_STAGES,
    LEAD_LIFECYCLE,
    LIFECYCLES,
    ODOO_PIPELINE,
    OPPORTUNITY_LIFECYCLE,
    SALESFORCE_LEAD_STATUS,
    SALESFORCE_OPPORTUNITY_STAGES,
    TICKET_LIFECYCLE,
    BackwardPolicy,
    ForecastCategory,
    Lifecycle,
    Stage,
    StageCategory,
    Transition,
    stage_periods,
    time_in_stage,
)
from crmkit.money import Money

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def small_lifecycle(**changes):
    definition = {
        "name": "small",
        "entity": "lead",
        "stages": [
            {"name": "new", "category": "open"},
            {"name": "working", "category": "open"},
            {"name": "done", "category": "won", "terminal": True},
            {"name": "dropped", "category": "lost", "terminal": True},
        ],
        "transitions": [
            {"name": "work", "sources": ["new"], "target": "working"},
            {
                "name": "finish",
                "sources": ["working"],
                "target": "done",
                "guard": {"all": [{"field": "score", "op": "ge", "value": 10}]},
            },
            {"name": "drop", "sources": ["*"], "target": "dropped", "required": ["title"]},
        ],
    }
    definition.update(changes)
    return Lifecycle.from_json(definition)


def lead(**fields):
    return Lead(email="ada@example.com", created_at=T0, **fields)


# -- applying ---------------------------------------------------------------------------------------


def test_a_transition_returns_the_moved_record_and_its_event():
    record, event = LEAD_LIFECYCLE.apply(lead(), "contact", actor="u-1", at=T0 + HOUR)
    assert record.stage == "contacted"
    assert record.stage_history == (
        StageChange(from_stage="new", to_stage="contacted", transition="contact", actor="u-1", at=T0 + HOUR),
    )
    assert record.updated_at == T0 + HOUR
    assert isinstance(event, StageChanged)
    assert event.entity == EntityRef("lead", record.id)
    assert (event.from_stage, event.to_stage, event.transition, event.lifecycle) == (
        "new",
        "contacted",
        "contact",
        "lead",
    )
    assert (event.actor, event.at) == ("u-1", T0 + HOUR)
    assert event_from_data(json.loads(json.dumps(event_to_data(event)))) == event


def test_applying_leaves_the_original_record_alone():
    original = lead()
    moved, _ = LEAD_LIFECYCLE.apply(original, "contact", at=T0)
    assert original.stage == "new"
    assert original.stage_history == ()
    assert moved.id == original.id


def test_the_time_comes_from_the_current_clock_or_the_given_one():
    with use_clock(FixedClock(T0 + 2 * HOUR)):
        record, event = LEAD_LIFECYCLE.apply(lead(), "contact")
    assert record.stage_history[-1].at == event.at == T0 + 2 * HOUR
    record, _ = LEAD_LIFECYCLE.apply(record, "nurture", clock=FixedClock(T0 + 3 * HOUR))
    assert record.stage_history[-1].at == T0 + 3 * HOUR


def test_each_event_gets_its_own_uuid4_id():
    ids = {LEAD_LIFECYCLE.apply(lead(), "contact", at=T0).event.id for _ in range(50)}
    assert len(ids) == 50
    assert all(len(value) == 32 and value[12] == "4" and value[16] in "89ab" for value in ids)


def test_the_payload_is_applied_with_the_move_and_custom_fields_are_merged():
    record = lead(custom_fields={"segment": "smb"})
    record, _ = LEAD_LIFECYCLE.apply(
        record,
        "disqualify",
        at=T0,
        payload={"custom_fields": {"disqualification_reason": "no budget"}, "title": "CTO"},
    )
    assert record.stage == "disqualified"
    assert record.custom_fields == {"segment": "smb", "disqualification_reason": "no budget"}
    assert record.title == "CTO"


def test_a_required_field_already_on_the_record_is_enough():
    deal = Opportunity(name="Deal", created_at=T0, lost_reason="price")
    moved, _ = OPPORTUNITY_LIFECYCLE.apply(deal, "lose", at=T0)
    assert moved.stage == "lost"


def test_opportunities_take_the_stage_probability_and_close_time():
    deal = Opportunity(name="Deal", created_at=T0, amount=Money("1200", "EUR"))
    deal, _ = OPPORTUNITY_LIFECYCLE.apply(deal, "qualify", at=T0 + HOUR)
    assert deal.probability == Decimal("0.2")
    deal, _ = OPPORTUNITY_LIFECYCLE.apply(deal, "propose", at=T0 + 2 * HOUR)
    assert deal.probability == Decimal("0.5")
    assert deal.closed_at is None
    won, _ = OPPORTUNITY_LIFECYCLE.apply(deal, "win", at=T0 + 3 * HOUR)
    assert (won.probability, won.closed_at) == (Decimal(1), T0 + 3 * HOUR)
    lost, _ = OPPORTUNITY_LIFECYCLE.apply(deal, "lose", at=T0 + 3 * HOUR, payload={"lost_reason": "price"})
    assert (lost.probability, lost.closed_at, lost.lost_reason) == (Decimal(0), T0 + 3 * HOUR, "price")


def test_a_payload_probability_wins_over_the_stage_default():
    deal = Opportunity(name="Deal", created_at=T0)
    deal, _ = OPPORTUNITY_LIFECYCLE.apply(deal, "qualify", at=T0, payload={"probability": Decimal("0.35")})
    assert deal.probability == Decimal("0.35")


def test_tickets_record_when_they_were_resolved_and_forget_it_on_reopening():
    ticket = Ticket(subject="Printer on fire", created_at=T0)
    ticket, _ = TICKET_LIFECYCLE.apply(ticket, "accept", at=T0 + HOUR)
    ticket, _ = TICKET_LIFECYCLE.apply(ticket, "resolve", at=T0 + 2 * HOUR)
    assert ticket.resolved_at == T0 + 2 * HOUR
    reopened, _ = TICKET_LIFECYCLE.apply(ticket, "reopen", at=T0 + 3 * HOUR)
    assert reopened.resolved_at is None
    closed, _ = TICKET_LIFECYCLE.apply(ticket, "close", at=T0 + 4 * HOUR)
    assert closed.resolved_at == T0 + 2 * HOUR  # resolved -> closed keeps the resolution time


def test_leads_record_when_they_were_converted():
    record = lead()
    for name in ("contact", "qualify", "convert"):
        record, _ = LEAD_LIFECYCLE.apply(record, name, at=T0 + HOUR)
    assert (record.stage, record.converted_at) == ("converted", T0 + HOUR)


def test_a_lifecycle_built_from_json_applies_its_guard():
    lifecycle = small_lifecycle()
    record, _ = lifecycle.apply(lead(score=12), "work", at=T0)
    record, _ = lifecycle.apply(record, "finish", at=T0)
    assert record.stage == "done"


# -- bad input: each refusal is typed, names the record, stage and transition, and changes nothing -------


def refusal(lifecycle, record, transition, **kwargs):
    before = attrs.asdict(record, recurse=False)
    with pytest.raises(TransitionError) as caught:
        lifecycle.apply(record, transition, **kwargs)
    assert attrs.asdict(record, recurse=False) == before
    error = caught.value
    assert error.transition == transition
    assert error.entity == EntityRef.to(record)
    assert error.stage == record.stage
    assert record.id in str(error)
    assert repr(record.stage) in str(error)
    return error


def test_an_unknown_transition_is_refused_listing_the_allowed_ones():
    error = refusal(LEAD_LIFECYCLE, lead(), "teleport", at=T0)
    assert error.reasons == (
        "lifecycle 'lead' has no transition 'teleport'; from 'new': contact, nurture, disqualify",
    )


def test_a_transition_from_the_wrong_stage_is_refused():
    error = refusal(LEAD_LIFECYCLE, lead(), "convert", at=T0)
    assert "not allowed from stage 'new'" in error.reasons[0]
    assert "'qualified'" in error.reasons[0]


def test_a_failing_guard_is_refused_saying_which_predicate_failed():
    record = Lead(company="Acme", created_at=T0, stage="contacted")
    error = refusal(LEAD_LIFECYCLE, record, "qualify", at=T0)
    assert error.reasons == (
        "guard failed: email exists True (actual: None)",
        "guard failed: phone exists True (actual: None)",
    )


def test_a_missing_lost_reason_is_refused():
    error = refusal(OPPORTUNITY_LIFECYCLE, Opportunity(name="Deal", created_at=T0), "lose", at=T0)
    assert error.reasons == ("required field 'lost_reason' is missing",)
    error = refusal(OPPORTUNITY_LIFECYCLE, Opportunity(name="Deal", created_at=T0), "lose", at=T0, payload={})
    assert error.reasons == ("required field 'lost_reason' is missing",)


def test_a_blank_required_field_counts_as_missing():
    error = refusal(small_lifecycle(), lead(), "drop", at=T0, payload={"custom_fields": {}})
    assert error.reasons == ("required field 'title' is missing",)


def test_a_missing_disqualification_reason_is_refused():
    error = refusal(LEAD_LIFECYCLE, lead(), "disqualify", at=T0)
    assert error.reasons == ("required field 'custom_fields.disqualification_reason' is missing",)


def test_a_deal_won_without_an_amount_is_refused_by_its_guard():
    deal = Opportunity(name="Deal", created_at=T0, stage="negotiation")
    error = refusal(OPPORTUNITY_LIFECYCLE, deal, "win", at=T0)
    assert error.reasons == ("guard failed: amount.amount gt 0 (actual: None)",)


def test_a_stage_the_lifecycle_does_not_know_is_refused():
    error = refusal(LEAD_LIFECYCLE, lead(stage="limbo", stage_history=[]), "contact", at=T0)
    assert error.reasons == ("stage 'limbo' is not a stage of lifecycle 'lead'",)


def test_a_terminal_stage_allows_nothing():
    record = lead()
    for name in ("contact", "qualify", "convert"):
        record, _ = LEAD_LIFECYCLE.apply(record, name, at=T0)
    error = refusal(LEAD_LIFECYCLE, record, "disqualify", at=T0)
    assert "not allowed from stage 'converted'" in error.reasons[0]


@pytest.mark.parametrize("at", [datetime(2026, 3, 2, 9, 0), "2026-03-02T09:00:00+00:00"])  # noqa: DTZ001 - naive on purpose
def test_a_naive_or_non_datetime_time_is_a_validation_error_naming_at(at):
    with pytest.raises(ValidationError) as caught:
        LEAD_LIFECYCLE.apply(lead(), "contact", at=at)
    assert caught.value.paths == ("at",)


def test_history_times_never_go_backwards():
    record, _ = LEAD_LIFECYCLE.apply(lead(), "contact", at=T0 + 2 * HOUR)
    with pytest.raises(ValidationError) as caught:
        LEAD_LIFECYCLE.apply(record, "nurture", at=T0 + HOUR)
    assert caught.value.paths == ("at",)
    with pytest.raises(ValidationError, match="before"):
        LEAD_LIFECYCLE.apply(lead(), "contact", at=T0 - HOUR)  # before the record was created


def test_an_equal_time_is_allowed_and_updated_at_never_goes_backwards():
    record = lead(updated_at=T0 + 5 * HOUR)
    moved, _ = LEAD_LIFECYCLE.apply(record, "contact", at=T0 + HOUR)
    moved, _ = LEAD_LIFECYCLE.apply(moved, "nurture", at=T0 + HOUR)
    assert moved.updated_at == T0 + 5 * HOUR


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"stage": "converted"}, "payload.stage"),
        ({"stage_history": []}, "payload.stage_history"),
        ({"email": "not an email"}, "payload.email"),
        ({"no_such_field": 1}, "payload.no_such_field"),
    ],
)
def test_a_bad_payload_is_a_validation_error_under_payload(payload, path):
    with pytest.raises(ValidationError) as caught:
        LEAD_LIFECYCLE.apply(lead(), "contact", at=T0, payload=payload)
    assert caught.value.paths == (path,)


def test_a_bad_actor_is_a_validation_error():
    with pytest.raises(ValidationError) as caught:
        LEAD_LIFECYCLE.apply(lead(), "contact", at=T0, actor="has spaces")
    assert caught.value.paths == ("actor",)


def test_a_record_of_another_kind_is_a_validation_error():
    with pytest.raises(ValidationError) as caught:
        LEAD_LIFECYCLE.apply(Ticket(subject="x", created_at=T0), "contact", at=T0)
    assert caught.value.paths == ("entity",)


def test_transition_errors_pickle_with_the_record_and_stage():
    error = refusal(LEAD_LIFECYCLE, lead(), "convert", at=T0)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own data
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)


# -- definitions are validated when built -----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"stages": []}, "stages", "at least one stage"),
        ({"entity": "account"}, "entity", "not a kind of record with a stage"),
        ({"initial": "nowhere"}, "initial", "not a stage"),
        ({"backward": "sideways"}, "backward", "not one of"),
        ({"extra": 1}, "extra", "unexpected key"),
    ],
)
def test_bad_definitions_are_rule_errors_with_a_path(changes, path, words):
    with pytest.raises(RuleError, match=words) as caught:
        small_lifecycle(**changes)
    assert caught.value.path == path


def _edited(edit):
    data = small_lifecycle().to_json()
    edit(data)
    return data


@pytest.mark.parametrize(
    ("edit", "path", "words"),
    [
        (lambda d: d["stages"].append({"name": "new"}), "stages[4].name", "declared twice"),
        (
            lambda d: d["transitions"].append(dict(d["transitions"][0])),
            "transitions[3].name",
            "declared twice",
        ),
        (lambda d: d["transitions"][0].update(target="nowhere"), "transitions[0].target", "not a stage"),
        (
            lambda d: d["transitions"][0].update(sources=["nowhere"]),
            "transitions[0].sources[0]",
            "not a stage",
        ),
        (lambda d: d["transitions"][0].update(sources=["done"]), "transitions[0].sources[0]", "terminal"),
        (
            lambda d: d["transitions"][0].update(sources=["working"]),
            "transitions[0].sources[0]",
            "own target",
        ),
        (lambda d: d["transitions"][0].update(sources=[]), "transitions[0].sources", "at least one source"),
        (
            lambda d: d["transitions"][1]["guard"]["all"][0].update(field="shoe_size"),
            "transitions[1].guard.all[0].field",
            "unknown field 'shoe_size'",
        ),
        (
            lambda d: d["transitions"][1]["guard"]["all"][0].update(field="stage"),
            "transitions[1].guard.all[0].field",
            "unknown field 'stage'",
        ),
        (
            lambda d: d["transitions"][1].update(guard={"field": "score", "op": "nope"}),
            "transitions[1].guard.op",
            "unknown operator",
        ),
        (
            lambda d: d["transitions"][2].update(required=["shoe_size"]),
            "transitions[2].required[0]",
            "unknown",
        ),
        (lambda d: d["transitions"][2].update(required=["stage"]), "transitions[2].required[0]", "unknown"),
        (
            lambda d: d["transitions"][2].update(required=["custom_fields.Bad Key"]),
            "transitions[2].required[0]",
            "custom field",
        ),
        (lambda d: d["stages"].append({"name": "island"}), "stages[4]", "cannot be reached"),
        (lambda d: d["stages"][3].update(terminal=False), "stages[3]", "trap"),
        (lambda d: d["stages"][1].update(probability="1.5"), "stages[1].probability", "from 0 to 1"),
        (lambda d: d["stages"][1].update(probability="lots"), "stages[1].probability", "not a number"),
        (lambda d: d["stages"][1].update(category="maybe"), "stages[1].category", "not one of"),
        (lambda d: d["stages"][1].update(forecast="hopeful"), "stages[1].forecast", "not one of"),
        (lambda d: d["stages"][1].update(terminal="yes"), "stages[1].terminal", "true or false"),
        (lambda d: d["stages"][1].update(name=" padded"), "stages[1].name", "not a name"),
        (lambda d: d["stages"][1].update(name="*"), "stages[1].name", "reserved"),
        (lambda d: d["stages"][1].update(colour="red"), "stages[1].colour", "unexpected key"),
        (lambda d: d["transitions"][0].pop("target"), "transitions[0].target", "required"),
        (lambda d: d.update(stages="new"), "stages", "expected a list"),
    ],
)
def test_every_definition_problem_is_a_rule_error_pointing_at_it(edit, path, words):
    with pytest.raises(RuleError, match=words) as caught:
        Lifecycle.from_json(_edited(edit))
    assert caught.value.path == path


def test_a_forward_only_lifecycle_refuses_a_backward_transition_when_built():
    data = _edited(
        lambda d: d["transitions"].append({"name": "back", "sources": ["working"], "target": "new"})
    )
    data["backward"] = "forbid"
    with pytest.raises(RuleError, match="backwards") as caught:
        Lifecycle.from_json(data)
    assert caught.value.path == "transitions[3].sources[0]"
    data["backward"] = "allow"
    assert Lifecycle.from_json(data).allowed_transitions("working") == ("finish", "drop", "back")


def test_a_wildcard_in_a_forward_only_lifecycle_means_the_earlier_stages():
    assert HUBSPOT_LIFECYCLE_STAGES.backward is BackwardPolicy.FORBID
    assert "to_lead" not in HUBSPOT_LIFECYCLE_STAGES.allowed_transitions("customer")
    assert HUBSPOT_LIFECYCLE_STAGES.allowed_transitions("customer") == ("to_evangelist", "to_other")
    contact = Contact(email="ada@example.com", created_at=T0)
    contact, _ = HUBSPOT_LIFECYCLE_STAGES.apply(contact, "to_salesqualifiedlead", at=T0)
    with pytest.raises(TransitionError):
        HUBSPOT_LIFECYCLE_STAGES.apply(contact, "to_lead", at=T0)


def test_a_wildcard_that_expands_to_nothing_is_a_rule_error():
    data = _edited(lambda d: d["transitions"].append({"name": "restart", "sources": ["*"], "target": "new"}))
    data["backward"] = "forbid"
    with pytest.raises(RuleError, match="no stage") as caught:
        Lifecycle.from_json(data)
    assert caught.value.path == "transitions[3].sources"


def test_python_built_definitions_check_their_fields_too():
    with pytest.raises(RuleError) as caught:
        Stage("won", probability=2)
    assert caught.value.path == "probability"
    with pytest.raises(RuleError) as caught:
        Transition("go", [], "there")
    assert caught.value.path == "sources"
    with pytest.raises(RuleError) as caught:
        Lifecycle("x", "lead", ["new"], [])
    assert caught.value.path == "stages[0]"


# -- built-ins, presets and JSON ---------------------------------------------------------------------


@pytest.mark.parametrize("lifecycle", list(LIFECYCLES.values()), ids=list(LIFECYCLES))
def test_every_built_in_lifecycle_round_trips_through_json(lifecycle):
    text = json.dumps(lifecycle.to_json())
    again = Lifecycle.from_json(json.loads(text))
    assert again == lifecycle
    assert again.to_json() == lifecycle.to_json()
    assert again.edges() == lifecycle.edges()


@pytest.mark.parametrize("lifecycle", list(LIFECYCLES.values()), ids=list(LIFECYCLES))
def test_every_built_in_lifecycle_can_reach_every_stage_from_a_new_record(lifecycle):
    reached = {lifecycle.initial}
    frontier = [lifecycle.initial]
    while frontier:
        stage = frontier.pop()
        for source, target, _ in lifecycle.edges():
            if source == stage and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == {stage.name for stage in lifecycle.stages}


def test_the_built_in_stage_lists_are_the_documented_ones():
    def names(lifecycle):
        return [stage.name for stage in lifecycle.stages]

    assert names(LEAD_LIFECYCLE) == [
        "new",
        "contacted",
        "nurturing",
        "qualified",
        "converted",
        "disqualified",
    ]
    assert LEAD_LIFECYCLE.transition("recycle").target == "nurturing"
    assert names(OPPORTUNITY_LIFECYCLE) == [
        "prospecting",
        "qualification",
        "proposal",
        "negotiation",
        "won",
        "lost",
    ]
    assert [s.forecast for s in OPPORTUNITY_LIFECYCLE.stages] == [
        ForecastCategory.PIPELINE,
        ForecastCategory.PIPELINE,
        ForecastCategory.BEST_CASE,
        ForecastCategory.COMMIT,
        ForecastCategory.CLOSED,
        ForecastCategory.OMITTED,
    ]
    assert names(TICKET_LIFECYCLE) == [
        "new",
        "open",
        "pending",
        "escalated",
        "resolved",
        "closed",
        "reopened",
    ]
    assert names(CUSTOMER_LIFECYCLE) == [
        "subscriber",
        "lead",
        "marketing_qualified",
        "sales_qualified",
        "opportunity",
        "customer",
        "evangelist",
        "churned",
        "won_back",
    ]
    assert CUSTOMER_LIFECYCLE.entity == "contact"


def test_the_presets_keep_their_crms_vocabulary_and_probabilities():
    def probabilities(lifecycle):
        return {stage.name: stage.probability for stage in lifecycle.stages}

    assert [s.name for s in HUBSPOT_LIFECYCLE_STAGES.stages] == [
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ]
    assert HUBSPOT_LIFECYCLE_STAGES.stage("marketingqualifiedlead").title == "Marketing Qualified Lead"
    assert [s.name for s in SALESFORCE_LEAD_STATUS.stages] == [
        "Open - Not Contacted",
        "Working - Contacted",
        "Closed - Converted",
        "Closed - Not Converted",
    ]
    salesforce = SALESFORCE_OPPORTUNITY_STAGES
    assert salesforce.stage("Negotiation/Review").forecast is ForecastCategory.COMMIT
    assert salesforce.stage("Closed Lost").forecast is ForecastCategory.OMITTED
    assert probabilities(ODOO_PIPELINE) == {
        "New": Decimal("0.1"),
        "Qualified": Decimal("0.3"),
        "Proposition": Decimal("0.7"),
        "Won": Decimal(1),
        "Lost": Decimal(0),
    }
    assert probabilities(FRAPPE_CRM_DEAL_STAGES) == {
        "Qualification": Decimal("0.1"),
        "Demo/Making": Decimal("0.25"),
        "Proposal/Quotation": Decimal("0.5"),
        "Negotiation": Decimal("0.7"),
        "Ready to Close": Decimal("0.9"),
        "Won": Decimal(1),
        "Lost": Decimal(0),
    }


def test_a_pipeline_preset_moves_a_deal_to_any_stage_and_needs_a_reason_to_lose():
    deal = Opportunity(name="Deal", created_at=T0, stage="Qualification")
    deal, _ = FRAPPE_CRM_DEAL_STAGES.apply(deal, "to_ready_to_close", at=T0)
    assert (deal.stage, deal.probability) == ("Ready to Close", Decimal("0.9"))
    deal, _ = FRAPPE_CRM_DEAL_STAGES.apply(deal, "to_demo_making", at=T0)
    assert deal.stage == "Demo/Making"
    with pytest.raises(TransitionError):
        FRAPPE_CRM_DEAL_STAGES.apply(deal, "to_lost", at=T0)
    deal, _ = FRAPPE_CRM_DEAL_STAGES.apply(deal, "to_lost", at=T0, payload={"lost_reason": "budget"})
    assert (deal.stage, deal.probability, deal.closed_at) == ("Lost", Decimal(0), T0)


# -- extending a built-in ---------------------------------------------------------------------------


def test_a_built_in_lifecycle_is_extended_without_editing_crmkit():
    custom = (
        OPPORTUNITY_LIFECYCLE.with_stage(
            Stage("legal_review", probability="0.9", forecast="commit"),
            after="negotiation",
            transitions=[Transition("send_to_legal", ["negotiation"], "legal_review")],
        )
        .with_transition(Transition("sign", ["legal_review"], "won", guard=field("amount.amount").gt(0)))
        .rename_stage("proposal", "quote_sent", label="Quote sent")
        .with_probabilities({"quote_sent": "0.4"})
        .update_stage("negotiation", forecast="best_case")
    )
    assert [s.name for s in custom.stages][3:5] == ["negotiation", "legal_review"]
    assert custom.stage("quote_sent").probability == Decimal("0.4")
    assert custom.transition("negotiate").sources == ("quote_sent",)
    assert custom.stage("negotiation").forecast is ForecastCategory.BEST_CASE
    assert Lifecycle.from_json(custom.to_json()) == custom
    assert OPPORTUNITY_LIFECYCLE.stage("proposal").probability == Decimal("0.5")  # the original is unchanged
    deal = Opportunity(name="Deal", created_at=T0, stage="negotiation", amount=Money(10, "EUR"))
    deal, _ = custom.apply(deal, "send_to_legal", at=T0)
    deal, _ = custom.apply(deal, "sign", at=T0)
    assert deal.stage == "won"


def test_extensions_are_validated_like_any_definition():
    with pytest.raises(RuleError, match="cannot be reached"):
        OPPORTUNITY_LIFECYCLE.with_stage(Stage("limbo", terminal=True))
    with pytest.raises(RuleError, match="already a stage"):
        OPPORTUNITY_LIFECYCLE.rename_stage("proposal", "negotiation")
    with pytest.raises(RuleError, match="from 0 to 1"):
        OPPORTUNITY_LIFECYCLE.with_probabilities({"proposal": 7})
    with pytest.raises(RuleError, match="rename_stage"):
        OPPORTUNITY_LIFECYCLE.update_stage("proposal", name="quote")
    with pytest.raises(RuleError, match="trap"):
        LEAD_LIFECYCLE.without_transition("recycle")  # a disqualified lead could never leave
    with pytest.raises(NotFound):
        OPPORTUNITY_LIFECYCLE.update_stage("nowhere", probability=1)
    with pytest.raises(NotFound):
        OPPORTUNITY_LIFECYCLE.without_transition("nowhere")


# -- helpers: allowed transitions, Mermaid, time in stage ----------------------------------------------


def test_allowed_transitions_are_listed_per_stage_in_definition_order():
    assert LEAD_LIFECYCLE.allowed_transitions("new") == ("contact", "nurture", "disqualify")
    assert LEAD_LIFECYCLE.allowed_transitions("converted") == ()
    assert OPPORTUNITY_LIFECYCLE.allowed_transitions("proposal") == ("negotiate", "requalify", "win", "lose")
    with pytest.raises(NotFound):
        LEAD_LIFECYCLE.allowed_transitions("limbo")


def test_stages_know_their_category():
    assert LEAD_LIFECYCLE.stage("converted").category is StageCategory.WON
    assert LEAD_LIFECYCLE.stage("new").is_open
    assert not TICKET_LIFECYCLE.stage("resolved").is_open
    with pytest.raises(NotFound):
        LEAD_LIFECYCLE.stage("limbo")


def test_the_mermaid_diagram_draws_stages_moves_start_and_ends():
    diagram = LEAD_LIFECYCLE.to_mermaid()
    lines = diagram.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> new" in lines
    assert "    new --> contacted : contact" in lines
    assert "    qualified --> nurturing : recycle" in lines
    assert "    converted --> [*]" in lines
    assert '    state "Nurturing (not ready to buy yet)" as nurturing' in lines
    assert "    class converted won" in lines
    assert "    class disqualified lost" in lines


def test_the_mermaid_diagram_gives_awkward_stage_names_plain_ids():
    diagram = SALESFORCE_LEAD_STATUS.to_mermaid()
    assert '    state "Open - Not Contacted" as s0' in diagram
    assert "    [*] --> s0" in diagram
    assert "    s0 --> s1 : work" in diagram
    assert "    s2 --> [*]" in diagram
    odd = Lifecycle(
        "odd",
        "ticket",
        [Stage("end"), Stage('say "hi"; #1: go', terminal=True)],
        [Transition("a:b", ["end"], 'say "hi"; #1: go')],
    )
    assert odd.to_mermaid().splitlines()[1:4] == [
        '    state "end" as s0',
        "    state \"say 'hi', no. 1 - go\" as s1",
        "    [*] --> s0",
    ]
    assert "    s0 --> s1 : a - b" in odd.to_mermaid()


def test_time_in_stage_adds_up_every_stay_until_as_of():
    record = lead()
    moves = [("contact", 1), ("nurture", 3), ("qualify", 4), ("recycle", 10), ("qualify", 12)]
    for name, hours in moves:
        record, _ = LEAD_LIFECYCLE.apply(record, name, at=T0 + hours * HOUR)
    assert time_in_stage(record, as_of=T0 + 20 * HOUR) == {
        "new": HOUR,
        "contacted": 2 * HOUR,
        "nurturing": HOUR + 2 * HOUR,
        "qualified": 6 * HOUR + 8 * HOUR,
    }
    # As it stood at hour 5: the later stays did not happen yet.
    assert time_in_stage(record, as_of=T0 + 5 * HOUR) == {
        "new": HOUR,
        "contacted": 2 * HOUR,
        "nurturing": HOUR,
        "qualified": HOUR,
    }
    assert stage_periods(record, as_of=T0 + 2 * HOUR) == [
        ("new", T0, T0 + HOUR),
        ("contacted", T0 + HOUR, T0 + 2 * HOUR),
    ]


def test_time_in_stage_of_a_record_without_history_counts_from_creation():
    with use_clock(FixedClock(T0 + 3 * HOUR)):
        assert time_in_stage(lead()) == {"new": 3 * HOUR}
    assert time_in_stage(lead(), clock=FixedClock(T0 + HOUR)) == {"new": HOUR}


def test_time_in_stage_needs_an_aware_as_of():
    with pytest.raises(ValidationError) as caught:
        time_in_stage(lead(), as_of=datetime(2026, 3, 2))  # noqa: DTZ001 - naive on purpose
    assert caught.value.paths == ("as_of",)


def test_the_concepts_page_draws_the_real_lead_lifecycle():
    page = (Path(__file__).resolve().parents[1] / "docs" / "concepts" / "lifecycles.md").read_text(
        encoding="utf-8"
    )
    drawn = page.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert drawn == LEAD_LIFECYCLE.to_mermaid()
