"""The compiled fast path of ``Lifecycle.apply``: one generated function per record class and step.

A transition builds four values: the history entry (:class:`~crmkit.entities.StageChange`), the moved
record, the reference to it and the :class:`~crmkit.events.StageChanged` event. Built one by one
through :func:`crmkit._validation.trusted_replacer`, each costs a call, a problem list and a copy of a
template. :func:`compile_move` writes one straight-line function per record class and step that
checks what ``apply`` checks (the time, its order, the guard and required fields, the actor, in that
order, raising the same errors) and builds all four, for a move without a payload:

* every field the move does not change is copied from the record by one plain attribute store each
  (the copy is made as a throwaway subclass allowing stores, then given its real class, as the
  compiled replacers of ``_validation`` do);
* the names of the stages, the transition and the lifecycle, and the kind of record, are the values
  of the step's templates, which were built with every check when the lifecycle was built;
* ``at`` and ``actor`` are stored as given once they passed the checks of their fields (a datetime
  whose zone is a fixed-offset ``timezone``, which cannot be subclassed and always has an offset, is
  aware without a call to ``utcoffset()``; anything else takes the full check);
* a static field (an opportunity's probability on entering a stage, a cleared close time) is stored
  as given only when its field's check, run once here, returns it unchanged (checks are pure); a
  stamped field (``converted_at``) only when it is declared as a plain or optional datetime, so the
  checked ``at`` is what its check returns. Otherwise there is no compiled move and ``apply`` takes
  its general path;
* the cross-field rules that read a changed field run on the result, except those the caller says a
  move keeps by construction, exactly as ``trusted_replacer`` runs them.

The tests compare the result with ``Lifecycle._apply_by_plan``, which checks every value it builds.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from crmkit._validation import (
    _attribute,
    _emit_rules,
    _filler,
    _Source,
    declared,
    field_check,
)
from crmkit.entities import EntityRef, StageChange, _ids, _new_id
from crmkit.errors import ValidationError
from crmkit.events import StageChanged

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from collections.abc import Set as AbstractSet

    from crmkit._validation import CrossRule

__all__ = ["Checks", "compile_move"]

# The fields of the built values that a move sets from the values apply checked (the rest come from
# the templates). Which declarations make them sound is checked by the caller (see _definition).
_CHANGE_SETS = {"at": "at", "actor": "actor"}
_EVENT_SETS = {"entity": "ref", "at": "at", "actor": "actor", "id": "eid"}
_MANAGED = ("stage", "stage_history", "updated_at")
_STAMPABLE = ((datetime | None, ()), (datetime, ()))


_BLANKS: dict[type, type] = {}


def _blank(src: _Source, cls: type) -> str:
    """An expression making an empty instance of ``cls``'s layout that allows plain stores.

    ``object.__new__`` of the filler of ``_validation`` (see ``_filler``); for a class without its own
    ``__new__``, a call of a subclass of the filler with object's own ``__init__``, which is a little
    cheaper and runs no ``__new__`` or ``__init__`` of ``cls`` either.
    """
    filler = _filler(cls)
    own_new: object = cls.__new__
    if own_new is not object.__new__:
        return f"{src.const(object.__new__)}({src.const(filler)})"
    blank = _BLANKS.get(cls)
    if blank is None:
        namespace = {"__slots__": (), "__module__": cls.__module__, "__init__": object.__init__}
        blank = _BLANKS[cls] = type(cls.__name__, (filler,), namespace)
    return f"{src.const(blank)}()"


def _unchanged_by_check(cls: type, name: str, value: Any) -> bool:
    """Whether the check of the field ``name`` of ``cls`` returns ``value`` itself."""
    try:
        return field_check(cls, name)(value) is value
    except ValidationError:
        return False


class Checks(NamedTuple):
    """What a compiled move checks before it builds anything, in this order, and how it refuses.

    Attributes:
        aware: ``at`` itself when it is a timezone-aware datetime; else raises the error of ``apply``.
        too_early: The error for an ``at`` before the record's last stage change (or its creation).
        guard: The step's compiled guard, if any.
        guard_only: Whether the guard is the whole check (no required fields).
        allowed: Raises the refusal listing what failed, given the record and the guard's answer
            as ``guard_passed`` (``None``: not evaluated yet); ``None`` when the step checks nothing.
        actor: Checks and returns an actor, or raises the error of ``apply``.
        valid_actors: Plain-string actors the actor check returned unchanged before.
    """

    aware: Callable[[Any], datetime]
    too_early: Callable[[datetime, Any], Exception]
    guard: Callable[[Any], bool] | None
    guard_only: bool
    allowed: Callable[..., None] | None
    actor: Callable[[Any], Any]
    valid_actors: AbstractSet[str]


def compile_move(
    cls: type,
    *,
    change: StageChange,
    event: StageChanged,
    ref: EntityRef,
    static: Mapping[str, Any],
    stamp: str | None,
    holds: Iterable[CrossRule],
    result: type,
    checks: Checks,
) -> Callable[..., Any] | None:
    """Return ``move(record, at, actor)`` for records of exactly ``cls`` along one step.

    ``change`` and ``event`` are the step's templates, ``ref`` the reference template (its kind),
    ``static`` the fields set on entering the target, ``stamp`` the field that gets ``at``, ``holds``
    the rules a move keeps by construction, ``result`` the named tuple returned, ``checks`` what
    ``apply`` checks first. ``None`` when a static or stamped field cannot be stored without its check
    (see the module docstring).
    """
    if any(not _unchanged_by_check(cls, name, value) for name, value in static.items()):
        return None
    if stamp is not None and declared(cls, stamp) not in _STAMPABLE:
        return None
    src = _Source()
    verror = src.const(ValidationError)
    src.emit(0, "def move(i, at, actor):")
    _emit_checks(src, checks)
    # The history entry.
    _build_value(src, "s", StageChange, change, _CHANGE_SETS, verror)
    # The moved record.
    fields = [field.name for field in attrs.fields(cls)]
    changed = {*_MANAGED, *static, *((stamp,) if stamp else ())}
    src.emit(1, f"c = {_blank(src, cls)}")
    for name in fields:
        if name not in changed:
            src.emit(1, f"c.{_attribute(name)} = i.{name}")
    src.emit(1, f"c.stage = {src.const(change.to_stage)}")
    src.emit(1, "c.stage_history = h + (s,)")
    src.emit(1, "u = i.updated_at")
    src.emit(1, "c.updated_at = at if at > u else u")  # max(u, at), which keeps u when they are equal
    for name, value in static.items():
        src.emit(1, f"c.{_attribute(name)} = {src.const(value)}")
    if stamp is not None:
        src.emit(1, f"c.{_attribute(stamp)} = at")
    src.emit(1, f"c.__class__ = {src.const(cls)}")
    held = frozenset(holds)
    _rules(src, cls, "c", "i", changed, held, verror)
    # The reference to the record, and the event.
    src.emit(1, f"ref = {_blank(src, EntityRef)}")
    src.emit(1, f"ref.kind = {src.const(ref.kind)}")
    src.emit(1, "ref.id = i.id")
    src.emit(1, f"ref.__class__ = {src.const(EntityRef)}")
    _rules(src, EntityRef, "ref", src.const(ref), {"id"}, frozenset(), verror)
    src.emit(1, "try:")
    src.emit(2, f"eid = {src.const(_ids.popleft)}()")  # the records' pool of ids, as _new_id draws it
    src.emit(1, f"except {src.const(IndexError)}:")
    src.emit(2, f"eid = {src.const(_new_id)}()")
    _build_value(src, "e", StageChanged, event, _EVENT_SETS, verror)
    src.emit(1, f"return {src.const(tuple.__new__)}({src.const(result)}, (c, e))")
    return src.build("move")


def _emit_checks(src: _Source, checks: Checks) -> None:
    """Emit what ``Lifecycle._start`` and the actor check do, in their order, for a move without payload.

    It leaves the record's stage history in ``h``.
    """
    # A datetime with a fixed-offset timezone (UTC among them, which cannot be subclassed) is aware
    # without asking utcoffset(), a slow generic call; anything else takes the full check.
    datetime_, timezone_ = src.const(datetime), src.const(timezone)
    src.emit(1, f"if at.__class__ is not {datetime_} or at.tzinfo.__class__ is not {timezone_}:")
    src.emit(2, f"at = {src.const(checks.aware)}(at)")
    src.emit(1, "h = i.stage_history")
    src.emit(1, "if at < (h[-1].at if h else i.created_at):")
    src.emit(2, f"raise {src.const(checks.too_early)}(at, i)")
    if checks.allowed is not None:
        allowed = src.const(checks.allowed)
        if checks.guard_only and checks.guard is not None:
            src.emit(1, f"if not {src.const(checks.guard)}(i):")
            src.emit(2, f"{allowed}(i, guard_passed=False)")
        else:
            src.emit(1, f"{allowed}(i, guard_passed=None)")
    str_, valid = src.const(str), src.const(checks.valid_actors)
    src.emit(1, f"if actor is not None and (actor.__class__ is not {str_} or actor not in {valid}):")
    src.emit(2, f"actor = {src.const(checks.actor)}(actor)")


def _build_value(  # noqa: PLR0917 - private; one emitter for the two small values
    src: _Source,
    local: str,
    cls: type,
    template: Any,
    sets: Mapping[str, str],
    verror: str,
) -> None:
    """Emit building ``local``: a ``cls`` with the template's values, except ``sets`` (field -> local)."""
    src.emit(1, f"{local} = {_blank(src, cls)}")
    for field in attrs.fields(cls):
        name = _attribute(field.name)
        value = sets.get(name)
        src.emit(1, f"{local}.{name} = {value if value is not None else src.const(getattr(template, name))}")
    src.emit(1, f"{local}.__class__ = {src.const(cls)}")
    _rules(src, cls, local, src.const(template), set(sets), frozenset(), verror)


def _rules(  # noqa: PLR0917 - private
    src: _Source,
    cls: type,
    record: str,
    before: str,
    changed: Iterable[str],
    held: frozenset[CrossRule],
    verror: str,
) -> None:
    """Emit running the rules of ``cls`` that read a changed field (except ``held``), if there are any."""
    names = frozenset(changed)
    mark = len(src.lines)
    _emit_rules(
        src, cls, record, before, lambda reads, rule: rule not in held and not reads.isdisjoint(names)
    )
    if len(src.lines) > mark:
        src.lines.insert(mark, "    p = []")
        src.emit(1, "if p:")
        src.emit(2, f"raise {verror}(p)")
