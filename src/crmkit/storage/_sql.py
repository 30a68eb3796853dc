"""What the SQL adapters share: table layouts, conditions compiled to SQL, and a DB-API transaction.

Each entity kind has one table: ``id``, ``version``, the full JSON document
``data`` (the source of truth, read back through the one converter), and one
typed column per declared condition field (``address.country`` becomes
``address__country``) so that conditions and orderings run in the database and
can use indexes.

Conditions compile to parameterised SQL with exactly the Python semantics:
every predicate is written as ``(col IS NOT NULL AND ...)`` so it is never
NULL, which makes ``NOT`` agree with the interpreter on missing values. Column
names come only from the declared schema; every value is a bound parameter.
A predicate a dialect cannot evaluate exactly (a Python regular expression in
PostgreSQL) is relaxed to a superset (TRUE where it is positive, FALSE under
NOT) and the rows are re-checked in Python.
"""

from __future__ import annotations

import abc
import functools
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, get_args

import attrs

from crmkit.clock import FixedClock
from crmkit.conditions import AllOf, AnyOf, Condition, FieldKind, Not, Op, Predicate, parse_duration
from crmkit.entities import ENTITY_TYPES, Entity, _new_id  # the pool of random UUID4 hex ids
from crmkit.events import DomainEvent, EntityCreated, event_from_data, event_to_data
from crmkit.money import minor_units
from crmkit.serialization import compact_json, from_stored, json_with_times, to_data
from crmkit.storage._base import AuditEntry, SortKey, Transaction, redact_event_data, schema_of, search_text
from crmkit.storage._state import StateEntry, decode_value

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from decimal import Decimal

    from crmkit.conditions import Schema
    from crmkit.entities import EntityRef

__all__ = ["DERIVED_COLUMNS", "Column", "Dialect", "Layout", "SqlTransaction", "layout_of"]

E = Any  # the entity type of a layout; kept loose here, checked by Repository

#: Fields every entity has and never leaves empty: orderings on them need no NULL handling.
NEVER_NULL = frozenset({"id", "version", "created_at", "updated_at"})

#: Fields indexed by default when a kind has them: what crmkit itself looks records up by (identity
#: for duplicate matching, relations for conversion and timelines). Every index slows each write, so
#: others (owner, stage, creation time, ...) are added by the host with ``Store.add_index``.
DEFAULT_INDEXED = ("email", "phone", "domain", "account_id", "contact_id")


@attrs.frozen
class Column:
    """One typed column of a kind's table.

    Attributes:
        field: The declared condition field, such as ``"address.country"`` (for a derived column,
            its name: it is not a condition field, so no rule can reach it).
        name: The column name, such as ``"address__country"``.
        kind: The kind of value it holds.
        derive: For a derived column, computes its value from the record (``None``: the value is
            the declared field's).
    """

    field: str
    name: str
    kind: FieldKind
    derive: Callable[[Any], Any] | None = attrs.field(default=None, eq=False, repr=False)


def _total_minor(order: Any) -> int:
    """An order's total in minor units of its currency: exact, so the database sums it exactly."""
    return int(order.total.amount.scaleb(minor_units(order.currency)))


#: Columns stored beside the declared fields for queries that run in the database (not conditions):
#: an order's total is derived from its lines, and RFM and revenue sum it in SQL.
DERIVED_COLUMNS: dict[str, tuple[Column, ...]] = {
    "order": (Column("total_minor", "total_minor", FieldKind.INTEGER, _total_minor),),
}


@attrs.frozen
class Layout:
    """The table of one entity kind.

    Attributes:
        cls: The entity class.
        table: The table name (``crm_lead``).
        columns: The typed columns, in a fixed order (``id`` and ``version`` first).
        indexed: The fields with an index.
    """

    cls: type[Entity]
    table: str
    columns: tuple[Column, ...]
    indexed: tuple[str, ...]
    #: Fields no valid record leaves empty: orderings on them need no NULL handling (and can use an index).
    never_null: frozenset[str] = frozenset(NEVER_NULL)

    @property
    def schema(self) -> Schema:
        """The condition schema of the kind."""
        return schema_of(self.cls)

    _by_field: dict[str, Column] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_by_field", {column.field: column for column in self.columns})

    def column(self, field: str) -> Column:
        """The column of a declared field."""
        return self._by_field[field]


_LAYOUTS: dict[type, Layout] = {}


