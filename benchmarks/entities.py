"""The ``entities-*`` cases: the record machinery every other part of crmkit runs through.

Four cases, each against a floor that does the same work without any checking, so the table shows what
validation and conversion cost:

* ``entities-construct``: ``Lead(email=..., company=..., country=...)`` from web-form fields, against a
  plain slotted ``attrs`` class with the same fields and defaults;
* ``entities-replace``: a lifecycle step, ``replace(lead, stage=..., stage_history=history + (change,))``,
  against ``attrs.evolve`` of the same record and ``dataclasses.replace`` of a plain dataclass;
* ``entities-to-data``: ``json.dumps(to_data(contact))``, as a store writes a row, against ``json.dumps``
  of a hand-built dict;
* ``entities-from-data``: ``from_data(Contact, json.loads(text))``, as a store reads a row, against
  ``json.loads`` into a plain dataclass with its times parsed.

Inputs come from a fixed seed, so every run (and every size, a prefix of the same stream) does the same
work.
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from benchmarks.harness import Case, Contender

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.harness import Work

__all__ = ["CASES", "SEED", "make_contact_rows", "make_form_fields"]

SEED = 20_260_105
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SIZES = {"tiny": 2_000, "small": 10_000, "full": 50_000}

FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton")
COMPANIES = ("Acme GmbH", "Globex", "Initech", "Umbrella Corp", "Stark Industries", "Wayne Enterprises")
DOMAINS = ("example.com", "example.org", "mail.example.net", "corp.example.de", "example.co.uk")
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "JP", "AU", "CA", "BR")
TAGS = ("vip", "b2b", "newsletter", "trial", "partner")


def make_form_fields(n: int, seed: int = SEED) -> list[dict[str, str]]:
    """The first ``n`` web-form submissions: an email (already in canonical form), a company, a country."""
    rng = random.Random(seed)
    return [
        {
            "email": f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{i}@{rng.choice(DOMAINS)}",
            "company": rng.choice(COMPANIES),
            "country": rng.choice(COUNTRIES),
        }
        for i in range(n)
    ]


def make_contact_rows(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """The first ``n`` contacts as constructor keywords, typical of a CRM's people table."""
    rng = random.Random(seed + 1)
    rows = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = T0 + timedelta(minutes=rng.randint(0, 500_000))
        rows.append(
            {
                "id": f"c{i:08d}",
                "created_at": created,
                "updated_at": created + timedelta(hours=rng.randint(0, 100)),
                "first_name": first,
                "last_name": last,
                "email": f"{first.lower()}.{last.lower()}{i}@{rng.choice(DOMAINS)}",
                "phone": f"+4420794{rng.randint(10_000, 99_999)}",
                "title": rng.choice(("CTO", "Head of Sales", "Buyer", None)),
                "account_id": f"a{rng.randint(0, 999):05d}",
                "timezone": rng.choice(("Europe/London", "Europe/Berlin", None)),
                "tags": frozenset(rng.sample(TAGS, rng.randint(0, 2))),
                "custom_fields": {"seats": rng.randint(1, 500)} if rng.random() < 0.5 else {},
                "stage": "lead",
            }
        )
    return rows


# Floors: the same records with no checks at all.


@attrs.frozen(kw_only=True)
class PlainLead:
    """The fields of a lead a web form fills, with crmkit's defaults and no validation."""

    id: str = attrs.field(factory=lambda: "")
    created_at: datetime = attrs.field(factory=lambda: T0)
    updated_at: datetime = T0
    version: int = 0
    tags: frozenset[str] = frozenset()
    custom_fields: dict[str, Any] = attrs.field(factory=dict)
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    domain: str | None = None
    title: str | None = None
    country: str | None = None
    industry: str | None = None
    employees: int | None = None
    source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    score: int = 0
    stage: str = "new"
    stage_history: tuple[Any, ...] = ()
    owner_id: str | None = None
    campaign_id: str | None = None
    converted_contact_id: str | None = None
    converted_account_id: str | None = None
    converted_opportunity_id: str | None = None
    converted_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlainContact:
    """A contact as a plain frozen dataclass: no checks, no conversion beyond parsing its times."""

    id: str
    created_at: datetime
    updated_at: datetime
    version: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)
    custom_fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    account_id: str | None = None
    owner_id: str | None = None
    address: dict[str, Any] | None = None
    timezone: str | None = None
    do_not_contact: bool = False
    stage: str = "subscriber"
    stage_history: tuple[Any, ...] = ()


def _lead_answer(lead: Any) -> tuple[Any, ...]:
    return (lead.email, lead.company, lead.country, lead.stage, lead.score)


# entities-construct


def _construct_crmkit(items: Sequence[dict[str, str]]) -> Work:
    from crmkit.entities import Lead  # noqa: PLC0415 - imported by the contender, like a peer library

    def work() -> list[Any]:
        return [
            _lead_answer(Lead(email=i["email"], company=i["company"], country=i["country"])) for i in items
        ]

    return work


def _construct_plain(items: Sequence[dict[str, str]]) -> Work:
    def work() -> list[Any]:
        return [
            _lead_answer(PlainLead(email=i["email"], company=i["company"], country=i["country"]))
            for i in items
        ]

    return work


# entities-replace: one lifecycle step per lead


def _stage_step(lead: Any) -> tuple[str, Any]:
    """The next stage and the history entry a lifecycle would write for it."""
    from crmkit.entities import StageChange  # noqa: PLC0415

    return "contacted", StageChange(from_stage=lead.stage, to_stage="contacted", transition="contact", at=T0)


