"""Converting a qualified lead into contact, account and opportunity: mapping, account matching, idempotence."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock, use_clock
from crmkit.entities import Account, Lead
from crmkit.errors import RuleError, TransitionError, ValidationError
from crmkit.events import EntityCreated, StageChanged
from crmkit.leads import ConversionMapping, convert_lead
from crmkit.lifecycle import LEAD_LIFECYCLE

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock():
    """Every record built without an explicit time gets the test's fixed time."""
    with use_clock(FixedClock(T0)):
        yield


def qualified_lead(**fields):
    lead = Lead(
        id="lead-1",
        first_name="Ada",
        last_name="Lovelace",
        email="ada@acme.com",
        company="Acme",
        domain="acme.com",
        title="CTO",
        owner_id="u1",
        created_at=T0,
        **fields,
    )
    lead, _ = LEAD_LIFECYCLE.apply(lead, "contact", at=T0 + timedelta(hours=1))
    lead, _ = LEAD_LIFECYCLE.apply(lead, "qualify", at=T0 + timedelta(hours=2))
    return lead


def test_a_qualified_lead_becomes_contact_account_and_opportunity():
    conversion = convert_lead(qualified_lead(), at=T0 + timedelta(days=1), actor="u1")
    contact, account, opportunity = conversion.contact, conversion.account, conversion.opportunity
    assert (contact.first_name, contact.email, contact.title, contact.owner_id) == (
        "Ada",
        "ada@acme.com",
        "CTO",
        "u1",
    )
    assert (account.name, account.domain) == ("Acme", "acme.com")
    assert contact.account_id == account.id == opportunity.account_id
    assert opportunity.contact_id == contact.id
    assert opportunity.name == "Acme"
    lead = conversion.lead
    assert lead.stage == "converted"
    assert (lead.converted_contact_id, lead.converted_account_id, lead.converted_opportunity_id) == (
        contact.id,
        account.id,
        opportunity.id,
    )
    assert lead.converted_at == T0 + timedelta(days=1)
    assert [type(e) for e in conversion.events] == [EntityCreated, EntityCreated, EntityCreated, StageChanged]
    assert conversion.new_records == (account, contact, opportunity)


def test_an_existing_account_is_matched_by_domain():
    existing = Account(id="acct-9", name="ACME Group", domain="acme.com")
    by_mapping = convert_lead(qualified_lead(), accounts={"acme.com": existing}, at=T0 + timedelta(days=1))
    assert by_mapping.account is None
    assert by_mapping.matched_account is existing
    assert by_mapping.contact.account_id == "acct-9"
    by_function = convert_lead(qualified_lead(), accounts=lambda _domain: None, at=T0 + timedelta(days=1))
    assert by_function.account is not None


def test_converting_twice_makes_nothing_new_and_ids_are_derived_from_the_lead():
    first = convert_lead(qualified_lead(), at=T0 + timedelta(days=1))
    again = convert_lead(first.lead, at=T0 + timedelta(days=2))
    assert again.already_converted
    assert again.new_records == ()
    assert again.lead is first.lead
    replay = convert_lead(qualified_lead(), at=T0 + timedelta(days=1))
    assert [r.id for r in replay.new_records] == [r.id for r in first.new_records]


def test_only_a_qualified_lead_converts():
    with pytest.raises(TransitionError):
        convert_lead(Lead(email="a@b.com"), at=T0)


def test_a_mapping_copies_fields_where_it_says_and_names_the_opportunity_from_a_template():
    mapping = ConversionMapping(
        contact={"email": "email", "title": "industry"},
        opportunity_name="{company} - {title} ({source})",
        create_opportunity=True,
    )
    conversion = convert_lead(
        qualified_lead(industry="Robotics", source="referral"), mapping, at=T0 + timedelta(days=1)
    )
    assert conversion.contact.title == "Robotics"
    assert conversion.contact.first_name is None
    assert conversion.opportunity.name == "Acme - CTO (referral)"
    no_deal = convert_lead(
        qualified_lead(), ConversionMapping(create_opportunity=False), at=T0 + timedelta(days=1)
    )
    assert no_deal.opportunity is None
    assert no_deal.lead.converted_opportunity_id is None


def test_mappings_round_trip_and_unknown_fields_are_rule_errors():
    mapping = ConversionMapping(contact={"email": "email"}, opportunity_name="Deal {company}")
    assert ConversionMapping.from_json(json.loads(json.dumps(mapping.to_json()))) == mapping
    with pytest.raises(RuleError) as error:
        ConversionMapping.from_json({"contact": {"emial": "email"}})
    assert error.value.path == "contact.emial"
    with pytest.raises(RuleError) as error:
        ConversionMapping(account={"name": "company_name"})
    assert error.value.path == "account.name"
    with pytest.raises(RuleError) as error:
        ConversionMapping(opportunity_name="{__class__}")
    assert error.value.path == "opportunity_name"


def test_a_value_the_target_refuses_is_a_validation_error_under_the_target():
    mapping = ConversionMapping(account={"name": "company", "employees": "score"})
    with pytest.raises(ValidationError) as error:
        convert_lead(qualified_lead(score=-5), mapping, at=T0 + timedelta(days=1))
    assert error.value.paths == ("account.employees",)


@settings(max_examples=40, deadline=None)
@given(company=st.one_of(st.none(), st.sampled_from(["Acme", "Globex Ltd"])), has_domain=st.booleans())
def test_every_conversion_links_what_it_made(company, has_domain):
    lead = Lead(
        id="l2",
        email="x@globex.com",
        company=company,
        domain="globex.com" if has_domain else None,
        created_at=T0,
    )
    lead, _ = LEAD_LIFECYCLE.apply(lead, "contact", at=T0)
    lead, _ = LEAD_LIFECYCLE.apply(lead, "qualify", at=T0)
    conversion = convert_lead(lead, at=T0 + timedelta(days=1))
    assert (conversion.account is not None) == (company is not None)
    assert conversion.lead.converted_account_id == conversion.contact.account_id
    assert conversion.lead.converted_contact_id == conversion.contact.id
    assert convert_lead(conversion.lead).already_converted
