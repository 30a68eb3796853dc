"""Duplicate matching through an index, merge with survivorship, moving related records, undo, capture modes."""

import json
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock, use_clock
from crmkit.entities import Activity, Consent, Contact, EntityRef, Lead, Task
from crmkit.errors import RuleError, ValidationError
from crmkit.events import EntityDeleted, event_from_data, event_to_data
from crmkit.leads import (
    CapturedLead,
    ConsentCapture,
    MatchIndex,
    MatchRule,
    Merged,
    MergePolicy,
    MergeRecord,
    MergeResult,
    capture_lead,
    merge_records,
    screen_duplicates,
    undo_merge,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CLOCK = FixedClock(T0 + timedelta(days=30))


@pytest.fixture(autouse=True)
def _fixed_clock():
    """Every record built without an explicit time gets the test's fixed time."""
    with use_clock(CLOCK):
        yield


def at(days):
    return T0 + timedelta(days=days)


def test_exact_keys_match_a_new_lead_against_leads_and_contacts():
    index = MatchIndex()
    index.add_many(
        [
            Contact(id="c1", email="ada@acme.com"),
            Lead(id="l1", phone="+442079460958", email="other@x.com"),
            Contact(id="c2", email="bob@acme.com"),
        ]
    )
    matches = index.find(Lead(id="new", email="ada@acme.com", phone="+442079460958"))
    assert {(m.rule, m.record.kind, m.record.id) for m in matches} == {
        ("email", "contact", "c1"),
        ("phone", "lead", "l1"),
    }
    assert len(index) == 3


def test_a_fuzzy_rule_compares_names_only_within_the_same_company_domain():
    index = MatchIndex()
    index.add_many(
        [
            Contact(id="c1", first_name="Jonathan", last_name="Smith", email="j.smith@acme.com"),
            Contact(id="c2", first_name="Jonathan", last_name="Smith", email="jsmith@globex.com"),
        ]
    )
    matches = index.find(Lead(id="n", first_name="Jonathon", last_name="Smith", domain="acme.com"))
    assert [(m.rule, m.record.id) for m in matches] == [("name_and_domain", "c1")]
    assert 0.85 <= matches[0].similarity < 1


def test_free_mailboxes_are_not_a_company_domain_to_block_on():
    index = MatchIndex()
    index.add(Contact(id="c1", first_name="Ann", last_name="Lee", email="ann.lee@gmail.com"))
    assert index.find(Lead(id="n", first_name="Ann", last_name="Lee", email="annlee@gmail.com")) == ()


def test_a_record_never_matches_itself():
    lead = Lead(id="l1", email="a@b.com")
    index = MatchIndex()
    index.add(lead)
    assert index.find(lead) == ()


def test_match_rules_are_validated_and_round_trip():
    rule = MatchRule(name="company_name", keys=["company"], similar="name", threshold=0.8)
    assert MatchRule.from_json(json.loads(json.dumps(rule.to_json()))) == rule
    with pytest.raises(RuleError) as error:
        MatchRule.from_json({"name": "x", "keys": ["email", "shoe_size"]})
    assert error.value.path == "keys[1]"
    with pytest.raises(RuleError):
        MatchRule(name="x", keys=["email"], similar="name", threshold=1.5)
    with pytest.raises(RuleError):
        MatchIndex([MatchRule(name="a", keys=["email"]), MatchRule(name="a", keys=["phone"])])


def leads_to_merge():
    old = Lead(
        id="old",
        email="ada@acme.com",
        first_name="Ada",
        company="Acme",
        source="web_form",
        created_at=at(0),
        tags={"a"},
    )
    new = Lead(
        id="new",
        email="ada@acme.com",
        first_name="Ada",
        last_name="Lovelace",
        company="Acme Corporation Ltd",
        title="CTO",
        source="purchased_list",
        created_at=at(10),
        tags={"b"},
        custom_fields={"budget": 10},
    )
    return old, new


def test_merging_keeps_the_oldest_record_and_fills_its_empty_fields():
    old, new = leads_to_merge()
    result = merge_records([new, old], at=at(20))
    survivor = result.survivor
    assert survivor.id == "old"
    assert (survivor.last_name, survivor.title, survivor.company) == ("Lovelace", "CTO", "Acme")
    assert survivor.tags == {"a", "b"}
    assert survivor.custom_fields == {"budget": 10}
    assert [r.id for r in result.retired] == ["new"]
    assert ("last_name", "new", "non_empty") in result.record.choices


def test_survivorship_rules_per_field():
    old, new = leads_to_merge()
    policy = MergePolicy(
        fields={"company": "longest", "source": "source_priority"}, source_priority=["web_form"]
    )
    survivor = merge_records([old, new], policy, at=at(20)).survivor
    assert survivor.company == "Acme Corporation Ltd"
    assert str(survivor.source) == "web_form"
    newest = merge_records([old, new], MergePolicy(default="newest"), at=at(20)).survivor
    assert newest.company == "Acme Corporation Ltd"
    assert newest.id == "old"
    assert merge_records([old, new], MergePolicy(survivor="newest"), at=at(20)).survivor.id == "new"


def test_merging_moves_activities_tasks_and_consents_to_the_survivor_and_records_it():
    old, new = leads_to_merge()
    call = Activity(
        id="a1",
        activity_type="call",
        regarding=EntityRef("lead", "new"),
        created_at=at(11),
        occurred_at=at(11),
    )
    task = Task(id="t1", title="Follow up", regarding=EntityRef("lead", "new"), created_at=at(11))
    consent = Consent(
        id="k1",
        subject=EntityRef("lead", "new"),
        purpose="news",
        status="granted",
        wording="ok",
        created_at=at(11),
        captured_at=at(11),
    )
    unrelated = Task(id="t2", title="Other", regarding=EntityRef("lead", "x"), created_at=at(11))
    result = merge_records([old, new], related=[call, task, consent, unrelated], at=at(20), actor="u1")
    assert {item.id for item in result.moved} == {"a1", "t1", "k1"}
    assert all(
        getattr(item, "regarding", None) == EntityRef("lead", "old")
        or getattr(item, "subject", None) == EntityRef("lead", "old")
        for item in result.moved
    )
    merged_event = result.events[-1]
    assert isinstance(merged_event, Merged)
    assert merged_event.merged == (EntityRef("lead", "new"),)
    assert any(isinstance(event, EntityDeleted) for event in result.events)
    again = event_from_data(json.loads(json.dumps(event_to_data(merged_event))))
    assert MergeRecord.from_json(again.record) == result.record


def test_undo_restores_the_survivor_the_merged_records_and_the_references():
    old, new = leads_to_merge()
    call = Activity(
        id="a1",
        activity_type="call",
        regarding=EntityRef("lead", "new"),
        created_at=at(11),
        occurred_at=at(11),
    )
    result = merge_records([old, new], related=[call], at=at(20))
    stored_survivor = attrs.evolve(result.survivor, version=2)  # as the store holds it after the merge
    record = MergeRecord.from_json(result.events[-1].record)
    undone = undo_merge(record, stored_survivor, result.moved, at=at(21))
    assert undone.survivor.last_name is None
    assert undone.survivor.tags == {"a"}
    assert undone.survivor.version == 2
    assert [(r.id, r.version, r.last_name) for r in undone.restored] == [("new", 0, "Lovelace")]
    assert undone.moved_back[0].regarding == EntityRef("lead", "new")
    with pytest.raises(ValidationError):
        undo_merge(record, new)


def test_a_merge_needs_two_records_of_one_kind():
    old, _ = leads_to_merge()
    with pytest.raises(ValidationError):
        merge_records([old])
    with pytest.raises(ValidationError):
        merge_records([old, Contact(id="c", email="a@b.com")])
    with pytest.raises(ValidationError):
        merge_records([old, old])


def test_merge_policies_round_trip_and_bad_ones_are_rule_errors():
    policy = MergePolicy(
        default="newest",
        fields={"company": "longest", "source": "source_priority"},
        source_priority=["referral", "web_form"],
    )
    assert MergePolicy.from_json(json.loads(json.dumps(policy.to_json()))) == policy
    with pytest.raises(RuleError) as error:
        MergePolicy.from_json({"fields": {"email": "loudest"}})
    assert error.value.path == "fields.email"
    with pytest.raises(RuleError):
        MergePolicy(fields={"source": "source_priority"})
    with pytest.raises(RuleError):
        MergePolicy(fields={"id": "newest"})


def test_capture_can_reject_flag_or_merge_a_duplicate():
    existing = Lead(id="l1", email="ada@acme.com", first_name="Ada", created_at=at(0))
    index = MatchIndex()
    index.add(existing)
    captured = capture_lead(
        {"email": "ADA@acme.com", "last_name": "Lovelace"},
        channel="web_form",
        consents=[ConsentCapture(purpose="news", wording="Yes")],
        clock=CLOCK,
    )
    with pytest.raises(ValidationError) as error:
        screen_duplicates(captured, index, "reject")
    assert error.value.paths == ("email",)
    assert "lead l1" in str(error.value)
    flagged = screen_duplicates(captured, index, "flag")
    assert isinstance(flagged, CapturedLead)
    assert "possible_duplicate" in flagged.lead.tags
    assert flagged.lead.custom_fields["duplicate_of"] == "l1"
    merged = screen_duplicates(captured, index, "merge", fetch=lambda _ref: existing)
    assert isinstance(merged, MergeResult)
    assert (merged.survivor.id, merged.survivor.last_name) == ("l1", "Lovelace")
    assert merged.retired == merged.moved == ()
    assert [c.subject.id for c in merged.new_records] == ["l1"]
    assert not any(isinstance(event, EntityDeleted) for event in merged.events)
    fresh = capture_lead({"email": "new@acme.com"}, channel="web_form", clock=CLOCK)
    assert screen_duplicates(fresh, index, "reject") is fresh
    with pytest.raises(ValidationError):
        screen_duplicates(captured, index, "merge")


def test_a_lead_matching_only_a_contact_is_flagged_even_in_merge_mode():
    index = MatchIndex()
    index.add(Contact(id="c1", email="ada@acme.com"))
    captured = capture_lead({"email": "ada@acme.com"}, channel="web_form", clock=CLOCK)
    result = screen_duplicates(captured, index, "merge", fetch=lambda _ref: None)
    assert isinstance(result, CapturedLead)
    assert result.lead.custom_fields["duplicate_of"] == "c1"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["x.com", "y.com"])),
        min_size=1,
        max_size=25,
    )
)
def test_the_index_finds_exactly_what_a_pairwise_scan_finds(rows):
    contacts = [Contact(id=f"c{i}", email=f"{name}@{domain}") for i, (name, domain) in enumerate(rows)]
    index = MatchIndex([MatchRule(name="email", keys=["email"])])
    index.add_many(contacts)
    probe = Lead(id="p", email=contacts[0].email)
    expected = {c.id for c in contacts if c.email == probe.email}
    assert {m.record.id for m in index.find(probe)} == expected


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from([None, "Acme", "Acme Inc", "Globex"]), min_size=2, max_size=4),
    st.lists(st.sampled_from([None, "CTO", "Chief Technology Officer"]), min_size=4, max_size=4),
)
def test_merge_then_undo_gives_back_every_original_value(companies, titles):
    records = [
        Lead(id=f"l{i}", email=f"p{i}@acme.com", company=company, title=titles[i], created_at=at(i))
        for i, company in enumerate(companies)
    ]
    result = merge_records(records, MergePolicy(default="longest"), at=at(50))
    undone = undo_merge(result.record, result.survivor, at=at(51))
    survivor_before = records[0]
    assert (undone.survivor.company, undone.survivor.title) == (
        survivor_before.company,
        survivor_before.title,
    )
    assert [(r.id, r.company, r.title) for r in undone.restored] == [
        (r.id, r.company, r.title) for r in records[1:]
    ]
