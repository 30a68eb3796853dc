"""Strict readers for the JSON forms of definitions, with the path of every problem (private)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from crmkit.errors import RuleError

__all__ = [
    "read_bool",
    "read_enum",
    "read_int",
    "read_list",
    "read_mapping",
    "read_number",
    "read_object",
    "read_str",
    "under",
]

T = TypeVar("T")


def read_object(data: Any, keys: Collection[str], required: Iterable[str] = ()) -> dict[str, Any]:
    """Check ``data`` is an object with only ``keys`` and every key of ``required``."""
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


def read_list(data: Any, path: str, read: Callable[[Any], T]) -> list[T]:
    """Read each item of a JSON list, placing any error under ``path[index]``."""
    if not isinstance(data, list | tuple):
        msg = f"expected a list, got {type(data).__name__}"
        raise RuleError(msg, path)
    items = []
    for index, item in enumerate(data):
        with under(f"{path}[{index}]"):
            items.append(read(item))
    return items


def read_str(data: Any, path: str) -> str:
    """Check a value is a non-empty string."""
    if not isinstance(data, str) or not data.strip():
        msg = f"expected a non-empty string, got {data!r}"
        raise RuleError(msg, path)
    return data


class under:  # noqa: N801 - used like a function: ``with under("rules[2]"):``
    """A context manager that places a ``RuleError`` raised inside it under ``prefix``."""

    __slots__ = ("_prefix",)

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, RuleError):
            raise exc.under(self._prefix) from None


def read_enum(data: Any, choices: Any, path: str) -> Any:
    """Check a value is the value of a member of the enum ``choices``; return the member."""
    if not isinstance(data, str) or data not in {member.value for member in choices}:
        known = ", ".join(member.value for member in choices)
        msg = f"unknown value {data!r}; one of: {known}"
        raise RuleError(msg, path)
    return choices(data)


def read_int(data: Any, path: str) -> int:
    """Check a value is a whole number (not a boolean)."""
    if isinstance(data, bool) or not isinstance(data, int):
        msg = f"expected a whole number, got {data!r}"
        raise RuleError(msg, path)
    return data


def read_number(data: Any, path: str) -> float:
    """Check a value is a number (not a boolean)."""
    if isinstance(data, bool) or not isinstance(data, int | float):
        msg = f"expected a number, got {data!r}"
        raise RuleError(msg, path)
    return data


def read_bool(data: Any, path: str) -> bool:
    """Check a value is true or false."""
    if not isinstance(data, bool):
        msg = f"expected true or false, got {data!r}"
        raise RuleError(msg, path)
    return data


def read_mapping(data: Any, path: str, read: Callable[[Any, str], T]) -> dict[str, T]:
    """Read a JSON object whose values ``read(value, path)`` checks, under ``path.key``."""
    if not isinstance(data, Mapping):
        msg = f"expected an object, got {type(data).__name__}"
        raise RuleError(msg, path)
    result = {}
    for key, value in data.items():
        where = f"{path}.{key}"
        if not isinstance(key, str) or not key:
            msg = "keys are non-empty strings"
            raise RuleError(msg, where)
        result[key] = read(value, where)
    return result
