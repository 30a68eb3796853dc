"""Which fields hold personal data: the entity markers and the host's custom fields (private)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from crmkit.entities import (
    _PERSONAL_KEY,  # the metadata key entities.py marks personal fields with
    ENTITY_TYPES,
    Address,
    Entity,
)
from crmkit.errors import RuleError

__all__ = ["ANY_KIND", "PLACEHOLDER", "PersonalData", "personal_fields"]

#: The key of :attr:`PersonalData.custom_fields` that applies to every record kind.
ANY_KIND = "*"
#: What replaces a personal text that may not be left empty (a ticket's subject, a task's title).
PLACEHOLDER = "[erased]"

_CUSTOM_KEY = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_MIN_VALUE = 2  # the audit log redacts texts of 2 characters or more
_FIELDS: dict[type, tuple[str, ...]] = {}


def personal_fields(entity_class: type[Entity]) -> tuple[str, ...]:
    """The names of the fields of ``entity_class`` marked as personal data, in declaration order.

    >>> from crmkit.entities import Contact
    >>> personal_fields(Contact)
    ('first_name', 'last_name', 'email', 'phone', 'title', 'address')
    """
    found = _FIELDS.get(entity_class)
    if found is None:
        found = _FIELDS[entity_class] = tuple(
            field.name for field in attrs.fields(entity_class) if field.metadata.get(_PERSONAL_KEY)
        )
    return found


def _custom_declaration(value: Any) -> Mapping[str, frozenset[str]]:
    if not isinstance(value, Mapping):
        msg = f"expected a mapping of record kinds to custom field names, got {type(value).__name__}"
        raise RuleError(msg, "custom_fields")
    result: dict[str, frozenset[str]] = {}
    for kind, names in value.items():
        if kind != ANY_KIND and kind not in ENTITY_TYPES:
            known = ", ".join(sorted(ENTITY_TYPES))
            msg = f"{kind!r} is not a record kind; one of {ANY_KIND!r}, {known}"
            raise RuleError(msg, f"custom_fields.{kind}")
        if isinstance(names, str) or not isinstance(names, Iterable):
            msg = f"expected a list of custom field names, got {names!r}"
            raise RuleError(msg, f"custom_fields.{kind}")
        checked = set()
        for index, name in enumerate(names):
            if not isinstance(name, str) or not _CUSTOM_KEY.fullmatch(name):
                msg = f"{name!r} is not a custom field name (1-64 lower-case ASCII letters, digits or _)"
                raise RuleError(msg, f"custom_fields.{kind}[{index}]")
            checked.add(name)
        result[kind] = frozenset(checked)
    return result


@attrs.frozen
class PersonalData:
    """The declaration of what is personal: the marked entity fields plus the host's custom fields.

    Entity fields are marked in :mod:`crmkit.entities` (see :func:`personal_fields`); custom fields
    are the host's, so the host declares which of them are personal, per record kind or for every
    kind (``"*"``)::

        PersonalData({"contact": ["nickname", "birthday"], "*": ["linkedin_url"]})

    Attributes:
        custom_fields: Record kind (or ``"*"``) -> the names of its personal custom fields.

    Raises:
        RuleError: For an unknown kind or a malformed name, with its path.
    """

    custom_fields: Mapping[str, frozenset[str]] = attrs.field(factory=dict, converter=_custom_declaration)

    def custom_of(self, kind: str) -> frozenset[str]:
        """The personal custom field names of one record kind."""
        return self.custom_fields.get(kind, frozenset()) | self.custom_fields.get(ANY_KIND, frozenset())

    def values(self, entity: Entity) -> frozenset[str]:
        """The personal texts one record holds: what erasure must make disappear everywhere.

        Texts shorter than 2 characters and the country of an address are left out: they identify
        nobody and would match unrelated text.
        """
        found: set[str] = set()
        for name in personal_fields(type(entity)):
            found.update(_texts(getattr(entity, name)))
        for name in self.custom_of(entity.kind):
            found.update(_texts(entity.custom_fields.get(name)))
        return frozenset(value for value in found if len(value) >= _MIN_VALUE)

    def holds_personal_data(self, entity: Entity, placeholder: str = PLACEHOLDER) -> bool:
        """Whether any personal field (other than a placeholder) or declared custom field is set."""
        return any(
            getattr(entity, name) not in {None, placeholder} for name in personal_fields(type(entity))
        ) or any(name in entity.custom_fields for name in self.custom_of(entity.kind))

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``{"custom_fields": {kind: [names, sorted]}}``."""
        return {"custom_fields": {kind: sorted(names) for kind, names in sorted(self.custom_fields.items())}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PersonalData:
        """Read the JSON form back.

        Raises:
            RuleError: For anything but ``{"custom_fields": {...}}`` or a bad kind or name.
        """
        if not isinstance(data, Mapping) or set(data) - {"custom_fields"}:
            msg = f"expected an object with only 'custom_fields', got {data!r}"
            raise RuleError(msg)
        return cls(data.get("custom_fields", {}))


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Address):
        return [part for part in (value.street, value.city, value.region, value.postal_code) if part]
    return []