def layout_of(cls: type[Entity]) -> Layout:
    """The table layout of an entity class (derived from its declared fields, cached)."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        schema = schema_of(cls)
        names = sorted(schema.fields, key=lambda name: (name not in {"id", "version"}, name != "id", name))
        columns = tuple(Column(name, name.replace(".", "__"), schema.fields[name].kind) for name in names)
        columns += DERIVED_COLUMNS.get(cls.kind, ())
        indexed = tuple(name for name in DEFAULT_INDEXED if name in schema.fields)
        declared = attrs.fields_dict(attrs.resolve_types(cls))
        required = {
            name
            for name, attribute in declared.items()
            if name in schema.fields and type(None) not in get_args(attribute.type)
        }
        layout = Layout(cls, f"crm_{cls.kind}", columns, indexed, NEVER_NULL | required)
        _LAYOUTS[cls] = layout
    return layout


def all_layouts() -> list[Layout]:
    """The layouts of every entity kind, in a stable order."""
    return [layout_of(ENTITY_TYPES[kind]) for kind in sorted(ENTITY_TYPES)]


class Dialect(abc.ABC):
    """How one database spells things: placeholders, types, and the few functions that differ."""

    name: ClassVar[str]
    #: The placeholder for a parameter (``?`` or ``%s``).
    param: ClassVar[str]
    #: Whether Python's ``re`` can run inside the database (else ``matches`` is re-checked in Python).
    native_regex: ClassVar[bool]

    @abc.abstractmethod
    def column_type(self, kind: FieldKind) -> str:
        """The SQL type of a column holding ``kind`` values."""

    @abc.abstractmethod
    def to_db(self, kind: FieldKind, value: Any) -> Any:
        """Turn a Python value of ``kind`` into what the column stores (``None`` stays ``None``)."""

    def converter(self, kind: FieldKind) -> Callable[[Any], Any] | None:
        """Turn a non-missing ``kind`` value into its stored form; ``None`` when stored as is."""

        def convert(value: Any) -> Any:
            return self.to_db(kind, value)

        return convert

    @abc.abstractmethod
    def text_contains(self, column: str) -> str:
        """SQL true when the text column contains the next parameter."""

    @abc.abstractmethod
    def text_starts_with(self, column: str) -> tuple[str, int]:
        """SQL true when the text column starts with the parameter; and how many times it binds it."""

    @abc.abstractmethod
    def text_ends_with(self, column: str) -> tuple[str, int]:
        """SQL true when the text column ends with the parameter; and how many times it binds it."""

    @abc.abstractmethod
    def set_contains(self, column: str) -> str:
        """SQL true when the set column holds the next parameter."""

    @abc.abstractmethod
    def set_present(self, column: str) -> str:
        """SQL true when the set column is not empty."""

    #: The SQL type of the id column and of the JSON document column.
    id_type: ClassVar[str] = "TEXT"
    json_type: ClassVar[str] = "TEXT"

    @abc.abstractmethod
    def audit_ddl(self) -> list[str]:
        """Statements creating the audit table (idempotent), append-only enforced by the database."""

    @abc.abstractmethod
    def state_ddl(self) -> list[str]:
        """The table of ``tx.state`` entries (namespace, key, value as JSON text, version)."""

    #: Appended to a read that must lock the row until the transaction ends ("" when writers are serialised).
    lock_suffix: ClassVar[str] = ""
    #: A set of texts is stored as the JSON text of its sorted list, as the document holds it.
    text_set_is_json: ClassVar[bool] = False
    #: The audit document as text, for a substring search.
    audit_text: ClassVar[str] = "data"

    def default_statistics(self, cursor: Any) -> None:  # noqa: B027 - optional: most planners measure
        """Give the query planner statistics for crmkit's indexes it has none for (if it needs them)."""

    @abc.abstractmethod
    def add_tenant(self, cursor: Any, table: str, create: list[str], key: tuple[str, ...] | None) -> None:
        """Give a table of an older schema a ``tenant`` column; ``create`` makes the current table.

        ``key`` is the table's key without the tenant (``None``: the key stays as it is).
        """

    @abc.abstractmethod
    def existing_columns(self, cursor: Any, table: str) -> set[str]:
        """The column names of a table (empty when it does not exist)."""

    def table_ddl(self, layout: Layout, *, table: str | None = None) -> list[str]:
        """Statements creating a kind's table and its indexes (idempotent).

        Every row belongs to a tenant: the key is ``(tenant, id)`` and every index starts with the
        tenant, so a tenant's queries read only its own part of each index.
        """
        columns = [f"tenant {self.id_type} NOT NULL"]
        for column in layout.columns:
            kind = self.id_type if column.field == "id" else self.column_type(column.kind)
            null = " NOT NULL" if column.field in NEVER_NULL else ""
            columns.append(f"{self.quote(column.name)} {kind}{null}")
        columns.append(f"data {self.json_type} NOT NULL")
        columns.append("PRIMARY KEY (tenant, id)")
        name = table or layout.table
        statements = [f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(columns)})"]
        if table is None:
            statements.extend(self.index_ddl(layout, field) for field in layout.indexed)
        return statements

    def index_ddl(self, layout: Layout, field: str, *more: tuple[str, bool], ordered: bool = False) -> str:
        """The statement indexing declared fields' columns within each tenant (idempotent).

        ``more`` are further ``(field, descending)`` columns of a composite index. An ``ordered``
        index ends with the id, the tie-breaker of every ordering, so a query ordered by its
        columns reads rows in order and sorts nothing.
        """
        columns = [(layout.column(field).name, False)]
        columns += [(layout.column(name).name, descending) for name, descending in more]
        name = "__".join([layout.table, *(f"{c}_desc" if d else c for c, d in columns)])
        listed = ", ".join(f"{self.quote(c)}{' DESC' if d else ''}" for c, d in columns)
        if ordered:
            listed += ", id"
        return f"CREATE INDEX IF NOT EXISTS {name} ON {layout.table} (tenant, {listed})"

    def add_column_ddl(self, layout: Layout, column: Column) -> str:
        """The statement adding a column that a newer crmkit declares."""
        return (
            f"ALTER TABLE {layout.table} ADD COLUMN {self.quote(column.name)} {self.column_type(column.kind)}"
        )

    def regex(self, column: str) -> str:  # pragma: no cover - only for dialects with native_regex
        """SQL true when the Python regular expression (next parameter) is found in the column."""
        raise NotImplementedError

    def ids_in(self, ids: Sequence[str]) -> tuple[str, list[Any]]:
        """SQL true for the rows whose ``id`` is one of ``ids``, and its parameters."""
        if len(ids) == 1:
            return f"id = {self.param}", list(ids)
        return f"id IN ({', '.join([self.param] * len(ids))})", list(ids)

    def quote(self, name: str) -> str:
        """Quote an identifier (names come from declared fields only; quoting guards keywords)."""
        return f'"{name}"'


