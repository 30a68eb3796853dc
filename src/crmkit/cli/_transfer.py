"""``crmkit import`` and ``crmkit export``: contacts, leads and orders to and from CSV or JSON lines.

An import reads a file row by row, maps its columns to an entity's fields (a column mapping, or the
columns named like the fields), builds each record with the entity's own validation, and stores the good
rows in one transaction. A bad row never stops the import: it goes to a rejects file with its line
number and the error. Re-running the same file stores nothing twice: a row with an external id (or an
order number) gets an id derived from it, and rows without one are matched against the stored records by
email and phone, as the lead engine's match rules do.
"""

from __future__ import annotations

import csv
import hashlib
import json
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TextIO

import attrs

from crmkit.entities import ENTITY_TYPES, Contact, Entity, Lead
from crmkit.errors import CrmError, Problem, ValidationError
from crmkit.leads import MatchIndex, MatchRule
from crmkit.serialization import from_data, to_data

if TYPE_CHECKING:
    from pathlib import Path

    from crmkit.storage import Store

#: The kinds ``crmkit import`` reads.
IMPORT_KINDS = ("contact", "lead", "order")
#: The columns that carry a row's external id when ``--id-column`` does not name one.
EXTERNAL_ID_COLUMNS = ("external_id",)
_MATCH_RULES = (MatchRule(name="email", keys=("email",)), MatchRule(name="phone", keys=("phone",)))
_STORE_OWNED = frozenset({"version", "updated_at"})
_ORDER_LINE_FIELDS = ("amount", "quantity", "unit_price", "description", "product_id", "discount", "tax_rate")
_TRUE = frozenset({"true", "yes", "y", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "f"})
_BATCH = 1_000
# The key of a broken row's reason: never a column name (csv.DictReader keeps extra cells under it too).
_BROKEN: Any = None
# How RowMapper reads a column's cells.
_SKIP, _EXTERNAL_ID, _TEXT, _TYPED, _CONTACT, _LINE, _CUSTOM, _NESTED = range(8)


class UserError(Exception):
    """A mistake in the command's input (a file, a mapping, an option): exit status 1, one line."""


@attrs.frozen
class Reject:
    """A row an import did not store.

    Attributes:
        line: The row's line number in the file (the header is line 1 of a CSV file).
        problems: What is wrong, each with the field's path.
        row: The row as read.
    """

    line: int
    problems: tuple[Problem, ...]
    row: Mapping[str, Any]


@attrs.frozen
class ImportSummary:
    """What an import did.

    Attributes:
        kind: The kind of record imported.
        read: Rows read.
        stored: Rows stored as new records.
        skipped: Rows already stored (the same external id, order number or id, or a match by email or
            phone), left unchanged.
        rejected: The rows not stored, with their line numbers and errors.
        ignored_columns: Columns that map to no field.
    """

    kind: str
    read: int
    stored: int
    skipped: int
    rejected: tuple[Reject, ...]
    ignored_columns: tuple[str, ...]


def external_id(kind: str, value: str) -> str:
    """The record id an import gives the row with this external id: stable, so re-runs find it."""
    return hashlib.sha256(f"crmkit-import:{kind}:{value}".encode()).hexdigest()[:32]


# Reading.


def read_rows(path: Path, file_format: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, row)`` from a CSV file (with a header) or a JSON-lines file."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        msg = f"cannot read {path}: {error.strerror or error}"
        raise UserError(msg) from error
    with handle:
        try:
            yield from _csv_rows(handle, path) if file_format == "csv" else _json_rows(handle)
        except UnicodeDecodeError as error:
            msg = f"{path} is not UTF-8 text (byte {error.start} of a line cannot be read); save it as UTF-8"
            raise UserError(msg) from None
        except csv.Error as error:
            msg = f"{path} is not a readable CSV file: {error}"
            raise UserError(msg) from None


