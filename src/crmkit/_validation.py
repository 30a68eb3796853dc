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

Cross-field rules are methods marked with :func:`cross_rule`, naming the fields
they read; :func:`replace` runs only the rules that read a changed field.

Speed: the plan is also compiled into one straight-line function per class
(see :func:`_compile_validator`) that skips ``None`` optionals and values that
already have the exact declared type, and falls back to the plan's check for
anything else, so every problem and normalised value is the plan's own.
"""

from __future__ import annotations

import enum
import keyword
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, time, timezone
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
_VALIDATORS: dict[type, Callable[[Any], None]] = {}
# Keyed by the class and the names of the changed fields, in order.
_REPLACERS: dict[tuple[Any, ...], Callable[[Any, dict[str, Any]], Any]] = {}
_RULE_FIELDS: dict[Callable[..., Any], frozenset[str]] = {}
_RULES_OF: dict[type, tuple[tuple[frozenset[str], CrossRule], ...]] = {}

#: A cross-field rule: a method taking the record and the record it was replaced from (or ``None``).
CrossRule = Callable[[Any, Any], Iterable[Problem]]
R = TypeVar("R", bound=Callable[..., Iterable[Problem]])


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


def cross_rule(*fields: str) -> Callable[[R], R]:
    """Mark a method of a :class:`Validated` class as a cross-field rule reading ``fields``.

    The method takes ``self`` and ``before``: ``None`` when the record is being
    built, or the valid record it is a :func:`replace` of, so a rule may check
    only what changed (a stage history that grew by one entry needs only its
    new entry checked). Rules run in the order of the class hierarchy (base
    first) and of definition, and only once every field is sound on its own;
    :func:`replace` runs only the rules that read a changed field.
    """

    def mark(method: R) -> R:
        _RULE_FIELDS[method] = frozenset(fields)
        return method

    return mark


def _rules_of(cls: type) -> tuple[tuple[frozenset[str], CrossRule], ...]:
    found = _RULES_OF.get(cls)
    if found is None:
        by_name: dict[str, tuple[frozenset[str], CrossRule]] = {}
        for klass in reversed(cls.__mro__):
            for attribute, value in vars(klass).items():
                if callable(value) and value in _RULE_FIELDS:
                    by_name[attribute] = (_RULE_FIELDS[value], value)
        found = _RULES_OF[cls] = tuple(by_name.values())
    return found


class Validated:
    """Base for attrs classes whose fields are checked and normalised after ``__init__``."""

    __slots__ = ()

    def __attrs_post_init__(self) -> None:
        validate(self)

    def _cross_field_problems(self) -> Iterable[Problem]:
        """Return the problems that involve several fields; runs only when each field is sound.

        By default, the problems of every :func:`cross_rule` of the class.
        """
        problems: list[Problem] = []
        for _, rule in _rules_of(type(self)):
            problems.extend(rule(self, None))
        return problems


def validate(instance: Validated) -> None:
    """Check, normalise in place and cross-check ``instance``; raise every problem found at once."""
    validator = _VALIDATORS.get(type(instance))
    if validator is None:
        cls = type(instance)
        validator = _VALIDATORS[cls] = _compile_validator(cls)
        _install_init(cls)
    validator(instance)


def _validate_by_plan(instance: Validated) -> None:
    """The reference implementation the compiled validators must agree with (used by the tests)."""
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
    the class's cross-field rules that read a changed field run on the result
    (all of them for a class that overrides ``_cross_field_problems`` itself).
    Unchanged fields were checked when ``instance`` was built and are not
    checked again, which is what makes this much cheaper than ``attrs.evolve``
    on hot paths such as lifecycle transitions. Keys are attribute names
    (``_x``, not the ``x`` alias).

    Raises:
        ValidationError: Every problem with the changed fields, or the
            cross-field problems; ``instance`` is unchanged either way.
    """
    key = (type(instance), *changes)
    replacer = _REPLACERS.get(key)
    if replacer is None:
        replacer = _REPLACERS[key] = _compile_replacer(type(instance), tuple(changes))
    result: V = replacer(instance, changes)
    return result


