"""The built-in workflow actions, message channels and the ports actions use (private).

Actions are pure apart from the ports they are given: they return the changed record,
new records and events, and the engine hands those to the host to store. Sending a
message goes through a :class:`MessageChannel` (crmkit ships :class:`RecordingChannel`;
hosts plug email, SMS and so on), after the recipient's consent and the frequency cap
are checked at send time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import attrs

from crmkit._validation import replace
from crmkit.conditions import Op, Predicate, Schema
from crmkit.entities import (
    ENTITY_TYPES,
    Activity,
    ActivityKind,
    Channel,
    Consent,
    Direction,
    Entity,
    EntityRef,
    Priority,
    Task,
)
from crmkit.errors import RuleError
from crmkit.events import Assigned, EntityUpdated
from crmkit.lifecycle import LIFECYCLES, Lifecycle
from crmkit.segmentation import Exclusion
from crmkit.segmentation import consent_problem as audience_consent_problem
from crmkit.workflows._definition import Template, _period
from crmkit.workflows._events import Escalated
from crmkit.workflows._registry import ActionContext, ActionOutcome, callback, register_action

__all__ = [
    "AddTagParams",
    "AssignParams",
    "CallbackParams",
    "CreateActivityParams",
    "CreateTaskParams",
    "EscalateParams",
    "Message",
    "MessageChannel",
    "RecordingChannel",
    "SendMessageParams",
    "Services",
    "SetFieldParams",
    "StatePort",
    "TransitionStageParams",
    "consent_problem",
]

_SENT = "workflow.sent"


# -- ports ----------------------------------------------------------------------------------------


class StateEntryLike(Protocol):
    """What the engine reads of a stored entry (``tx.state.get`` returns one)."""

    @property
    def key(self) -> str:
        """The entry's key."""
        ...

    @property
    def value(self) -> Any:
        """The stored JSON value."""
        ...

    @property
    def version(self) -> int:
        """The entry's version, for the next conditional write."""
        ...


class StatePort(Protocol):
    """The key/value port the engine keeps its state in; a store transaction's ``tx.state`` fits.

    Delayed steps, done markers, enrolments, parked runs and frequency caps live here,
    so they are written in the host's transaction together with the records.
    """

    def get(self, namespace: str, key: str) -> StateEntryLike | None:
        """Return the entry, or ``None``."""
        ...

    def put(self, namespace: str, key: str, value: Any, *, expected_version: int | None) -> Any:
        """Write a value if the entry is at ``expected_version`` (``None``: must not exist)."""
        ...

    def delete(self, namespace: str, key: str, *, expected_version: int) -> None:
        """Remove an entry if it is at ``expected_version``."""
        ...

    def scan(
        self, namespace: str, *, start: str | None = None, stop: str | None = None, limit: int | None = None
    ) -> Iterable[StateEntryLike]:
        """Entries in key order from ``start`` (included) to ``stop`` (excluded)."""
        ...


@attrs.frozen
class Message:
    """One message a workflow sends.

    Attributes:
        key: The step's idempotency key: a channel that sees it twice must send once.
        channel: The channel's name (``"email"``, ``"sms"``).
        to: The recipient.
        address: The recipient's address on that channel, when the record has one.
        subject: The rendered subject.
        body: The rendered body.
        purpose: The consent purpose it was sent under; ``None`` for a service message.
        workflow: The workflow that sent it.
        at: When it was sent.
    """

    key: str
    channel: str
    to: EntityRef
    address: str | None
    subject: str
    body: str
    purpose: str | None
    workflow: str
    at: datetime


class MessageChannel(Protocol):
    """Where messages go: email, SMS, a chat tool. Raise to fail (the engine retries)."""

    def send(self, message: Message) -> None:
        """Deliver one message; a repeated ``message.key`` must not be delivered twice."""
        ...


class RecordingChannel:
    """A channel that keeps the messages it is given, once per key: for tests, demos and dry runs."""

    __slots__ = ("_keys", "_lock", "messages")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        """Record the message (a second message with the same key is ignored)."""
        with self._lock:
            if message.key not in self._keys:
                self._keys.add(message.key)
                self.messages.append(message)


