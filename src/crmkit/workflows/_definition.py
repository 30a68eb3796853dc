"""Workflow definitions as data: a trigger, conditions, steps and a re-enrolment policy (private).

Everything here is an immutable value read from and written to plain JSON, and checked
when it is built: an unknown trigger, event, field, action or check, a bad parameter, a
delay that is negative or absurd, or a template naming an undeclared field is a
:class:`~crmkit.errors.RuleError` whose ``path`` points at the node
(``"steps[2].then[0].params.template"``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
from dateutil.rrule import rrule, rrulestr

from crmkit._json import read_object as _object
from crmkit.conditions import Condition, FieldKind, FieldSpec, Schema, format_duration
from crmkit.entities import ENTITY_TYPES, ActivityKind, Entity
from crmkit.errors import RuleError
from crmkit.events import EVENT_TYPES, DomainEvent, EntityCreated, EntityUpdated, StageChanged
from crmkit.workflows._calendar import BusinessCalendar, fixed_duration
from crmkit.workflows._registry import action_spec, check_spec

__all__ = [
    "ActionStep",
    "Branch",
    "Check",
    "Delay",
    "DelayUnit",
    "Reenrolment",
    "ReenrolmentPolicy",
    "Step",
    "Template",
    "Trigger",
    "TriggerKind",
    "Workflow",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
# Read left to right: an escaped brace, or a placeholder; what is left must hold no brace.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_FIELD_PATH = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*")
_MAX_TEMPLATE = 10_000
_MAX_STEPS = 200
_MAX_DEPTH = 5
_MAX_RULE = 500


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        msg = f"expected a name of 1-64 lower-case letters, digits, '_', '.' or '-', got {value!r}"
        raise RuleError(msg, path)
    return value


def _join(path: str, step: str) -> str:
    if not path:
        return step
    return f"{path}{step}" if step.startswith("[") else f"{path}.{step}"


# -- templates -----------------------------------------------------------------------------------


@attrs.frozen
class Template:
    """Message text with ``{field}`` placeholders filled from the record (and ``{event.field}``).

    ``{{`` and ``}}`` write literal braces. Placeholders are checked against the
    workflow's declared fields when the workflow is built; rendering reads only them.

    Attributes:
        text: The template text.
    """

    text: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.text, str) or len(self.text) > _MAX_TEMPLATE:
            msg = f"expected a text of at most {_MAX_TEMPLATE} characters"
            raise RuleError(msg)
        if "{" in _TOKEN.sub("", self.text) or "}" in _TOKEN.sub("", self.text):
            msg = "a brace that does not open or close a placeholder is written twice: {{ or }}"
            raise RuleError(msg)
        for name in self.fields:
            if not _FIELD_PATH.fullmatch(name):
                msg = f"{{{name}}} is not a field placeholder such as {{first_name}} or {{event.category}}"
                raise RuleError(msg)

    @property
    def fields(self) -> tuple[str, ...]:
        """The field names the placeholders use, in order."""
        return tuple(match.group(1) for match in _TOKEN.finditer(self.text) if match.group(1) is not None)

    def check(self, schemas: Mapping[str, Schema | None]) -> None:
        """Raise a RuleError for a placeholder naming an undeclared field.

        Args:
            schemas: Prefix -> schema: ``""`` for the record's own fields, ``"event"``
                for ``{event.x}``, ``"recipient"`` for ``{recipient.x}``.
        """
        for name in self.fields:
            prefix, field = _split(name, schemas)
            schema = schemas.get(prefix)
            if schema is None or field not in schema.fields:
                known = sorted(
                    f"{key}.{item}" if key else item
                    for key, found in schemas.items()
                    if found is not None
                    for item in found.fields
                )
                msg = f"unknown field {{{name}}} in the template; declared: {', '.join(known)}"
                raise RuleError(msg)

    def render(self, values: Mapping[str, tuple[Schema | None, Any]]) -> str:
        """Fill the placeholders from ``prefix -> (schema, object)``; a missing value is empty text."""
        schemas = {prefix: schema for prefix, (schema, _) in values.items()}

        def value(match: re.Match[str]) -> str:
            if match.group(1) is None:
                return match.group(0)[0]  # an escaped brace
            prefix, field = _split(match.group(1), schemas)
            schema, obj = values.get(prefix, (None, None))
            found = schema.read(field, obj) if schema is not None and obj is not None else None
            return "" if found is None else str(found)

        return _TOKEN.sub(value, self.text)


def _split(name: str, schemas: Mapping[str, Any]) -> tuple[str, str]:
    """``"event.category"`` -> ``("event", "category")`` when ``event`` is a prefix, else ``("", name)``."""
    head, _, rest = name.partition(".")
    if rest and head in schemas and head:
        return head, rest
    return "", name


# -- triggers ------------------------------------------------------------------------------------


class TriggerKind(enum.StrEnum):
    """What starts a workflow."""

    EVENT = "event"
    STAGE_CHANGED = "stage_changed"
    FIELD_CHANGED = "field_changed"
    ACTIVITY_LOGGED = "activity_logged"
    NO_ACTIVITY = "no_activity"
    SCHEDULE = "schedule"


def _trigger_kind(value: Any) -> TriggerKind:
    try:
        return TriggerKind(value)
    except ValueError:
        msg = f"unknown trigger {value!r}; one of: {', '.join(k.value for k in TriggerKind)}"
        raise RuleError(msg, "type") from None


_TRIGGER_KEYS = {
    TriggerKind.EVENT: {"event"},
    TriggerKind.STAGE_CHANGED: {"to_stage", "from_stage"},
    TriggerKind.FIELD_CHANGED: {"field"},
    TriggerKind.ACTIVITY_LOGGED: {"activity_kind"},
    TriggerKind.NO_ACTIVITY: {"period", "field"},
    TriggerKind.SCHEDULE: {"rule"},
}


@attrs.frozen
class Trigger:
    """What starts a workflow.

    Build one with the class methods: :meth:`on_event`, :meth:`on_stage_changed`,
    :meth:`on_field_changed`, :meth:`on_activity_logged`, :meth:`on_no_activity`
    and :meth:`on_schedule`.

    Attributes:
        kind: The kind of trigger.
        event: For ``event``: the registered event type's name (``"sla_breached"``).
        to_stage: For ``stage_changed``: only moves into this stage.
        from_stage: For ``stage_changed``: only moves out of this stage.
        field: For ``field_changed``: the field that changed; for ``no_activity``:
            the time field read (``updated_at`` by default).
        activity_kind: For ``activity_logged``: only activities of this kind.
        period: For ``no_activity``: how long without activity.
        rule: For ``schedule``: an RFC 5545 RRULE in the calendar's time zone (UTC
            without one), such as ``"FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"``.
    """

    kind: TriggerKind = attrs.field(converter=_trigger_kind)
    event: str | None = None
    to_stage: str | None = None
    from_stage: str | None = None
    field: str | None = None
    activity_kind: ActivityKind | None = None
    period: timedelta | None = None
    rule: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind is TriggerKind.NO_ACTIVITY and self.field is None:
            object.__setattr__(self, "field", "updated_at")

    @classmethod
    def on_event(cls, event: str) -> Trigger:
        """Start on every event of a registered type about the workflow's kind of record."""
        return cls(TriggerKind.EVENT, event=event)

    @classmethod
    def on_stage_changed(cls, to_stage: str | None = None, from_stage: str | None = None) -> Trigger:
        """Start when the record changes stage (optionally into or out of a given stage)."""
        return cls(TriggerKind.STAGE_CHANGED, to_stage=to_stage, from_stage=from_stage)

    @classmethod
    def on_field_changed(cls, field: str) -> Trigger:
        """Start when an :class:`~crmkit.events.EntityUpdated` event names the field."""
        return cls(TriggerKind.FIELD_CHANGED, field=field)

    @classmethod
    def on_activity_logged(cls, activity_kind: ActivityKind | str | None = None) -> Trigger:
        """Start when an activity is created (the workflow's records are activities)."""
        return cls(TriggerKind.ACTIVITY_LOGGED, activity_kind=_activity_kind(activity_kind))

    @classmethod
    def on_no_activity(cls, period: timedelta | str, field: str = "updated_at") -> Trigger:
        """Start when a record's ``field`` is older than ``period`` (checked by ``engine.tick``)."""
        return cls(TriggerKind.NO_ACTIVITY, period=_period(period, "period"), field=field)

    @classmethod
    def on_schedule(cls, rule: str) -> Trigger:
        """Start for each record given to ``engine.tick`` at each occurrence of an RRULE."""
        return cls(TriggerKind.SCHEDULE, rule=rule)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``{"type": kind, ...}``."""
        data: dict[str, Any] = {"type": self.kind.value}
        for name in sorted(_TRIGGER_KEYS[self.kind]):
            value = getattr(self, name)
            if value is None:
                continue
            data[name] = format_duration(value) if isinstance(value, timedelta) else str(value)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Trigger:
        """Read a trigger from its JSON form.

        Raises:
            RuleError: For an unknown type or key.
        """
        if not isinstance(data, Mapping):
            msg = f"expected an object, got {type(data).__name__}"
            raise RuleError(msg)
        kind = _trigger_kind(data.get("type"))
        fields = dict(_object(data, {"type", *_TRIGGER_KEYS[kind]}))
        fields.pop("type")
        if "period" in fields:
            fields["period"] = _period(fields["period"], "period")
        if "activity_kind" in fields:
            fields["activity_kind"] = _activity_kind(fields["activity_kind"])
        return cls(kind, **fields)

    def event_types(self) -> tuple[type[DomainEvent], ...]:
        """The event classes this trigger listens to (none for ``no_activity`` and ``schedule``)."""
        if self.kind is TriggerKind.EVENT:
            found = EVENT_TYPES.get(self.event or "")
            return (found,) if found is not None else ()
        return {
            TriggerKind.STAGE_CHANGED: (StageChanged,),
            TriggerKind.FIELD_CHANGED: (EntityUpdated,),
            TriggerKind.ACTIVITY_LOGGED: (EntityCreated,),
        }.get(self.kind, ())

    def matches(self, event: DomainEvent) -> bool:
        """Whether the event (already known to be of a listened type) starts the workflow."""
        if self.kind is TriggerKind.STAGE_CHANGED:
            assert isinstance(event, StageChanged)  # noqa: S101 - the engine indexes by type
            return (self.to_stage is None or event.to_stage == self.to_stage) and (
                self.from_stage is None or event.from_stage == self.from_stage
            )
        if self.kind is TriggerKind.FIELD_CHANGED:
            assert isinstance(event, EntityUpdated)  # noqa: S101 - the engine indexes by type
            return self.field in event.changed
        return True

    def describe(self) -> str:
        """The trigger in words, for traces."""
        details = ", ".join(f"{key}={value}" for key, value in self.to_json().items() if key != "type")
        return f"{self.kind.value}({details})"


def _activity_kind(value: Any) -> ActivityKind | None:
    if value is None or isinstance(value, ActivityKind):
        return value
    try:
        return ActivityKind(value)
    except ValueError:
        msg = f"unknown activity kind {value!r}; one of: {', '.join(k.value for k in ActivityKind)}"
        raise RuleError(msg, "activity_kind") from None


def _period(value: Any, path: str) -> timedelta:
    delta = fixed_duration(value, path, what="a period")
    if not timedelta(minutes=1) <= delta <= timedelta(days=3660):
        msg = f"must be from one minute to ten years, got {delta}"
        raise RuleError(msg, path)
    return delta


def _schedule_rule(text: Any) -> rrule:
    if not isinstance(text, str) or not text or len(text) > _MAX_RULE or "DTSTART" in text.upper():
        msg = f"expected a single RFC 5545 RRULE without DTSTART, got {text!r}"
        raise RuleError(msg, "rule")
    try:
        rule = rrulestr(text, dtstart=datetime(2000, 1, 1))  # noqa: DTZ001 - local times in the calendar's zone
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        msg = f"not a valid RFC 5545 RRULE: {exc}"
        raise RuleError(msg, "rule") from None
    if not isinstance(rule, rrule):
        msg = "expected a single RRULE"
        raise RuleError(msg, "rule")
    return rule


# -- steps ---------------------------------------------------------------------------------------


class DelayUnit(enum.StrEnum):
    """The units a delay is counted in; the business ones need the workflow's calendar."""

    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"
    BUSINESS_HOURS = "business_hours"
    BUSINESS_DAYS = "business_days"


