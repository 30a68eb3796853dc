"""Where crmkit records live: one storage contract and its adapters.

Open a store from a URL and work in transactions::

    from crmkit.storage import open_store

    store = open_store("sqlite:///crm.db")          # the embedded default
    with store.transaction(actor="u-42") as tx:
        stored = tx[Lead].add(Lead(email="ada@example.com"))
        tx.commit()

Adapters: ``memory://`` (:class:`MemoryStore`), ``sqlite:///path.db``
(:class:`SqliteStore`, the default) and ``postgresql://...`` (the
``postgres`` extra). All of them pass the conformance suite in
:mod:`crmkit.storage.testing`, which a third-party adapter can run too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from crmkit.errors import StorageError
from crmkit.storage._base import (
    AuditEntry,
    ImportReport,
    OrderBy,
    Page,
    RejectedRow,
    Repository,
    Store,
    Transaction,
)
from crmkit.storage._state import StateEntry, StateMap
from crmkit.storage.memory import MemoryStore
from crmkit.storage.sqlite import SqliteStore

if TYPE_CHECKING:
    from crmkit.clock import Clock

__all__ = [
    "AuditEntry",
    "ImportReport",
    "MemoryStore",
    "OrderBy",
    "Page",
    "RejectedRow",
    "Repository",
    "SqliteStore",
    "StateEntry",
    "StateMap",
    "Store",
    "Transaction",
    "open_store",
]


def open_store(
    url: str = "sqlite:///crmkit.db", *, clock: Clock | None = None, tenant: str = "", **options: Any
) -> Store:
    """Open the store a URL names, creating or migrating its tables as needed.

    Args:
        url: ``memory://``; ``sqlite:///relative.db``, ``sqlite:////absolute.db``
            or ``sqlite:///:memory:``; ``postgresql://user:pass@host:port/db``
            (needs the ``postgres`` extra).
        clock: The clock that stamps writes; the current clock by default.
        tenant: Confine the store to this tenant (see :meth:`Store.for_tenant`); the default
            tenant ``""`` otherwise.
        **options: Passed to the adapter's constructor.

    Raises:
        StorageError: For a URL no adapter serves.
        StorageUnavailable: If the database cannot be reached.
    """
    given: object = url  # callers may pass anything
    if not isinstance(given, str):
        msg = f"a store URL is a string, got {type(given).__name__}"
        raise StorageError(msg)
    store = _open(url, clock, options)
    return store.for_tenant(tenant) if tenant else store


def _open(url: str, clock: Clock | None, options: dict[str, Any]) -> Store:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore(clock=clock, **options)
    if scheme == "sqlite":
        path = unquote(url[len("sqlite://") :])
        if not path.startswith("/") or path == "/":
            msg = f"a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db, got {url!r}"
            raise StorageError(msg)
        path = path[1:]
        return SqliteStore(path, clock=clock, **options)
    if scheme in {"postgresql", "postgres"}:
        try:
            from crmkit.storage.postgres import PostgresStore  # noqa: PLC0415 - optional extra
        except ImportError as exc:
            msg = "PostgreSQL needs the postgres extra: pip install 'crmkit[postgres]'"
            raise StorageError(msg) from exc
        return PostgresStore(url, clock=clock, **options)
    msg = f"no storage adapter for the scheme {scheme!r}; use memory://, sqlite:///path.db or postgresql://..."
    raise StorageError(msg)