Router = Callable[[ActionContext], Any]
"""``router(context)``: an owner id, ``None``, or a decision with ``owner_id``, ``queue``, ``explain()``."""


@attrs.frozen(kw_only=True)
class Services:
    """The ports actions use, given to the engine by the host.

    Attributes:
        channels: Message channels by name.
        consents: Returns the consents recorded for a person (``EntityRef``); without it,
            a marketing message (one with a purpose) is never sent.
        loader: Loads a record by reference (a recipient, a record to resume with).
        routers: Assignment routers by name: ``router(context)`` returns an owner id, ``None``,
            or a decision with ``owner_id`` (falling back to its ``queue``) and ``explain()``,
            such as :meth:`crmkit.leads.Router.route`'s: ``lambda c: lead_router.route(c.record,
            state=c.services.state, at=c.now)`` keeps routing turns in the same transaction.
        state: Where frequency caps are counted (the engine sets it for each call).
    """

    channels: Mapping[str, MessageChannel] = attrs.field(factory=dict)
    consents: Callable[[EntityRef], Iterable[Consent]] | None = None
    loader: Callable[[EntityRef], Entity | None] | None = None
    routers: Mapping[str, Router] = attrs.field(factory=dict)
    state: Any = None


def _actor(context: ActionContext) -> str:
    return f"workflow:{context.workflow.name}"[:64]


def _updated(context: ActionContext, record: Entity, *fields: str) -> EntityUpdated:
    return EntityUpdated(entity=EntityRef.to(record), at=context.now, changed=fields, actor=None)


def _field_of(workflow: Any, name: str) -> None:
    cls = ENTITY_TYPES[workflow.entity]
    if name not in {field.name for field in attrs.fields(cls)}:
        msg = f"{workflow.entity} has no field {name!r}"
        raise RuleError(msg)


# -- assign -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class AssignParams:
    """Parameters of ``assign``: a fixed owner, or a router by name.

    Attributes:
        owner_id: The user or queue to assign to.
        router: The name of a router the host gave the engine (``Services.routers``),
            such as one applying :mod:`crmkit.leads` routing rules.
    """

    owner_id: str | None = None
    router: str | None = None


def _check_assign(params: AssignParams, workflow: Any, _schema: Schema, _event: Schema | None) -> None:
    if (params.owner_id is None) == (params.router is None):
        msg = "give exactly one of owner_id and router"
        raise RuleError(msg, "owner_id")
    try:
        _field_of(workflow, "owner_id")
    except RuleError as exc:
        raise RuleError(exc.message, "owner_id") from None


def _routed(router: Router, name: str, context: ActionContext) -> tuple[str | None, str]:
    """Ask a router for an owner: an id, ``None``, or a decision with ``owner_id`` (or ``queue``)."""
    answer: Any = router(context)
    if answer is None or isinstance(answer, str):
        return answer, f"router {name}"
    owner = getattr(answer, "owner_id", None) or getattr(answer, "queue", None)
    explain = getattr(answer, "explain", None)
    reason = f"router {name}: {explain()}" if callable(explain) else f"router {name}"
    return owner, reason


def _assign(context: ActionContext, params: AssignParams) -> ActionOutcome:
    record: Any = context.record
    owner = params.owner_id
    reason = "fixed owner"
    if params.router is not None:
        router = context.services.routers.get(params.router)
        if router is None:
            msg = f"no router named {params.router!r} was given to the engine"
            raise LookupError(msg)
        owner, reason = _routed(router, params.router, context)
        if owner is None:
            return ActionOutcome(skipped=f"router {params.router} found no owner")
    previous = record.owner_id
    if owner == previous:
        return ActionOutcome(skipped=f"already owned by {owner}")
    changed = replace(record, owner_id=owner, updated_at=max(record.updated_at, context.now))
    event = Assigned(
        entity=EntityRef.to(record), at=context.now, owner_id=owner, previous_owner_id=previous, reason=reason
    )
    return ActionOutcome(record=changed, events=(event,), detail=f"assigned to {owner} ({reason})")


