"""Erasure (the right to be forgotten): personal data out, facts kept, identifiers suppressed (private)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.entities import Consent, ConsentStatus, Contact, Entity, EntityRef, Lead
from crmkit.errors import ValidationError
from crmkit.events import DomainEvent, event_to_data, register_event
from crmkit.normalize import normalize_email, normalize_phone
from crmkit.privacy._personal import PLACEHOLDER, PersonalData, personal_fields
from crmkit.privacy._records import find_person
from crmkit.privacy._suppression import suppress

if TYPE_CHECKING:
    from collections.abc import Collection

    from crmkit.privacy._ports import PrivacyTransaction

__all__ = [
    "ERASED_NAMESPACE",
    "ErasureReport",
    "PersonErased",
    "anonymise",
    "erase_person",
    "erased_ids",
]

#: The ``tx.state`` namespace recording which record ids were erased, and when (no personal data).
ERASED_NAMESPACE = "privacy.erased"
_PAGE = 1_000


@register_event("person_erased")
@attrs.frozen(kw_only=True)
class PersonErased(DomainEvent):
    """A person was erased; the entry says which records changed, never what they held.

    Attributes:
        records: How many records had personal data removed.
        audit_entries: How many audit entries were redacted.
    """

    records: int = 0
    audit_entries: int = 0


@attrs.frozen
class ErasureReport:
    """What an erasure did.

    Attributes:
        person: The record the request named.
        people: The person's own records (contact and leads).
        changed: The records whose personal data was removed, by reference.
        fields_erased: How many field values were removed or replaced.
        audit_entries_redacted: How many audit entries had personal values rewritten.
        suppressed: How many emails and phones were newly put on the suppression list.
        consents_withdrawn: How many granted consents were withdrawn.
        already_erased: True when there was nothing left to erase (a repeated request).
    """

    person: EntityRef
    people: tuple[EntityRef, ...]
    changed: tuple[EntityRef, ...]
    fields_erased: int
    audit_entries_redacted: int
    suppressed: int
    consents_withdrawn: int
    already_erased: bool


def anonymise(
    entity: Entity, personal_data: PersonalData | None = None, placeholder: str = PLACEHOLDER
) -> tuple[Entity, int]:
    """The record with its personal fields emptied (or replaced by ``placeholder`` where required).

    Declared personal custom fields are removed; every other field, dates, amounts and stage history
    included, is kept.

    Returns:
        The new record (same id and version, to store with ``update``) and how many values went.
    """
    declaration = personal_data or PersonalData()
    changes: dict[str, Any] = {}
    count = 0
    for field in attrs.fields(type(entity)):
        if field.name not in personal_fields(type(entity)):
            continue
        value = getattr(entity, field.name)
        empty = None if field.default is None else placeholder
        if value is not None and value not in {empty, placeholder}:
            changes[field.name] = empty
            count += 1
    custom = declaration.custom_of(entity.kind) & entity.custom_fields.keys()
    if custom:
        changes["custom_fields"] = {k: v for k, v in entity.custom_fields.items() if k not in custom}
        count += len(custom)
    if not changes:
        return entity, 0
    if isinstance(entity, Lead) and not (
        changes.get("company", entity.company)
        or changes.get("email", entity.email)
        or changes.get("phone", entity.phone)
    ):
        changes["last_name"] = placeholder  # a lead must stay reachable by something; a placeholder will do
    try:
        return attrs.evolve(entity, **changes), count
    except ValidationError as exc:  # pragma: no cover - a host rule refusing the placeholder
        path = f"{entity.kind}[{entity.id}]"
        raise exc.under(path) from None


def _scrub(entity: Entity, values: list[str], placeholder: str) -> tuple[Entity, int]:
    """Replace mentions of the person's values in the other texts of a record about them.

    A deal named after its contact ("Renewal for Ada Lovelace") keeps its name with the mention
    replaced. References (``*_id``) are left alone; a text whose rules refuse the result is kept.
    """
    if not values:
        return entity, 0
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(entity)):
        value = getattr(entity, field.name)
        if field.name == "id" or field.name.endswith("_id") or not isinstance(value, str):
            continue
        scrubbed = _replace(value, values, placeholder)
        if scrubbed != value:
            changes[field.name] = scrubbed
    custom = {
        key: _replace(value, values, placeholder) if isinstance(value, str) else value
        for key, value in entity.custom_fields.items()
    }
    if custom != entity.custom_fields:
        changes["custom_fields"] = custom
    if not changes:
        return entity, 0
    try:
        return attrs.evolve(entity, **changes), len(changes)
    except ValidationError:
        return entity, 0


def _replace(text: str, values: list[str], placeholder: str) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, placeholder)
    return text


def erased_ids(tx: PrivacyTransaction) -> frozenset[str]:
    """The ids of every record erased so far (for audiences: ``build_audience(erased=...)``)."""
    ids: set[str] = set()
    start: str | None = None
    while True:
        entries = tx.state.scan(ERASED_NAMESPACE, start=start, limit=_PAGE)
        fresh = [entry.key for entry in entries if entry.key not in ids]
        ids.update(fresh)
        if len(entries) < _PAGE or not fresh:
            return frozenset(ids)
        start = entries[-1].key  # included again: skipped as seen


def erase_person(
    tx: PrivacyTransaction,
    person: EntityRef | Entity,
    *,
    personal_data: PersonalData | None = None,
    placeholder: str = PLACEHOLDER,
    suppress_identifiers: bool = True,
) -> ErasureReport:
    """Erase a person in the transaction: every record, the audit log, and a suppression entry.

    1. Finds the person's records and the records about them (see :func:`find_person`).
    2. Empties every personal field (and declared personal custom field) of each; where a field may
       not be empty, ``placeholder`` takes its place. Mentions of the person's values in the other
       texts of those records (a deal named after them) are replaced by ``placeholder``. Ids, dates,
       amounts, stages and stage history stay, so metrics computed afterwards are unchanged.
    3. Withdraws every granted consent of the person.
    4. Rewrites every personal value found in the audit log (``tx.redact_audit``); entries keep
       their time, type, record and actor. Values only the log still holds (the email of a lead
       merged into the person's, in the merge's snapshot) are found there and go too.
    5. Puts salted hashes of the emails and phones on the suppression list and records the erased ids
       in ``tx.state`` (namespace ``"privacy.erased"``), then a :class:`PersonErased` event.

    Nothing is committed: call ``tx.commit()``, so all of it happens or none of it does. Erasing
    again finds nothing left and reports ``already_erased``.

    Raises:
        NotFound: If the named record does not exist.
        ValidationError: If ``person`` is not a contact or lead.
    """
    declaration = personal_data or PersonalData()
    found = find_person(tx, person)
    values: set[str] = set()
    emails = {r.email for r in found.people if isinstance(r, Contact | Lead) and r.email}
    phones = {r.phone for r in found.people if isinstance(r, Contact | Lead) and r.phone}
    changed: list[EntityRef] = []
    fields = withdrawn = 0
    now = tx.now()
    for record in found.all:
        values |= declaration.values(record)
    held, held_emails, held_phones = _snapshot_values(tx, found.people)
    values |= held
    emails |= held_emails
    phones |= held_phones
    values.discard(placeholder)
    longest_first = sorted(values, key=lambda v: (-len(v), v))
    for record in found.all:
        new, count = anonymise(record, declaration, placeholder)
        new, mentions = _scrub(new, longest_first, placeholder)
        count += mentions
        if isinstance(new, Consent) and new.status is ConsentStatus.GRANTED and new.subject.id in found.ids:
            new = attrs.evolve(new, status=ConsentStatus.WITHDRAWN, withdrawn_at=max(now, new.captured_at))
            withdrawn += 1
        if new is not record:
            tx.repository(type(record)).update(new)
            changed.append(EntityRef.to(record))
            fields += count
    redacted = _redact(tx, values, placeholder)
    added = suppress(tx, emails=sorted(emails), phones=sorted(phones)) if suppress_identifiers else 0
    newly_marked = 0
    for record in found.people:
        if tx.state.get(ERASED_NAMESPACE, record.id) is None:
            value = {"kind": record.kind, "at": now.isoformat()}
            tx.state.put(ERASED_NAMESPACE, record.id, value, expected_version=None)
            newly_marked += 1
    already = not changed and not redacted and not added and not newly_marked
    if not already:
        tx.record(
            PersonErased(
                entity=found.person, at=now, actor=tx.actor, records=len(changed), audit_entries=redacted
            )
        )
    return ErasureReport(
        person=found.person,
        people=tuple(EntityRef.to(r) for r in found.people),
        changed=tuple(changed),
        fields_erased=fields,
        audit_entries_redacted=redacted,
        suppressed=added,
        consents_withdrawn=withdrawn,
        already_erased=already,
    )


# The personal fields of the people records (contacts, leads), as a snapshot inside an event holds them.
_SNAPSHOT_FIELDS = frozenset(personal_fields(Contact)) | frozenset(personal_fields(Lead))
_ADDRESS_PARTS = ("street", "city", "region", "postal_code")
_MIN_VALUE = 2
_MAX_JSON = 1_000_000


def _snapshot_values(
    tx: PrivacyTransaction, people: tuple[Entity, ...]
) -> tuple[set[str], set[str], set[str]]:
    """Personal values only the audit log still holds: snapshots of records merged into the person's.

    A lead merge deletes the merged leads and keeps their data in the ``records_merged`` event of the
    survivor (as JSON text), so an email only the merged lead had is found there and nowhere else.
    """
    values: set[str] = set()
    emails: set[str] = set()
    phones: set[str] = set()
    for record in people:
        for entry in tx.audit(entity=EntityRef.to(record), limit=100_000):
            for snapshot in _snapshots(event_to_data(entry.event)):
                for name in _SNAPSHOT_FIELDS:
                    value = snapshot.get(name)
                    if isinstance(value, str):
                        values.add(value)
                    elif isinstance(value, dict):
                        values.update(v for k in _ADDRESS_PARTS if isinstance(v := value.get(k), str))
                emails.update(_valid(normalize_email, snapshot.get("email")))
                phones.update(_valid(normalize_phone, snapshot.get("phone")))
    return {v for v in values if len(v) >= _MIN_VALUE}, emails, phones


def _valid(normalise: Any, value: object) -> list[str]:
    """The value normalised, or nothing when it is not one (an earlier erasure's placeholder)."""
    if not isinstance(value, str):
        return []
    try:
        return [normalise(value)]
    except ValidationError:
        return []


def _snapshots(data: Any) -> list[dict[str, Any]]:
    """The dicts inside event data (JSON texts in it parsed) that look like a person's record data."""
    found: list[dict[str, Any]] = []
    todo = [data]
    while todo:
        item = todo.pop()
        if isinstance(item, str) and item[:1] in {"{", "["} and len(item) <= _MAX_JSON:
            try:
                todo.append(json.loads(item))
            except ValueError:
                continue
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, dict):
            if "id" in item and _SNAPSHOT_FIELDS & item.keys():
                found.append(item)
            todo.extend(item.values())
    return found


def _redact(tx: PrivacyTransaction, values: Collection[str], placeholder: str) -> int:
    r"""Rewrite the values out of the audit log.

    Each value also in its JSON-escaped form (a name with an accent written as a ``\u`` escape),
    the way it appears inside a JSON text an event carries (a lead merge's snapshot).
    """
    escaped = {json.dumps(value)[1:-1] for value in values}
    wanted = {value for value in {*values, *escaped} if placeholder not in value and value not in placeholder}
    if not wanted:
        return 0
    return tx.redact_audit(sorted(wanted, key=lambda v: (-len(v), v)), placeholder)
