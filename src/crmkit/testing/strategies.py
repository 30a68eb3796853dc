"""Hypothesis strategies that build valid crmkit records and values.

Every strategy produces instances that pass crmkit's own validation: aware
datetimes with varied UTC offsets, well-formed emails, E.164 phone numbers,
exact decimals, lines in their document's currency, stage histories in time
order. Use them in your own property tests::

    from hypothesis import given
    from crmkit.testing import leads

    @given(leads())
    def test_routing_assigns_every_lead(lead): ...

This module needs ``hypothesis``, which crmkit itself does not depend on.
"""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from crmkit.entities import (
    ENTITY_TYPES,
    Account,
    Activity,
    ActivityKind,
    Address,
    BillingInterval,
    Campaign,
    CampaignStatus,
    Channel,
    Consent,
    ConsentStatus,
    Contact,
    CustomValue,
    Direction,
    Entity,
    EntityRef,
    Feedback,
    FeedbackKind,
    LawfulBasis,
    Lead,
    LineItem,
    Opportunity,
    Order,
    OrderStatus,
    Priority,
    Product,
    Quote,
    QuoteStatus,
    StageChange,
    Task,
    TaskStatus,
    Team,
    Ticket,
    User,
    WorkingHours,
)
from crmkit.money import CURRENCIES, Money

if TYPE_CHECKING:
    from collections.abc import Callable

    from hypothesis.strategies import DrawFn, SearchStrategy

__all__ = [
    "accounts",
    "activities",
    "addresses",
    "aware_datetimes",
    "campaigns",
    "consents",
    "contacts",
    "currencies",
    "custom_fields",
    "domains",
    "emails",
    "entities",
    "entity_refs",
    "feedback",
    "ids",
    "leads",
    "line_items",
    "money",
    "opportunities",
    "orders",
    "person_names",
    "phone_numbers",
    "products",
    "quotes",
    "stage_changes",
    "tasks",
    "teams",
    "tickets",
    "users",
    "working_hours",
]

_OFFSETS = (
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(hours=12, minutes=45)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=14)),
)
_TIMEZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney")
_RRULES = (
    "FREQ=DAILY;COUNT=5",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "FREQ=MONTHLY;BYMONTHDAY=1;INTERVAL=2",
    "FREQ=YEARLY;BYMONTH=3",
)
_STAGES = ("new", "contacted", "qualified", "proposal", "won", "lost", "open", "customer")
_ATOM = string.ascii_lowercase + string.digits + "+_-"
_MAX_STEP = timedelta(days=400)



def _free_text(max_size: int) -> st.SearchStrategy[str]:
    """Any text crmkit accepts: valid Unicode (no lone surrogates) without NUL, which no store can hold."""
    return st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=max_size)

def ids() -> SearchStrategy[str]:
    """Host-style record ids: 1 to 64 characters without whitespace."""
    return st.text(alphabet=string.ascii_letters + string.digits + "-_:.", min_size=1, max_size=64)


def aware_datetimes() -> SearchStrategy[datetime]:
    """Timezone-aware datetimes between 2000 and 2040, with varied fixed UTC offsets."""
    return st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; the tz is drawn
        max_value=datetime(2040, 12, 31),  # noqa: DTZ001 - as above
        timezones=st.sampled_from(_OFFSETS),
    )


def _label() -> SearchStrategy[str]:
    return st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


def domains() -> SearchStrategy[str]:
    """Normalised domain names such as ``"acme-7.example"``."""
    tld = st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=6)
    return st.builds(
        lambda labels, top: ".".join([*labels, top]), st.lists(_label(), min_size=1, max_size=3), tld
    )


def emails() -> SearchStrategy[str]:
    """Email addresses in crmkit's normalised (lower-case) form."""
    atoms = st.lists(st.text(alphabet=_ATOM, min_size=1, max_size=12), min_size=1, max_size=3)
    return st.builds(lambda local, domain: f"{'.'.join(local)}@{domain}", atoms, domains())