_UNIT_LIMITS = {
    DelayUnit.MINUTES: 366 * 24 * 60,
    DelayUnit.HOURS: 366 * 24,
    DelayUnit.DAYS: 366,
    DelayUnit.WEEKS: 53,
    DelayUnit.BUSINESS_HOURS: 366 * 24,
    DelayUnit.BUSINESS_DAYS: 366,
}


@attrs.frozen
class Delay:
    """Wait before the next step: ``Delay(2, "business_days")`` ("wait 2 business days").

    Attributes:
        amount: How many units; from 1 to a year's worth.
        unit: The unit; business units are counted in the workflow's calendar.
    """

    amount: int
    unit: DelayUnit

    def __attrs_post_init__(self) -> None:
        try:
            unit = DelayUnit(self.unit)
        except ValueError:
            msg = f"unknown unit {self.unit!r}; one of: {', '.join(u.value for u in DelayUnit)}"
            raise RuleError(msg, "unit") from None
        object.__setattr__(self, "unit", unit)
        limit = _UNIT_LIMITS[unit]
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or not 1 <= self.amount <= limit:
            msg = f"a delay is a whole number of {unit.value} from 1 to {limit}, got {self.amount!r}"
            raise RuleError(msg, "amount")

    def due(self, start: datetime, calendar: BusinessCalendar | None) -> datetime:
        """When the delay started at ``start`` ends."""
        if self.unit is DelayUnit.BUSINESS_HOURS:
            assert calendar is not None  # noqa: S101 - checked when the workflow is built
            return calendar.add_business_time(start, timedelta(hours=self.amount))
        if self.unit is DelayUnit.BUSINESS_DAYS:
            assert calendar is not None  # noqa: S101 - checked when the workflow is built
            return calendar.business_days_after(start, self.amount)
        return start + timedelta(**{self.unit.value: self.amount})

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``{"wait": {"business_days": 2}}``."""
        return {"wait": {self.unit.value: self.amount}}


@attrs.frozen
class Check:
    """A host-registered condition (``register_condition``) with its parameters.

    Attributes:
        name: The registered condition's name.
        params: Its parameters, checked against the condition's parameter class.
    """

    name: str
    params: Any = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``{"check": name, "params": {...}}``."""
        from crmkit.serialization import to_data  # noqa: PLC0415 - serialization is heavy to import

        data: dict[str, Any] = {"check": self.name}
        if self.params is not None:
            data["params"] = to_data(self.params)
        return data