def _csv_rows(handle: TextIO, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(handle)
    if not reader.fieldnames:
        msg = f"{path} is empty: a CSV file starts with a header line naming its columns"
        raise UserError(msg)
    for row in reader:
        if row.get(None) == []:
            del row[None]
        yield reader.line_num, row  # extra cells sit under the key None: the row is refused


def _json_rows(handle: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, {_BROKEN: f"not JSON: {error.msg} at column {error.colno}"}
            continue
        yield number, value if isinstance(value, dict) else {_BROKEN: "a JSON line holds one object"}


def _field_types(cls: type[Entity]) -> dict[str, frozenset[type]]:
    hints = typing.get_type_hints(cls)
    result: dict[str, frozenset[type]] = {}
    for field in attrs.fields(cls):
        hint = hints[field.name]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        bases = (typing.get_origin(option) or option for option in options)
        result[field.name] = frozenset(base for base in bases if isinstance(base, type))
    return result


def _boolean(text: str, target: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValidationError.single(target, f"{text!r} is not true or false (true/false, yes/no, 1/0)")


def _integer(text: str, target: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValidationError.single(target, f"{text!r} is not a whole number") from None


def _collection(text: str, kinds: frozenset[type]) -> Any:
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # validation reports that it is not a list
    if frozenset in kinds:  # tags: "vip; newsletter"
        return [part.strip() for part in text.replace(",", ";").split(";") if part.strip()]
    return text


def _convert(value: str, kinds: frozenset[type], target: str) -> Any:
    """Read a CSV text as the field's type (booleans, whole numbers, lists); other texts stay text."""
    text = value.strip()
    if bool in kinds:
        return _boolean(text, target)
    if int in kinds:
        return _integer(text, target)
    if kinds & {tuple, frozenset, list, dict}:
        return _collection(text, kinds)
    return text


def _refuse_row(found: Any) -> None:
    """A row the reader marked as broken: extra cells (a list) or not one JSON object (a message)."""
    message = found if isinstance(found, str) else f"{len(found)} more cells than the header has columns"
    raise ValidationError.single("", message)


class RowMapper:
    """Turns a file's rows into an entity's JSON-ready data, by a column mapping.

    Args:
        kind: ``"contact"``, ``"lead"`` or ``"order"``.
        mapping: Field (or ``address.city``, ``custom.<name>``, ``amount``...) -> column name; columns
            named like a field need no entry.
        id_column: The column holding the external id; ``external_id`` when present, and the order
            number for orders, by default.
    """

    def __init__(self, kind: str, mapping: Mapping[str, str], id_column: str | None = None) -> None:
        if kind not in IMPORT_KINDS:
            msg = f"cannot import {kind!r}; one of: {', '.join(IMPORT_KINDS)}"
            raise UserError(msg)
        self.kind = kind
        self.cls: type[Entity] = ENTITY_TYPES[kind]
        self.types = _field_types(self.cls)
        self.columns = {column: target for target, column in mapping.items()}
        self.id_column = id_column
        self.ignored: dict[str, None] = {}
        self._routes: dict[str, tuple[int, str]] = {}

    def _target(self, column: str) -> str | None:
        target = self.columns.get(column, column)
        head = target.split(".", 1)[0]
        known = head in self.types or head == "custom" or target in {"external_id", "contact_external_id"}
        if self.kind == "order" and target in _ORDER_LINE_FIELDS:
            known = True
        if not known or head in _STORE_OWNED:
            if column not in self.columns and head not in _STORE_OWNED:
                self.ignored[column] = None
            return None
        return target

    def _route(self, column: str) -> tuple[int, str]:
        """How a column's cells are read, worked out once per column: a step code and the target."""
        if column == self.id_column or (self.id_column is None and column == "external_id"):
            return _EXTERNAL_ID, ""
        target = self._target(column)
        if target is None:
            step = _SKIP
        elif target == "contact_external_id":
            step = _CONTACT
        elif self.kind == "order" and target in _ORDER_LINE_FIELDS:
            step = _LINE
        elif target.startswith("custom."):
            step = _CUSTOM
        elif "." in target:
            step = _NESTED
        elif self.types[target] <= {str, type(None)}:
            step = _TEXT
        else:
            step = _TYPED
        return step, target or ""

    def data(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The entity data of one row and its external id (if any).

        Raises:
            ValidationError: A row with more cells than the header has columns, or not one object, or a
                cell that is not a number or a boolean where the field needs one.
        """
        if _BROKEN in row:
            _refuse_row(row[_BROKEN])
        data: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        line: dict[str, Any] = {}
        ext: str | None = None
        routes = self._routes
        for column, raw in row.items():
            route = routes.get(column)
            if route is None:
                route = routes[column] = self._route(column)
            step, target = route
            if step == _SKIP:
                continue
            value = raw.strip() if isinstance(raw, str) else raw
            if value is None or value == "":
                continue
            if step == _TEXT:
                data[target] = value
            elif step == _EXTERNAL_ID:
                ext = str(value)
            else:
                self._place(step, target, value, (data, extra, line))
        return self._finish(data, extra, line, ext)

    def _finish(
        self, data: dict[str, Any], extra: dict[str, Any], line: dict[str, Any], ext: str | None
    ) -> tuple[dict[str, Any], str | None]:
        """Add the order line, the id derived from the external id, and the custom fields."""
        if self.kind == "order":
            self._order_line(data, line)
            if ext is None and isinstance(data.get("number"), str):
                ext = data["number"]
        if ext is not None:
            extra.setdefault("external_id", ext)
            data.setdefault("id", external_id(self.kind, ext))
        if extra:
            custom = data.setdefault("custom_fields", {})
            if isinstance(custom, dict):
                custom.update(extra)
        return data, ext

    def _place(self, step: int, target: str, value: Any, into: tuple[dict[str, Any], ...]) -> None:
        """Put one cell where its step says: a typed field, a reference, the order line, a custom field."""
        data, extra, line = into
        if step == _TYPED:
            data[target] = _convert(value, self.types[target], target) if isinstance(value, str) else value
        elif step == _CONTACT:
            data["contact_id"] = external_id("contact", str(value))
        elif step == _LINE:
            line[target] = value
        elif step == _CUSTOM:
            extra[target[len("custom.") :]] = value
        else:
            head, rest = target.split(".", 1)
            data.setdefault(head, {})[rest] = value

    @staticmethod
    def _order_line(data: dict[str, Any], line: dict[str, Any]) -> None:
        """Flat order columns (``amount`` or ``quantity`` x ``unit_price``) become one order line."""
        if not line or "lines" in data:
            return
        currency = data.get("currency")
        price = line.pop("unit_price", None) or line.pop("amount", None)
        line.pop("amount", None)
        item: dict[str, Any] = {
            "quantity": line.pop("quantity", "1"),
            "description": line.pop("description", ""),
        }
        item["unit_price"] = {"amount": price, "currency": currency}
        item.update(line)
        data["lines"] = [item]


def _problems(error: CrmError) -> tuple[Problem, ...]:
    if isinstance(error, ValidationError):
        return tuple(error.problems)
    return (Problem("", str(error)),)


def import_file(
    store: Store,
    kind: str,
    path: Path,
    *,
    file_format: Literal["csv", "jsonl"] = "csv",
    mapping: Mapping[str, str] | None = None,
    id_column: str | None = None,
    progress: typing.Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import a CSV or JSON-lines file of contacts, leads or orders into ``store``.

    Good rows are stored in one transaction; bad rows are returned with their line numbers and errors.
    Rows already stored are skipped (see the module docstring), so a re-run stores nothing twice.

    Raises:
        UserError: The file cannot be read, or the kind is not importable.
    """
    mapper = RowMapper(kind, mapping or {}, id_column)
    with store.transaction(actor="import") as tx:
        batch = _Batch(tx[mapper.cls])
        index = _match_index(tx, kind)
        read = 0
        for line, row in read_rows(path, file_format):
            read += 1
            try:
                data, ext = mapper.data(row)
                entity = from_data(mapper.cls, data)
            except ValidationError as error:
                batch.rejects.append(Reject(line, _problems(error), row))
                continue
            if index is not None and ext is None and "id" not in data:
                if index.find(entity):
                    batch.skipped += 1
                    continue
                index.add(entity)
            batch.pending.append((line, row, entity))
            if len(batch.pending) >= _BATCH:
                batch.flush()
                if progress is not None:
                    progress(read)
        batch.flush()
        tx.commit()
    rejects = sorted(batch.rejects, key=lambda reject: reject.line)
    return ImportSummary(kind, read, batch.stored, batch.skipped, tuple(rejects), tuple(mapper.ignored))


class _Batch:
    """Rows waiting to be stored together, and the running counts."""

    def __init__(self, repository: Any) -> None:
        self.repository = repository
        self.pending: list[tuple[int, Mapping[str, Any], Entity]] = []
        self.rejects: list[Reject] = []
        self.stored = 0
        self.skipped = 0

    def flush(self) -> None:
        """Store the pending rows whose id is not stored yet; skip the others."""
        present = _existing_ids(self.repository, [entity.id for _, _, entity in self.pending])
        fresh: list[tuple[int, Mapping[str, Any], Entity]] = []
        for line, row, entity in self.pending:
            if entity.id in present:
                self.skipped += 1
            else:
                present.add(entity.id)
                fresh.append((line, row, entity))
        report = self.repository.bulk_add([entity for _, _, entity in fresh])
        self.stored += len(report.stored)
        for rejected in report.rejected:
            line, row, _ = fresh[rejected.index]
            self.rejects.append(Reject(line, _problems(rejected.error), row))
        self.pending.clear()


def _existing_ids(repository: Any, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        page = repository.query({"field": "id", "op": "in", "value": chunk}, limit=len(chunk))
        found.update(entity.id for entity in page.items)
    return found


def _match_index(tx: Any, kind: str) -> MatchIndex | None:
    """Stored leads and contacts indexed by email and phone, for rows without an external id."""
    if kind == "order":
        return None
    index = MatchIndex(_MATCH_RULES)
    index.add_many(tx[Lead if kind == "lead" else Contact].stream())
    return index


def write_rejects(rejects: Sequence[Reject], path: Path) -> None:
    """Write the rejected rows as CSV: line, field, error, and the row as JSON."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "field", "error", "row"])
        for reject in rejects:
            row = json.dumps(dict(reject.row), ensure_ascii=False, default=str)
            for problem in reject.problems:
                writer.writerow([reject.line, problem.path, problem.message, row])


# Export.


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """One record's data as flat columns: nested objects dotted (``address.city``), lists as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key == "custom_fields" and not prefix and isinstance(value, Mapping):
            for custom, item in value.items():
                flat[f"custom.{custom}"] = _cell(item)
        elif isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = _cell(value)
    return flat


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str) if value else ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | Decimal):
        return str(value)
    return value


def export_records(
    store: Store,
    kind: str,
    out: TextIO,
    *,
    file_format: Literal["csv", "json", "jsonl"] = "csv",
    where: Mapping[str, Any] | None = None,
) -> int:
    """Write every ``kind`` record (for which ``where`` holds) to ``out``; return how many.

    Raises:
        UserError: For an unknown kind.
    """
    cls = ENTITY_TYPES.get(kind)
    if cls is None:
        msg = f"cannot export {kind!r}; one of: {', '.join(sorted(ENTITY_TYPES))}"
        raise UserError(msg)
    count = 0
    with store.transaction() as tx:
        records = tx[cls].stream(where)
        if file_format == "csv":
            names = [f"{f.name}" for f in attrs.fields(cls) if f.name != "custom_fields"]
            rows = [flatten(to_data(record)) for record in records]
            columns: dict[str, None] = dict.fromkeys(names) if not rows else {}
            for row in rows:
                columns.update(dict.fromkeys(row))
            ordered = sorted(
                columns,
                key=lambda c: (
                    names.index(c.split(".", 1)[0]) if c.split(".", 1)[0] in names else len(names),
                    c,
                ),
            )
            writer = csv.DictWriter(out, fieldnames=ordered, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
                count += 1
            return count
        if file_format == "json":
            out.write("[")
            for record in records:
                out.write(("," if count else "") + "\n  " + json.dumps(to_data(record), ensure_ascii=False))
                count += 1
            out.write("\n]\n" if count else "]\n")
            return count
        for record in records:
            out.write(json.dumps(to_data(record), ensure_ascii=False) + "\n")
            count += 1
    return count


def parse_mapping(items: Sequence[str], mapping_file: Path | None) -> dict[str, str]:
    """Build a column mapping from ``field=column`` options and a JSON file of the same."""
    mapping: dict[str, str] = {}
    if mapping_file is not None:
        try:
            loaded = json.loads(mapping_file.read_text(encoding="utf-8"))
        except OSError as error:
            msg = f"cannot read the mapping {mapping_file}: {error.strerror or error}"
            raise UserError(msg) from error
        except json.JSONDecodeError as error:
            msg = f"the mapping {mapping_file} is not JSON: {error.msg} (line {error.lineno})"
            raise UserError(msg) from error
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            msg = f"the mapping {mapping_file} must be one JSON object of field names to column names"
            raise UserError(msg)
        mapping.update(loaded)
    for item in items:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            msg = f"--map takes field=column, got {item!r}"
            raise UserError(msg)
        mapping[field.strip()] = column.strip()
    return mapping


__all__ = [
    "ImportSummary",
    "Reject",
    "RowMapper",
    "UserError",
    "export_records",
    "import_file",
    "parse_mapping",
    "write_rejects",
]
