"""The small part of a store transaction privacy needs (a port: a store's transaction fits it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping, Sequence
    from datetime import datetime

    from crmkit.conditions import Condition
    from crmkit.entities import Entity, EntityRef
    from crmkit.events import DomainEvent

__all__ = ["PrivacyTransaction", "StatePort"]


class StatePort(Protocol):
    """Keyed JSON values with versions (``tx.state``)."""

    def get(self, namespace: str, key: str) -> Any:
        """The entry (with ``.value`` and ``.version``) or ``None``."""

    def put(self, namespace: str, key: str, value: Any, *, expected_version: int | None) -> Any:
        """Write a value if the entry is at ``expected_version`` (``None``: must not exist yet)."""

    def scan(
        self, namespace: str, *, start: str | None = None, stop: str | None = None, limit: int = 100
    ) -> Sequence[Any]:
        """Entries of a namespace in key order."""


class PrivacyTransaction(Protocol):
    """What export, erasure and retention use of a store transaction; ``store.transaction()`` fits it."""

    @property
    def actor(self) -> str | None:
        """On whose behalf the changes are made."""

    @property
    def state(self) -> Any:
        """The keyed values of the transaction (see :class:`StatePort`)."""

    def repository(self, entity_class: Any) -> Any:
        """The repository of one record type: ``get``, ``query``, ``stream``, ``update``, ``delete``."""

    def audit(
        self,
        *,
        entity: EntityRef | Entity | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1_000,
    ) -> list[Any]:
        """Audit entries (``sequence``, ``event``), oldest first."""

    def redact_audit(self, values: Collection[str], placeholder: str = "[erased]") -> int:
        """Replace personal values inside the audit entries; return how many entries changed."""

    def record(self, *events: DomainEvent) -> None:
        """Append domain events to the audit log."""

    def now(self) -> datetime:
        """The store's current time."""


def stream(
    tx: PrivacyTransaction, kind: str, where: Condition | Mapping[str, Any] | None
) -> Iterator[Entity]:
    """Every record of ``kind`` where the condition (JSON form) holds, fetched page by page."""
    repository = tx.repository(kind)
    after = None
    while True:
        page = repository.query(where, limit=1_000, after=after)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor
