"""Declarative validation for crmkit's attrs classes (private machinery).

A class opts in by inheriting :class:`Validated`. On first construction, a
*plan* is built once for the class from its resolved field types: one check
per field that accepts the declared type (and the loose forms crmkit converts,
such as a ``str`` for an enum or a list for a tuple) and returns the
normalised value. Extra rules are declared beside the field::

    email: str | None = attrs.field(default=None, metadata=rules(email))

After ``__init__`` every field is checked, normalised values are written back,
the class's cross-field check runs if the fields were sound, and all problems
found are raised together as one :class:`~crmkit.errors.ValidationError`
whose paths name the fields (``lines[1].quantity``).

A check is a callable taking the value and returning the normalised value; it
reports bad input by raising ``ValidationError`` with paths relative to the
value (``""`` for the value itself).
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crmkit.errors import Problem, ValidationError
from crmkit.money import check_currency
from crmkit.normalize import normalize_email, normalize_name, normalize_phone

Check = Callable[[Any], Any]

_RULES = "crmkit.rules"
_COERCE = "crmkit.coerce"
_MAX_ID = 64
_COUNTRY = re.compile(r"[A-Z]{2}")
_WHITESPACE = re.compile(r"\s")

_PLANS: dict[type, tuple[tuple[str, Check], ...]] = {}


def rules(*checks: Check) -> dict[str, Any]:
    """Return field metadata declaring ``checks`` to run, in order, after the type check.

    The checks are skipped when the value is ``None`` (an optional field left empty).
    """
    return {_RULES: checks}


def coerce_with(check: Check) -> dict[str, Any]:
    """Return field metadata replacing the type-driven check of a field by ``check``."""
    return {_COERCE: check}


def fail(message: str, path: str = "") -> NoReturn:
    """Raise the ValidationError for one problem at ``path`` (relative to the value)."""
    raise ValidationError.single(path, message)


class Validated:
    """Base for attrs classes whose fields are checked and normalised after ``__init__``."""

    __slots__ = ()

    def __attrs_post_init__(self) -> None:
        validate(self)

    def _cross_field_problems(self) -> Iterable[Problem]:
        """Return the problems that involve several fields; runs only when each field is sound."""
        return ()


def validate(instance: Validated) -> None:
    """Check, normalise in place and cross-check ``instance``; raise every problem found at once."""
    problems: list[Problem] = []
    for name, check in _plan(type(instance)):
        value = getattr(instance, name)
        try:
            normalised = check(value)
        except ValidationError as exc:
            problems.extend(problem.under(name) for problem in exc.problems)
            continue
        if normalised is not value:
            # Frozen classes: writing back the normalised value is part of construction.
            object.__setattr__(instance, name, normalised)
    if not problems:
        problems.extend(instance._cross_field_problems())  # noqa: SLF001 - the class's own hook
    if problems:
        raise ValidationError(problems)


def _plan(cls: type) -> tuple[tuple[str, Check], ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _build_plan(cls)
    return plan


V = TypeVar("V", bound=Validated)


def replace(instance: V, /, **changes: Any) -> V:
    """Return a copy of ``instance`` with ``changes`` applied, checking only what changed.

    The changed fields get their full field checks (and normalisation), then
    the class's cross-field rules run on the result. Unchanged fields were
    checked when ``instance`` was built and are not checked again, which is
    what makes this much cheaper than ``attrs.evolve`` on hot paths such as
    lifecycle transitions. Keys are attribute names (``_x``, not the ``x``
    alias).

    Raises:
        ValidationError: Every problem with the changed fields, or the
            cross-field problems; ``instance`` is unchanged either way.
    """
    cls = type(instance)
    checks = dict(_plan(cls))
    problems: list[Problem] = []
    for name in changes:
        if name not in checks:
            problems.append(Problem(name, f"{cls.__name__} has no field {name!r}"))
    if problems:
        raise ValidationError(problems)
    copy = object.__new__(cls)
    for name in checks:
        object.__setattr__(copy, name, getattr(instance, name))
    for name, value in changes.items():
        try:
            object.__setattr__(copy, name, checks[name](value))
        except ValidationError as exc:
            problems.extend(problem.under(name) for problem in exc.problems)
    if not problems:
        problems.extend(copy._cross_field_problems())  # noqa: SLF001 - the class's own hook
    if problems:
        raise ValidationError(problems)
    return copy


def _build_plan(cls: type) -> tuple[tuple[str, Check], ...]:
    attrs.resolve_types(cls)
    plan = []
    for field in attrs.fields(cls):
        check = field.metadata.get(_COERCE) or type_check(field.type)
        extra: tuple[Check, ...] = field.metadata.get(_RULES, ())
        plan.append((field.name, _with_rules(check, extra) if extra else check))
    return tuple(plan)


def _with_rules(check: Check, extra: tuple[Check, ...]) -> Check:
    def checked(value: Any) -> Any:
        value = check(value)
        if value is None:
            return None
        for rule in extra:
            value = rule(value)
        return value

    return checked


def type_check(annotation: Any) -> Check:
    """Return the check accepting values of ``annotation`` (and the loose forms crmkit converts).

    Raises:
        TypeError: If the annotation is not one crmkit's classes use (a programming error).
    """
    origin, args = get_origin(annotation), get_args(annotation)
    simple = _SIMPLE.get(annotation)
    if simple is not None:
        return simple
    if origin in (Union, types.UnionType) and type(None) in args and len(args) == 2:  # noqa: PLR2004 - X | None
        return _optional(type_check(next(arg for arg in args if arg is not type(None))))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:  # noqa: PLR2004 - tuple[X, ...]
        return _tuple_of(type_check(args[0]))
    if origin is frozenset and len(args) == 1:
        return _frozenset_of(type_check(args[0]))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_member(annotation)
    if isinstance(annotation, type) and attrs.has(annotation):
        return _instance_of(annotation)
    msg = f"crmkit cannot validate fields of type {annotation!r}"
    raise TypeError(msg)


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    fail(f"expected a string, got {type(value).__name__}")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    fail(f"expected an integer, got {type(value).__name__}")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    fail(f"expected true or false, got {type(value).__name__}")


def decimal(value: Any) -> Decimal:
    """Accept a finite Decimal, an int or a numeric string; refuse floats as inexact."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            fail(f"{value!r} is not a decimal number")
    else:
        fail(f"expected a Decimal, int or numeric string, got {type(value).__name__}")
    if not result.is_finite():
        fail(f"{value!r} is not a finite number")
    return result