def _replace_by_plan(instance: V, /, **changes: Any) -> V:
    """The reference :func:`replace` the fast one must agree with (used by the tests)."""
    cls = type(instance)
    checks = dict(_plan(cls))
    problems = [
        Problem(name, f"{cls.__name__} has no field {name!r}") for name in changes if name not in checks
    ]
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
        problems.extend(copy._cross_field_problems())
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


# Compiled validators and replacers.
#
# Why generate code: a check per field through a closure costs a Python call
# even for an empty optional, which made a 30-field record cost tens of
# microseconds. The source is built only from the class's own field names
# (checked identifiers); every check, rule and key is bound as a constant
# (``_c0``) in the function's namespace, never written into the source. The
# fast branches are taken only when the plan's check would return the value
# itself; everything else goes through the plan's check, so problems and
# normalised values are exactly the plan's.


class _Source:
    """The namespace and lines of one generated function."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__builtins__": {}}
        self.lines: list[str] = []

    def const(self, value: Any) -> str:
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def build(self, name: str) -> Callable[..., Any]:
        code = compile("\n".join(self.lines) + "\n", f"<crmkit generated {name}>", "exec")
        exec(code, self.namespace)  # noqa: S102 - source built from field names only, values bound as constants
        function: Callable[..., Any] = self.namespace[name]
        return function


def _attribute(name: str) -> str:
    """Return ``name`` for use as an attribute in generated source, after checking it is an identifier."""
    if not name.isidentifier() or keyword.iskeyword(name):
        msg = f"crmkit cannot compile a field named {name!r}"
        raise TypeError(msg)
    return name


def _every_exact(values: Iterable[Any], cls: type) -> bool:
    """True when every item is exactly of class ``cls`` (not a subclass), and text is storable."""
    for value in values:
        if value.__class__ is not cls or (isinstance(value, str) and not storable(value)):
            return False
    return True


def _exact_class(annotation: Any) -> type | None:
    """The class whose exact instances the type check returns unchanged, if it is that simple."""
    if annotation in (str, int, bool, date, time):
        return annotation  # type: ignore[no-any-return]
    if isinstance(annotation, type) and (issubclass(annotation, enum.Enum) or attrs.has(annotation)):
        return annotation
    return None


def _accepts(src: _Source, annotation: Any, v: str) -> str | None:  # noqa: PLR0911 - one branch per shape
    """An expression over the local ``v``, true only when ``type_check(annotation)(v)`` returns ``v`` itself.

    For a tuple or frozenset the plan's check builds an equal new container; keeping the caller's
    immutable one instead is indistinguishable.
    """
    exact = _exact_class(annotation)
    if exact is str:
        # storable() inlined for ASCII text without NUL, the common case; anything else asks it.
        storable_ = f"({v}.isascii() and {src.const(NUL)} not in {v} or {src.const(storable)}({v}))"
        return f"({v}.__class__ is {src.const(str)} and {storable_})"
    if exact is not None:
        return f"{v}.__class__ is {src.const(exact)}"
    if annotation is Decimal:
        return f"({v}.__class__ is {src.const(Decimal)} and {v}.is_finite())"
    if annotation is datetime:
        # ``utcoffset()`` calls the tzinfo through a slow generic method call; a fixed-offset
        # ``timezone`` (UTC among them) always has an offset, and cannot be subclassed.
        aware = f"({v}.tzinfo.__class__ is {src.const(timezone)} or {v}.utcoffset() is not None)"
        return f"({v}.__class__ is {src.const(datetime)} and {aware})"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:  # noqa: PLR2004 - tuple[X, ...]
        item = _exact_class(args[0])
        if item is not None:
            every = src.const(_every_exact)
            return f"({v}.__class__ is {src.const(tuple)} and (not {v} or {every}({v}, {src.const(item)})))"
    if origin is frozenset and len(args) == 1:
        item = _exact_class(args[0])
        if item is not None:
            every = src.const(_every_exact)
            return (
                f"({v}.__class__ is {src.const(frozenset)} and (not {v} or {every}({v}, {src.const(item)})))"
            )
    return None


def _optional_inner(annotation: Any) -> Any | None:
    """``X`` for an annotation ``X | None``, else None."""
    args = get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType) and type(None) in args and len(args) == 2:  # noqa: PLR2004
        return next(arg for arg in args if arg is not type(None))
    return None


def _field_code(  # noqa: PLR0917 - private; the two emitters make it one generator for two uses
    src: _Source,
    field: attrs.Attribute[Any],
    check: Check,
    depth: int,
    on_value: Callable[[int, str], None],
    on_error: Callable[[int], None],
) -> None:
    """Emit the check of the local ``v`` for one field.

    ``on_value(depth, expr)`` emits what to do with a normalised value ``expr`` (which is ``v`` when
    unchanged), ``on_error(depth)`` what to do with the ``ValidationError`` ``e``.
    """
    full = src.const(check)
    extra: tuple[Check, ...] = field.metadata.get(_RULES, ())
    annotation = field.type
    if _COERCE in field.metadata:
        accept = None
    else:
        inner = _optional_inner(annotation)
        if inner is not None:
            # The plan's check returns None for None and skips the rules.
            src.emit(depth, "if v is None:")
            on_value(depth + 1, "v")
            src.emit(depth, "else:")
            depth += 1
            annotation = inner
        accept = _accepts(src, annotation, "v")
    verror = src.const(ValidationError)
    if accept is not None:
        src.emit(depth, f"if {accept}:")
        if extra:
            chain = "v"
            for rule in extra:
                chain = f"{src.const(rule)}({chain})"
            src.emit(depth + 1, "try:")
            src.emit(depth + 2, f"n = {chain}")
            src.emit(depth + 1, f"except {verror} as e:")
            on_error(depth + 2)
            src.emit(depth + 1, "else:")
            on_value(depth + 2, "n")
        else:
            on_value(depth + 1, "v")
        src.emit(depth, "else:")
        depth += 1
    src.emit(depth, "try:")
    src.emit(depth + 1, f"n = {full}(v)")
    src.emit(depth, f"except {verror} as e:")
    on_error(depth + 1)
    src.emit(depth, "else:")
    on_value(depth + 1, "n")


def _under(problems: list[Problem], error: ValidationError, name: str) -> None:
    problems.extend(problem.under(name) for problem in error.problems)


def _compile_validator(cls: type) -> Callable[[Any], None]:
    """Return the function that checks, normalises in place and cross-checks an instance of ``cls``."""
    plan = dict(_plan(cls))
    src = _Source()
    setter, under, verror = src.const(object.__setattr__), src.const(_under), src.const(ValidationError)
    src.emit(0, "def validate(i):")
    src.emit(1, "p = []")
    for field in attrs.fields(cls):
        key = src.const(field.name)

        def on_value(depth: int, expr: str, key: str = key) -> None:
            if expr == "v":
                src.emit(depth, "pass")
            else:
                src.emit(depth, f"if {expr} is not v:")
                src.emit(depth + 1, f"{setter}(i, {key}, {expr})")

        def on_error(depth: int, key: str = key) -> None:
            src.emit(depth, f"{under}(p, e, {key})")

        src.emit(1, f"v = i.{_attribute(field.name)}")
        _field_code(src, field, plan[field.name], 1, on_value, on_error)
    src.emit(1, "if p:")
    src.emit(2, f"raise {verror}(p)")
    src.emit(1, "c = i._cross_field_problems()")
    src.emit(1, "if c:")
    src.emit(2, f"c = {src.const(list)}(c)")
    src.emit(2, "if c:")
    src.emit(3, f"raise {verror}(c)")
    return src.build("validate")


# A default the generated ``__init__`` may leave unchecked: immutable, and returned unchanged by its
# field's check (checks are pure, so what held when the class was compiled holds on every call).
_IMMUTABLE_DEFAULTS = (type(None), bool, int, str, Decimal, date, time, datetime)
# Factories whose every product is an empty container; when the check accepts one as it is, a fresh
# one needs no check either.
_EMPTY_FACTORIES = (frozenset, tuple, dict)
# Those whose empty product is immutable. ``frozenset()`` allocates a new 216-byte set at each call.
_SHARED_EMPTY = (frozenset, tuple)


def _unchecked_default(check: Check, default: Any) -> bool:
    """Whether ``default`` is immutable and its field's check returns it unchanged."""
    empty_tuple = default.__class__ is tuple and not default  # such as a stage history's ()
    if not (isinstance(default, enum.Enum) or default.__class__ in _IMMUTABLE_DEFAULTS or empty_tuple):
        return False
    try:
        return check(default) is default
    except ValidationError:
        return False


