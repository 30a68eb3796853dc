"""Export (data portability): everything stored about a person as one JSON document (private)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit.entities import Entity, EntityRef
from crmkit.events import event_to_data
from crmkit.privacy._personal import PersonalData, personal_fields
from crmkit.privacy._records import find_person
from crmkit.serialization import to_data

if TYPE_CHECKING:
    from crmkit.privacy._ports import PrivacyTransaction

__all__ = ["EXPORT_FORMAT", "export_person"]

#: The ``format`` of an export document; it changes only when the layout does.
EXPORT_FORMAT = "crmkit.privacy.export/1"
_AUDIT_LIMIT = 100_000


def export_person(
    tx: PrivacyTransaction, person: EntityRef | Entity, *, personal_data: PersonalData | None = None
) -> dict[str, Any]:
    """Everything stored about a person, as one JSON-ready document (GDPR Art. 15 and 20).

    The document holds the person's own records (contact, leads), every record about them
    (deals, activities, tasks, tickets, orders, quotes, feedback, consents), each under its kind and
    sorted by id, and the audit entries of all those records, oldest first. It also names, per
    kind, the fields that hold personal data. Exporting twice gives the same document but for
    ``exported_at``. Nothing is changed.

    Args:
        tx: An open store transaction (any adapter).
        person: The contact or lead the request is about (a record or a reference).
        personal_data: The host's declaration of personal custom fields.

    Returns:
        ``{"format", "person", "exported_at", "personal_fields", "records": {kind: [...]}, "audit": [...]}``,
        every value plain JSON data.

    Raises:
        NotFound: If the named record does not exist.
        ValidationError: If ``person`` is not a contact or lead.
    """
    declaration = personal_data or PersonalData()
    found = find_person(tx, person)
    records: dict[str, list[dict[str, Any]]] = {}
    fields: dict[str, list[str]] = {}
    audit: dict[int, dict[str, Any]] = {}
    for record in found.all:
        records.setdefault(record.kind, []).append(to_data(record))
        fields.setdefault(
            record.kind,
            sorted(
                {
                    *personal_fields(type(record)),
                    *(f"custom_fields.{n}" for n in declaration.custom_of(record.kind)),
                }
            ),
        )
        for entry in tx.audit(entity=EntityRef.to(record), limit=_AUDIT_LIMIT):
            audit[entry.sequence] = {"sequence": entry.sequence, "event": event_to_data(entry.event)}
    return {
        "format": EXPORT_FORMAT,
        "person": {"kind": found.person.kind, "id": found.person.id},
        "exported_at": tx.now().isoformat(),
        "personal_fields": dict(sorted(fields.items())),
        "records": dict(sorted(records.items())),
        "audit": [audit[sequence] for sequence in sorted(audit)],
    }
