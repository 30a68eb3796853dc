"""The PostgreSQL adapter, on psycopg 3 (``pip install 'crmkit[postgres]'``).

Open it with ``open_store("postgresql://user:password@host:5432/db")`` or
:class:`PostgresStore` directly. Transactions run at PostgreSQL's default
isolation (READ COMMITTED); every write checks the record's version in the
same statement, so a stale write raises :class:`~crmkit.errors.ConflictError`
instead of overwriting. Each thread takes a connection from a small pool for
the length of a transaction; a connection the host application hands in is
used as it is, by one transaction at a time, and never closed by crmkit.

Text columns use the ``"C"`` collation, so ordering and comparisons follow
code points exactly as Python's do, whatever the database's locale. A
``matches`` condition (a Python regular expression, which POSIX regular
expressions do not equal) is narrowed in SQL by the rest of the condition and
checked in Python. Bulk imports use ``COPY``. Opening a store migrates the
schema under a transaction-scoped advisory lock, so processes starting
together queue instead of racing. PostgreSQL text cannot hold the NUL
character (``chr(0)``); storing one raises :class:`~crmkit.errors.StorageError`.
"""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Format, TransactionStatus

from crmkit.conditions import FieldKind
from crmkit.errors import (
    ConflictError,
    StorageError,
    StorageIntegrityError,
    StorageUnavailable,
)
from crmkit.storage._base import Store, Transaction
from crmkit.storage._migrations import migrate
from crmkit.storage._sql import (
    AUDIT_COLUMNS,
    Dialect,
    E,
    Layout,
    SqlTransaction,
    all_layouts,
    compile_where,
    layout_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from crmkit.clock import Clock
    from crmkit.conditions import Condition
    from crmkit.entities import Entity
    from crmkit.storage._base import SortKey

__all__ = ["PostgresStore"]

#: The advisory lock key that serialises migrations ("crmkit" in ASCII).
MIGRATION_LOCK = 0x63726D6B6974
#: From this many rows on, inserts use COPY (below it a pipelined executemany is as fast).
_COPY_FROM = 64
#: The setting that tells row-level security policies a transaction's tenant.
_TENANT_SETTING = "crmkit.tenant"
#: The setting migrations use to work on every tenant's rows.
_ALL_TENANTS = "crmkit.all_tenants"
#: PostgreSQL 11 brought ``starts_with``, identity columns and ``EXECUTE FUNCTION`` triggers.
_MIN_SERVER_VERSION = 110000
_TEXT = 'text COLLATE "C"'
_NUL_MESSAGE = "PostgreSQL text cannot hold the NUL character (\\x00); remove it before storing"

_Connection: TypeAlias = "psycopg.Connection[Any]"


class PostgresDialect(Dialect):
    """PostgreSQL's spelling of the shared SQL."""

    name: ClassVar[str] = "postgresql"
    param: ClassVar[str] = "%s"
    # POSIX regular expressions are not Python's: ``matches`` is re-checked in Python.
    native_regex: ClassVar[bool] = False
    id_type: ClassVar[str] = _TEXT
    # json, not jsonb: it keeps the document's text, so a float such as 3.9e16 reads back as a float.
    json_type: ClassVar[str] = "json"

    _TYPES: ClassVar[dict[FieldKind, str]] = {
        FieldKind.TEXT: _TEXT,
        FieldKind.INTEGER: "bigint",
        FieldKind.NUMBER: "double precision",
        FieldKind.DECIMAL: "numeric",
        FieldKind.BOOLEAN: "boolean",
        FieldKind.DATETIME: "timestamptz",
        FieldKind.DATE: "date",
        FieldKind.TEXT_SET: "text[]",
    }

    def column_type(self, kind: FieldKind) -> str:
        """The PostgreSQL type of a column holding ``kind`` values."""
        return self._TYPES[kind]

    def to_db(self, kind: FieldKind, value: Any) -> Any:
        """Turn a value into what psycopg binds for its column (most values pass as they are)."""
        if value is None:
            return None
        if kind is FieldKind.TEXT_SET:
            return sorted(str(item) for item in value)
        if kind is FieldKind.NUMBER and isinstance(value, Decimal):
            return float(value)
        if isinstance(value, str):
            return str(value)  # a StrEnum member becomes its plain value
        return value

    def converter(self, kind: FieldKind) -> Callable[[Any], Any] | None:
        """What ``to_db`` does for a record's (validated, non-missing) value, without the dispatch."""
        return _CONVERTERS.get(kind)

    def audit_ddl(self) -> list[str]:
        """The audit table, its indexes, and a trigger that refuses updates, deletes and truncation."""
        return [
            (
                "CREATE TABLE IF NOT EXISTS crmkit_audit ("
                "seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                f"tenant {_TEXT} NOT NULL DEFAULT '', "
                f"event_id {_TEXT} NOT NULL UNIQUE, type {_TEXT} NOT NULL, "
                f"entity_kind {_TEXT} NOT NULL, entity_id {_TEXT} NOT NULL, "
                f"at timestamptz NOT NULL, actor {_TEXT}, data jsonb NOT NULL, "
                "redactions integer NOT NULL DEFAULT 0)"
            ),
            (
                "CREATE INDEX IF NOT EXISTS crmkit_audit__entity "
                "ON crmkit_audit (tenant, entity_kind, entity_id, seq)"
            ),
            "CREATE INDEX IF NOT EXISTS crmkit_audit__at ON crmkit_audit (tenant, at)",
            (
                # An update may only be a redaction: the document rewritten, counted in ``redactions``.
                "CREATE OR REPLACE FUNCTION crmkit_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN IF TG_OP = 'UPDATE' AND NEW.redactions = OLD.redactions + 1 "
                "AND (NEW.seq, NEW.tenant, NEW.event_id, NEW.type, NEW.entity_kind, NEW.entity_id, NEW.at) "
                "IS NOT DISTINCT FROM (OLD.seq, OLD.tenant, OLD.event_id, OLD.type, OLD.entity_kind, "
                "OLD.entity_id, OLD.at) AND NEW.actor IS NOT DISTINCT FROM OLD.actor "
                "THEN RETURN NEW; END IF; RAISE EXCEPTION 'the crmkit audit log is append-only'; END $$"
            ),
            "DROP TRIGGER IF EXISTS crmkit_audit_append_only ON crmkit_audit",
            (
                "CREATE TRIGGER crmkit_audit_append_only BEFORE UPDATE OR DELETE ON crmkit_audit "
                "FOR EACH ROW EXECUTE FUNCTION crmkit_audit_refuse()"
            ),
            "DROP TRIGGER IF EXISTS crmkit_audit_no_truncate ON crmkit_audit",
            (
                "CREATE TRIGGER crmkit_audit_no_truncate BEFORE TRUNCATE ON crmkit_audit "
                "FOR EACH STATEMENT EXECUTE FUNCTION crmkit_audit_refuse()"
            ),
        ]

    lock_suffix: ClassVar[str] = " FOR UPDATE"
    audit_text: ClassVar[str] = "data::text"

    def state_ddl(self) -> list[str]:
        """The ``tx.state`` table; the "C" collation sorts keys by code point, as Python does."""
        return [
            (
                f"CREATE TABLE IF NOT EXISTS crmkit_state (tenant {_TEXT} NOT NULL DEFAULT '', "
                f"namespace {_TEXT} NOT NULL, key {_TEXT} NOT NULL, value text NOT NULL, "
                "version bigint NOT NULL, PRIMARY KEY (tenant, namespace, key))"
            )
        ]

    def add_tenant(self, cursor: Any, table: str, create: list[str], key: tuple[str, ...] | None) -> None:
        """Give a table of an older schema a ``tenant`` column in place (its rows go to tenant "").

        The primary key becomes ``(tenant, *key)`` when ``key`` is given, and the old indexes are
        replaced by the ones ``create`` declares, which lead with the tenant.
        """
        cursor.execute(f"ALTER TABLE {table} ADD COLUMN tenant {_TEXT} NOT NULL DEFAULT ''")
        if key is not None:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
            cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (tenant, {', '.join(key)})")
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            (table, table),
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX {self.quote(name)}")
        for statement in create:
            cursor.execute(statement)

    def existing_columns(self, cursor: Any, table: str) -> set[str]:
        """The column names of a table in the current schema (empty when it does not exist)."""
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}

    def text_contains(self, column: str) -> str:
        """``strpos`` is case-sensitive and takes the text literally (``LIKE`` would not)."""
        return f"strpos({column}, %s) > 0"

    def text_starts_with(self, column: str) -> tuple[str, int]:
        """``starts_with`` compares the leading characters literally."""
        return f"starts_with({column}, %s)", 1

    def text_ends_with(self, column: str) -> tuple[str, int]:
        """Compare the trailing characters (``right(x, 0)`` is ``''``, so an empty suffix matches)."""
        return f"right({column}, char_length(%s::text)) = %s", 2

    def set_contains(self, column: str) -> str:
        """Membership in the text array."""
        return f"%s = ANY({column})"

    def ids_in(self, ids: Sequence[str]) -> tuple[str, list[Any]]:
        """One parameter, whatever the number of ids: one plan, no statement per list length.

        Ids without a space (every valid id) go as one text the server splits at the spaces, which
        costs a small part of sending a text array (psycopg dumps an array item by item in Python:
        about 2 us per id, a tenth of a bulk import's time); any other list goes as an array.
        """
        try:
            joined = " ".join(ids)
        except TypeError:  # not all texts: let the array dumper say what it makes of them
            return "id = ANY(%s::text[])", [list(ids)]
        if ids and joined.count(" ") == len(ids) - 1:
            return "id = ANY(string_to_array(%s, ' '))", [joined]
        return "id = ANY(%s::text[])", [list(ids)]

    def set_present(self, column: str) -> str:
        """A non-empty text array."""
        return f"cardinality({column}) > 0"