# Factories declared (by :func:`sound_factory`) to make only values their fields' checks return unchanged.
_SOUND_FACTORIES: set[Callable[[], Any]] = set()


F = TypeVar("F", bound=Callable[[], Any])
F_self = TypeVar("F_self", bound=Callable[[Any], Any])


def sound_factory(factory: F) -> F:
    """Declare that every value ``factory`` makes is one its field's check returns unchanged.

    The generated ``__init__`` then stores a value made by the factory without checking it, as it
    does for a default. For factories whose products are valid by construction only, such as the
    random UUID4 hex ids of records (32 hex digits: text an id check accepts as it is); a field whose
    check changes or refuses one product (tried when the class is compiled) keeps its check.

    Returns:
        ``factory`` itself, so this can decorate it.
    """
    _SOUND_FACTORIES.add(factory)
    return factory


# Defaults taking ``self`` that return another field's value, by the name of that field (see copy_of).
_COPIES: dict[Callable[[Any], Any], str] = {}


def copy_of(name: str) -> Callable[[F_self], F_self]:
    """Declare that a default taking ``self`` returns the value of the earlier field ``name``.

    The generated ``__init__`` then reads the value it has just stored for ``name`` instead of calling
    the default (the value is checked as any other).
    """

    def mark(default: F_self) -> F_self:
        _COPIES[default] = name
        return default

    return mark


