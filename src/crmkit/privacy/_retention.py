"""Retention policies: delete or anonymise records nobody touched for a set period (private)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from crmkit.conditions import Condition, Schema, field, parse_duration
from crmkit.entities import ENTITY_TYPES
from crmkit.errors import RuleError, ValidationError
from crmkit.privacy._erase import anonymise
from crmkit.privacy._personal import PLACEHOLDER, PersonalData
from crmkit.privacy._ports import PrivacyTransaction, stream

__all__ = ["RetentionAction", "RetentionOutcome", "RetentionPolicy", "apply_retention"]

_SCHEMAS: dict[str, Schema] = {}
_MAX_NAME = 64


def _schema(kind: str) -> Schema:
    schema = _SCHEMAS.get(kind)
    if schema is None:
        schema = _SCHEMAS[kind] = Schema.for_entity(ENTITY_TYPES[kind])
    return schema


class RetentionAction(StrEnum):
    """What happens to a record past its retention period."""

    DELETE = "delete"
    ANONYMISE = "anonymise"


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_NAME:
        msg = f"must be a non-empty text of at most 64 characters, got {value!r}"
        raise RuleError(msg, "name")
    return value.strip()


def _kind(value: Any) -> str:
    if value not in ENTITY_TYPES:
        msg = f"{value!r} is not a record kind; one of {', '.join(sorted(ENTITY_TYPES))}"
        raise RuleError(msg, "kind")
    return str(value)


def _duration(value: Any) -> str:
    try:
        parse_duration(value)
    except RuleError as exc:
        raise exc.under("untouched_for") from None
    return str(value)


def _action(value: Any) -> RetentionAction:
    try:
        return RetentionAction(value)
    except ValueError:
        msg = f"must be 'delete' or 'anonymise', got {value!r}"
        raise RuleError(msg, "action") from None


def _condition(value: Any) -> Condition | None:
    if value is None:
        return None
    if isinstance(value, Condition):
        return value
    try:
        return Condition.from_json(value)
    except RuleError as exc:
        raise exc.under("where") from None


@attrs.frozen
class RetentionPolicy:
    """Delete or anonymise the records of one kind nobody touched for a period.

    "Untouched" means ``updated_at`` is older than ``untouched_for`` before the run; ``where``
    narrows the records the policy applies to, in the condition language::

        RetentionPolicy(
            name="disqualified-leads",
            kind="lead",
            where={"field": "stage", "op": "eq", "value": "disqualified"},
            untouched_for="P24M",
            action="anonymise",
        )

    Attributes:
        name: What the policy is called (it names its outcome).
        kind: The record kind (``"lead"``, ``"ticket"``, ...).
        untouched_for: An ISO 8601 duration such as ``"P24M"``.
        action: ``"delete"`` the records or ``"anonymise"`` them (personal fields emptied, facts kept).
        where: An optional condition over the kind's fields.

    Raises:
        RuleError: When built with a bad part; the path names it (``where.all[0].field``).
    """

    name: str = attrs.field(converter=_name)
    kind: str = attrs.field(converter=_kind)
    untouched_for: str = attrs.field(converter=_duration)
    action: RetentionAction = attrs.field(default=RetentionAction.ANONYMISE, converter=_action)
    where: Condition | None = attrs.field(default=None, converter=_condition)

    def __attrs_post_init__(self) -> None:
        if self.where is not None:
            try:
                _schema(self.kind).validate(self.where)
            except RuleError as exc:
                raise exc.under("where") from None

    def cutoff(self, as_of: datetime) -> datetime:
        """The time before which a record's last change makes it due."""
        return as_of - parse_duration(self.untouched_for)

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "untouched_for": self.untouched_for,
            "action": str(self.action),
            "where": None if self.where is None else self.where.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RetentionPolicy:
        """Read a policy back.

        Raises:
            RuleError: For a missing or unknown key or a bad value; the path names it.
        """
        given: object = data
        if not isinstance(given, Mapping):
            msg = f"expected an object, got {type(given).__name__}"
            raise RuleError(msg)
        unknown = set(data) - {"name", "kind", "untouched_for", "action", "where"}
        if unknown:
            msg = f"unknown key {min(unknown)!r}"
            raise RuleError(msg, min(unknown))
        for key in ("name", "kind", "untouched_for"):
            if key not in data:
                msg = "is required"
                raise RuleError(msg, key)
        return cls(
            data["name"],
            data["kind"],
            data["untouched_for"],
            data.get("action", RetentionAction.ANONYMISE),
            data.get("where"),
        )


@attrs.frozen
class RetentionOutcome:
    """What one policy found (and, unless a dry run, did).

    Attributes:
        policy: The policy's name.
        kind: The record kind.
        action: What was (or would be) done.
        cutoff: Records last changed before this were due.
        due: The due records, by id, sorted.
        applied: False for a dry run.
    """

    policy: str
    kind: str
    action: RetentionAction
    cutoff: datetime
    due: tuple[str, ...]
    applied: bool


def apply_retention(
    tx: PrivacyTransaction,
    policies: Iterable[RetentionPolicy],
    *,
    as_of: datetime | None = None,
    dry_run: bool = True,
    personal_data: PersonalData | None = None,
) -> tuple[RetentionOutcome, ...]:
    """Run retention policies as a scheduled job: by default a dry run that only lists what is due.

    Schedule it (daily, say) from the host's job runner; run it with ``dry_run=False`` and commit
    to apply. Deletions keep their audit entries (an ``entity_deleted`` event is appended); an
    anonymised record keeps every non-personal fact, and its personal values are rewritten out of
    the audit log too. Already anonymised records are not due again.

    Args:
        tx: An open store transaction.
        policies: The policies, applied in order.
        as_of: The moment of the run; the store's clock by default.
        dry_run: List the due records without changing anything.
        personal_data: The host's declaration of personal custom fields.

    Raises:
        ValidationError: For a naive ``as_of`` or something that is not a policy.
    """
    when = tx.now() if as_of is None else as_of
    if not isinstance(when, datetime) or when.utcoffset() is None:
        raise ValidationError.single("as_of", "expected a timezone-aware datetime")
    declaration = personal_data or PersonalData()
    outcomes: list[RetentionOutcome] = []
    for index, policy in enumerate(policies):
        given: object = policy
        if not isinstance(given, RetentionPolicy):
            msg, path = f"expected a RetentionPolicy, got {type(given).__name__}", f"policies[{index}]"
            raise ValidationError.single(path, msg)
        cutoff = policy.cutoff(when)
        where: Condition = field("updated_at").lt(cutoff)
        if policy.where is not None:
            where = policy.where & where
        due = [
            record
            for record in stream(tx, policy.kind, where)
            if policy.action is RetentionAction.DELETE or declaration.holds_personal_data(record)
        ]
        if not dry_run:
            _apply(tx, policy.action, due, declaration)
        outcomes.append(
            RetentionOutcome(
                policy.name, policy.kind, policy.action, cutoff, tuple(sorted(r.id for r in due)), not dry_run
            )
        )
    return tuple(outcomes)


def _apply(
    tx: PrivacyTransaction, action: RetentionAction, due: Sequence[Any], declaration: PersonalData
) -> None:
    values: set[str] = set()
    for record in due:
        values |= declaration.values(record)
        repository = tx.repository(type(record))
        if action is RetentionAction.DELETE:
            repository.delete(record)
        else:
            new, _ = anonymise(record, declaration)
            if new is not record:
                repository.update(new)
    wanted = sorted(v for v in values if PLACEHOLDER not in v and v not in PLACEHOLDER)
    if wanted:
        tx.redact_audit(wanted, PLACEHOLDER)