# The operators that are one SQL comparison.
_COMPARISONS = {
    Op.EQ: "=",
    Op.NE: "<>",
    Op.LT: "<",
    Op.LE: "<=",
    Op.GT: ">",
    Op.GE: ">=",
    Op.BEFORE: "<",
    Op.AFTER: ">",
}


class _WhereCompiler:
    """Compiles one validated condition for one layout and dialect."""

    def __init__(self, layout: Layout, dialect: Dialect, now: datetime) -> None:
        self.layout = layout
        self.dialect = dialect
        self.now = now
        self.params: list[Any] = []
        self.exact = True

    def bind(self, kind: FieldKind, value: Any) -> str:
        self.params.append(self.dialect.to_db(kind, value))
        return self.dialect.param

    def compile(self, node: Condition, *, positive: bool = True) -> str:
        if isinstance(node, AllOf | AnyOf):
            joiner = " AND " if isinstance(node, AllOf) else " OR "
            return (
                "(" + joiner.join(self.compile(child, positive=positive) for child in node.conditions) + ")"
            )
        if isinstance(node, Not):
            return f"(NOT {self.compile(node.condition, positive=not positive)})"
        assert isinstance(node, Predicate)  # noqa: S101 - the schema validated the tree
        return self.predicate(node, positive=positive)

    def predicate(self, node: Predicate, *, positive: bool) -> str:  # noqa: C901, PLR0911, PLR0912 - one branch per operator
        column = self.layout.column(node.field)
        col = self.dialect.quote(column.name)
        kind, op, value = column.kind, node.op, node.value
        if op is Op.EXISTS:
            if kind is FieldKind.TEXT:
                present = f"({col} IS NOT NULL AND {col} <> '')"
            elif kind is FieldKind.TEXT_SET:
                present = f"({col} IS NOT NULL AND {self.dialect.set_present(col)})"
            else:
                present = f"({col} IS NOT NULL)"
            return present if value else f"(NOT {present})"
        guard = f"{col} IS NOT NULL AND "
        comparison = _COMPARISONS.get(op)
        if comparison is not None:
            return f"({guard}{col} {comparison} {self.bind(kind, value)})"
        if op in {Op.IN, Op.NOT_IN}:
            marks = ", ".join(self.bind(kind, item) for item in value)
            word = "IN" if op is Op.IN else "NOT IN"
            return f"({guard}{col} {word} ({marks}))"
        if op is Op.BETWEEN:
            return f"({guard}{col} BETWEEN {self.bind(kind, value[0])} AND {self.bind(kind, value[1])})"
        if op is Op.CONTAINS:
            if kind is FieldKind.TEXT_SET:
                sql = self.dialect.set_contains(col)
            else:
                sql = self.dialect.text_contains(col)
            self.params.append(value)
            return f"({guard}{sql})"
        if op in {Op.STARTS_WITH, Op.ENDS_WITH}:
            build = self.dialect.text_starts_with if op is Op.STARTS_WITH else self.dialect.text_ends_with
            sql, times = build(col)
            self.params.extend([value] * times)
            return f"({guard}{sql})"
        if op is Op.MATCHES:
            if self.dialect.native_regex:
                self.params.append(value)
                return f"({guard}{self.dialect.regex(col)})"
            self.exact = False  # relaxed to a superset; rows are re-checked in Python
            return "(1=1)" if positive else "(1=0)"
        cutoff: Any = self.now - parse_duration(value)
        upper: Any = self.now
        if kind is FieldKind.DATE:
            cutoff, upper = cutoff.date(), self.now.date()
        if op is Op.WITHIN_LAST:
            return f"({guard}{col} >= {self.bind(kind, cutoff)} AND {col} <= {self.bind(kind, upper)})"
        return f"({guard}{col} < {self.bind(kind, cutoff)})"  # Op.OLDER_THAN