# -- tasks and reminders ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateTaskParams:
    """Parameters of ``create_task`` and ``create_reminder``.

    Attributes:
        title: The task's title, a template (``"Call {first_name} back"``).
        due_in: When it is due, as an ISO 8601 duration from the run (``"PT4H"``), if at all.
        business_time: Count ``due_in`` in the workflow's calendar.
        owner_id: Who does it; the record's owner when ``None``.
        priority: The task's priority.
    """

    title: str
    due_in: str | None = None
    business_time: bool = False
    owner_id: str | None = None
    priority: Priority = Priority.NORMAL


def _check_task(params: CreateTaskParams, workflow: Any, schema: Schema, event: Schema | None) -> None:
    try:
        Template(params.title).check({"": schema, "event": event})
    except RuleError as exc:
        raise exc.under("title") from None
    if params.due_in is not None:
        _period(params.due_in, "due_in")
    if params.business_time and workflow.calendar is None:
        msg = "business time needs the workflow's calendar"
        raise RuleError(msg, "business_time")


def _task(context: ActionContext, params: CreateTaskParams, *, reminder: bool) -> ActionOutcome:
    record: Any = context.record
    workflow = context.workflow
    title = Template(params.title).render(
        {"": (workflow.schema, record), "event": (workflow.event_schema, context.event)}
    )
    due = None
    if params.due_in is not None:
        wait = _period(params.due_in, "due_in")
        due = (
            workflow.calendar.add_business_time(context.now, wait)
            if params.business_time
            else context.now + wait
        )
    task = Task(
        title=title or "(untitled)",
        due_at=due,
        owner_id=params.owner_id or getattr(record, "owner_id", None),
        priority=params.priority,
        regarding=EntityRef.to(record),
        tags=frozenset({"reminder"}) if reminder else frozenset(),
        created_at=context.now,
    )
    kind = "reminder" if reminder else "task"
    return ActionOutcome(
        created=(task,), detail=f"{kind} {title!r} due {due.isoformat() if due else 'whenever'}"
    )


def _create_task(context: ActionContext, params: CreateTaskParams) -> ActionOutcome:
    return _task(context, params, reminder=False)


def _create_reminder(context: ActionContext, params: CreateTaskParams) -> ActionOutcome:
    return _task(context, params, reminder=True)


# -- fields, tags and stages ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SetFieldParams:
    """Parameters of ``set_field``.

    Attributes:
        field: A declared field of the record (``"priority"``, ``"custom_fields.tier"``).
        value: The JSON value; it must suit the field (``None`` clears it).
    """

    field: str
    value: Any = None


def _set_value(schema: Schema, field: str, value: Any) -> Any:
    spec = schema.fields.get(field)
    if spec is None or ("." in field and not field.startswith("custom_fields.")):
        settable = ", ".join(name for name in sorted(schema.fields) if "." not in name)
        msg = f"unknown field {field!r}; settable: {settable}"
        raise RuleError(msg, "field")
    if value is None:
        return None
    checked = schema.validate(Predicate(field, Op.EQ, value))
    assert isinstance(checked, Predicate)  # noqa: S101 - validate returns the node it was given
    return checked.value


def _check_set_field(params: SetFieldParams, _workflow: Any, schema: Schema, _event: Schema | None) -> None:
    _set_value(schema, params.field, params.value)


def _set_field(context: ActionContext, params: SetFieldParams) -> ActionOutcome:
    record: Any = context.record
    value = _set_value(context.workflow.schema, params.field, params.value)
    moment = max(record.updated_at, context.now)
    if params.field.startswith("custom_fields."):
        name = params.field.partition(".")[2]
        changed = replace(record, custom_fields={**record.custom_fields, name: value}, updated_at=moment)
        field = "custom_fields"
    else:
        changed = replace(record, **{params.field: value}, updated_at=moment)
        field = params.field
    return ActionOutcome(
        record=changed, events=(_updated(context, record, field),), detail=f"{params.field} = {value!r}"
    )


