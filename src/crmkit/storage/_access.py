"""How a store enforces an access context (see :mod:`crmkit.access`): one guard per record type.

The guard turns the policy into the visibility condition that is added to every query (so it runs in
the database, on its indexes), compiled predicates for single records (get, update, delete, add), and
the masking of hidden fields on the way out and their protection on the way in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from crmkit._validation import replace
from crmkit.access import AccessPolicy, Principal, condition_fields
from crmkit.clock import FixedClock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from crmkit.conditions import Condition, Schema
    from crmkit.entities import Entity

__all__ = ["AccessGuard"]

_CUSTOM = "custom_fields."


class AccessGuard:
    """The rights of one principal over one record type."""

    def __init__(
        self, principal: Principal, policy: AccessPolicy, cls: type[Entity], schema: Schema, now: datetime
    ) -> None:
        self.principal = principal
        self.kind = cls.kind
        self._schema = schema
        visible = policy.visible(principal, cls)
        writable = policy.writable(principal, cls)
        #: The validated visibility condition added to every query (None: every record is visible).
        self.scope: Condition | None = None if visible is None else schema.validate(visible)
        clock = FixedClock(now)  # a relative time in a sharing rule counts from the transaction's "now"
        self._visible = _predicate(schema, self.scope, clock)
        self._writable = _predicate(schema, None if writable is None else schema.validate(writable), clock)
        self.hidden = policy.hidden_fields(principal, cls.kind)
        self._hidden_attributes = sorted(name for name in self.hidden if not name.startswith(_CUSTOM))
        self._hidden_custom = sorted(name[len(_CUSTOM) :] for name in self.hidden if name.startswith(_CUSTOM))
        self._defaults = {name: _default(cls, name) for name in self._hidden_attributes}

    def visible(self, entity: Entity) -> bool:
        """Whether the principal may see ``entity``."""
        return self._visible(entity)

    def writable(self, entity: Entity) -> bool:
        """Whether the principal may change ``entity``."""
        return self._writable(entity)

    def hidden_in(self, condition: Condition | None, fields: Iterable[str]) -> str | None:
        """The first hidden field a query reads (in its condition or ordering), if any."""
        if not self.hidden:
            return None
        read = [*(condition_fields(condition) if condition is not None else ()), *fields]
        for name in read:
            if name in self.hidden:
                return str(name)
        return None

    def mask(self, entity: Any) -> Any:
        """``entity`` with its hidden fields emptied."""
        if not self.hidden:
            return entity
        defaults = self._defaults
        changes: dict[str, Any] = {
            name: empty for name, empty in defaults.items() if getattr(entity, name) != empty
        }
        custom = entity.custom_fields
        if self._hidden_custom and any(key in custom for key in self._hidden_custom):
            changes["custom_fields"] = {k: v for k, v in custom.items() if k not in self._hidden_custom}
        return replace(entity, **changes) if changes else entity

    def restore_hidden(self, entity: Any, stored: Any) -> tuple[Any, str | None]:
        """``entity`` with the stored values of its hidden fields, or the hidden field it tried to set.

        A record read through this guard has its hidden fields empty; writing it back must not erase
        them, and setting one is refused.
        """
        if not self.hidden:
            return entity, None
        changes: dict[str, Any] = {}
        for name in self._hidden_attributes:
            given, kept = getattr(entity, name), getattr(stored, name)
            if given not in (self._defaults[name], kept):
                return entity, name
            if given != kept:
                changes[name] = kept
        if self._hidden_custom:
            custom = dict(entity.custom_fields)
            for key in self._hidden_custom:
                if key in custom and custom[key] != stored.custom_fields.get(key):
                    return entity, f"{_CUSTOM}{key}"
                custom.pop(key, None)
                if key in stored.custom_fields:
                    custom[key] = stored.custom_fields[key]
            if custom != entity.custom_fields:
                changes["custom_fields"] = custom
        return (replace(entity, **changes) if changes else entity), None

    def sets_hidden(self, entity: Any) -> str | None:
        """The hidden field a new record sets (it may only be left empty), if any."""
        for name in self._hidden_attributes:
            if getattr(entity, name) != self._defaults[name]:
                return name
        for key in self._hidden_custom:
            if key in entity.custom_fields:
                return f"{_CUSTOM}{key}"
        return None


def _predicate(schema: Schema, condition: Condition | None, clock: FixedClock) -> Callable[[Any], bool]:
    if condition is None:
        return _always
    return schema.compile(condition, clock=clock)


def _always(_: Any) -> bool:
    return True


def _default(cls: type[Entity], name: str) -> Any:
    field = attrs.fields_dict(cls)[name]
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type] # attrs.Factory is a class
        return default.factory()
    return None if default is attrs.NOTHING else default