def phone_numbers() -> SearchStrategy[str]:
    """E.164 numbers with a plausible length for their country (US, GB, DE, FR, JP, IN)."""
    patterns = (
        ("+1", "[2-9][0-9]{9}"),
        ("+44", "20[0-9]{8}"),
        ("+49", "30[0-9]{8}"),
        ("+33", "[1-7][0-9]{8}"),
        ("+81", "3[0-9]{8}"),
        ("+91", "9[0-9]{9}"),
    )
    return st.one_of(
        [st.from_regex(f"{pattern}", fullmatch=True).map(code.__add__) for code, pattern in patterns]
    )


def person_names() -> SearchStrategy[str]:
    """Names of one to three words of letters, single-spaced (already normalised)."""
    word = st.text(alphabet=st.characters(categories=("Lu", "Ll")), min_size=1, max_size=12)
    return st.lists(word, min_size=1, max_size=3).map(" ".join)


def _words() -> SearchStrategy[str]:
    """A short non-empty, trimmed text such as a title or a subject."""
    return st.text(alphabet=string.ascii_letters + string.digits + " ,.-", min_size=1, max_size=40).filter(
        lambda text: text.strip() == text and text != ""
    )


def currencies() -> SearchStrategy[str]:
    """Active ISO 4217 codes."""
    return st.sampled_from(sorted(CURRENCIES))


def money(currency: str | None = None, *, max_value: int = 10**9) -> SearchStrategy[Money]:
    """Non-negative amounts with the currency's minor units, in ``currency`` or any currency."""
    codes = st.just(currency) if currency else currencies()
    return codes.flatmap(
        lambda code: st.decimals(min_value=0, max_value=max_value, places=CURRENCIES[code]).map(
            lambda amount: Money(amount, code)
        )
    )


def entity_refs() -> SearchStrategy[EntityRef]:
    """References to records of every kind."""
    return st.builds(EntityRef, st.sampled_from(sorted(ENTITY_TYPES)), ids())


def addresses() -> SearchStrategy[Address]:
    """Postal addresses, any part possibly missing."""
    return st.builds(
        Address,
        street=st.none() | _words(),
        city=st.none() | _words(),
        region=st.none() | _words(),
        postal_code=st.none() | st.from_regex(r"[0-9A-Z]{3,8}", fullmatch=True),
        country=st.none() | st.from_regex(r"[A-Z]{2}", fullmatch=True),
    )


def stage_changes() -> SearchStrategy[StageChange]:
    """Single stage history entries."""
    return st.builds(
        StageChange,
        from_stage=st.none() | st.sampled_from(_STAGES),
        to_stage=st.sampled_from(_STAGES),
        transition=st.none() | st.sampled_from(("qualify", "convert", "close", "reopen")),
        actor=st.none() | ids(),
        at=aware_datetimes(),
    )


def line_items(currency: str | None = None) -> SearchStrategy[LineItem]:
    """Order and quote lines priced in ``currency`` (any currency if ``None``)."""
    return st.builds(
        LineItem,
        product_id=st.none() | ids(),
        description=_free_text(30),
        quantity=st.decimals(min_value=0, max_value=10_000, places=3),
        unit_price=money(currency, max_value=10**6),
        discount=st.decimals(min_value=0, max_value=1, places=2),
        tax_rate=st.decimals(min_value=0, max_value=1, places=3),
    )


def working_hours() -> SearchStrategy[WorkingHours]:
    """One working period on one weekday, with whole-quarter-hour bounds."""
    return st.builds(
        lambda weekday, start, length: WorkingHours(weekday, _quarter(start), _quarter(start + length)),
        st.integers(0, 6),
        st.integers(0, 80),
        st.integers(1, 15),
    )


def _quarter(index: int) -> time:
    return time(index // 4, (index % 4) * 15)


def _custom_values() -> SearchStrategy[CustomValue]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        _free_text(20),
        st.decimals(allow_nan=False, allow_infinity=False),
        aware_datetimes(),
        st.dates(),
    )


def custom_fields() -> SearchStrategy[dict[str, CustomValue]]:
    """Host custom fields with every kind of value crmkit accepts."""
    keys = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)
    return st.dictionaries(keys, _custom_values(), max_size=4)


def _tags() -> SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(("vip", "churn-risk", "partner", "newsletter", "eu")), max_size=3)


