"""The storage contract: stores, units of work, repositories, the audit log.

The public face is :class:`Store`, :class:`Transaction` and :class:`Repository`.
Everything a repository promises (versions, ``updated_at``, audit events,
bulk-import reports, cursor pagination) is implemented here once; an adapter
only supplies a small set of primitives by subclassing :class:`Transaction`
(the ``_``-prefixed abstract methods) and :class:`Store`, and proves itself
with the conformance suite in :mod:`crmkit.storage.testing`.
"""

from __future__ import annotations

import abc
import base64
import copy
import functools
import json
import re
import threading
import types
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    NoReturn,
    ParamSpec,
    Self,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

import attrs

from crmkit import clock as _clock
from crmkit._validation import replace, storable, trusted_builder, trusted_replacer
from crmkit.access import AccessDenied, AccessPolicy, Principal, Role
from crmkit.conditions import AllOf, Condition, FieldKind, Schema
from crmkit.entities import ENTITY_TYPES, Entity, EntityRef, _new_id  # the pool of random UUID4 hex ids
from crmkit.errors import (
    ConflictError,
    CrmError,
    NotFound,
    PermissionDenied,
    Problem,
    RuleError,
    StorageError,
    ValidationError,
)
from crmkit.events import EVENT_TYPES, DomainEvent, EntityCreated, EntityDeleted, EntityUpdated
from crmkit.serialization import from_data
from crmkit.storage._access import AccessGuard
from crmkit.storage._state import StateEntry, StateMap

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import TracebackType

    from crmkit.clock import Clock

__all__ = [
    "AuditEntry",
    "ImportReport",
    "OrderBy",
    "Page",
    "RejectedRow",
    "Repository",
    "Store",
    "Transaction",
]

E = TypeVar("E", bound=Entity)
P = ParamSpec("P")
R = TypeVar("R")


