"""Pure normalisers for the contact points a CRM matches records on.

Each function takes raw input (a web form, an import row) and returns the
canonical form that crmkit stores and compares, or raises
:class:`~crmkit.errors.ValidationError` whose single problem sits at the path
given as ``field``. Every normaliser is idempotent: normalising its own output
returns it unchanged.

Phone numbers use the ``phonenumbers`` library (the ``phone`` extra:
``pip install crmkit[phone]``) when it is installed, with the full numbering
plan of every region. Without it a basic normaliser handles the common cases;
see :func:`normalize_phone`.
"""

from __future__ import annotations

import functools
import re
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING

from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping

try:
    import phonenumbers as _phonenumbers_module

    _phonenumbers: ModuleType | None = _phonenumbers_module
except ImportError:  # pragma: no cover - exercised by forcing the basic path in tests
    _phonenumbers = None

__all__ = [
    "CALLING_CODES",
    "normalize_domain",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
]

_MAX_EMAIL = 254
_MAX_LOCAL = 64
_MAX_LABEL = 63
_MAX_DOMAIN = 253
# The characters RFC 5322 allows unquoted in a local part ("dot-atom" text), ASCII only.
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# An address already in canonical form: a local part of 1 to 64 lower-case ASCII characters in dot-atoms,
# '@', then two or more valid DNS labels, the last not all digits. With the overall length limit, such
# input is exactly what normalize_email returns unchanged, so it needs neither IDNA nor splitting.
_CANONICAL_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)"
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?![0-9]+\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_PUNCTUATION = re.compile(r"[\s.\-()/]")
_PORT = re.compile(r":\d*$")

CALLING_CODES: Mapping[str, tuple[str, str | None]] = MappingProxyType(
    {
        "US": ("1", "1"),
        "CA": ("1", "1"),
        "GB": ("44", "0"),
        "IE": ("353", "0"),
        "DE": ("49", "0"),
        "AT": ("43", "0"),
        "CH": ("41", "0"),
        "FR": ("33", "0"),
        "BE": ("32", "0"),
        "NL": ("31", "0"),
        "LU": ("352", None),
        "ES": ("34", None),
        "PT": ("351", None),
        "IT": ("39", None),
        "SE": ("46", "0"),
        "NO": ("47", None),
        "DK": ("45", None),
        "FI": ("358", "0"),
        "PL": ("48", None),
        "CZ": ("420", None),
        "AU": ("61", "0"),
        "NZ": ("64", "0"),
        "JP": ("81", "0"),
        "CN": ("86", "0"),
        "IN": ("91", "0"),
        "SG": ("65", None),
        "HK": ("852", None),
        "BR": ("55", "0"),
        "MX": ("52", None),
        "ZA": ("27", "0"),
        "AE": ("971", "0"),
    }
)
"""Regions the basic phone normaliser knows: region -> (calling code, national trunk prefix or None)."""


def normalize_email(raw: object, *, field: str = "email") -> str:
    """Return the canonical form of an email address.

    The whole address is trimmed and lower-cased. Strictly the local part is
    case-sensitive, but no mail system in practical use treats it so, and CRMs
    match and deduplicate people by a lower-cased address. An internationalised
    domain is IDNA-encoded (``bücher.de`` -> ``xn--bcher-kva.de``); the local part
    must be ASCII.

    The syntax checked is the practical one: exactly one ``@``; a local part of
    1 to 64 dot-separated atoms; a domain of at least two valid DNS labels whose
    last one is not all digits; at most 254 characters in all. Quoted local parts
    and IP-literal domains are refused.

    Args:
        raw: The address as entered.
        field: The path named in the error.

    Raises:
        ValidationError: If ``raw`` is not a string holding a usable address.
    """
    if (
        isinstance(raw, str)
        and raw.__class__ is str  # a str subclass takes the full path, which returns a plain str
        and len(raw) <= _MAX_EMAIL
        and _CANONICAL_EMAIL.fullmatch(raw) is not None
    ):
        return raw
    return _normalize_email_fully(raw, field)


def _normalize_email_fully(raw: object, field: str) -> str:
    """:func:`normalize_email` without the fast path for canonical input (the reference the tests use)."""
    if not isinstance(raw, str):
        raise ValidationError.single(field, f"expected an email address, got {type(raw).__name__}")
    text = raw.strip().lower()
    if text.count("@") != 1:
        raise ValidationError.single(field, f"{raw!r} is not an email address: it needs exactly one '@'")
    local, domain_part = text.split("@")
    if not local or len(local) > _MAX_LOCAL or not _LOCAL_PART.fullmatch(local):
        raise ValidationError.single(
            field, f"{raw!r} is not an email address: the part before '@' is empty, too long or malformed"
        )
    domain = _ascii_host(domain_part)
    if domain is None:
        raise ValidationError.single(field, f"{raw!r} is not an email address: the domain is not valid")
    address = f"{local}@{domain}"
    if len(address) > _MAX_EMAIL:
        raise ValidationError.single(field, f"an email address has at most {_MAX_EMAIL} characters")
    return address