def compile_where(
    layout: Layout, dialect: Dialect, condition: Condition, now: datetime
) -> tuple[str, list[Any], bool]:
    """Compile a validated condition: ``(sql, params, exact)``; when not exact, re-check rows in Python."""
    compiler = _WhereCompiler(layout, dialect, now)
    sql = compiler.compile(condition)
    return sql, compiler.params, compiler.exact


def compile_after(
    layout: Layout, dialect: Dialect, keys: Sequence[SortKey], values: Sequence[Any]
) -> tuple[str, list[Any]]:
    """SQL true for rows strictly after ``values`` in the ordering ``keys`` (keyset pagination).

    Missing values sort first in ascending order and last in descending order,
    on every adapter.
    """
    params: list[Any] = []
    alternatives: list[str] = []
    equal_prefix: list[tuple[str, list[Any]]] = []
    for key, value in zip(keys, values, strict=True):
        column = layout.column(key.field)
        col = dialect.quote(column.name)
        comparison = "<" if key.descending else ">"
        later_params: list[Any]
        same_params: list[Any]
        if key.field in layout.never_null:
            stored = dialect.to_db(column.kind, value)
            later, same = f"({col} {comparison} {dialect.param})", f"({col} = {dialect.param})"
            later_params, same_params = [stored], [stored]
        elif value is None:
            later = "(1=0)" if key.descending else f"({col} IS NOT NULL)"
            same = f"({col} IS NULL)"
            later_params, same_params = [], []
        else:
            stored = dialect.to_db(column.kind, value)
            later = f"({col} {comparison} {dialect.param}" + (
                f" OR {col} IS NULL)" if key.descending else ")"
            )
            same = f"({col} = {dialect.param})"
            later_params, same_params = [stored], [stored]
        alternatives.append("(" + " AND ".join([*(sql for sql, _ in equal_prefix), later]) + ")")
        for _, prefix_params in equal_prefix:
            params.extend(prefix_params)
        params.extend(later_params)
        equal_prefix.append((same, same_params))
    return "(" + " OR ".join(alternatives) + ")", params


def compile_order(layout: Layout, dialect: Dialect, keys: Sequence[SortKey]) -> str:
    """ORDER BY for the keys: missing values first ascending, last descending."""
    parts = []
    for key in keys:
        col = dialect.quote(layout.column(key.field).name)
        direction = "DESC" if key.descending else "ASC"
        if key.field not in layout.never_null:
            # A portable NULLS FIRST/LAST: order by "is null" before the value.
            parts.append(f"({col} IS NULL) {'ASC' if key.descending else 'DESC'}")
        parts.append(f"{col} {direction}")
    return ", ".join(parts)