@attrs.frozen(kw_only=True)
class AddTagParams:
    """Parameters of ``add_tag``.

    Attributes:
        tag: The tag to add (1 to 64 characters).
    """

    tag: str


def _check_tag(params: AddTagParams, _workflow: Any, _schema: Schema, _event: Schema | None) -> None:
    if not params.tag.strip() or len(params.tag) > 64:  # noqa: PLR2004 - the entity's rule
        msg = "a tag is 1 to 64 characters"
        raise RuleError(msg, "tag")


def _add_tag(context: ActionContext, params: AddTagParams) -> ActionOutcome:
    record: Any = context.record
    tag = params.tag.strip()
    if tag in record.tags:
        return ActionOutcome(skipped=f"already tagged {tag!r}")
    changed = replace(record, tags=record.tags | {tag}, updated_at=max(record.updated_at, context.now))
    return ActionOutcome(
        record=changed, events=(_updated(context, record, "tags"),), detail=f"tagged {tag!r}"
    )


@attrs.frozen(kw_only=True)
class TransitionStageParams:
    """Parameters of ``transition_stage``.

    Attributes:
        transition: The lifecycle transition to take (``"escalate"``).
        lifecycle: The lifecycle's name; the built-in one named after the record's kind by default.
    """

    transition: str
    lifecycle: str | None = None


def _lifecycle(workflow: Any, name: str | None) -> Lifecycle:
    found = LIFECYCLES.get(name or workflow.entity)
    if found is None or found.entity != workflow.entity:
        msg = f"no lifecycle {name or workflow.entity!r} for {workflow.entity} records"
        raise RuleError(msg, "lifecycle")
    return found


def _check_transition(
    params: TransitionStageParams, workflow: Any, _schema: Schema, _event: Schema | None
) -> None:
    lifecycle = _lifecycle(workflow, params.lifecycle)
    if params.transition not in {transition.name for transition in lifecycle.transitions}:
        known = ", ".join(transition.name for transition in lifecycle.transitions)
        msg = f"{lifecycle.name} has no transition {params.transition!r}; one of: {known}"
        raise RuleError(msg, "transition")


def _transition_stage(context: ActionContext, params: TransitionStageParams) -> ActionOutcome:
    lifecycle = _lifecycle(context.workflow, params.lifecycle)
    record: Any = context.record
    if params.transition not in lifecycle.allowed_transitions(record.stage):
        return ActionOutcome(skipped=f"{params.transition!r} is not allowed from stage {record.stage!r}")
    changed, event = lifecycle.apply(record, params.transition, at=context.now)
    return ActionOutcome(record=changed, events=(event,), detail=f"{record.stage} -> {changed.stage}")


# -- activities ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateActivityParams:
    """Parameters of ``create_activity``.

    Attributes:
        activity_type: The kind of activity (a note, a call, ...).
        subject: Its subject, a template.
        direction: Inbound or outbound.
    """

    activity_type: ActivityKind = ActivityKind.NOTE
    subject: str = ""
    direction: Direction | None = None


def _check_activity(
    params: CreateActivityParams, _workflow: Any, schema: Schema, event: Schema | None
) -> None:
    try:
        Template(params.subject).check({"": schema, "event": event})
    except RuleError as exc:
        raise exc.under("subject") from None


def _create_activity(context: ActionContext, params: CreateActivityParams) -> ActionOutcome:
    record: Any = context.record
    workflow = context.workflow
    subject = Template(params.subject).render(
        {"": (workflow.schema, record), "event": (workflow.event_schema, context.event)}
    )
    activity = Activity(
        activity_type=params.activity_type,
        subject=subject or None,
        direction=params.direction,
        occurred_at=context.now,
        regarding=EntityRef.to(record),
        contact_id=record.id if record.kind == "contact" else getattr(record, "contact_id", None),
        created_at=context.now,
    )
    return ActionOutcome(created=(activity,), detail=f"{params.activity_type.value} logged: {subject!r}")