def normalize_domain(raw: object, *, field: str = "domain") -> str:
    """Return the registrable host of a URL, an email address or a bare host name.

    ``"https://www.Example.com:8443/pricing?x=1"``, ``"sales@example.com"`` and
    ``"EXAMPLE.com."`` all give ``"example.com"``. The scheme, user info, path,
    query, port, trailing dot and one leading ``www.`` are dropped, the result is
    lower-cased and IDNA-encoded. IP addresses are refused.

    Args:
        raw: The URL, address or host as entered.
        field: The path named in the error.

    Raises:
        ValidationError: If no valid domain name with at least two labels remains.
    """
    if not isinstance(raw, str):
        raise ValidationError.single(field, f"expected a domain, URL or email, got {type(raw).__name__}")
    text = raw.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    elif text.startswith("//"):
        text = text[2:]
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1]
    text = _PORT.sub("", text)
    host = _ascii_host(text)
    if host is None:
        raise ValidationError.single(field, f"{raw!r} does not contain a valid domain name")
    if host.startswith("www.") and host.count(".") >= 2:  # noqa: PLR2004 - "www." plus a registrable name
        host = host[4:]
    return host


def normalize_name(raw: object, *, field: str = "name") -> str:
    """Return a person's or company's name with runs of whitespace collapsed and ends trimmed.

    Letter case is kept as given: ``"McDonald"``, ``"van der Berg"`` and
    ``"ACME GmbH"`` are all correct as typed.

    Args:
        raw: The name as entered.
        field: The path named in the error.

    Raises:
        ValidationError: If ``raw`` is not a string or holds only whitespace.
    """
    if not isinstance(raw, str):
        raise ValidationError.single(field, f"expected a name, got {type(raw).__name__}")
    name = " ".join(raw.split())
    if not name:
        raise ValidationError.single(field, "must not be empty")
    return name


def normalize_phone(raw: object, default_region: str | None = None, *, field: str = "phone") -> str:
    r"""Return a phone number in E.164 form, such as ``"+442079460958"``.

    A leading ``00`` is read as the international prefix (``+``). A number
    without ``+`` is read as a national number of ``default_region`` (an ISO
    3166 alpha-2 code such as ``"GB"``).

    With ``phonenumbers`` installed, its parser applies the region's dialling
    rules and the number must have a possible length for its region. Without
    it, the basic normaliser removes spaces, dots, dashes, slashes and
    parentheses, and for a national number drops the trunk prefix and prepends
    the calling code from :data:`CALLING_CODES` (other regions are refused).
    Either way the result must match ``^\+[1-9]\d{6,14}$``.

    Args:
        raw: The number as entered.
        default_region: The region a number without ``+`` belongs to.
        field: The path named in the error.

    Raises:
        ValidationError: If the number cannot be read as an E.164 number.
    """
    if not isinstance(raw, str):
        raise ValidationError.single(field, f"expected a phone number, got {type(raw).__name__}")
    region = default_region.strip().upper() if default_region else None
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if _phonenumbers is not None:
        number = _phonenumbers_e164_cached(text, region)
    else:
        number = _basic_e164(text, region)
    if number is None or not _E164.fullmatch(number):
        raise ValidationError.single(field, f"{raw!r} is not a phone number that can be written in E.164")
    return number


@functools.lru_cache(maxsize=4096)
def _phonenumbers_e164_cached(text: str, region: str | None) -> str | None:
    """``_phonenumbers_e164`` remembered: parsing costs about 15 us, and the same numbers recur (re-reads)."""
    assert _phonenumbers is not None  # noqa: S101 - only called when the library is installed
    return _phonenumbers_e164(_phonenumbers, text, region)


def _phonenumbers_e164(library: ModuleType, text: str, region: str | None) -> str | None:
    try:
        parsed = library.parse(text, region)
    except library.NumberParseException:
        return None
    if not library.is_possible_number(parsed):
        return None
    e164: str = library.format_number(parsed, library.PhoneNumberFormat.E164)
    return e164


def _basic_e164(text: str, region: str | None) -> str | None:
    digits = _PHONE_PUNCTUATION.sub("", text)
    if digits.startswith("+"):
        return digits
    if region is None or region not in CALLING_CODES or not digits.isdigit():
        return None
    code, trunk = CALLING_CODES[region]
    # NANP numbers only carry the trunk "1" when dialled with 11 digits.
    nanp_trunk = trunk == code and len(digits) == 11  # noqa: PLR2004 - 1 + 10-digit NANP number
    if trunk is not None and digits.startswith(trunk) and (trunk != code or nanp_trunk):
        digits = digits[len(trunk) :]
    return f"+{code}{digits}"


def _ascii_host(text: str) -> str | None:
    """Return ``text`` as a lower-case ASCII host name of two or more labels, or None."""
    host = text.rstrip(".")
    if host.isascii():
        # IDNA leaves ASCII as it is, refusing only empty or over-long labels, which are refused below too.
        host = host.lower()
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    labels = host.split(".")
    if len(host) > _MAX_DOMAIN or len(labels) < 2:  # noqa: PLR2004 - a name and a top-level domain
        return None
    if not all(len(label) <= _MAX_LABEL and _LABEL.fullmatch(label) for label in labels):
        return None
    return None if labels[-1].isdigit() else host