def utc_text(value: datetime) -> str:
    """A fixed-width UTC text form of an aware datetime: sorts and compares as the instants do.

    ``YYYY-MM-DDTHH:MM:SS.ffffff`` (microseconds always written, the offset left off).
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:26]


_json_text = json.encoder.encode_basestring  # a JSON string literal, as compact_json writes it


def audit_json(event: DomainEvent) -> str:
    """An event's stored JSON document: :func:`crmkit.events.event_to_data`, encoded compactly.

    The audit row of every stored record is an ``EntityCreated``: written directly, without the
    converter, since a bulk import writes one per row.
    """
    if event.__class__ is not EntityCreated:
        return compact_json(event_to_data(event))
    ref, actor = event.entity, event.actor
    actor_json = "null" if actor is None else _json_text(actor)
    return _created_json(_json_text(ref.kind), ref.id, event.at.isoformat(), actor_json, event.id)


def _created_json(kind_json: str, entity_id: str, at_iso: str, actor_json: str, event_id: str) -> str:
    """The document of an ``EntityCreated`` event, as ``compact_json(event_to_data(event))`` writes it."""
    return (
        f'{{"type":"entity_created","entity":{{"kind":{kind_json},"id":{_json_text(entity_id)}}},'
        f'"at":"{at_iso}","actor":{actor_json},"id":{_json_text(event_id)}}}'
    )


def utc_text_of(iso: str, value: datetime) -> str:
    """:func:`utc_text` of ``value``, cut from its ISO text ``iso`` when that is already UTC.

    Formatting a datetime is the slow part of storing one; the document holds ``value.isoformat()``
    anyway, and for a UTC time the column text is a prefix of it (microseconds always written).
    """
    if iso.endswith("+00:00"):
        return iso[:26] if len(iso) == _ISO_UTC_WITH_FRACTION else f"{iso[:19]}.000000"
    return utc_text(value)


_ISO_UTC_WITH_FRACTION = len("2026-01-01T00:00:00.000000+00:00")

#: The audit columns a new entry fills, in the order of ``SqlTransaction._audit_row``.
AUDIT_COLUMNS = "tenant, event_id, type, entity_kind, entity_id, at, actor, data"

#: ``(row, audit_row)`` of one new record: what ``created(entity, tenant, actor, actor_json)`` returns.
CreatedRows = tuple[list[Any], tuple[Any, ...]]


class RowWriter:
    """Turns entities of one layout into the column values of their row, as fast as Python allows.

    Straight-line functions per layout and dialect are generated from the layout's declared
    fields (identifiers only; converters and the JSON encoder are bound as constants, never written
    into the source): each turns the record into its document once, reads each column's value
    (from the document where that saves work, as for UTC times), converts the kinds the dialect
    cannot store as they are, and appends the JSON text. ``columns`` is the order of the values
    (``id`` first, ``data`` last).
    """

    def __init__(self, layout: Layout, dialect: Dialect) -> None:
        flat = [column for column in layout.columns if "." not in column.field]
        nested = [column for column in layout.columns if "." in column.field]
        self.columns: tuple[Column, ...] = (*flat, *nested)
        functions = _compile_row_functions(layout, dialect, self.columns)
        #: ``values(entity, tenant)``: the tenant, then the columns in order, then the document.
        self.values: Callable[[Entity, str], list[Any]] = functions["values"]
        #: ``created(entity, tenant, actor, actor_json)``: the row of a new record and the audit row
        #: of its ``EntityCreated`` event (columns as ``SqlTransaction._append`` writes them).
        self.created: Callable[[Entity, str, str | None, str], CreatedRows] = functions["created"]


def _document_parts(
    layout: Layout, dialect: Dialect, columns: Sequence[Column]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields whose ISO text, and those whose JSON text, the row writer takes from the document.

    UTC time columns cut their text from the document's text of the same time (and the audit
    document holds ``updated_at``'s); a set of texts a dialect stores as JSON is the document's
    text of it.
    """
    times, texts = ["updated_at"], []
    fields = attrs.fields_dict(layout.cls)
    for column in columns:
        steps = layout.schema.steps(column.field) if column.derive is None else []
        if len(steps) != 1 or steps[0][1]:
            continue
        name = steps[0][0]
        if dialect.converter(column.kind) is utc_text and name not in times:
            times.append(name)
        elif (
            column.kind is FieldKind.TEXT_SET
            and dialect.text_set_is_json
            and fields[name].type == frozenset[str]  # not an optional set: its document text is never null
        ):
            texts.append(name)
    return tuple(times), tuple(texts)


def _document_writer(
    cls: type[Entity], times: tuple[str, ...], texts: tuple[str, ...]
) -> Callable[[Any], Any]:
    """``json_with_times`` for ``cls``, or the same through ``to_data`` for a class it cannot compile.

    (A host's own record class may declare what the compiled writers do not cover, a converter say.)
    """
    try:
        return json_with_times(cls, times, texts)
    except TypeError:
        pass

    def document(entity: Any) -> tuple[Any, ...]:
        data = to_data(entity)
        isos = [None if (value := getattr(entity, name)) is None else value.isoformat() for name in times]
        return (compact_json(data), *isos, *(compact_json(data[name]) for name in texts))

    return document


def _compile_row_functions(layout: Layout, dialect: Dialect, columns: Sequence[Column]) -> dict[str, Any]:
    times, texts = _document_parts(layout, dialect, columns)
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "_doc": _document_writer(layout.cls, times, texts),
        "_ut": utc_text_of,
        "_id": _new_id,
        "_created_json": _created_json,
        "_kind_json": _json_text(layout.cls.kind),
        "_kind": layout.cls.kind,
    }
    iso = {name: f"t{number}" for number, name in enumerate(times)}
    json_of = {name: f"j{number}" for number, name in enumerate(texts)}
    items = []
    at = "None"  # the stored form of updated_at, for the audit row
    for number, column in enumerate(columns):
        steps = layout.schema.steps(column.field) if column.derive is None else []
        convert = dialect.converter(column.kind)
        if convert is not None:
            namespace[f"_c{number}"] = convert
        if column.derive is not None:
            namespace[f"_r{number}"] = column.derive
            read = f"_r{number}(e)"
        elif any(by_key for _, by_key in steps) or not all(name.isidentifier() for name, _ in steps):
            namespace[f"_r{number}"] = functools.partial(layout.schema.read, column.field)
            read = f"_r{number}(e)"
        elif len(steps) == 1:
            read = f"e.{steps[0][0]}"
            if convert is utc_text:  # the document's text of the same time, when it is UTC
                text = iso[steps[0][0]]
                items.append(f"(v{number} := (None if {text} is None else _ut({text}, {read})))")
                at = f"v{number}" if column.field == "updated_at" else at
                continue
            if steps[0][0] in json_of:
                items.append(json_of[steps[0][0]])
                continue
        else:
            # a nested path (``address.country``): missing as soon as a step is missing
            read = f"e.{steps[0][0]}"
            for name, _ in steps[1:]:
                read = f"(None if (t := {read}) is None else t.{name})"
        if convert is None:
            item = read
        else:
            item = f"(None if (v{number} := {read}) is None else _c{number}(v{number}))"
        items.append(f"(v{number} := {item})")
        at = f"v{number}" if column.field == "updated_at" else at
    row = "[" + ", ".join(["s", *items, "j"]) + "]"
    unpack = ", ".join(["j", *iso.values(), *json_of.values()])
    source = (
        "def values(e, s):\n"
        f"    {unpack} = _doc(e)\n"
        f"    return {row}\n"
        "def created(e, s, a, aj):\n"
        f"    {unpack} = _doc(e)\n"
        f"    r = {row}\n"
        "    i = _id()\n"
        f"    return r, (s, i, 'entity_created', _kind, e.id, {at}, a,"
        f" _created_json(_kind_json, e.id, {iso['updated_at']}, aj, i))\n"
    )
    exec(compile(source, f"<crmkit row writer {layout.table}>", "exec"), namespace)  # noqa: S102 - identifiers from the declared schema; values are constants
    return {"values": namespace["values"], "created": namespace["created"]}


