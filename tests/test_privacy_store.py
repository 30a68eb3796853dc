"""Export, erasure edge cases, suppression, retention and the personal data declaration."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock
from crmkit.conditions import field
from crmkit.entities import Channel, Consent, Contact, EntityRef, Lead, StageChange, Ticket
from crmkit.errors import ConsentError, NotFound, RuleError, ValidationError
from crmkit.leads import capture_lead
from crmkit.privacy import (
    EXPORT_FORMAT,
    ConsentLedger,
    PersonalData,
    RetentionAction,
    RetentionPolicy,
    add_lookup_indexes,
    apply_retention,
    erase_person,
    erased_ids,
    export_person,
    grant_consent,
    personal_fields,
    screen_lead,
    suppress,
    suppression_match,
)
from crmkit.storage import open_store

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@pytest.fixture(params=["memory://", "sqlite:///:memory:"])
def store(request):
    opened = open_store(request.param, clock=FixedClock(T0))
    add_lookup_indexes(opened)
    add_lookup_indexes(opened)  # idempotent
    yield opened
    opened.close()


def add(store, *records):
    with store.transaction(actor="u-1") as tx:
        for record in records:
            tx.repository(type(record)).add(record)
        tx.commit()


def ada():
    contact = Contact(
        id="c-ada", first_name="Ada", last_name="Lovelace", email="ada@example.com", created_at=T0
    )
    lead = Lead(id="l-ada", email="ada@example.com", company="Engines", created_at=T0)
    ticket = Ticket(id="t-1", subject="Ada cannot log in", contact_id="c-ada", created_at=T0)
    consent = grant_consent(
        contact, purpose="marketing", channel="email", wording="News", source="form", at=T0
    )
    return contact, lead, ticket, consent


def test_personal_fields_are_declared_on_the_entities():
    assert personal_fields(Lead) == ("first_name", "last_name", "email", "phone", "title")
    assert personal_fields(Ticket) == ("subject", "description")
    assert personal_fields(Consent) == ()


def test_the_export_holds_every_record_about_the_person_and_their_audit_entries(store):
    add(store, *ada(), Contact(id="c-bob", email="bob@example.com", created_at=T0))
    with store.transaction() as tx:
        document = export_person(
            tx, EntityRef("contact", "c-ada"), personal_data=PersonalData({"*": ["nick"]})
        )
    assert document["format"] == EXPORT_FORMAT
    assert {kind: [r["id"] for r in rows] for kind, rows in document["records"].items()} == {
        "consent": [document["records"]["consent"][0]["id"]],
        "contact": ["c-ada"],
        "lead": ["l-ada"],
        "ticket": ["t-1"],
    }
    assert "custom_fields.nick" in document["personal_fields"]["contact"]
    assert len(document["audit"]) == 4
    assert "bob@example.com" not in json.dumps(document)
    assert json.loads(json.dumps(document)) == document  # plain JSON data


def test_exporting_twice_gives_the_same_document(store):
    add(store, *ada())
    with store.transaction() as tx:
        first = export_person(tx, EntityRef("lead", "l-ada"))
        second = export_person(tx, EntityRef("lead", "l-ada"))
    assert first == second
    assert first["person"] == {"kind": "lead", "id": "l-ada"}


def test_exporting_or_erasing_an_unknown_person_is_a_plain_not_found(store):
    with store.transaction() as tx:
        with pytest.raises(NotFound, match="no contact with id 'nobody'"):
            export_person(tx, EntityRef("contact", "nobody"))
        with pytest.raises(NotFound, match="no lead with id 'nobody'"):
            erase_person(tx, EntityRef("lead", "nobody"))


def test_a_person_is_a_contact_or_a_lead(store):
    with store.transaction() as tx:
        with pytest.raises(ValidationError, match="a person is a contact or a lead"):
            export_person(tx, EntityRef("ticket", "t-1"))
        with pytest.raises(ValidationError, match="person"):
            erase_person(tx, "c-ada")  # type: ignore[arg-type]


def test_erasing_twice_reports_that_nothing_was_left(store):
    add(store, *ada())
    with store.transaction(actor="dpo") as tx:
        first = erase_person(tx, EntityRef("contact", "c-ada"))
        tx.commit()
    with store.transaction(actor="dpo") as tx:
        second = erase_person(tx, EntityRef("contact", "c-ada"))
        tx.commit()
    assert not first.already_erased
    assert first.fields_erased == 5
    assert (second.already_erased, second.changed, second.fields_erased) == (True, (), 0)


def test_erasure_is_all_or_nothing_with_the_transaction(store):
    add(store, *ada())
    with store.transaction(actor="dpo") as tx:
        erase_person(tx, EntityRef("contact", "c-ada"))  # no commit: rolled back
    with store.transaction() as tx:
        assert tx[Contact].get("c-ada").email == "ada@example.com"
        assert suppression_match(tx, email="ada@example.com") is None


def test_erasure_keeps_the_audit_entries_rewrites_them_and_records_who_erased(store):
    add(store, *ada())
    with store.transaction(actor="dpo") as tx:
        tx.record(*[])
        erase_person(tx, EntityRef("contact", "c-ada"))
        tx.commit()
    with store.transaction() as tx:
        entries = tx.audit(entity=EntityRef("contact", "c-ada"))
        erased_ids_now = erased_ids(tx)
    assert [entry.event.name for entry in entries] == ["entity_created", "entity_updated", "person_erased"]
    assert entries[-1].event.actor == "dpo"
    assert erased_ids_now == {"c-ada", "l-ada"}


def test_a_new_lead_with_an_erased_email_is_blocked_or_flagged(store):
    add(store, *ada())
    with store.transaction(actor="dpo") as tx:
        erase_person(tx, EntityRef("contact", "c-ada"))
        tx.commit()
    captured = capture_lead({"email": "ADA@example.com"}, channel="web_form", clock=FixedClock(T0))
    with store.transaction() as tx:
        with pytest.raises(ConsentError, match="email is on the suppression list") as caught:
            screen_lead(tx, captured.lead)
        assert "ada@example.com" not in str(caught.value)
        flagged = screen_lead(tx, captured.lead, on_match="flag")
        assert "suppressed" in flagged.tags
        other = capture_lead({"email": "grace@example.com"}, channel="web_form", clock=FixedClock(T0)).lead
        assert screen_lead(tx, other) is other
        with pytest.raises(ValidationError, match="on_match"):
            screen_lead(tx, other, on_match="shrug")


def test_the_suppression_list_keeps_salted_hashes_never_the_values(store):
    with store.transaction() as tx:
        assert suppression_match(tx, email="x@example.com") is None  # empty list: nothing to match
        assert suppress(tx, emails=["X@Example.com"], phones=["+442079460958"], reason="request") == 2
        assert suppress(tx, emails=["x@example.com"]) == 0
        entries = tx.state.scan("privacy.suppression")
        match = suppression_match(tx, phone="+44 20 7946 0958")
        tx.commit()
    assert all("example" not in entry.key and "example" not in json.dumps(entry.value) for entry in entries)
    assert match is not None
    assert (match.identifier, match.reason) == ("phone", "request")


def test_erased_people_are_refused_by_the_ledger(store):
    contact, lead, ticket, consent = ada()
    add(store, contact, lead, ticket, consent)
    with store.transaction(actor="dpo") as tx:
        erase_person(tx, EntityRef("contact", "c-ada"))
        tx.commit()
    with store.transaction() as tx:
        consents = list(tx[Consent].stream())
        erased = erased_ids(tx)
    decision = ConsentLedger(consents, erased=erased).allows("c-ada", "email", "marketing", T0)
    assert str(decision.reason) == "erased"
    assert (
        str(ConsentLedger(consents).allows("c-ada", "email", "marketing", T0).reason) == "consent_withdrawn"
    )


# -- retention -----------------------------------------------------------------------------------


def disqualified(lead_id, at):
    history = (
        StageChange(to_stage="new", at=at),
        StageChange(from_stage="new", to_stage="disqualified", at=at),
    )
    return Lead(
        id=lead_id,
        first_name="Old",
        last_name=f"Lead{lead_id}",
        email=f"{lead_id}@example.com",
        stage="disqualified",
        stage_history=history,
        created_at=at,
    )


POLICY = RetentionPolicy(
    name="disqualified-leads",
    kind="lead",
    where=field("stage").eq("disqualified"),
    untouched_for="P24M",
    action="anonymise",
)


def test_retention_dry_run_lists_what_is_due_and_changes_nothing():
    clock = FixedClock(T0 - timedelta(days=800))
    store = open_store("memory://", clock=clock)
    add(store, disqualified("old1", clock.now()))
    clock.set(T0 - timedelta(days=300))
    add(store, disqualified("new1", clock.now()))
    with store.transaction() as tx:
        (outcome,) = apply_retention(tx, [POLICY], as_of=T0 - timedelta(days=100))
        assert (outcome.due, outcome.applied) == ((), False)
        (outcome,) = apply_retention(tx, [POLICY], as_of=T0)
        assert (outcome.due, outcome.applied) == (("old1",), False)
        assert outcome.cutoff == datetime(2024, 3, 1, 9, tzinfo=UTC)
        assert tx[Lead].get("old1").email == "old1@example.com"


@pytest.mark.parametrize("action", list(RetentionAction))
def test_retention_deletes_or_anonymises_due_records_and_keeps_their_audit(action):
    store = open_store("memory://", clock=FixedClock(T0 - timedelta(days=900)))
    add(
        store,
        disqualified("old1", T0 - timedelta(days=900)),
        Lead(id="keep", email="k@example.com", created_at=T0 - timedelta(days=900)),
    )
    policy = RetentionPolicy(
        "disqualified", "lead", "P24M", action, {"field": "stage", "op": "eq", "value": "disqualified"}
    )
    with store.transaction(actor="retention") as tx:
        (outcome,) = apply_retention(tx, [policy], as_of=T0, dry_run=False)
        tx.commit()
    assert outcome.due == ("old1",)
    with store.transaction() as tx:
        assert tx[Lead].get("keep").email == "k@example.com"
        if action is RetentionAction.DELETE:
            with pytest.raises(NotFound):
                tx[Lead].get("old1")
        else:
            lead = tx[Lead].get("old1")
            assert (lead.email, lead.first_name, lead.stage) == (None, None, "disqualified")
            assert apply_retention(tx, [policy], as_of=T0)[0].due == ()  # anonymised: not due again
        names = [entry.event.name for entry in tx.audit(entity=EntityRef("lead", "old1"))]
    assert names[0] == "entity_created"
    assert names[-1] == ("entity_deleted" if action is RetentionAction.DELETE else "entity_updated")


def test_a_retention_policy_is_checked_when_built_with_a_path():
    with pytest.raises(RuleError, match=r"^where\.field"):
        RetentionPolicy("p", "lead", "P1Y", where={"field": "shoe_size", "op": "eq", "value": 1})
    with pytest.raises(RuleError, match="untouched_for"):
        RetentionPolicy("p", "lead", "two years")
    with pytest.raises(RuleError, match="kind"):
        RetentionPolicy("p", "spaceship", "P1Y")
    with pytest.raises(RuleError, match="action"):
        RetentionPolicy("p", "lead", "P1Y", "shred")
    with pytest.raises(RuleError, match="colour"):
        RetentionPolicy.from_json({"name": "p", "kind": "lead", "untouched_for": "P1Y", "colour": "red"})
    with pytest.raises(RuleError, match="kind"):
        RetentionPolicy.from_json({"name": "p", "untouched_for": "P1Y"})


def test_a_personal_data_declaration_is_checked_when_built():
    with pytest.raises(RuleError, match=r"custom_fields\.spaceship"):
        PersonalData({"spaceship": ["x"]})
    with pytest.raises(RuleError, match=r"custom_fields\.lead\[1\]"):
        PersonalData({"lead": ["ok", "Not OK"]})
    with pytest.raises(RuleError, match="custom_fields"):
        PersonalData.from_json({"fields": {}})


@settings(max_examples=60, deadline=None)
@given(
    name=st.text("abcxyz-", min_size=1, max_size=12),
    kind=st.sampled_from(["lead", "contact", "ticket"]),
    months=st.integers(1, 60),
    action=st.sampled_from(list(RetentionAction)),
    stage=st.none() | st.sampled_from(["new", "disqualified"]),
)
def test_retention_policies_round_trip_through_json(name, kind, months, action, stage):
    where = None if stage is None else {"field": "stage", "op": "eq", "value": stage}
    policy = RetentionPolicy(name, kind, f"P{months}M", action, where)
    text = json.dumps(policy.to_json())
    assert RetentionPolicy.from_json(json.loads(text)) == policy


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["*", "lead", "contact", "ticket"]),
        st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), max_size=3),
        max_size=3,
    )
)
def test_personal_data_declarations_round_trip_through_json(custom):
    declaration = PersonalData(custom)
    assert PersonalData.from_json(json.loads(json.dumps(declaration.to_json()))) == declaration


def test_unrelated_channels_exist_for_consent():
    assert {Channel.SMS, Channel.POST, Channel.EMAIL, Channel.PHONE} <= set(Channel)


def test_a_person_is_found_through_conversions_and_email_but_not_through_a_shared_phone(store):
    from crmkit.entities import Task  # noqa: PLC0415 - only here
    from crmkit.privacy import find_person  # noqa: PLC0415 - only here

    add(
        store,
        Contact(id="c-ada", email="ada@example.com", phone="+442079460958", created_at=T0),
        Lead(id="l-converted", company="Engines", converted_contact_id="c-ada", created_at=T0),
        Lead(id="l-same-email", email="ADA@example.com", created_at=T0),
        Lead(id="l-switchboard", phone="+442079460958", company="Engines", created_at=T0),
        Task(id="k-1", title="Call Ada", regarding=EntityRef("lead", "l-same-email"), created_at=T0),
    )
    with store.transaction() as tx:
        found = find_person(tx, EntityRef("lead", "l-converted"))
    assert [record.id for record in found.people] == ["c-ada", "l-converted", "l-same-email"]
    assert [record.id for record in found.related] == ["k-1"]


def test_anonymise_keeps_the_facts_and_uses_the_placeholder_where_a_text_is_required():
    from crmkit.entities import Task  # noqa: PLC0415 - only here
    from crmkit.privacy import anonymise  # noqa: PLC0415 - only here

    task = Task(title="Call Ada", description="about her order", due_at=T0, custom_fields={"mood": "good"})
    erased, count = anonymise(task, PersonalData({"task": ["mood"]}))
    assert (erased.title, erased.description, erased.custom_fields, erased.due_at) == (
        "[erased]",
        None,
        {},
        T0,
    )
    assert count == 3
    assert anonymise(erased) == (erased, 0)


def test_an_audience_leaves_out_erased_and_re_imported_suppressed_people(store):
    from crmkit.privacy import suppressed_among  # noqa: PLC0415 - only here
    from crmkit.segmentation import build_audience  # noqa: PLC0415 - only here

    contact, lead, ticket, consent = ada()
    bob = Contact(id="c-bob", email="bob@example.com", created_at=T0)
    bobs = grant_consent(bob, purpose="marketing", channel="email", wording="News", source="form", at=T0)
    add(store, contact, lead, ticket, consent, bob, bobs)
    with store.transaction(actor="dpo") as tx:
        erase_person(tx, EntityRef("contact", "c-ada"))
        tx.commit()
    again = Contact(id="c-ada-2", email="ada@example.com", created_at=T0)  # re-imported from an old list
    again_consent = grant_consent(
        again, purpose="marketing", channel="email", wording="News", source="list", at=T0
    )
    add(store, again, again_consent)
    with store.transaction() as tx:
        contacts = list(tx[Contact].stream())
        consents = list(tx[Consent].stream())
        audience = build_audience(
            [c.id for c in contacts],
            channel="email",
            purpose="marketing",
            consents=consents,
            erased=erased_ids(tx),
            suppressed=suppressed_among(tx, contacts),
            at=T0 + timedelta(days=1),
        )
    assert audience.included == ("c-bob",)
    assert {k: str(v) for k, v in audience.excluded.items()} == {"c-ada": "erased", "c-ada-2": "suppressed"}


def test_a_re_import_keeps_the_good_rows_and_reports_the_suppressed_ones(store):
    from crmkit.leads import capture_batch  # noqa: PLC0415 - only here
    from crmkit.privacy import screen_leads  # noqa: PLC0415 - only here

    with store.transaction() as tx:
        suppress(tx, emails=["ada@example.com"])
        report = capture_batch(
            [{"email": "grace@example.com"}, {"email": "Ada@Example.com"}, {"email": "alan@example.com"}],
            channel="import",
            clock=FixedClock(T0),
        )
        screening = screen_leads(tx, [captured.lead for captured in report.captured])
        flagged = screen_leads(tx, [captured.lead for captured in report.captured], on_match="flag")
    assert [lead.email for lead in screening.kept] == ["grace@example.com", "alan@example.com"]
    assert [index for index, _ in screening.blocked] == [1]
    assert [("suppressed" in lead.tags) for lead in flagged.kept] == [False, True, False]


def test_values_inside_a_json_text_an_event_carries_are_rewritten_too(store):
    from crmkit.events import Assigned  # noqa: PLC0415 - only here

    zoe = Contact(id="c-zoe", first_name="Zoë", last_name="Ünal", email="zoe@example.com", created_at=T0)
    snapshot = json.dumps({"before": [{"first_name": "Zoë", "last_name": "Ünal"}]})  # as a merge keeps it
    with store.transaction(actor="u-1") as tx:
        tx[Contact].add(zoe)
        tx.record(Assigned(entity=EntityRef.to(zoe), owner_id="u-1", reason=snapshot))
        tx.commit()
    assert "\\u00eb" in snapshot
    with store.transaction(actor="dpo") as tx:
        report = erase_person(tx, zoe)
        tx.commit()
    with store.transaction() as tx:
        reason = next(e.event.reason for e in tx.audit(entity=zoe) if isinstance(e.event, Assigned))
    assert report.audit_entries_redacted == 1
    assert "Zo" not in reason
    assert "nal" not in reason


def test_an_email_only_a_merged_away_lead_had_is_erased_from_the_merge_snapshot_and_suppressed(store):
    from crmkit.leads import merge_records  # noqa: PLC0415 - only here

    older = Lead(id="l-old", email="ada@example.com", first_name="Ada", created_at=T0 - timedelta(days=1))
    other = Lead(id="l-dup", email="ada.private@example.org", phone="+442079460958", created_at=T0)
    add(store, older, other)
    with store.transaction(actor="u-1") as tx:
        result = merge_records(tx[Lead].get_many(["l-old", "l-dup"]), at=T0)
        assert result.survivor.id == "l-old"
        tx[Lead].update(result.survivor)
        for retired in result.retired:
            tx[Lead].delete(retired)
        tx.record(*[e for e in result.events if e.name == "records_merged"])
        tx.commit()
    with store.transaction(actor="dpo") as tx:
        report = erase_person(tx, EntityRef("lead", "l-old"))
        tx.commit()
    assert report.suppressed == 3  # both emails and the phone
    with store.transaction() as tx:
        logged = json.dumps([str(entry.event) for entry in tx.audit(entity=EntityRef("lead", "l-old"))])
        assert suppression_match(tx, email="ada.private@example.org") is not None
        again = erase_person(tx, EntityRef("lead", "l-old"))
    assert "ada.private" not in logged
    assert "2079460958" not in logged
    assert again.already_erased


def test_erased_ids_reads_past_one_page():
    store = open_store("sqlite:///:memory:")
    with store.transaction() as tx:
        for n in range(1_205):
            tx.state.put("privacy.erased", f"id{n:05d}", {"kind": "lead"}, expected_version=None)
        assert len(erased_ids(tx)) == 1_205
    store.close()


def test_erasure_and_the_suppression_list_stay_inside_one_tenant():
    root = open_store("sqlite:///:memory:", clock=FixedClock(T0))
    emea, apac = root.for_tenant("emea"), root.for_tenant("apac")
    for tenant in (emea, apac):
        add(tenant, Contact(id="c-ada", first_name="Ada", email="ada@example.com", created_at=T0))
    with emea.transaction(actor="dpo") as tx:
        erase_person(tx, EntityRef("contact", "c-ada"))
        tx.commit()
    with apac.transaction() as tx:
        assert tx[Contact].get("c-ada").email == "ada@example.com"
        assert suppression_match(tx, email="ada@example.com") is None
        assert erased_ids(tx) == frozenset()
    with emea.transaction() as tx:
        assert suppression_match(tx, email="ada@example.com") is not None
    root.close()
