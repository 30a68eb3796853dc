"""The in-memory adapter: for tests, notebooks and small tools; nothing survives the process.

Transactions are serialised (one writer at a time, like SQLite), so the
semantics match the SQL adapters: a transaction sees its own writes, commits
all or nothing, and a write based on a stale version raises ``ConflictError``.
Entities are immutable, so the store keeps them as they are, without copying.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from crmkit.clock import FixedClock
from crmkit.errors import ConflictError
from crmkit.events import event_from_data, event_to_data
from crmkit.storage._base import (
    AuditEntry,
    SortKey,
    Store,
    Transaction,
    redact_event_data,
    schema_of,
    sort_values,
)
from crmkit.storage._state import StateEntry, decode_value

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from crmkit.clock import Clock
    from crmkit.conditions import Condition
    from crmkit.entities import Entity, EntityRef
    from crmkit.events import DomainEvent

__all__ = ["MemoryStore"]


def _compare_one(a: Any, b: Any, *, descending: bool) -> int:
    # Missing values first in ascending order, last in descending order: as the SQL adapters sort.
    if a is None or b is None:
        if a is None and b is None:
            return 0
        first = -1 if a is None else 1
        return -first if descending else first
    if a == b:
        return 0
    smaller = -1 if a < b else 1
    return -smaller if descending else smaller


def compare_sort_values(keys: Sequence[SortKey], a: Sequence[Any], b: Sequence[Any]) -> int:
    """Compare two rows' ordering values: negative, zero or positive."""
    for key, left, right in zip(keys, a, b, strict=True):
        result = _compare_one(left, right, descending=key.descending)
        if result:
            return result
    return 0


class MemoryTransaction(Transaction):
    """A unit of work on a :class:`MemoryStore`; holds the store's write lock while open."""

    def __init__(self, store: MemoryStore, actor: str | None) -> None:
        super().__init__(store, actor)
        self._memory = store
        self._tables: dict[tuple[str, str], dict[str, Entity]] = {}  # by (tenant, kind)
        self._events: list[DomainEvent] = []
        self._state_changes: dict[tuple[str, str, str], tuple[str, int] | None] = {}
        self._redacted: dict[int, AuditEntry] = {}  # stored entries rewritten by redact_audit, by sequence

    def _begin(self) -> None:
        self._memory._acquire()

    def _commit(self) -> None:
        try:
            self._memory._apply(self._tables, self.tenant, self._events, self._state_changes, self._redacted)
        finally:
            self._memory._release()

    def _rollback(self) -> None:
        self._tables.clear()
        self._events.clear()
        self._state_changes.clear()
        self._redacted.clear()
        self._memory._release()

    def _read(self, kind: str) -> dict[str, Entity]:
        where = (self.tenant, kind)
        table = self._tables.get(where)
        return self._memory._tables.get(where, {}) if table is None else table

    def _write(self, kind: str) -> dict[str, Entity]:
        where = (self.tenant, kind)
        table = self._tables.get(where)
        if table is None:
            table = self._tables[where] = dict(self._memory._tables.get(where, {}))
        return table

    def _insert(self, cls: type[Any], entities: Sequence[Any]) -> None:
        table = self._write(cls.kind)
        taken = [entity.id for entity in entities if entity.id in table]
        if taken:
            msg = f"a {cls.kind} with id {taken[0]!r} already exists"
            raise ConflictError(msg)
        for entity in entities:
            table[entity.id] = entity

    def _fetch(self, cls: type[Any], ids: Sequence[str]) -> dict[str, Any]:
        table = self._read(cls.kind)
        return {id_: table[id_] for id_ in ids if id_ in table}

    def _existing_ids(self, cls: type[Entity], ids: Sequence[str]) -> set[str]:
        table = self._read(cls.kind)
        return {id_ for id_ in ids if id_ in table}

    def _update(self, cls: type[Any], entity: Any, expected_version: int) -> bool:
        table = self._write(cls.kind)
        current = table.get(entity.id)
        if current is None or current.version != expected_version:
            return False
        table[entity.id] = entity
        return True

    def _delete(self, cls: type[Entity], id: str, expected_version: int) -> bool:  # noqa: A002
        table = self._write(cls.kind)
        current = table.get(id)
        if current is None or current.version != expected_version:
            return False
        del table[id]
        return True

    def _matching(self, cls: type[Any], condition: Condition | None) -> Iterable[Any]:
        rows = self._read(cls.kind).values()
        if condition is None:
            return rows
        now = self.now()
        predicate = schema_of(cls).compile(condition, clock=FixedClock(now))
        return filter(predicate, rows)

    def _select(
        self,
        cls: type[Any],
        condition: Condition | None,
        keys: Sequence[SortKey],
        after: Sequence[Any] | None,
        limit: int,
    ) -> Iterable[Any]:
        schema = schema_of(cls)
        rows = [(sort_values(schema, keys, entity), entity) for entity in self._matching(cls, condition)]
        if after is not None:
            rows = [row for row in rows if compare_sort_values(keys, row[0], after) > 0]

        def by_keys(a: tuple[tuple[Any, ...], Any], b: tuple[tuple[Any, ...], Any]) -> int:
            return compare_sort_values(keys, a[0], b[0])

        rows.sort(key=functools.cmp_to_key(by_keys))
        return [entity for _, entity in rows[:limit]]

    def _count(self, cls: type[Entity], condition: Condition | None) -> int:
        return sum(1 for _ in self._matching(cls, condition))

    def _append(self, events: Sequence[DomainEvent]) -> None:
        self._events.extend(events)

    def _audit(
        self, entity: EntityRef | None, since: datetime | None, until: datetime | None, limit: int
    ) -> list[AuditEntry]:
        redacted, mine = self._redacted, self.tenant
        stored = [redacted.get(e.sequence, e) for owner, e in self._memory._audit if owner == mine]
        entries = [*stored, *self._pending_entries()]
        found = [
            entry
            for entry in entries
            if (entity is None or entry.event.entity == entity)
            and (since is None or entry.event.at >= since)
            and (until is None or entry.event.at < until)
        ]
        return found[:limit]

    # -- state: changes are kept aside (None marks a removal) and applied on commit --------------

    def _state_read(self, namespace: str, key: str) -> tuple[str, int] | None:
        where = (self.tenant, namespace, key)
        if where in self._state_changes:
            return self._state_changes[where]
        return self._memory._state.get(where)

    def _state_get(self, namespace: str, key: str, *, lock: bool) -> StateEntry | None:  # noqa: ARG002 - the transaction holds the store's lock
        found = self._state_read(namespace, key)
        return None if found is None else StateEntry(namespace, key, decode_value(found[0]), found[1])

    def _state_insert(self, namespace: str, key: str, text: str) -> bool:
        if self._state_read(namespace, key) is not None:
            return False
        self._state_changes[self.tenant, namespace, key] = (text, 1)
        return True

    def _state_update(self, namespace: str, key: str, text: str, expected_version: int) -> bool:
        found = self._state_read(namespace, key)
        if found is None or found[1] != expected_version:
            return False
        self._state_changes[self.tenant, namespace, key] = (text, expected_version + 1)
        return True

    def _state_delete(self, namespace: str, key: str, expected_version: int) -> bool:
        found = self._state_read(namespace, key)
        if found is None or found[1] != expected_version:
            return False
        self._state_changes[self.tenant, namespace, key] = None
        return True

    def _state_scan(
        self, namespace: str, start: str | None, stop: str | None, limit: int
    ) -> list[StateEntry]:
        scope = (self.tenant, namespace)
        keys = {key for tenant, space, key in self._memory._state if (tenant, space) == scope}
        keys.update(key for tenant, space, key in self._state_changes if (tenant, space) == scope)
        chosen = sorted(
            key for key in keys if (start is None or key >= start) and (stop is None or key < stop)
        )
        found: list[StateEntry] = []
        for key in chosen:
            entry = self._state_get(namespace, key, lock=False)
            if entry is not None:
                found.append(entry)
                if len(found) == limit:
                    break
        return found

    def _redact_audit(self, values: tuple[str, ...], placeholder: str) -> int:
        changed = 0
        stored = [entry for tenant, entry in self._memory._audit if tenant == self.tenant]
        for entry in stored:
            current = self._redacted.get(entry.sequence, entry)
            data = event_to_data(current.event)
            redacted = redact_event_data(data, values, placeholder)
            if redacted != data:
                self._redacted[entry.sequence] = AuditEntry(entry.sequence, event_from_data(redacted))
                changed += 1
        for index, event in enumerate(self._events):
            data = event_to_data(event)
            redacted = redact_event_data(data, values, placeholder)
            if redacted != data:
                self._events[index] = event_from_data(redacted)
                changed += 1
        return changed

    def _pending_entries(self) -> list[AuditEntry]:
        start = len(self._memory._audit) + 1
        return [AuditEntry(start + offset, event) for offset, event in enumerate(self._events)]


