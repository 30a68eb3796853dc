"""The errors crmkit raises: one root, a handful of precise families.

Every error crmkit raises on purpose derives from :class:`CrmError`, so a host
application can catch the whole family in one place. Where a builtin category
fits, the error also derives from it (a :class:`ValidationError` is a
``ValueError``, :class:`NotFound` a ``LookupError``), so generic code keeps
working::

    CrmError
    ├── ValidationError (ValueError)      bad input: carries every Problem found
    │   ├── CurrencyMismatch               arithmetic across two currencies
    │   └── InsufficientBalance            taking more than a balance holds (loyalty points)
    ├── TransitionError                    a lifecycle transition is not allowed
    ├── NotFound (LookupError)             no record with that id
    ├── ConflictError                      a write based on a stale version
    ├── RuleError (ValueError)             an invalid rule, condition or definition
    ├── StorageError                       the storage backend failed
    │   ├── StorageUnavailable             cannot connect, locked, timed out, disk full
    │   ├── StorageIntegrityError          the database refused a write (a constraint)
    │   └── SchemaVersionError             the stored schema is newer or foreign
    ├── ConsentError                       no lawful basis to store or contact
    └── PermissionDenied                   the acting user may not see or change this

The exception classes and their attributes are public API; the wording of
their messages is not.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ConflictError",
    "ConsentError",
    "CrmError",
    "CurrencyMismatch",
    "InsufficientBalance",
    "NotFound",
    "PermissionDenied",
    "Problem",
    "RuleError",
    "SchemaVersionError",
    "StorageError",
    "StorageIntegrityError",
    "StorageUnavailable",
    "TransitionError",
    "ValidationError",
]


class CrmError(Exception):
    """The root of every error crmkit raises on purpose."""


@attrs.frozen
class Problem:
    """One thing wrong with one value.

    Attributes:
        path: Where the value sits, as a dotted path with list indices,
            for example ``"lines[2].quantity"``; ``""`` means the whole value.
        message: What is wrong with it, in plain words.
    """

    path: str
    message: str

    def under(self, prefix: str | int) -> Problem:
        """Return this problem as seen from a containing value.

        Args:
            prefix: The field name (``str``) or list index (``int``) at which
                the value sits inside its container.
        """
        step = f"[{prefix}]" if isinstance(prefix, int) else prefix
        if not self.path:
            return Problem(step, self.message)
        joiner = "" if self.path.startswith("[") else "."
        return Problem(f"{step}{joiner}{self.path}", self.message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationError(CrmError, ValueError):
    """Input failed validation; every problem found is reported together.

    Attributes:
        problems: The problems found, each naming the field path and what is
            wrong with the value there.
    """

    problems: tuple[Problem, ...]

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        if not self.problems:
            msg = "a ValidationError needs at least one problem"
            raise ValueError(msg)
        super().__init__(self.problems)

    @classmethod
    def single(cls, path: str, message: str) -> ValidationError:
        """Build the error for one problem at ``path``."""
        return cls([Problem(path, message)])

    @property
    def paths(self) -> tuple[str, ...]:
        """The field paths that failed, in the order they were found."""
        return tuple(problem.path for problem in self.problems)

    def under(self, prefix: str | int) -> ValidationError:
        """Return the same error with every path placed under ``prefix``."""
        return type(self)([problem.under(prefix) for problem in self.problems])

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        return f"{len(self.problems)} problems:\n{lines}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class CurrencyMismatch(ValidationError):
    """Two amounts in different currencies were combined."""


class InsufficientBalance(ValidationError):
    """More was taken than a balance holds, such as redeeming more loyalty points than earned."""


class _RecordRef(Protocol):
    """What an error needs of a record reference: ``crmkit.entities.EntityRef``, which imports this module."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> str: ...


class TransitionError(CrmError):
    """A lifecycle transition was refused.

    Attributes:
        transition: The transition that was asked for.
        reasons: Why it was refused: the guard that failed, the required
            fields missing, or that it is not allowed from the current stage.
        entity: The record it was asked for (an :class:`~crmkit.entities.EntityRef`), when known.
        stage: The stage the record was in, when known.
    """

    def __init__(
        self,
        transition: str,
        reasons: Iterable[str],
        *,
        entity: _RecordRef | None = None,
        stage: str | None = None,
    ) -> None:
        self.transition = transition
        self.reasons = tuple(reasons)
        self.entity = entity
        self.stage = stage
        whose = f"{entity.kind} {entity.id}: " if entity is not None else ""
        where = f" in stage {stage!r}" if stage is not None else ""
        super().__init__(f"{whose}transition {transition!r} refused{where}: " + "; ".join(self.reasons))

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild = functools.partial(type(self), entity=self.entity, stage=self.stage)
        return (rebuild, (self.transition, self.reasons))


class NotFound(CrmError, LookupError):
    """No record of that kind has that id.

    Attributes:
        kind: The kind of record looked for, for example ``"lead"``.
        id: The id that was not found.
    """

    def __init__(self, kind: str, id: str) -> None:  # noqa: A002 - "id" is the CRM term
        self.kind = kind
        self.id = id
        super().__init__(f"no {kind} with id {id!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.id))


class ConflictError(CrmError):
    """A write was based on a version that is no longer current; nothing changed."""


class RuleError(CrmError, ValueError):
    """A rule, condition or definition is invalid.

    Attributes:
        path: Where in the definition the problem is, for example
            ``"all[1].any[0]"`` for a node of a condition tree; ``""`` for the root.
        message: What is wrong there.
    """

    def __init__(self, message: str, path: str = "") -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def under(self, prefix: str) -> RuleError:
        """Return the same error with its path placed under ``prefix``."""
        if not self.path:
            return type(self)(self.message, prefix)
        joiner = "" if self.path.startswith("[") else "."
        return type(self)(self.message, f"{prefix}{joiner}{self.path}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.path))


class StorageError(CrmError):
    """The storage backend failed; the unit of work was rolled back.

    Driver exceptions never leak: each adapter translates them into this
    family and keeps the original as ``__cause__``.
    """


class StorageUnavailable(StorageError):
    """The database cannot be reached or used now: no connection, locked, timed out, full."""


class StorageIntegrityError(StorageError):
    """The database refused a write because it would break one of its constraints."""


class SchemaVersionError(StorageError):
    """The database holds a crmkit schema this version cannot use (newer, or not crmkit's)."""


class ConsentError(CrmError):
    """There is no lawful basis to store this data or to contact this person."""


class PermissionDenied(CrmError):
    """The acting user may not see or change this; the store wrote the denial to the audit log.

    Attributes:
        action: What was refused: ``"read"``, ``"query"``, ``"add"``, ``"update"``, ``"delete"``,
            ``"audit"`` or ``"redact"``.
        kind: The kind of record, for example ``"lead"``.
        id: The record's id, when one record was concerned.
        reason: Why, in a few words.
    """

    def __init__(self, action: str, kind: str, id: str | None = None, reason: str = "") -> None:  # noqa: A002 - "id" is the CRM term
        self.action = action
        self.kind = kind
        self.id = id
        self.reason = reason
        what = f"{kind} {id!r}" if id is not None else f"{kind} records"
        super().__init__(f"may not {action} {what}" + (f": {reason}" if reason else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.action, self.kind, self.id, self.reason))
