"""Rule segments: a condition over records, evaluated in memory or by a store, and membership snapshots."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import attrs

from crmkit import clock as _clock
from crmkit.conditions import Condition, Explanation, Schema
from crmkit.entities import ENTITY_TYPES
from crmkit.errors import RuleError, ValidationError

__all__ = ["RuleSegment", "SegmentSource", "Snapshot", "SnapshotDiff", "diff_snapshots"]


class SegmentSource(Protocol):
    """Where a segment can find its members: anything that streams the records a condition holds for.

    A store repository (``tx[Contact]``) satisfies it, and evaluates the condition in SQL.
    """

    def stream(self, where: Condition | Mapping[str, Any] | None = None) -> Iterable[Any]:
        """Yield the records for which ``where`` holds."""
        ...


@functools.cache
def _schema(kind: str) -> Schema:
    return Schema.for_entity(ENTITY_TYPES[kind])


def _kind(value: Any) -> str:
    if value not in ENTITY_TYPES:
        msg = f"unknown entity kind {value!r}; known: {', '.join(sorted(ENTITY_TYPES))}"
        raise RuleError(msg, "entity")
    return str(value)


def _segment_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:  # noqa: PLR2004 - a label
        msg = f"must be a non-empty text of at most 100 characters, got {value!r}"
        raise RuleError(msg, "name")
    return value.strip()


def _condition(value: Any) -> Condition:
    if isinstance(value, Condition):
        return value
    try:
        return Condition.from_json(value)
    except RuleError as exc:
        raise exc.under("condition") from None


@attrs.frozen
class RuleSegment:
    """A named condition over one kind of record: "contacts in DACH who opted into the newsletter".

    Validated when built against the fields of the entity kind (an unknown field is a
    :class:`~crmkit.errors.RuleError` with a path such as ``condition.all[0].field``); round-trips through
    JSON with :meth:`to_json` / :meth:`from_json`.

    Attributes:
        name: What the segment is called.
        condition: Who belongs (the condition language, or its JSON form).
        entity: The kind of record it selects (``"contact"``, ``"account"``, ...).
        description: What it is for.
    """

    name: str = attrs.field(converter=_segment_name)
    condition: Condition = attrs.field(converter=_condition)
    entity: str = attrs.field(default="contact", converter=_kind)
    description: str = ""

    def __attrs_post_init__(self) -> None:
        try:
            validated = _schema(self.entity).validate(self.condition)
        except RuleError as exc:
            raise exc.under("condition") from None
        object.__setattr__(self, "condition", validated)

    @functools.cached_property
    def _test(self) -> Callable[[Any], bool]:
        return _schema(self.entity).compile(self.condition)

    def matches(self, record: Any) -> bool:
        """True when the record belongs to the segment (evaluated in memory)."""
        return self._test(record)

    def explain(self, record: Any) -> Explanation:
        """Which parts of the condition held for the record and which failed, with the values seen."""
        return _schema(self.entity).explain(self.condition, record)

    def members(self, records: Iterable[Any]) -> frozenset[str]:
        """The ids of the records that belong, evaluated in memory."""
        test = self._test
        return frozenset(record.id for record in records if test(record))

    def snapshot(self, source: SegmentSource | Iterable[Any], *, at: datetime | None = None) -> Snapshot:
        """Who belongs now: from a store (the condition runs there) or from records in memory.

        Args:
            source: A :class:`SegmentSource` such as ``tx[Contact]`` (given the condition to evaluate,
                in SQL for the SQL stores), or an iterable of records evaluated here.
            at: When the snapshot is taken; the current clock by default.
        """
        taken = at if at is not None else _clock.now()
        stream = getattr(source, "stream", None)
        if callable(stream):
            ids = frozenset(record.id for record in stream(self.condition))
        else:
            ids = self.members(source)  # type: ignore[arg-type]
        return Snapshot(self.name, taken, ids)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: name, entity, condition (its JSON form) and description."""
        return {
            "name": self.name,
            "entity": self.entity,
            "condition": self.condition.to_json(),
            "description": self.description,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> RuleSegment:
        """Build a segment from its JSON form (a dict or a JSON text).

        Raises:
            RuleError: With the path of the bad part.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                msg = f"not JSON: {exc.msg}"
                raise RuleError(msg) from None
        if not isinstance(data, Mapping):
            msg = f"must be an object, got {data!r}"
            raise RuleError(msg)
        allowed = {"name", "entity", "condition", "description"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            msg = f"unknown keys {unknown}; allowed: {sorted(allowed)}"
            raise RuleError(msg)
        for key in ("name", "condition"):
            if key not in data:
                raise RuleError("missing", key)
        description = data.get("description", "")
        if not isinstance(description, str):
            msg = "must be a text"
            raise RuleError(msg, "description")
        return cls(data["name"], data["condition"], data.get("entity", "contact"), description)


@attrs.frozen
class Snapshot:
    """The members of a segment at one moment.

    Attributes:
        segment: The segment's name.
        at: When it was taken.
        members: The ids of the records in the segment.
    """

    segment: str
    at: datetime
    members: frozenset[str] = attrs.field(converter=frozenset)

    def to_json(self) -> dict[str, Any]:
        """The JSON form, members sorted."""
        return {"segment": self.segment, "at": self.at.isoformat(), "members": sorted(self.members)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        """Read a snapshot back.

        Raises:
            ValidationError: When a part is missing or of the wrong type.
        """
        try:
            at = datetime.fromisoformat(data["at"])
            members = data["members"]
            segment = data["segment"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError.single("", f"not a snapshot: {exc}") from None
        if at.utcoffset() is None:
            raise ValidationError.single("at", "must be timezone-aware")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ValidationError.single("members", "must be a list of ids")
        return cls(str(segment), at, frozenset(members))


@attrs.frozen
class SnapshotDiff:
    """How a segment changed between two snapshots.

    Attributes:
        entered: In the later snapshot, not in the earlier.
        left: In the earlier, not in the later.
        stayed: In both.
    """

    entered: frozenset[str]
    left: frozenset[str]
    stayed: frozenset[str]


def diff_snapshots(before: Snapshot, after: Snapshot) -> SnapshotDiff:
    """Who entered and who left a segment between two snapshots.

    Raises:
        ValidationError: When the snapshots are of different segments or ``after`` was taken first.
    """
    if before.segment != after.segment:
        message = f"is of segment {after.segment!r}, not {before.segment!r}"
        raise ValidationError.single("after.segment", message)
    if after.at < before.at:
        raise ValidationError.single("after.at", "must not be before before.at")
    return SnapshotDiff(
        entered=after.members - before.members,
        left=before.members - after.members,
        stayed=before.members & after.members,
    )