def _unchecked_factory(check: Check, factory: Any) -> bool:
    """Whether ``factory`` makes only empty containers, or declared sound values, its field's check keeps."""
    if factory in _SOUND_FACTORIES:
        made = factory()
        try:
            return check(made) is made
        except ValidationError:
            return False
    if factory not in _EMPTY_FACTORIES:
        return False
    made = factory()
    try:
        normalised = check(made)
    except ValidationError:
        return False
    return normalised.__class__ is made.__class__ and normalised == made


def _init_compilable(cls: type) -> bool:
    """Whether ``cls``'s attrs ``__init__`` does only what the generated one does."""
    if "__init__" not in vars(cls) or "__attrs_attrs__" not in vars(cls):
        return False  # not decorated by attrs itself: keep what it inherits
    if getattr(cls, "__attrs_post_init__", None) is not Validated.__attrs_post_init__:
        return False
    if hasattr(cls, "__attrs_pre_init__"):
        return False
    return all(
        field.init and field.kw_only and field.converter is None and field.validator is None
        for field in attrs.fields(cls)
    )


# attrs' own __init__ of each class given a generated one: the reference the tests compare with.
_ATTRS_INITS: dict[type, Callable[..., None]] = {}


def _install_init(cls: type) -> None:
    """Give ``cls`` the generated ``__init__`` (see :func:`_compile_init`) when it can have one."""
    if _init_compilable(cls):
        attrs_init = vars(cls)["__init__"]
        init = _compile_init(cls)
        init.__qualname__ = attrs_init.__qualname__
        init.__module__ = attrs_init.__module__
        init.__doc__ = attrs_init.__doc__
        init.__annotations__ = attrs_init.__annotations__
        _ATTRS_INITS[cls] = attrs_init
        type.__setattr__(cls, "__init__", init)