@attrs.frozen
class ActionStep:
    """Run a registered action with its parameters.

    Attributes:
        action: The action's registered name (``"send_message"``).
        params: The action's parameters: an instance of its parameter class (a mapping
            is read into one when the workflow is built).
        name: A label for traces.
    """

    action: str
    params: Any = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``{"action": name, "params": {...}}``."""
        from crmkit.serialization import to_data  # noqa: PLC0415 - serialization is heavy to import

        data: dict[str, Any] = {"action": self.action}
        if self.params is not None:
            data["params"] = to_data(self.params)
        if self.name is not None:
            data["name"] = self.name
        return data


@attrs.frozen
class Branch:
    """If the condition holds on the record, run ``then``, else ``else_``.

    Attributes:
        condition: A condition tree over the record's declared fields, or a :class:`Check`.
        then: The steps run when it holds.
        else_: The steps run when it does not.
    """

    condition: Condition | Check
    then: tuple[Step, ...] = ()
    else_: tuple[Step, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``{"if": condition, "then": [...], "else": [...]}``."""
        return {
            "if": self.condition.to_json(),
            "then": [step.to_json() for step in self.then],
            "else": [step.to_json() for step in self.else_],
        }


Step = ActionStep | Delay | Branch
"""One step of a workflow: an action, a delay or an if/else branch."""


