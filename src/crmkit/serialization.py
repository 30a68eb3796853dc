"""Turn crmkit records into JSON-ready data and back, losslessly.

One :data:`converter` (a ``cattrs.Converter``) knows every crmkit class. Its
data form is plain JSON:

=====================  ==========================================================
Python                 data
=====================  ==========================================================
``Decimal``            string, ``"12.50"`` (an int is accepted when reading)
``datetime``           ISO 8601 string with its UTC offset; a naive one is refused
``date`` / ``time``    ISO 8601 string
enum member            its value, ``"web_form"``
``tuple``              list
``frozenset``          sorted list
:class:`Money`         ``{"amount": "12.50", "currency": "EUR"}``
custom field values    ``str``, ``int``, ``float``, ``bool``, ``None`` as they are;
                       ``{"$decimal": "1.5"}``, ``{"$datetime": "..."}``,
                       ``{"$date": "2026-01-31"}`` for the others
=====================  ==========================================================

Reading is strict: unknown keys, missing required keys, values of the wrong
JSON type and records that fail their own validation all surface as one
:class:`~crmkit.errors.ValidationError` naming each path
(``lines[0].unit_price.amount``, ``email``, ``unexpected_key``). Values are
read without coercion (``5`` is not a name), then the record's constructor
checks and normalises them; the record's own rules are reported once the data
has the right shape.

:func:`to_data` and :func:`from_data` run functions compiled once per class
(with the converter's own hook for every leaf value), so writing and reading
many rows is fast; :func:`to_json` writes the same data's JSON text directly,
without building the dict first. ``converter`` itself works as cattrs made it.
"""

from __future__ import annotations

import enum
import json
import types
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    CattrsError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn

from crmkit._validation import _COERCE, _filler, _Source, fail, storable, trusted_builder, type_check
from crmkit.entities import CustomValue
from crmkit.errors import Problem, ValidationError

__all__ = ["converter", "from_data", "from_json", "to_data", "to_json"]

T = TypeVar("T")

_CUSTOM_FIELDS = dict[str, CustomValue]
_DECIMAL_TAG = "$decimal"
_DATETIME_TAG = "$datetime"
_DATE_TAG = "$date"

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
"""The converter for every crmkit class; use :func:`to_data` and :func:`from_data` for the checked API."""


def to_data(obj: Any) -> dict[str, Any]:
    """Return a crmkit record or value as a JSON-ready dict.

    Args:
        obj: An attrs instance from crmkit (an entity, :class:`Money`, ...).

    Raises:
        ValidationError: If ``obj`` is not such an instance.
    """
    cls = type(obj)
    function = _TO_DATA.get(cls)
    if function is None:
        if not attrs.has(cls):
            fail(f"expected a crmkit record or value, got {cls.__name__}")
        function = _unstructurer(cls)
    data: dict[str, Any] = function(obj)
    return data


def from_data(cls: type[T], data: Any) -> T:
    """Build a ``cls`` from the data :func:`to_data` produces.

    Args:
        cls: The class to build, for example ``Lead``.
        data: A mapping as read from JSON.

    Raises:
        ValidationError: With one problem per wrong key, missing key, wrong value
            or failed rule, each naming its path.
    """
    function = _FROM_DATA.get(cls)
    if function is None:
        if not _compilable(cls):
            try:
                return converter.structure(data, cls)
            except (CattrsError, ValidationError) as exc:
                raise ValidationError(_problems(exc)) from None
        function = _structurer(cls)
    result: T = function(data, cls)
    return result


def to_json(obj: Any) -> str:
    """Return a crmkit record or value as compact JSON text: :func:`to_data`, encoded.

    The text is what ``json.dumps(to_data(obj), ensure_ascii=False, separators=(",", ":"))``
    gives, written directly from the record by a function compiled once per class.

    Raises:
        ValidationError: If ``obj`` is not a crmkit record or value.
    """
    cls = type(obj)
    function = _TO_JSON.get(cls)
    if function is None:
        if not attrs.has(cls):
            fail(f"expected a crmkit record or value, got {cls.__name__}")
        if not _compilable(cls):
            return compact_json(to_data(obj))
        function = _json_writer(cls)
    return function(obj)