def _compile_init(cls: type) -> Callable[..., None]:
    """Return an ``__init__`` for ``cls`` doing what attrs' ``__init__`` and :func:`validate` do together.

    The same keyword parameters and defaults; each value is stored as given, in field order (so a
    default that reads ``self`` sees what it would under attrs), then checked and normalised as the
    compiled validator does. Saved: the re-reading of every field and, for a parameter left at a
    default its check returns unchanged (see ``_unchecked_default``), the check itself.
    """
    plan = dict(_plan(cls))
    src = _Source()
    nothing = src.const(attrs.NOTHING)
    fields = attrs.fields(cls)
    params, unchecked = _init_parameters(src, fields, plan, nothing)
    src.emit(0, f"def __init__(self, *, {', '.join(params)}):")
    # Stored through a throwaway subclass that allows plain attribute stores (see _filler).
    src.emit(1, f"{src.const(object.__setattr__)}(self, '__class__', {src.const(_filler(cls))})")
    _emit_init_stores(src, fields, unchecked, nothing)
    src.emit(1, "p = []")
    under = src.const(_under)
    for field in fields:
        alias, attribute, key = field.alias, field.name, src.const(field.name)

        def on_value(depth: int, expr: str, attribute: str = attribute) -> None:
            if expr == "v":
                src.emit(depth, "pass")
            else:
                src.emit(depth, f"if {expr} is not v:")
                src.emit(depth + 1, f"self.{attribute} = {expr}")

        def on_error(depth: int, key: str = key) -> None:
            src.emit(depth, f"{under}(p, e, {key})")

        depth = 1
        if field.name in unchecked:
            src.emit(1, f"if {alias} is not {unchecked[field.name]}:")
            depth = 2
        src.emit(depth, f"v = {alias}")
        _field_code(src, field, plan[field.name], depth, on_value, on_error)
    src.emit(1, f"self.__class__ = {src.const(cls)}")
    verror = src.const(ValidationError)
    src.emit(1, "if p:")
    src.emit(2, f"raise {verror}(p)")
    _emit_rules(src, cls, "self", "None", lambda _reads, _rule: True)
    src.emit(1, "if p:")
    src.emit(2, f"raise {verror}(p)")
    return src.build("__init__")


def _emit_init_stores(
    src: _Source, fields: Iterable[attrs.Attribute[Any]], unchecked: Mapping[str, str], nothing: str
) -> None:
    """Emit storing each parameter, or its default, in field order (see :func:`_compile_init`)."""
    seen: dict[str, str] = {}  # the local holding the value stored for each field so far
    for field in fields:
        default: Any = field.default
        alias, attribute = _attribute(field.alias or field.name), _attribute(field.name)
        if not isinstance(default, attrs.Factory):  # type: ignore[arg-type] # attrs.Factory is a class
            src.emit(1, f"self.{attribute} = {alias}")
            seen[field.name] = alias
            continue
        made = f"{src.const(default.factory)}({'self' if default.takes_self else ''})"
        copied = _COPIES.get(default.factory) if default.takes_self else None
        if copied is not None and copied in seen:
            made = seen[copied]  # the value just stored for that field
        if default.factory in _SHARED_EMPTY and unchecked.get(field.name) == nothing:
            # Immutable and empty: every record may share one, as they share an empty tuple.
            made = src.const(default.factory())
        src.emit(1, f"if {alias} is {nothing}:")
        if unchecked.get(field.name) == nothing:
            src.emit(2, f"self.{attribute} = {made}")  # and the parameter stays unset: nothing to check
        else:
            src.emit(2, f"{alias} = {made}")
            src.emit(2, f"self.{attribute} = {alias}")
            seen[field.name] = alias
        src.emit(1, "else:")
        src.emit(2, f"self.{attribute} = {alias}")


def _init_parameters(
    src: _Source, fields: Iterable[attrs.Attribute[Any]], plan: Mapping[str, Check], nothing: str
) -> tuple[list[str], dict[str, str]]:
    """The generated ``__init__``'s parameters, and the fields whose check they skip.

    A field's check is skipped when its parameter is the constant named: its default, or ``nothing``
    for a factory of empty containers.
    """
    params = []
    unchecked: dict[str, str] = {}
    for field in fields:
        alias = _attribute(field.alias or field.name)
        default: Any = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type] # attrs.Factory is a class
            params.append(f"{alias}={nothing}")
            if not default.takes_self and _unchecked_factory(plan[field.name], default.factory):
                unchecked[field.name] = nothing
        elif default is attrs.NOTHING:
            params.append(alias)
        else:
            constant = src.const(default)
            params.append(f"{alias}={constant}")
            if default is None:
                constant = "None"  # the same object, read as a literal rather than a global
            if _unchecked_default(plan[field.name], default):
                unchecked[field.name] = constant
    return params, unchecked


