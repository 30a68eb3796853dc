import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import crmkit.normalize as normalize_module
from crmkit.errors import ValidationError
from crmkit.normalize import (
    CALLING_CODES,
    normalize_domain,
    normalize_email,
    normalize_name,
    normalize_phone,
)
from crmkit.testing import domains, emails, phone_numbers

E164 = re.compile(r"\+[1-9]\d{6,14}")


@pytest.fixture(params=["phonenumbers", "basic"])
def phone_path(request, monkeypatch):
    """Run a test once with the phonenumbers library and once with the built-in normaliser."""
    if request.param == "basic":
        monkeypatch.setattr(normalize_module, "_phonenumbers", None)
    else:
        pytest.importorskip("phonenumbers")
    return request.param


def _problem_path(call):
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.paths


# Email


def test_email_is_trimmed_and_lower_cased():
    assert normalize_email("  Ada.Lovelace@Example.COM ") == "ada.lovelace@example.com"


def test_email_keeps_plus_tags_and_sub_domains():
    assert normalize_email("ada+crm@mail.example.co.uk") == "ada+crm@mail.example.co.uk"


def test_email_with_an_international_domain_is_idna_encoded():
    assert normalize_email("ada@bücher.de") == "ada@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ada",
        "ada@@example.com",
        "ada@example@com",
        "@example.com",
        "ada@",
        "ada@localhost",
        "ada@example.123",
        "ada@-example.com",
        "ada@exa_mple.com",
        "ada..lovelace@example.com",
        ".ada@example.com",
        "ada.@example.com",
        "a da@example.com",
        "ädä@example.com",
        "x" * 65 + "@example.com",
        "ada@" + "a" * 64 + ".com",
        "ada@" + ".".join(["abcdefghij"] * 25) + ".com",
    ],
)
def test_malformed_emails_are_refused(raw):
    assert _problem_path(lambda: normalize_email(raw)) == ("email",)


def test_email_error_uses_the_given_field_path():
    assert _problem_path(lambda: normalize_email("nope", field="contacts[3].email")) == ("contacts[3].email",)


def test_a_non_string_email_is_refused():
    assert _problem_path(lambda: normalize_email(42)) == ("email",)


@given(emails())
def test_generated_emails_are_already_normal(address):
    assert normalize_email(address) == address


@given(emails(), st.sampled_from([str.upper, str.title, lambda s: f"  {s}\t"]))
def test_email_normalisation_is_idempotent(address, mangle):
    once = normalize_email(mangle(address))
    assert normalize_email(once) == once
    assert once == address


@given(st.text(max_size=40))
def test_email_normalisation_is_idempotent_on_arbitrary_text(raw):
    try:
        once = normalize_email(raw)
    except ValidationError:
        return
    assert normalize_email(once) == once


# Domain


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "example.com"),
        ("EXAMPLE.com.", "example.com"),
        ("https://www.Example.com:8443/pricing?x=1#top", "example.com"),
        ("http://user:secret@shop.example.co.uk/cart", "shop.example.co.uk"),
        ("//cdn.example.org/lib.js", "cdn.example.org"),
        ("sales@example.com", "example.com"),
        ("www.example.com", "example.com"),
        ("www.com", "www.com"),
        ("bücher.de", "xn--bcher-kva.de"),
    ],
)
def test_domain_is_extracted_from_urls_emails_and_hosts(raw, expected):
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize("raw", ["", "localhost", "https://", "exa mple.com", "example..com", "10.0.0.1", 7])
def test_invalid_domains_are_refused(raw):
    assert _problem_path(lambda: normalize_domain(raw, field="website")) == ("website",)


@given(domains())
def test_domain_normalisation_is_idempotent(domain):
    once = normalize_domain(f"https://www.{domain.upper()}/path")
    assert normalize_domain(once) == once


