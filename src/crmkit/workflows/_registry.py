"""The registries of workflow actions and conditions, filled by crmkit, hosts and entry points (private).

Other packages add actions and conditions without touching crmkit: either by calling
:func:`register_action` / :func:`register_condition`, or by declaring an entry point in
the groups ``crmkit.workflow_actions`` and ``crmkit.workflow_conditions`` whose object
is an :class:`ActionSpec` / :class:`ConditionSpec` (or a callable returning one, or
several). Entry points are loaded once, the first time a name is looked up.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.entities import Entity
from crmkit.errors import RuleError
from crmkit.events import DomainEvent

if TYPE_CHECKING:
    from crmkit.conditions import Schema

__all__ = [
    "ACTION_ENTRY_POINTS",
    "CONDITION_ENTRY_POINTS",
    "ActionContext",
    "ActionOutcome",
    "ActionSpec",
    "ConditionSpec",
    "action_spec",
    "callback",
    "check_spec",
    "register_action",
    "register_callback",
    "register_condition",
    "registered_actions",
    "registered_conditions",
]

ACTION_ENTRY_POINTS = "crmkit.workflow_actions"
"""The entry-point group other packages declare workflow actions in."""
CONDITION_ENTRY_POINTS = "crmkit.workflow_conditions"
"""The entry-point group other packages declare workflow conditions in."""

_NAME = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_ACTIONS: dict[str, ActionSpec] = {}
_CONDITIONS: dict[str, ConditionSpec] = {}
_LOADED = {"entry_points": False}
_LOCK = threading.RLock()


@attrs.frozen(kw_only=True)
class ActionContext:
    """What an action sees when it runs.

    Attributes:
        workflow: The running workflow.
        record: The record, as changed by the run's earlier actions.
        event: The event that started the run, if any.
        now: The time of the run.
        key: The step's idempotency key: the same on every retry and after a restart, so
            hosts (and channels) can refuse to do one thing twice.
        services: The engine's ports: channels, consents, routers, callbacks, state.
    """

    workflow: Any
    record: Entity
    event: DomainEvent | None
    now: datetime
    key: str
    services: Any


@attrs.frozen(kw_only=True)
class ActionOutcome:
    """What an action did: the changed record, new records, events, and a line for the trace.

    Attributes:
        record: The record after the action, or ``None`` when it did not change it.
        created: New records to store (tasks, activities).
        events: Domain events to publish (assigned, escalated, ...).
        detail: What happened, in words.
        skipped: Why the action did nothing (no consent, frequency cap), or ``None``.
    """

    record: Any = None
    created: tuple[Any, ...] = ()
    events: tuple[Any, ...] = ()
    detail: str = ""
    skipped: str | None = None


ActionRun = Callable[[ActionContext, Any], ActionOutcome]
ActionCheck = Callable[[Any, Any, "Schema", "Schema | None"], None]


@attrs.frozen
class ActionSpec:
    """A workflow action: its name, its parameter class and what it does.

    Attributes:
        name: The name workflows use (``"send_message"``).
        params: An ``attrs`` class of typed parameters; workflow JSON is read into it with
            crmkit's converter, so a missing, unknown or mistyped parameter is a
            ``RuleError`` when the workflow is built.
        run: ``run(context, params) -> ActionOutcome``; raise to fail (the engine retries).
        check: ``check(params, workflow, schema, event_schema)``, for checks that need the
            workflow (a field it names, a template's placeholders); raise ``RuleError``.
        description: What it does.
    """

    name: str
    params: type
    run: ActionRun
    check: ActionCheck | None = None
    description: str = ""


@attrs.frozen
class ConditionSpec:
    """A host condition usable in workflow ``checks`` and ``if`` branches.

    Attributes:
        name: The name workflows use.
        params: An ``attrs`` class of typed parameters.
        test: ``test(record, event, params) -> bool``.
        description: What it tests.
    """

    name: str
    params: type
    test: Callable[[Any, Any, Any], bool]
    description: str = ""


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        msg = f"expected a name of lower-case letters, digits, '_' or '.', got {name!r}"
        raise RuleError(msg, "name")
    return name


def _params_class(params: Any) -> type:
    if not (isinstance(params, type) and attrs.has(params)):
        msg = f"parameters are an attrs class, got {params!r}"
        raise RuleError(msg, "params")
    return params


def register_action(
    name: str,
    params: type,
    run: ActionRun,
    *,
    check: ActionCheck | None = None,
    description: str = "",
    replace: bool = False,
) -> ActionSpec:
    """Register a workflow action under ``name``.

    Args:
        name: The name workflows use.
        params: The ``attrs`` class of its parameters.
        run: ``run(context, params) -> ActionOutcome``.
        check: An extra build-time check of the parameters against the workflow.
        description: What it does.
        replace: Replace an action already registered under that name.

    Raises:
        RuleError: If the name is taken (and ``replace`` is false) or the arguments are malformed.
    """
    spec = ActionSpec(_checked_name(name), _params_class(params), run, check, description)
    with _LOCK:
        if name in _ACTIONS and not replace and _ACTIONS[name] != spec:
            msg = f"an action named {name!r} is already registered"
            raise RuleError(msg, "name")
        _ACTIONS[name] = spec
    return spec


def register_condition(
    name: str,
    params: type,
    test: Callable[[Any, Any, Any], bool],
    *,
    description: str = "",
    replace: bool = False,
) -> ConditionSpec:
    """Register a condition under ``name`` for workflow ``checks`` and branches.

    Raises:
        RuleError: If the name is taken (and ``replace`` is false) or the arguments are malformed.
    """
    spec = ConditionSpec(_checked_name(name), _params_class(params), test, description)
    with _LOCK:
        if name in _CONDITIONS and not replace and _CONDITIONS[name] != spec:
            msg = f"a condition named {name!r} is already registered"
            raise RuleError(msg, "name")
        _CONDITIONS[name] = spec
    return spec


Callback = Callable[[ActionContext, dict[str, Any]], object]
_CALLBACKS: dict[str, Callback] = {}


def register_callback(name: str, function: Callback, *, replace: bool = False) -> None:
    """Register a host callback that workflows call with the ``callback`` action.

    The callback gets the :class:`ActionContext` and the step's ``data``; raising fails
    the step (the engine retries it). Workflows naming an unregistered callback are
    refused when built.

    Raises:
        RuleError: If the name is taken (and ``replace`` is false) or malformed.
    """
    _checked_name(name)
    given: object = function  # callers may pass anything
    if not callable(given):
        msg = f"expected a callable, got {function!r}"
        raise RuleError(msg, "function")
    with _LOCK:
        if name in _CALLBACKS and not replace and _CALLBACKS[name] is not function:
            msg = f"a callback named {name!r} is already registered"
            raise RuleError(msg, "name")
        _CALLBACKS[name] = function


def callback(name: str) -> Callback | None:
    """Return the registered callback, or ``None``."""
    return _CALLBACKS.get(name)


def _register_loaded(found: Any, group: str, origin: str) -> None:
    items: Iterable[Any] = found if isinstance(found, list | tuple) else (found,)
    for item in items:
        if isinstance(item, ActionSpec) and group == ACTION_ENTRY_POINTS:
            with _LOCK:
                _ACTIONS.setdefault(item.name, item)
        elif isinstance(item, ConditionSpec) and group == CONDITION_ENTRY_POINTS:
            with _LOCK:
                _CONDITIONS.setdefault(item.name, item)
        elif callable(item) and not isinstance(item, type):
            _register_loaded(item(), group, origin)
        else:
            msg = f"entry point {origin} gave {item!r}, not a spec of group {group}"
            raise RuleError(msg, origin)


def load_entry_points() -> None:
    """Load the actions and conditions other installed packages declare (once)."""
    with _LOCK:
        if _LOADED["entry_points"]:
            return
        _LOADED["entry_points"] = True
    for group in (ACTION_ENTRY_POINTS, CONDITION_ENTRY_POINTS):
        for point in entry_points(group=group):
            _register_loaded(point.load(), group, f"{group}:{point.name}")


def _ensure_loaded() -> None:
    if not _LOADED["entry_points"]:
        import crmkit.workflows._actions  # noqa: F401, PLC0415 - registers the built-in actions

        load_entry_points()


def action_spec(name: str) -> ActionSpec | None:
    """Return the registered action, or ``None``."""
    _ensure_loaded()
    return _ACTIONS.get(name) if isinstance(name, str) else None


def check_spec(name: str) -> ConditionSpec | None:
    """Return the registered condition, or ``None``."""
    _ensure_loaded()
    return _CONDITIONS.get(name) if isinstance(name, str) else None


def registered_actions() -> tuple[str, ...]:
    """The names of every registered action, sorted."""
    _ensure_loaded()
    return tuple(sorted(_ACTIONS))


def registered_conditions() -> tuple[str, ...]:
    """The names of every registered condition, sorted."""
    _ensure_loaded()
    return tuple(sorted(_CONDITIONS))
