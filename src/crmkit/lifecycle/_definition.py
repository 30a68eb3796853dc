"""Lifecycle definitions as data, their validation, and applying a transition (private machinery)."""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, cast

import attrs

from crmkit._validation import declared, field_check, identifier, replace, short_label, trusted_replacer
from crmkit.clock import get_clock
from crmkit.conditions import Condition, Predicate, Schema
from crmkit.entities import (
    ENTITY_TYPES,
    Entity,
    EntityRef,
    StageChange,
    _new_id,  # one pool of random ids for records and events
)
from crmkit.entities import _stage_rule as _history_rule  # the rule a move keeps by construction
from crmkit.errors import NotFound, RuleError, TransitionError, ValidationError
from crmkit.events import StageChanged
from crmkit.lifecycle._fast import Checks, compile_move

if TYPE_CHECKING:
    from crmkit.clock import Clock
    from crmkit.conditions import Explanation

__all__ = [
    "ANY_STAGE",
    "BackwardPolicy",
    "ForecastCategory",
    "Lifecycle",
    "Stage",
    "StageCategory",
    "Transition",
    "TransitionResult",
]

ANY_STAGE = "*"
"""As a transition's source: every stage that is not terminal (and not the target)."""
_MAX_NAME = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CUSTOM_KEY = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_CUSTOM_PREFIX = "custom_fields."
# Set by the lifecycle itself on every transition, so a payload or a required field cannot name them.
_MANAGED = frozenset({"id", "kind", "version", "created_at", "updated_at", "stage", "stage_history"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEMPLATE_ID = "lifecycle-template"


class StageCategory(enum.StrEnum):
    """What a stage means for reporting: still open, or closed as won, lost or otherwise."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"
    CLOSED = "closed"


class ForecastCategory(enum.StrEnum):
    """The forecast bucket a deal in a stage counts in, as sales forecasts roll amounts up."""

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    CLOSED = "closed"
    OMITTED = "omitted"


class BackwardPolicy(enum.StrEnum):
    """Whether a transition may move a record to an earlier stage (by the order of the stages).

    ``allow``: any declared transition applies, forwards or backwards.
    ``forbid``: forward only; a transition declared from a later stage to an earlier one is a
    :class:`~crmkit.errors.RuleError` when the lifecycle is built, and a ``"*"`` source only
    stands for the stages before the target.
    """

    ALLOW = "allow"
    FORBID = "forbid"


# -- field checks (each raises RuleError at the field's own path) -------------------------------


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str):
        msg = f"expected a name (text), got {type(value).__name__}"
        raise RuleError(msg, path)
    if not value or value != value.strip() or len(value) > _MAX_NAME or _CONTROL.search(value):
        rule = f"1 to {_MAX_NAME} characters, no surrounding spaces or control characters"
        msg = f"{value!r} is not a name: {rule}"
        raise RuleError(msg, path)
    if value == ANY_STAGE:
        msg = f"{ANY_STAGE!r} is reserved: as a source it means any stage"
        raise RuleError(msg, path)
    return value


def _stage_name(value: Any) -> str:
    return _name(value, "name")


def _optional_text(path: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            msg = f"expected non-empty text or nothing, got {value!r}"
            raise RuleError(msg, path)
        return value

    return check


def _member(enum_type: type[enum.StrEnum], path: str, *, optional: bool = False) -> Callable[[Any], Any]:
    allowed = ", ".join(member.value for member in enum_type)

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        try:
            return enum_type(value)
        except (ValueError, TypeError):
            msg = f"{value!r} is not one of: {allowed}"
            raise RuleError(msg, path) from None

    return check


def _probability(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        msg = f"expected a probability from 0 to 1, got {type(value).__name__}"
        raise RuleError(msg, "probability")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        msg = f"{value!r} is not a number"
        raise RuleError(msg, "probability") from None
    if not number.is_finite() or not 0 <= number <= 1:
        msg = f"a probability is from 0 to 1, got {value!r}"
        raise RuleError(msg, "probability")
    return number


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        msg = f"expected true or false, got {value!r}"
        raise RuleError(msg, "terminal")
    return value


def _names(path: str, *, wildcard: bool = False) -> Callable[[Any], tuple[str, ...]]:
    def check(value: Any) -> tuple[str, ...]:
        items = (value,) if isinstance(value, str) else value
        if not isinstance(items, Iterable) or isinstance(items, Mapping):
            msg = f"expected a list of names, got {type(value).__name__}"
            raise RuleError(msg, path)
        result = tuple(items)
        for index, item in enumerate(result):
            if not (wildcard and item == ANY_STAGE):
                _name(item, f"{path}[{index}]")
        if len(set(result)) != len(result):
            msg = f"names a stage twice: {list(result)!r}"
            raise RuleError(msg, path)
        return result

    return check


def _required_names(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        msg = f"expected a list of field names, got {type(value).__name__}"
        raise RuleError(msg, "required")
    result = tuple(items)
    for index, item in enumerate(result):
        if not isinstance(item, str) or not item:
            msg = f"expected a field name, got {item!r}"
            raise RuleError(msg, f"required[{index}]")
    return result


def _guard(value: Any) -> Condition | None:
    if value is None or isinstance(value, Condition):
        return value
    try:
        return Condition.from_json(value)
    except RuleError as exc:
        raise exc.under("guard") from None


def _category(value: Any) -> StageCategory:
    return cast("StageCategory", _member(StageCategory, "category")(value))


def _forecast(value: Any) -> ForecastCategory | None:
    return cast("ForecastCategory | None", _member(ForecastCategory, "forecast", optional=True)(value))


def _backward(value: Any) -> BackwardPolicy:
    return cast("BackwardPolicy", _member(BackwardPolicy, "backward")(value))


def _label(value: Any) -> str | None:
    return _optional_text("label")(value)


def _description(value: Any) -> str | None:
    return _optional_text("description")(value)


def _sources(value: Any) -> tuple[str, ...]:
    return _names("sources", wildcard=True)(value)


def _target(value: Any) -> str:
    return _name(value, "target")


def _lifecycle_name(value: Any) -> str:
    return _name(value, "name")


# -- the definition values ----------------------------------------------------------------------


@attrs.frozen
class Stage:
    """One stage of a lifecycle.

    Attributes:
        name: The value stored in the record's ``stage`` field: 1 to 64 characters,
            such as ``"qualified"`` or ``"Closed Won"``.
        category: Open, or closed as won, lost or otherwise; metrics read it.
        probability: For deals, the chance to win in this stage, 0 to 1 (a ``Decimal``;
            text and numbers are converted); entering the stage sets the
            opportunity's ``probability``.
        forecast: For deals, the forecast category of the stage.
        terminal: A final stage: no transition leaves it.
        label: The name people see, when it differs from ``name``.
    """

    name: str = attrs.field(converter=_stage_name)
    category: StageCategory = attrs.field(default=StageCategory.OPEN, kw_only=True, converter=_category)
    probability: Decimal | None = attrs.field(default=None, kw_only=True, converter=_probability)
    forecast: ForecastCategory | None = attrs.field(default=None, kw_only=True, converter=_forecast)
    terminal: bool = attrs.field(default=False, kw_only=True, converter=_flag)
    label: str | None = attrs.field(default=None, kw_only=True, converter=_label)

    @property
    def title(self) -> str:
        """The name people see: ``label`` when set, else ``name``."""
        return self.label or self.name

    @property
    def is_open(self) -> bool:
        """Whether a record in this stage is still being worked (category ``open``)."""
        return self.category is StageCategory.OPEN

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``name`` and ``category``, then only the attributes that are set."""
        data: dict[str, Any] = {"name": self.name, "category": self.category.value}
        if self.probability is not None:
            data["probability"] = str(self.probability)
        if self.forecast is not None:
            data["forecast"] = self.forecast.value
        if self.terminal:
            data["terminal"] = True
        if self.label is not None:
            data["label"] = self.label
        return data


@attrs.frozen
class Transition:
    """A named move from one or more stages to a target stage.

    Attributes:
        name: What the move is called, such as ``"qualify"``; recorded in the stage history.
        sources: The stages it may start from; ``"*"`` stands for every stage that is not
            terminal (and, when the lifecycle forbids moving backwards, that comes before
            the target). A single name is accepted for a one-element list.
        target: The stage it moves to.
        guard: A condition (a tree or its JSON form) the record must satisfy, checked
            on the record with the payload applied, before the move.
        required: Fields that must be set (not ``None``, empty text or an empty
            collection), either already on the record or in the payload:
            entity field names, or ``"custom_fields.<key>"``.
        label: The name people see, when it differs from ``name``.
    """

    name: str = attrs.field(converter=_stage_name)
    sources: tuple[str, ...] = attrs.field(converter=_sources)
    target: str = attrs.field(converter=_target)
    guard: Condition | None = attrs.field(default=None, kw_only=True, converter=_guard)
    required: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_required_names)
    label: str | None = attrs.field(default=None, kw_only=True, converter=_label)

    def __attrs_post_init__(self) -> None:
        if not self.sources:
            msg = "a transition needs at least one source stage"
            raise RuleError(msg, "sources")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``name``, ``sources``, ``target``, then only what is set."""
        data: dict[str, Any] = {"name": self.name, "sources": list(self.sources), "target": self.target}
        if self.guard is not None:
            data["guard"] = self.guard.to_json()
        if self.required:
            data["required"] = list(self.required)
        if self.label is not None:
            data["label"] = self.label
        return data


E = TypeVar("E", bound=Entity)


class TransitionResult(NamedTuple, Generic[E]):
    """What applying a transition returns: unpack it as ``entity, event = ...``.

    Attributes:
        entity: The record in its new stage, with the change appended to its history.
        event: The :class:`~crmkit.events.StageChanged` event describing the move.
    """

    entity: E
    event: StageChanged


class _Moves(dict[type, "Callable[..., Any] | None"]):
    """A step's compiled moves by record class: a cache of generated functions, so it pickles empty."""

    def __reduce__(self) -> tuple[type[_Moves], tuple[()]]:
        return (_Moves, ())


@attrs.frozen
class _Step:
    """One transition from one source stage, with everything the hot path needs prepared."""

    transition: Transition
    target: str
    guard: Callable[[Any], bool] | None
    change: StageChange
    event: StageChanged
    # Field values written on entering the target from this source (a stage's probability, a
    # cleared close time); a field in ``stamp`` gets the transition's time.
    static: Mapping[str, Any]
    stamp: str | None
    checked: bool  # whether there is a guard or a required field to check
    checked_fields: tuple[str, ...] = ()  # the names and values of ``static``, for the mover
    checked_values: tuple[Any, ...] = ()
    # A guard and no required field: a passing guard is the whole check.
    guard_only: bool = False
    # The compiled move (see _fast) by exact record class; ``None`` for a class taking the general path.
    moves: _Moves = attrs.field(factory=_Moves, eq=False, repr=False)


# When a record enters a closed stage from an open one, this field gets the transition's time;
# when it goes back to an open stage, the field is cleared.
_CLOSING_FIELDS: dict[str, tuple[str, frozenset[StageCategory]]] = {
    "opportunity": ("closed_at", frozenset({StageCategory.WON, StageCategory.LOST, StageCategory.CLOSED})),
    "ticket": ("resolved_at", frozenset({StageCategory.WON, StageCategory.LOST, StageCategory.CLOSED})),
    "lead": ("converted_at", frozenset({StageCategory.WON})),
}
_SCHEMAS: dict[type, Schema] = {}


def _schema(cls: type) -> Schema:
    schema = _SCHEMAS.get(cls)
    if schema is None:
        # A guard on the stage would repeat the transition's sources; leave it out.
        schema = _SCHEMAS[cls] = Schema.for_entity(cls, exclude=("stage",))
    return schema


@attrs.frozen(eq=False)
class _Machine:
    """A lifecycle compiled for applying transitions: dict lookups and compiled guards."""

    cls: type[Entity]
    schema: Schema
    steps: Mapping[tuple[str, str], _Step]
    from_stage: Mapping[str, tuple[str, ...]]
    stages: Mapping[str, Stage]
    transitions: Mapping[str, Transition]
    ref: EntityRef  # copied with each record's id into the events


def _kind(value: Any) -> str:
    cls = ENTITY_TYPES.get(value) if isinstance(value, str) else None
    if cls is None or not {"stage", "stage_history"} <= {a.name for a in attrs.fields(cls)}:
        staged = sorted(
            kind
            for kind, candidate in ENTITY_TYPES.items()
            if "stage" in {a.name for a in attrs.fields(candidate)}
        )
        msg = f"{value!r} is not a kind of record with a stage; one of: {', '.join(staged)}"
        raise RuleError(msg, "entity")
    return cast("str", value)


def _tuple_of(kind: type, path: str) -> Callable[[Any], tuple[Any, ...]]:
    def check(value: Any) -> tuple[Any, ...]:
        if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
            msg = f"expected a list, got {type(value).__name__}"
            raise RuleError(msg, path)
        items = tuple(value)
        for index, item in enumerate(items):
            if not isinstance(item, kind):
                msg = f"expected a {kind.__name__}, got {type(item).__name__}"
                raise RuleError(msg, f"{path}[{index}]")
        return items

    return check


def _stage_tuple(value: Any) -> tuple[Stage, ...]:
    return _tuple_of(Stage, "stages")(value)


def _transition_tuple(value: Any) -> tuple[Transition, ...]:
    return _tuple_of(Transition, "transitions")(value)


def _initial_default(lifecycle: Lifecycle) -> str:
    return lifecycle.stages[0].name if lifecycle.stages else ""


@attrs.frozen
class Lifecycle:
    """A lifecycle: the stages a kind of record moves through and the transitions between them.

    A lifecycle is an immutable value, checked when it is built: unknown or duplicate
    names, stages the initial stage cannot reach, trap stages (not terminal, yet no
    transition leaves them), backward moves a forward-only lifecycle declares, and guards
    or required fields naming fields the record does not have are each a
    :class:`~crmkit.errors.RuleError` whose ``path`` points at the problem
    (``"transitions[3].guard.all[0].field"``). Guards are compiled once, here.

    Records carry their stage as a plain field plus their stage history; the lifecycle
    checks and applies a transition with :meth:`apply` and returns the new record and a
    :class:`~crmkit.events.StageChanged` event. No machine object is attached to any record.

    Attributes:
        name: The lifecycle's name, recorded in the events it produces.
        entity: The kind of record it applies to: ``"lead"``, ``"opportunity"``,
            ``"ticket"`` or ``"contact"``.
        stages: The stages, in order (the order decides what "backwards" means).
        transitions: The named transitions.
        initial: The stage new records start in; the first stage by default.
        backward: Whether transitions may move to an earlier stage.
        description: What the lifecycle is for.
    """

    name: str = attrs.field(converter=_lifecycle_name)
    entity: str = attrs.field(converter=_kind)
    stages: tuple[Stage, ...] = attrs.field(converter=_stage_tuple)
    transitions: tuple[Transition, ...] = attrs.field(converter=_transition_tuple)
    initial: str = attrs.field(default=attrs.Factory(_initial_default, takes_self=True), kw_only=True)
    backward: BackwardPolicy = attrs.field(default=BackwardPolicy.ALLOW, kw_only=True, converter=_backward)
    description: str | None = attrs.field(default=None, kw_only=True, converter=_description)
    _machine: _Machine = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_machine", _build(self))

    # -- applying ----------------------------------------------------------------------------

    def apply(
        self,
        entity: E,
        transition: str,
        *,
        actor: str | None = None,
        at: datetime | None = None,
        clock: Clock | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> TransitionResult[E]:
        """Apply a transition to a record: a pure function returning the new record and an event.

        Args:
            entity: The record, in one of this lifecycle's stages.
            transition: The transition's name.
            actor: The id of the user or system making the move, recorded in the history
                and the event.
            at: When the move happens; timezone-aware, not before the record's last stage
                change (or its creation). Defaults to ``clock``'s time.
            clock: Where "now" comes from when ``at`` is not given; the current clock by default.
            payload: Fields set together with the move, such as ``{"lost_reason": "price"}``;
                a ``custom_fields`` mapping is merged into the record's custom fields. The
                guard and the required fields see the record with the payload applied.

        Returns:
            ``(entity, event)``: the record in the target stage with the change appended to
            its stage history and ``updated_at`` moved to ``at`` (for an opportunity, the
            stage's probability and ``closed_at``; for a ticket ``resolved_at``; for a lead
            ``converted_at``), and the :class:`~crmkit.events.StageChanged` event.

        Raises:
            TransitionError: The transition is unknown, not allowed from the record's stage,
                its guard fails or a required field is missing; it names the record, the
                stage and the transition, and says why.
            ValidationError: ``at`` is naive or earlier than the last stage change, the
                payload or ``actor`` is invalid, or the record is of another kind. The record
                is unchanged in every case (it is immutable).
        """
        record: Any = entity  # a record with a stage; checked by the step lookup and isinstance
        step = self._machine.steps.get((record.stage, transition))
        move = None if step is None or payload else step.moves.get(type(record))
        if move is None:
            # A refusal, a payload, a record class seen for the first time or one without a move.
            return self._apply_general(entity, transition, actor=actor, at=at, clock=clock, payload=payload)
        # The compiled move (see _fast) checks what _start and the actor check do, in their order.
        result: TransitionResult[E] = move(record, (clock or get_clock()).now() if at is None else at, actor)
        return result

    def _apply_general(
        self,
        entity: E,
        transition: str,
        *,
        actor: str | None = None,
        at: datetime | None = None,
        clock: Clock | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> TransitionResult[E]:
        """:meth:`apply` for every case its compiled moves do not cover (same checks, same results)."""
        machine = self._machine
        record: Any = entity  # a record with a stage; checked by the step lookup and isinstance
        step = machine.steps.get((record.stage, transition))
        if step is None or not isinstance(entity, machine.cls):
            raise self._refusal(entity, transition)
        cls = type(record)
        if not _trusted_record(cls):
            return self._apply_by_plan(entity, transition, actor=actor, at=at, clock=clock, payload=payload)
        if cls not in step.moves:
            step.moves[cls] = self._compile_move(cls, step)
        at, base = self._start(entity, step, at, clock, payload)
        history = record.stage_history
        if actor is not None:
            actor = _checked_actor(actor)
        # Trusted values (see _trusted_record and _TRUSTED_VALUES): ``at`` passed the aware-datetime
        # check above and ``actor`` the actor check, the very checks of StageChange and StageChanged;
        # the stages and names come from the step's templates, built with every check.
        change = _NEW_CHANGE(step.change, at, actor)
        # The record stays valid without re-running its history and updated_at rules: the history it
        # had was valid, the new entry is not before its last one (checked above) and ends in the new
        # stage, and updated_at only moves forward from a valid value. Static fields are checked.
        mover, values = _mover(cls, step, payload, at)
        moved = mover(base, change.to_stage, (*history, change), max(base.updated_at, at), *values)
        # A valid record's id passes the very check of EntityRef.id (see _trusted_record).
        ref = _NEW_REF(machine.ref, record.id)
        event = _NEW_EVENT(step.event, ref, at, actor, _event_id())
        return _result((moved, event))

    def _start(
        self,
        entity: Any,
        step: Any,
        at: datetime | None,
        clock: Clock | None,
        payload: Mapping[str, Any] | None,
    ) -> tuple[datetime, Any]:
        """What every application of a transition checks first: the time, its order, the payload, the guard.

        Returns:
            The time of the change and the record with the payload applied.
        """
        if at is None:
            at = (clock or get_clock()).now()
        if not isinstance(at, datetime) or at.utcoffset() is None:
            raise _naive(at)
        history = entity.stage_history
        if at < (history[-1].at if history else entity.created_at):
            raise _too_early(at, entity)
        base: Any = self._with_payload(entity, payload) if payload else entity
        if step.checked:
            self._check_allowed(base, step)
        return at, base

    def _apply_by_plan(
        self,
        entity: E,
        transition: str,
        *,
        actor: str | None = None,
        at: datetime | None = None,
        clock: Clock | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> TransitionResult[E]:
        """:meth:`apply` checking every value it builds: the reference the fast one must agree with.

        It also serves records whose class declares the stage fields differently from crmkit's.
        """
        machine = self._machine
        record: Any = entity  # a record with a stage; checked by the step lookup and isinstance
        step = machine.steps.get((record.stage, transition))
        if step is None or not isinstance(entity, machine.cls):
            raise self._refusal(entity, transition)
        at, base = self._start(entity, step, at, clock, payload)
        history = record.stage_history
        change = replace(step.change, at=at) if actor is None else replace(step.change, at=at, actor=actor)
        updated_at = base.updated_at
        changes = {
            "stage": step.target,
            "stage_history": (*history, change),
            "updated_at": max(updated_at, at),
        }
        if step.static:
            changes.update(
                step.static if not payload else {k: v for k, v in step.static.items() if k not in payload}
            )
        if step.stamp is not None:
            changes[step.stamp] = at
        moved = replace(base, **changes)
        ref = replace(machine.ref, id=record.id)
        if actor is None:
            event = replace(step.event, entity=ref, at=at, id=_event_id())
        else:
            event = replace(step.event, entity=ref, at=at, actor=actor, id=_event_id())
        return TransitionResult(moved, event)

    def _compile_move(self, cls: type, step: _Step) -> Callable[..., Any] | None:
        """The compiled move of ``step`` for records of ``cls`` (see ``_fast``), if it has one."""

        def allowed(record: Any, *, guard_passed: bool | None) -> None:
            self._check_allowed(record, step, guard_passed=guard_passed)

        checks = Checks(
            aware=_aware,
            too_early=_too_early,
            guard=step.guard,
            guard_only=step.guard_only,
            allowed=allowed if step.checked else None,
            actor=_checked_actor,
            valid_actors=_VALID_ACTORS,
        )
        return compile_move(
            cls,
            change=step.change,
            event=step.event,
            ref=self._machine.ref,
            static=step.static,
            stamp=step.stamp,
            holds=_RULES_KEPT_BY_MOVE,
            result=TransitionResult,
            checks=checks,
        )

    def _refusal(self, entity: Any, transition: str) -> Exception:
        machine = self._machine
        if not isinstance(entity, machine.cls):
            msg = f"lifecycle {self.name!r} applies to {self.entity} records, not {type(entity).__name__}"
            return ValidationError.single("entity", msg)
        record: Any = entity
        stage = record.stage
        ref = EntityRef.to(entity)
        allowed = machine.from_stage.get(stage)
        if allowed is None:
            reason = f"stage {stage!r} is not a stage of lifecycle {self.name!r}"
        elif transition not in machine.transitions:
            reason = f"lifecycle {self.name!r} has no transition {transition!r}; from {stage!r}: " + (
                ", ".join(allowed) or "none"
            )
        else:
            sources = ", ".join(repr(s) for s in _sources_of(machine, transition))
            reason = f"not allowed from stage {stage!r}; it starts from {sources or 'no stage'}"
        return TransitionError(transition, [reason], entity=ref, stage=stage)

    def _with_payload(self, entity: E, payload: Mapping[str, Any]) -> E:
        changes = dict(payload)
        managed = sorted(set(changes) & _MANAGED)
        if managed:
            where = f"payload.{managed[0]}"
            raise ValidationError.single(where, "is set by the lifecycle, not by a payload")
        custom = changes.get("custom_fields")
        if isinstance(custom, Mapping):
            changes["custom_fields"] = {**entity.custom_fields, **custom}
        try:
            return replace(entity, **changes)
        except ValidationError as exc:
            raise exc.under("payload") from None

    def _check_allowed(self, record: Any, step: _Step, *, guard_passed: bool | None = None) -> None:
        """Raise the TransitionError listing every required field missing and the guard's failures.

        ``guard_passed`` is the guard's answer when the caller has already evaluated it on ``record``.
        """
        reasons = [
            f"required field {name!r} is missing" for name in step.transition.required if _blank(record, name)
        ]
        if guard_passed is None and step.guard is not None:
            guard_passed = step.guard(record)
        if guard_passed is False:
            explanation = self._machine.schema.explain(cast("Condition", step.transition.guard), record)
            reasons.extend(_guard_reasons(explanation))
        if reasons:
            raise TransitionError(
                step.transition.name, reasons, entity=EntityRef.to(record), stage=record.stage
            )

    # -- reading the definition ----------------------------------------------------------------

    def stage(self, name: str) -> Stage:
        """Return the stage called ``name``.

        Raises:
            NotFound: If the lifecycle has no such stage.
        """
        found = self._machine.stages.get(name)
        if found is None:
            raise NotFound("stage", name)
        return found

    def transition(self, name: str) -> Transition:
        """Return the transition called ``name``.

        Raises:
            NotFound: If the lifecycle has no such transition.
        """
        found = self._machine.transitions.get(name)
        if found is None:
            raise NotFound("transition", name)
        return found

    def allowed_transitions(self, stage: str) -> tuple[str, ...]:
        """Return the names of the transitions that may start from ``stage``, in definition order.

        Guards are not evaluated: a transition listed here may still be refused for a
        particular record.

        Raises:
            NotFound: If the lifecycle has no such stage.
        """
        allowed = self._machine.from_stage.get(stage)
        if allowed is None:
            raise NotFound("stage", stage)
        return allowed

    def edges(self) -> tuple[tuple[str, str, str], ...]:
        """Return every move the lifecycle allows as ``(source, target, transition)``, ``"*"`` expanded."""
        return tuple((source, step.target, name) for (source, name), step in self._machine.steps.items())

    # -- JSON and diagrams ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (plain dicts, lists and strings); :meth:`from_json` reads it back."""
        data: dict[str, Any] = {
            "name": self.name,
            "entity": self.entity,
            "initial": self.initial,
            "backward": self.backward.value,
            "stages": [stage.to_json() for stage in self.stages],
            "transitions": [transition.to_json() for transition in self.transitions],
        }
        if self.description is not None:
            data["description"] = self.description
        return data

    @classmethod
    def from_json(cls, data: Any) -> Lifecycle:
        """Build and check a lifecycle from its JSON form.

        Raises:
            RuleError: If the data is malformed or the lifecycle is invalid; ``path``
                points at the problem, such as ``"stages[2].probability"``.
        """
        from crmkit.lifecycle._json import lifecycle_from_json  # noqa: PLC0415 - keeps the JSON reader apart

        return lifecycle_from_json(data)

    def to_mermaid(self) -> str:
        """Return a Mermaid ``stateDiagram-v2`` of the lifecycle: stages, moves, start and ends."""
        from crmkit.lifecycle._mermaid import mermaid  # noqa: PLC0415 - keeps the renderer apart

        return mermaid(self)

    # -- extending -----------------------------------------------------------------------------

    def with_stage(
        self, stage: Stage, *, after: str | None = None, transitions: Iterable[Transition] = ()
    ) -> Lifecycle:
        """Return a copy with ``stage`` added (after the stage ``after``, else last) and ``transitions``.

        Raises:
            RuleError: If the result is invalid (for example, nothing leads to the new stage).
            NotFound: If ``after`` is not a stage.
        """
        stages = list(self.stages)
        position = len(stages) if after is None else stages.index(self.stage(after)) + 1
        stages.insert(position, stage)
        return attrs.evolve(self, stages=stages, transitions=(*self.transitions, *transitions))

    def rename_stage(self, old: str, new: str, *, label: str | None = None) -> Lifecycle:
        """Return a copy with the stage ``old`` called ``new`` everywhere (transitions, initial stage).

        Records already stored with the old name keep it; migrate them with the rename.

        Raises:
            NotFound: If ``old`` is not a stage.
            RuleError: If ``new`` is not a valid or not an unused name.
        """
        found = self.stage(old)
        if new != old and new in self._machine.stages:
            msg = f"{new!r} is already a stage"
            raise RuleError(msg, "new")

        def rename(name: str) -> str:
            return new if name == old else name

        stages = [
            attrs.evolve(found, name=new, label=label if label is not None else found.label)
            if s is found
            else s
            for s in self.stages
        ]
        transitions = [
            attrs.evolve(t, sources=tuple(rename(s) for s in t.sources), target=rename(t.target))
            for t in self.transitions
        ]
        return attrs.evolve(self, stages=stages, transitions=transitions, initial=rename(self.initial))

    def update_stage(self, name: str, /, **changes: Any) -> Lifecycle:
        """Return a copy with some attributes of one stage changed.

        For example ``update_stage("proposal", probability="0.6", forecast="commit")``.

        Raises:
            NotFound: If there is no such stage.
            RuleError: If a value is invalid (use :meth:`rename_stage` to rename).
        """
        found = self.stage(name)
        if "name" in changes:
            msg = "use rename_stage to rename a stage"
            raise RuleError(msg, "name")
        try:
            updated = attrs.evolve(found, **changes)
        except TypeError as exc:
            raise RuleError(str(exc), "") from None
        return attrs.evolve(self, stages=[updated if s is found else s for s in self.stages])

    def with_probabilities(self, probabilities: Mapping[str, Any]) -> Lifecycle:
        """Return a copy with the probabilities of the named stages replaced.

        Raises:
            NotFound: If a name is not a stage.
            RuleError: If a probability is not from 0 to 1.
        """
        result = self
        for name, probability in probabilities.items():
            result = result.update_stage(name, probability=probability)
        return result

    def with_transition(self, transition: Transition) -> Lifecycle:
        """Return a copy with ``transition`` added.

        Raises:
            RuleError: If the result is invalid (a duplicate name, an unknown stage, ...).
        """
        return attrs.evolve(self, transitions=(*self.transitions, transition))

    def without_transition(self, name: str) -> Lifecycle:
        """Return a copy without the transition ``name``.

        Raises:
            NotFound: If there is no such transition.
            RuleError: If the result is invalid (a stage becomes unreachable or a trap).
        """
        found = self.transition(name)
        return attrs.evolve(self, transitions=[t for t in self.transitions if t is not found])


def _event_id() -> str:
    """A random UUID4 as 32 hex digits, like the events' default id: drawn from the records' id pool."""
    return _new_id()


# -- the fast path of apply ------------------------------------------------------------------------
#
# apply builds three values per move: the history entry, the moved record and the event. Running
# every check on each cost most of a move, yet every value in them is known valid beforehand: the
# stage and transition names come from templates built with every check when the lifecycle was
# built, ``at`` and ``actor`` are checked once per move, and the moved record's new history and
# updated_at keep the rules of a valid record by construction. So they are built with
# ``trusted_replacer``, which stores such values without checking them again. That is sound only while
# the fields involved are declared as below: the declarations are compared with these when a class
# is first moved, and a record whose class declares them otherwise takes ``_apply_by_plan``.
#
# A move without a payload goes further: ``_fast.compile_move`` writes, per record class and step, one
# function that runs apply's checks and builds the four values (entry, record, reference, event) in
# straight-line code, on the same grounds. ``apply`` looks it up in ``_Step.moves``; the first move of
# a class along a step (and every move with a payload) takes ``_apply_general`` below.

_DATETIME: tuple[Any, tuple[Any, ...]] = (datetime, ())
_ACTOR: tuple[Any, tuple[Any, ...]] = (str | None, (identifier,))
_ID: tuple[Any, tuple[Any, ...]] = (str, (identifier,))
# The fields a move sets from values apply checked itself, by class, as they must be declared.
_TRUSTED_VALUES: dict[type, dict[str, tuple[Any, tuple[Any, ...]]]] = {
    StageChange: {"at": _DATETIME, "actor": _ACTOR},
    StageChanged: {"at": _DATETIME, "actor": _ACTOR, "id": _ID, "entity": (EntityRef, ())},
    EntityRef: {"id": _ID},
}
# The record fields a move reads or sets, as every staged crmkit record declares them.
_RECORD_FIELDS: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "id": _ID,
    "created_at": _DATETIME,
    "updated_at": _DATETIME,
    "stage": (str, (short_label,)),
    "stage_history": (tuple[StageChange, ...], ()),
}
_MANAGED_MOVE = ("stage", "stage_history", "updated_at")
# The record rules a move keeps by construction (a subclass redefining either runs its own).
_RULES_KEPT_BY_MOVE = (_history_rule, Entity._updated_after_created)  # noqa: SLF001 - a rule of the base class
_VALUES_SOUND = all(
    declared(cls, name) == declaration
    for cls, fields in _TRUSTED_VALUES.items()
    for name, declaration in fields.items()
)
_SOUND_RECORDS: dict[type, bool] = {}
_MOVERS: dict[tuple[type, tuple[str, ...]], Callable[..., Any]] = {}
# ``f(template, *values)``: copies of the templates with the values a move proved valid.
_NEW_CHANGE = trusted_replacer(StageChange, ("at", "actor"))
_NEW_REF = trusted_replacer(EntityRef, ("id",))
_NEW_EVENT = trusted_replacer(StageChanged, ("entity", "at", "actor", "id"))
_ACTOR_CHECK = field_check(StageChange, "actor")


def _trusted_record(cls: type) -> bool:
    """Whether records of ``cls`` may take the fast path: it declares the fields moves use as crmkit does."""
    sound = _SOUND_RECORDS.get(cls)
    if sound is None:
        sound = _SOUND_RECORDS[cls] = _VALUES_SOUND and all(
            declared(cls, name) == declaration for name, declaration in _RECORD_FIELDS.items()
        )
    return sound


# Actors (plain strings) the actor check returned unchanged: the same few users make most moves, and
# the check is pure, so a string seen valid once is valid again. Bounded; cleared when full.
_VALID_ACTORS: set[str] = set()
_MAX_VALID_ACTORS = 4096


def _mover(
    cls: type, step: _Step, payload: Mapping[str, Any] | None, at: datetime
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The function moving a record of ``cls`` along ``step``, and the values of the fields it checks.

    It takes the record, the trusted stage, history and updated_at, then those values: the step's
    static fields the payload does not set, and the time for a stamped field.
    """
    if payload:
        static = {k: v for k, v in step.static.items() if k not in payload}
        checked: tuple[str, ...] = tuple(static)
        values: tuple[Any, ...] = tuple(static.values())
    else:
        checked, values = step.checked_fields, step.checked_values
    if step.stamp is not None:
        checked, values = (*checked, step.stamp), (*values, at)
    mover = _MOVERS.get((cls, checked))
    if mover is None:
        mover = _MOVERS[cls, checked] = trusted_replacer(cls, _MANAGED_MOVE, checked, _RULES_KEPT_BY_MOVE)
    return mover, values


def _checked_actor(actor: Any) -> Any:
    """``actor`` as StageChange.actor (and StageChanged.actor, declared alike) checks and stores it."""
    if actor.__class__ is str and actor in _VALID_ACTORS:
        return actor
    try:
        checked = _ACTOR_CHECK(actor)
    except ValidationError as exc:
        raise exc.under("actor") from None
    if checked is actor and actor.__class__ is str:
        if len(_VALID_ACTORS) >= _MAX_VALID_ACTORS:
            _VALID_ACTORS.clear()
        _VALID_ACTORS.add(actor)
    return checked


def _result(pair: tuple[Any, StageChanged]) -> TransitionResult[Any]:
    """``TransitionResult(*pair)`` without the keyword handling of a named tuple's ``__new__``."""
    return tuple.__new__(TransitionResult, pair)


def _sources_of(machine: _Machine, transition: str) -> list[str]:
    return [source for (source, name) in machine.steps if name == transition]


def _aware(at: Any) -> datetime:
    """``at`` when it is a timezone-aware datetime, else the error ``apply`` raises."""
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise _naive(at)
    return at


def _too_early(at: datetime, record: Any) -> ValidationError:
    history = record.stage_history
    last = history[-1].at if history else record.created_at
    msg = f"{at.isoformat()} is before the record's last stage change at {last.isoformat()}"
    return ValidationError.single("at", msg)


def _naive(at: Any) -> ValidationError:
    if not isinstance(at, datetime):
        return ValidationError.single("at", f"expected a datetime, got {type(at).__name__}")
    return ValidationError.single("at", f"datetime {at.isoformat()} has no timezone")


def _read(record: Any, name: str) -> Any:
    if name.startswith(_CUSTOM_PREFIX):
        return record.custom_fields.get(name.removeprefix(_CUSTOM_PREFIX))
    return getattr(record, name)


def _blank(record: Any, name: str) -> bool:
    value = _read(record, name)
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, tuple | frozenset | dict) and not value


def _guard_reasons(explanation: Explanation) -> list[str]:
    reasons = []
    for failed in explanation.failed:
        node = failed.condition
        if isinstance(node, Predicate):
            value = node.to_json().get("value")
            shown = value if isinstance(node.value, Decimal) else repr(value)
            reasons.append(f"guard failed: {node.field} {node.op.value} {shown} (actual: {failed.actual!r})")
    return reasons or ["guard failed"]


# -- building -------------------------------------------------------------------------------------


def _build(lifecycle: Lifecycle) -> _Machine:  # noqa: C901, PLR0912 - one check after another, in path order
    cls = ENTITY_TYPES[lifecycle.entity]
    if not lifecycle.stages:
        msg = "a lifecycle needs at least one stage"
        raise RuleError(msg, "stages")
    stages: dict[str, Stage] = {}
    order: dict[str, int] = {}
    for index, stage in enumerate(lifecycle.stages):
        if stage.name in stages:
            msg = f"stage {stage.name!r} is declared twice"
            raise RuleError(msg, f"stages[{index}].name")
        stages[stage.name] = stage
        order[stage.name] = index
    if not isinstance(lifecycle.initial, str) or lifecycle.initial not in stages:
        msg = f"{lifecycle.initial!r} is not a stage; stages: {', '.join(stages)}"
        raise RuleError(msg, "initial")
    schema = _schema(cls)
    fields = {attribute.name for attribute in attrs.fields(cls)} - _MANAGED
    forward_only = lifecycle.backward is BackwardPolicy.FORBID
    transitions: dict[str, Transition] = {}
    steps: dict[tuple[str, str], _Step] = {}
    for index, transition in enumerate(lifecycle.transitions):
        path = f"transitions[{index}]"
        if transition.name in transitions:
            msg = f"transition {transition.name!r} is declared twice"
            raise RuleError(msg, f"{path}.name")
        transitions[transition.name] = transition
        if transition.target not in stages:
            msg = f"{transition.target!r} is not a stage; stages: {', '.join(stages)}"
            raise RuleError(msg, f"{path}.target")
        target = stages[transition.target]
        sources = _expand_sources(transition, target, stages, order, forward_only=forward_only, path=path)
        if not sources:
            msg = f"transition {transition.name!r} can start from no stage"
            raise RuleError(msg, f"{path}.sources")
        guard = None
        if transition.guard is not None:
            try:
                guard = schema.compile(transition.guard)
            except RuleError as exc:
                raise exc.under(f"{path}.guard") from None  # noqa: EM102 - a path, not a message
        for position, name in enumerate(transition.required):
            _check_required(name, fields, f"{path}.required[{position}]")
        for source in dict.fromkeys(sources):
            if (source, transition.name) not in steps:
                steps[source, transition.name] = _step(lifecycle, transition, (stages[source], target), guard)
    from_stage = {name: tuple(t for (source, t) in steps if source == name) for name in stages}
    _check_graph(lifecycle, stages, steps, from_stage)
    return _Machine(
        cls=cls,
        schema=schema,
        steps=steps,
        from_stage=from_stage,
        stages=stages,
        transitions=transitions,
        ref=EntityRef(lifecycle.entity, _TEMPLATE_ID),
    )


def _expand_sources(
    transition: Transition,
    target: Stage,
    stages: Mapping[str, Stage],
    order: Mapping[str, int],
    *,
    forward_only: bool,
    path: str,
) -> list[str]:
    """The stages ``transition`` starts from, ``"*"`` expanded, each checked."""
    sources: list[str] = []
    for position, source in enumerate(transition.sources):
        where = f"{path}.sources[{position}]"
        if source == ANY_STAGE:
            sources.extend(
                name
                for name, stage in stages.items()
                if not stage.terminal
                and name != target.name
                and not (forward_only and order[name] > order[target.name])
            )
            continue
        if source not in stages:
            msg = f"{source!r} is not a stage; stages: {', '.join(stages)}"
            raise RuleError(msg, where)
        if stages[source].terminal:
            msg = f"{source!r} is terminal: no transition leaves it"
            raise RuleError(msg, where)
        if source == target.name:
            msg = f"a transition cannot start from its own target {source!r}"
            raise RuleError(msg, where)
        if forward_only and order[source] > order[target.name]:
            msg = f"moves backwards from {source!r} to {target.name!r}, which this lifecycle forbids"
            raise RuleError(msg, where)
        sources.append(source)
    return sources


def _check_required(name: str, fields: set[str], path: str) -> None:
    if name.startswith(_CUSTOM_PREFIX):
        if not _CUSTOM_KEY.fullmatch(name.removeprefix(_CUSTOM_PREFIX)):
            msg = f"{name!r}: a custom field name is 1-64 lower-case ASCII letters, digits or _"
            raise RuleError(msg, path)
        return
    if name not in fields:
        msg = f"unknown field {name!r}; required fields are record fields or 'custom_fields.<key>'"
        raise RuleError(msg, path)


def _check_graph(
    lifecycle: Lifecycle,
    stages: Mapping[str, Stage],
    steps: Mapping[tuple[str, str], _Step],
    from_stage: Mapping[str, tuple[str, ...]],
) -> None:
    reached = {lifecycle.initial}
    queue = deque([lifecycle.initial])
    while queue:
        current = queue.popleft()
        for name in from_stage[current]:
            target = steps[current, name].target
            if target not in reached:
                reached.add(target)
                queue.append(target)
    for index, stage in enumerate(lifecycle.stages):
        if stage.name not in reached:
            msg = f"stage {stage.name!r} cannot be reached from the initial stage {lifecycle.initial!r}"
            raise RuleError(msg, f"stages[{index}]")
        if not stage.terminal and not from_stage[stage.name]:
            msg = f"stage {stage.name!r} is a trap: it is not terminal, yet no transition leaves it"
            raise RuleError(msg, f"stages[{index}]")
    del stages  # the order of lifecycle.stages gives the paths


def _step(
    lifecycle: Lifecycle,
    transition: Transition,
    move: tuple[Stage, Stage],
    guard: Callable[[Any], bool] | None,
) -> _Step:
    source, target = move
    cls = ENTITY_TYPES[lifecycle.entity]
    static: dict[str, Any] = {}
    stamp = None
    names = {attribute.name for attribute in attrs.fields(cls)}
    if target.probability is not None and "probability" in names:
        static["probability"] = target.probability
    closing = _CLOSING_FIELDS.get(lifecycle.entity)
    if closing is not None and closing[0] in names:
        field_name, closed = closing
        if target.category in closed and source.category not in closed:
            stamp = field_name
        elif target.category not in closed and source.category in closed:
            static[field_name] = None
    change = StageChange(from_stage=source.name, to_stage=target.name, transition=transition.name, at=_EPOCH)
    event = StageChanged(
        entity=EntityRef(lifecycle.entity, _TEMPLATE_ID),
        at=_EPOCH,
        id=_TEMPLATE_ID,
        from_stage=source.name,
        to_stage=target.name,
        transition=transition.name,
        lifecycle=lifecycle.name,
    )
    return _Step(
        transition=transition,
        target=target.name,
        guard=guard,
        change=change,
        event=event,
        static=static,
        stamp=stamp,
        checked=guard is not None or bool(transition.required),
        checked_fields=tuple(static),
        checked_values=tuple(static.values()),
        guard_only=guard is not None and not transition.required,
    )