def _optional(strategy: SearchStrategy[Any]) -> SearchStrategy[Any]:
    return st.none() | strategy


def _later(draw: DrawFn, start: datetime) -> datetime:
    return start + draw(st.timedeltas(min_value=timedelta(0), max_value=_MAX_STEP))


def _base(draw: DrawFn) -> dict[str, Any]:
    """Draw the fields every entity has."""
    created = draw(aware_datetimes())
    return {
        "id": draw(st.uuids().map(lambda value: value.hex) | ids()),
        "created_at": created,
        "updated_at": _later(draw, created),
        "version": draw(st.integers(0, 1_000)),
        "tags": draw(_tags()),
        "custom_fields": draw(custom_fields()),
    }


def _staged(draw: DrawFn, start: datetime) -> dict[str, Any]:
    """Draw a stage and a stage history in time order that ends in it."""
    count = draw(st.integers(0, 3))
    history = []
    at = start
    previous: str | None = None
    for _ in range(count):
        at = _later(draw, at)
        stage = draw(st.sampled_from(_STAGES))
        history.append(StageChange(from_stage=previous, to_stage=stage, transition=None, actor=None, at=at))
        previous = stage
    return {"stage": previous or draw(st.sampled_from(_STAGES)), "stage_history": tuple(history)}


def _refs(draw: DrawFn, *names: str) -> dict[str, Any]:
    return {name: draw(_optional(ids())) for name in names}


@st.composite
def contacts(draw: DrawFn) -> Contact:
    """Valid :class:`Contact` records."""
    base = _base(draw)
    return Contact(
        **base,
        **_staged(draw, base["created_at"]),
        **_refs(draw, "account_id", "owner_id"),
        first_name=draw(_optional(person_names())),
        last_name=draw(_optional(person_names())),
        email=draw(_optional(emails())),
        phone=draw(_optional(phone_numbers())),
        title=draw(_optional(_words())),
        address=draw(_optional(addresses())),
        timezone=draw(_optional(st.sampled_from(_TIMEZONES))),
        do_not_contact=draw(st.booleans()),
    )


@st.composite
def accounts(draw: DrawFn) -> Account:
    """Valid :class:`Account` records."""
    base = _base(draw)
    parent_id = draw(_optional(ids()))
    return Account(
        **base,
        **_refs(draw, "owner_id"),
        name=draw(person_names()),
        domain=draw(_optional(domains())),
        industry=draw(_optional(_words())),
        employees=draw(_optional(st.integers(0, 10**6))),
        annual_revenue=draw(_optional(money())),
        phone=draw(_optional(phone_numbers())),
        address=draw(_optional(addresses())),
        parent_id=None if parent_id == base["id"] else parent_id,
    )


@st.composite
def leads(draw: DrawFn) -> Lead:
    """Valid :class:`Lead` records (each has at least an email)."""
    base = _base(draw)
    return Lead(
        **base,
        **_staged(draw, base["created_at"]),
        **_refs(
            draw,
            "owner_id",
            "campaign_id",
            "converted_contact_id",
            "converted_account_id",
            "converted_opportunity_id",
        ),
        first_name=draw(_optional(person_names())),
        last_name=draw(_optional(person_names())),
        email=draw(emails()),
        phone=draw(_optional(phone_numbers())),
        company=draw(_optional(person_names())),
        domain=draw(_optional(domains())),
        title=draw(_optional(_words())),
        country=draw(_optional(st.from_regex(r"[A-Z]{2}", fullmatch=True))),
        industry=draw(_optional(_words())),
        employees=draw(_optional(st.integers(0, 10**6))),
        source=draw(_optional(st.sampled_from(Channel))),
        utm_source=draw(_optional(_words())),
        utm_medium=draw(_optional(_words())),
        utm_campaign=draw(_optional(_words())),
        score=draw(st.integers(-1_000, 1_000)),
        converted_at=draw(_optional(aware_datetimes())),
    )