def _emit_rules(
    src: _Source, cls: type, record: str, before: str, runs: Callable[[frozenset[str], CrossRule], bool]
) -> None:
    """Emit adding the cross-field problems of ``record`` to ``p``: the rules for which ``runs`` is true.

    A class that overrides ``_cross_field_problems`` gets all of it instead.
    """
    if getattr(cls, "_cross_field_problems", None) is not Validated._cross_field_problems:  # noqa: SLF001
        src.emit(1, f"p.extend({record}._cross_field_problems())")
        return
    for reads, rule in _rules_of(cls):
        if runs(reads, rule):
            # Most rules find nothing and return an empty list or tuple: then there is nothing to add.
            src.emit(1, f"_r = {src.const(rule)}({record}, {before})")
            src.emit(1, "if _r:")
            src.emit(2, "p.extend(_r)")


class _Mutable:
    """Mixed into a throwaway subclass so a copy's slots are filled by plain (fast) attribute stores."""

    __slots__ = ()
    # Both: a class overriding either one gets the slow generic attribute store.
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__


_FILLERS: dict[type, type] = {}


def _filler(cls: type) -> type:
    """A subclass of ``cls`` that adds no state and allows attribute stores.

    A copy is built as one, then given its real class: the layouts are identical, so that is a
    plain ``__class__`` assignment.
    """
    filler = _FILLERS.get(cls)
    if filler is None:
        filler = _FILLERS[cls] = type(
            cls.__name__, (_Mutable, cls), {"__slots__": (), "__module__": cls.__module__}
        )
    return filler


def _compile_replacer(
    cls: type,
    keys: tuple[str, ...],
    *,
    trusted: tuple[str, ...] | None = None,
    holds: frozenset[CrossRule] = frozenset(),
) -> Callable[..., Any]:
    """Return :func:`replace` for ``cls`` and changes to exactly the fields ``keys``, in that order.

    Without ``trusted`` the function takes ``(instance, changes)``. With it (see
    :func:`trusted_replacer`) it takes ``(instance, *values)``: the ``trusted`` fields' values, stored
    as given, then the ``keys`` fields' values, checked; the rules in ``holds`` are not run.
    """
    positional = trusted is not None
    trusted = trusted or ()
    fields = {field.name: field for field in attrs.fields(cls)}
    unknown = [
        Problem(name, f"{cls.__name__} has no field {name!r}")
        for name in (*trusted, *keys)
        if name not in fields
    ]
    if unknown:
        raise ValidationError(unknown)
    if len(set(trusted) | set(keys)) != len(trusted) + len(keys):
        msg = f"a field is named twice: {trusted!r}, {keys!r}"
        raise TypeError(msg)
    plan = dict(_plan(cls))
    src = _Source()
    under, verror = src.const(_under), src.const(ValidationError)
    if positional:
        values = "".join(f", a{index}" for index in range(len(trusted) + len(keys)))
        src.emit(0, f"def replace(i{values}):")
    else:
        src.emit(0, "def replace(i, changes):")
    src.emit(1, f"c = {src.const(object.__new__)}({src.const(_filler(cls))})")
    for name in fields:
        if name not in keys and name not in trusted:
            src.emit(1, f"c.{_attribute(name)} = i.{name}")
    for index, name in enumerate(trusted):
        src.emit(1, f"c.{_attribute(name)} = a{index}")
    src.emit(1, "p = []")
    for index, name in enumerate(keys, start=len(trusted)):
        attribute, key = _attribute(name), src.const(name)

        def on_value(depth: int, expr: str, attribute: str = attribute) -> None:
            src.emit(depth, f"c.{attribute} = {expr}")

        def on_error(depth: int, key: str = key) -> None:
            src.emit(depth, f"{under}(p, e, {key})")

        src.emit(1, f"v = a{index}" if positional else f"v = changes[{key}]")
        _field_code(src, fields[name], plan[name], 1, on_value, on_error)
    src.emit(1, "if p:")
    src.emit(2, f"raise {verror}(p)")
    src.emit(1, f"c.__class__ = {src.const(cls)}")
    changed = {*trusted, *keys}
    # Rules that read no changed field held on ``i`` and still hold.
    _emit_rules(src, cls, "c", "i", lambda reads, rule: not reads.isdisjoint(changed) and rule not in holds)
    src.emit(1, "if p:")
    src.emit(2, f"raise {verror}(p)")
    src.emit(1, "return c")
    return src.build("replace")


