"""Consent: recording, withdrawing, deciding, state and history."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import Channel, Consent, ConsentStatus, Contact, EntityRef, LawfulBasis
from crmkit.errors import ConsentError, ValidationError
from crmkit.privacy import (
    ConsentLedger,
    ConsentReason,
    Purpose,
    grant_consent,
    withdraw_consent,
)
from crmkit.segmentation import build_audience, consent_problem

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
ADA = EntityRef("contact", "ada")


def granted(purpose="marketing", channel="email", at=T0, **extra):
    return grant_consent(
        ADA, purpose=purpose, channel=channel, wording="Send me news", source="web_form", at=at, **extra
    )


def test_a_person_without_any_consent_is_refused_with_no_consent():
    decision = ConsentLedger().allows("ada", "email", "marketing", T0)
    assert not decision
    assert decision.reason is ConsentReason.NO_CONSENT
    assert "no consent covers email" in decision.explanation


def test_a_granted_consent_allows_its_channel_and_purpose_only():
    ledger = ConsentLedger([granted()])
    assert ledger.allows(ADA, "email", "marketing", T0).allowed
    assert ledger.allows(ADA, "sms", "marketing", T0).reason is ConsentReason.NO_CONSENT
    assert ledger.allows(ADA, "email", "profiling", T0).reason is ConsentReason.NO_CONSENT
    assert not ledger.allows(ADA, "email", "marketing", T0 - timedelta(seconds=1))


def test_a_consent_for_every_channel_covers_sms_phone_and_post():
    ledger = ConsentLedger([granted(channel=None)])
    for channel in (Channel.SMS, Channel.PHONE, Channel.POST, Channel.EMAIL):
        assert ledger.allows(ADA, channel, Purpose.MARKETING, T0).allowed


def test_the_deciding_consent_records_basis_source_wording_and_time():
    consent = granted(lawful_basis=LawfulBasis.CONSENT)
    decision = ConsentLedger([consent]).allows(ADA, "email", "marketing", T0 + timedelta(days=1))
    assert decision.consent == consent
    assert (consent.source, consent.wording, consent.captured_at) == ("web_form", "Send me news", T0)
    assert "basis consent" in decision.explanation


def test_a_consent_expires_after_its_validity():
    consent = granted(valid_for="P24M")
    ledger = ConsentLedger([consent])
    assert consent.expires_at == datetime(2028, 1, 1, 9, tzinfo=UTC)
    assert ledger.allows(ADA, "email", "marketing", datetime(2027, 12, 31, tzinfo=UTC)).allowed
    assert ledger.allows(ADA, "email", "marketing", consent.expires_at).reason is ConsentReason.EXPIRED


def test_withdrawal_refuses_from_its_time_on_and_keeps_the_earlier_state():
    withdrawn = withdraw_consent(granted(), at=T0 + timedelta(days=10))
    ledger = ConsentLedger([withdrawn])
    assert ledger.allows(ADA, "email", "marketing", T0 + timedelta(days=9)).allowed
    assert ledger.allows(ADA, "email", "marketing", T0 + timedelta(days=10)).reason is ConsentReason.WITHDRAWN


def test_withdrawing_twice_or_withdrawing_a_refusal_is_a_consent_error():
    withdrawn = withdraw_consent(granted(), at=T0 + timedelta(days=1))
    with pytest.raises(ConsentError, match="withdrawn"):
        withdraw_consent(withdrawn, at=T0 + timedelta(days=2))
    refusal = grant_consent(
        ADA, purpose="marketing", channel="email", wording=None, source="call", denied=True, at=T0
    )
    with pytest.raises(ConsentError, match="denied"):
        withdraw_consent(refusal)


def test_a_later_grant_after_a_withdrawal_allows_again():
    first = withdraw_consent(granted(), at=T0 + timedelta(days=1))
    again = granted(at=T0 + timedelta(days=5))
    ledger = ConsentLedger([first, again])
    assert ledger.allows(ADA, "email", "marketing", T0 + timedelta(days=3)).reason is ConsentReason.WITHDRAWN
    assert ledger.allows(ADA, "email", "marketing", T0 + timedelta(days=6)).allowed


def test_a_refusal_on_the_same_instant_beats_a_grant():
    refusal = grant_consent(
        ADA, purpose="marketing", channel=None, wording=None, source="call", denied=True, at=T0
    )
    ledger = ConsentLedger([granted(), refusal])
    assert ledger.allows(ADA, "email", "marketing", T0).reason is ConsentReason.DENIED


def test_consent_on_the_consent_basis_needs_its_wording():
    with pytest.raises(ConsentError, match="wording"):
        grant_consent(ADA, purpose="marketing", channel="email", wording=" ", source="web_form", at=T0)
    contract = grant_consent(
        ADA, purpose="service", channel="email", wording=None, source="order", lawful_basis="contract", at=T0
    )
    assert ConsentLedger([contract]).allows(ADA, "email", "service", T0).allowed


def test_bad_channel_purpose_or_naive_time_name_the_field():
    ledger = ConsentLedger()
    with pytest.raises(ValidationError, match="channel"):
        ledger.allows(ADA, "pigeon", "marketing", T0)
    with pytest.raises(ValidationError, match="purpose"):
        ledger.allows(ADA, "email", " ", T0)
    with pytest.raises(ValidationError, match="at"):
        ledger.allows(ADA, "email", "marketing", datetime(2026, 1, 1))  # noqa: DTZ001 - the naive time is the point
    with pytest.raises(ValidationError, match="valid_for"):
        granted(valid_for="two years")


def test_require_refuses_with_a_consent_error_that_says_why():
    with pytest.raises(ConsentError, match="no consent covers sms"):
        ConsentLedger([granted()]).require(ADA, "sms", "marketing", T0)
    assert ConsentLedger([granted()]).require(ADA, "email", "marketing", T0).allowed


def test_do_not_contact_and_erased_people_are_refused_whatever_they_consented():
    ledger = ConsentLedger([granted()], do_not_contact={"ada"})
    assert ledger.allows(ADA, "email", "marketing", T0).reason is ConsentReason.DO_NOT_CONTACT
    ledger = ConsentLedger([granted()], erased={"ada"})
    assert ledger.allows(ADA, "email", "marketing", T0).reason is ConsentReason.ERASED


def test_a_person_with_several_records_counts_the_consents_of_each():
    on_lead = grant_consent(
        EntityRef("lead", "l-1"), purpose="marketing", channel="sms", wording="Texts", source="form", at=T0
    )
    ledger = ConsentLedger([on_lead])
    contact = Contact(id="c-1", email="ada@example.com")
    assert not ledger.allows(contact, "sms", "marketing", T0)
    assert ledger.allows([contact, EntityRef("lead", "l-1")], "sms", "marketing", T0).allowed


def test_screen_splits_recipients_into_allowed_and_skipped_with_reasons():
    ledger = ConsentLedger([granted()], do_not_contact={"bob"})
    screening = ledger.screen(["ada", "bob", "cy"], "email", "marketing", T0)
    assert screening.allowed == ("ada",)
    assert {k: v.reason for k, v in screening.skipped.items()} == {
        "bob": ConsentReason.DO_NOT_CONTACT,
        "cy": ConsentReason.NO_CONSENT,
    }


def test_state_at_any_time_and_the_history_in_order():
    first = withdraw_consent(granted(), at=T0 + timedelta(days=1))
    sms = granted(channel="sms", at=T0 + timedelta(days=2), valid_for="P1M")
    ledger = ConsentLedger([sms, first])
    state = ledger.state_at(ADA, T0 + timedelta(days=3))
    assert state[("marketing", Channel.EMAIL)].reason is ConsentReason.WITHDRAWN
    assert state[("marketing", Channel.SMS)].allowed
    history = [(change.status, change.channel) for change in ledger.history(ADA)]
    assert history == [
        ("granted", Channel.EMAIL),
        ("withdrawn", Channel.EMAIL),
        ("granted", Channel.SMS),
        ("expired", Channel.SMS),
    ]
    assert [c.status for c in ledger.history(ADA, channel="sms")] == ["granted", "expired"]


def test_the_ledger_refuses_what_is_not_a_consent():
    with pytest.raises(ValidationError, match=r"consents\[0\]"):
        ConsentLedger(["yes"])  # type: ignore[list-item]


# -- properties -----------------------------------------------------------------------------------

_times = st.integers(0, 20).map(lambda d: T0 + timedelta(days=d))


@st.composite
def consents(draw):
    at = draw(_times)
    status = draw(st.sampled_from([ConsentStatus.GRANTED, ConsentStatus.DENIED, ConsentStatus.WITHDRAWN]))
    withdrawn_at = at + timedelta(days=draw(st.integers(0, 5))) if status is ConsentStatus.WITHDRAWN else None
    expires = draw(st.none() | st.integers(1, 10).map(lambda d: at + timedelta(days=d)))
    return Consent(
        subject=EntityRef("contact", draw(st.sampled_from(["ada", "bob"]))),
        purpose=draw(st.sampled_from(["marketing", "profiling"])),
        channel=draw(st.none() | st.sampled_from([Channel.EMAIL, Channel.SMS])),
        status=status,
        wording="ok",
        captured_at=at,
        withdrawn_at=withdrawn_at,
        expires_at=expires,
        created_at=at,
    )


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(consents(), max_size=8),
    at=_times,
    channel=st.sampled_from([Channel.EMAIL, Channel.SMS]),
    purpose=st.sampled_from(["marketing", "profiling"]),
)
def test_the_ledger_agrees_with_segmentations_consent_rule(records, at, channel, purpose):
    ledger = ConsentLedger(records)
    for person in ("ada", "bob"):
        mine = ledger.allows(person, channel, purpose, at)
        theirs = consent_problem(
            [c for c in records if c.subject.id == person], channel=channel, purpose=purpose, at=at
        )
        assert mine.allowed == (theirs is None)
        if theirs is not None:
            assert str(mine.reason) == str(theirs)


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(consents(), max_size=8),
    at=_times,
    channel=st.sampled_from([Channel.EMAIL, Channel.SMS]),
    purpose=st.sampled_from(["marketing", "profiling"]),
)
def test_a_campaign_audience_never_holds_a_person_without_consent_at_send_time(records, at, channel, purpose):
    audience = build_audience(["ada", "bob"], channel=channel, purpose=purpose, consents=records, at=at)
    ledger = ConsentLedger(records)
    for member in audience.included:
        assert ledger.allows(member, channel, purpose, at).allowed
    assert set(ledger.screen(["ada", "bob"], channel, purpose, at).allowed) == set(audience.included)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(consents(), max_size=6, unique_by=lambda c: c.captured_at),
    at=_times,
    channel=st.sampled_from([Channel.EMAIL, Channel.SMS]),
    purpose=st.sampled_from(["marketing", "profiling"]),
)
def test_replaying_the_history_gives_the_decision(records, at, channel, purpose):
    records = [attrs.evolve(c, subject=ADA) for c in records]  # one person, capture times all distinct
    ledger = ConsentLedger(records)
    changes = [c for c in ledger.history(ADA, purpose=purpose, channel=channel) if c.at <= at]
    captures = [c for c in changes if c.status in {"granted", "denied"}]
    if not captures:
        expected = False
    else:
        deciding = captures[-1]
        ended = any(c.consent == deciding.consent and c.status in {"withdrawn", "expired"} for c in changes)
        expected = deciding.status == "granted" and not ended
    assert ledger.allows(ADA, channel, purpose, at).allowed == expected
    assert (
        ledger.state_at(ADA, at).get((purpose, channel), ledger.allows(ADA, channel, purpose, at)).allowed
        == expected
    )