# The statement reading one row by id, per table and parameter style.
_ONE_ROW: dict[tuple[str, str], str] = {}


class SqlTransaction(Transaction):
    """A DB-API 2 transaction shared by the SQL adapters; a dialect supplies the differences."""

    dialect: Dialect
    _writers: ClassVar[dict[tuple[type, type], RowWriter]] = {}

    @property
    @abc.abstractmethod
    def cursor(self) -> Any:
        """A DB-API cursor on the transaction's connection."""

    def _writer(self, layout: Layout) -> RowWriter:
        key = (type(self.dialect), layout.cls)
        writer = self._writers.get(key)
        if writer is None:
            writer = self._writers[key] = RowWriter(layout, self.dialect)
        return writer

    def _row_values(self, layout: Layout, entity: Entity) -> list[Any]:
        return self._writer(layout).values(entity, self.tenant)

    def _column_list(self, layout: Layout) -> str:
        columns = (self.dialect.quote(c.name) for c in self._writer(layout).columns)
        return ", ".join(["tenant", *columns, "data"])

    def _insert_sql(self, layout: Layout) -> str:
        marks = ", ".join([self.dialect.param] * (len(layout.columns) + 2))
        return f"INSERT INTO {layout.table} ({self._column_list(layout)}) VALUES ({marks})"

    def _insert(self, cls: type[E], entities: Sequence[E]) -> None:
        layout = layout_of(cls)
        values, tenant = self._writer(layout).values, self.tenant
        self._insert_rows(layout, [values(entity, tenant) for entity in entities])

    def _insert_created(self, cls: type[E], entities: Sequence[E]) -> None:
        """Both rows of each new record, made in one pass (the audit row reuses the record's document)."""
        layout = layout_of(cls)
        rows, audits = self._created_rows(layout, entities)
        self._insert_rows(layout, list(rows))
        self._append_rows(audits)

    def _created_rows(
        self, layout: Layout, entities: Sequence[Entity]
    ) -> tuple[Iterator[list[Any]], list[tuple[Any, ...]]]:
        """The new records' rows, made as they are read, and the list their audit rows fill meanwhile."""
        created, tenant, actor = self._writer(layout).created, self.tenant, self.actor
        actor_json = "null" if actor is None else _json_text(actor)
        audits: list[tuple[Any, ...]] = []
        keep = audits.append

        def rows() -> Iterator[list[Any]]:
            for entity in entities:
                row, audit = created(entity, tenant, actor, actor_json)
                keep(audit)
                yield row

        return rows(), audits

    def _insert_rows(self, layout: Layout, rows: list[list[Any]]) -> None:
        """Write new rows of a table (values in the order of :meth:`_column_list`)."""
        self.cursor.executemany(self._insert_sql(layout), rows)

    def _load(self, layout: Layout, text: Any) -> Entity:
        data = json.loads(text) if isinstance(text, str | bytes) else text
        # Stored rows passed every rule when written: read back with type checks only.
        return from_stored(layout.cls, data)

    def _fetch(self, cls: type[E], ids: Sequence[str]) -> dict[str, E]:
        if not ids:
            return {}
        layout = layout_of(cls)
        where, params = self.dialect.ids_in(ids)
        p = self.dialect.param
        sql = f"SELECT data FROM {layout.table} WHERE tenant = {p} AND {where}"
        self.cursor.execute(sql, [self.tenant, *params])
        loaded = (self._load(layout, row[0]) for row in self.cursor.fetchall())
        return {entity.id: entity for entity in loaded}

    def _fetch_one(self, cls: type[E], id: str) -> E | None:  # noqa: A002 - "id" is the CRM term
        layout = layout_of(cls)
        sql = _ONE_ROW.get((layout.table, self.dialect.param))
        if sql is None:
            p = self.dialect.param
            sql = f"SELECT data FROM {layout.table} WHERE tenant = {p} AND id = {p}"
            _ONE_ROW[layout.table, p] = sql
        self.cursor.execute(sql, (self.tenant, id))
        row = self.cursor.fetchone()
        return None if row is None else self._load(layout, row[0])

    def _existing_ids(self, cls: type[Entity], ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        layout = layout_of(cls)
        where, params = self.dialect.ids_in(ids)
        p = self.dialect.param
        sql = f"SELECT id FROM {layout.table} WHERE tenant = {p} AND {where}"
        self.cursor.execute(sql, [self.tenant, *params])
        return {row[0] for row in self.cursor.fetchall()}

    def _update(self, cls: type[E], entity: E, expected_version: int) -> bool:
        layout = layout_of(cls)
        p = self.dialect.param
        assignments = ", ".join(
            f"{self.dialect.quote(c.name)} = {p}" for c in self._writer(layout).columns[1:]
        )
        sql = (
            f"UPDATE {layout.table} SET {assignments}, data = {p} "
            f"WHERE tenant = {p} AND id = {p} AND version = {p}"
        )
        values = self._row_values(layout, entity)[2:]  # not the tenant and id: they never change
        self.cursor.execute(sql, [*values, self.tenant, entity.id, expected_version])
        return bool(self.cursor.rowcount == 1)

    def _delete(self, cls: type[Entity], id: str, expected_version: int) -> bool:  # noqa: A002
        layout = layout_of(cls)
        p = self.dialect.param
        self.cursor.execute(
            f"DELETE FROM {layout.table} WHERE tenant = {p} AND id = {p} AND version = {p}",
            [self.tenant, id, expected_version],
        )
        return bool(self.cursor.rowcount == 1)

    def _where(
        self, layout: Layout, condition: Condition | None
    ) -> tuple[str, list[Any], Callable[[Any], bool] | None]:
        if condition is None:
            return "", [], None
        now = self.now()  # one moment for the SQL and its Python re-check alike
        sql, params, exact = compile_where(layout, self.dialect, condition, now)
        check = None if exact else layout.schema.compile(condition, clock=FixedClock(now))
        return sql, params, check

    def _select(
        self,
        cls: type[E],
        condition: Condition | None,
        keys: Sequence[SortKey],
        after: Sequence[Any] | None,
        limit: int,
    ) -> Iterable[E]:
        layout = layout_of(cls)
        where, params, check = self._where(layout, condition)
        # The tenant first, and every other clause in parentheses: no condition can widen the scope.
        clauses = [f"tenant = {self.dialect.param}", *([f"({where})"] if where else [])]
        params = [self.tenant, *params]
        if after is not None:
            after_sql, after_params = compile_after(layout, self.dialect, keys, after)
            clauses.append(f"({after_sql})")
            params = [*params, *after_params]
        sql = f"SELECT data FROM {layout.table} WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {compile_order(layout, self.dialect, keys)}"
        if check is None:
            sql += f" LIMIT {int(limit)}"
            self.cursor.execute(sql, params)
            return [self._load(layout, row[0]) for row in self.cursor.fetchall()]
        # Inexact SQL (a superset): filter in Python while reading, until the page is full.
        self.cursor.execute(sql, params)
        found: list[E] = []
        while len(found) < limit:
            rows = self.cursor.fetchmany(max(limit, 100))
            if not rows:
                break
            for row in rows:
                entity = self._load(layout, row[0])
                if check(entity):
                    found.append(entity)
                    if len(found) == limit:
                        break
        return found

    def _count(self, cls: type[Entity], condition: Condition | None) -> int:
        layout = layout_of(cls)
        where, params, check = self._where(layout, condition)
        scope = f"tenant = {self.dialect.param}" + (f" AND ({where})" if where else "")
        params = [self.tenant, *params]
        if check is not None:
            self.cursor.execute(f"SELECT data FROM {layout.table} WHERE {scope}", params)
            total = 0
            while rows := self.cursor.fetchmany(1000):
                total += sum(1 for row in rows if check(self._load(layout, row[0])))
            return total
        self.cursor.execute(f"SELECT COUNT(*) FROM {layout.table} WHERE {scope}", params)
        return int(self.cursor.fetchone()[0])

    def _append(self, events: Sequence[DomainEvent]) -> None:
        if events:
            self._append_rows([self._audit_row(event) for event in events])

    def _append_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Write audit rows (values in the order of :meth:`_audit_row`)."""
        p = self.dialect.param
        sql = (
            f"INSERT INTO crmkit_audit ({AUDIT_COLUMNS}) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
        )
        self.cursor.executemany(sql, rows)

    def _audit_row(self, event: DomainEvent) -> tuple[Any, ...]:
        """The audit table's values for one event, in the column order of :meth:`_append`."""
        return (
            self.tenant,
            event.id,
            type(event).name,
            event.entity.kind,
            event.entity.id,
            self.dialect.to_db(FieldKind.DATETIME, event.at),
            event.actor,
            audit_json(event),
        )

    def _audit(
        self, entity: EntityRef | None, since: datetime | None, until: datetime | None, limit: int
    ) -> list[AuditEntry]:
        p = self.dialect.param
        clauses: list[str] = [f"tenant = {p}"]
        params: list[Any] = [self.tenant]
        if entity is not None:
            clauses.append(f"entity_kind = {p} AND entity_id = {p}")
            params += [entity.kind, entity.id]
        if since is not None:
            clauses.append(f"at >= {p}")
            params.append(self.dialect.to_db(FieldKind.DATETIME, since))
        if until is not None:
            clauses.append(f"at < {p}")
            params.append(self.dialect.to_db(FieldKind.DATETIME, until))
        sql = "SELECT seq, data FROM crmkit_audit WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY seq LIMIT {int(limit)}"
        self.cursor.execute(sql, params)
        return [
            AuditEntry(int(seq), event_from_data(json.loads(data) if isinstance(data, str | bytes) else data))
            for seq, data in self.cursor.fetchall()
        ]

    def _redact_audit(self, values: tuple[str, ...], placeholder: str) -> int:
        p = self.dialect.param
        needles = [search_text(value) for value in values]
        sql = f"SELECT seq, data FROM crmkit_audit WHERE tenant = {p}"
        params: list[Any] = [self.tenant]
        if all(needles):  # else: a value is all escapes; read the whole log rather than miss it
            document = self.dialect.audit_text
            sql += " AND (" + " OR ".join(self.dialect.text_contains(document) for _ in needles) + ")"
            params += needles
        self.cursor.execute(sql, params)
        updates = []
        for seq, stored in self.cursor.fetchall():
            data = json.loads(stored) if isinstance(stored, str | bytes) else stored
            redacted = redact_event_data(data, values, placeholder)
            if redacted != data:
                updates.append([compact_json(redacted), self.tenant, seq])
        if updates:
            assignments = f"data = {p}, redactions = redactions + 1"
            self.cursor.executemany(
                f"UPDATE crmkit_audit SET {assignments} WHERE tenant = {p} AND seq = {p}", updates
            )
        return len(updates)

    def _add_index(self, cls: type[Entity], field: str, *more: tuple[str, bool]) -> None:
        self.cursor.execute(self.dialect.index_ddl(layout_of(cls), field, *more, ordered=True))
        self.dialect.default_statistics(self.cursor)

    # -- state ------------------------------------------------------------------------------

    def _state_get(self, namespace: str, key: str, *, lock: bool) -> StateEntry | None:
        p = self.dialect.param
        where = f"tenant = {p} AND namespace = {p} AND key = {p}"
        sql = f"SELECT value, version FROM crmkit_state WHERE {where}"
        self.cursor.execute(sql + (self.dialect.lock_suffix if lock else ""), [self.tenant, namespace, key])
        row = self.cursor.fetchone()
        return None if row is None else StateEntry(namespace, key, decode_value(row[0]), int(row[1]))

    def _state_insert(self, namespace: str, key: str, text: str) -> bool:
        p = self.dialect.param
        self.cursor.execute(
            "INSERT INTO crmkit_state (tenant, namespace, key, value, version) "
            f"VALUES ({p}, {p}, {p}, {p}, 1) "
            "ON CONFLICT (tenant, namespace, key) DO NOTHING",
            [self.tenant, namespace, key, text],
        )
        return bool(self.cursor.rowcount == 1)

    def _state_update(self, namespace: str, key: str, text: str, expected_version: int) -> bool:
        p = self.dialect.param
        self.cursor.execute(
            f"UPDATE crmkit_state SET value = {p}, version = version + 1 "
            f"WHERE tenant = {p} AND namespace = {p} AND key = {p} AND version = {p}",
            [text, self.tenant, namespace, key, expected_version],
        )
        return bool(self.cursor.rowcount == 1)

    def _state_delete(self, namespace: str, key: str, expected_version: int) -> bool:
        p = self.dialect.param
        self.cursor.execute(
            "DELETE FROM crmkit_state "
            f"WHERE tenant = {p} AND namespace = {p} AND key = {p} AND version = {p}",
            [self.tenant, namespace, key, expected_version],
        )
        return bool(self.cursor.rowcount == 1)

    def _state_scan(
        self, namespace: str, start: str | None, stop: str | None, limit: int
    ) -> list[StateEntry]:
        p = self.dialect.param
        sql = f"SELECT key, value, version FROM crmkit_state WHERE tenant = {p} AND namespace = {p}"
        params: list[Any] = [self.tenant, namespace]
        if start is not None:
            sql += f" AND key >= {p}"
            params.append(start)
        if stop is not None:
            sql += f" AND key < {p}"
            params.append(stop)
        self.cursor.execute(f"{sql} ORDER BY key LIMIT {int(limit)}", params)
        return [
            StateEntry(namespace, key, decode_value(value), int(version))
            for key, value, version in self.cursor.fetchall()
        ]


def date_text(value: date) -> str:
    """The ISO text of a date (sorts as dates do)."""
    return value.isoformat()


def decimal_float(value: Decimal) -> float:
    """The float a SQLite REAL column holds for a Decimal (filtering only; ``data`` keeps the exact value)."""
    return float(value)
