"""Domain events: typed facts about what happened to a record, and a small synchronous bus.

Every change that matters is a domain event with a timestamp (from the clock)
and a reference to the record. Pure domain code returns events beside the new
entity values; the host (or the storage unit of work) publishes them, the
workflow engine reacts to them, and the audit log stores them::

    bus = EventBus()
    seen = []
    bus.subscribe(StageChanged, seen.append)
    bus.publish(StageChanged(entity=EntityRef("lead", "l1"), from_stage="new", to_stage="contacted"))

Events are immutable ``attrs`` values and convert to JSON-ready data with
:func:`event_to_data` and back with :func:`event_from_data`; each class has a
stable ``name`` (``"stage_changed"``) stored beside its fields. Other projects
add their own event types with :func:`register_event`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import attrs

from crmkit._validation import Validated, identifier, rules, short_label
from crmkit.clock import now
from crmkit.entities import EntityRef, _new_id  # _new_id: the records' pool of random UUID4 hex ids
from crmkit.errors import ValidationError

__all__ = [
    "EVENT_TYPES",
    "Assigned",
    "DomainEvent",
    "EntityCreated",
    "EntityDeleted",
    "EntityUpdated",
    "EventBus",
    "StageChanged",
    "event_from_data",
    "event_to_data",
    "register_event",
]

E = TypeVar("E", bound="DomainEvent")

_REGISTRY: dict[str, type[DomainEvent]] = {}
#: Every registered event type, by its ``name``.
EVENT_TYPES: Mapping[str, type[DomainEvent]] = MappingProxyType(_REGISTRY)


def _optional_id() -> Any:
    return attrs.field(default=None, metadata=rules(identifier))


@attrs.frozen(kw_only=True)
class DomainEvent(Validated):
    """The fields every domain event has.

    Attributes:
        name: (class attribute) The event type's stable name, such as ``"stage_changed"``.
        entity: The record the event is about.
        at: When it happened; defaults to the current clock and is always timezone-aware.
        actor: The id of the user or system that caused it, if known.
        id: A unique id for the event (a random UUID4 hex string by default).
    """

    name: ClassVar[str] = "domain_event"

    entity: EntityRef
    at: datetime = attrs.field(factory=now)
    actor: str | None = _optional_id()
    id: str = attrs.field(factory=_new_id, metadata=rules(identifier))


def _is_event_type(candidate: object) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, DomainEvent)


def register_event(name: str) -> Callable[[type[E]], type[E]]:
    """Register an event class under a stable name (a class decorator).

    The name is what :func:`event_to_data` writes and :func:`event_from_data`
    reads, so it must not change once events are stored.

    Raises:
        ValidationError: If the name is taken by another class or the class is
            not a :class:`DomainEvent`.
    """
    short_label(name)

    def decorate(cls: type[E]) -> type[E]:
        if not _is_event_type(cls):
            msg = f"{cls!r} is not a DomainEvent subclass"
            raise ValidationError.single("cls", msg)
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            msg = f"event name {name!r} is already used by {existing.__qualname__}"
            raise ValidationError.single("name", msg)
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


@register_event("entity_created")
@attrs.frozen(kw_only=True)
class EntityCreated(DomainEvent):
    """A record was created."""


@register_event("entity_updated")
@attrs.frozen(kw_only=True)
class EntityUpdated(DomainEvent):
    """A record changed.

    Attributes:
        changed: The names of the fields that changed.
    """

    changed: tuple[str, ...] = ()


@register_event("entity_deleted")
@attrs.frozen(kw_only=True)
class EntityDeleted(DomainEvent):
    """A record was deleted."""


@register_event("stage_changed")
@attrs.frozen(kw_only=True)
class StageChanged(DomainEvent):
    """A record moved from one lifecycle stage to another.

    Attributes:
        from_stage: The stage left; ``None`` when the record entered its first stage.
        to_stage: The stage entered.
        transition: The lifecycle transition taken, if any.
        lifecycle: The name of the lifecycle, if any.
    """

    from_stage: str | None = attrs.field(default=None, metadata=rules(short_label))
    to_stage: str = attrs.field(metadata=rules(short_label))
    transition: str | None = attrs.field(default=None, metadata=rules(short_label))
    lifecycle: str | None = attrs.field(default=None, metadata=rules(short_label))


@register_event("assigned")
@attrs.frozen(kw_only=True)
class Assigned(DomainEvent):
    """A record got a new owner (a user or a queue).

    Attributes:
        owner_id: The new owner; ``None`` when the record was unassigned.
        previous_owner_id: The owner before, if any.
        reason: Why: the rule or method that chose the owner, for explainable routing.
    """

    owner_id: str | None = _optional_id()
    previous_owner_id: str | None = _optional_id()
    reason: str | None = None


Handler = Callable[[Any], object]


class EventBus:
    """Deliver events to the handlers subscribed to their type, synchronously and in order.

    A handler subscribed to a base class (such as :class:`DomainEvent`) gets
    every event of its subclasses too. An exception in a handler propagates to
    the publisher and stops delivery of that event: the bus hides no failure.
    """

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: list[tuple[type[DomainEvent], Handler]] = []

    def subscribe(self, event_type: type[E], handler: Callable[[E], object]) -> Callable[[], None]:
        """Call ``handler`` with every published event of ``event_type`` (or a subclass).

        Returns:
            A function that cancels this subscription.
        """
        if not _is_event_type(event_type):
            msg = f"{event_type!r} is not a DomainEvent type"
            raise ValidationError.single("event_type", msg)
        entry: tuple[type[DomainEvent], Handler] = (event_type, handler)
        self._handlers.append(entry)

        def unsubscribe() -> None:
            if entry in self._handlers:
                self._handlers.remove(entry)

        return unsubscribe

    def publish(self, *events: DomainEvent) -> None:
        """Deliver each event, in order, to every matching handler, in subscription order."""
        for event in events:
            for event_type, handler in tuple(self._handlers):
                if isinstance(event, event_type):
                    handler(event)


def event_to_data(event: DomainEvent) -> dict[str, Any]:
    """Return an event as JSON-ready data: ``{"type": name, ...fields}``."""
    from crmkit.serialization import to_data  # noqa: PLC0415 - serialization imports entities; keep events light

    return {"type": type(event).name, **to_data(event)}


def event_from_data(data: Mapping[str, Any]) -> DomainEvent:
    """Rebuild an event from :func:`event_to_data`'s output.

    Raises:
        ValidationError: For an unknown type or bad fields, naming the path.
    """
    from crmkit.serialization import from_data  # noqa: PLC0415 - serialization imports entities; keep events light

    raw: object = data  # callers may pass anything decoded from JSON
    if not isinstance(raw, Mapping):
        msg = f"expected an object, got {type(raw).__name__}"
        raise ValidationError.single("", msg)
    name = data.get("type")
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        msg = f"unknown event type {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        raise ValidationError.single("type", msg)
    fields = {key: value for key, value in data.items() if key != "type"}
    return from_data(cls, fields)
