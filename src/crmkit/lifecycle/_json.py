"""Reading a lifecycle from its JSON form, strictly, with the path of every problem (private)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crmkit.errors import RuleError
from crmkit.lifecycle._definition import Lifecycle, Stage, Transition

__all__ = ["lifecycle_from_json"]

_LIFECYCLE_KEYS = {"name", "entity", "initial", "backward", "description", "stages", "transitions"}
_STAGE_KEYS = {"name", "category", "probability", "forecast", "terminal", "label"}
_TRANSITION_KEYS = {"name", "sources", "target", "guard", "required", "label"}


def _object(data: Any, keys: set[str], required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        msg = f"expected an object, got {type(data).__name__}"
        raise RuleError(msg)
    for key in data:
        if key not in keys:
            msg = f"unexpected key; allowed: {', '.join(sorted(keys))}"
            raise RuleError(msg, str(key))
    for key in required:
        if key not in data:
            msg = "is required"
            raise RuleError(msg, key)
    return dict(data)


def _list(data: Any, path: str, read: Callable[[Any], Any]) -> list[Any]:
    if not isinstance(data, list):
        msg = f"expected a list, got {type(data).__name__}"
        raise RuleError(msg, path)
    items = []
    for index, item in enumerate(data):
        try:
            items.append(read(item))
        except RuleError as exc:
            raise exc.under(f"{path}[{index}]") from None  # noqa: EM102 - a path, not a message
    return items


def _stage(data: Any) -> Stage:
    fields = _object(data, _STAGE_KEYS, ("name",))
    return Stage(fields.pop("name"), **fields)


def _transition(data: Any) -> Transition:
    fields = _object(data, _TRANSITION_KEYS, ("name", "sources", "target"))
    sources = fields.pop("sources")
    if not isinstance(sources, list):
        msg = f"expected a list of stage names, got {type(sources).__name__}"
        raise RuleError(msg, "sources")
    return Transition(fields.pop("name"), sources, fields.pop("target"), **fields)


def lifecycle_from_json(data: Any) -> Lifecycle:
    """Build a lifecycle from the data :meth:`Lifecycle.to_json` returns.

    Raises:
        RuleError: At the path of the first problem found.
    """
    fields = _object(data, _LIFECYCLE_KEYS, ("name", "entity", "stages", "transitions"))
    stages = _list(fields.pop("stages"), "stages", _stage)
    transitions = _list(fields.pop("transitions"), "transitions", _transition)
    return Lifecycle(fields.pop("name"), fields.pop("entity"), stages, transitions, **fields)
