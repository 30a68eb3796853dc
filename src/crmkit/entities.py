"""The CRM records: contacts, accounts, leads, deals, tickets and the rest.

Every record is an immutable attrs class deriving from :class:`Entity`. It is
checked and normalised when it is built (emails lower-cased, phones in E.164,
a ``str`` turned into its enum member) and every problem is reported at once
in one :class:`~crmkit.errors.ValidationError` whose paths name the fields::

    >>> Lead(email="ADA@Example.com ").email
    'ada@example.com'
    >>> Contact(email="ada.example.com", phone="12", tags=[""])
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: 3 problems:
      - tags: '': must not be empty
      - email: 'ada.example.com' is not an email address: it needs exactly one '@'
      - phone: '12' is not a phone number that can be written in E.164

Rules that involve several fields (a stage history ending in the current
stage, order lines in the order's currency) are checked once every field is
sound on its own.

Records change through :func:`attrs.evolve`, which builds a new value and
checks it again. Records compare by value; they hash by ``(type, id,
version)``, which agrees with equality because equal records share all three.

Every time is timezone-aware; a naive ``datetime`` is a problem. Defaults for
``created_at`` and the like read the current clock (:func:`crmkit.clock.now`).

Records refer to each other by id (``account_id``, ``owner_id``) or, where the
kind varies, by an :class:`EntityRef`. :data:`ENTITY_TYPES` maps each kind
(``"lead"``) to its class.

Fields holding personal data (names, emails, phones, addresses, free text a
person wrote) carry the metadata key ``"crmkit.personal"``; :mod:`crmkit.privacy`
exports, erases and redacts exactly those (and the custom fields a host declares).
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from os import register_at_fork
from os import urandom as _urandom
from types import MappingProxyType
from typing import Any, ClassVar

import attrs
from dateutil.rrule import rrule, rrulestr

from crmkit import _validation as _checks
from crmkit._validation import Validated, coerce_with, cross_rule, fail, rules
from crmkit.clock import now
from crmkit.errors import Problem, ValidationError
from crmkit.money import Money, sum_money
from crmkit.normalize import normalize_domain

__all__ = [
    "ENTITY_TYPES",
    "Account",
    "Activity",
    "ActivityKind",
    "Address",
    "BillingInterval",
    "Campaign",
    "CampaignStatus",
    "Channel",
    "Consent",
    "ConsentStatus",
    "Contact",
    "CustomValue",
    "Direction",
    "Entity",
    "EntityRef",
    "Feedback",
    "FeedbackKind",
    "LawfulBasis",
    "Lead",
    "LeadSource",
    "LineItem",
    "Opportunity",
    "Order",
    "OrderStatus",
    "Priority",
    "Product",
    "Quote",
    "QuoteStatus",
    "StageChange",
    "Task",
    "TaskStatus",
    "Team",
    "Ticket",
    "User",
    "WorkingHours",
]

CustomValue = str | int | float | bool | Decimal | datetime | date | None
"""A value a host may keep in ``custom_fields``; floats must be finite, datetimes aware."""

_CUSTOM_KEY = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_LAST_WEEKDAY = 6
_NPS_RANGE = range(11)
_CSAT_RANGE = range(1, 6)


# Closed vocabularies. A plain string naming a member is accepted wherever one is expected.


class ActivityKind(StrEnum):
    """What kind of interaction an :class:`Activity` records."""

    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    CHAT = "chat"
    SOCIAL = "social"
    VISIT = "visit"
    NOTE = "note"


class Direction(StrEnum):
    """Whether the customer reached out (inbound) or we did (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class TaskStatus(StrEnum):
    """Where a :class:`Task` stands."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    DONE = "done"
    CANCELLED = "cancelled"


class Priority(StrEnum):
    """How urgent a task or ticket is."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Channel(StrEnum):
    """How a lead, ticket or consent came in, or where a campaign runs."""

    WEB_FORM = "web_form"
    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    SOCIAL = "social"
    EVENT = "event"
    REFERRAL = "referral"
    PARTNER = "partner"
    PURCHASED_LIST = "purchased_list"
    IMPORT = "import"
    SMS = "sms"
    POST = "post"


LeadSource = Channel
"""Where a lead came from: the same vocabulary as :class:`Channel`."""


class FeedbackKind(StrEnum):
    """The survey a :class:`Feedback` answers: NPS (0-10) or CSAT (1-5)."""

    NPS = "nps"
    CSAT = "csat"


class ConsentStatus(StrEnum):
    """The state of a person's consent for one purpose."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    DENIED = "denied"


class LawfulBasis(StrEnum):
    """The six lawful bases for processing personal data (GDPR Article 6(1) a-f)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class QuoteStatus(StrEnum):
    """Where a :class:`Quote` stands."""

    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class OrderStatus(StrEnum):
    """Where an :class:`Order` stands."""

    DRAFT = "draft"
    PLACED = "placed"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class CampaignStatus(StrEnum):
    """Where a :class:`Campaign` stands."""

    PLANNED = "planned"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class BillingInterval(StrEnum):
    """How often a recurring :class:`Product` is billed."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# Field declarations shared by many classes.


def _optional(*checks: Any) -> Any:
    """Declare an optional field (default ``None``) checked by ``checks`` when set."""
    return attrs.field(default=None, metadata=rules(*checks))


def _ref() -> Any:
    """Declare an optional reference to another record by its id."""
    return attrs.field(default=None, metadata=rules(_checks.identifier))


# Field metadata marking personal data: what crmkit.privacy exports, erases and redacts.
_PERSONAL_KEY = "crmkit.personal"


def _personal(*checks: Any, optional: bool = True) -> Any:
    """Declare a field holding personal data (``None`` by default unless ``optional`` is false)."""
    metadata = {**rules(*checks), _PERSONAL_KEY: True}
    return attrs.field(default=None, metadata=metadata) if optional else attrs.field(metadata=metadata)


def _labels(values: frozenset[str]) -> frozenset[str]:
    """Tags and skills: each stripped and 1 to 64 characters."""
    if not values:
        return frozenset()
    result = set()
    problems: list[Problem] = []
    for value in values:
        try:
            result.add(_checks.short_label(value))
        except ValidationError as exc:
            problems.extend(Problem(p.path, f"{value!r}: {p.message}") for p in exc.problems)
    if problems:
        raise ValidationError(problems)
    return frozenset(result)


def _domain(value: str) -> str:
    return normalize_domain(value, field="")


def _custom_value(value: Any) -> CustomValue:
    if isinstance(value, str):
        return _checks.text(value)
    if value is None or isinstance(value, bool | int | date):
        return _checks.aware_datetime(value) if isinstance(value, datetime) else value
    if isinstance(value, float):
        if not math.isfinite(value):
            fail(f"{value!r} is not a finite number")
        return value
    if isinstance(value, Decimal):
        return _checks.decimal(value)
    kinds = "str, int, float, bool, Decimal, datetime, date or None"
    raise ValidationError.single("", f"a custom field holds {kinds}, not {type(value).__name__}")


def _custom_fields(value: Any) -> dict[str, CustomValue]:
    if value.__class__ is dict and not value:
        return {}  # a new dict all the same: the record must not share the caller's
    if not isinstance(value, Mapping):
        fail(f"expected a mapping of field names to values, got {type(value).__name__}")
    result: dict[str, CustomValue] = {}
    problems: list[Problem] = []
    for key, item in value.items():
        if not isinstance(key, str) or not _CUSTOM_KEY.fullmatch(key):
            rule = "a custom field name is 1-64 lower-case ASCII letters, digits or _"
            problems.append(Problem(str(key), rule))
            continue
        try:
            result[key] = _custom_value(item)
        except ValidationError as exc:
            problems.extend(problem.under(key) for problem in exc.problems)
    if problems:
        raise ValidationError(problems)
    return result


def _hash_by_identity(_cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """Hash records by id and version only (the type is part of every attrs hash)."""
    return [field if field.name in {"id", "version"} else field.evolve(hash=False) for field in fields]


def _entity_kind(value: str) -> str:
    if value not in ENTITY_TYPES:
        fail(f"{value!r} is not an entity kind; one of: {', '.join(sorted(ENTITY_TYPES))}")
    return value


# Value types.


@attrs.frozen
class EntityRef(Validated):
    """A reference to a record of any kind, such as the subject of a consent.

    Attributes:
        kind: The record's kind, a key of :data:`ENTITY_TYPES` such as ``"contact"``.
        id: The record's id.
    """

    kind: str = attrs.field(metadata=rules(_entity_kind))
    id: str = attrs.field(metadata=rules(_checks.identifier))

    @classmethod
    def to(cls, entity: Entity) -> EntityRef:
        """Return the reference to ``entity``."""
        return cls(entity.kind, entity.id)


@attrs.frozen(kw_only=True)
class StageChange(Validated):
    """One entry of a record's stage history, written by a lifecycle.

    Attributes:
        from_stage: The stage left; ``None`` for the first stage.
        to_stage: The stage entered.
        transition: The name of the lifecycle transition taken, if any.
        actor: The id of the user or system that made the change, if known.
        at: When the change happened.
    """

    from_stage: str | None = _optional(_checks.short_label)
    to_stage: str = attrs.field(metadata=rules(_checks.short_label))
    transition: str | None = _optional(_checks.short_label)
    actor: str | None = _ref()
    at: datetime


@attrs.frozen(kw_only=True)
class LineItem(Validated):
    """One line of an order or a quote.

    Attributes:
        product_id: The product sold, if it is in the catalogue.
        description: What the line is for, as printed.
        quantity: How many units; zero or more, fractions allowed (hours, kilos).
        unit_price: The price of one unit.
        discount: The discount as a fraction of the line, from 0 to 1 (0.1 is 10 %).
        tax_rate: The sales tax (VAT) rate as a fraction, from 0 to 1 (0.2 is 20 %); 0 by default.
    """

    product_id: str | None = _ref()
    description: str = ""
    quantity: Decimal = attrs.field(metadata=rules(_checks.non_negative))
    unit_price: Money
    discount: Decimal = attrs.field(default=Decimal(0), metadata=rules(_checks.fraction))
    tax_rate: Decimal = attrs.field(default=Decimal(0), metadata=rules(_checks.fraction))

    @property
    def total(self) -> Money:
        """Quantity x unit price less the discount, rounded to the currency's minor units.

        Each line is rounded on its own (half to even), as invoices print it, so an
        order's total equals the sum of its printed lines.
        """
        return (self.unit_price * (self.quantity * (1 - self.discount))).rounded()

    @property
    def tax(self) -> Money:
        """The tax on the line: its rounded :attr:`total` x ``tax_rate``, rounded half to even."""
        return (self.total * self.tax_rate).rounded()


@attrs.frozen(kw_only=True)
class Address(Validated):
    """A postal address.

    Attributes:
        street: Street and number, possibly several lines.
        city: City or town.
        region: State, province or county.
        postal_code: Postal or ZIP code.
        country: ISO 3166-1 alpha-2 code such as ``"FR"``, upper-cased (only its shape is checked).
    """

    street: str | None = _optional(_checks.non_empty)
    city: str | None = _optional(_checks.non_empty)
    region: str | None = _optional(_checks.non_empty)
    postal_code: str | None = _optional(_checks.non_empty)
    country: str | None = _optional(_checks.country)


@attrs.frozen
class WorkingHours(Validated):
    """One working period of a user on one weekday, in the user's own time zone.

    Attributes:
        weekday: 0 for Monday to 6 for Sunday, as :meth:`datetime.date.weekday`.
        start: When the period starts (local time).
        end: When it ends; after ``start``.
    """

    weekday: int = attrs.field(metadata=rules(_checks.non_negative))
    start: time
    end: time

    @cross_rule("weekday", "start", "end")
    def _a_day_and_a_period(self, _before: WorkingHours | None) -> Iterable[Problem]:
        problems = []
        if self.weekday > _LAST_WEEKDAY:
            problems.append(Problem("weekday", f"must be 0 (Monday) to 6 (Sunday), got {self.weekday}"))
        if self.start >= self.end:
            problems.append(Problem("end", "must be after start"))
        return problems


# Records.


# Ids drawn ahead in batches: one os.urandom call per batch instead of one per record. A forked child
# forgets the batch it inherited, so parent and child never hand out the same ids.
_ID_BATCH = 256
_ids: deque[str] = deque()
# Byte 6 of a UUID holds the version in its high 4 bits (4 = random); byte 8 the RFC 4122 variant in its
# high 2 bits (10). Each table maps a random byte to that byte with those bits set, as uuid.uuid4 does.
_UUID_VERSION = bytes((byte & 0x0F) | 0x40 for byte in range(256))
_UUID_VARIANT = bytes((byte & 0x3F) | 0x80 for byte in range(256))
register_at_fork(after_in_child=_ids.clear)


def _draw_ids() -> None:
    """Add a batch of random UUID4s (32 hex digits, as ``uuid.uuid4().hex``) to the pool."""
    raw = bytearray(_urandom(16 * _ID_BATCH))
    # Every 16th byte from 6 and from 8: the version and variant bytes of each UUID, fixed in C.
    raw[6::16] = raw[6::16].translate(_UUID_VERSION)
    raw[8::16] = raw[8::16].translate(_UUID_VARIANT)
    _ids.extend(raw.hex(" ", 16).split(" "))  # 32 hex digits per UUID, a space between them


@_checks.sound_factory  # 32 lower-case hex digits: an id, and text without NUL
def _new_id() -> str:
    """A random UUID4 as 32 hex digits, as ``uuid.uuid4().hex`` gives, without building a UUID object."""
    while True:
        try:
            return _ids.popleft()  # atomic: threads never share an id
        except IndexError:
            _draw_ids()


# Every entity class repeats field_transformer=_hash_by_identity: attrs does not inherit it.
@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Entity(Validated):
    """The fields every CRM record has.

    Attributes:
        kind: (class attribute) The record's kind, such as ``"lead"``.
        id: A unique id: a random UUID4 hex string by default; a host may give its own
            (1 to 64 characters without whitespace).
        created_at: When the record was created; defaults to the current clock.
        updated_at: When it last changed; defaults to ``created_at`` and is never before it.
        version: 0 until first stored; the store increments it on each write and refuses
            a write based on a stale version.
        tags: Free labels, each stripped and 1 to 64 characters; any iterable of
            strings is accepted.
        custom_fields: The host's own fields: names like ``lead_score_v2``
            (lower-case, digits, ``_``) mapped to a :data:`CustomValue`.
    """

    kind: ClassVar[str]

    id: str = attrs.field(factory=_new_id, metadata=rules(_checks.identifier))
    created_at: datetime = attrs.field(factory=now)
    updated_at: datetime = attrs.field()
    version: int = attrs.field(default=0, metadata=rules(_checks.non_negative))
    tags: frozenset[str] = attrs.field(factory=frozenset, metadata=rules(_labels))
    custom_fields: dict[str, CustomValue] = attrs.field(factory=dict, metadata=coerce_with(_custom_fields))

    @updated_at.default
    @_checks.copy_of("created_at")
    def _updated_at_default(self) -> datetime:
        return self.created_at

    @cross_rule("created_at", "updated_at")
    def _updated_after_created(self, _before: Entity | None) -> Iterable[Problem]:
        updated_at = self.updated_at
        if updated_at is self.created_at:  # the default, and the common case
            return ()
        return _checks.not_before(updated_at, self.created_at, "updated_at", "created_at")


def _stage_problems(
    stage: str, history: tuple[StageChange, ...], before: tuple[StageChange, ...] = ()
) -> list[Problem]:
    """The history must be in time order and end in the current stage.

    ``before`` is the history of a valid record this one replaces: when ``history`` extends it, only
    the entries added need checking, so a lifecycle step costs the same however long the history is.
    """
    if not history:
        return []
    start, known = 1, len(before)
    if known and len(history) >= known and history[:known] == before:
        start = max(known, 1)
    problems = [
        Problem(f"stage_history[{index}].at", "must not be before the previous change")
        for index in range(start, len(history))
        if history[index].at < history[index - 1].at
    ]
    if history[-1].to_stage != stage:
        last = history[-1].to_stage
        problems.append(Problem("stage", f"must equal the last stage change's to_stage {last!r}"))
    return problems


@cross_rule("stage", "stage_history")
def _stage_rule(record: Any, before: Any) -> list[Problem]:
    """The cross-field rule of every record with a stage and its history."""
    if not record.stage_history:
        return []  # a new record: nothing to check (as _stage_problems finds)
    return _stage_problems(record.stage, record.stage_history, () if before is None else before.stage_history)


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Contact(Entity):
    """A person the organisation deals with.

    Attributes:
        first_name: Given name, whitespace collapsed.
        last_name: Family name, whitespace collapsed.
        email: Email address, lower-cased.
        phone: Phone number in E.164 (``+`` and digits).
        title: Job title.
        account_id: The account (company) the person works for.
        owner_id: The user responsible for the relationship.
        address: Postal address.
        timezone: IANA time zone name such as ``"Europe/Paris"``.
        do_not_contact: The person asked not to be contacted at all.
        stage: Customer lifecycle stage (``"subscriber"``, ``"lead"``, ``"customer"``, ...).
        stage_history: The stage changes so far, oldest first.
    """

    kind: ClassVar[str] = "contact"

    first_name: str | None = _personal(_checks.name)
    last_name: str | None = _personal(_checks.name)
    email: str | None = _personal(_checks.email)
    phone: str | None = _personal(_checks.phone)
    title: str | None = _personal(_checks.non_empty)
    account_id: str | None = _ref()
    owner_id: str | None = _ref()
    address: Address | None = attrs.field(default=None, metadata={_PERSONAL_KEY: True})
    timezone: str | None = _optional(_checks.iana_timezone)
    do_not_contact: bool = False
    stage: str = attrs.field(default="subscriber", metadata=rules(_checks.short_label))
    stage_history: tuple[StageChange, ...] = ()

    @property
    def full_name(self) -> str:
        """First and last name joined by a space; ``""`` when both are missing."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    _stage_matches_history = _stage_rule


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Account(Entity):
    """A company or organisation that is, or may become, a customer.

    Attributes:
        name: The company name.
        domain: Its web domain, such as ``"example.com"`` (normalised from a URL or email).
        industry: Its industry.
        employees: Head count.
        annual_revenue: Yearly revenue.
        phone: Switchboard number in E.164.
        address: Head office address.
        owner_id: The user who owns the account.
        parent_id: The parent account in a group of companies.
    """

    kind: ClassVar[str] = "account"

    name: str = attrs.field(metadata=rules(_checks.name))
    domain: str | None = _optional(_domain)
    industry: str | None = _optional(_checks.non_empty)
    employees: int | None = _optional(_checks.non_negative)
    annual_revenue: Money | None = None
    phone: str | None = _optional(_checks.phone)
    address: Address | None = None
    owner_id: str | None = _ref()
    parent_id: str | None = _ref()

    @cross_rule("id", "parent_id")
    def _not_its_own_parent(self, _before: Account | None) -> Iterable[Problem]:
        if self.parent_id == self.id:
            return [Problem("parent_id", "an account cannot be its own parent")]
        return ()


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Lead(Entity):
    """A prospective customer not yet qualified: a form fill, a business card, a list row.

    A lead needs at least one of email, phone, last name or company.

    Attributes:
        first_name: Given name.
        last_name: Family name.
        email: Email address, lower-cased.
        phone: Phone number in E.164.
        company: Company name as given.
        domain: Company web domain.
        title: Job title.
        country: ISO 3166-1 alpha-2 country code.
        industry: Industry as given.
        employees: Company head count as given.
        source: Where the lead came from.
        utm_source: The ``utm_source`` of the visit that created it.
        utm_medium: The ``utm_medium`` of that visit.
        utm_campaign: The ``utm_campaign`` of that visit.
        score: Lead score; negative scores are allowed (points can be taken away).
        stage: Lead lifecycle stage, ``"new"`` at first.
        stage_history: The stage changes so far, oldest first.
        owner_id: The user working the lead.
        campaign_id: The campaign that produced it.
        converted_contact_id: The contact created when the lead was converted.
        converted_account_id: The account created or matched on conversion.
        converted_opportunity_id: The opportunity created on conversion.
        converted_at: When the lead was converted.
    """

    kind: ClassVar[str] = "lead"

    first_name: str | None = _personal(_checks.name)
    last_name: str | None = _personal(_checks.name)
    email: str | None = _personal(_checks.email)
    phone: str | None = _personal(_checks.phone)
    company: str | None = _optional(_checks.name)
    domain: str | None = _optional(_domain)
    title: str | None = _personal(_checks.non_empty)
    country: str | None = _optional(_checks.country)
    industry: str | None = _optional(_checks.non_empty)
    employees: int | None = _optional(_checks.non_negative)
    source: Channel | None = None
    utm_source: str | None = _optional(_checks.non_empty)
    utm_medium: str | None = _optional(_checks.non_empty)
    utm_campaign: str | None = _optional(_checks.non_empty)
    score: int = 0
    stage: str = attrs.field(default="new", metadata=rules(_checks.short_label))
    stage_history: tuple[StageChange, ...] = ()
    owner_id: str | None = _ref()
    campaign_id: str | None = _ref()
    converted_contact_id: str | None = _ref()
    converted_account_id: str | None = _ref()
    converted_opportunity_id: str | None = _ref()
    converted_at: datetime | None = None

    _stage_matches_history = _stage_rule

    @cross_rule("email", "phone", "last_name", "company")
    def _reachable(self, _before: Lead | None) -> Iterable[Problem]:
        if not (self.email or self.phone or self.last_name or self.company):
            return [Problem("email", "a lead needs an email, a phone, a last name or a company")]
        return ()


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Opportunity(Entity):
    """A deal being worked: a potential sale to an account.

    Attributes:
        name: What the deal is called.
        account_id: The buying account.
        contact_id: The main contact on the buyer's side.
        owner_id: The salesperson.
        campaign_id: The campaign credited with the deal.
        amount: Expected (or final) value.
        stage: Sales pipeline stage, ``"prospecting"`` at first.
        stage_history: The stage changes so far, oldest first.
        probability: Chance to win, 0 to 1; ``None`` uses the stage's default.
        expected_close: When the deal is expected to close.
        lost_reason: Why it was lost.
        closed_at: When it was won or lost.
    """

    kind: ClassVar[str] = "opportunity"

    name: str = attrs.field(metadata=rules(_checks.name))
    account_id: str | None = _ref()
    contact_id: str | None = _ref()
    owner_id: str | None = _ref()
    campaign_id: str | None = _ref()
    amount: Money | None = None
    stage: str = attrs.field(default="prospecting", metadata=rules(_checks.short_label))
    stage_history: tuple[StageChange, ...] = ()
    probability: Decimal | None = attrs.field(default=None, metadata=rules(_checks.fraction))
    expected_close: date | None = None
    lost_reason: str | None = _optional(_checks.non_empty)
    closed_at: datetime | None = None

    _stage_matches_history = _stage_rule


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Activity(Entity):
    """An interaction that happened: a call, an email, a meeting, a note.

    Attributes:
        activity_type: What kind of interaction it was.
        subject: A one-line summary.
        body: The content or notes.
        direction: Inbound or outbound; a note has none.
        occurred_at: When it happened; defaults to the current clock.
        duration_seconds: How long it took.
        regarding: The record it is about (a deal, a ticket, ...).
        contact_id: The person involved.
        account_id: The account involved.
        owner_id: The user who logged it.
    """

    kind: ClassVar[str] = "activity"

    activity_type: ActivityKind
    subject: str | None = _personal(_checks.non_empty)
    body: str | None = _personal()
    direction: Direction | None = None
    occurred_at: datetime = attrs.field(factory=now)
    duration_seconds: int | None = _optional(_checks.non_negative)
    regarding: EntityRef | None = None
    contact_id: str | None = _ref()
    account_id: str | None = _ref()
    owner_id: str | None = _ref()

    @cross_rule("activity_type", "direction")
    def _a_note_has_no_direction(self, _before: Activity | None) -> Iterable[Problem]:
        if self.activity_type is ActivityKind.NOTE and self.direction is not None:
            return [Problem("direction", "a note has no direction")]
        return ()


def _check_rrule_ranges(text: str) -> None:
    """Refuse the rule parts dateutil accepts but that would never (or endlessly) repeat."""
    for part in text.removeprefix("RRULE:").split(";"):
        key, _, value = part.partition("=")
        if key.upper() == "INTERVAL" and value.isdigit() and int(value) < 1:
            msg = "INTERVAL must be 1 or more"
            raise ValueError(msg)
        if key.upper() == "BYMONTH" and any(
            not item.strip().isdigit() or not 1 <= int(item) <= 12  # noqa: PLR2004 - months of the year
            for item in value.split(",")
        ):
            msg = "BYMONTH values must be 1 to 12"
            raise ValueError(msg)


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Task(Entity):
    """Something a user has to do, possibly recurring.

    Attributes:
        title: What to do.
        description: Details.
        status: Where the task stands; ``done`` exactly when ``completed_at`` is set.
        priority: How urgent it is.
        due_at: When it is due; the first occurrence of a recurring task.
        completed_at: When it was done.
        owner_id: The user who has to do it.
        regarding: The record it is about.
        recurrence: An RFC 5545 RRULE such as ``"FREQ=WEEKLY;BYDAY=MO"``; needs ``due_at``,
            which is its start. An ``UNTIL`` must be given in UTC (``...Z``).
    """

    kind: ClassVar[str] = "task"

    title: str = _personal(_checks.non_empty, optional=False)
    description: str | None = _personal()
    status: TaskStatus = TaskStatus.OPEN
    priority: Priority = Priority.NORMAL
    due_at: datetime | None = None
    completed_at: datetime | None = None
    owner_id: str | None = _ref()
    regarding: EntityRef | None = None
    recurrence: str | None = _optional(_checks.non_empty)

    @cross_rule("status", "completed_at")
    def _completed_when_done(self, _before: Task | None) -> Iterable[Problem]:
        if (self.status is TaskStatus.DONE) != (self.completed_at is not None):
            return [Problem("completed_at", "must be set exactly when the status is done")]
        return ()

    @cross_rule("recurrence", "due_at")
    def _a_valid_recurrence(self, _before: Task | None) -> Iterable[Problem]:
        problems = []
        if self.recurrence is not None:
            if self.due_at is None:
                problems.append(Problem("recurrence", "a recurring task needs due_at as its start"))
            else:
                try:
                    self._rule()
                except (ValueError, TypeError, KeyError, IndexError) as exc:
                    problems.append(Problem("recurrence", f"not a valid RFC 5545 RRULE: {exc}"))
        return problems

    def _rule(self) -> rrule:
        text = self.recurrence or ""
        if "\n" in text or "DTSTART" in text.upper():
            # The start is due_at; a rule carrying its own start would contradict it.
            msg = "give a single RRULE without DTSTART"
            raise ValueError(msg)
        _check_rrule_ranges(text)
        rule = rrulestr(text, dtstart=self.due_at)
        if not isinstance(rule, rrule):
            msg = "expected a single RRULE"
            raise TypeError(msg)
        return rule

    def occurrences(self, after: datetime, limit: int) -> tuple[datetime, ...]:
        """Return up to ``limit`` due times strictly after ``after``, earliest first.

        A task without recurrence has at most one: its ``due_at``.

        Args:
            after: An aware datetime.
            limit: The most occurrences to return (0 or more).

        Raises:
            ValidationError: If ``after`` is naive or ``limit`` is negative.
        """
        problems = []
        if after.utcoffset() is None:
            problems.append(Problem("after", "must be timezone-aware"))
        if limit < 0:
            problems.append(Problem("limit", "must not be negative"))
        if problems:
            raise ValidationError(problems)
        if self.due_at is None or limit == 0:
            return ()
        if self.recurrence is None:
            return (self.due_at,) if self.due_at > after else ()
        return tuple(self._rule().xafter(after, count=limit))


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Ticket(Entity):
    """A customer's service request or problem report.

    Attributes:
        subject: A one-line summary.
        description: The customer's words.
        contact_id: Who raised it.
        account_id: Their account.
        owner_id: The agent working it.
        team_id: The team it is queued for.
        priority: How urgent it is.
        channel: How it came in.
        stage: Service lifecycle stage, ``"new"`` at first.
        stage_history: The stage changes so far, oldest first.
        first_response_at: When the customer first got an answer; not before ``created_at``.
        resolved_at: When it was resolved; not before ``created_at``.
    """

    kind: ClassVar[str] = "ticket"

    subject: str = _personal(_checks.non_empty, optional=False)
    description: str | None = _personal()
    contact_id: str | None = _ref()
    account_id: str | None = _ref()
    owner_id: str | None = _ref()
    team_id: str | None = _ref()
    priority: Priority = Priority.NORMAL
    channel: Channel | None = None
    stage: str = attrs.field(default="new", metadata=rules(_checks.short_label))
    stage_history: tuple[StageChange, ...] = ()
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None

    _stage_matches_history = _stage_rule

    @cross_rule("created_at", "first_response_at", "resolved_at")
    def _answered_after_created(self, _before: Ticket | None) -> Iterable[Problem]:
        return [
            *_checks.not_before(self.first_response_at, self.created_at, "first_response_at", "created_at"),
            *_checks.not_before(self.resolved_at, self.created_at, "resolved_at", "created_at"),
        ]


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Campaign(Entity):
    """A marketing effort whose spend and results are measured.

    Attributes:
        name: What the campaign is called.
        channel: Where it runs.
        status: Where it stands.
        budget: Planned spend.
        actual_cost: Spend so far; in the budget's currency.
        starts_at: When it starts.
        ends_at: When it ends; not before ``starts_at``.
        utm_campaign: The ``utm_campaign`` value its links carry.
        owner_id: The marketer responsible.
    """

    kind: ClassVar[str] = "campaign"

    name: str = attrs.field(metadata=rules(_checks.name))
    channel: Channel | None = None
    status: CampaignStatus = CampaignStatus.PLANNED
    budget: Money | None = None
    actual_cost: Money | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    utm_campaign: str | None = _optional(_checks.non_empty)
    owner_id: str | None = _ref()

    @cross_rule("starts_at", "ends_at")
    def _ends_after_start(self, _before: Campaign | None) -> Iterable[Problem]:
        return _checks.not_before(self.ends_at, self.starts_at, "ends_at", "starts_at")

    @cross_rule("budget", "actual_cost")
    def _costs_in_budget_currency(self, _before: Campaign | None) -> Iterable[Problem]:
        if self.budget and self.actual_cost and self.budget.currency != self.actual_cost.currency:
            return [Problem("actual_cost.currency", f"must be the budget's {self.budget.currency}")]
        return ()


def _line_problems(lines: tuple[LineItem, ...], currency: str) -> list[Problem]:
    return [
        Problem(f"lines[{index}].unit_price.currency", f"must be the document's currency {currency}")
        for index, line in enumerate(lines)
        if line.unit_price.currency != currency
    ]


class _PricedLines:
    """What orders and quotes share: lines priced in one currency, and their total."""

    __slots__ = ()
    lines: tuple[LineItem, ...]
    currency: str

    @property
    def total(self) -> Money:
        """The sum of the line totals (each rounded to minor units)."""
        return sum_money((line.total for line in self.lines), self.currency)

    @cross_rule("lines", "currency")
    def _lines_in_currency(self, _before: _PricedLines | None) -> Iterable[Problem]:
        return _line_problems(self.lines, self.currency)


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Order(_PricedLines, Entity):
    """A purchase by a customer.

    Attributes:
        number: The order number the customer sees.
        account_id: The buying account.
        contact_id: The buying person.
        ordered_at: When the order was placed; defaults to the current clock.
        currency: ISO 4217 code; every line is priced in it.
        lines: What was bought.
        status: Where the order stands.
        campaign_id: The campaign credited with the sale.
        quote_id: The quote it was made from.
    """

    kind: ClassVar[str] = "order"

    number: str = attrs.field(metadata=rules(_checks.non_empty))
    account_id: str | None = _ref()
    contact_id: str | None = _ref()
    ordered_at: datetime = attrs.field(factory=now)
    currency: str = attrs.field(metadata=rules(_checks.currency))
    lines: tuple[LineItem, ...] = ()
    status: OrderStatus = OrderStatus.PLACED
    campaign_id: str | None = _ref()
    quote_id: str | None = _ref()


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Product(Entity):
    """Something the organisation sells.

    Attributes:
        sku: The stock-keeping unit code, unique per product.
        name: The product name.
        family: Product family or line.
        description: What it is.
        list_price: The catalogue price of one unit.
        active: Whether it can be sold now.
        recurring_interval: For a subscription, how often it is billed; ``None`` for one-off sales.
    """

    kind: ClassVar[str] = "product"

    sku: str = attrs.field(metadata=rules(_checks.short_label))
    name: str = attrs.field(metadata=rules(_checks.name))
    family: str | None = _optional(_checks.non_empty)
    description: str | None = None
    list_price: Money | None = None
    active: bool = True
    recurring_interval: BillingInterval | None = None


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Quote(_PricedLines, Entity):
    """A priced offer sent to a prospect.

    Attributes:
        number: The quote number the customer sees.
        opportunity_id: The deal it prices.
        account_id: The account it is addressed to.
        contact_id: The person it is addressed to.
        currency: ISO 4217 code; every line is priced in it.
        lines: What is offered.
        status: Where the quote stands.
        valid_until: The last day the offer holds.
        stage: The quote lifecycle stage; defaults to the status's value and moves with it
            (``crmkit.sales`` applies the quote lifecycle to both).
        stage_history: The stage changes so far, oldest first.
        revision: The revision number, 1 for the first version of a quote.
        supersedes_id: The quote this revision replaces, if any.
        price_book_id: The price book its lines were priced from, if any.
        delivery_terms: Delivery requirements as agreed (Incoterm, address, schedule).
        delivery_by: The requested delivery date.
    """

    kind: ClassVar[str] = "quote"

    number: str = attrs.field(metadata=rules(_checks.non_empty))
    opportunity_id: str | None = _ref()
    account_id: str | None = _ref()
    contact_id: str | None = _ref()
    currency: str = attrs.field(metadata=rules(_checks.currency))
    lines: tuple[LineItem, ...] = ()
    status: QuoteStatus = QuoteStatus.DRAFT
    valid_until: date | None = None
    stage: str = attrs.field(metadata=rules(_checks.short_label))
    stage_history: tuple[StageChange, ...] = ()
    revision: int = attrs.field(default=1, metadata=rules(_checks.non_negative))
    supersedes_id: str | None = _ref()
    price_book_id: str | None = _ref()
    delivery_terms: str | None = _personal(_checks.non_empty)
    delivery_by: date | None = None

    @stage.default
    def _stage_default(self) -> str:
        return str(self.status)

    _stage_matches_history = _stage_rule


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Feedback(Entity):
    """A survey answer: Net Promoter Score or customer satisfaction.

    Attributes:
        survey: Which survey: NPS (score 0-10) or CSAT (score 1-5).
        score: The answer on that survey's scale.
        comment: The free-text answer.
        contact_id: Who answered.
        ticket_id: The ticket asked about (CSAT after support).
        order_id: The order asked about.
        responded_at: When they answered; defaults to the current clock.
    """

    kind: ClassVar[str] = "feedback"

    survey: FeedbackKind
    score: int
    comment: str | None = _personal()
    contact_id: str | None = _ref()
    ticket_id: str | None = _ref()
    order_id: str | None = _ref()
    responded_at: datetime = attrs.field(factory=now)

    @cross_rule("survey", "score")
    def _score_on_scale(self, _before: Feedback | None) -> Iterable[Problem]:
        scale = _NPS_RANGE if self.survey is FeedbackKind.NPS else _CSAT_RANGE
        if self.score not in scale:
            scale_text = f"{scale.start} to {scale.stop - 1}"
            return [Problem("score", f"a {self.survey} score is {scale_text}, got {self.score}")]
        return ()


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Consent(Entity):
    """A record of a person's permission (or refusal) to process data for one purpose.

    Attributes:
        subject: Whose data: usually a contact or a lead.
        purpose: What for, as a short name such as ``"newsletter"``.
        channel: The channel the consent covers; ``None`` means every channel.
        status: Granted, withdrawn or denied; ``withdrawn_at`` is set exactly when withdrawn.
        lawful_basis: The GDPR Art. 6 basis relied on.
        wording: The text the person agreed to, as shown.
        source: Where it was captured (a form, an import, a call).
        captured_at: When it was captured; defaults to the current clock.
        expires_at: When it lapses; after ``captured_at``.
        withdrawn_at: When it was withdrawn; not before ``captured_at``.
    """

    kind: ClassVar[str] = "consent"

    subject: EntityRef
    purpose: str = attrs.field(metadata=rules(_checks.short_label))
    channel: Channel | None = None
    status: ConsentStatus
    lawful_basis: LawfulBasis = LawfulBasis.CONSENT
    wording: str | None = None
    source: str | None = _optional(_checks.non_empty)
    captured_at: datetime = attrs.field(factory=now)
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None

    @cross_rule("captured_at", "withdrawn_at")
    def _withdrawn_after_captured(self, _before: Consent | None) -> Iterable[Problem]:
        return _checks.not_before(self.withdrawn_at, self.captured_at, "withdrawn_at", "captured_at")

    @cross_rule("status", "withdrawn_at")
    def _withdrawn_when_withdrawn(self, _before: Consent | None) -> Iterable[Problem]:
        if (self.status is ConsentStatus.WITHDRAWN) != (self.withdrawn_at is not None):
            return [Problem("withdrawn_at", "must be set exactly when the status is withdrawn")]
        return ()

    @cross_rule("captured_at", "expires_at")
    def _expires_after_captured(self, _before: Consent | None) -> Iterable[Problem]:
        if self.expires_at is not None and self.expires_at <= self.captured_at:
            return [Problem("expires_at", "must be after captured_at")]
        return ()


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class User(Entity):
    """A person who works in the CRM: a salesperson, an agent, a marketer.

    Attributes:
        name: Display name.
        email: Work email, lower-cased.
        team_id: The user's team.
        skills: Skills routing can match on (``"german"``, ``"billing"``).
        capacity: The most open assignments the user takes; ``None`` means no limit.
        timezone: IANA time zone name; working hours are in it.
        working_hours: When the user works; periods on one weekday must not overlap.
        active: Whether the user can be assigned work.
    """

    kind: ClassVar[str] = "user"

    name: str = attrs.field(metadata=rules(_checks.name))
    email: str = attrs.field(metadata=rules(_checks.email))
    team_id: str | None = _ref()
    skills: frozenset[str] = attrs.field(factory=frozenset, metadata=rules(_labels))
    capacity: int | None = _optional(_checks.non_negative)
    timezone: str = attrs.field(default="UTC", metadata=rules(_checks.iana_timezone))
    working_hours: tuple[WorkingHours, ...] = ()
    active: bool = True

    @cross_rule("working_hours")
    def _periods_do_not_overlap(self, _before: User | None) -> Iterable[Problem]:
        problems = []
        for index, period in enumerate(self.working_hours):
            if any(
                other.weekday == period.weekday and other.start < period.end and period.start < other.end
                for other in self.working_hours[:index]
            ):
                problems.append(Problem(f"working_hours[{index}]", "overlaps an earlier period on that day"))
        return problems


@attrs.frozen(kw_only=True, field_transformer=_hash_by_identity)
class Team(Entity):
    """A group of users that work a queue together.

    Attributes:
        name: The team name.
        manager_id: The user who leads it.
        description: What the team does.
    """

    kind: ClassVar[str] = "team"

    name: str = attrs.field(metadata=rules(_checks.name))
    manager_id: str | None = _ref()
    description: str | None = None


_ALL_ENTITY_CLASSES: tuple[type[Entity], ...] = (
    *(Contact, Account, Lead, Opportunity, Activity, Task, Ticket, Campaign),
    *(Order, Product, Quote, Feedback, Consent, User, Team),
)
ENTITY_TYPES: Mapping[str, type[Entity]] = MappingProxyType({cls.kind: cls for cls in _ALL_ENTITY_CLASSES})
"""Every record class by its kind: ``ENTITY_TYPES["lead"] is Lead``."""