_TRUSTED_REPLACERS: dict[tuple[Any, ...], Callable[..., Any]] = {}


def trusted_replacer(
    cls: type,
    trusted: tuple[str, ...],
    checked: tuple[str, ...] = (),
    holds: Iterable[CrossRule] = (),
) -> Callable[..., Any]:
    """Return ``f(instance, *values)``: :func:`replace` that trusts some values it is given.

    ``f`` copies ``instance`` (of exactly ``cls``) and stores the values of the ``trusted`` fields as
    given, *without their field checks*, then checks and stores the values of the ``checked``
    fields, then runs the cross-field rules that read a changed field, except those in ``holds``.

    Private, for hot paths only (a lifecycle transition). The caller must have proved, and say at
    the call site, that each trusted value is one its field's check returns unchanged (so the
    result equals what :func:`replace` builds) and that every rule in ``holds`` holds for the
    result. Problems with checked fields and rules are raised as :func:`replace` raises them.
    """
    rules_held = frozenset(holds)
    key = (cls, trusted, checked, rules_held)
    replacer = _TRUSTED_REPLACERS.get(key)
    if replacer is None:
        replacer = _compile_replacer(cls, checked, trusted=trusted, holds=rules_held)
        _TRUSTED_REPLACERS[key] = replacer
    return replacer


_TRUSTED_BUILDERS: dict[type, Callable[[dict[str, Any]], Any] | None] = {}


def trusted_builder(cls: type) -> Callable[[dict[str, Any]], Any] | None:
    """Return ``f(values)`` building a ``cls`` from values that passed its rules before, or None.

    ``values`` maps every field's ``__init__`` name to its value. Each value gets its field's type
    check (which accepts a value of the exact declared type at once) but not the field's rules nor
    the cross-field rules. Values of a field that replaces its type check (:func:`coerce_with`) get
    that check. Problems are raised as the constructor raises them. None when ``cls`` is not a
    plain validated attrs class: build such a class by calling it.

    Private, for two callers that can prove the rules hold: the storage adapters reading back rows
    they wrote from validated records (the rules are normalisers, which return a value they
    produced unchanged), and the audit records a store derives from validated records.
    """
    if cls in _TRUSTED_BUILDERS:
        return _TRUSTED_BUILDERS[cls]
    plain = (
        "__attrs_attrs__" in vars(cls)
        and getattr(cls, "__attrs_post_init__", None) is Validated.__attrs_post_init__
        and not hasattr(cls, "__attrs_pre_init__")
        and all(f.init and f.converter is None and f.validator is None for f in attrs.fields(cls))
    )
    builder = _compile_trusted_builder(cls) if plain else None
    _TRUSTED_BUILDERS[cls] = builder
    return builder