# -- messages -------------------------------------------------------------------------------------------

_RECIPIENTS = {"record": None, "contact_id": "contact", "lead_id": "lead"}
_ADDRESSES = {"email": "email", "sms": "phone", "phone": "phone", "whatsapp": "phone"}


@attrs.frozen(kw_only=True)
class SendMessageParams:
    """Parameters of ``send_message``.

    Attributes:
        channel: The channel's name (``"email"``, ``"sms"``); the engine must have it.
        body: The text, a template: ``{field}`` of the record, ``{event.field}`` of the
            event, ``{recipient.field}`` of the person.
        subject: The subject line, a template.
        to: Who gets it: ``"record"`` (a contact or lead workflow), ``"contact_id"`` or
            ``"lead_id"`` (the person the record names).
        purpose: The consent purpose (``"offers"``): the person must have granted it for
            this channel (or every channel), not withdrawn and not expired at send time.
            ``None`` for a service message, sent on another lawful basis.
        cap_count: At most this many messages of this purpose to one person ...
        cap_period: ... within this ISO 8601 period (``"P7D"``); the frequency cap.
    """

    channel: str
    body: str
    subject: str = ""
    to: str = "record"
    purpose: str | None = None
    cap_count: int | None = None
    cap_period: str | None = None


def _recipient_kind(workflow: Any, to: str) -> str:
    if to not in _RECIPIENTS:
        msg = f"expected one of: {', '.join(_RECIPIENTS)}, got {to!r}"
        raise RuleError(msg, "to")
    if to == "record":
        if workflow.entity not in {"contact", "lead"}:
            msg = f"a {workflow.entity} is not a person; send to contact_id or lead_id"
            raise RuleError(msg, "to")
        return str(workflow.entity)
    try:
        _field_of(workflow, to)
    except RuleError as exc:
        raise RuleError(exc.message, "to") from None
    return _RECIPIENTS[to] or ""


def _check_message(params: SendMessageParams, workflow: Any, schema: Schema, event: Schema | None) -> None:
    kind = _recipient_kind(workflow, params.to)
    schemas = {"": schema, "event": event, "recipient": Schema.for_entity(ENTITY_TYPES[kind])}
    for name in ("subject", "body"):
        try:
            Template(getattr(params, name)).check(schemas)
        except RuleError as exc:
            raise exc.under(name) from None
    if (params.cap_count is None) != (params.cap_period is None):
        msg = "a frequency cap needs both cap_count and cap_period"
        raise RuleError(msg, "cap_count")
    if params.cap_count is not None and params.cap_count < 1:
        msg = "must be at least 1"
        raise RuleError(msg, "cap_count")
    if params.cap_period is not None:
        _period(params.cap_period, "cap_period")
    if params.purpose is not None and not params.purpose.strip():
        msg = "must not be empty"
        raise RuleError(msg, "purpose")


def consent_problem(consents: Iterable[Consent], purpose: str, channel: str, at: datetime) -> str | None:
    """Why the consents do not allow a message of ``purpose`` on ``channel`` at ``at``; ``None`` when they do.

    The rule is the one campaign audiences and :mod:`crmkit.privacy` apply
    (:func:`crmkit.segmentation.consent_problem`): of the consents for that purpose and channel (or
    every channel) captured by ``at``, the latest decides, a refusal winning a tie; it allows the
    message when granted, not withdrawn and not expired. A later refusal therefore stops a message
    an earlier grant allowed.
    """
    try:
        wanted = Channel(channel)
    except ValueError:
        return f"no consent for {purpose} on {channel}"
    problem = audience_consent_problem(consents, channel=wanted, purpose=purpose, at=at)
    if problem is None:
        return None
    return _CONSENT_REASONS[problem].format(purpose=purpose, channel=channel)