def _step_from_json(data: Any) -> Step:
    if not isinstance(data, Mapping):
        msg = f"expected a step object, got {type(data).__name__}"
        raise RuleError(msg)
    if "action" in data:
        fields = _object(data, {"action", "params", "name"})
        return ActionStep(fields["action"], fields.get("params"), fields.get("name"))
    if "wait" in data:
        _object(data, {"wait"})
        wait = data["wait"]
        if not isinstance(wait, Mapping) or len(wait) != 1:
            msg = "expected one unit and amount, such as {'business_days': 2}"
            raise RuleError(msg, "wait")
        ((unit, amount),) = wait.items()
        try:
            return Delay(amount, unit)
        except RuleError as exc:
            raise exc.under("wait") from None
    if "if" in data:
        fields = _object(data, {"if", "then", "else"})
        condition = _condition_from_json(fields["if"], "if")
        return Branch(
            condition,
            _steps_from_json(fields.get("then", []), "then"),
            _steps_from_json(fields.get("else", []), "else"),
        )
    msg = "a step has 'action', 'wait' or 'if'"
    raise RuleError(msg)


def _condition_from_json(data: Any, path: str) -> Condition | Check:
    if isinstance(data, Mapping) and "check" in data:
        try:
            fields = _object(data, {"check", "params"})
        except RuleError as exc:
            raise exc.under(path) from None
        return Check(fields["check"], fields.get("params"))
    try:
        return Condition.from_json(data)
    except RuleError as exc:
        raise exc.under(path) from None


