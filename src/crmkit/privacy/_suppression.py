"""The suppression list: salted hashes of erased emails and phones, never the values (private)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.entities import Lead
from crmkit.errors import ConsentError, ValidationError
from crmkit.normalize import normalize_email, normalize_phone

if TYPE_CHECKING:
    from collections.abc import Iterable

    from crmkit.privacy._ports import PrivacyTransaction

__all__ = [
    "SUPPRESSION_NAMESPACE",
    "LeadScreening",
    "OnSuppressed",
    "SuppressionMatch",
    "screen_lead",
    "screen_leads",
    "suppress",
    "suppressed_among",
    "suppression_match",
]

#: The ``tx.state`` namespace of the suppression list; keys are ``email:<hmac>`` or ``phone:<hmac>``.
SUPPRESSION_NAMESPACE = "privacy.suppression"
_CONFIG = "privacy.config"
_SALT = "suppression_salt"
SUPPRESSED_TAG = "suppressed"


class OnSuppressed(StrEnum):
    """What :func:`screen_lead` does with a lead whose email or phone is on the suppression list."""

    BLOCK = "block"
    FLAG = "flag"


@attrs.frozen
class SuppressionMatch:
    """A hit on the suppression list.

    Attributes:
        identifier: Which identifier matched: ``"email"`` or ``"phone"``.
        since: When it was put on the list (ISO 8601).
        reason: Why (``"erasure"``, or the host's reason).
    """

    identifier: str
    since: str
    reason: str


def _salt(tx: PrivacyTransaction, *, create: bool) -> bytes | None:
    entry = tx.state.get(_CONFIG, _SALT)
    if entry is not None:
        return bytes.fromhex(entry.value)
    if not create:
        return None
    salt = secrets.token_hex(32)  # per store: the hashes mean nothing outside it
    tx.state.put(_CONFIG, _SALT, salt, expected_version=None)
    return bytes.fromhex(salt)


def _key(salt: bytes, identifier: str, value: str) -> str:
    digest = hmac.new(salt, f"{identifier}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{identifier}:{digest}"


def _normalised(emails: Iterable[str], phones: Iterable[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for index, email in enumerate(emails):
        pairs.append(("email", normalize_email(email, field=f"emails[{index}]")))
    for index, phone in enumerate(phones):
        pairs.append(("phone", normalize_phone(phone, field=f"phones[{index}]")))
    return pairs


def suppress(
    tx: PrivacyTransaction, *, emails: Iterable[str] = (), phones: Iterable[str] = (), reason: str = "erasure"
) -> int:
    """Put emails and phones on the suppression list as salted hashes; return how many were new.

    Raises:
        ValidationError: For a malformed email or phone.
    """
    pairs = _normalised(emails, phones)
    if not pairs:
        return 0
    salt = _salt(tx, create=True) or b""  # create=True always gives one
    added = 0
    for identifier, value in pairs:
        key = _key(salt, identifier, value)
        if tx.state.get(SUPPRESSION_NAMESPACE, key) is None:
            since = tx.now().isoformat()
            tx.state.put(
                SUPPRESSION_NAMESPACE, key, {"since": since, "reason": reason}, expected_version=None
            )
            added += 1
    return added


def suppression_match(
    tx: PrivacyTransaction, *, email: str | None = None, phone: str | None = None
) -> SuppressionMatch | None:
    """Whether an email or phone is on the suppression list (the email is checked first).

    Raises:
        ValidationError: For a malformed email or phone.
    """
    pairs = _normalised([email] if email else [], [phone] if phone else [])
    salt = _salt(tx, create=False) if pairs else None
    if salt is None:
        return None
    for identifier, value in pairs:
        entry = tx.state.get(SUPPRESSION_NAMESPACE, _key(salt, identifier, value))
        if entry is not None:
            return SuppressionMatch(identifier, str(entry.value["since"]), str(entry.value["reason"]))
    return None


def suppressed_among(tx: PrivacyTransaction, people: Iterable[Any]) -> frozenset[str]:
    """The ids of the records (contacts, leads) whose email or phone is on the suppression list.

    For an audience: ``build_audience(..., suppressed=suppressed_among(tx, contacts))``.
    """
    salt = _salt(tx, create=False)
    if salt is None:
        return frozenset()
    found = set()
    for record in people:
        for identifier in ("email", "phone"):
            value = getattr(record, identifier, None)
            if value and tx.state.get(SUPPRESSION_NAMESPACE, _key(salt, identifier, value)) is not None:
                found.add(record.id)
                break
    return frozenset(found)


def screen_lead(
    tx: PrivacyTransaction, lead: Lead, *, on_match: OnSuppressed | str = OnSuppressed.BLOCK
) -> Lead:
    """Check a captured lead against the suppression list before storing it.

    Call it between :func:`crmkit.leads.capture_lead` and ``tx[Lead].add``.

    Args:
        tx: The open transaction the lead will be stored in.
        lead: The captured lead.
        on_match: ``"block"`` refuses the lead; ``"flag"`` returns it tagged ``"suppressed"``
            (for review; outbound code must still refuse it).

    Returns:
        The lead, unchanged when not suppressed.

    Raises:
        ConsentError: When blocked; the message names the identifier, never its value.
        ValidationError: For an unknown ``on_match``.
    """
    try:
        policy = OnSuppressed(on_match)
    except ValueError:
        raise ValidationError.single("on_match", f"expected 'block' or 'flag', got {on_match!r}") from None
    match = suppression_match(tx, email=lead.email, phone=lead.phone)
    if match is None:
        return lead
    if policy is OnSuppressed.BLOCK:
        msg = (
            f"lead {lead.id}: its {match.identifier} is on the suppression list "
            f"since {match.since} ({match.reason})"
        )
        raise ConsentError(msg)
    return attrs.evolve(lead, tags=lead.tags | {SUPPRESSED_TAG})


@attrs.frozen
class LeadScreening:
    """A batch of new leads checked against the suppression list.

    Attributes:
        kept: The leads to store, in batch order (tagged ``"suppressed"`` when flagged).
        blocked: ``(index, error)`` of the leads refused, by their position in the batch.
    """

    kept: tuple[Lead, ...]
    blocked: tuple[tuple[int, ConsentError], ...]


def screen_leads(
    tx: PrivacyTransaction, leads: Iterable[Lead], *, on_match: OnSuppressed | str = OnSuppressed.BLOCK
) -> LeadScreening:
    """Check a re-import or a batch capture against the suppression list: keep the good, report the rest.

    For ``capture_batch``: ``screen_leads(tx, [c.lead for c in report.captured])``.

    Raises:
        ValidationError: For an unknown ``on_match``.
    """
    kept: list[Lead] = []
    blocked: list[tuple[int, ConsentError]] = []
    for index, lead in enumerate(leads):
        try:
            kept.append(screen_lead(tx, lead, on_match=on_match))
        except ConsentError as exc:
            blocked.append((index, exc))
    return LeadScreening(tuple(kept), tuple(blocked))