@st.composite
def opportunities(draw: DrawFn) -> Opportunity:
    """Valid :class:`Opportunity` records."""
    base = _base(draw)
    return Opportunity(
        **base,
        **_staged(draw, base["created_at"]),
        **_refs(draw, "account_id", "contact_id", "owner_id", "campaign_id"),
        name=draw(person_names()),
        amount=draw(_optional(money())),
        probability=draw(_optional(st.decimals(min_value=0, max_value=1, places=2))),
        expected_close=draw(_optional(st.dates())),
        lost_reason=draw(_optional(_words())),
        closed_at=draw(_optional(aware_datetimes())),
    )


@st.composite
def activities(draw: DrawFn) -> Activity:
    """Valid :class:`Activity` records."""
    kind = draw(st.sampled_from(ActivityKind))
    direction = None if kind is ActivityKind.NOTE else draw(_optional(st.sampled_from(Direction)))
    return Activity(
        **_base(draw),
        **_refs(draw, "contact_id", "account_id", "owner_id"),
        activity_type=kind,
        subject=draw(_optional(_words())),
        body=draw(_optional(_free_text(80))),
        direction=direction,
        occurred_at=draw(aware_datetimes()),
        duration_seconds=draw(_optional(st.integers(0, 86_400))),
        regarding=draw(_optional(entity_refs())),
    )


@st.composite
def tasks(draw: DrawFn) -> Task:
    """Valid :class:`Task` records, some recurring."""
    status = draw(st.sampled_from(TaskStatus))
    due_at = draw(_optional(aware_datetimes()))
    recurrence = draw(_optional(st.sampled_from(_RRULES))) if due_at else None
    return Task(
        **_base(draw),
        **_refs(draw, "owner_id"),
        title=draw(_words()),
        description=draw(_optional(_free_text(80))),
        status=status,
        priority=draw(st.sampled_from(Priority)),
        due_at=due_at,
        completed_at=draw(aware_datetimes()) if status is TaskStatus.DONE else None,
        regarding=draw(_optional(entity_refs())),
        recurrence=recurrence,
    )


@st.composite
def tickets(draw: DrawFn) -> Ticket:
    """Valid :class:`Ticket` records."""
    base = _base(draw)
    created = base["created_at"]
    return Ticket(
        **base,
        **_staged(draw, created),
        **_refs(draw, "contact_id", "account_id", "owner_id", "team_id"),
        subject=draw(_words()),
        description=draw(_optional(_free_text(80))),
        priority=draw(st.sampled_from(Priority)),
        channel=draw(_optional(st.sampled_from(Channel))),
        first_response_at=_later(draw, created) if draw(st.booleans()) else None,
        resolved_at=_later(draw, created) if draw(st.booleans()) else None,
    )


@st.composite
def campaigns(draw: DrawFn) -> Campaign:
    """Valid :class:`Campaign` records."""
    currency = draw(currencies())
    starts_at = draw(_optional(aware_datetimes()))
    return Campaign(
        **_base(draw),
        **_refs(draw, "owner_id"),
        name=draw(person_names()),
        channel=draw(_optional(st.sampled_from(Channel))),
        status=draw(st.sampled_from(CampaignStatus)),
        budget=draw(_optional(money(currency))),
        actual_cost=draw(_optional(money(currency))),
        starts_at=starts_at,
        ends_at=_later(draw, starts_at) if starts_at and draw(st.booleans()) else None,
        utm_campaign=draw(_optional(_words())),
    )


@st.composite
def orders(draw: DrawFn) -> Order:
    """Valid :class:`Order` records with lines in the order's currency."""
    currency = draw(currencies())
    return Order(
        **_base(draw),
        **_refs(draw, "account_id", "contact_id", "campaign_id", "quote_id"),
        number=draw(_words()),
        ordered_at=draw(aware_datetimes()),
        currency=currency,
        lines=draw(st.lists(line_items(currency), max_size=4).map(tuple)),
        status=draw(st.sampled_from(OrderStatus)),
    )


@st.composite
def products(draw: DrawFn) -> Product:
    """Valid :class:`Product` records."""
    return Product(
        **_base(draw),
        sku=draw(st.from_regex(r"[A-Z]{2,4}-[0-9]{1,6}", fullmatch=True)),
        name=draw(person_names()),
        family=draw(_optional(_words())),
        description=draw(_optional(_free_text(80))),
        list_price=draw(_optional(money())),
        active=draw(st.booleans()),
        recurring_interval=draw(_optional(st.sampled_from(BillingInterval))),
    )


