"""Consent: record it, withdraw it, and decide whether a person may be contacted (private)."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias

import attrs

from crmkit import clock as _clock
from crmkit.conditions import parse_duration
from crmkit.entities import Channel, Consent, ConsentStatus, Entity, EntityRef, LawfulBasis
from crmkit.errors import ConsentError, RuleError, ValidationError

__all__ = [
    "ConsentChange",
    "ConsentDecision",
    "ConsentLedger",
    "ConsentReason",
    "Person",
    "Purpose",
    "Screening",
    "grant_consent",
    "withdraw_consent",
]

#: A person: a record id, a reference, a record, or several of them (a contact and the leads it came from).
Person: TypeAlias = str | EntityRef | Entity | Iterable[str | EntityRef | Entity]


class Purpose(StrEnum):
    """The usual processing purposes; any short label works as a purpose too."""

    MARKETING = "marketing"
    PROFILING = "profiling"
    SERVICE = "service"


class ConsentReason(StrEnum):
    """Why a contact is allowed or refused."""

    GRANTED = "granted"
    NO_CONSENT = "no_consent"
    DENIED = "consent_denied"
    WITHDRAWN = "consent_withdrawn"
    EXPIRED = "consent_expired"
    DO_NOT_CONTACT = "do_not_contact"
    ERASED = "erased"


@attrs.frozen
class ConsentDecision:
    """Whether one person may be contacted on a channel for a purpose at a time, and why.

    It is true exactly when contact is allowed, so ``if ledger.allows(...):`` reads naturally.

    Attributes:
        allowed: Whether contact is allowed.
        reason: Why: :attr:`ConsentReason.GRANTED` when allowed, otherwise what stops it.
        channel: The channel asked about.
        purpose: The purpose asked about.
        at: The moment asked about.
        consent: The consent record that decided, if one did.
    """

    allowed: bool
    reason: ConsentReason
    channel: Channel
    purpose: str
    at: datetime
    consent: Consent | None = None

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def explanation(self) -> str:
        """One sentence for a trace or a log."""
        what = f"{self.channel} for {self.purpose!r} at {self.at.isoformat()}"
        basis = ""
        if self.consent is not None:
            c = self.consent
            basis = f" (consent {c.id} captured {c.captured_at.isoformat()}, basis {c.lawful_basis})"
        texts = {
            ConsentReason.GRANTED: f"allowed: {what}{basis}",
            ConsentReason.NO_CONSENT: f"refused: no consent covers {what}",
            ConsentReason.DENIED: f"refused: consent was denied for {what}{basis}",
            ConsentReason.WITHDRAWN: f"refused: consent was withdrawn before {what}{basis}",
            ConsentReason.EXPIRED: f"refused: consent had expired by {what}{basis}",
            ConsentReason.DO_NOT_CONTACT: f"refused: the person asked never to be contacted ({what})",
            ConsentReason.ERASED: f"refused: the person was erased ({what})",
        }
        return texts[self.reason]


@attrs.frozen
class ConsentChange:
    """One entry of a person's consent history.

    Attributes:
        at: When it happened.
        status: ``"granted"``, ``"denied"``, ``"withdrawn"`` or ``"expired"``.
        purpose: The purpose.
        channel: The channel, ``None`` for every channel.
        consent: The consent record it comes from.
    """

    at: datetime
    status: str
    purpose: str
    channel: Channel | None
    consent: Consent


@attrs.frozen
class Screening:
    """The people an outbound action may reach, and why each of the others is skipped.

    Attributes:
        allowed: The ids that may be contacted, in the order given.
        skipped: Id -> the decision that stops it.
    """

    allowed: tuple[str, ...]
    skipped: Mapping[str, ConsentDecision]


def _ids(person: Person) -> Collection[str]:
    if isinstance(person, str):
        return (person,)
    if isinstance(person, EntityRef | Entity):
        return (person.id,)
    given: object = person
    if not isinstance(given, Iterable):
        msg = f"expected a record id, an EntityRef, a record or several of them, got {type(person).__name__}"
        raise ValidationError.single("person", msg)
    ids: set[str] = set()
    for item in person:
        ids.update(_ids(item))
    return ids


_CHANNELS: dict[str, Channel] = {member.value: member for member in Channel}


def _channel(channel: Channel | str) -> Channel:
    try:
        return _CHANNELS[channel]
    except (KeyError, TypeError):
        known = ", ".join(member.value for member in Channel)
        raise ValidationError.single("channel", f"{channel!r} is not a channel; one of: {known}") from None


def _aware(at: datetime | None, name: str = "at") -> datetime:
    if at is None:
        return _clock.now()
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ValidationError.single(name, "expected a timezone-aware datetime")
    return at


def _purpose(purpose: str) -> str:
    if purpose.__class__ is str and purpose and not purpose[0].isspace() and not purpose[-1].isspace():
        return purpose  # the common case: a clean label
    if not isinstance(purpose, str) or not purpose.strip():
        raise ValidationError.single("purpose", f"expected a purpose such as 'marketing', got {purpose!r}")
    return str(purpose).strip()


class ConsentLedger:
    """The consent records of many people, indexed for fast checks: the one place outbound code asks.

    The consents that cover the purpose and the channel (or every channel) and were captured by the
    moment asked about count; the most recently captured one decides, and on the same instant a refusal
    beats a grant. It allows contact when granted, not withdrawn by then and not expired by then. People
    marked do-not-contact or erased are refused whatever their consents say. These are the rules
    :func:`crmkit.segmentation.consent_problem` applies too.

    Args:
        consents: Consent records (of any number of people).
        do_not_contact: Ids of people who asked never to be contacted.
        erased: Ids of erased people.
    """

    __slots__ = ("_by_subject", "_do_not_contact", "_erased", "_index")

    def __init__(
        self,
        consents: Iterable[Consent] = (),
        *,
        do_not_contact: Collection[str] = (),
        erased: Collection[str] = (),
    ) -> None:
        by_subject: dict[str, list[Consent]] = defaultdict(list)
        for index, consent in enumerate(consents):
            given: object = consent
            if not isinstance(given, Consent):
                msg = f"expected a Consent, got {type(given).__name__}"
                path = f"consents[{index}]"
                raise ValidationError.single(path, msg)
            by_subject[consent.subject.id].append(consent)
        by_key: dict[tuple[str, str], tuple[list[datetime], list[Consent]]] = {}
        for subject, records in by_subject.items():
            records.sort(key=lambda c: c.captured_at)
            for consent in records:
                times, same = by_key.setdefault((subject, consent.purpose), ([], []))
                times.append(consent.captured_at)
                same.append(consent)
        self._by_subject = dict(by_subject)
        # Per person and purpose, the records in capture order and their times, for a binary search.
        self._index = by_key
        self._do_not_contact = frozenset(do_not_contact)
        self._erased = frozenset(erased)

    def consents_of(self, person: Person) -> tuple[Consent, ...]:
        """Every consent record of the person, oldest capture first."""
        found = [c for id_ in _ids(person) for c in self._by_subject.get(id_, ())]
        return tuple(sorted(found, key=lambda c: (c.captured_at, c.id)))

    def allows(
        self, person: Person, channel: Channel | str, purpose: str, at: datetime | None = None
    ) -> ConsentDecision:
        """Decide whether ``person`` may be contacted on ``channel`` for ``purpose`` at ``at``.

        Args:
            person: A record id, reference or record, or several (a contact and its leads).
            channel: The channel (``"email"``, ``"sms"``, ``"phone"``, ``"post"``, ...).
            purpose: The purpose (``"marketing"``, ``"profiling"``, ``"service"``, or the host's own).
            at: The moment; the current clock by default.

        Raises:
            ValidationError: For an unknown channel, an empty purpose or a naive time.
        """
        ids = _ids(person)
        return self._decide(ids, _channel(channel), _purpose(purpose), _aware(at))

    def _decide(self, ids: Collection[str], channel: Channel, purpose: str, at: datetime) -> ConsentDecision:
        if self._erased and any(id_ in self._erased for id_ in ids):
            return ConsentDecision(
                allowed=False, reason=ConsentReason.ERASED, channel=channel, purpose=purpose, at=at
            )
        if self._do_not_contact and any(id_ in self._do_not_contact for id_ in ids):
            return ConsentDecision(
                allowed=False, reason=ConsentReason.DO_NOT_CONTACT, channel=channel, purpose=purpose, at=at
            )
        latest: Consent | None = None
        for id_ in ids:
            found = self._latest(id_, channel, purpose, at)
            if found is not None and (
                latest is None
                or found.captured_at > latest.captured_at
                or (found.captured_at == latest.captured_at and found.status is not ConsentStatus.GRANTED)
            ):
                latest = found
        reason = _reason(latest, at)
        return ConsentDecision(reason is ConsentReason.GRANTED, reason, channel, purpose, at, latest)

    def _latest(self, subject: str, channel: Channel, purpose: str, at: datetime) -> Consent | None:
        """The deciding record of one subject: the last captured by ``at`` (a refusal wins a tie)."""
        entry = self._index.get((subject, purpose))
        if entry is None:
            return None
        times, records = entry
        position = bisect_right(times, at)
        found: Consent | None = None
        while position:
            position -= 1
            consent = records[position]
            if found is not None and consent.captured_at != found.captured_at:
                break
            if consent.channel is not None and consent.channel is not channel:
                continue
            # On one instant: a refusal wins (the last given), else the first grant given.
            found = consent
            if consent.status is not ConsentStatus.GRANTED:
                break
        return found

    def require(
        self, person: Person, channel: Channel | str, purpose: str, at: datetime | None = None
    ) -> ConsentDecision:
        """Like :meth:`allows`, but refuse with an error: for sending one message now.

        Raises:
            ConsentError: If contact is not allowed; the message says why.
        """
        decision = self.allows(person, channel, purpose, at)
        if not decision.allowed:
            raise ConsentError(decision.explanation)
        return decision

    def screen(
        self,
        people: Iterable[Person],
        channel: Channel | str,
        purpose: str,
        at: datetime | None = None,
    ) -> Screening:
        """Split the recipients of an outbound action into those allowed and those skipped (with why).

        Each element of ``people`` is one person; an id is what :attr:`Screening.allowed` lists
        (for several records per person, the first id in sorted order).
        """
        chan, purp, when = _channel(channel), _purpose(purpose), _aware(at)
        allowed: list[str] = []
        skipped: dict[str, ConsentDecision] = {}
        for person in people:
            ids = _ids(person)
            if not ids:
                continue
            key = min(ids) if not isinstance(person, str) else person
            decision = self._decide(ids, chan, purp, when)
            if decision.allowed:
                allowed.append(key)
            else:
                skipped[key] = decision
        return Screening(tuple(allowed), skipped)

    def state_at(
        self, person: Person, at: datetime | None = None
    ) -> dict[tuple[str, Channel], ConsentDecision]:
        """The person's consent state at ``at``: a decision per purpose and channel they have a record for.

        A record covering every channel is expanded to every :class:`~crmkit.entities.Channel`.
        """
        ids, when = _ids(person), _aware(at)
        pairs: set[tuple[str, Channel]] = set()
        for consent in self.consents_of(ids):
            for chan in (consent.channel,) if consent.channel is not None else tuple(Channel):
                pairs.add((consent.purpose, chan))
        return {pair: self._decide(ids, pair[1], pair[0], when) for pair in sorted(pairs)}

    def history(
        self, person: Person, *, purpose: str | None = None, channel: Channel | str | None = None
    ) -> tuple[ConsentChange, ...]:
        """Every grant, refusal, withdrawal and expiry of the person's consents, oldest first.

        Args:
            person: The person.
            purpose: Only this purpose.
            channel: Only records covering this channel (records for every channel included).
        """
        chan = None if channel is None else _channel(channel)
        changes: list[ConsentChange] = []
        for c in self.consents_of(person):
            if (purpose is not None and c.purpose != purpose) or (
                chan is not None and c.channel is not None and c.channel != chan
            ):
                continue
            first = "denied" if c.status is ConsentStatus.DENIED else "granted"
            changes.append(ConsentChange(c.captured_at, first, c.purpose, c.channel, c))
            if c.withdrawn_at is not None:
                changes.append(ConsentChange(c.withdrawn_at, "withdrawn", c.purpose, c.channel, c))
            if c.expires_at is not None and c.status is not ConsentStatus.DENIED:
                changes.append(ConsentChange(c.expires_at, "expired", c.purpose, c.channel, c))
        order = {"granted": 0, "denied": 0, "expired": 1, "withdrawn": 1}
        return tuple(sorted(changes, key=lambda ch: (ch.at, order[ch.status], ch.consent.id)))


def _reason(latest: Consent | None, at: datetime) -> ConsentReason:
    if latest is None:
        return ConsentReason.NO_CONSENT
    if latest.status is ConsentStatus.DENIED:
        return ConsentReason.DENIED
    if latest.withdrawn_at is not None and latest.withdrawn_at <= at:
        return ConsentReason.WITHDRAWN
    if latest.expires_at is not None and latest.expires_at <= at:
        return ConsentReason.EXPIRED
    return ConsentReason.GRANTED


def grant_consent(
    subject: EntityRef | Entity,
    *,
    purpose: str,
    channel: Channel | str | None,
    wording: str | None,
    source: str,
    lawful_basis: LawfulBasis | str = LawfulBasis.CONSENT,
    denied: bool = False,
    at: datetime | None = None,
    valid_for: str | None = None,
) -> Consent:
    """Record a person's consent (or refusal) with everything needed to demonstrate it later.

    Args:
        subject: The person's record (a contact or a lead) or a reference to it.
        purpose: What for (``"marketing"``, ``"profiling"``, ``"service"``, ...).
        channel: The channel it covers; ``None`` for every channel.
        wording: The text the person agreed to, as shown; required for a consent given.
        source: Where it was captured (``"web_form:newsletter"``, ``"call"``, ``"import"``).
        lawful_basis: The GDPR Art. 6 basis relied on.
        denied: Record a refusal instead of a grant.
        at: When it was captured; the current clock by default.
        valid_for: An ISO 8601 duration (``"P24M"``) after which it expires.

    Returns:
        A new :class:`~crmkit.entities.Consent` to store (``tx[Consent].add``).

    Raises:
        ConsentError: A consent given on the consent basis without its wording.
        ValidationError: A bad channel, purpose, source, time or duration.
    """
    when = _aware(at)
    basis = LawfulBasis(lawful_basis)
    if basis is LawfulBasis.CONSENT and not denied and not (wording or "").strip():
        msg = f"consent for {purpose!r} needs the wording the person agreed to (consent must be demonstrable)"
        raise ConsentError(msg)
    expires_at = None
    if valid_for is not None:
        try:
            expires_at = when + parse_duration(valid_for)
        except (RuleError, OverflowError) as exc:
            raise ValidationError.single(
                "valid_for", f"expected an ISO 8601 duration, got {valid_for!r}"
            ) from exc
    ref = subject if isinstance(subject, EntityRef) else EntityRef.to(subject)
    return Consent(
        subject=ref,
        purpose=_purpose(purpose),
        channel=None if channel is None else _channel(channel),
        status=ConsentStatus.DENIED if denied else ConsentStatus.GRANTED,
        lawful_basis=basis,
        wording=wording,
        source=source,
        captured_at=when,
        expires_at=expires_at,
        created_at=when,
    )


def withdraw_consent(consent: Consent, *, at: datetime | None = None) -> Consent:
    """Withdraw a granted consent from ``at`` on; the record keeps when it was given, so history stays.

    Returns:
        The changed record, to store with ``tx[Consent].update``.

    Raises:
        ConsentError: If the consent is not granted (denied, or withdrawn already).
        ValidationError: If ``at`` is naive or before the capture.
    """
    if consent.status is not ConsentStatus.GRANTED:
        msg = f"consent {consent.id} is {consent.status}, only a granted consent can be withdrawn"
        raise ConsentError(msg)
    when = max(_aware(at), consent.captured_at) if at is None else _aware(at)
    return attrs.evolve(
        consent,
        status=ConsentStatus.WITHDRAWN,
        withdrawn_at=when,
        updated_at=max(when, consent.updated_at),
    )
