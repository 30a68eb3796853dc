"""The SQLite adapter: crmkit's embedded default, on the standard library's ``sqlite3``.

The database runs in WAL mode (readers never block the writer), and every
transaction starts with ``BEGIN IMMEDIATE``, so two writers queue for the
lock instead of failing half-way. Each thread gets its own connection;
``busy_timeout`` makes a waiting writer retry for a while before
:class:`~crmkit.errors.StorageUnavailable` is raised.

Values a SQLite column cannot hold exactly are kept exactly in the JSON
document and stored in their typed column in a comparable form: times as
fixed-width UTC text, decimals as REAL (so a filter on a decimal beyond 15
significant digits is approximate; what you read back never is).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from crmkit.conditions import FieldKind
from crmkit.errors import (
    ConflictError,
    StorageError,
    StorageIntegrityError,
    StorageUnavailable,
    ValidationError,
)
from crmkit.serialization import compact_json
from crmkit.storage._base import Store, Transaction
from crmkit.storage._migrations import migrate
from crmkit.storage._sql import Dialect, Layout, SqlTransaction, utc_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from crmkit.clock import Clock

__all__ = ["SqliteStore"]

_BUSY_TIMEOUT_MS = 10_000

#: The page cache per connection, in MiB: enough to keep the indexes of a large bulk import in memory.
DEFAULT_CACHE_MIB = 64


class SqliteDialect(Dialect):
    """SQLite's spelling of the shared SQL."""

    name: ClassVar[str] = "sqlite"
    param: ClassVar[str] = "?"
    native_regex: ClassVar[bool] = True
    text_set_is_json: ClassVar[bool] = True

    _TYPES: ClassVar[dict[FieldKind, str]] = {
        FieldKind.TEXT: "TEXT",
        FieldKind.INTEGER: "INTEGER",
        FieldKind.NUMBER: "REAL",
        FieldKind.DECIMAL: "REAL",
        FieldKind.BOOLEAN: "INTEGER",
        FieldKind.DATETIME: "TEXT",
        FieldKind.DATE: "TEXT",
        FieldKind.TEXT_SET: "TEXT",
    }

    def column_type(self, kind: FieldKind) -> str:
        """The SQLite type of a column holding ``kind`` values."""
        return self._TYPES[kind]

    def to_db(self, kind: FieldKind, value: Any) -> Any:  # noqa: PLR0911 - one branch per kind
        """Turn a value into its stored, comparable form."""
        if value is None:
            return None
        if kind is FieldKind.DATETIME and isinstance(value, datetime):
            return utc_text(value)
        if kind is FieldKind.DATE and isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value)
        if kind is FieldKind.TEXT_SET:
            return _text_set(value)
        if isinstance(value, str):
            return str(value)  # a StrEnum member becomes its plain value
        return value

    def audit_ddl(self) -> list[str]:
        """The audit table, its indexes, and triggers that refuse deletes and every update but a redaction.

        A redaction (:meth:`~crmkit.storage.Transaction.redact_audit`) rewrites an entry's document
        and counts itself in ``redactions``; nothing else about an entry can change.
        """
        refuse = "BEGIN SELECT RAISE(ABORT, 'the crmkit audit log is append-only'); END"
        fixed = ("seq", "tenant", "event_id", "type", "entity_kind", "entity_id", "at", "actor")
        changed = " OR ".join(f"NEW.{name} IS NOT OLD.{name}" for name in fixed)
        return [
            (
                "CREATE TABLE IF NOT EXISTS crmkit_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "tenant TEXT NOT NULL DEFAULT '', event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, "
                "entity_kind TEXT NOT NULL, entity_id TEXT NOT NULL, at TEXT NOT NULL, actor TEXT, "
                "data TEXT NOT NULL, redactions INTEGER NOT NULL DEFAULT 0)"
            ),
            (
                "CREATE INDEX IF NOT EXISTS crmkit_audit__entity "
                "ON crmkit_audit (tenant, entity_kind, entity_id, seq)"
            ),
            "CREATE INDEX IF NOT EXISTS crmkit_audit__at ON crmkit_audit (tenant, at)",
            (
                "CREATE TRIGGER IF NOT EXISTS crmkit_audit_only_redactions BEFORE UPDATE ON crmkit_audit "
                f"WHEN NEW.redactions IS NOT OLD.redactions + 1 OR {changed} {refuse}"
            ),
            f"CREATE TRIGGER IF NOT EXISTS crmkit_audit_no_delete BEFORE DELETE ON crmkit_audit {refuse}",
        ]

    def state_ddl(self) -> list[str]:
        """The ``tx.state`` table; BINARY collation sorts keys by code point, as Python does."""
        return [
            (
                "CREATE TABLE IF NOT EXISTS crmkit_state (tenant TEXT NOT NULL DEFAULT '', "
                "namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, version INTEGER NOT NULL, "
                "PRIMARY KEY (tenant, namespace, key)) WITHOUT ROWID"
            )
        ]

    def default_statistics(self, cursor: Any) -> None:
        """Give the planner statistics for crmkit's indexes that have none (SQLite only).

        Without statistics SQLite assumes every index is as selective as any other, and a query
        such as ``tenant = ? AND email = ?  ORDER BY id LIMIT 1`` walks the primary key
        ``(tenant, id)`` to avoid a sort, reading a whole tenant. These defaults say what is true
        of a CRM: a tenant holds many rows, a value of an indexed field few. ``ANALYZE`` (or
        ``PRAGMA optimize``) replaces them with measured ones.
        """
        cursor.execute("ANALYZE sqlite_schema")  # creates sqlite_stat1 if it is missing
        cursor.execute("SELECT tbl, idx FROM sqlite_stat1")
        known = {(table, index) for table, index in cursor.fetchall()}
        cursor.execute(
            "SELECT name, tbl_name FROM sqlite_schema WHERE type = 'index' "
            "AND (substr(tbl_name, 1, 4) = 'crm_' OR substr(tbl_name, 1, 7) = 'crmkit_')"
        )
        rows = []
        for index, table in cursor.fetchall():
            if (table, index) in known:
                continue
            cursor.execute(f"PRAGMA index_info({self.quote(index)})")
            columns = [row[2] for row in sorted(cursor.fetchall())]
            cursor.execute(f"PRAGMA index_list({self.quote(table)})")
            unique = any(row[1] == index and row[2] for row in cursor.fetchall())
            rows.append((table, index, _default_stat(columns, unique=unique)))
        if rows:
            cursor.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", rows)
            cursor.execute("ANALYZE sqlite_schema")  # load them

    def add_tenant(self, cursor: Any, table: str, create: list[str], key: tuple[str, ...] | None) -> None:
        """Rebuild a table of an older schema with a ``tenant`` column (its rows go to tenant "").

        SQLite cannot change a primary key in place: the table is renamed, its indexes and triggers
        dropped, the new table created and filled, and the old one dropped.
        """
        del key  # the new table's statements declare it
        old = f"{table}__before_tenants"
        columns = ", ".join(self.quote(name) for name in sorted(self.existing_columns(cursor, table)))
        cursor.execute(f"ALTER TABLE {table} RENAME TO {old}")
        cursor.execute(
            "SELECT type, name FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
            "AND sql IS NOT NULL",
            (old,),
        )
        for kind, name in cursor.fetchall():
            cursor.execute(f"DROP {'INDEX' if kind == 'index' else 'TRIGGER'} {self.quote(name)}")
        for statement in create:
            cursor.execute(statement)
        cursor.execute(f"INSERT INTO {table} (tenant, {columns}) SELECT '', {columns} FROM {old}")
        cursor.execute(f"DROP TABLE {old}")

    def existing_columns(self, cursor: Any, table: str) -> set[str]:
        """The column names of a table (empty when it does not exist)."""
        cursor.execute(f"PRAGMA table_info({self.quote(table)})")
        return {row[1] for row in cursor.fetchall()}

    def converter(self, kind: FieldKind) -> Callable[[Any], Any] | None:
        """Text (enums included), numbers and booleans are stored as they are; the rest as ``to_db`` does."""
        return _CONVERTERS.get(kind)

    def text_contains(self, column: str) -> str:
        """``instr`` is case-sensitive, as Python's ``in`` is (``LIKE`` is not)."""
        return f"instr({column}, ?) > 0"

    def text_starts_with(self, column: str) -> tuple[str, int]:
        """Compare the leading characters."""
        return f"substr({column}, 1, length(?)) = ?", 2

    def text_ends_with(self, column: str) -> tuple[str, int]:
        """Compare the trailing characters (``substr(x, -0)`` is the whole text, hence the guard)."""
        return f"(? = '' OR substr({column}, -length(?)) = ?)", 3

    def set_contains(self, column: str) -> str:
        """Look into the JSON array."""
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)"

    def set_present(self, column: str) -> str:
        """A non-empty JSON array."""
        return f"json_array_length({column}) > 0"

    def regex(self, column: str) -> str:
        """Python's ``re.search``, registered as a deterministic SQL function."""
        return f"crmkit_regexp(?, {column})"