def _plain_text(value: str) -> str:
    return value if value.__class__ is str else str(value)  # a StrEnum member becomes its plain value


def _text_array(value: frozenset[str]) -> list[str]:
    return sorted(str(item) for item in value)


def _number(value: float | Decimal) -> float:
    return float(value)


_CONVERTERS: dict[FieldKind, Callable[[Any], Any]] = {
    FieldKind.TEXT: _plain_text,
    FieldKind.TEXT_SET: _text_array,
    FieldKind.NUMBER: _number,
}


#: What binary ``COPY`` is told each typed column holds (psycopg picks each value's binary form by it).
_COPY_TYPES: dict[FieldKind, str] = {
    FieldKind.TEXT: "text",
    FieldKind.INTEGER: "int8",
    FieldKind.NUMBER: "float8",
    FieldKind.DECIMAL: "numeric",
    FieldKind.BOOLEAN: "bool",
    FieldKind.DATETIME: "timestamptz",
    FieldKind.DATE: "date",
    FieldKind.TEXT_SET: "text[]",
}
#: The audit columns, in the order of ``SqlTransaction._audit_row``.
_AUDIT_COPY_TYPES = ["text", "text", "text", "text", "text", "timestamptz", "text", "jsonb"]


class _JsonTextDumper(Dumper):
    """An encoded document, in binary ``COPY`` to a ``json`` column: its binary form is the text."""

    format = Format.BINARY
    oid = psycopg.postgres.types["json"].oid

    def dump(self, obj: Any) -> bytes:
        """The UTF-8 text."""
        return str(obj).encode()


