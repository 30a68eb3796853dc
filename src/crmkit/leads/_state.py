"""Where routing keeps its turns and quotas: a small port a store transaction satisfies (private)."""

from __future__ import annotations

import threading
from typing import Any, Protocol

__all__ = ["MemoryRoutingState", "RoutingState", "StateRecord"]


class StateRecord(Protocol):
    """What routing reads of a stored entry (``tx.state.get`` returns one)."""

    @property
    def value(self) -> Any:
        """The stored JSON value."""
        ...


class RoutingState(Protocol):
    """The key/value port routing needs: an atomic counter and a read.

    A store transaction's ``tx.state`` satisfies it, so turns and quotas are kept in the same database
    as the leads, and an increment is atomic across processes: two routers never get the same turn.
    :class:`MemoryRoutingState` is the in-process implementation.
    """

    def get(self, namespace: str, key: str) -> StateRecord | None:
        """Return the entry under ``key``, or ``None``."""
        ...

    def increment(self, namespace: str, key: str, by: int = 1) -> int:
        """Add ``by`` to the counter under ``key`` (missing counts as 0) and return the new value."""
        ...


class _Entry:
    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value


class MemoryRoutingState:
    """A :class:`RoutingState` kept in this process, safe under threads (one lock per counter table)."""

    __slots__ = ("_counters", "_lock")

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> _Entry | None:
        """Return the counter under ``key``, or ``None``."""
        value = self._counters.get((namespace, key))
        return None if value is None else _Entry(value)

    def increment(self, namespace: str, key: str, by: int = 1) -> int:
        """Add ``by`` to the counter and return the new value, atomically."""
        with self._lock:
            value = self._counters.get((namespace, key), 0) + by
            self._counters[namespace, key] = value
            return value


class OverlayState:
    """Reads through to another state, keeps every increment to itself: the dry run's state."""

    __slots__ = ("_base", "_local")

    def __init__(self, base: RoutingState) -> None:
        self._base = base
        self._local: dict[tuple[str, str], int] = {}

    def _current(self, namespace: str, key: str) -> int:
        local = self._local.get((namespace, key))
        if local is not None:
            return local
        entry = self._base.get(namespace, key)
        value = entry.value if entry is not None else 0
        return value if isinstance(value, int) else 0

    def get(self, namespace: str, key: str) -> _Entry | None:
        """Return the counter as the dry run sees it."""
        return _Entry(self._current(namespace, key))

    def increment(self, namespace: str, key: str, by: int = 1) -> int:
        """Count locally, starting from the base's value."""
        value = self._current(namespace, key) + by
        self._local[namespace, key] = value
        return value