def _steps_from_json(data: Any, path: str) -> tuple[Step, ...]:
    if not isinstance(data, list):
        msg = f"expected a list of steps, got {type(data).__name__}"
        raise RuleError(msg, path)
    steps = []
    for index, item in enumerate(data):
        try:
            steps.append(_step_from_json(item))
        except RuleError as exc:
            raise exc.under(f"{path}[{index}]") from None  # noqa: EM102 - a path, not a message
    return tuple(steps)


# -- re-enrolment ------------------------------------------------------------------------------


class ReenrolmentPolicy(enum.StrEnum):
    """Whether a record that already went through a workflow may go through it again."""

    ONCE = "once"
    EVERY_TIME = "every_time"
    COOLDOWN = "cooldown"


@attrs.frozen
class Reenrolment:
    """A workflow's re-enrolment policy.

    Attributes:
        policy: Once per record, every time, or again after a cool-down.
        cooldown: For ``cooldown``: how long after the last enrolment a record may enrol again.
    """

    policy: ReenrolmentPolicy = ReenrolmentPolicy.ONCE
    cooldown: timedelta | None = None

    def __attrs_post_init__(self) -> None:
        try:
            object.__setattr__(self, "policy", ReenrolmentPolicy(self.policy))
        except ValueError:
            msg = f"unknown policy {self.policy!r}; one of: {', '.join(p.value for p in ReenrolmentPolicy)}"
            raise RuleError(msg, "policy") from None
        if self.policy is ReenrolmentPolicy.COOLDOWN:
            if self.cooldown is None:
                msg = "a cool-down policy needs its period"
                raise RuleError(msg, "cooldown")
            object.__setattr__(self, "cooldown", _period(self.cooldown, "cooldown"))
        elif self.cooldown is not None:
            msg = f"only the cooldown policy takes a period, not {self.policy.value}"
            raise RuleError(msg, "cooldown")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        data: dict[str, Any] = {"policy": self.policy.value}
        if self.cooldown is not None:
            data["cooldown"] = format_duration(self.cooldown)
        return data


# -- the workflow ------------------------------------------------------------------------------

_KIND_TYPES: dict[FieldKind, Any] = {kind: FieldSpec(kind) for kind in FieldKind}


def _custom_fields(value: Any) -> Mapping[str, FieldKind]:
    if not isinstance(value, Mapping):
        msg = f"expected a mapping of custom field names to kinds, got {type(value).__name__}"
        raise RuleError(msg, "custom_fields")
    result = {}
    for name, kind in value.items():
        try:
            result[str(name)] = FieldKind(kind)
        except ValueError:
            msg = f"unknown field kind {kind!r}; one of: {', '.join(k.value for k in FieldKind)}"
            raise RuleError(msg, f"custom_fields.{name}") from None
    return result


@attrs.frozen
class _Compiled:
    """What building a workflow prepares once: schemas, predicates, parameters and steps by path."""

    schema: Schema
    event_schema: Schema | None
    condition: Callable[[Any], bool] | None
    event_condition: Callable[[Any], bool] | None
    steps: dict[str, Step]
    predicates: dict[str, Callable[[Any], bool]]
    rule: rrule | None