def _leads(items: Sequence[dict[str, str]]) -> list[Any]:
    from crmkit.entities import Lead  # noqa: PLC0415

    return [Lead(created_at=T0, **fields) for fields in items]


def _replace_answer(record: Any) -> tuple[Any, ...]:
    return (record.email, record.stage, len(record.stage_history))


def _replace_crmkit(items: Sequence[dict[str, str]]) -> Work:
    from crmkit._validation import replace  # noqa: PLC0415

    steps = [(lead, *_stage_step(lead)) for lead in _leads(items)]

    def work() -> list[Any]:
        return [
            _replace_answer(replace(lead, stage=stage, stage_history=(*lead.stage_history, change)))
            for lead, stage, change in steps
        ]

    return work


def _replace_evolve(items: Sequence[dict[str, str]]) -> Work:
    steps = [(lead, *_stage_step(lead)) for lead in _leads(items)]

    def work() -> list[Any]:
        return [
            _replace_answer(attrs.evolve(lead, stage=stage, stage_history=(*lead.stage_history, change)))
            for lead, stage, change in steps
        ]

    return work


@dataclasses.dataclass(frozen=True, slots=True)
class _PlainStaged:
    email: str
    stage: str
    stage_history: tuple[Any, ...]


def _replace_dataclass(items: Sequence[dict[str, str]]) -> Work:
    steps = [(_PlainStaged(lead.email, lead.stage, ()), *_stage_step(lead)) for lead in _leads(items)]

    def work() -> list[Any]:
        return [
            _replace_answer(
                dataclasses.replace(record, stage=stage, stage_history=(*record.stage_history, change))
            )
            for record, stage, change in steps
        ]

    return work


# entities-to-data: what a store writes


def _contacts(rows: Sequence[dict[str, Any]]) -> list[Any]:
    from crmkit.entities import Contact  # noqa: PLC0415

    return [Contact(**row) for row in rows]


def _to_data_crmkit(rows: Sequence[dict[str, Any]]) -> Work:
    from crmkit.serialization import to_data  # noqa: PLC0415

    contacts = _contacts(rows)

    def work() -> list[str]:
        return [json.dumps(to_data(contact)) for contact in contacts]

    return work


def _plain_dict(contact: Any) -> dict[str, Any]:
    return {
        "id": contact.id,
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
        "version": contact.version,
        "tags": sorted(contact.tags),
        "custom_fields": dict(contact.custom_fields),
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "phone": contact.phone,
        "title": contact.title,
        "account_id": contact.account_id,
        "owner_id": contact.owner_id,
        "address": None,
        "timezone": contact.timezone,
        "do_not_contact": contact.do_not_contact,
        "stage": contact.stage,
        "stage_history": [],
    }


def _to_data_hand_built(rows: Sequence[dict[str, Any]]) -> Work:
    contacts = _contacts(rows)  # the same values; the floor reads them without any hook

    def work() -> list[str]:
        return [json.dumps(_plain_dict(contact)) for contact in contacts]

    return work


# entities-from-data: what a store reads


def _texts(rows: Sequence[dict[str, Any]]) -> list[str]:
    from crmkit.serialization import to_json  # noqa: PLC0415

    return [to_json(contact) for contact in _contacts(rows)]


def _from_data_answer(contact: Any) -> tuple[Any, ...]:
    return (contact.id, contact.email, contact.created_at, contact.stage, len(contact.tags))


def _from_data_crmkit(rows: Sequence[dict[str, Any]]) -> Work:
    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.serialization import from_data  # noqa: PLC0415

    texts = _texts(rows)

    def work() -> list[Any]:
        return [_from_data_answer(from_data(Contact, json.loads(text))) for text in texts]

    return work


def _plain_contact(data: dict[str, Any]) -> PlainContact:
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    data["updated_at"] = datetime.fromisoformat(data["updated_at"])
    return PlainContact(**data)


def _from_data_plain(rows: Sequence[dict[str, Any]]) -> Work:
    texts = _texts(rows)

    def work() -> list[Any]:
        return [_from_data_answer(_plain_contact(json.loads(text))) for text in texts]

    return work


CASES = (
    Case(
        name="entities-construct",
        description="Lead(email=..., company=..., country=...) from web-form fields, checked and normalised",
        unit="lead",
        sizes=SIZES,
        make_items=make_form_fields,
        contenders=(
            Contender("crmkit", _construct_crmkit, distribution="crmkit"),
            Contender("attrs-plain", _construct_plain, distribution="attrs"),
        ),
    ),
    Case(
        name="entities-replace",
        description="one lifecycle step: replace(lead, stage=..., stage_history=history + (change,))",
        unit="lead",
        sizes=SIZES,
        make_items=make_form_fields,
        contenders=(
            Contender("crmkit", _replace_crmkit, distribution="crmkit"),
            Contender("attrs.evolve", _replace_evolve, distribution="attrs"),
            Contender("dataclasses.replace", _replace_dataclass),
        ),
    ),
    Case(
        name="entities-to-data",
        description="json.dumps(to_data(contact)), as a store writes a row",
        unit="contact",
        sizes=SIZES,
        make_items=make_contact_rows,
        contenders=(
            Contender("crmkit", _to_data_crmkit, distribution="crmkit"),
            Contender("hand-built-dict", _to_data_hand_built),
        ),
    ),
    Case(
        name="entities-from-data",
        description="from_data(Contact, json.loads(text)), as a store reads a row",
        unit="contact",
        sizes=SIZES,
        make_items=make_contact_rows,
        contenders=(
            Contender("crmkit", _from_data_crmkit, distribution="crmkit"),
            Contender("dataclass-plain", _from_data_plain),
        ),
    ),
)