class MemoryStore(Store):
    """A crmkit store in this process's memory.

    Args:
        clock: The clock that stamps writes; the current clock by default.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self.url = "memory://"
        self._tables: dict[tuple[str, str], dict[str, Entity]] = {}  # by (tenant, kind)
        self._audit: list[tuple[str, AuditEntry]] = []  # (tenant, entry); seq counts across tenants
        self._state: dict[tuple[str, str, str], tuple[str, int]] = {}  # by (tenant, namespace, key)
        self._lock = threading.Lock()

    def _acquire(self) -> None:
        self._check_ready()
        self._lock.acquire()
        self._local.busy = True

    def _release(self) -> None:
        self._local.busy = False
        self._lock.release()

    def _apply(
        self,
        tables: dict[tuple[str, str], dict[str, Entity]],
        tenant: str,
        events: list[DomainEvent],
        state: dict[tuple[str, str, str], tuple[str, int] | None],
        redacted: dict[int, AuditEntry],
    ) -> None:
        self._tables.update(tables)
        for where, found in state.items():
            if found is None:
                self._state.pop(where, None)
            else:
                self._state[where] = found
        if redacted:
            self._audit[:] = [(owner, redacted.get(entry.sequence, entry)) for owner, entry in self._audit]
        start = len(self._audit) + 1
        self._audit.extend((tenant, AuditEntry(start + offset, event)) for offset, event in enumerate(events))

    def _transaction(self, actor: str | None) -> Transaction:
        return MemoryTransaction(self, actor)

    def close(self) -> None:
        """Forget everything; the store cannot be used afterwards."""
        self._closed = True
        # Empty the shared containers: a tenant view holds the same ones.
        self._tables.clear()
        self._audit.clear()
        self._state.clear()