_CONSENT_REASONS = {
    Exclusion.NO_CONSENT: "no consent for {purpose} on {channel}",
    Exclusion.CONSENT_DENIED: "consent for {purpose} is denied",
    Exclusion.CONSENT_WITHDRAWN: "consent for {purpose} is withdrawn",
    Exclusion.CONSENT_EXPIRED: "consent for {purpose} has expired",
}


def _cap_key(recipient: EntityRef, purpose: str | None) -> str:
    return f"{recipient.kind}:{recipient.id}:{purpose or '-'}"


def _send_message(context: ActionContext, params: SendMessageParams) -> ActionOutcome:
    workflow = context.workflow
    services: Services = context.services
    record: Any = context.record
    kind = _recipient_kind(workflow, params.to)
    person: Any = record if params.to == "record" else None
    ref = EntityRef.to(record) if person is not None else None
    if ref is None:
        target = getattr(record, params.to)
        if target is None:
            return ActionOutcome(skipped=f"the record has no {params.to}")
        ref = EntityRef(kind, target)
        person = services.loader(ref) if services.loader is not None else None
    if params.purpose is not None:
        if services.consents is None:
            return ActionOutcome(skipped="no consent source was given to the engine; marketing is not sent")
        problem = consent_problem(services.consents(ref), params.purpose, params.channel, context.now)
        if problem is not None:
            return ActionOutcome(skipped=problem)
    cap = None
    if params.cap_count is not None and params.cap_period is not None:
        period = _period(params.cap_period, "cap_period")
        entry = (
            services.state.get(_SENT, _cap_key(ref, params.purpose)) if services.state is not None else None
        )
        recent = [
            moment
            for moment in (entry.value if entry else [])
            if datetime.fromisoformat(moment) > context.now - period
        ]
        if len(recent) >= params.cap_count:
            return ActionOutcome(
                skipped=f"frequency cap: {len(recent)} {params.purpose or ''} messages in {params.cap_period}"
            )
        cap = (entry, recent)
    channel = services.channels.get(params.channel)
    if channel is None:
        msg = f"no channel named {params.channel!r} was given to the engine"
        raise LookupError(msg)
    values = {
        "": (workflow.schema, record),
        "event": (workflow.event_schema, context.event),
        "recipient": (Schema.for_entity(ENTITY_TYPES[kind]), person),
    }
    address_field = _ADDRESSES.get(params.channel)
    message = Message(
        key=context.key,
        channel=params.channel,
        to=ref,
        address=getattr(person, address_field, None) if person is not None and address_field else None,
        subject=Template(params.subject).render(values),
        body=Template(params.body).render(values),
        purpose=params.purpose,
        workflow=workflow.name,
        at=context.now,
    )
    channel.send(message)
    if cap is not None and services.state is not None:
        entry, recent = cap
        services.state.put(
            _SENT,
            _cap_key(ref, params.purpose),
            [*recent, context.now.isoformat()],
            expected_version=entry.version if entry else None,
        )
    return ActionOutcome(
        detail=f"{params.channel} message to {ref.kind} {ref.id}: {message.subject or message.body[:40]!r}"
    )


# -- escalation and callbacks ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class EscalateParams:
    """Parameters of ``escalate``.

    Attributes:
        level: Where to (``"second_line"``, ``"manager"``).
        reason: Why, in words.
        transition: A lifecycle transition to take too (``"escalate"`` for tickets), when allowed.
        owner_id: A new owner (the second-line queue, the manager), if any.
    """

    level: str
    reason: str | None = None
    transition: str | None = None
    owner_id: str | None = None


def _check_escalate(params: EscalateParams, workflow: Any, schema: Schema, event: Schema | None) -> None:
    if not params.level.strip() or len(params.level) > 64:  # noqa: PLR2004 - the event's rule
        msg = "a level is 1 to 64 characters"
        raise RuleError(msg, "level")
    if params.transition is not None:
        _check_transition(TransitionStageParams(transition=params.transition), workflow, schema, event)
    if params.owner_id is not None:
        try:
            _field_of(workflow, "owner_id")
        except RuleError as exc:
            raise RuleError(exc.message, "owner_id") from None


