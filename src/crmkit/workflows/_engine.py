"""The workflow engine: events in, runs of the workflows they trigger out, with a trace each (private).

The engine keeps nothing but its definitions. What it must remember across calls and
restarts (delayed steps, which steps ran, enrolments, parked runs, frequency caps) goes
to a key/value *state port*: a store transaction's ``tx.state``, passed per call so it is
written in the host's transaction together with the records the run changed. Each step
has an idempotency key (the run's id and the step's path); a step marked done is never
run again, whichever engine instance or process resumes the run.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.clock import Clock, get_clock
from crmkit.entities import ENTITY_TYPES, Entity, EntityRef
from crmkit.errors import ConflictError, RuleError, ValidationError
from crmkit.events import DomainEvent, EntityUpdated, StageChanged, event_from_data, event_to_data
from crmkit.workflows._actions import Services, StatePort
from crmkit.workflows._definition import (
    ActionStep,
    Branch,
    Check,
    Delay,
    ReenrolmentPolicy,
    Step,
    TriggerKind,
    Workflow,
)
from crmkit.workflows._registry import ActionContext, ActionOutcome, action_spec, check_spec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

__all__ = [
    "ConditionResult",
    "EngineResult",
    "MemoryState",
    "RetryPolicy",
    "RunStatus",
    "RunTrace",
    "StateEntry",
    "StepTrace",
    "WorkflowEngine",
]

DUE = "workflow.due"
DONE = "workflow.done"
ENROLLED = "workflow.enrolled"
PARKED = "workflow.parked"
TICKS = "workflow.tick"
_MAX_KEY = 500


# -- an in-process state -------------------------------------------------------------------------


@attrs.frozen
class StateEntry:
    """One entry of :class:`MemoryState`: namespace, key, JSON value and version."""

    namespace: str
    key: str
    value: Any
    version: int


class MemoryState:
    """A :class:`StatePort` kept in this process (the engine's default; for tests and scripts).

    It has the shape of a store's ``tx.state`` but no transaction: a write is at once
    visible and kept until the process ends.
    """

    __slots__ = ("_entries", "_lock")

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], StateEntry] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> StateEntry | None:
        """Return the entry, or ``None``."""
        return self._entries.get((namespace, key))

    def put(self, namespace: str, key: str, value: Any, *, expected_version: int | None) -> StateEntry:
        """Write a value if the entry is at ``expected_version`` (``None``: it must not exist).

        Raises:
            ConflictError: If the stored version differs; nothing changes.
        """
        with self._lock:
            current = self._entries.get((namespace, key))
            found = current.version if current is not None else None
            if found != expected_version:
                msg = f"state {namespace}/{key} is at version {found}, not {expected_version}"
                raise ConflictError(msg)
            entry = StateEntry(namespace, key, value, (found or 0) + 1)
            self._entries[namespace, key] = entry
            return entry

    def delete(self, namespace: str, key: str, *, expected_version: int) -> None:
        """Remove an entry if it is at ``expected_version``.

        Raises:
            ConflictError: If it is missing or at another version.
        """
        with self._lock:
            current = self._entries.get((namespace, key))
            if current is None or current.version != expected_version:
                msg = f"state {namespace}/{key} is not at version {expected_version}"
                raise ConflictError(msg)
            del self._entries[namespace, key]

    def increment(self, namespace: str, key: str, by: int = 1) -> int:
        """Add ``by`` to an integer entry (missing counts as 0) and return the new value."""
        with self._lock:
            current = self._entries.get((namespace, key))
            value = (current.value if current is not None else 0) + by
            self._entries[namespace, key] = StateEntry(
                namespace, key, value, (current.version if current else 0) + 1
            )
            return int(value)

    def scan(
        self, namespace: str, *, start: str | None = None, stop: str | None = None, limit: int | None = None
    ) -> Iterator[StateEntry]:
        """Entries of a namespace in key order, from ``start`` (included) to ``stop`` (excluded)."""
        keys = sorted(
            key
            for space, key in list(self._entries)
            if space == namespace and (start is None or key >= start) and (stop is None or key < stop)
        )
        for key in keys[:limit] if limit is not None else keys:
            entry = self._entries.get((namespace, key))
            if entry is not None:
                yield entry


# -- results -----------------------------------------------------------------------------------------


class RunStatus(enum.StrEnum):
    """How a run ended (for now)."""

    NOT_STARTED = "not_started"
    COMPLETED = "completed"
    WAITING = "waiting"
    RETRYING = "retrying"
    PARKED = "parked"
    DRY_RUN = "dry_run"


@attrs.frozen
class ConditionResult:
    """One condition of a run and whether it held.

    Attributes:
        name: ``"conditions"``, ``"event_conditions"`` or ``"check <name>"``.
        held: Whether it held.
    """

    name: str
    held: bool
    _explain: Callable[[], str] | None = attrs.field(default=None, eq=False, repr=False, alias="explain")

    @property
    def why(self) -> str:
        """For a condition that failed, its failing predicates and the values they saw ("" otherwise).

        Worked out when asked, so a busy engine pays for explanations only when they are read.
        """
        return self._explain() if self._explain is not None and not self.held else ""


@attrs.frozen
class StepTrace:
    """What happened at one step of a run.

    Attributes:
        path: The step's path in the workflow (``"steps[2].then[0]"``).
        kind: ``"action"``, ``"delay"`` or ``"branch"``.
        outcome: ``done``, ``skipped``, ``already_done``, ``would_run``, ``waiting``,
            ``failed`` (will be retried), ``parked``, ``then`` or ``else``.
        detail: What the step did or why not, in words.
    """

    path: str
    kind: str
    outcome: str
    detail: str = ""


@attrs.frozen
class RunTrace:
    """One run of one workflow for one record: why it started (or not) and what each step did.

    Attributes:
        workflow: The workflow's name.
        run_id: The run's id (the workflow, the record and the triggering event or tick).
        record: The record it ran for.
        trigger: The trigger that matched, in words.
        status: How the run stands.
        reason: Why it did not start or stopped, in words; ``None`` when it completed.
        conditions: Each condition checked and whether it held, with the failing
            predicates when one did not.
        steps: The steps taken, in order.
        at: When it ran.
    """

    workflow: str
    run_id: str
    record: EntityRef | None
    trigger: str
    status: RunStatus
    reason: str | None = None
    conditions: tuple[ConditionResult, ...] = ()
    steps: tuple[StepTrace, ...] = ()
    at: datetime | None = None

    def explain(self) -> str:
        """The run in words, one line per condition and step."""
        lines = [
            f"{self.workflow} on {self.trigger}: {self.status.value}"
            + (f" ({self.reason})" if self.reason else "")
        ]
        lines.extend(
            f"  condition {name}: {'held' if held else 'failed'} {why}".rstrip()
            for name, held, why in ((c.name, c.held, c.why) for c in self.conditions)
        )
        lines.extend(
            f"  {step.path} {step.kind}: {step.outcome} {step.detail}".rstrip() for step in self.steps
        )
        return "\n".join(lines)


@attrs.frozen
class EngineResult:
    """What one engine call did, for the host to store and publish.

    Attributes:
        traces: One trace per workflow considered.
        records: The records runs changed, latest version of each, to store.
        created: New records runs made (tasks, activities), to store.
        events: Domain events runs raised, to publish and audit.
    """

    traces: tuple[RunTrace, ...] = ()
    records: tuple[Entity, ...] = ()
    created: tuple[Entity, ...] = ()
    events: tuple[DomainEvent, ...] = ()

    @property
    def started(self) -> tuple[RunTrace, ...]:
        """The traces of runs that started."""
        return tuple(trace for trace in self.traces if trace.status is not RunStatus.NOT_STARTED)


@attrs.frozen
class RetryPolicy:
    """How a failing action is retried before its run is parked.

    Attributes:
        attempts: Tries in all, the first included (1 means no retry).
        first_delay: The wait before the first retry.
        factor: Each later wait is this many times the one before.
    """

    attempts: int = 3
    first_delay: timedelta = timedelta(minutes=1)
    factor: int = 5

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.attempts <= 20:  # noqa: PLR2004 - a sane bound
            raise ValidationError.single("attempts", "must be 1 to 20")
        if self.first_delay <= timedelta() or not 1 <= self.factor <= 100:  # noqa: PLR2004
            raise ValidationError.single("first_delay", "needs a positive delay and a factor of 1 to 100")

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1 for the first)."""
        return self.first_delay * int(self.factor ** (attempt - 1))


# -- the engine ----------------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    """A sortable UTC text for state keys."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ref_text(ref: EntityRef) -> str:
    return f"{ref.kind}:{ref.id}"


@attrs.define
class _Run:
    """A run in progress (private, mutable while the engine works)."""

    workflow: Workflow
    run_id: str
    record: Entity
    event: DomainEvent | None
    trigger: str
    chain: tuple[str, ...]
    steps: list[StepTrace] = attrs.Factory(list)
    conditions: list[ConditionResult] = attrs.Factory(list)


@attrs.define
class _Batch:
    """What one engine call collects (private)."""

    traces: list[RunTrace] = attrs.Factory(list)
    records: dict[tuple[str, str], Entity] = attrs.Factory(dict)
    created: list[Entity] = attrs.Factory(list)
    events: list[DomainEvent] = attrs.Factory(list)

    def result(self) -> EngineResult:
        return EngineResult(
            tuple(self.traces), tuple(self.records.values()), tuple(self.created), tuple(self.events)
        )


class _DryState:
    """Reads through to the real state; writes are dropped (a dry run changes nothing)."""

    def __init__(self, real: StatePort) -> None:
        self._real = real

    def get(self, namespace: str, key: str) -> Any:
        return self._real.get(namespace, key)

    def put(self, namespace: str, key: str, value: Any, *, expected_version: int | None) -> None:  # noqa: ARG002 - writes nothing
        return None

    def delete(self, namespace: str, key: str, *, expected_version: int) -> None:  # noqa: ARG002 - writes nothing
        return None

    def scan(self, namespace: str, **kwargs: Any) -> Iterable[Any]:
        return self._real.scan(namespace, **kwargs)


class WorkflowEngine:
    """Decide which workflows an event starts, run their steps, and resume delayed steps.

    Args:
        workflows: The workflows; names must be unique.
        services: The ports actions use (channels, consents, loader, routers).
        state: The default state port, used when a call passes none; a
            :class:`MemoryState` by default. Pass a store's ``tx.state`` per call to keep
            state in the host's transaction.
        clock: Where "now" comes from when a call gives no time.
        retry: How failing actions are retried before the run is parked.
        max_depth: How many times events raised by runs may start further runs in one call
            (the loop guard; a workflow never restarts on an event its own run caused).

    Raises:
        RuleError: If two workflows share a name.
    """

    def __init__(
        self,
        workflows: Iterable[Workflow],
        *,
        services: Services | None = None,
        state: StatePort | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        max_depth: int = 3,
    ) -> None:
        self._workflows: dict[str, Workflow] = {}
        given: Iterable[object] = workflows  # callers may pass anything
        for index, workflow in enumerate(given):
            if not isinstance(workflow, Workflow):
                msg = f"expected a Workflow, got {type(workflow).__name__}"
                raise RuleError(msg, f"workflows[{index}]")
            if workflow.name in self._workflows:
                msg = f"two workflows are named {workflow.name!r}"
                raise RuleError(msg, f"workflows[{index}].name")
            self._workflows[workflow.name] = workflow
        self._services = services or Services()
        self._state: StatePort = state if state is not None else MemoryState()
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._max_depth = max_depth
        # Indexed by event class, record kind and what the trigger narrows to (a stage, a field), so an
        # event only meets the workflows that can start on it.
        self._by_event: dict[tuple[type, str, str | None], list[Workflow]] = {}
        for workflow in self._workflows.values():
            narrow = workflow.trigger.to_stage if workflow.trigger.kind is TriggerKind.STAGE_CHANGED else None
            if workflow.trigger.kind is TriggerKind.FIELD_CHANGED:
                narrow = workflow.trigger.field
            for event_type in workflow.trigger.event_types():
                self._by_event.setdefault((event_type, workflow.entity, narrow), []).append(workflow)
        self._following = {name: _following(workflow.steps) for name, workflow in self._workflows.items()}
        self._described = {name: workflow.trigger.describe() for name, workflow in self._workflows.items()}

    @property
    def workflows(self) -> Mapping[str, Workflow]:
        """The workflows, by name."""
        return dict(self._workflows)

    # -- entry points --------------------------------------------------------------------------------

    def handle(
        self,
        event: DomainEvent,
        *,
        record: Entity | None = None,
        now: datetime | None = None,
        state: StatePort | None = None,
        dry_run: bool = False,
    ) -> EngineResult:
        """Start and run every workflow the event triggers; events the runs raise cascade.

        Args:
            event: The domain event.
            record: The record the event is about, as it is now; loaded through the
                services' loader when not given.
            now: The time of the runs; the engine's clock by default.
            state: Where to keep state for this call (a store's ``tx.state``).
            dry_run: Decide and trace, but run no action and write no state.

        Returns:
            The traces, the changed and new records, and the raised events.
        """
        moment = self._now(now)
        batch = _Batch()
        port = self._port(state, dry_run=dry_run)
        known = {(record.kind, record.id): record} if record is not None else {}
        self._handle(event, known, moment, port, batch, (), 0, dry_run=dry_run)
        return batch.result()

    def handle_all(
        self, events: Sequence[DomainEvent], *, now: datetime | None = None, state: StatePort | None = None
    ) -> EngineResult:
        """Handle several events in order (records loaded through the services' loader)."""
        moment = self._now(now)
        batch = _Batch()
        port = self._port(state, dry_run=False)
        for event in events:
            self._handle(event, {}, moment, port, batch, (), 0, dry_run=False)
        return batch.result()

    def run_due(
        self, now: datetime | None = None, *, state: StatePort | None = None, limit: int = 1000
    ) -> EngineResult:
        """Resume the delayed steps (and retries) due at ``now``, oldest first, at most ``limit`` of them.

        A step already marked done is not run again, so calling this twice, or from two
        engines after a restart, runs each step once. Call it again while it returns
        ``limit`` traces.
        """
        moment = self._now(now)
        batch = _Batch()
        port = self._port(state, dry_run=False)
        stop = _stamp(moment + timedelta(microseconds=1))
        for entry in list(port.scan(DUE, stop=stop, limit=limit)):
            try:
                port.delete(DUE, entry.key, expected_version=entry.version)
            except ConflictError:
                continue  # another worker took it
            self._resume(entry.value, moment, port, batch)
        return batch.result()

    def tick(
        self, records: Iterable[Entity], now: datetime | None = None, *, state: StatePort | None = None
    ) -> EngineResult:
        """Start the ``schedule`` and ``no_activity`` workflows for the records given.

        A schedule workflow starts for each record of its kind when one of its rule's
        occurrences fell since the previous tick (the first tick only remembers the
        time). A no-activity workflow starts for a record whose time field is older than
        the period, once per quiet spell. The events these runs raise are returned, not
        handled: publish them (or pass them to :meth:`handle_all`).
        """
        moment = self._now(now)
        batch = _Batch()
        port = self._port(state, dry_run=False)
        timed = [
            workflow
            for workflow in self._workflows.values()
            if workflow.enabled and workflow.trigger.kind in {TriggerKind.SCHEDULE, TriggerKind.NO_ACTIVITY}
        ]
        fired: dict[str, str] = {}
        for workflow in timed:
            if workflow.trigger.kind is TriggerKind.SCHEDULE:
                occurrence = self._occurrence(workflow, moment, port)
                if occurrence is not None:
                    fired[workflow.name] = occurrence
        for record in records:
            for workflow in timed:
                if workflow.entity != record.kind:
                    continue
                if workflow.trigger.kind is TriggerKind.SCHEDULE:
                    if workflow.name not in fired:
                        continue
                    tag = f"schedule:{fired[workflow.name]}"
                else:
                    last = workflow.schema.read(workflow.trigger.field or "updated_at", record)
                    period = workflow.trigger.period or timedelta()
                    if last is None or last > moment - period:
                        continue
                    tag = f"quiet:{_stamp(last)}"
                run_id = f"{workflow.name}|{record.kind}:{record.id}|{tag}"
                self._begin(workflow, run_id, record, None, (), moment, port, batch, dry_run=False)
        return batch.result()

    def parked(self, *, state: StatePort | None = None) -> tuple[Mapping[str, Any], ...]:
        """The parked runs: each with its workflow, record, step, attempts and error."""
        return tuple(entry.value for entry in self._port(state, dry_run=False).scan(PARKED))

    # -- internals -------------------------------------------------------------------------------------

    def _now(self, now: datetime | None) -> datetime:
        moment = now if now is not None else (self._clock or get_clock()).now()
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise ValidationError.single("now", "must be a timezone-aware datetime")
        return moment

    def _port(self, state: StatePort | None, *, dry_run: bool) -> Any:
        port = state if state is not None else self._state
        return _DryState(port) if dry_run else port

    def _handle(  # noqa: PLR0917 - private recursion; one guard per reason not to start
        self,
        event: DomainEvent,
        known: dict[tuple[str, str], Entity],
        now: datetime,
        port: Any,
        batch: _Batch,
        chain: tuple[str, ...],
        depth: int,
        *,
        dry_run: bool,
    ) -> None:
        ref = event.entity
        for workflow in self._candidates(event):
            if not workflow.enabled or not workflow.trigger.matches(event):
                continue
            trigger = self._described[workflow.name]
            run_id = f"{workflow.name}|{ref.kind}:{ref.id}|{event.id}"
            if workflow.name in chain:
                batch.traces.append(
                    RunTrace(
                        workflow.name,
                        run_id,
                        ref,
                        trigger,
                        RunStatus.NOT_STARTED,
                        "loop guard: the event was caused by this workflow's own run",
                        at=now,
                    )
                )
                continue
            if depth > self._max_depth:
                batch.traces.append(
                    RunTrace(
                        workflow.name,
                        run_id,
                        ref,
                        trigger,
                        RunStatus.NOT_STARTED,
                        f"loop guard: more than {self._max_depth} cascaded runs",
                        at=now,
                    )
                )
                continue
            record = known.get((ref.kind, ref.id)) or batch.records.get((ref.kind, ref.id))
            if record is None and self._services.loader is not None:
                record = self._services.loader(ref)
            if record is None:
                batch.traces.append(
                    RunTrace(
                        workflow.name,
                        run_id,
                        ref,
                        trigger,
                        RunStatus.NOT_STARTED,
                        "the record is not available (pass it, or give the engine a loader)",
                        at=now,
                    )
                )
                continue
            if workflow.trigger.kind is TriggerKind.ACTIVITY_LOGGED:
                wanted = workflow.trigger.activity_kind
                if wanted is not None and getattr(record, "activity_type", None) != wanted:
                    continue
            inner = (*chain, workflow.name)
            raised = self._begin(workflow, run_id, record, event, inner, now, port, batch, dry_run=dry_run)
            for produced in raised:
                self._handle(produced, known, now, port, batch, inner, depth + 1, dry_run=dry_run)

    def _candidates(self, event: DomainEvent) -> list[Workflow]:
        kind = event.entity.kind
        narrows: tuple[str | None, ...] = (None,)
        if isinstance(event, StageChanged):
            narrows = (None, event.to_stage)
        elif isinstance(event, EntityUpdated):
            narrows = (None, *event.changed)
        found: list[Workflow] = []
        index = self._by_event
        for cls in type(event).__mro__:
            for narrow in narrows:
                found.extend(index.get((cls, kind, narrow), ()))
        return found

    def _conditions(
        self, workflow: Workflow, record: Entity, event: DomainEvent | None
    ) -> tuple[bool, tuple[ConditionResult, ...]]:
        """Whether the workflow's conditions hold, and each condition's result (explained lazily)."""
        compiled = workflow._compiled  # noqa: SLF001 - the engine is the definition's partner
        results: list[ConditionResult] = []
        if compiled.event_condition is not None and event is not None:
            held = compiled.event_condition(event)
            explain = partial(_why, workflow.event_schema, workflow.event_conditions, event)
            results.append(ConditionResult("event_conditions", held, explain=explain))
            if not held:
                return False, tuple(results)
        if compiled.condition is not None:
            held = compiled.condition(record)
            explain = partial(_why, workflow.schema, workflow.conditions, record)
            results.append(ConditionResult("conditions", held, explain=explain))
            if not held:
                return False, tuple(results)
        for check in workflow.checks:
            held = _run_check(check, record, event)
            results.append(ConditionResult(f"check {check.name}", held))
            if not held:
                return False, tuple(results)
        return True, tuple(results)

    def _begin(  # noqa: PLR0917 - private: the pieces of a run, built only when its conditions hold
        self,
        workflow: Workflow,
        run_id: str,
        record: Entity,
        event: DomainEvent | None,
        chain: tuple[str, ...],
        now: datetime,
        port: Any,
        batch: _Batch,
        *,
        dry_run: bool,
    ) -> list[DomainEvent]:
        trigger = self._described[workflow.name]
        held, results = self._conditions(workflow, record, event)
        if not held:
            ref = event.entity if event is not None else EntityRef.to(record)
            reason = "conditions did not hold"
            trace = RunTrace(
                workflow.name, run_id, ref, trigger, RunStatus.NOT_STARTED, reason, results, at=now
            )
            batch.traces.append(trace)
            return []
        run = _Run(workflow, run_id, record, event, trigger, chain, conditions=list(results))
        return self._start(run, now, port, batch, event, dry_run=dry_run)

    def _start(
        self,
        run: _Run,
        now: datetime,
        port: Any,
        batch: _Batch,
        event: DomainEvent | None,
        *,
        dry_run: bool,
    ) -> list[DomainEvent]:
        workflow = run.workflow
        ref = event.entity if event is not None else EntityRef.to(run.record)
        if port.get(DONE, f"{run.run_id}|start") is not None:
            batch.traces.append(
                RunTrace(
                    workflow.name,
                    run.run_id,
                    ref,
                    run.trigger,
                    RunStatus.NOT_STARTED,
                    "already handled (the same event or tick came again)",
                    tuple(run.conditions),
                    at=now,
                )
            )
            return []
        refused = self._enrol(workflow, ref, now, port)
        if refused is not None:
            batch.traces.append(
                RunTrace(
                    workflow.name,
                    run.run_id,
                    ref,
                    run.trigger,
                    RunStatus.NOT_STARTED,
                    refused,
                    tuple(run.conditions),
                    at=now,
                )
            )
            return []
        port.put(DONE, f"{run.run_id}|start", {"at": now.isoformat()}, expected_version=None)
        first = "steps[0]"
        return self._execute(run, first, now, port, batch, attempt=1, dry_run=dry_run)

    def _enrol(self, workflow: Workflow, ref: EntityRef, now: datetime, port: Any) -> str | None:
        key = f"{workflow.name}|{_ref_text(ref)}"
        entry = port.get(ENROLLED, key)
        policy = workflow.reenrolment
        if entry is not None:
            if policy.policy is ReenrolmentPolicy.ONCE:
                return "re-enrolment: this record already went through the workflow (policy once)"
            if policy.policy is ReenrolmentPolicy.COOLDOWN and policy.cooldown is not None:
                last = datetime.fromisoformat(entry.value["at"])
                if now < last + policy.cooldown:
                    return f"re-enrolment: in cool-down until {(last + policy.cooldown).isoformat()}"
        count = (entry.value.get("count", 0) if entry is not None else 0) + 1
        port.put(
            ENROLLED,
            key,
            {"at": now.isoformat(), "count": count},
            expected_version=entry.version if entry is not None else None,
        )
        return None

    def _execute(  # noqa: C901, PLR0912, PLR0915 - the step loop: one branch per kind of step and outcome
        self,
        run: _Run,
        path: str | None,
        now: datetime,
        port: Any,
        batch: _Batch,
        *,
        attempt: int,
        dry_run: bool,
    ) -> list[DomainEvent]:
        workflow = run.workflow
        following = self._following[workflow.name]
        raised: list[DomainEvent] = []
        status, reason = RunStatus.COMPLETED, None
        while path is not None:
            step: Step = workflow.step_at(path)
            if isinstance(step, Delay):
                if following[path] is None:
                    run.steps.append(StepTrace(path, "delay", "skipped", "no step follows the delay"))
                    break
                due = step.due(now, workflow.calendar)
                run.steps.append(StepTrace(path, "delay", "waiting", f"until {due.isoformat()}"))
                self._schedule(run, following[path], due, port, attempt=1)
                status = RunStatus.WAITING
                break
            if isinstance(step, Branch):
                held = self._branch(workflow, path, step, run)
                target = step.then if held else step.else_
                run.steps.append(StepTrace(path, "branch", "then" if held else "else"))
                label = "then" if held else "else"
                path = f"{path}.{label}[0]" if target else following[path]
                continue
            assert isinstance(step, ActionStep)  # noqa: S101 - a step is one of three kinds
            key = f"{run.run_id}|{path}"
            if port.get(DONE, key) is not None:
                run.steps.append(StepTrace(path, "action", "already_done", step.action))
                path = following[path]
                continue
            if dry_run:
                run.steps.append(StepTrace(path, "action", "would_run", step.action))
                path = following[path]
                continue
            spec = action_spec(step.action)
            assert spec is not None  # noqa: S101 - checked when the workflow was built
            services = attrs.evolve(self._services, state=port)
            context = ActionContext(
                workflow=workflow, record=run.record, event=run.event, now=now, key=key, services=services
            )
            try:
                outcome: object = spec.run(context, step.params)
                if not isinstance(outcome, ActionOutcome):
                    msg = f"action {step.action} returned {type(outcome).__name__}, not an ActionOutcome"
                    raise TypeError(msg)  # noqa: TRY301 - handled with the action's own failures
            except Exception as exc:  # noqa: BLE001 - any failure of host code is retried, then parked
                error = f"{type(exc).__name__}: {exc}"
                if attempt < self._retry.attempts:
                    retry_at = now + self._retry.delay(attempt)
                    run.steps.append(
                        StepTrace(
                            path,
                            "action",
                            "failed",
                            f"{error}; retry {attempt + 1} at {retry_at.isoformat()}",
                        )
                    )
                    self._schedule(run, path, retry_at, port, attempt=attempt + 1)
                    status, reason = RunStatus.RETRYING, error
                else:
                    run.steps.append(StepTrace(path, "action", "parked", f"{error} after {attempt} attempts"))
                    port.put(
                        PARKED,
                        key,
                        {
                            "workflow": workflow.name,
                            "run_id": run.run_id,
                            "record": _ref_text(EntityRef.to(run.record)),
                            "step": path,
                            "action": step.action,
                            "attempts": attempt,
                            "error": error,
                            "at": now.isoformat(),
                        },
                        expected_version=None,
                    )
                    status, reason = RunStatus.PARKED, error
                break
            attempt = 1
            port.put(
                DONE,
                key,
                {"at": now.isoformat(), "detail": outcome.skipped or outcome.detail},
                expected_version=None,
            )
            if outcome.skipped is not None:
                run.steps.append(StepTrace(path, "action", "skipped", outcome.skipped))
            else:
                run.steps.append(StepTrace(path, "action", "done", outcome.detail))
            if outcome.record is not None:
                run.record = outcome.record
                batch.records[outcome.record.kind, outcome.record.id] = outcome.record
            batch.created.extend(outcome.created)
            batch.events.extend(outcome.events)
            raised.extend(outcome.events)
            path = following[path]
        if dry_run:
            status = RunStatus.DRY_RUN
        batch.traces.append(
            RunTrace(
                workflow.name,
                run.run_id,
                EntityRef.to(run.record),
                run.trigger,
                status,
                reason,
                tuple(run.conditions),
                tuple(run.steps),
                now,
            )
        )
        return raised

    def _branch(self, workflow: Workflow, path: str, step: Branch, run: _Run) -> bool:
        if isinstance(step.condition, Check):
            return _run_check(step.condition, run.record, run.event)
        predicate = workflow._compiled.predicates[path]  # noqa: SLF001 - the engine is the definition's partner
        return predicate(run.record)

    def _schedule(self, run: _Run, path: str | None, due: datetime, port: Any, *, attempt: int) -> None:
        if path is None:
            return
        from crmkit.serialization import to_data  # noqa: PLC0415 - serialization is heavy to import

        key = f"{_stamp(due)}|{run.run_id}|{path}"[:_MAX_KEY]
        value = {
            "workflow": run.workflow.name,
            "run_id": run.run_id,
            "path": path,
            "attempt": attempt,
            "trigger": run.trigger,
            "chain": list(run.chain),
            "kind": run.record.kind,
            "record": to_data(run.record),
            "event": event_to_data(run.event) if run.event is not None else None,
        }
        try:
            port.put(DUE, key, value, expected_version=None)
        except ConflictError:
            return  # already scheduled by an earlier attempt of this very step

    def _resume(self, value: Mapping[str, Any], now: datetime, port: Any, batch: _Batch) -> None:
        from crmkit.serialization import from_data  # noqa: PLC0415 - serialization is heavy to import

        workflow = self._workflows.get(value["workflow"])
        ref = EntityRef(value["kind"], value["record"]["id"])
        if workflow is None:
            port.put(
                PARKED,
                f"{value['run_id']}|{value['path']}",
                {**value, "error": "the workflow is gone"},
                expected_version=None,
            )
            batch.traces.append(
                RunTrace(
                    value["workflow"],
                    value["run_id"],
                    ref,
                    value["trigger"],
                    RunStatus.PARKED,
                    "the workflow is no longer loaded",
                    at=now,
                )
            )
            return
        record = self._services.loader(ref) if self._services.loader is not None else None
        if record is None:
            record = from_data(ENTITY_TYPES[value["kind"]], value["record"])
        event = event_from_data(value["event"]) if value["event"] is not None else None
        run = _Run(workflow, value["run_id"], record, event, value["trigger"], tuple(value["chain"]))
        raised = self._execute(
            run, value["path"], now, port, batch, attempt=int(value["attempt"]), dry_run=False
        )
        for produced in raised:
            self._handle(produced, {}, now, port, batch, run.chain, 1, dry_run=False)

    def _occurrence(self, workflow: Workflow, now: datetime, port: Any) -> str | None:
        rule = workflow._compiled.rule  # noqa: SLF001 - the engine is the definition's partner
        assert rule is not None  # noqa: S101 - a schedule workflow has its rule
        zone = workflow.calendar._zone if workflow.calendar is not None else UTC  # noqa: SLF001
        entry = port.get(TICKS, workflow.name)
        port.put(
            TICKS, workflow.name, {"at": now.isoformat()}, expected_version=entry.version if entry else None
        )
        if entry is None:
            return None
        last = datetime.fromisoformat(entry.value["at"]).astimezone(zone).replace(tzinfo=None)
        local_now = now.astimezone(zone).replace(tzinfo=None)
        # Start the rule at the last tick, so finding the next occurrence does not walk from 2000.
        found = rule.replace(dtstart=last.replace(second=0, microsecond=0)).after(last)
        if found is None or found > local_now:
            return None
        return found.isoformat()


def _run_check(check: Check, record: Any, event: Any) -> bool:
    spec = check_spec(check.name)
    assert spec is not None  # noqa: S101 - checked when the workflow was built
    return bool(spec.test(record, event, check.params))


def _why(schema: Any, condition: Any, record: Any) -> str:
    explanation = schema.explain(condition, record)
    failed = [f"{item.condition.to_json()} (was {item.actual!r})" for item in explanation.failed]
    return "; ".join(failed)


def _following(steps: Sequence[Step], path: str = "steps", after: str | None = None) -> dict[str, str | None]:
    """For every step path, the path of the step that runs after it (``None`` at the end)."""
    table: dict[str, str | None] = {}
    for index, step in enumerate(steps):
        here = f"{path}[{index}]"
        following = f"{path}[{index + 1}]" if index + 1 < len(steps) else after
        table[here] = following
        if isinstance(step, Branch):
            table.update(_following(step.then, f"{here}.then", following))
            table.update(_following(step.else_, f"{here}.else", following))
    return table
