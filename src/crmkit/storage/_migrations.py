"""crmkit creates and migrates its own tables: versioned, idempotent, safe from two processes at once.

``crmkit_schema`` holds one row: the schema version. Opening a store runs
:func:`migrate` inside one write transaction, after taking the database's
write lock (SQLite's ``BEGIN IMMEDIATE``; a transaction-scoped advisory lock
in PostgreSQL), so a second process opening the same database waits and then
finds the work done. Then the tables of the entity kinds are brought in step
with the entity classes: missing tables are created, and a column a newer
crmkit declares is added and filled from the stored JSON documents.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from crmkit.errors import SchemaVersionError
from crmkit.serialization import from_data
from crmkit.storage._sql import Dialect, Layout, all_layouts

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SCHEMA_VERSION", "migrate"]

#: The schema version this crmkit writes. Each step below moves a database one version up.
SCHEMA_VERSION = 3


def _step_1(cursor: Any, dialect: Dialect) -> None:
    """The audit log."""
    for statement in dialect.audit_ddl():
        cursor.execute(statement)


def _step_2(cursor: Any, dialect: Dialect) -> None:
    """The table behind ``tx.state``."""
    for statement in dialect.state_ddl():
        cursor.execute(statement)


def _step_3(cursor: Any, dialect: Dialect) -> None:
    """Tenants: every table gains a ``tenant`` column, leading its key and indexes.

    The audit table also gains ``redactions``: an entry's document may be rewritten to remove
    personal data, and only that way.

    Rows stored before belong to the default tenant ``""``. A database created at this version
    already has the column (steps 1 and 2 write the current tables), so only older ones change.
    """
    tables: list[tuple[str, list[str], tuple[str, ...] | None]] = [
        ("crmkit_audit", dialect.audit_ddl(), None),
        ("crmkit_state", dialect.state_ddl(), ("namespace", "key")),
    ]
    tables += [(layout.table, dialect.table_ddl(layout), ("id",)) for layout in all_layouts()]
    audit = dialect.existing_columns(cursor, "crmkit_audit")
    if audit and "redactions" not in audit:  # redaction of personal data (see Transaction.redact_audit)
        cursor.execute("ALTER TABLE crmkit_audit ADD COLUMN redactions INTEGER NOT NULL DEFAULT 0")
    for table, create, key in tables:
        existing = dialect.existing_columns(cursor, table)
        if existing and "tenant" not in existing:
            dialect.add_tenant(cursor, table, create, key)


_STEPS: dict[int, Callable[[Any, Dialect], None]] = {1: _step_1, 2: _step_2, 3: _step_3}


def migrate(connection: Any, dialect: Dialect, *, begin: str | None, lock: str | None = None) -> int:  # noqa: C901 - one transaction, its steps and its failure path
    """Bring a database to :data:`SCHEMA_VERSION`; return the version it had (0 for a new one).

    Args:
        connection: A DB-API connection (autocommit off or explicit ``begin``).
        dialect: The database's dialect.
        begin: The statement that starts the write transaction, if the driver needs one.
        lock: A statement that serialises migrations between processes, if needed.

    Raises:
        SchemaVersionError: If the database is at a newer version than this crmkit.
    """
    cursor = connection.cursor()
    try:
        if begin:
            cursor.execute(begin)
        if lock:
            cursor.execute(lock)
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS crmkit_schema "
            "(singleton INTEGER PRIMARY KEY CHECK (singleton = 1), version INTEGER NOT NULL)"
        )
        cursor.execute("SELECT version FROM crmkit_schema")
        row = cursor.fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            msg = (
                f"the database is at crmkit schema version {found}; this crmkit knows up to {SCHEMA_VERSION}"
            )
            raise SchemaVersionError(msg)  # noqa: TRY301 - the rollback below must run for it too
        for version in range(found + 1, SCHEMA_VERSION + 1):
            _STEPS[version](cursor, dialect)
        if found == 0:
            cursor.execute(f"INSERT INTO crmkit_schema (singleton, version) VALUES (1, {SCHEMA_VERSION})")
        elif found < SCHEMA_VERSION:
            cursor.execute(f"UPDATE crmkit_schema SET version = {SCHEMA_VERSION}")
        for layout in all_layouts():
            _sync_table(cursor, dialect, layout)
        dialect.default_statistics(cursor)
        connection.commit() if not begin else cursor.execute("COMMIT")
    except BaseException:
        if begin:
            if getattr(connection, "in_transaction", True):
                cursor.execute("ROLLBACK")
        else:
            connection.rollback()
        raise
    finally:
        cursor.close()
    return found


def _sync_table(cursor: Any, dialect: Dialect, layout: Layout) -> None:
    existing = dialect.existing_columns(cursor, layout.table)
    if not existing:
        for statement in dialect.table_ddl(layout):
            cursor.execute(statement)
        return
    missing = [column for column in layout.columns if column.name not in existing]
    for column in missing:
        cursor.execute(dialect.add_column_ddl(layout, column))
    for statement in dialect.table_ddl(layout)[1:]:  # indexes a newer crmkit declares
        cursor.execute(statement)
    if missing:
        _backfill(cursor, dialect, layout, missing)


def _backfill(cursor: Any, dialect: Dialect, layout: Layout, columns: list[Any]) -> None:
    """Fill newly added columns from the JSON documents already stored."""
    p = dialect.param
    cursor.execute(f"SELECT tenant, id, data FROM {layout.table}")
    rows = cursor.fetchall()
    assignments = ", ".join(f"{dialect.quote(column.name)} = {p}" for column in columns)
    updates = []
    for tenant, id_, data in rows:
        entity = from_data(layout.cls, json.loads(data) if isinstance(data, str | bytes) else data)
        values = [
            dialect.to_db(
                column.kind,
                column.derive(entity) if column.derive else layout.schema.read(column.field, entity),
            )
            for column in columns
        ]
        updates.append([*values, tenant, id_])
    if updates:
        where = f"tenant = {p} AND id = {p}"
        cursor.executemany(f"UPDATE {layout.table} SET {assignments} WHERE {where}", updates)