def _translated(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """Run a repository or transaction method with the store's driver-error translation."""

    @functools.wraps(method)
    def wrapper(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._store._translate():
            return method(self, *args, **kwargs)

    return wrapper


#: An ordering: field names, each optionally ``("field", "desc")``.
OrderBy = Sequence[str | tuple[str, Literal["asc", "desc"]]]

_SCHEMAS: dict[type, Schema] = {}
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_MAX_BATCH = 10_000


def schema_of(entity_class: type[Entity]) -> Schema:
    """The condition schema of an entity class (cached): the fields queries may use."""
    schema = _SCHEMAS.get(entity_class)
    if schema is None:
        schema = _SCHEMAS[entity_class] = Schema.for_entity(entity_class)
    return schema


def _is_entity_class(candidate: object) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, Entity)


def entity_class_of(kind_or_class: str | type[E]) -> type[E]:
    """Resolve ``"lead"`` or ``Lead`` to the entity class; RuleError for anything else."""
    if isinstance(kind_or_class, str):
        cls = ENTITY_TYPES.get(kind_or_class)
        if cls is None:
            msg = f"unknown entity kind {kind_or_class!r}; known: {', '.join(sorted(ENTITY_TYPES))}"
            raise RuleError(msg)
        return cls  # type: ignore[return-value]
    if not _is_entity_class(kind_or_class):
        msg = f"expected an entity class or kind, got {kind_or_class!r}"
        raise RuleError(msg)
    return kind_or_class


@attrs.frozen
class Page(Generic[E]):
    """One page of a query.

    Attributes:
        items: The entities on this page, in order.
        next_cursor: Pass it as ``after=`` to get the next page; ``None`` on the last page.
    """

    items: tuple[E, ...]
    next_cursor: str | None


@attrs.frozen
class RejectedRow:
    """A row a bulk import did not store, and why.

    Attributes:
        index: The row's position in the batch (0-based).
        error: The error: a ``ValidationError`` naming the fields, a ``ConflictError``, or a
            ``PermissionDenied`` when the store's access context may not add the row.
    """

    index: int
    error: CrmError


@attrs.frozen
class ImportReport(Generic[E]):
    """What a bulk import did.

    Attributes:
        stored: The entities stored, as stored (version 1), in batch order.
        rejected: The rows not stored, each with its index and error.
    """

    stored: tuple[E, ...]
    rejected: tuple[RejectedRow, ...]


@attrs.frozen
class AuditEntry:
    """One event in the audit log.

    Attributes:
        sequence: Its position in the log (increasing; gaps are possible).
        event: The domain event.
    """

    sequence: int
    event: DomainEvent


@attrs.frozen
class SortKey:
    """One resolved ordering key: a declared field and its direction."""

    field: str
    descending: bool


def resolve_order(schema: Schema, order_by: OrderBy) -> tuple[SortKey, ...]:
    """Check an ordering against the schema; the id is always the last tiebreaker."""
    keys: list[SortKey] = []
    for index, item in enumerate(order_by):
        name, direction = (item, "asc") if isinstance(item, str) else item
        if direction not in {"asc", "desc"}:
            msg = f"direction must be 'asc' or 'desc', got {direction!r}"
            raise RuleError(msg, f"order_by[{index}]")
        spec = schema.fields.get(name)
        if spec is None or spec.kind is FieldKind.TEXT_SET:
            msg = f"cannot order by {name!r}; orderable fields: {', '.join(sorted(_orderable(schema)))}"
            raise RuleError(msg, f"order_by[{index}]")
        if name != "id":
            keys.append(SortKey(name, direction == "desc"))
    keys.append(SortKey("id", descending=False))
    return tuple(keys)


def _orderable(schema: Schema) -> list[str]:
    return [name for name, spec in schema.fields.items() if spec.kind is not FieldKind.TEXT_SET]


def _cursor_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


_CURSOR_PARSERS: dict[str, Callable[[str], Any]] = {
    "t": datetime.fromisoformat,
    "d": date.fromisoformat,
    "n": Decimal,
}


def _cursor_parse(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        return _CURSOR_PARSERS[tag](text)
    return value


def encode_cursor(
    keys: Sequence[SortKey], values: Sequence[Any], *, kind: str = "", tenant: str = ""
) -> str:
    """An opaque cursor: the tenant and kind it was issued for, its ordering and the last row's key values."""
    payload = {
        "s": tenant,
        "k": kind,
        "o": [[key.field, key.descending] for key in keys],
        "v": [_cursor_value(v) for v in values],
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str, keys: Sequence[SortKey], *, kind: str = "", tenant: str = ""
) -> tuple[Any, ...]:
    """The key values of a cursor made by :func:`encode_cursor` for the same tenant, kind and ordering."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        order = [(field, bool(descending)) for field, descending in payload["o"]]
        values = tuple(_cursor_parse(value) for value in payload["v"])
        scope, issued_for = payload["s"], payload["k"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationError.single("after", "not a cursor from this store") from exc
    if scope != tenant:
        raise ValidationError.single("after", "the cursor was issued in another tenant")
    if issued_for != kind:
        raise ValidationError.single("after", f"the cursor belongs to {issued_for!r} records, not {kind!r}")
    if order != [(key.field, key.descending) for key in keys] or len(values) != len(keys):
        raise ValidationError.single("after", "the cursor belongs to a query with another ordering")
    return values


def sort_values(schema: Schema, keys: Sequence[SortKey], entity: Entity) -> tuple[Any, ...]:
    """The values of the ordering keys for one entity."""
    return tuple(schema.read(key.field, entity) for key in keys)


def changed_fields(old: Entity, new: Entity) -> tuple[str, ...]:
    """The names of the fields whose values differ (bookkeeping fields left out)."""
    skip = {"version", "updated_at"}
    return tuple(
        field.name
        for field in attrs.fields(type(new))
        if field.name not in skip and getattr(old, field.name) != getattr(new, field.name)
    )


class Repository(Generic[E]):
    """The records of one entity type inside a transaction.

    Get one with ``tx.repository(Lead)`` or ``tx[Lead]``. Every write checks
    versions (optimistic concurrency), stamps ``updated_at`` from the store's
    clock, and appends its domain event to the audit log in the same transaction.
    """

    __slots__ = ("_cls", "_first_version", "_guard", "_kind", "_schema", "_store", "_tx")

    def __init__(self, tx: Transaction, entity_class: type[E]) -> None:
        self._tx = tx
        self._store = tx._store
        self._cls = entity_class
        self._kind = entity_class.kind
        self._first_version = trusted_replacer(entity_class, ("version",))
        self._schema = schema_of(entity_class)
        self._guard = tx._guard(entity_class, self._schema)

    @property
    def entity_class(self) -> type[E]:
        """The entity class this repository holds."""
        return self._cls

    @property
    def schema(self) -> Schema:
        """The fields queries and orderings may use."""
        return self._schema

    def _check_type(self, entity: object) -> E:
        if type(entity) is not self._cls:
            msg = f"expected a {self._cls.__name__}, got {type(entity).__name__}"
            raise ValidationError.single("", msg)
        return entity

    @_translated
    def add(self, entity: E) -> E:
        """Store a new entity; return it as stored (version 1).

        Raises:
            ConflictError: If a record with that id exists, or the entity was
                stored before (its version is not 0).
        """
        self._tx._require_open()
        stored = self._prepare_new(self._check_type(entity))
        self._check_new(stored)
        self._tx._insert_created(self._cls, [stored])
        return stored

    def _check_new(self, entity: E) -> None:
        guard = self._guard
        if guard is None:
            return
        if not guard.writable(entity):
            self._deny("add", entity.id, f"a {guard.principal.role} may not add this record")
        hidden = guard.sets_hidden(entity)
        if hidden is not None:
            self._deny("add", entity.id, f"the field {hidden!r} is hidden from a {guard.principal.role}")

    def _deny(self, action: str, id: str | None, reason: str) -> NoReturn:  # noqa: A002 - "id" is the CRM term
        """Write the denial to the audit log (it is kept even if the transaction is not) and raise."""
        self._tx._deny(action, self._kind, id, reason)

    def _prepare_new(self, entity: E) -> E:
        if entity.version != 0:
            msg = (
                f"{self._kind} {entity.id!r} has version {entity.version}: it was stored before; use update()"
            )
            raise ConflictError(msg)
        # Trusted: 1 is what the version field's check returns unchanged, and no rule reads it.
        stored: E = self._first_version(entity, 1)
        return stored

    @_translated
    def get(self, id: str) -> E:  # noqa: A002 - "id" is the CRM term
        """Return the entity with this id.

        Raises:
            NotFound: If there is none.
        """
        self._tx._require_open()
        entity = self._tx._fetch_one(self._cls, id)
        guard = self._guard
        if entity is None or (guard is not None and not guard.visible(entity)):
            raise NotFound(self._kind, id)  # not visible: as if it did not exist
        return entity if guard is None else guard.mask(entity)

    @_translated
    def get_many(self, ids: Iterable[str]) -> list[E]:
        """Return the entities with these ids, in the order given.

        Raises:
            NotFound: For the first id that has no record.
        """
        self._tx._require_open()
        wanted = list(ids)
        found: dict[str, E] = {}
        for start in range(0, len(wanted), _MAX_BATCH):
            found.update(self._tx._fetch(self._cls, list(dict.fromkeys(wanted[start : start + _MAX_BATCH]))))
        guard = self._guard
        for id_ in wanted:
            if id_ not in found or (guard is not None and not guard.visible(found[id_])):
                raise NotFound(self._kind, id_)
        if guard is not None:
            return [guard.mask(found[id_]) for id_ in wanted]
        return [found[id_] for id_ in wanted]

    @_translated
    def update(self, entity: E) -> E:
        """Store a changed entity; return it as stored (version + 1, ``updated_at`` now).

        Raises:
            NotFound: If it was never stored (or was deleted).
            ConflictError: If the stored version is not the entity's version:
                someone else wrote it since it was read; nothing is changed.
        """
        self._tx._require_open()
        self._check_type(entity)
        current = self._current(entity.id)
        if current.version != entity.version:
            msg = (
                f"{self._kind} {entity.id!r} is at version {current.version}, "
                f"the update is based on version {entity.version}"
            )
            raise ConflictError(msg)
        guard = self._guard
        if guard is not None:
            if not guard.writable(current):
                self._deny("update", entity.id, f"a {guard.principal.role} may not change this record")
            entity, hidden = guard.restore_hidden(entity, current)
            if hidden is not None:
                reason = f"the field {hidden!r} is hidden from a {guard.principal.role}"
                self._deny("update", entity.id, reason)
        now = max(self._tx.now(), entity.created_at)
        stored = replace(entity, version=entity.version + 1, updated_at=now)
        if not self._tx._update(self._cls, stored, entity.version):
            msg = f"{self._kind} {entity.id!r} changed while it was being updated"
            raise ConflictError(msg)
        event = EntityUpdated(
            entity=EntityRef.to(stored), at=now, actor=self._tx.actor, changed=changed_fields(current, stored)
        )
        self._tx._append([event])
        return stored if guard is None else guard.mask(stored)

    def _current(self, id: str) -> E:  # noqa: A002 - "id" is the CRM term
        """The stored record, unmasked; NotFound when it is missing or not visible."""
        entity = self._tx._fetch(self._cls, [id]).get(id)
        if entity is None or (self._guard is not None and not self._guard.visible(entity)):
            raise NotFound(self._kind, id)
        return entity

    @_translated
    def delete(self, entity: E) -> None:
        """Delete a stored entity (the version must be current).

        Raises:
            NotFound: If there is no such record.
            ConflictError: If the stored version is not the entity's version.
        """
        self._tx._require_open()
        self._check_type(entity)
        current = self._current(entity.id)
        if current.version != entity.version:
            msg = f"{self._kind} {entity.id!r} is at version {current.version}, not {entity.version}"
            raise ConflictError(msg)
        guard = self._guard
        if guard is not None and not guard.writable(current):
            self._deny("delete", entity.id, f"a {guard.principal.role} may not delete this record")
        if not self._tx._delete(self._cls, entity.id, entity.version):
            msg = f"{self._kind} {entity.id!r} changed while it was being deleted"
            raise ConflictError(msg)
        self._tx._append(
            [EntityDeleted(entity=EntityRef.to(entity), at=self._tx.now(), actor=self._tx.actor)]
        )

    @_translated
    def query(
        self,
        where: Condition | Mapping[str, Any] | None = None,
        *,
        order_by: OrderBy = (),
        limit: int = 100,
        after: str | None = None,
    ) -> Page[E]:
        """Return one page of the entities for which ``where`` holds.

        Args:
            where: A condition (or its JSON form) over the entity's declared
                fields; all entities when ``None``. Adapters evaluate it in the
                database where they can.
            order_by: Field names, or ``(field, "desc")``; the id breaks ties.
            limit: The page size (1 to 10,000).
            after: The ``next_cursor`` of the previous page.

        Raises:
            RuleError: For a condition or ordering that does not fit the entity.
            ValidationError: For a bad limit or a cursor from another query.
        """
        self._tx._require_open()
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_BATCH:
            msg = f"limit must be an integer from 1 to {_MAX_BATCH}, got {limit!r}"
            raise ValidationError.single("limit", msg)
        condition = self._schema.validate(where) if where is not None else None
        keys = resolve_order(self._schema, order_by)
        tenant = self._tx.tenant
        start = decode_cursor(after, keys, kind=self._kind, tenant=tenant) if after is not None else None
        condition = self._scoped("query", condition, keys)
        items = list(self._tx._select(self._cls, condition, keys, start, limit + 1))
        more = len(items) > limit
        items = items[:limit]
        last = sort_values(self._schema, keys, items[-1]) if more else None
        cursor = None if last is None else encode_cursor(keys, last, kind=self._kind, tenant=tenant)
        if self._guard is not None:
            items = [self._guard.mask(item) for item in items]
        return Page(tuple(items), cursor)

    def _scoped(
        self, action: str, condition: Condition | None, keys: Sequence[SortKey] = ()
    ) -> Condition | None:
        """The condition with the access context's visibility added (refused if it reads a hidden field)."""
        guard = self._guard
        if guard is None:
            return condition
        hidden = guard.hidden_in(condition, (key.field for key in keys))
        if hidden is not None:
            self._deny(action, None, f"the field {hidden!r} is hidden from a {guard.principal.role}")
        if guard.scope is None:
            return condition
        return guard.scope if condition is None else AllOf([condition, guard.scope])

    def stream(
        self,
        where: Condition | Mapping[str, Any] | None = None,
        *,
        order_by: OrderBy = (),
        batch_size: int = 1_000,
    ) -> Iterator[E]:
        """Yield every entity for which ``where`` holds, in order, fetching ``batch_size`` at a time.

        Memory stays flat however many rows match: pages are fetched by
        cursor, so the transaction is never asked for more than one batch.
        """
        after: str | None = None
        while True:
            page = self.query(where, order_by=order_by, limit=batch_size, after=after)
            yield from page.items
            if page.next_cursor is None:
                return
            after = page.next_cursor

    @_translated
    def count(self, where: Condition | Mapping[str, Any] | None = None) -> int:
        """Count the entities for which ``where`` holds."""
        self._tx._require_open()
        condition = self._schema.validate(where) if where is not None else None
        return self._tx._count(self._cls, self._scoped("count", condition))

    @_translated
    def bulk_add(self, rows: Iterable[E | Mapping[str, Any]], *, strict: bool = False) -> ImportReport[E]:
        """Store many new entities in this transaction, as fast as the adapter allows.

        Rows may be entities or their JSON-ready data (validated here). A row
        that fails validation, has a stored version, or repeats an id (within
        the batch or in the store) is reported with its index and error and
        not stored; no row is ever stored in part.

        Args:
            rows: The entities or data rows.
            strict: When true, store nothing if any row is rejected, and raise.

        Returns:
            The stored entities and the rejected rows.

        Raises:
            ValidationError: In strict mode, with every rejected row's problems
                under its index (``[3].email``); nothing was stored.
        """
        self._tx._require_open()
        accepted, rejected = self._screen(rows)
        accepted = self._without_stored_ids(accepted, rejected)
        rejected.sort(key=lambda row: row.index)
        if strict and rejected:
            raise _strict_error(rejected)
        entities = [entity for _, entity in accepted]
        if entities:
            self._tx._insert_created(self._cls, entities)
        return ImportReport(tuple(entities), tuple(rejected))

    def _screen(self, rows: Iterable[E | Mapping[str, Any]]) -> tuple[list[tuple[int, E]], list[RejectedRow]]:
        """Validate rows one by one: the new entities (version 1) with their index, and the rejects."""
        accepted: list[tuple[int, E]] = []
        rejected: list[RejectedRow] = []
        seen: set[str] = set()
        for index, row in enumerate(rows):
            try:
                entity = self._check_type(row) if isinstance(row, Entity) else from_data(self._cls, row)
                stored = self._prepare_new(entity)
                self._check_new(stored)
            except (ValidationError, ConflictError, PermissionDenied) as error:
                rejected.append(RejectedRow(index, error))
                continue
            if entity.id in seen:
                rejected.append(
                    RejectedRow(index, ConflictError(f"id {entity.id!r} appears twice in the batch"))
                )
                continue
            seen.add(entity.id)
            accepted.append((index, stored))
        return accepted, rejected

    def _without_stored_ids(
        self, accepted: list[tuple[int, E]], rejected: list[RejectedRow]
    ) -> list[tuple[int, E]]:
        """Move the rows whose id is already stored from ``accepted`` to ``rejected``."""
        existing: set[str] = set()
        for start in range(0, len(accepted), _MAX_BATCH):
            chunk = [entity.id for _, entity in accepted[start : start + _MAX_BATCH]]
            existing.update(self._tx._existing_ids(self._cls, chunk))
        if not existing:
            return accepted
        for index, entity in accepted:
            if entity.id in existing:
                rejected.append(
                    RejectedRow(index, ConflictError(f"{self._kind} {entity.id!r} already exists"))
                )
        return [(index, entity) for index, entity in accepted if entity.id not in existing]


def redact_data(data: Any, values: Sequence[str], placeholder: str) -> Any:
    """JSON data with every occurrence of ``values`` inside its texts (keys included) replaced."""
    if isinstance(data, str):
        for value in values:
            if value in data:
                data = data.replace(value, placeholder)
        return data
    if isinstance(data, list):
        return [redact_data(item, values, placeholder) for item in data]
    if isinstance(data, dict):
        return {
            redact_data(key, values, placeholder): redact_data(item, values, placeholder)
            for key, item in data.items()
        }
    return data


def redact_event_data(data: Any, values: Sequence[str], placeholder: str) -> Any:
    """An audit event's document with ``values`` replaced in its texts, as :func:`redact_data` does.

    What the entry is stays as it is: its type, time and id, its record and its actor. So do the
    fields its event class declares as something other than text (times, numbers, enum labels,
    references): rewriting a value inside those would leave an entry that no longer reads back.
    Every text field, with the texts inside its lists and objects, is redacted.
    """
    if not isinstance(data, dict):
        return redact_data(data, values, placeholder)
    kind = data.get("type")
    textual = _text_fields(EVENT_TYPES.get(kind) if isinstance(kind, str) else None)
    return {
        key: redact_data(item, values, placeholder)
        if (key not in _EVENT_IDENTITY if textual is None else key in textual)
        else item
        for key, item in data.items()
    }


#: The keys of every event document that identify the entry (never redacted).
_EVENT_IDENTITY = frozenset({"type", "at", "id", "entity", "actor"})
_TEXT_FIELDS: dict[type, frozenset[str]] = {}


def _text_fields(cls: type[DomainEvent] | None) -> frozenset[str] | None:
    """The fields of an event class that hold text (``None`` for an unknown event type)."""
    if cls is None:
        return None
    found = _TEXT_FIELDS.get(cls)
    if found is None:
        fields = attrs.fields(attrs.resolve_types(cls))
        found = _TEXT_FIELDS[cls] = frozenset(
            field.name for field in fields if field.name not in _EVENT_IDENTITY and _holds_text(field.type)
        )
    return found


def _holds_text(annotation: Any) -> bool:
    """Whether values of this declared type are or hold free text: ``str``, ``Any``, collections of them."""
    if annotation is str or annotation is Any:
        return True
    if get_origin(annotation) in _CONTAINERS:
        return any(_holds_text(arg) for arg in get_args(annotation) if arg is not Ellipsis)
    return False


_CONTAINERS = (Union, types.UnionType, tuple, list, frozenset, set, dict, Mapping, Sequence)


def search_text(value: str) -> str:
    """The longest part of ``value`` that appears as it is in JSON text (for a database pre-filter).

    JSON escapes quotes, backslashes and control characters; every other character is written as
    it is by crmkit's encoder and by PostgreSQL's ``jsonb`` output.
    """
    parts = re.split(r'["\\\x00-\x1f]', value)
    return max(parts, key=len)


def _created_events(kind: str, entities: Sequence[Entity], actor: str | None) -> list[EntityCreated]:
    """The audit events of newly stored records, built without re-running their rules.

    Every value passed its rules already: ``kind`` is a repository's, each id and time is a validated
    record's, the actor was checked when the transaction began, and event ids are fresh UUID4 hex.
    """
    make_ref, make_event = trusted_builder(EntityRef), trusted_builder(EntityCreated)
    if make_ref is None or make_event is None:  # pragma: no cover - both are plain validated classes
        return [EntityCreated(entity=EntityRef(kind, e.id), at=e.updated_at, actor=actor) for e in entities]
    events = []
    for e in entities:
        ref = make_ref({"kind": kind, "id": e.id})
        events.append(make_event({"entity": ref, "at": e.updated_at, "actor": actor, "id": _new_id()}))
    return events


def _strict_error(rejected: list[RejectedRow]) -> ValidationError:
    """One error holding every rejected row's problems, each under the row's index."""
    problems: list[Problem] = []
    for row in rejected:
        if isinstance(row.error, ValidationError):
            problems.extend(problem.under(row.index) for problem in row.error.problems)
        else:
            problems.append(Problem(f"[{row.index}]", str(row.error)))
    return ValidationError(problems)


class Transaction(abc.ABC):
    """A unit of work: everything done through it is committed together or not at all.

    Use it as a context manager; it rolls back on leaving unless
    :meth:`commit` was called, and on any exception::

        with store.transaction(actor="u-42") as tx:
            tx[Lead].add(lead)
            tx.commit()

    Adapters subclass it and implement the ``_``-prefixed primitives.
    """

    def __init__(self, store: Store, actor: str | None) -> None:
        self._store = store
        self.actor = actor
        #: The tenant this transaction is confined to.
        self.tenant = store.tenant
        self._state: Literal["new", "open", "committed", "rolled_back"] = "new"
        self._repositories: dict[type, Repository[Any]] = {}
        self._state_map: StateMap | None = None
        self._denials: list[DomainEvent] = []  # access denials, kept even if the transaction is not

    # -- public -------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._state != "new":
            msg = "a transaction can be entered once"
            raise StorageError(msg)
        with self._store._translate():
            self._begin()
        self._state = "open"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state == "open":
            self.rollback()

    def commit(self) -> None:
        """Make everything done in this transaction permanent."""
        self._require_open()
        with self._store._translate():
            self._commit()
        self._state = "committed"

    def rollback(self) -> None:
        """Undo everything done in this transaction (also done on leaving without commit)."""
        self._require_open()
        self._state = "rolled_back"
        with self._store._translate():
            self._rollback()
        if self._denials:
            self._keep_denials()

    def _keep_denials(self) -> None:
        """Write the access denials of a transaction that was rolled back in one of their own."""
        denials, self._denials = self._denials, []
        with self._store._unguarded().transaction(actor=self.actor) as tx:
            tx._append(denials)
            tx.commit()

    def _guard(self, cls: type[Entity], schema: Schema) -> AccessGuard | None:
        access = self._store._access
        if access is None:
            return None
        principal, policy = access
        return AccessGuard(principal, policy, cls, schema, self.now())

    def _deny(self, action: str, kind: str, id: str | None, reason: str) -> NoReturn:  # noqa: A002 - "id" is the CRM term
        """Record an access denial in the audit log (kept even if this transaction is not) and raise."""
        access = self._store._access
        user = access[0].user_id if access is not None else (self.actor or "unknown")
        # About the record refused; about the user when no one record was (a query, the whole log).
        subject = EntityRef(kind, id) if id is not None and kind in ENTITY_TYPES else EntityRef("user", user)
        event = AccessDenied(entity=subject, actor=user, action=action, reason=reason, at=self.now())
        self._append([event])
        self._denials.append(event)
        raise PermissionDenied(action, kind, id, reason)

    def repository(self, entity_class: type[E] | str) -> Repository[E]:
        """The repository of one entity type (a class such as ``Lead``, or its kind ``"lead"``)."""
        cls = entity_class_of(entity_class)
        repository = self._repositories.get(cls)
        if repository is None:
            repository = self._repositories[cls] = self._store._repository(self, cls)
        return repository

    def __getitem__(self, entity_class: type[E]) -> Repository[E]:
        return self.repository(entity_class)

    @property
    def state(self) -> StateMap:
        """Keyed JSON values with versions (routing turns, scheduled steps), changed with this transaction."""
        state = self._state_map
        if state is None:
            state = self._state_map = StateMap(self)
        return state

    def now(self) -> datetime:
        """The current time of the store's clock."""
        return self._store.clock.now()

    @_translated
    def record(self, *events: DomainEvent) -> None:
        """Append domain events (a stage change, an assignment, ...) to the audit log."""
        self._require_open()
        given: tuple[object, ...] = events  # callers may pass anything
        for index, event in enumerate(given):
            if not isinstance(event, DomainEvent):
                msg = f"expected a DomainEvent, got {type(event).__name__}"
                msg_0 = f"[{index}]"
                raise ValidationError.single(msg_0, msg)
        self._append(list(events))

    @_translated
    def audit(
        self,
        *,
        entity: EntityRef | Entity | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1_000,
    ) -> list[AuditEntry]:
        """Read the audit log, oldest first: optionally one entity's events and a time range.

        Args:
            entity: Only this record's events (a reference or the entity itself).
            since: Only events at or after this time.
            until: Only events before this time.
            limit: At most this many entries.
        """
        self._require_open()
        ref = EntityRef.to(entity) if isinstance(entity, Entity) else entity
        self._check_audit_access(ref)
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and (not isinstance(moment, datetime) or moment.utcoffset() is None):
                raise ValidationError.single(name, "expected a timezone-aware datetime")
        return self._audit(ref, since, until, limit)

    @_translated
    def redact_audit(self, values: Collection[str], placeholder: str = "[erased]") -> int:
        """Rewrite personal values out of this tenant's audit log; return how many entries changed.

        Every text in an entry's event that contains one of ``values`` has each occurrence replaced
        by ``placeholder``; the entry keeps its place, time, type, record and actor, so the log still
        says what happened, and when, without saying to whom. This is the one change the audit log
        allows (the databases refuse any other update), made for erasure under the GDPR or CCPA.

        Args:
            values: The personal values to remove (each at least 2 characters: an email, a name,
                a phone number, ...).
            placeholder: What replaces them.

        Raises:
            ValidationError: For values that are not text of at least 2 characters.
        """
        self._require_open()
        access = self._store._access
        if access is not None and access[0].role is not Role.ADMIN:
            self._deny("redact", "audit", None, "only an admin redacts the audit log")
        given: object = values
        if isinstance(given, str) or not isinstance(given, Collection):
            raise ValidationError.single("values", "expected a collection of texts, not one text")
        wanted = sorted({value for value in values if isinstance(value, str)})
        shortest = 2
        if len(wanted) != len(set(values)) or any(len(v) < shortest or not storable(v) for v in wanted):
            msg = "every value must be storable text of at least 2 characters"
            raise ValidationError.single("values", msg)
        text: object = placeholder
        if not isinstance(text, str) or not storable(placeholder) or any(v in placeholder for v in wanted):
            msg = "expected storable text containing none of the values"
            raise ValidationError.single("placeholder", msg)
        if not wanted:
            return 0
        return self._redact_audit(tuple(wanted), placeholder)

    def rfm_rows(
        self, as_of: datetime, *, currency: str, customer: str, statuses: tuple[str, ...]
    ) -> list[tuple[str, int, int, int, int, int, int, int]]:
        """This tenant's RFM rows of its orders, computed where they are stored.

        What :func:`crmkit.segmentation.rfm_scores_in_store` reads (use that: it checks the
        arguments and returns scores): per customer with an order in ``currency`` with one of
        ``statuses`` up to ``as_of``, ``(customer_id, recency, frequency, monetary in minor units,
        tenure, r, f, m)``, sorted by customer id. SQL stores run one query; others, and a transaction
        whose access policy hides orders or their fields, compute the same rows from the orders the
        repository returns.
        """
        from crmkit.storage._analytics import rfm_rows  # noqa: PLC0415 - _analytics builds on this module

        return rfm_rows(self, as_of, currency=currency, customer=customer, statuses=statuses)

    def _check_audit_access(self, ref: EntityRef | None) -> None:
        """Under an access context, only an admin reads the whole log; others one visible record's."""
        access = self._store._access
        if access is None or access[0].role is Role.ADMIN:
            return
        if ref is None:
            self._deny("audit", "audit", None, "only an admin reads the whole audit log")
        cls: type[Entity] = entity_class_of(ref.kind)
        try:
            self.repository(cls).get(ref.id)
        except NotFound:
            self._deny("audit", ref.kind, ref.id, "the record is not visible")

    # -- primitives for adapters --------------------------------------------------------------

    def _require_open(self) -> None:
        if self._state != "open":
            msg = f"the transaction is {self._state.replace('_', ' ')}; start a new one"
            raise StorageError(msg)

    @abc.abstractmethod
    def _begin(self) -> None:
        """Start the unit of work."""

    @abc.abstractmethod
    def _commit(self) -> None:
        """Make the unit of work permanent."""

    @abc.abstractmethod
    def _rollback(self) -> None:
        """Undo the unit of work."""

    @abc.abstractmethod
    def _insert(self, cls: type[E], entities: Sequence[E]) -> None:
        """Insert new entities, all or none; raise ``ConflictError`` if one's id is stored already."""

    @abc.abstractmethod
    def _fetch(self, cls: type[E], ids: Sequence[str]) -> dict[str, E]:
        """Return the stored entities among ``ids``, by id."""

    def _fetch_one(self, cls: type[E], id: str) -> E | None:  # noqa: A002 - "id" is the CRM term
        """The stored entity with this id, or None (adapters may answer it faster than ``_fetch``)."""
        return self._fetch(cls, [id]).get(id)

    @abc.abstractmethod
    def _existing_ids(self, cls: type[Entity], ids: Sequence[str]) -> set[str]:
        """Return which of ``ids`` are stored."""

    @abc.abstractmethod
    def _update(self, cls: type[E], entity: E, expected_version: int) -> bool:
        """Replace the stored entity if it is at ``expected_version``; return whether it was."""

    @abc.abstractmethod
    def _delete(self, cls: type[Entity], id: str, expected_version: int) -> bool:  # noqa: A002
        """Delete the stored entity if it is at ``expected_version``; return whether it was."""

    @abc.abstractmethod
    def _select(
        self,
        cls: type[E],
        condition: Condition | None,
        keys: Sequence[SortKey],
        after: Sequence[Any] | None,
        limit: int,
    ) -> Iterable[E]:
        """Return up to ``limit`` entities where ``condition`` holds, ordered by ``keys``.

        Only rows strictly after the key values ``after`` (see :func:`sort_values`) count.
        """

    @abc.abstractmethod
    def _count(self, cls: type[Entity], condition: Condition | None) -> int:
        """Count the entities where ``condition`` holds."""

    @abc.abstractmethod
    def _append(self, events: Sequence[DomainEvent]) -> None:
        """Append events to the audit log."""

    def _insert_created(self, cls: type[E], entities: Sequence[E]) -> None:
        """Insert new records and append their ``EntityCreated`` events (adapters may do both at once)."""
        self._insert(cls, entities)
        self._append(_created_events(cls.kind, entities, self.actor))

    @abc.abstractmethod
    def _audit(
        self, entity: EntityRef | None, since: datetime | None, until: datetime | None, limit: int
    ) -> list[AuditEntry]:
        """Read the audit log, oldest first."""

    def _add_index(self, cls: type[Entity], field: str, *more: tuple[str, bool]) -> None:  # noqa: B027 - optional: stores that scan
        """Index declared fields of ``cls`` (idempotent); stores without indexes do nothing."""

    @abc.abstractmethod
    def _redact_audit(self, values: tuple[str, ...], placeholder: str) -> int:
        """Apply :func:`redact_event_data` to this tenant's audit entries; return how many changed."""

    @abc.abstractmethod
    def _state_get(self, namespace: str, key: str, *, lock: bool) -> StateEntry | None:
        """Read one state entry; with ``lock``, keep others from changing it until this transaction ends."""

    @abc.abstractmethod
    def _state_insert(self, namespace: str, key: str, text: str) -> bool:
        """Store a new entry at version 1; return False (changing nothing) if the key exists."""

    @abc.abstractmethod
    def _state_update(self, namespace: str, key: str, text: str, expected_version: int) -> bool:
        """Replace an entry at ``expected_version`` (its version goes up by one); return whether it was."""

    @abc.abstractmethod
    def _state_delete(self, namespace: str, key: str, expected_version: int) -> bool:
        """Remove an entry at ``expected_version``; return whether it was."""

    @abc.abstractmethod
    def _state_scan(
        self, namespace: str, start: str | None, stop: str | None, limit: int
    ) -> list[StateEntry]:
        """List a namespace's entries in code-point key order within ``[start, stop)``."""


class Store(abc.ABC):
    """A place where crmkit records live: opened by :func:`crmkit.storage.open_store`.

    A store is cheap to keep open and is closed with :meth:`close` (or by
    using it as a context manager). All reads and writes happen in
    transactions.
    """

    #: The store's URL, with any password removed.
    url: str

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock
        self._root: Store = self  # the store that owns the connections; a tenant view points to it
        self._tenant = ""
        self._access: tuple[Principal, AccessPolicy] | None = None
        self._is_closed = False
        # Per-thread state of the adapters: ``busy`` while a transaction is open on the thread.
        self._local = threading.local()

    @property
    def _closed(self) -> bool:
        return self._root._is_closed

    @_closed.setter
    def _closed(self, closed: bool) -> None:
        self._root._is_closed = closed

    @property
    def tenant(self) -> str:
        """The tenant whose records this store reads and writes (``""``: the default tenant)."""
        return self._tenant

    def for_tenant(self, tenant: str) -> Self:
        """This store, confined to one tenant.

        Every read, query, write, audit read and state entry of its transactions sees and touches
        that tenant's records only: other tenants' ids are not found, their cursors are refused.
        The view shares the store's connections (closing either closes both).

        Args:
            tenant: 1 to 64 letters, digits or ``_.:-``, starting with a letter or digit; ``""``
                is the default tenant, which a store opened without one uses.

        Raises:
            ValidationError: For a malformed tenant id.
        """
        given: object = tenant
        if not isinstance(given, str) or (tenant and not _TENANT.fullmatch(tenant)):
            msg = "a tenant id is 1 to 64 letters, digits or _.:- starting with a letter or digit, or ''"
            raise ValidationError.single("tenant", msg)
        view = copy.copy(self)
        view._tenant = tenant
        return view

    def with_access(self, principal: Principal, policy: AccessPolicy | None = None) -> Self:
        """This store, seen by one user: only visible records, hidden fields emptied, writes checked.

        Every read, query, count, stream, bulk import and audit read of its transactions goes
        through the user's rights (:mod:`crmkit.access`): queries get the visibility condition
        added, in the database; records the user may not see are not found; hidden fields read as
        empty and cannot be queried, ordered by or set; writes outside the user's rights raise
        :class:`~crmkit.errors.PermissionDenied`, and every denial is written to the audit log
        (kept even when the transaction is rolled back). Metrics, segments and timelines computed
        through such a store count only what the user may see; use an admin principal for
        company-wide numbers. The view keeps the store's tenant and shares its connections.

        Args:
            principal: The user.
            policy: The tenant's sharing rules and field restrictions (none by default).
        """
        given: object = principal
        if not isinstance(given, Principal):
            raise ValidationError.single("principal", f"expected a Principal, got {type(given).__name__}")
        view = copy.copy(self)
        view._access = (principal, policy if policy is not None else AccessPolicy())
        return view

    @property
    def principal(self) -> Principal | None:
        """The user this store acts for (see :meth:`with_access`), or None for full access."""
        return None if self._access is None else self._access[0]

    def _unguarded(self) -> Self:
        """This store (same tenant) without its access context: for the store's own bookkeeping."""
        view = copy.copy(self)
        view._access = None
        return view

    def _check_ready(self) -> None:
        """Refuse to start a transaction on a closed store, or on a thread that already has one open."""
        if self._closed:
            msg = "the store is closed"
            raise StorageError(msg)
        if getattr(self._local, "busy", False):
            msg = "a transaction is already open on this thread; finish it first"
            raise StorageError(msg)

    @property
    def clock(self) -> Clock:
        """The clock that stamps ``updated_at`` and audit events (the current clock by default)."""
        return self._clock if self._clock is not None else _clock.get_clock()

    def transaction(self, *, actor: str | None = None) -> Transaction:
        """Start a unit of work; use it in a ``with`` block and call ``commit()`` inside.

        Args:
            actor: The user or system on whose behalf the changes are made; it
                is written into every audit event.
        """
        if actor is not None and (not isinstance(actor, str) or not re.fullmatch(r"\S{1,64}", actor)):
            raise ValidationError.single("actor", "an actor id is 1 to 64 characters without whitespace")
        return self._transaction(actor)

    def add_index(self, entity_class: type[Entity] | str, field: str, *more: str | tuple[str, str]) -> None:
        """Index declared fields of a record type, so queries filtering or ordering on them use it.

        crmkit indexes the fields it looks records up by itself (``email``, ``phone``, ``domain``,
        ``account_id``, ``contact_id``); add the ones your queries need (an owner, a stage, a
        creation time). Further fields make a composite index, each optionally ``(field, "desc")``:
        ``add_index(Activity, "contact_id", ("occurred_at", "desc"))`` serves "a contact's newest
        activities first" without sorting. Idempotent; an index slows every write of its table a
        little. The in-memory store has no indexes and ignores this.

        Derived columns can be indexed too (``total_minor`` of orders), though no condition reads
        them: ``add_index(Order, "contact_id", "currency", "status", "ordered_at", "total_minor")``
        covers what :func:`crmkit.segmentation.rfm_scores_in_store` reads.

        Raises:
            RuleError: If a field is not a declared field (or derived column) of the record type.
        """
        from crmkit.storage._sql import DERIVED_COLUMNS  # noqa: PLC0415 - _sql builds on this module

        cls = entity_class_of(entity_class)
        fields = {*schema_of(cls).fields, *(column.field for column in DERIVED_COLUMNS.get(cls.kind, ()))}
        if field not in fields:
            msg = f"{cls.kind} has no field {field!r} to index"
            raise RuleError(msg, path="field")
        rest: list[tuple[str, bool]] = []
        for index, item in enumerate(more):
            name, direction = (item, "asc") if isinstance(item, str) else item
            if name not in fields or direction not in {"asc", "desc"}:
                msg = f"expected a field of {cls.kind}, optionally with 'asc' or 'desc', got {item!r}"
                raise RuleError(msg, path=f"more[{index}]")
            rest.append((name, direction == "desc"))
        with self.transaction() as tx:
            with self._translate():
                tx._add_index(cls, field, *rest)
            tx.commit()

    @abc.abstractmethod
    def _transaction(self, actor: str | None) -> Transaction:
        """Create the adapter's transaction."""

    def _repository(self, tx: Transaction, cls: type[E]) -> Repository[E]:
        return Repository(tx, cls)

    def _translate(self) -> AbstractContextManager[None]:
        """A context manager turning driver errors into :class:`StorageError` subclasses."""
        return _NoTranslation()

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's connections; it cannot be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _NoTranslation:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None