def aware_datetime(value: Any) -> datetime:
    """Accept only timezone-aware datetimes: a naive one has no single meaning."""
    if not isinstance(value, datetime):
        fail(f"expected a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        fail(f"datetime {value.isoformat()} has no timezone; crmkit stores aware datetimes only")
    return value


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    fail(f"expected a date, got {type(value).__name__}")


def _time(value: Any) -> time:
    if isinstance(value, time):
        return value
    fail(f"expected a time of day, got {type(value).__name__}")


_SIMPLE: dict[Any, Check] = {
    str: _str,
    int: _int,
    bool: _bool,
    Decimal: decimal,
    datetime: aware_datetime,
    date: _date,
    time: _time,
}


def _optional(check: Check) -> Check:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)

    return optional


def _items(value: Any, expected: str) -> Iterator[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        fail(f"expected {expected}, got {type(value).__name__}")
    return iter(value)


def _tuple_of(check: Check) -> Check:
    def tuple_of(value: Any) -> tuple[Any, ...]:
        result = []
        problems: list[Problem] = []
        for index, item in enumerate(_items(value, "a list")):
            try:
                result.append(check(item))
            except ValidationError as exc:
                problems.extend(problem.under(index) for problem in exc.problems)
        if problems:
            raise ValidationError(problems)
        return tuple(result)

    return tuple_of


def _frozenset_of(check: Check) -> Check:
    def frozenset_of(value: Any) -> frozenset[Any]:
        result = set()
        problems: list[Problem] = []
        for item in _items(value, "a collection"):
            try:
                result.add(check(item))
            except ValidationError as exc:
                # A set has no positions, so the problem names the member instead.
                problems.extend(Problem(p.path, f"{item!r}: {p.message}") for p in exc.problems)
        if problems:
            raise ValidationError(problems)
        return frozenset(result)

    return frozenset_of


def _enum_member(enum_type: type[enum.Enum]) -> Check:
    allowed = ", ".join(str(member.value) for member in enum_type)

    def member(value: Any) -> enum.Enum:
        if isinstance(value, enum_type):
            return value
        try:
            return enum_type(value)
        except (ValueError, TypeError):
            fail(f"{value!r} is not one of: {allowed}")

    return member


def _instance_of(cls: type) -> Check:
    def instance(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        fail(f"expected a {cls.__name__}, got {type(value).__name__}")

    return instance


# Rules shared by several classes, for use with ``rules(...)``.


def identifier(value: str) -> str:
    """An id: 1 to 64 characters without whitespace, so it is safe in URLs, logs and keys."""
    if not value or len(value) > _MAX_ID or _WHITESPACE.search(value):
        fail(f"{value!r} is not an id: 1 to {_MAX_ID} characters without whitespace")
    return value


def non_empty(value: str) -> str:
    """Strip surrounding whitespace and refuse an empty result."""
    stripped = value.strip()
    if not stripped:
        fail("must not be empty")
    return stripped


def short_label(value: str) -> str:
    """A stage, tag or skill name: stripped, 1 to 64 characters."""
    stripped = non_empty(value)
    if len(stripped) > _MAX_ID:
        fail(f"{stripped!r} is longer than {_MAX_ID} characters")
    return stripped


def non_negative(value: Decimal | int) -> Decimal | int:
    """A quantity, count or capacity: zero or more."""
    if value < 0:
        fail(f"must not be negative, got {value}")
    return value


def fraction(value: Decimal) -> Decimal:
    """A probability or discount: between 0 and 1 inclusive."""
    if not 0 <= value <= 1:
        fail(f"must be between 0 and 1, got {value}")
    return value


def name(value: str) -> str:
    """A person's or company's name, whitespace collapsed."""
    return normalize_name(value, field="")


def email(value: str) -> str:
    """An email address in its canonical lower-case form."""
    return normalize_email(value, field="")


def phone(value: str) -> str:
    """A phone number in E.164 form; national numbers need a leading ``+`` here."""
    return normalize_phone(value, field="")


def currency(value: str) -> str:
    """An active ISO 4217 currency code, upper-cased."""
    return check_currency(value, field="")


def country(value: str) -> str:
    """An ISO 3166-1 alpha-2 country code (shape only), upper-cased."""
    code = value.strip().upper()
    if not _COUNTRY.fullmatch(code):
        fail(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def iana_timezone(value: str) -> str:
    """An IANA time zone name such as ``Europe/Paris``, known to :mod:`zoneinfo`."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"{value!r} is not an IANA time zone name")
    return value


def not_before(later: datetime | None, earlier: datetime | None, path: str, what: str) -> list[Problem]:
    """Return a problem at ``path`` when both times are set and ``later`` precedes ``earlier``."""
    if later is not None and earlier is not None and later < earlier:
        return [Problem(path, f"must not be before {what}")]
    return []