def _escalate(context: ActionContext, params: EscalateParams) -> ActionOutcome:
    record: Any = context.record
    events: list[Any] = []
    notes = [f"escalated to {params.level}"]
    if params.transition is not None:
        moved = _transition_stage(context, TransitionStageParams(transition=params.transition))
        if moved.record is not None:
            record = moved.record
            events.extend(moved.events)
            notes.append(moved.detail)
    if params.owner_id is not None and params.owner_id != record.owner_id:
        previous = record.owner_id
        record = replace(record, owner_id=params.owner_id, updated_at=max(record.updated_at, context.now))
        events.append(
            Assigned(
                entity=EntityRef.to(record),
                at=context.now,
                owner_id=params.owner_id,
                previous_owner_id=previous,
                reason=f"escalated to {params.level}",
            )
        )
        notes.append(f"assigned to {params.owner_id}")
    events.append(
        Escalated(
            entity=EntityRef.to(record),
            at=context.now,
            level=params.level,
            reason=params.reason,
            workflow=context.workflow.name,
        )
    )
    changed = record if record is not context.record else None
    return ActionOutcome(record=changed, events=tuple(events), detail="; ".join(notes))


@attrs.frozen(kw_only=True)
class CallbackParams:
    """Parameters of ``callback``.

    Attributes:
        name: The host callback's name (``Services.callbacks``).
        data: Plain values passed to it.
    """

    name: str
    data: dict[str, Any] = attrs.field(factory=dict)


def _check_callback(params: CallbackParams, _workflow: Any, _schema: Schema, _event: Schema | None) -> None:
    for key, value in params.data.items():
        if not (value is None or isinstance(value, str | int | float | bool)):
            msg = f"callback data are plain values (text, number, boolean, null), not {type(value).__name__}"
            raise RuleError(msg, f"data.{key}")
    if callback(params.name) is None:
        msg = f"no callback named {params.name!r}; register it with register_callback"
        raise RuleError(msg, "name")


def _callback(context: ActionContext, params: CallbackParams) -> ActionOutcome:
    found = callback(params.name)
    if found is None:
        msg = f"no callback named {params.name!r} is registered"
        raise LookupError(msg)
    result = found(context, dict(params.data))
    return ActionOutcome(detail=f"callback {params.name} returned {result!r}")


def _register_builtins() -> None:
    register_action(
        "assign",
        AssignParams,
        _assign,
        check=_check_assign,
        description="Assign the record to an owner, fixed or chosen by a router.",
    )
    register_action(
        "create_task",
        CreateTaskParams,
        _create_task,
        check=_check_task,
        description="Create a task about the record.",
    )
    register_action(
        "create_reminder",
        CreateTaskParams,
        _create_reminder,
        check=_check_task,
        description="Create a reminder (a task tagged 'reminder') about the record.",
    )
    register_action(
        "set_field",
        SetFieldParams,
        _set_field,
        check=_check_set_field,
        description="Set a declared field of the record.",
    )
    register_action("add_tag", AddTagParams, _add_tag, check=_check_tag, description="Tag the record.")
    register_action(
        "transition_stage",
        TransitionStageParams,
        _transition_stage,
        check=_check_transition,
        description="Move the record through its lifecycle.",
    )
    register_action(
        "create_activity",
        CreateActivityParams,
        _create_activity,
        check=_check_activity,
        description="Log an activity about the record.",
    )
    register_action(
        "send_message",
        SendMessageParams,
        _send_message,
        check=_check_message,
        description="Send a message from a template, respecting consent and a frequency cap.",
    )
    register_action(
        "escalate",
        EscalateParams,
        _escalate,
        check=_check_escalate,
        description="Escalate the record (an Escalated event; optionally a transition and owner).",
    )
    register_action(
        "callback",
        CallbackParams,
        _callback,
        check=_check_callback,
        description="Call a host callback registered with register_callback.",
    )


_register_builtins()
