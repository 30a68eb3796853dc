"""Reading a lifecycle from its JSON form, strictly, with the path of every problem (private)."""

from __future__ import annotations

from typing import Any

from crmkit._json import read_list, read_object
from crmkit.errors import RuleError
from crmkit.lifecycle._definition import Lifecycle, Stage, Transition

__all__ = ["lifecycle_from_json"]

_LIFECYCLE_KEYS = {"name", "entity", "initial", "backward", "description", "stages", "transitions"}
_STAGE_KEYS = {"name", "category", "probability", "forecast", "terminal", "label"}
_TRANSITION_KEYS = {"name", "sources", "target", "guard", "required", "label"}


def _stage(data: Any) -> Stage:
    fields = read_object(data, _STAGE_KEYS, ("name",))
    return Stage(fields.pop("name"), **fields)


def _transition(data: Any) -> Transition:
    fields = read_object(data, _TRANSITION_KEYS, ("name", "sources", "target"))
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
    fields = read_object(data, _LIFECYCLE_KEYS, ("name", "entity", "stages", "transitions"))
    stages = read_list(fields.pop("stages"), "stages", _stage)
    transitions = read_list(fields.pop("transitions"), "transitions", _transition)
    return Lifecycle(fields.pop("name"), fields.pop("entity"), stages, transitions, **fields)
