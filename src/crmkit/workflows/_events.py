"""The domain events of the workflows package: SLA warnings and breaches, escalations (private)."""

from __future__ import annotations

from datetime import datetime

import attrs

from crmkit._validation import rules, short_label
from crmkit.events import DomainEvent, register_event

__all__ = ["Escalated", "SlaBreached", "SlaWarning"]


@register_event("sla_warning")
@attrs.frozen(kw_only=True)
class SlaWarning(DomainEvent):
    """A ticket's SLA clock is close to its deadline.

    Attributes:
        policy: The SLA policy's name.
        metric: ``"first_response"``, ``"next_response"`` or ``"resolution"``.
        deadline: When the target will be breached, if the clock keeps running.
    """

    policy: str = attrs.field(metadata=rules(short_label))
    metric: str = attrs.field(metadata=rules(short_label))
    deadline: datetime


@register_event("sla_breached")
@attrs.frozen(kw_only=True)
class SlaBreached(DomainEvent):
    """A ticket missed an SLA target; a breached SLA stays breached.

    Attributes:
        policy: The SLA policy's name.
        metric: ``"first_response"``, ``"next_response"`` or ``"resolution"``.
        deadline: The deadline that passed.
    """

    policy: str = attrs.field(metadata=rules(short_label))
    metric: str = attrs.field(metadata=rules(short_label))
    deadline: datetime


@register_event("escalated")
@attrs.frozen(kw_only=True)
class Escalated(DomainEvent):
    """A workflow escalated a record, for example a late ticket to second line or a manager.

    Attributes:
        level: Where it was escalated to, such as ``"second_line"`` or ``"manager"``.
        reason: Why, in words.
        workflow: The workflow that escalated it, if any.
    """

    level: str = attrs.field(metadata=rules(short_label))
    reason: str | None = None
    workflow: str | None = attrs.field(default=None, metadata=rules(short_label))