@given(st.text(max_size=40))
def test_domain_normalisation_is_idempotent_on_arbitrary_text(raw):
    try:
        once = normalize_domain(raw)
    except ValidationError:
        return
    assert normalize_domain(once) == once


# Name


def test_name_whitespace_is_collapsed_and_case_kept():
    assert normalize_name("  Ada \t  van der\nBerg ") == "Ada van der Berg"
    assert normalize_name("ACME GmbH") == "ACME GmbH"


@pytest.mark.parametrize("raw", ["", "   ", "\n\t", None])
def test_blank_names_are_refused(raw):
    assert _problem_path(lambda: normalize_name(raw, field="first_name")) == ("first_name",)


@given(st.text())
def test_name_normalisation_is_idempotent(raw):
    assume(raw.strip())
    once = normalize_name(raw)
    assert normalize_name(once) == once
    assert "  " not in once


# Phone (both paths)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 20 7946 0958", None, "+442079460958"),
        ("0044 (20) 7946-0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("1 650 253 0000", "US", "+16502530000"),
        ("030 1234 5678", "DE", "+493012345678"),
        ("06.12.34.56.78", "FR", "+33612345678"),
    ],
)
@pytest.mark.usefixtures("phone_path")
def test_phone_numbers_are_normalised_to_e164(raw, region, expected):
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("020 7946 0958", None),
        ("+", None),
        ("+0 123 4567", None),
        ("call me", "US"),
        ("12", "US"),
        ("+1234", None),
        ("", None),
    ],
)
@pytest.mark.usefixtures("phone_path")
def test_unreadable_phone_numbers_are_refused(raw, region):
    assert _problem_path(lambda: normalize_phone(raw, region, field="mobile")) == ("mobile",)


@pytest.mark.usefixtures("phone_path")
def test_a_non_string_phone_is_refused():
    assert _problem_path(lambda: normalize_phone(2079460958, "GB")) == ("phone",)


def test_basic_path_refuses_a_national_number_of_an_unknown_region(monkeypatch):
    monkeypatch.setattr(normalize_module, "_phonenumbers", None)
    assert "ZW" not in CALLING_CODES
    assert _problem_path(lambda: normalize_phone("077 123 4567", "ZW")) == ("phone",)


def test_basic_path_refuses_letters(monkeypatch):
    monkeypatch.setattr(normalize_module, "_phonenumbers", None)
    assert _problem_path(lambda: normalize_phone("+1 800 FLOWERS")) == ("phone",)


@given(phone_numbers())
def test_generated_phone_numbers_are_already_normal(number):
    assert normalize_phone(number) == number


@pytest.mark.parametrize("basic", [False, True])
@given(number=phone_numbers(), spacing=st.sampled_from([" ", "-", ".", ""]))
def test_phone_normalisation_is_idempotent_on_both_paths(basic, number, spacing):
    # Monkeypatch fixtures do not mix with @given, so the switch is made by hand.
    saved = normalize_module._phonenumbers
    if basic:
        normalize_module._phonenumbers = None
    try:
        spaced = number[:3] + spacing + number[3:6] + spacing + number[6:]
        once = normalize_phone(spaced)
        assert normalize_phone(once) == once
        assert E164.fullmatch(once)
    finally:
        normalize_module._phonenumbers = saved


@given(st.text(alphabet="+0123456789 -().", max_size=20), st.sampled_from([None, "US", "GB", "DE"]))
def test_phone_results_always_match_e164_on_the_basic_path(raw, region):
    saved = normalize_module._phonenumbers
    normalize_module._phonenumbers = None
    try:
        try:
            once = normalize_phone(raw, region)
        except ValidationError:
            return
        assert E164.fullmatch(once)
        assert normalize_phone(once) == once
    finally:
        normalize_module._phonenumbers = saved


def test_calling_code_table_is_read_only():
    with pytest.raises(TypeError):
        CALLING_CODES["XX"] = ("999", None)  # type: ignore[index]