def from_json(cls: type[T], text: str | bytes) -> T:
    """Build a ``cls`` from a JSON string (see :func:`from_data`).

    Raises:
        ValidationError: If ``text`` is not JSON (path ``""``) or does not describe a valid ``cls``.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        fail(f"not valid JSON: {exc}")
    return from_data(cls, data)


# Translating cattrs' exception groups into Problems.


def _problems(exc: BaseException) -> list[Problem]:
    return list(_walk(exc, ()))


def _at(steps: tuple[str | int, ...], problem: Problem) -> Problem:
    for step in reversed(steps):
        problem = problem.under(step)
    return problem


def _walk(exc: BaseException, steps: tuple[str | int, ...]) -> Iterator[Problem]:
    if isinstance(exc, ValidationError):
        yield from (_at(steps, problem) for problem in exc.problems)
    elif isinstance(exc, ClassValidationError | IterableValidationError):
        yield from _walk_group(exc, steps)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield _at((*steps, key), Problem("", "unexpected key"))
    elif isinstance(exc, KeyError):
        yield _at(steps, Problem("", "required key is missing"))
    else:
        yield _at(steps, Problem("", str(exc) or type(exc).__name__))


def _walk_group(
    exc: ClassValidationError | IterableValidationError, steps: tuple[str | int, ...]
) -> Iterator[Problem]:
    """Follow each sub-exception to the attribute name or list index its cattrs note records."""
    placed: list[tuple[BaseException, str | int]]
    if isinstance(exc, ClassValidationError):
        with_names, unplaced = exc.group_exceptions()
        placed = [(sub, note.name) for sub, note in with_names]
    else:
        with_indices, unplaced = exc.group_exceptions()
        placed = [(sub, note.index) for sub, note in with_indices]
    for sub, step in placed:
        yield from _walk(sub, (*steps, step))
    for sub in unplaced:
        yield from _walk(sub, steps)


# Structuring hooks: strict about JSON types, no silent coercion.


def _wrong_type(expected: str, value: Any) -> NoReturn:
    fail(f"expected {expected}, got {type(value).__name__}")


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    _wrong_type("a string", value)


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    _wrong_type("an integer", value)


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    _wrong_type("a number", value)


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    _wrong_type("true or false", value)


def _structure_decimal(value: Any, _: type) -> Decimal:
    # An int is exact, so it is accepted; a float is not, so it is refused.
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if not isinstance(value, str):
        _wrong_type("a decimal string", value)
    try:
        return Decimal(value)
    except InvalidOperation:
        fail(f"{value!r} is not a decimal number")


def _structure_datetime(value: Any, _: type) -> datetime:
    if not isinstance(value, str):
        _wrong_type("an ISO 8601 date-time string", value)
    try:
        result = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{value!r} is not an ISO 8601 date-time")
    if result.utcoffset() is None:
        fail(f"{value!r} has no UTC offset")
    return result


def _structure_date(value: Any, _: type) -> date:
    if not isinstance(value, str):
        _wrong_type("an ISO 8601 date string", value)
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{value!r} is not an ISO 8601 date")


def _structure_time(value: Any, _: type) -> time:
    if not isinstance(value, str):
        _wrong_type("an ISO 8601 time string", value)
    try:
        return time.fromisoformat(value)
    except ValueError:
        fail(f"{value!r} is not an ISO 8601 time")


def _is_custom_fields(cls: Any) -> bool:
    return bool(cls == _CUSTOM_FIELDS)


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
        return cls(value)
    except (ValueError, TypeError):
        allowed = ", ".join(str(member.value) for member in cls)
        fail(f"{value!r} is not one of: {allowed}")


def _is_homogeneous_tuple(cls: Any) -> bool:
    args = get_args(cls)
    return get_origin(cls) is tuple and len(args) == 2 and args[1] is Ellipsis  # noqa: PLR2004 - tuple[X, ...]


def _is_frozenset(cls: Any) -> bool:
    return get_origin(cls) is frozenset


def _collection_hook(cls: Any) -> Callable[[Any, Any], Any]:
    item_type = get_args(cls)[0]
    item_hook = converter.get_structure_hook(item_type)
    build = tuple if get_origin(cls) is tuple else frozenset

    structure = _collection_from_data(item_hook, item_type, build)

    def structure_collection(value: Any, _: Any) -> Any:
        return structure(value)

    return structure_collection


def _record_hook(cls: type) -> Callable[[Any, Any], Any]:
    generated: Callable[[Mapping[str, Any], Any], Any] = make_dict_structure_fn(cls, converter)

    def structure_record(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            _wrong_type("an object", value)
        return generated(value, cls)

    return structure_record


def _decode_custom_value(value: Any) -> CustomValue:
    if value is None or isinstance(value, str | int | float):
        return value  # bool is an int, so every JSON scalar passes
    if isinstance(value, Mapping) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag == _DECIMAL_TAG:
            return _structure_decimal(text, Decimal)
        if tag == _DATETIME_TAG:
            return _structure_datetime(text, datetime)
        if tag == _DATE_TAG:
            return _structure_date(text, date)
    expected = f"a string, number, boolean, null or one of {_DECIMAL_TAG}, {_DATETIME_TAG}, {_DATE_TAG}"
    raise ValidationError.single("", f"expected {expected}, got {value!r}")


def _structure_custom_fields(value: Any, _: Any) -> dict[str, CustomValue]:
    if not isinstance(value, Mapping):
        _wrong_type("an object", value)
    result: dict[str, CustomValue] = {}
    problems: list[Problem] = []
    for key, item in value.items():
        try:
            result[key] = _decode_custom_value(item)
        except ValidationError as exc:
            problems.extend(problem.under(str(key)) for problem in exc.problems)
    if problems:
        raise ValidationError(problems)
    return result


# Unstructuring hooks.


def _encode_custom_value(value: CustomValue) -> Any:
    if isinstance(value, Decimal):
        return {_DECIMAL_TAG: str(value)}
    if isinstance(value, datetime):
        return {_DATETIME_TAG: value.isoformat()}
    if isinstance(value, date):
        return {_DATE_TAG: value.isoformat()}
    return value


def _unstructure_custom_fields(values: dict[str, CustomValue]) -> dict[str, Any]:
    return {key: _encode_custom_value(value) for key, value in values.items()}


def _unstructure_collection_hook(cls: Any) -> Callable[[Any], list[Any]]:
    item_hook = converter.get_unstructure_hook(get_args(cls)[0])
    if get_origin(cls) is frozenset:

        def unstructure_set(values: frozenset[Any]) -> list[Any]:
            # Sorted, so equal sets always give identical JSON (stable diffs and hashes).
            return sorted(item_hook(value) for value in values)

        return unstructure_set

    def unstructure_tuple(values: tuple[Any, ...]) -> list[Any]:
        return [item_hook(value) for value in values]

    return unstructure_tuple


def _enum_value(member: enum.Enum) -> Any:
    return member.value


def _isoformat(value: date | time) -> str:
    return value.isoformat()


def _configure() -> None:
    for cls, hook in (
        (str, _structure_str),
        (int, _structure_int),
        (float, _structure_float),
        (bool, _structure_bool),
        (Decimal, _structure_decimal),
        (datetime, _structure_datetime),
        (date, _structure_date),
        (time, _structure_time),
        # StrEnum and IntEnum too: they would otherwise dispatch to the str and int hooks.
        (enum.Enum, _structure_enum),
        (enum.StrEnum, _structure_enum),
        (enum.IntEnum, _structure_enum),
    ):
        converter.register_structure_hook(cls, hook)
    converter.register_structure_hook_func(_is_custom_fields, _structure_custom_fields)
    converter.register_structure_hook_factory(_is_homogeneous_tuple, _collection_hook)
    converter.register_structure_hook_factory(_is_frozenset, _collection_hook)
    converter.register_structure_hook_factory(attrs.has, _record_hook)

    converter.register_unstructure_hook(Decimal, str)
    # StrEnum members are str instances and would pass through as enum members;
    # class hooks on the enum bases win over the str hook, giving JSON-native values.
    for base in (enum.Enum, enum.StrEnum, enum.IntEnum):
        converter.register_unstructure_hook(base, _enum_value)
    for cls in (datetime, date, time):
        converter.register_unstructure_hook(cls, _isoformat)
    converter.register_unstructure_hook_func(_is_custom_fields, _unstructure_custom_fields)
    converter.register_unstructure_hook_factory(_is_homogeneous_tuple, _unstructure_collection_hook)
    converter.register_unstructure_hook_factory(_is_frozenset, _unstructure_collection_hook)


_configure()
_identity = converter.get_unstructure_hook(str)


# Compiled per-class functions for to_data and from_data.
#
# Why: cattrs' generated functions go through per-call dispatch, exception groups and notes, which made
# reading one record cost tens of microseconds. These functions do the same work with the same hooks for
# every leaf value, inline only the cases where that hook returns the value itself, and report problems
# directly. The source holds only field names (checked identifiers) and generated local names; every
# key, hook and type is bound as a constant. ``converter`` itself is unchanged.

_TO_DATA: dict[type, Callable[[Any], dict[str, Any]]] = {}
_FROM_DATA: dict[type, Callable[[Any, Any], Any]] = {}
_FROM_STORED: dict[type, Callable[[Any, Any], Any]] = {}


def _compilable(cls: type) -> bool:
    """Whether the compiled functions cover ``cls``: attrs, with every field going to ``__init__`` as is."""
    return attrs.has(cls) and all(
        field.init and field.converter is None and field.name.isidentifier() for field in attrs.fields(cls)
    )


def _unstructurer(cls: type) -> Callable[[Any], Any]:
    if not _compilable(cls):
        hook: Callable[[Any], Any] = converter.get_unstructure_hook(cls)
        return hook
    function = _TO_DATA.get(cls)
    if function is None:
        function = _TO_DATA[cls] = _compile_to_data(cls)
    return function


def _structurer(cls: type, *, stored: bool = False) -> Callable[[Any, Any], Any]:
    if not _compilable(cls):
        hook: Callable[[Any, Any], Any] = converter.get_structure_hook(cls)
        return hook
    cache = _FROM_STORED if stored else _FROM_DATA
    function = cache.get(cls)
    if function is None:
        function = cache[cls] = _compile_from_data(cls, stored=stored)
    return function


def from_stored(cls: type[T], data: Any) -> T:
    """Build a ``cls`` from data a crmkit store wrote with :func:`to_data` (private, for adapters).

    The same as :func:`from_data`, except that the field rules and cross-field rules, which the
    record passed when it was stored, are not run again (see ``_validation.trusted_builder``):
    every key and value is still checked for its type. Data in exactly the form :func:`to_data`
    writes takes one generated pass; anything else (a missing key, a loose form, a wrong value) goes
    the long way, which reports every problem as :func:`from_data` does.
    """
    function = _LOADERS.get(cls)
    if function is None:
        if not _compilable(cls):
            return from_data(cls, data)
        function = _LOADERS[cls] = _compile_loader(cls)
    result: T = function(data)
    return result


def _optional_of(annotation: Any) -> Any | None:
    args = get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType) and len(args) == 2 and type(None) in args:  # noqa: PLR2004
        return next(arg for arg in args if arg is not type(None))
    return None


def _value_to_data(src: _Source, annotation: Any, v: str) -> str:  # noqa: PLR0911 - one return per kind
    """The expression turning the local ``v`` of the declared ``annotation`` into data, as cattrs does."""
    inner = _optional_of(annotation)
    if inner is not None:
        return f"(None if {v} is None else {_value_to_data(src, inner, v)})"
    if attrs.has(annotation) and _compilable(annotation):
        return f"{src.const(_unstructurer(annotation))}({v})"
    if (_is_homogeneous_tuple(annotation) or _is_frozenset(annotation)) and attrs.has(
        get_args(annotation)[0]
    ):
        item = src.const(_unstructurer(get_args(annotation)[0]))
        if _is_frozenset(annotation):
            return f"{src.const(sorted)}([{item}(x) for x in {v}])"
        return f"[{item}(x) for x in {v}]"
    hook = converter.get_unstructure_hook(annotation)
    if hook is _identity:
        return v
    if hook is _isoformat:
        return f"{v}.isoformat()"
    return f"{src.const(hook)}({v})"


def _compile_to_data(cls: type) -> Callable[[Any], dict[str, Any]]:
    attrs.resolve_types(cls)
    src = _Source()
    src.emit(0, "def to_data(i):")
    src.emit(1, "return {")
    for field in attrs.fields(cls):
        value = _value_to_data(src, field.type, f"i.{field.name}")
        src.emit(2, f"{src.const(field.name)}: {value},")
    src.emit(1, "}")
    return src.build("to_data")


# Compiled per-class functions for to_json: the text ``compact_json(to_data(obj))`` gives, written
# directly. Each leaf becomes its JSON text as the standard encoder writes it (texts through its
# C string encoder, times as their ISO text in quotes, ...), so no intermediate dict is built; a
# value of a shape these functions do not know goes through its converter hook and the encoder.

_TO_JSON: dict[type, Callable[[Any], str]] = {}
_WITH_TIMES: dict[tuple[type, tuple[str, ...], tuple[str, ...]], Callable[[Any], tuple[Any, ...]]] = {}

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_json_text = json.encoder.encode_basestring  # a JSON string literal, as ensure_ascii=False writes it


def _compact_encoder() -> Callable[[Any], str]:
    """``_COMPACT.encode`` without the encoder object it builds on every call (half its cost).

    The C encoder is made once, without the circular-reference markers: the values are plain
    trees built by the converter. Other Pythons (no C encoder) use the plain method.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has the C encoder
        return _COMPACT.encode
    # markers, default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan
    flags = {"sort_keys": False, "skipkeys": False, "allow_nan": True}
    encode = make(None, _COMPACT.default, _json_text, None, ":", ",", *flags.values())
    join = "".join

    def compact(value: Any) -> str:
        return join(encode(value, 0))

    return compact