#: The size the default statistics describe: a million rows, ten tenants, ten rows per indexed value.
_STAT_ROWS, _STAT_PER_TENANT, _STAT_PER_VALUE = 1_000_000, 100_000, 10


def _default_stat(columns: list[str], *, unique: bool) -> str:
    """A ``sqlite_stat1`` line: the row count, then the rows per distinct prefix of the index."""
    per_prefix = []
    for position, column in enumerate(columns):
        last = position == len(columns) - 1
        if unique and last:
            per_prefix.append(1)
        elif position == 0 and column == "tenant":
            per_prefix.append(_STAT_PER_TENANT)
        else:
            per_prefix.append(_STAT_PER_VALUE)
    return " ".join(str(number) for number in [_STAT_ROWS, *per_prefix])


def _text_set(value: frozenset[str]) -> str:
    return compact_json(sorted(value)) if value else "[]"


# What ``to_db`` does for a record's (validated, non-missing) value of each kind, without the dispatch.
_CONVERTERS: dict[FieldKind, Callable[[Any], Any]] = {
    FieldKind.DATETIME: utc_text,
    FieldKind.DATE: date.isoformat,
    FieldKind.DECIMAL: float,
    FieldKind.TEXT_SET: _text_set,
}


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str, value: str | None) -> int:
    return int(value is not None and _pattern(pattern).search(value) is not None)