@st.composite
def quotes(draw: DrawFn) -> Quote:
    """Valid :class:`Quote` records with lines in the quote's currency."""
    currency = draw(currencies())
    return Quote(
        **_base(draw),
        **_refs(draw, "opportunity_id", "account_id", "contact_id"),
        number=draw(_words()),
        currency=currency,
        lines=draw(st.lists(line_items(currency), max_size=4).map(tuple)),
        status=draw(st.sampled_from(QuoteStatus)),
        valid_until=draw(_optional(st.dates(min_value=date(2000, 1, 1)))),
    )


@st.composite
def feedback(draw: DrawFn) -> Feedback:
    """Valid :class:`Feedback` records: NPS scores 0-10, CSAT scores 1-5."""
    survey = draw(st.sampled_from(FeedbackKind))
    score = draw(st.integers(0, 10) if survey is FeedbackKind.NPS else st.integers(1, 5))
    return Feedback(
        **_base(draw),
        **_refs(draw, "contact_id", "ticket_id", "order_id"),
        survey=survey,
        score=score,
        comment=draw(_optional(_free_text(80))),
        responded_at=draw(aware_datetimes()),
    )


@st.composite
def consents(draw: DrawFn) -> Consent:
    """Valid :class:`Consent` records."""
    status = draw(st.sampled_from(ConsentStatus))
    captured_at = draw(aware_datetimes())
    return Consent(
        **_base(draw),
        subject=draw(entity_refs()),
        purpose=draw(st.sampled_from(("newsletter", "product_updates", "profiling", "sms_offers"))),
        channel=draw(_optional(st.sampled_from(Channel))),
        status=status,
        lawful_basis=draw(st.sampled_from(LawfulBasis)),
        wording=draw(_optional(_free_text(80))),
        source=draw(_optional(_words())),
        captured_at=captured_at,
        expires_at=captured_at + timedelta(days=draw(st.integers(1, 3_650))) if draw(st.booleans()) else None,
        withdrawn_at=_later(draw, captured_at) if status is ConsentStatus.WITHDRAWN else None,
    )


@st.composite
def users(draw: DrawFn) -> User:
    """Valid :class:`User` records with at most one working period per weekday."""
    periods = draw(st.lists(working_hours(), max_size=7, unique_by=lambda period: period.weekday))
    return User(
        **_base(draw),
        **_refs(draw, "team_id"),
        name=draw(person_names()),
        email=draw(emails()),
        skills=draw(st.frozensets(st.sampled_from(("german", "billing", "enterprise", "api")), max_size=3)),
        capacity=draw(_optional(st.integers(0, 100))),
        timezone=draw(st.sampled_from(_TIMEZONES)),
        working_hours=tuple(periods),
        active=draw(st.booleans()),
    )


@st.composite
def teams(draw: DrawFn) -> Team:
    """Valid :class:`Team` records."""
    return Team(
        **_base(draw),
        **_refs(draw, "manager_id"),
        name=draw(person_names()),
        description=draw(_optional(_free_text(80))),
    )


_BY_KIND: dict[str, Callable[[], SearchStrategy[Any]]] = {
    "contact": contacts,
    "account": accounts,
    "lead": leads,
    "opportunity": opportunities,
    "activity": activities,
    "task": tasks,
    "ticket": tickets,
    "campaign": campaigns,
    "order": orders,
    "product": products,
    "quote": quotes,
    "feedback": feedback,
    "consent": consents,
    "user": users,
    "team": teams,
}


def entities(kind: str | None = None) -> SearchStrategy[Entity]:
    """Valid records of one ``kind`` (a key of ``ENTITY_TYPES``), or of every kind when ``None``.

    Raises:
        KeyError: If ``kind`` is not an entity kind.
    """
    if kind is not None:
        return _BY_KIND[kind]()
    return st.one_of([strategy() for strategy in _BY_KIND.values()])