class _JsonbTextDumper(Dumper):
    """An encoded document to a ``jsonb`` column: the binary form is a version byte (1), then the text."""

    format = Format.BINARY
    oid = psycopg.postgres.types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        """Version 1, then the UTF-8 text."""
        return b"\x01" + str(obj).encode()


class PostgresTransaction(SqlTransaction):
    """A PostgreSQL unit of work on one pooled (or the host's) connection."""

    dialect = PostgresDialect()

    def __init__(self, store: PostgresStore, actor: str | None) -> None:
        super().__init__(store, actor)
        self._pg = store
        self._connection: _Connection | None = None
        self._cursor: psycopg.Cursor[Any] | psycopg.ServerCursor[Any] | None = None

    @property
    def cursor(self) -> psycopg.Cursor[Any] | psycopg.ServerCursor[Any]:
        """The cursor of this transaction."""
        assert self._cursor is not None  # noqa: S101 - only used between begin and commit/rollback
        return self._cursor

    def _begin(self) -> None:
        # A pooled connection may have died while idle (a server restart): retry once on a new one.
        for attempt in range(2):
            connection, reused = self._pg._acquire()
            try:
                self._pg._start(connection)
            except psycopg.OperationalError:
                self._pg._release(connection, healthy=False)
                if attempt == 0 and reused and connection.broken:
                    continue
                raise
            except BaseException:
                self._pg._release(connection, healthy=False)
                raise
            self._connection = connection
            self._cursor = connection.cursor()
            if self._pg.row_level_security:
                self._cursor.execute(f"SELECT set_config('{_TENANT_SETTING}', %s, true)", [self.tenant])
            return

    def _finish(self, *, healthy: bool) -> None:
        connection, cursor = self._connection, self._cursor
        self._connection = self._cursor = None
        if cursor is not None:
            with contextlib.suppress(psycopg.Error):
                cursor.close()
        if connection is not None:
            self._pg._release(connection, healthy=healthy)

    def _commit(self) -> None:
        assert self._connection is not None  # noqa: S101 - begun
        # If COMMIT fails the server has rolled back; the rollback that follows releases the connection.
        self._connection.commit()
        self._finish(healthy=True)

    def _rollback(self) -> None:
        connection = self._connection
        if connection is None:
            return
        healthy = True
        try:
            connection.rollback()
        except psycopg.Error:
            # The connection is gone or unusable; the server rolls back when it notices.
            healthy = False
        finally:
            self._finish(healthy=healthy)

    # -- reads ------------------------------------------------------------------------------

    def _select(
        self,
        cls: type[Any],
        condition: Condition | None,
        keys: Sequence[SortKey],
        after: Sequence[Any] | None,
        limit: int,
    ) -> Iterable[Any]:
        with self._scanning(cls, condition):
            return super()._select(cls, condition, keys, after, limit)

    def _count(self, cls: type[Entity], condition: Condition | None) -> int:
        with self._scanning(cls, condition):
            return super()._count(cls, condition)

    @contextlib.contextmanager
    def _scanning(self, cls: type[Entity], condition: Condition | None) -> Iterator[None]:
        """Read a query that is checked in Python through a server-side cursor.

        Such a query selects a superset and is read until a page is full; a
        client-side cursor would pull every candidate row over the wire first.
        """
        if condition is None or compile_where(layout_of(cls), self.dialect, condition, self.now())[2]:
            yield
            return
        assert self._connection is not None  # noqa: S101 - begun
        plain = self._cursor
        scan = self._connection.cursor(name="crmkit_scan")
        self._cursor = scan
        try:
            yield
        finally:
            self._cursor = plain
            with contextlib.suppress(psycopg.Error):
                scan.close()

    # -- writes -----------------------------------------------------------------------------

    def _insert_created(self, cls: type[E], entities: Sequence[E]) -> None:
        """Copy the records' rows while making them, then their audit rows.

        The server stores each block of rows while the next ones are being made, instead of waiting
        for all of them: for a large import the Python work then overlaps the server's.
        """
        if len(entities) < _COPY_FROM:
            super()._insert_created(cls, entities)
            return
        layout = layout_of(cls)
        rows, audits = self._created_rows(layout, entities)
        self._copy_records(layout, rows)  # fills ``audits`` as it goes
        self._append_rows(audits)

    def _insert_rows(self, layout: Layout, rows: list[list[Any]]) -> None:
        if len(rows) == 1:
            # ON CONFLICT keeps the transaction usable when the id is taken (like a failed SQLite statement).
            self.cursor.execute(self._insert_sql(layout) + " ON CONFLICT (tenant, id) DO NOTHING", rows[0])
            if self.cursor.rowcount != 1:
                msg = f"{layout.cls.kind} {rows[0][1]!r} already exists"
                raise ConflictError(msg)
            return
        self._copy_records(layout, rows)

    def _copy_records(self, layout: Layout, rows: Iterable[Sequence[Any]]) -> None:
        """Write new records' rows in a savepoint; an id stored meanwhile is a ``ConflictError``.

        A short list goes as ``INSERT`` statements, anything else by ``COPY``.
        """
        columns = self._writer(layout).columns
        types = ["text", *("text" if c.field == "id" else _COPY_TYPES[c.kind] for c in columns), "json"]
        try:
            with self._savepoint():
                if isinstance(rows, list) and len(rows) < _COPY_FROM:
                    self._write_rows(layout.table, self._column_list(layout), rows)
                else:
                    self._copy(layout.table, self._column_list(layout), rows, types)
        except pg_errors.UniqueViolation as exc:
            # Another transaction stored one of these ids first.
            msg = f"a {layout.cls.kind} with one of these ids already exists"
            raise ConflictError(msg) from exc

    def _append_rows(self, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) < _COPY_FROM:
            super()._append_rows(rows)
            return
        with self._savepoint():
            self._copy("crmkit_audit", AUDIT_COLUMNS, rows, _AUDIT_COPY_TYPES)

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[None]:
        """Undo only the block on an error, so the transaction stays usable (and all-or-none holds)."""
        self.cursor.execute("SAVEPOINT crmkit_batch")
        try:
            yield
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                self.cursor.execute("ROLLBACK TO SAVEPOINT crmkit_batch")
            raise
        self.cursor.execute("RELEASE SAVEPOINT crmkit_batch")

    def _write_rows(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """Write a few rows with one ``INSERT`` statement per row."""
        marks = ", ".join(["%s"] * (columns.count(",") + 1))
        self.cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

    def _copy(self, table: str, columns: str, rows: Iterable[Sequence[Any]], types: list[str]) -> None:
        """Write many rows with binary ``COPY``, told each column's type."""
        adapters = self.cursor.adapters  # this cursor's own map: the host's connection is not changed
        adapters.register_dumper(None, _JsonTextDumper)
        adapters.register_dumper(None, _JsonbTextDumper)
        with self.cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


class PostgresStore(Store):
    """A crmkit store in a PostgreSQL database (11 or newer, UTF-8).

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (libpq URL or
            ``key=value`` form; query parameters such as ``sslmode`` or
            ``options=-csearch_path%3Dcrm`` pass through to libpq).
        connection: A psycopg 3 connection the host application opened itself;
            crmkit then uses only that one, one transaction at a time, and
            does not close it. With autocommit off it must be idle when a
            crmkit transaction starts.
        clock: The clock that stamps writes; the current clock by default.
        connect_timeout: Seconds to wait for a new connection, unless the URL sets it.
        pool_size: How many idle connections to keep for reuse.
        row_level_security: Also let PostgreSQL enforce tenants: every crmkit table gets a
            row-level security policy (forced, so it binds the tables' owner too) that shows and
            accepts only the rows of the tenant each transaction declares. This is defence in depth
            on top of the adapter's own filtering; it binds any role but superusers and roles with
            ``BYPASSRLS``, which PostgreSQL never filters. Turned on when the store is opened (the
            role must own the tables); a store opened without it leaves the policies as they are.
            Migrations pass through the policies by setting ``crmkit.all_tenants``, so they are no
            guard against someone who can run SQL: they guard against a query that forgets a tenant.
        **parameters: More libpq connection parameters, overriding the URL's
            (``options="-c search_path=crm"``, ``sslmode="require"``, ...).

    Raises:
        StorageUnavailable: If the database cannot be reached.
        SchemaVersionError: If the database holds a newer crmkit schema.
        StorageError: For a malformed URL or an unsuitable server.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        connection: _Connection | None = None,
        clock: Clock | None = None,
        connect_timeout: int = 10,
        pool_size: int = 8,
        row_level_security: bool = False,
        **parameters: Any,
    ) -> None:
        super().__init__(clock=clock)
        self._row_level_security = row_level_security
        if (url is None) == (connection is None):
            msg = "give either a URL or a connection"
            raise StorageError(msg)
        if connection is not None and parameters:
            msg = f"connection parameters ({', '.join(sorted(parameters))}) need a URL, not a connection"
            raise StorageError(msg)
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._owned: set[_Connection] = set()
        self._pool_size = pool_size
        # The host's own connection: every transaction takes its turn on it under this lock.
        self._single = connection
        self._turn = threading.Lock()
        self._secret = ""
        self._conninfo = ""
        self._connect_options: dict[str, Any] = {}
        if connection is not None:
            info = connection.info
            self.url = _display_url(info.user, info.host, str(info.port), info.dbname)
        else:
            assert url is not None  # noqa: S101 - checked above
            self._secret = _password_in(url)
            with self._translate():
                params = conninfo_to_dict(url)
            self._secret = str(params.get("password") or self._secret)
            user, host, port, dbname = (params.get(key) for key in ("user", "host", "port", "dbname"))
            self.url = _display_url(
                *(None if value is None else str(value) for value in (user, host, port, dbname))
            )
            self._conninfo = url
            if "connect_timeout" not in params:
                self._connect_options["connect_timeout"] = connect_timeout
            if "application_name" not in params:
                self._connect_options["application_name"] = "crmkit"
            self._connect_options.update(parameters)
            self._secret = str(parameters.get("password") or self._secret)
        with self._translate():
            self._migrate()

    # -- connections --------------------------------------------------------------------------

    def _connect(self) -> _Connection:
        connection = psycopg.connect(self._conninfo, autocommit=True, **self._connect_options)
        with self._lock:
            self._owned.add(connection)
        return connection

    def _acquire(self) -> tuple[_Connection, bool]:
        """This thread's connection for one transaction, and whether it was used before."""
        self._check_ready()
        if self._single is not None:
            self._turn.acquire()
            self._local.busy = True
            return self._single, False
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        reused = connection is not None
        if connection is None:
            connection = self._connect()
        self._local.busy = True
        return connection, reused

    def _release(self, connection: _Connection, *, healthy: bool) -> None:
        self._local.busy = False
        if self._single is not None:
            self._turn.release()
            return
        reusable = (
            healthy
            and not connection.closed
            and not connection.broken
            and connection.info.transaction_status == TransactionStatus.IDLE
        )
        with self._lock:
            if reusable and not self._closed and len(self._idle) < self._pool_size:
                self._idle.append(connection)
                return
            self._owned.discard(connection)
        with contextlib.suppress(psycopg.Error):
            connection.close()

    def _start(self, connection: _Connection) -> None:
        """Begin a transaction on a connection (psycopg begins one itself when autocommit is off)."""
        if connection.info.transaction_status != TransactionStatus.IDLE:
            msg = "the connection is inside a transaction already; commit or roll it back first"
            raise StorageError(msg)
        if connection.autocommit:
            connection.execute("BEGIN")

    def _migrate(self) -> None:
        connection, _ = self._acquire()
        healthy = False
        try:
            _check_server(connection)
            migrate(
                connection,
                PostgresDialect(),
                begin="BEGIN" if connection.autocommit else None,
                # The lock, and a pass through the tenant policies: migrations work on every tenant.
                lock=(
                    f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK}), "
                    f"set_config('{_ALL_TENANTS}', 'on', true)"
                ),
            )
            if self._row_level_security:
                self._enable_row_level_security(connection)
            healthy = True
        finally:
            self._release(connection, healthy=healthy)

    def _enable_row_level_security(self, connection: _Connection) -> None:
        tables = ["crmkit_audit", "crmkit_state", *(layout.table for layout in all_layouts())]
        mine = f"tenant = current_setting('{_TENANT_SETTING}', true)"
        every = f"current_setting('{_ALL_TENANTS}', true) = 'on'"
        with connection.transaction():
            connection.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            for table in tables:
                connection.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                connection.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
                connection.execute(f"DROP POLICY IF EXISTS crmkit_tenant ON {table}")
                rule = f"({mine} OR {every})"
                connection.execute(f"CREATE POLICY crmkit_tenant ON {table} USING {rule} WITH CHECK {rule}")

    @property
    def row_level_security(self) -> bool:
        """Whether each transaction declares its tenant to PostgreSQL's row-level security."""
        return self._row_level_security

    # -- Store --------------------------------------------------------------------------------

    def _transaction(self, actor: str | None) -> Transaction:
        return PostgresTransaction(self, actor)

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise _storage_error(exc, self._secret) from exc
        except UnicodeEncodeError as exc:
            # A lone surrogate: Python text that is not Unicode, which UTF-8 cannot carry.
            msg = f"text that is not valid Unicode cannot be stored: {exc.reason} at position {exc.start}"
            raise StorageError(msg) from exc

    def close(self) -> None:
        """Close every connection this store opened (a host's own connection stays open)."""
        self._closed = True
        with self._lock:
            connections, self._owned, self._idle = list(self._owned), set(), []
        for connection in connections:
            with contextlib.suppress(psycopg.Error):
                connection.close()

    def schema_version(self) -> int:
        """The crmkit schema version of the database."""
        connection, _ = self._acquire()
        try:
            with self._translate(), connection.cursor() as cursor:
                cursor.execute("SELECT version FROM crmkit_schema")
                row = cursor.fetchone()
                if not connection.autocommit:
                    connection.rollback()
        finally:
            self._release(connection, healthy=True)
        assert row is not None  # noqa: S101 - migrated on open
        return int(row[0])