@attrs.frozen(eq=False)
class Workflow:
    """An automation: when the trigger fires for a record and the conditions hold, run the steps.

    A workflow is immutable data, checked when it is built and converted to JSON and back
    (:meth:`to_json`, :meth:`from_json`).

    Attributes:
        name: A unique name (lower-case letters, digits, ``_ . -``).
        entity: The kind of record it runs for (``"ticket"``, ``"contact"``).
        trigger: What starts it.
        steps: What it does, in order.
        conditions: A condition over the record's declared fields that must hold.
        event_conditions: A condition over the triggering event's fields.
        checks: Host-registered conditions that must hold too.
        reenrolment: Whether a record may go through it again.
        calendar: The business hours for business delays (and schedules' time zone).
        custom_fields: The record's custom fields conditions and templates may use, by kind.
        description: What it is for.
        enabled: A disabled workflow never starts (delayed steps of started runs still resume).

    Raises:
        RuleError: For anything that would fail when it fires; ``path`` points at the node.
    """

    name: str
    entity: str
    trigger: Trigger
    steps: tuple[Step, ...]
    conditions: Condition | None = attrs.field(default=None, kw_only=True)
    event_conditions: Condition | None = attrs.field(default=None, kw_only=True)
    checks: tuple[Check, ...] = attrs.field(default=(), kw_only=True, converter=tuple)
    reenrolment: Reenrolment = attrs.field(factory=Reenrolment, kw_only=True)
    calendar: BusinessCalendar | None = attrs.field(default=None, kw_only=True)
    custom_fields: Mapping[str, FieldKind] = attrs.field(factory=dict, kw_only=True, converter=_custom_fields)
    description: str | None = attrs.field(default=None, kw_only=True)
    enabled: bool = attrs.field(default=True, kw_only=True)
    _compiled: _Compiled = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "_compiled", _build(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Workflow):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def schema(self) -> Schema:
        """The declared fields of the workflow's records (conditions and templates use them)."""
        return self._compiled.schema

    @property
    def event_schema(self) -> Schema | None:
        """The declared fields of the triggering event, when the trigger has one event type."""
        return self._compiled.event_schema

    def step_at(self, path: str) -> Step:
        """Return the step at a path such as ``"steps[2].then[0]"``."""
        return self._compiled.steps[path]

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form; :meth:`from_json` reads it back to an equal workflow."""
        data: dict[str, Any] = {
            "name": self.name,
            "entity": self.entity,
            "trigger": self.trigger.to_json(),
            "steps": [step.to_json() for step in self.steps],
            "reenrolment": self.reenrolment.to_json(),
        }
        if self.conditions is not None:
            data["conditions"] = self.conditions.to_json()
        if self.event_conditions is not None:
            data["event_conditions"] = self.event_conditions.to_json()
        if self.checks:
            data["checks"] = [check.to_json() for check in self.checks]
        if self.calendar is not None:
            data["calendar"] = self.calendar.to_json()
        if self.custom_fields:
            data["custom_fields"] = {name: kind.value for name, kind in sorted(self.custom_fields.items())}
        if self.description is not None:
            data["description"] = self.description
        if not self.enabled:
            data["enabled"] = False
        return data

    @classmethod
    def from_json(cls, data: Any) -> Workflow:  # noqa: C901, PLR0912 - one branch per optional part
        """Build and check a workflow from its JSON form.

        Raises:
            RuleError: If the data is malformed or the workflow invalid; ``path`` points at the node.
        """
        keys = {
            "name", "entity", "trigger", "steps", "conditions", "event_conditions", "checks",
            "reenrolment", "calendar", "custom_fields", "description", "enabled",
        }  # fmt: skip
        fields = _object(data, keys, ("name", "entity", "trigger", "steps"))
        try:
            trigger = Trigger.from_json(fields["trigger"])
        except RuleError as exc:
            raise exc.under("trigger") from None
        steps = _steps_from_json(fields["steps"], "steps")
        options: dict[str, Any] = {}
        for key in ("conditions", "event_conditions"):
            if fields.get(key) is not None:
                try:
                    options[key] = Condition.from_json(fields[key])
                except RuleError as exc:
                    raise exc.under(key) from None
        checks = fields.get("checks", [])
        if not isinstance(checks, list):
            msg = "expected a list of checks"
            raise RuleError(msg, "checks")
        options["checks"] = []
        for index, item in enumerate(checks):
            found = _condition_from_json(item, f"checks[{index}]")
            if not isinstance(found, Check):
                msg = "expected {'check': name, 'params': {...}}"
                raise RuleError(msg, f"checks[{index}]")
            options["checks"].append(found)
        if "reenrolment" in fields:
            try:
                spec = _object(fields["reenrolment"], {"policy", "cooldown"})
                options["reenrolment"] = Reenrolment(spec.get("policy", "once"), spec.get("cooldown"))
            except RuleError as exc:
                raise exc.under("reenrolment") from None
        if "calendar" in fields:
            try:
                options["calendar"] = BusinessCalendar.from_json(fields["calendar"])
            except RuleError as exc:
                raise exc.under("calendar") from None
        for key in ("custom_fields", "description", "enabled"):
            if key in fields:
                options[key] = fields[key]
        return cls(fields["name"], fields["entity"], trigger, steps, **options)


# -- building: every check that would otherwise fail when the workflow fires ----------------------


def _build(workflow: Workflow) -> _Compiled:  # noqa: C901 - one check per part of the definition
    _name(workflow.name, "name")
    cls = ENTITY_TYPES.get(workflow.entity) if isinstance(workflow.entity, str) else None
    if cls is None:
        msg = f"unknown entity kind {workflow.entity!r}; one of: {', '.join(sorted(ENTITY_TYPES))}"
        raise RuleError(msg, "entity")
    trigger: object = workflow.trigger  # callers may pass anything
    if not isinstance(trigger, Trigger):
        msg = f"expected a Trigger, got {type(trigger).__name__}"
        raise RuleError(msg, "trigger")
    for name, expected, optional in (
        ("description", str, True),
        ("enabled", bool, False),
        ("reenrolment", Reenrolment, False),
        ("calendar", BusinessCalendar, True),
    ):
        value = getattr(workflow, name)
        if not isinstance(value, expected) and not (optional and value is None):
            msg = f"expected a {expected.__name__}, got {type(value).__name__}"
            raise RuleError(msg, name)
    schema = _record_schema(cls, workflow.custom_fields)
    event_schema = _check_trigger(workflow, cls, schema)
    condition = None
    if workflow.conditions is not None:
        try:
            condition = schema.compile(workflow.conditions)
        except RuleError as exc:
            raise exc.under("conditions") from None
    event_condition = None
    if workflow.event_conditions is not None:
        if event_schema is None:
            msg = "only a trigger with one event type has event conditions"
            raise RuleError(msg, "event_conditions")
        try:
            event_condition = event_schema.compile(workflow.event_conditions)
        except RuleError as exc:
            raise exc.under("event_conditions") from None
    checks = []
    for index, check in enumerate(workflow.checks):
        checks.append(_checked_check(check, f"checks[{index}]"))
    object.__setattr__(workflow, "checks", tuple(checks))
    context = _BuildContext(workflow, schema, event_schema)
    if not workflow.steps:
        msg = "a workflow needs at least one step"
        raise RuleError(msg, "steps")
    steps: dict[str, Step] = {}
    predicates: dict[str, Callable[[Any], bool]] = {}
    checked = _checked_steps(workflow.steps, "steps", context, steps, predicates, 0)
    object.__setattr__(workflow, "steps", checked)
    if len(steps) > _MAX_STEPS:
        msg = f"a workflow has at most {_MAX_STEPS} steps, got {len(steps)}"
        raise RuleError(msg, "steps")
    rule = _schedule_rule(workflow.trigger.rule) if workflow.trigger.kind is TriggerKind.SCHEDULE else None
    return _Compiled(schema, event_schema, condition, event_condition, steps, predicates, rule)


def _record_schema(cls: type[Entity], custom_fields: Mapping[str, FieldKind]) -> Schema:
    try:
        return Schema.for_entity(
            cls, custom_fields={name: _KIND_TYPES[kind] for name, kind in custom_fields.items()}
        )
    except RuleError as exc:
        raise exc.under("custom_fields") from None


def _check_trigger(workflow: Workflow, cls: type[Entity], schema: Schema) -> Schema | None:
    trigger = workflow.trigger
    kind = trigger.kind
    if kind is TriggerKind.EVENT:
        found = EVENT_TYPES.get(trigger.event) if isinstance(trigger.event, str) else None
        if found is None:
            msg = f"unknown event type {trigger.event!r}; registered: {', '.join(sorted(EVENT_TYPES))}"
            raise RuleError(msg, "trigger.event")
        return Schema.for_entity(found, exclude=("entity.kind",))
    if kind is TriggerKind.FIELD_CHANGED and trigger.field not in {f.name for f in attrs.fields(cls)}:
        known = ", ".join(f.name for f in attrs.fields(cls))
        msg = f"unknown field {trigger.field!r} of {workflow.entity}; fields: {known}"
        raise RuleError(msg, "trigger.field")
    if kind is TriggerKind.ACTIVITY_LOGGED and workflow.entity != "activity":
        msg = f"an activity_logged workflow runs for activities, not {workflow.entity}"
        raise RuleError(msg, "entity")
    if kind is TriggerKind.NO_ACTIVITY:
        if trigger.period is None:
            msg = "is required"
            raise RuleError(msg, "trigger.period")
        spec = schema.fields.get(trigger.field or "")
        if spec is None or spec.kind is not FieldKind.DATETIME:
            msg = f"{trigger.field!r} is not a date-time field of {workflow.entity}"
            raise RuleError(msg, "trigger.field")
    if kind is TriggerKind.SCHEDULE:
        try:
            _schedule_rule(trigger.rule)
        except RuleError as exc:
            raise exc.under("trigger") from None
    types = trigger.event_types()
    return Schema.for_entity(types[0], exclude=("entity.kind",)) if types else None


@attrs.frozen
class _BuildContext:
    workflow: Workflow
    schema: Schema
    event_schema: Schema | None


def _checked_check(check: Check, path: str) -> Check:
    spec = check_spec(check.name)
    if spec is None:
        msg = f"unknown check {check.name!r}; register it with register_condition"
        raise RuleError(msg, _join(path, "check"))
    params = _read_params(spec.params, check.params, _join(path, "params"))
    return Check(check.name, params)


def _checked_steps(  # noqa: PLR0917 - private recursion
    steps: Iterable[Any],
    path: str,
    context: _BuildContext,
    by_path: dict[str, Step],
    predicates: dict[str, Callable[[Any], bool]],
    depth: int,
) -> tuple[Step, ...]:
    if depth > _MAX_DEPTH:
        msg = f"branches nest at most {_MAX_DEPTH} deep"
        raise RuleError(msg, path)
    result: list[Step] = []
    for index, step in enumerate(steps):
        where = f"{path}[{index}]"
        checked: Step
        if isinstance(step, Delay):
            if (
                step.unit in {DelayUnit.BUSINESS_HOURS, DelayUnit.BUSINESS_DAYS}
                and context.workflow.calendar is None
            ):
                msg = f"a delay in {step.unit.value} needs the workflow's calendar"
                raise RuleError(msg, _join(where, "wait"))
            checked = step
        elif isinstance(step, ActionStep):
            checked = _checked_action(step, where, context)
        elif isinstance(step, Branch):
            condition: Condition | Check
            if isinstance(step.condition, Check):
                condition = _checked_check(step.condition, _join(where, "if"))
            else:
                try:
                    predicates[where] = context.schema.compile(step.condition)
                except RuleError as exc:
                    raise exc.under(_join(where, "if")) from None
                condition = step.condition
            checked = Branch(
                condition,
                _checked_steps(step.then, _join(where, "then"), context, by_path, predicates, depth + 1),
                _checked_steps(step.else_, _join(where, "else"), context, by_path, predicates, depth + 1),
            )
        else:
            msg = f"expected an action, a delay or a branch, got {type(step).__name__}"
            raise RuleError(msg, where)
        by_path[where] = checked
        result.append(checked)
    return tuple(result)


def _checked_action(step: ActionStep, where: str, context: _BuildContext) -> ActionStep:
    spec = action_spec(step.action)
    if spec is None:
        msg = f"unknown action {step.action!r}; register it with register_action"
        raise RuleError(msg, _join(where, "action"))
    params = _read_params(spec.params, step.params, _join(where, "params"))
    if spec.check is not None:
        try:
            spec.check(params, context.workflow, context.schema, context.event_schema)
        except RuleError as exc:
            raise exc.under(_join(where, "params")) from None
    return ActionStep(step.action, params, step.name)


def _read_params(cls: type, value: Any, path: str) -> Any:
    """Read parameters into their class with the one converter; a problem is a RuleError at its path."""
    from crmkit.errors import ValidationError  # noqa: PLC0415 - only here
    from crmkit.serialization import from_data, to_data  # noqa: PLC0415 - serialization is heavy to import

    if isinstance(value, cls):
        value = to_data(value)  # read it back, so it passes the same checks as JSON
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        msg = f"expected an object of parameters, got {type(value).__name__}"
        raise RuleError(msg, path)
    try:
        return from_data(cls, dict(value))
    except ValidationError as exc:
        problem = exc.problems[0]
        raise RuleError(problem.message, _join(path, problem.path)) from None
    except RuleError as exc:
        raise exc.under(path) from None


# Types the action parameter classes may use, for the docs.
PARAM_TYPES = (str, int, bool, float, Decimal, date, datetime)