#: ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, faster: the one encoder of
#: every stored document and of :func:`to_json`.
compact_json = _compact_encoder()


def _custom_fields_json(values: dict[str, CustomValue]) -> str:
    """``compact_json(_unstructure_custom_fields(values))``; texts, integers, bools and nulls directly."""
    parts = []
    for key, value in values.items():
        if type(value) is str:
            parts.append(f"{_json_text(key)}:{_json_text(value)}")
        elif type(value) is int:
            parts.append(f"{_json_text(key)}:{int.__repr__(value)}")
        elif value is None or type(value) is bool:
            parts.append(f"{_json_text(key)}:{'null' if value is None else 'true' if value else 'false'}")
        else:
            parts.append(f"{_json_text(key)}:{compact_json(_encode_custom_value(value))}")
    return "{" + ",".join(parts) + "}"


def _value_to_json(src: _Source, annotation: Any, v: str) -> str:  # noqa: PLR0911 - one return per kind
    """The expression giving the JSON text of the local ``v``: ``compact_json`` of its data."""
    inner = _optional_of(annotation)
    if inner is not None:
        return f'("null" if {v} is None else {_value_to_json(src, inner, v)})'
    if attrs.has(annotation) and _compilable(annotation):
        return f"{src.const(_json_writer(annotation))}({v})"
    hook = converter.get_unstructure_hook(annotation)
    leaf = _leaf_to_json(src, annotation, hook, v)
    if leaf is not None:
        return leaf
    text, dump = src.const(_json_text), src.const(compact_json)
    if _is_frozenset(annotation) and get_args(annotation)[0] is str:
        # sorted, as the frozenset hook writes it
        join, order = src.const(",".join), src.const(sorted)
        return f'("[" + {join}({src.const(map)}({text}, {order}({v}))) + "]")'
    if _is_custom_fields(annotation):
        return f'("{{}}" if not {v} else {src.const(_custom_fields_json)}({v}))'
    if _is_homogeneous_tuple(annotation) and attrs.has(get_args(annotation)[0]):
        item, join = src.const(_json_writer(get_args(annotation)[0])), src.const(",".join)
        return f'("[]" if not {v} else "[" + {join}([{item}(x) for x in {v}]) + "]")'
    if hook is _identity:
        return f"{dump}({v})"
    return f"{dump}({src.const(hook)}({v}))"