def _compile_trusted_builder(cls: type) -> Callable[[dict[str, Any]], Any]:
    _plan(cls)  # resolves the annotations
    src = _Source()
    under, verror = src.const(_under), src.const(ValidationError)
    fields = attrs.fields(cls)
    src.emit(0, "def build(r):")
    src.emit(1, f"if {src.const(len)}(r) != {len(fields)}:")
    src.emit(2, f"return {src.const(cls)}(**r)")  # a key left to its default: the full constructor
    src.emit(1, f"c = {src.const(object.__new__)}({src.const(_filler(cls))})")
    src.emit(1, "p = []")
    for field in fields:
        attribute, key = _attribute(field.name), src.const(field.name)
        check = field.metadata.get(_COERCE) or type_check(field.type)
        typed_only = field.evolve(metadata={k: v for k, v in field.metadata.items() if k != _RULES})

        def on_value(depth: int, expr: str, attribute: str = attribute) -> None:
            src.emit(depth, f"c.{attribute} = {expr}")

        def on_error(depth: int, key: str = key) -> None:
            src.emit(depth, f"{under}(p, e, {key})")

        src.emit(1, f"v = r[{src.const(field.alias or field.name)}]")
        _field_code(src, typed_only, check, 1, on_value, on_error)
    src.emit(1, "if p:")
    src.emit(2, f"raise {verror}(p)")
    src.emit(1, f"c.__class__ = {src.const(cls)}")
    src.emit(1, "return c")
    return src.build("build")


def field_check(cls: type, name: str) -> Check:
    """Return the full check of the field ``name`` of ``cls`` (its type check, then its rules)."""
    return dict(_plan(cls))[name]


def declared(cls: type, name: str) -> tuple[Any, tuple[Check, ...]] | None:
    """Return the resolved type and the extra rules of the field ``name`` of ``cls``.

    ``None`` when ``cls`` has no such field or the field replaces its type check
    (:func:`coerce_with`): callers compare declarations to prove two fields check alike.
    """
    _plan(cls)  # resolves the annotations
    field = attrs.fields_dict(cls).get(name)
    if field is None or _COERCE in field.metadata or set(field.metadata) - {_RULES}:
        return None
    return field.type, tuple(field.metadata.get(_RULES, ()))


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


#: The character no crmkit text may hold: PostgreSQL text cannot store it, so every adapter refuses it alike.
NUL = "\x00"


def storable(value: str) -> bool:
    """True when text can be stored anywhere: no NUL and no lone surrogate (it encodes as UTF-8)."""
    if NUL in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _str(value: Any) -> str:
    if isinstance(value, str):
        if not storable(value):
            if NUL in value:
                fail("text must not contain NUL characters (\\x00)")
            fail("text must be valid Unicode: it holds a lone surrogate")
        return value
    fail(f"expected a string, got {type(value).__name__}")


def text(value: Any) -> str:
    """Accept a string without NUL characters (the type check every ``str`` field gets)."""
    return _str(value)


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
    if value.isalnum() and len(value) <= _MAX_ID:
        return value  # letters and digits only (no whitespace character is either)
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
    if value.__class__ is str and len(value) <= _SHORT and _SHORT_EMAIL.fullmatch(value) is not None:
        return value  # canonical already: normalize_email would return it unchanged
    return normalize_email(value, field="")


# A canonical address of at most 64 characters, as normalize_email returns it unchanged: dot-atoms of
# lower-case ASCII before '@', then two or more DNS labels (letters, digits, inner hyphens), the last
# not all digits. Within 64 characters no local part or label can exceed its limit (64 and 63), so
# they need no counting, and the possessive quantifiers never backtrack: about twice as fast as the
# general check, which every other address takes.
_SHORT = 64
_ATOM = "[a-z0-9!#$%&'*+/=?^_`{|}~-]++"
_LABEL = "[a-z0-9]++(?:-++[a-z0-9]++)*+"
_SHORT_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*+@(?:{_LABEL}\.)++(?![0-9]++\Z){_LABEL}")


def phone(value: str) -> str:
    """A phone number in E.164 form; national numbers need a leading ``+`` here."""
    return normalize_phone(value, field="")


def currency(value: str) -> str:
    """An active ISO 4217 currency code, upper-cased."""
    return check_currency(value, field="")


def country(value: str) -> str:
    """An ISO 3166-1 alpha-2 country code (shape only), upper-cased."""
    if len(value) == 2 and value.isascii() and value.isalpha() and value.isupper():  # noqa: PLR2004 - "DE"
        return value
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