def _retry_while_locked(statement: Callable[[], object]) -> None:
    """Run a statement, retrying while another process holds the lock, up to the busy timeout.

    Switching a new database to WAL needs a lock that SQLite does not always wait for through
    ``busy_timeout``: two processes opening one new file at once could otherwise fail.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            statement()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        else:
            return


class _DriverErrors:
    """Turns ``sqlite3`` errors raised inside a ``with`` block into crmkit's storage errors.

    One shared, stateless instance: cheaper on every call than a generator-based context manager.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, sqlite3.Error):
            return
        if isinstance(exc, sqlite3.IntegrityError):
            raise StorageIntegrityError(str(exc)) from exc
        if isinstance(exc, sqlite3.OperationalError):
            text = str(exc).lower()
            if "locked" in text or "busy" in text or "unable to open" in text or "disk" in text:
                raise StorageUnavailable(str(exc)) from exc
        raise StorageError(str(exc)) from exc


_DRIVER_ERRORS = _DriverErrors()


class SqliteTransaction(SqlTransaction):
    """A SQLite unit of work on the current thread's connection."""

    dialect = SqliteDialect()

    def __init__(self, store: SqliteStore, actor: str | None) -> None:
        super().__init__(store, actor)
        self._sqlite = store
        self._connection: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None

    @property
    def cursor(self) -> sqlite3.Cursor:
        """The cursor of this transaction."""
        assert self._cursor is not None  # noqa: S101 - only used between begin and commit/rollback
        return self._cursor

    def _begin(self) -> None:
        self._connection = self._sqlite._acquire()
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._sqlite._release()
            raise
        self._cursor = self._connection.cursor()

    def _release_connection(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
        self._cursor = None
        self._connection = None
        self._sqlite._release()

    def _commit(self) -> None:
        assert self._connection is not None  # noqa: S101 - only called between begin and finish
        if self._connection.in_transaction:
            # If COMMIT fails the transaction is still open: the rollback that follows releases it.
            self._connection.execute("COMMIT")
        self._release_connection()

    def _rollback(self) -> None:
        connection = self._connection
        if connection is None:
            return  # already finished
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        finally:
            self._release_connection()

    def _insert_rows(self, layout: Layout, rows: list[list[Any]]) -> None:
        try:
            super()._insert_rows(layout, rows)
        except sqlite3.IntegrityError as exc:
            # Another transaction stored one of these ids first.
            msg = f"a {layout.cls.kind} with one of these ids already exists"
            raise ConflictError(msg) from exc


class SqliteStore(Store):
    """A crmkit store in a SQLite database file (or in memory).

    Args:
        path: The database file (created if missing), or ``":memory:"`` for a
            private in-memory database (this store's threads take turns on it).
        connection: A connection the host application opened itself; crmkit
            then uses only that one (from one thread at a time) and does not close it.
        clock: The clock that stamps writes; the current clock by default.
        cache_mib: The page cache of each connection crmkit opens, in MiB (SQLite's own default
            is 2). Index pages stay cached across a bulk import instead of being read back from
            the file, which makes large imports and lookups faster; memory is only taken as
            pages are read. A host's own connection keeps its setting.

    Raises:
        SchemaVersionError: If the file holds a newer crmkit schema.
        StorageUnavailable: If the file cannot be opened.
        ValidationError: If ``cache_mib`` is not a whole number of at least 1.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        connection: sqlite3.Connection | None = None,
        clock: Clock | None = None,
        cache_mib: int = DEFAULT_CACHE_MIB,
    ) -> None:
        super().__init__(clock=clock)
        if isinstance(cache_mib, bool) or not isinstance(cache_mib, int) or cache_mib < 1:
            message = f"must be a whole number of at least 1, got {cache_mib!r}"
            raise ValidationError.single("cache_mib", message)
        self._cache_kib = cache_mib * 1024
        if (path is None) == (connection is None):
            msg = "give either a path or a connection"
            raise StorageError(msg)
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        # One connection shared by all threads (an in-memory database, or the host's own
        # connection): transactions take turns on it under this lock.
        self._single: sqlite3.Connection | None = None
        self._turn = threading.Lock()
        if connection is not None:
            self._target = ""
            self.url = "sqlite://(connection)"
            self._single = self._configure(connection)
        elif str(path) == ":memory:":
            self._target = ":memory:"
            self.url = "sqlite:///:memory:"
            self._single = self._connect()
        else:
            location = Path(str(path))
            self._target = location.as_uri() if location.is_absolute() else f"file:{location}"
            self.url = f"sqlite:///{path}"
        with self._translate():
            self._migrate()

    # -- connections --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._target,
            uri=self._target.startswith("file:"),
            isolation_level=None,
            check_same_thread=False,
            timeout=_BUSY_TIMEOUT_MS / 1000,
        )
        with self._lock:
            self._connections.append(connection)
        connection.execute(f"PRAGMA cache_size = -{self._cache_kib}")  # negative: KiB, not pages
        return self._configure(connection)

    def _configure(self, connection: sqlite3.Connection) -> sqlite3.Connection:
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        if self._target not in {"", ":memory:"}:
            _retry_while_locked(lambda: connection.execute("PRAGMA journal_mode = WAL"))
        # NORMAL is durable against a crashed process (what WAL needs); FULL also covers power loss.
        connection.execute("PRAGMA synchronous = NORMAL")
        # Freed pages are overwritten, so erased personal data does not linger in the file's free space.
        connection.execute("PRAGMA secure_delete = ON")
        connection.create_function("crmkit_regexp", 2, _regexp, deterministic=True)
        return connection

    def _acquire(self) -> sqlite3.Connection:
        self._check_ready()
        if self._single is not None:
            self._turn.acquire()
            self._local.busy = True
            return self._single
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        self._local.busy = True
        return connection

    def _release(self) -> None:
        self._local.busy = False
        if self._single is not None:
            self._turn.release()

    def _migrate(self) -> None:
        connection = self._acquire()
        try:
            migrate(connection, SqliteDialect(), begin="BEGIN IMMEDIATE")
        finally:
            self._release()

    # -- Store --------------------------------------------------------------------------------

    def _transaction(self, actor: str | None) -> Transaction:
        return SqliteTransaction(self, actor)

    def _translate(self) -> _DriverErrors:
        return _DRIVER_ERRORS

    def close(self) -> None:
        """Close every connection this store opened (a host's own connection stays open)."""
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def schema_version(self) -> int:
        """The crmkit schema version of the database."""
        connection = self._acquire()
        try:
            row = connection.execute("SELECT version FROM crmkit_schema").fetchone()
        finally:
            self._release()
        return int(row[0])

    def explain(self, sql: str, params: list[Any]) -> list[str]:
        """SQLite's query plan for a statement, one line a step (for checking index use)."""
        connection = self._acquire()
        try:
            rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        finally:
            self._release()
        return [str(row[-1]) for row in rows]