def _leaf_to_json(src: _Source, annotation: Any, hook: Any, v: str) -> str | None:  # noqa: PLR0911 - one return per kind
    """The JSON text expression of a single value the encoder writes as text, a number or a bool."""
    text, dump = src.const(_json_text), src.const(compact_json)
    if annotation is str and hook is _identity:
        # as the encoder writes a str or a subclass (a StrEnum member); anything else raises
        # TypeError, and the whole value takes the general path
        return f"{text}({v})"
    if annotation is bool and hook is _identity:
        return f'("true" if {v} is True else "false" if {v} is False else {dump}({v}))'
    if annotation is int and hook is _identity:
        return f"({src.const(int.__repr__)}({v}) if {v}.__class__ is {src.const(int)} else {dump}({v}))"
    if hook is _isoformat:
        return f"('\"' + {v}.isoformat() + '\"')"
    if hook is _enum_value and isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return f"{text}({v}.value)"
    if annotation is Decimal and hook is str:
        return f"{text}({src.const(str)}({v}))"
    return None


def _json_writer(cls: type) -> Callable[[Any], str]:
    function = _TO_JSON.get(cls)
    if function is None:
        function = _TO_JSON[cls] = _compile_to_json(cls)
    return function


def _compile_to_json(
    cls: type, times: tuple[str, ...] = (), texts: tuple[str, ...] = ()
) -> Callable[[Any], Any]:
    """``to_json(i)`` for a compilable class; with ``times`` or ``texts``, ``(text, iso, ..., json, ...)``.

    ``times`` names datetime fields whose ISO text (as the document holds it, ``None`` when the
    value is ``None``) is returned beside the text, ``texts`` fields whose own JSON text (as it
    is inside the document) is, so a caller needing another form of a value makes it once.
    """
    attrs.resolve_types(cls)
    src = _Source()
    src.emit(0, "def to_json(i):")
    src.emit(1, "try:")
    pieces = []
    for number, field in enumerate(attrs.fields(cls)):
        src.emit(2, f"v = i.{field.name}")
        if field.name in times:
            src.emit(2, f"t{number} = None if v is None else v.isoformat()")
            value = f"\"null\" if t{number} is None else '\"' + t{number} + '\"'"
        else:
            value = _value_to_json(src, field.type, "v")
        src.emit(2, f"p{number} = {value}")
        pieces.append(f'"{field.name}":{{p{number}}}')  # a checked identifier: nothing to escape
    text = "f'{{" + ",".join(pieces) + "}}'"
    numbers = {field.name: number for number, field in enumerate(attrs.fields(cls))}
    kept = [f"t{numbers[name]}" for name in times] + [f"p{numbers[name]}" for name in texts]
    src.emit(1, f"except {src.const(TypeError)}:  # a value of another type than declared")
    dump = src.const(compact_json)
    src.emit(2, f"d = {src.const(to_data)}(i)")
    isos = [f"(None if (v := i.{name}) is None else v.isoformat())" for name in times]
    src.emit(2, f"return {', '.join([f'{dump}(d)', *isos, *(f'{dump}(d[{name!r}])' for name in texts)])}")
    src.emit(1, f"return {', '.join([text, *kept])}")
    return src.build("to_json")


