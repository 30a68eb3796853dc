"""Capture: turn a form fill, an email, a call or a list row into a clean lead with its consents (private)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import attrs

from crmkit import clock as _clock
from crmkit.entities import Channel, Consent, ConsentStatus, EntityRef, LawfulBasis, Lead
from crmkit.errors import ConsentError, CrmError, Problem, ValidationError
from crmkit.events import DomainEvent, EntityCreated
from crmkit.normalize import normalize_domain, normalize_email, normalize_name, normalize_phone

if TYPE_CHECKING:
    from crmkit.clock import Clock

__all__ = [
    "FREE_MAIL_DOMAINS",
    "CaptureReport",
    "CapturedLead",
    "ConsentCapture",
    "RejectedCapture",
    "Utm",
    "capture_batch",
    "capture_lead",
]

#: Mailbox providers whose domain says nothing about the person's company; never taken as a company domain.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "hotmail.com", "hotmail.co.uk", "outlook.com",
    "live.com", "msn.com", "icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "web.de", "mail.com",
    "proton.me", "protonmail.com", "yandex.ru", "qq.com", "163.com", "orange.fr", "free.fr", "laposte.net",
})  # fmt: skip

_NAME_FIELDS = ("first_name", "last_name", "company")
_PLAIN_FIELDS = ("title", "country", "industry", "employees", "custom_fields", "tags", "id")
_ACCEPTED = frozenset({*_NAME_FIELDS, *_PLAIN_FIELDS, "email", "phone", "domain", "website"})


@attrs.frozen(kw_only=True)
class Utm:
    """The UTM tags of the visit that produced a lead.

    Attributes:
        source: ``utm_source``, such as ``"newsletter"`` or ``"google"``.
        medium: ``utm_medium``, such as ``"email"`` or ``"cpc"``.
        campaign: ``utm_campaign``, the campaign's tag.
    """

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Utm:
        """Read the tags from a landing-page URL (the first value of each; blank values are absent).

        >>> Utm.from_url("https://example.com/?utm_source=news&utm_medium=email&utm_campaign=q4")
        Utm(source='news', medium='email', campaign='q4')
        """
        query = parse_qs(urlsplit(url).query)

        def first(name: str) -> str | None:
            values = [value.strip() for value in query.get(name, ()) if value.strip()]
            return values[0] if values else None

        return cls(source=first("utm_source"), medium=first("utm_medium"), campaign=first("utm_campaign"))


@attrs.frozen(kw_only=True)
class ConsentCapture:
    """A consent (or refusal) given together with the lead, as the form or list recorded it.

    Attributes:
        purpose: What for, as a short name such as ``"newsletter"``.
        lawful_basis: The GDPR Art. 6 basis relied on. ``None`` means consent, except for a purchased
            list, where it must be stated.
        wording: The text the person agreed to, as shown; required when the basis is consent and it
            was granted (consent must be demonstrable).
        status: Granted (the default) or denied.
        channel: The channel it covers; ``None`` means every channel.
    """

    purpose: str
    lawful_basis: LawfulBasis | None = attrs.field(
        default=None, converter=attrs.converters.optional(LawfulBasis)
    )
    wording: str | None = None
    status: ConsentStatus = attrs.field(default=ConsentStatus.GRANTED, converter=ConsentStatus)
    channel: Channel | None = attrs.field(default=None, converter=attrs.converters.optional(Channel))


@attrs.frozen
class CapturedLead:
    """What a capture produced: the new lead, its consents and the events to record.

    Attributes:
        lead: The normalised lead (version 0, not stored yet).
        consents: One :class:`~crmkit.entities.Consent` per consent captured, whose subject is the lead.
        events: ``EntityCreated`` for the lead and for each consent.
    """

    lead: Lead
    consents: tuple[Consent, ...]
    events: tuple[DomainEvent, ...]


@attrs.frozen
class RejectedCapture:
    """A row of a batch that was not captured, and why.

    Attributes:
        index: The row's position in the batch (0-based).
        error: A ``ValidationError`` naming the fields, or a ``ConsentError``.
    """

    index: int
    error: CrmError


@attrs.frozen
class CaptureReport:
    """What a batch capture did: the good rows are kept, the bad ones reported.

    Attributes:
        captured: The leads captured, in batch order.
        rejected: The rows refused, each with its index and error.
    """

    captured: tuple[CapturedLead, ...]
    rejected: tuple[RejectedCapture, ...]


def _try(problems: list[Problem], read: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return read(*args, **kwargs)
    except ValidationError as exc:
        problems.extend(exc.problems)
        return None


def _normalised_fields(raw: Mapping[str, Any], default_region: str | None) -> dict[str, Any]:  # noqa: C901 - one step per field
    """Normalise the contact points of one input row; collect every problem before raising."""
    problems: list[Problem] = [
        Problem(str(key), f"unknown lead field; accepted: {', '.join(sorted(_ACCEPTED))}")
        for key in raw
        if key not in _ACCEPTED
    ]
    fields: dict[str, Any] = {}
    for name in _NAME_FIELDS:
        if raw.get(name) not in {None, ""}:
            fields[name] = _try(problems, normalize_name, raw[name], field=name)
    for name in _PLAIN_FIELDS:
        if raw.get(name) is not None:
            fields[name] = raw[name]
    if raw.get("email") not in {None, ""}:
        fields["email"] = _try(problems, normalize_email, raw["email"])
    if raw.get("phone") not in {None, ""}:
        country = raw.get("country")
        region = default_region or (country if isinstance(country, str) else None)
        fields["phone"] = _try(problems, normalize_phone, raw["phone"], region)
    for name in ("domain", "website"):
        if raw.get(name) not in {None, ""} and "domain" not in fields:
            fields["domain"] = _try(problems, normalize_domain, raw[name], field=name)
    email = fields.get("email")
    if "domain" not in fields and email:
        mail_domain = email.rsplit("@", 1)[1]
        if mail_domain not in FREE_MAIL_DOMAINS:
            fields["domain"] = mail_domain
    if not (raw.get("email") or raw.get("phone")):
        problems.append(Problem("email", "no way to contact this lead: give an email or a phone"))
    if problems:
        raise ValidationError(problems)
    return fields


def _consents(
    captures: Iterable[ConsentCapture], channel: Channel, lead: Lead, at: Any
) -> tuple[Consent, ...]:
    captures = tuple(captures)
    if channel is Channel.PURCHASED_LIST and not any(c.lawful_basis is not None for c in captures):
        msg = "a purchased list needs a stated lawful basis for processing (GDPR Art. 6); none was given"
        raise ConsentError(msg)
    consents = []
    for index, capture in enumerate(captures):
        given: object = capture  # callers may pass anything
        if not isinstance(given, ConsentCapture):
            msg = f"consents[{index}]: expected a ConsentCapture, got {type(capture).__name__}"
            raise ConsentError(msg)
        basis = capture.lawful_basis or LawfulBasis.CONSENT
        granted = capture.status is ConsentStatus.GRANTED
        if basis is LawfulBasis.CONSENT and granted and not (capture.wording or "").strip():
            msg = f"consents[{index}]: consent for {capture.purpose!r} needs the wording the person agreed to"
            raise ConsentError(msg)
        if capture.status is ConsentStatus.WITHDRAWN:
            msg = f"consents[{index}]: a consent cannot be captured as withdrawn; capture it as denied"
            raise ConsentError(msg)
        try:
            consent = Consent(
                subject=EntityRef.to(lead),
                purpose=capture.purpose,
                channel=capture.channel,
                status=capture.status,
                lawful_basis=basis,
                wording=capture.wording,
                source=str(channel),
                captured_at=at,
                created_at=at,
            )
        except ValidationError as exc:
            raise exc.under(f"consents[{index}]") from None  # noqa: EM102 - a path, not a message
        consents.append(consent)
    return tuple(consents)


def capture_lead(
    data: Mapping[str, Any],
    *,
    channel: Channel | str,
    utm: Utm | None = None,
    consents: Iterable[ConsentCapture] = (),
    default_region: str | None = None,
    campaign_id: str | None = None,
    clock: Clock | None = None,
) -> CapturedLead:
    """Capture one lead from a channel, normalised, with its UTM tags and consents, in one step.

    Emails are lower-cased (and IDNA-encoded), phones written in E.164 (read in ``default_region``, else
    in the row's ``country``), names have their whitespace collapsed, and the company domain is taken
    from ``domain`` or ``website``, or else from a business email address (never from a free mailbox
    such as gmail.com, see :data:`FREE_MAIL_DOMAINS`).

    Args:
        data: The fields as entered: ``first_name``, ``last_name``, ``email``, ``phone``, ``company``,
            ``domain`` or ``website``, ``title``, ``country``, ``industry``, ``employees``, ``tags``,
            ``custom_fields``, ``id``.
        channel: Where the lead came from (a :class:`~crmkit.entities.Channel` or its value).
        utm: The UTM tags of the visit.
        consents: The consents given with the lead.
        default_region: The region a phone number without ``+`` belongs to.
        campaign_id: The campaign that produced the lead.
        clock: Where "now" comes from; the current clock by default.

    Returns:
        The lead, its consents and the ``EntityCreated`` events, nothing stored.

    Raises:
        ValidationError: An unknown field, a malformed email or phone, or no way to contact the lead
            (neither email nor phone); every problem is named at once.
        ConsentError: A purchased list without a stated lawful basis, or a consent without its wording.
    """
    try:
        source = Channel(channel)
    except ValueError:
        known = ", ".join(member.value for member in Channel)
        raise ValidationError.single("channel", f"{channel!r} is not a channel; one of: {known}") from None
    if not isinstance(data, Mapping):
        raise ValidationError.single("", f"expected a mapping of lead fields, got {type(data).__name__}")
    fields = _normalised_fields(data, default_region)
    at = (clock or _clock.get_clock()).now()
    utm = utm or Utm()
    lead = Lead(
        **fields,
        source=source,
        utm_source=utm.source,
        utm_medium=utm.medium,
        utm_campaign=utm.campaign,
        campaign_id=campaign_id,
        created_at=at,
    )
    captured = _consents(consents, source, lead, at)
    events: list[DomainEvent] = [EntityCreated(entity=EntityRef.to(lead), at=at)]
    events += [EntityCreated(entity=EntityRef.to(consent), at=at) for consent in captured]
    return CapturedLead(lead, captured, tuple(events))


def capture_batch(
    rows: Iterable[Mapping[str, Any]],
    *,
    channel: Channel | str,
    utm: Utm | None = None,
    consents: Iterable[ConsentCapture] = (),
    default_region: str | None = None,
    campaign_id: str | None = None,
    clock: Clock | None = None,
) -> CaptureReport:
    """Capture many rows (an import, a purchased list): keep the good ones, report the bad ones.

    Every row gets the same channel, UTM tags and consents; see :func:`capture_lead`.
    """
    consents = tuple(consents)
    captured: list[CapturedLead] = []
    rejected: list[RejectedCapture] = []
    for index, row in enumerate(rows):
        try:
            captured.append(
                capture_lead(
                    row,
                    channel=channel,
                    utm=utm,
                    consents=consents,
                    default_region=default_region,
                    campaign_id=campaign_id,
                    clock=clock,
                )
            )
        except (ValidationError, ConsentError) as exc:
            rejected.append(RejectedCapture(index, exc))
    return CaptureReport(tuple(captured), tuple(rejected))