def _check_server(connection: _Connection) -> None:
    version = connection.info.server_version
    if version < _MIN_SERVER_VERSION:
        msg = f"crmkit needs PostgreSQL 11 or newer; the server is version {version // 10000}"
        raise StorageError(msg)
    encoding = connection.info.parameter_status("server_encoding")
    if encoding is not None and encoding.upper() not in {"UTF8", "UTF-8"}:
        msg = f"crmkit needs a UTF8 database; this one is {encoding}"
        raise StorageError(msg)


def _password_in(url: str) -> str:
    """The password of a URL-form conninfo, to keep it out of messages even when libpq cannot parse it."""
    with contextlib.suppress(ValueError):
        return unquote(urlsplit(url).password or "")
    return ""


def _display_url(user: str | None, host: str | None, port: str | None, dbname: str | None) -> str:
    """A ``postgresql://`` URL naming the server and database, never the password."""
    where = quote(host or "", safe="") if host and "/" in host else (host or "")
    if port:
        where += f":{port}"
    who = f"{quote(user, safe='')}@" if user else ""
    return f"postgresql://{who}{where}/{quote(dbname or '', safe='')}"


def _storage_error(exc: psycopg.Error, secret: str) -> StorageError:
    """The crmkit error for a psycopg error (its text without the password)."""
    text = str(exc).strip() or type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    detail = getattr(getattr(exc, "diag", None), "message_detail", None) or ""
    if isinstance(exc, psycopg.DataError) and ("NUL" in text or "\\u0000" in detail):
        return StorageError(_NUL_MESSAGE)
    if isinstance(exc, psycopg.IntegrityError):
        return StorageIntegrityError(text)
    if isinstance(exc, pg_errors.ProgramLimitExceeded):
        return StorageError(text)  # a value too big for an index: retrying will not help
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StorageUnavailable(text)
    return StorageError(text)