def _is_time(annotation: Any) -> bool:
    return annotation is datetime or _optional_of(annotation) is datetime


def json_with_times(
    cls: type, times: tuple[str, ...], texts: tuple[str, ...] = ()
) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving ``(to_json(obj), ISO text of each of times, ..., JSON text of each of texts, ...)``.

    For the stores, which need a stored record's document and other forms of some of its values.

    Raises:
        TypeError: If ``cls`` is not a class :func:`to_json` compiles, a name in ``times`` is
            not one of its datetime fields, or a name in ``texts`` not one of its fields.
    """
    key = (cls, times, texts)
    function = _WITH_TIMES.get(key)
    if function is None:
        known = attrs.has(cls) and _compilable(cls)
        fields = attrs.fields(attrs.resolve_types(cls)) if known else ()
        if (
            not known
            or not set(times) <= {field.name for field in fields if _is_time(field.type)}
            or not set(texts) <= {field.name for field in fields}
        ):
            msg = f"cannot compile a JSON writer of {cls.__name__} keeping {times!r} and {texts!r}"
            raise TypeError(msg)
        function = _WITH_TIMES[key] = _compile_to_json(cls, times, texts)
    return function


def _collection_from_data(
    item_hook: Callable[[Any, Any], Any], item_type: Any, build: type
) -> Callable[[Any], Any]:
    """Structure a list into ``build`` (tuple or frozenset) of items, naming each bad item's index."""

    def structure_collection(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            _wrong_type("a list", value)
        items = []
        problems: list[Problem] = []
        for index, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except (CattrsError, ValidationError) as exc:
                problems.extend(problem.under(index) for problem in _problems(exc))
        if problems:
            raise ValidationError(problems)
        return build(items)

    return structure_collection


def _value_from_data(src: _Source, annotation: Any, depth: int, target: str, *, stored: bool = False) -> None:
    """Emit the statements setting ``target`` from the local ``v`` read for a field of type ``annotation``."""
    inner = _optional_of(annotation)
    if inner is not None and converter.get_structure_hook(annotation) == converter._structure_optional:  # noqa: SLF001
        src.emit(depth, "if v is None:")
        src.emit(depth + 1, f"{target} = None")
        src.emit(depth, "else:")
        _value_from_data(src, inner, depth + 1, target, stored=stored)
        return
    hook = converter.get_structure_hook(annotation)
    if attrs.has(annotation) and _compilable(annotation):
        src.emit(depth, f"{target} = {src.const(_structurer(annotation, stored=stored))}(v, None)")
        return
    if (_is_homogeneous_tuple(annotation) or _is_frozenset(annotation)) and attrs.has(
        get_args(annotation)[0]
    ):
        item_type = get_args(annotation)[0]
        build = tuple if _is_homogeneous_tuple(annotation) else frozenset
        function = _collection_from_data(_structurer(item_type, stored=stored), item_type, build)
        src.emit(depth, f"{target} = {src.const(function)}(v)")
        return
    exact = _EXACT_HOOKS.get(hook)
    if exact is not None and annotation is exact:
        src.emit(depth, f"if v.__class__ is {src.const(exact)}:")
        src.emit(depth + 1, f"{target} = v")
        src.emit(depth, "else:")
        src.emit(depth + 1, f"{target} = {src.const(hook)}(v, {src.const(annotation)})")
        return
    if hook is _structure_enum and isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        members = src.const({member.value: member for member in annotation if isinstance(member.value, str)})
        src.emit(depth, f"m = {members}.get(v) if v.__class__ is {src.const(str)} else None")
        src.emit(depth, f"{target} = {src.const(hook)}(v, {src.const(annotation)}) if m is None else m")
        return
    src.emit(depth, f"{target} = {src.const(hook)}(v, {src.const(annotation)})")


_EXACT_HOOKS: dict[Any, type] = {_structure_str: str, _structure_int: int, _structure_bool: bool}

# The stored-record loaders: one generated pass over data in exactly to_data's form.
_LOADERS: dict[type, Callable[[Any], Any]] = {}


class _NotExact(Exception):  # a private signal, never raised to callers
    """The data is not in exactly to_data's form: take the long way."""


def _compile_loader(cls: type) -> Callable[[Any], Any]:
    """Return ``load(data)`` for ``cls``: straight-line reads and exact-type checks, else the long way.

    Each field's value must be of the exact JSON type ``to_data`` writes for it; it is converted
    (times, enums, nested records, collections) and checked with the field's type check only, and
    stored into the new record as the trusted builder does. The first surprise of any kind hands
    the data to :func:`from_data`'s structurer with the trusted builder at its end.
    """
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    src = _Source()
    slow = src.const(_structurer(cls, stored=True))
    not_exact, text = src.const(_NotExact), src.const(str)
    ok_text = src.const(storable)
    src.emit(0, "def load(o):")
    src.emit(1, f"if o.__class__ is not {src.const(dict)} or {src.const(len)}(o) != {len(fields)}:")
    src.emit(2, f"return {slow}(o, None)")
    src.emit(1, "try:")
    src.emit(2, f"c = {src.const(object.__new__)}({src.const(_filler(cls))})")
    for field in fields:
        attribute = field.name
        src.emit(2, f"v = o[{src.const(field.name)}]")
        annotation = field.type
        inner = _optional_of(annotation)
        depth = 2
        if inner is not None:
            src.emit(2, "if v is None:")
            src.emit(3, f"c.{attribute} = None")
            src.emit(2, "else:")
            depth, annotation = 3, inner
        if field.metadata.get(_COERCE) is None and annotation is str:
            # ASCII without NUL is storable: checked without a call, the rest by storable().
            fine = f'((v.isascii() and "\\x00" not in v) or {ok_text}(v))'
            src.emit(depth, f"if v.__class__ is not {text} or not {fine}:")
            src.emit(depth + 1, f"raise {not_exact}")
            src.emit(depth, f"c.{attribute} = v")
        elif field.metadata.get(_COERCE) is None and annotation in (int, bool):
            src.emit(depth, f"if v.__class__ is not {src.const(annotation)}:")
            src.emit(depth + 1, f"raise {not_exact}")
            src.emit(depth, f"c.{attribute} = v")
        elif attrs.has(annotation) and _compilable(annotation):
            src.emit(depth, f"c.{attribute} = {src.const(_loader_of(annotation))}(v)")
        elif _is_homogeneous_tuple(annotation) and _compilable(item := get_args(annotation)[0]):
            src.emit(depth, f"if v.__class__ is not {src.const(list)}:")
            src.emit(depth + 1, f"raise {not_exact}")
            load_item = src.const(_loader_of(item))
            src.emit(depth, f"c.{attribute} = {src.const(tuple)}([{load_item}(x) for x in v])")
        else:
            hook = src.const(converter.get_structure_hook(annotation))
            check = src.const(field.metadata.get(_COERCE) or type_check(annotation))
            src.emit(depth, f"c.{attribute} = {check}({hook}(v, {src.const(annotation)}))")
    src.emit(2, f"c.__class__ = {src.const(cls)}")
    src.emit(2, "return c")
    src.emit(1, f"except {src.const(Exception)}:")
    src.emit(2, f"return {slow}(o, None)")
    return src.build("load")


def _loader_of(cls: type) -> Callable[[Any], Any]:
    """The loader of a nested record class; raises :class:`_NotExact` where the outer one must bail."""
    loader = _LOADERS.get(cls)
    if loader is None:
        loader = _LOADERS[cls] = _compile_loader(cls)
    return loader


def _missing(key: str) -> Problem:
    return Problem(key, "required key is missing")


def _unexpected(keys: set[Any]) -> list[Problem]:
    return [Problem("", "unexpected key").under(key) for key in sorted(keys)]


def _field_problems(problems: list[Problem], exc: BaseException, key: str) -> None:
    problems.extend(problem.under(key) for problem in _problems(exc))


def _constructor_problems(exc: BaseException) -> ValidationError:
    return ValidationError(_problems(exc))


def _compile_from_data(cls: type, *, stored: bool = False) -> Callable[[Any, Any], Any]:
    attrs.resolve_types(cls)
    src = _Source()
    verror, field_problems = src.const(ValidationError), src.const(_field_problems)
    src.emit(0, "def from_data(o, _):")
    src.emit(1, f"if not {src.const(isinstance)}(o, {src.const(Mapping)}):")
    src.emit(2, f"{src.const(_wrong_type)}({src.const('an object')}, o)")
    src.emit(1, "res = {}")
    src.emit(1, "p = []")
    for field in attrs.fields(cls):
        key, alias = src.const(field.name), src.const(field.alias or field.name)
        src.emit(1, f"if {key} in o:")
        src.emit(2, "try:")
        src.emit(3, f"v = o[{key}]")
        _value_from_data(src, field.type, 3, f"res[{alias}]", stored=stored)
        src.emit(2, f"except {src.const(Exception)} as e:")
        src.emit(3, f"{field_problems}(p, e, {key})")
        if field.default is attrs.NOTHING:
            src.emit(1, "else:")
            src.emit(2, f"p.append({src.const(_missing)}({key}))")
    allowed = src.const(frozenset(field.name for field in attrs.fields(cls)))
    src.emit(1, f"unknown = {src.const(set)}(o.keys()) - {allowed}")
    src.emit(1, "if unknown:")
    src.emit(2, f"p.extend({src.const(_unexpected)}(unknown))")
    src.emit(1, "if p:")
    src.emit(2, f"raise {verror}(p)")
    build = trusted_builder(cls) if stored else None
    src.emit(1, "try:")
    if build is not None:
        src.emit(2, f"return {src.const(build)}(res)")
    else:
        src.emit(2, f"return {src.const(cls)}(**res)")
    src.emit(1, f"except {src.const(Exception)} as e:")
    src.emit(2, f"raise {src.const(_constructor_problems)}(e) from None")
    return src.build("from_data")
