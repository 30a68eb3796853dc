"""Capturing leads from channels: normalisation, UTM tags, consent with its lawful basis, typed errors."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock, use_clock
from crmkit.entities import Channel, ConsentStatus, LawfulBasis
from crmkit.errors import ConsentError, ValidationError
from crmkit.events import EntityCreated
from crmkit.leads import ConsentCapture, Utm, capture_batch, capture_lead
from crmkit.testing.strategies import emails, person_names

CLOCK = FixedClock(datetime(2026, 11, 23, 9, 30, tzinfo=UTC))


@pytest.fixture(autouse=True)
def _fixed_clock():
    """Every record built without an explicit time gets the test's fixed time."""
    with use_clock(CLOCK):
        yield


def test_captures_a_web_form_lead_normalised_with_utm_and_consent():
    captured = capture_lead(
        {"email": " Ada@Acme.COM ", "phone": "030 1234567", "country": "DE", "first_name": "  Ada   Maria "},
        channel="web_form",
        utm=Utm.from_url("https://acme.example/pricing?utm_source=google&utm_medium=cpc&utm_campaign=q4"),
        consents=[ConsentCapture(purpose="newsletter", wording="Send me the monthly newsletter")],
        clock=CLOCK,
    )
    lead = captured.lead
    assert lead.email == "ada@acme.com"
    assert lead.phone == "+49301234567"
    assert lead.first_name == "Ada Maria"
    assert lead.domain == "acme.com"
    assert lead.source is Channel.WEB_FORM
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign) == ("google", "cpc", "q4")
    assert lead.created_at == CLOCK.now()
    (consent,) = captured.consents
    assert consent.subject.id == lead.id
    assert consent.lawful_basis is LawfulBasis.CONSENT
    assert consent.wording == "Send me the monthly newsletter"
    assert consent.captured_at == CLOCK.now()
    assert [type(event) for event in captured.events] == [EntityCreated, EntityCreated]


def test_takes_the_company_domain_from_a_website_but_never_from_a_free_mailbox():
    from_site = capture_lead(
        {"email": "ada@gmail.com", "website": "https://www.Acme.io/about"}, channel="event", clock=CLOCK
    )
    assert from_site.lead.domain == "acme.io"
    free = capture_lead({"email": "ada@gmail.com"}, channel="chat", clock=CLOCK)
    assert free.lead.domain is None


def test_a_lead_with_no_way_to_contact_is_refused():
    with pytest.raises(ValidationError) as error:
        capture_lead({"last_name": "Lovelace", "company": "Acme"}, channel="referral", clock=CLOCK)
    assert error.value.paths == ("email",)
    assert "no way to contact" in str(error.value)


def test_every_problem_of_a_row_is_reported_at_once():
    with pytest.raises(ValidationError) as error:
        capture_lead({"email": "ada.example.com", "phone": "12", "fax": "1"}, channel="phone", clock=CLOCK)
    assert set(error.value.paths) == {"email", "phone", "fax"}


def test_an_unknown_channel_is_a_validation_error_naming_the_channel():
    with pytest.raises(ValidationError) as error:
        capture_lead({"email": "a@b.com"}, channel="carrier_pigeon", clock=CLOCK)
    assert error.value.paths == ("channel",)


def test_a_purchased_list_without_a_lawful_basis_is_refused():
    with pytest.raises(ConsentError, match="lawful basis"):
        capture_lead({"email": "a@b.com"}, channel=Channel.PURCHASED_LIST, clock=CLOCK)
    with pytest.raises(ConsentError):
        capture_lead(
            {"email": "a@b.com"},
            channel="purchased_list",
            consents=[ConsentCapture(purpose="marketing", wording="ok")],
            clock=CLOCK,
        )


def test_a_purchased_list_with_legitimate_interests_is_captured():
    captured = capture_lead(
        {"email": "a@b.com"},
        channel="purchased_list",
        consents=[ConsentCapture(purpose="b2b_outreach", lawful_basis="legitimate_interests")],
        clock=CLOCK,
    )
    assert captured.consents[0].lawful_basis is LawfulBasis.LEGITIMATE_INTERESTS


def test_consent_without_its_wording_is_refused_and_a_refusal_is_recorded():
    with pytest.raises(ConsentError, match="wording"):
        capture_lead({"email": "a@b.com"}, channel="web_form", consents=[ConsentCapture(purpose="news")])
    captured = capture_lead(
        {"email": "a@b.com"}, channel="web_form", consents=[ConsentCapture(purpose="news", status="denied")]
    )
    assert captured.consents[0].status is ConsentStatus.DENIED


def test_a_batch_keeps_the_good_rows_and_reports_the_bad_ones():
    report = capture_batch(
        [{"email": "a@b.com"}, {"email": "nope"}, {"phone": "+442079460958"}, {"company": "Acme"}],
        channel="import",
        clock=CLOCK,
    )
    assert [c.lead.email or c.lead.phone for c in report.captured] == ["a@b.com", "+442079460958"]
    assert [r.index for r in report.rejected] == [1, 3]
    assert report.rejected[0].error.paths == ("email",)  # type: ignore[attr-defined]


def test_utm_tags_are_read_from_a_url_ignoring_blank_values():
    assert Utm.from_url("https://x.example/?utm_source=&utm_medium=email") == Utm(medium="email")


@settings(max_examples=60, deadline=None)
@given(email=emails(), first=person_names())
def test_capturing_a_captured_lead_again_gives_the_same_fields(email, first):
    once = capture_lead({"email": email, "first_name": first}, channel="web_form", clock=CLOCK).lead
    again = capture_lead(
        {"email": once.email, "first_name": once.first_name, "domain": once.domain},
        channel="web_form",
        clock=CLOCK,
    ).lead
    assert (again.email, again.first_name, again.domain) == (once.email, once.first_name, once.domain)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["email", "phone", "company", "x"]), st.text(max_size=12), max_size=4))
def test_capture_either_returns_a_lead_or_raises_a_typed_error(row):
    try:
        captured = capture_lead(row, channel="web_form", clock=CLOCK)
    except ValidationError as error:
        assert error.problems  # noqa: PT017 - either outcome is fine; the error must be typed
    else:
        assert captured.lead.email or captured.lead.phone
