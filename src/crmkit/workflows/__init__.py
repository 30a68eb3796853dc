"""Workflows: business-hours calendars, SLA policies for tickets, and the automation engine.

A :class:`BusinessCalendar` says when a team works (periods per weekday in a time
zone, minus holidays) and measures business time by intervals::

    calendar = BusinessCalendar.office_hours("Europe/London", holidays=["2026-12-25"])
    deadline = calendar.add_business_time(opened_at, timedelta(hours=8))
    spent = calendar.business_time_between(opened_at, answered_at)

An :class:`SlaPolicy` sets first-response, next-response and resolution targets by
priority and customer tier, measured in a calendar and paused while a ticket waits on
the customer; evaluating it returns each clock's status and the :class:`SlaWarning` /
:class:`SlaBreached` events to publish.

A :class:`Workflow` is data: a :class:`Trigger`, conditions in the condition language,
and steps (registered actions, delays, if/else branches). The :class:`WorkflowEngine`
takes events, starts the workflows they trigger, runs their steps, keeps delayed steps
in a state port (a store's ``tx.state``) and resumes them with ``run_due``; every run
leaves a :class:`RunTrace`. Other packages add actions and conditions with
:func:`register_action` / :func:`register_condition` or through the entry-point groups
``crmkit.workflow_actions`` and ``crmkit.workflow_conditions``.
"""

from crmkit.workflows._actions import (
    AddTagParams,
    AssignParams,
    CallbackParams,
    CreateActivityParams,
    CreateTaskParams,
    EscalateParams,
    Message,
    MessageChannel,
    RecordingChannel,
    SendMessageParams,
    Services,
    SetFieldParams,
    StatePort,
    TransitionStageParams,
    consent_problem,
)
from crmkit.workflows._calendar import WEEKDAYS, BusinessCalendar
from crmkit.workflows._definition import (
    ActionStep,
    Branch,
    Check,
    Delay,
    DelayUnit,
    Reenrolment,
    ReenrolmentPolicy,
    Step,
    Template,
    Trigger,
    TriggerKind,
    Workflow,
)
from crmkit.workflows._engine import (
    ConditionResult,
    EngineResult,
    MemoryState,
    RetryPolicy,
    RunStatus,
    RunTrace,
    StateEntry,
    StepTrace,
    WorkflowEngine,
)
from crmkit.workflows._events import Escalated, SlaBreached, SlaWarning
from crmkit.workflows._registry import (
    ACTION_ENTRY_POINTS,
    CONDITION_ENTRY_POINTS,
    ActionContext,
    ActionOutcome,
    ActionSpec,
    ConditionSpec,
    load_entry_points,
    register_action,
    register_callback,
    register_condition,
    registered_actions,
    registered_conditions,
)
from crmkit.workflows._sla import (
    SlaClock,
    SlaMetric,
    SlaPolicy,
    SlaReport,
    SlaStatus,
    SlaTarget,
    business_duration,
    business_elapsed,
)

__all__ = [
    "ACTION_ENTRY_POINTS",
    "CONDITION_ENTRY_POINTS",
    "WEEKDAYS",
    "ActionContext",
    "ActionOutcome",
    "ActionSpec",
    "ActionStep",
    "AddTagParams",
    "AssignParams",
    "Branch",
    "BusinessCalendar",
    "CallbackParams",
    "Check",
    "ConditionResult",
    "ConditionSpec",
    "CreateActivityParams",
    "CreateTaskParams",
    "Delay",
    "DelayUnit",
    "EngineResult",
    "EscalateParams",
    "Escalated",
    "MemoryState",
    "Message",
    "MessageChannel",
    "RecordingChannel",
    "Reenrolment",
    "ReenrolmentPolicy",
    "RetryPolicy",
    "RunStatus",
    "RunTrace",
    "SendMessageParams",
    "Services",
    "SetFieldParams",
    "SlaBreached",
    "SlaClock",
    "SlaMetric",
    "SlaPolicy",
    "SlaReport",
    "SlaStatus",
    "SlaTarget",
    "SlaWarning",
    "StateEntry",
    "StatePort",
    "Step",
    "StepTrace",
    "Template",
    "TransitionStageParams",
    "Trigger",
    "TriggerKind",
    "Workflow",
    "WorkflowEngine",
    "business_duration",
    "business_elapsed",
    "consent_problem",
    "load_entry_points",
    "register_action",
    "register_callback",
    "register_condition",
    "registered_actions",
    "registered_conditions",
]
