"""Finding everything stored about one person (private)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import attrs

from crmkit.entities import Contact, Entity, EntityRef, Lead
from crmkit.errors import NotFound, ValidationError
from crmkit.privacy._ports import PrivacyTransaction, stream

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["LOOKUP_INDEXES", "IndexedStore", "PersonRecords", "add_lookup_indexes", "find_person"]

#: Record kinds that point at a contact through ``contact_id``.
_BY_CONTACT = ("opportunity", "activity", "ticket", "order", "quote", "feedback")
#: Record kinds that point at any record through ``regarding``.
_BY_REGARDING = ("activity", "task")
_PEOPLE = ("contact", "lead")
_CHUNK = 500

#: The fields :func:`find_person` looks records up by that a store does not index by itself
#: (``email`` and ``contact_id`` it does), as ``(kind, field)``.
LOOKUP_INDEXES: tuple[tuple[str, str], ...] = (
    ("lead", "converted_contact_id"),
    ("activity", "regarding.id"),
    ("task", "regarding.id"),
    ("consent", "subject.id"),
)


class IndexedStore(Protocol):
    """A store that can index a field (``crmkit.storage.Store`` fits)."""

    def add_index(self, entity_class: Any, field: str) -> None:
        """Index a declared field of a record type (idempotent)."""


def add_lookup_indexes(store: IndexedStore) -> None:
    """Index the fields export and erasure look people up by, so they do not scan whole tables.

    Idempotent; call it once when the host sets its store up (``add_lookup_indexes(store)``).
    """
    for kind, field in LOOKUP_INDEXES:
        store.add_index(kind, field)


@attrs.frozen
class PersonRecords:
    """Everything stored about one person: their own records and the records about them.

    Attributes:
        person: The record the request named.
        people: The person's own records: the contact and the leads it was converted from or that
            share its email, sorted by kind and id.
        related: Records about the person (deals, activities, tasks, tickets, orders, quotes,
            feedback, consents), sorted by kind and id.
    """

    person: EntityRef
    people: tuple[Entity, ...]
    related: tuple[Entity, ...]

    @property
    def ids(self) -> frozenset[str]:
        """The ids of the person's own records."""
        return frozenset(record.id for record in self.people)

    @property
    def all(self) -> tuple[Entity, ...]:
        """The person's own records, then the related ones."""
        return self.people + self.related


def _ref(person: EntityRef | Entity) -> EntityRef:
    given: object = person
    if isinstance(given, Entity):
        return EntityRef.to(given)
    if not isinstance(given, EntityRef):
        msg = f"expected an EntityRef or a contact or lead record, got {type(given).__name__}"
        raise ValidationError.single("person", msg)
    if given.kind not in _PEOPLE:
        raise ValidationError.single("person.kind", f"a person is a contact or a lead, not a {given.kind}")
    return given


def _in(field: str, values: Iterable[str]) -> Iterator[dict[str, Any]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield {"field": field, "op": "in", "value": ordered[start : start + _CHUNK]}


def _matching(tx: PrivacyTransaction, kind: str, field: str, values: Iterable[str]) -> list[Entity]:
    return [record for where in _in(field, values) for record in stream(tx, kind, where)]


def _linked(tx: PrivacyTransaction, records: list[Entity], emails: set[str]) -> list[Entity]:
    """The contacts and leads one step from ``records``: same email, or linked by a conversion."""
    found: list[Entity] = []
    for kind in _PEOPLE:
        found += _matching(tx, kind, "email", emails)
    found += _matching(tx, "lead", "converted_contact_id", {r.id for r in records if isinstance(r, Contact)})
    converted = {r.converted_contact_id for r in records if isinstance(r, Lead) and r.converted_contact_id}
    found += _matching(tx, "contact", "id", converted)
    return found


def find_person(tx: PrivacyTransaction, person: EntityRef | Entity) -> PersonRecords:
    """Find a person's own records and every record about them, through the storage contract.

    Starting from one contact or lead, the person's records are that record, the contact a lead
    was converted into, the leads converted into a contact, and the contacts and leads sharing an
    email with any of those (repeated until nothing new turns up). A shared phone does not join
    records: a switchboard number is shared by many people.

    Raises:
        NotFound: If the named record does not exist.
        ValidationError: If ``person`` is not a contact or lead (or a reference to one).
    """
    ref = _ref(person)
    try:
        seed = tx.repository(ref.kind).get(ref.id)
    except NotFound:
        raise NotFound(ref.kind, ref.id) from None
    people: dict[tuple[str, str], Entity] = {(seed.kind, seed.id): seed}
    todo: list[Entity] = [seed]
    seen_emails: set[str] = set()
    while todo:
        emails = {r.email for r in todo if isinstance(r, Contact | Lead) and r.email} - seen_emails
        seen_emails |= emails
        todo = [r for r in _linked(tx, todo, emails) if (r.kind, r.id) not in people]
        people.update(((r.kind, r.id), r) for r in todo)
    ids = {record.id for record in people.values()}
    contact_ids = {record.id for record in people.values() if isinstance(record, Contact)}
    related: dict[tuple[str, str], Entity] = {}
    for kind in _BY_CONTACT:
        for record in _matching(tx, kind, "contact_id", contact_ids):
            related[(kind, record.id)] = record
    for kind in _BY_REGARDING:
        for record in _matching(tx, kind, "regarding.id", ids):
            related[(kind, record.id)] = record
    for record in _matching(tx, "consent", "subject.id", ids):
        related[("consent", record.id)] = record
    return PersonRecords(
        ref,
        tuple(people[key] for key in sorted(people)),
        tuple(related[key] for key in sorted(related)),
    )
