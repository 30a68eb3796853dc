"""SLA policies for tickets: targets by priority and tier, measured in business time (private).

A ticket's SLA clock for one metric starts at a moment (creation, or the customer's
unanswered message), stops at another (the first response, the resolution) and does
not run while the ticket waits on the customer. The time paused is measured in
business time, so a pause over a night or a weekend, which costs no business time,
does not push the deadline later at all.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from crmkit._json import read_object
from crmkit.conditions import format_duration
from crmkit.entities import EntityRef, Priority, Ticket
from crmkit.errors import RuleError, ValidationError
from crmkit.events import DomainEvent
from crmkit.workflows._calendar import BusinessCalendar, fixed_duration
from crmkit.workflows._events import SlaBreached, SlaWarning

__all__ = [
    "SlaClock",
    "SlaMetric",
    "SlaPolicy",
    "SlaReport",
    "SlaStatus",
    "SlaTarget",
    "business_duration",
    "business_elapsed",
]

_MAX_TARGET = timedelta(days=3660)
_US = timedelta(microseconds=1)
_MAX_LABEL = 64


class SlaMetric(enum.StrEnum):
    """What an SLA target measures."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class SlaStatus(enum.StrEnum):
    """Where one SLA clock stands."""

    RUNNING = "running"
    WARNING = "warning"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"


def business_duration(value: Any, path: str = "") -> timedelta:
    """Read a business duration: a ``timedelta`` or an ISO 8601 text (``"PT4H"``, ``"P2D"``).

    A day here is 24 hours of business time; years and months are refused because
    their length is not fixed.

    Raises:
        RuleError: For a negative, zero, absurd (over ten years) or unreadable duration.
    """
    delta = fixed_duration(value, path, what="a business duration")
    if delta <= timedelta() or delta > _MAX_TARGET:
        msg = f"must be longer than zero and at most {_MAX_TARGET.days} days, got {delta}"
        raise RuleError(msg, path)
    return delta


def _within(value: Any) -> timedelta:
    return business_duration(value, "within")


def _warn_before(value: Any) -> timedelta | None:
    return None if value is None else business_duration(value, "warn_before")


def _priority(value: Any) -> Priority | None:
    if value is None or isinstance(value, Priority):
        return value
    try:
        return Priority(value)
    except ValueError:
        msg = f"unknown priority {value!r}; one of: {', '.join(p.value for p in Priority)}"
        raise RuleError(msg, "priority") from None


def _metric(value: Any) -> SlaMetric:
    try:
        return SlaMetric(value)
    except ValueError:
        msg = f"unknown metric {value!r}; one of: {', '.join(m.value for m in SlaMetric)}"
        raise RuleError(msg, "metric") from None


def _label(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_LABEL:
        msg = f"expected a name of 1 to {_MAX_LABEL} characters, got {value!r}"
        raise RuleError(msg, path)
    return value.strip()


def _tier(value: Any) -> str | None:
    return None if value is None else _label(value, "tier")


def _policy_name(value: Any) -> str:
    return _label(value, "name")


@attrs.frozen
class SlaTarget:
    """How long one metric may take, for tickets of a priority and a customer tier.

    Attributes:
        metric: What is measured.
        within: The business time allowed (a ``timedelta`` or ``"PT4H"``).
        priority: The ticket priority it applies to; ``None`` for every priority.
        tier: The customer tier it applies to (``"gold"``); ``None`` for every tier.
        warn_before: Warn when this much business time (or less) is left; the
            policy's default when ``None``.
    """

    metric: SlaMetric = attrs.field(converter=_metric)
    within: timedelta = attrs.field(converter=_within)
    priority: Priority | None = attrs.field(default=None, kw_only=True, converter=_priority)
    tier: str | None = attrs.field(default=None, kw_only=True, converter=_tier)
    warn_before: timedelta | None = attrs.field(default=None, kw_only=True, converter=_warn_before)

    def applies_to(self, priority: Priority, tier: str | None) -> bool:
        """Whether the target covers a ticket of this priority and customer tier."""
        return (self.priority is None or self.priority is priority) and (
            self.tier is None or self.tier == tier
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        data: dict[str, Any] = {"metric": self.metric.value, "within": format_duration(self.within)}
        if self.priority is not None:
            data["priority"] = self.priority.value
        if self.tier is not None:
            data["tier"] = self.tier
        if self.warn_before is not None:
            data["warn_before"] = format_duration(self.warn_before)
        return data


def _targets(value: Any) -> tuple[SlaTarget, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        msg = f"expected a list of targets, got {type(value).__name__}"
        raise RuleError(msg, "targets")
    targets = []
    for index, item in enumerate(value):
        try:
            targets.append(item if isinstance(item, SlaTarget) else _target_from_json(item))
        except RuleError as exc:
            raise exc.under(f"targets[{index}]") from None  # noqa: EM102 - a path, not a message
    if not targets:
        msg = "a policy needs at least one target"
        raise RuleError(msg, "targets")
    return tuple(targets)


def _target_from_json(data: Any) -> SlaTarget:
    keys = {"metric", "within", "priority", "tier", "warn_before"}
    read_object(data, keys, ("metric", "within"))
    return SlaTarget(
        data["metric"],
        data["within"],
        priority=data.get("priority"),
        tier=data.get("tier"),
        warn_before=data.get("warn_before"),
    )


def _calendar(value: Any) -> BusinessCalendar:
    if isinstance(value, BusinessCalendar):
        return value
    try:
        return BusinessCalendar.from_json(value)
    except RuleError as exc:
        raise exc.under("calendar") from None


def _stages(value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        msg = f"expected a list of stage names, got {type(value).__name__}"
        raise RuleError(msg, "pause_stages")
    return frozenset(_label(item, f"pause_stages[{index}]") for index, item in enumerate(value))


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        msg = f"{text} has no timezone"
        raise ValueError(msg)
    return moment


def _merge(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def business_elapsed(
    calendar: BusinessCalendar,
    start: datetime,
    end: datetime,
    pauses: Iterable[tuple[datetime, datetime]] = (),
) -> timedelta:
    """Return the business time from ``start`` to ``end`` less the business time paused.

    Pauses are clipped to ``[start, end]`` and merged where they overlap, so the
    result is never negative and never more than the business time between the ends.

    Raises:
        ValidationError: If a time is naive.
    """
    if end <= start:
        calendar.business_time_between(start, end)  # checks both are aware
        return timedelta()
    total = calendar.business_time_between(start, end)
    clipped = [(max(pause_start, start), min(pause_end, end)) for pause_start, pause_end in pauses]
    for pause_start, pause_end in _merge(clipped):
        total -= calendar.business_time_between(pause_start, pause_end)
    return total


@attrs.frozen
class SlaClock:
    """One SLA clock of one ticket, as it stands at the moment of evaluation.

    Attributes:
        metric: What it measures.
        target: The business time allowed.
        started_at: When the clock started.
        deadline: When the target is breached if the clock keeps running; ``None`` while
            paused (the deadline moves by the business time the pause will last).
        stopped_at: When the clock stopped (the response or the resolution), if it did.
        elapsed: Business time counted so far (pauses excluded); never negative.
        remaining: Business time left before the deadline; negative once breached.
        status: Running, warning, paused, met or breached.
    """

    metric: SlaMetric
    target: timedelta
    started_at: datetime
    deadline: datetime | None
    stopped_at: datetime | None
    elapsed: timedelta
    remaining: timedelta
    status: SlaStatus


@attrs.frozen
class SlaReport:
    """Every SLA clock of one ticket, and the events that became due since the previous report.

    Attributes:
        ticket_id: The ticket's id.
        policy: The policy's name.
        clocks: One clock per metric with a target for this ticket.
        events: New :class:`SlaWarning` and :class:`SlaBreached` events (each raised once:
            a report given as ``previous`` suppresses what it already raised).
    """

    ticket_id: str
    policy: str
    clocks: tuple[SlaClock, ...]
    events: tuple[DomainEvent, ...] = ()

    def clock(self, metric: SlaMetric | str) -> SlaClock | None:
        """Return the clock of a metric, or ``None`` when the ticket has no target for it."""
        return next((clock for clock in self.clocks if clock.metric == metric), None)

    @property
    def breached(self) -> frozenset[SlaMetric]:
        """The metrics whose targets were missed."""
        return frozenset(clock.metric for clock in self.clocks if clock.status is SlaStatus.BREACHED)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (without the events), to keep as the ``previous`` of the next evaluation.

        Store it beside the ticket (in ``tx.state``, say) so a breach stays breached across processes.
        """
        return {
            "ticket_id": self.ticket_id,
            "policy": self.policy,
            "clocks": [
                {
                    "metric": clock.metric.value,
                    "target_us": clock.target // _US,
                    "started_at": clock.started_at.isoformat(),
                    "deadline": clock.deadline.isoformat() if clock.deadline is not None else None,
                    "stopped_at": clock.stopped_at.isoformat() if clock.stopped_at is not None else None,
                    "elapsed_us": clock.elapsed // _US,
                    "remaining_us": clock.remaining // _US,
                    "status": clock.status.value,
                }
                for clock in self.clocks
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> SlaReport:
        """Read a report written by :meth:`to_json`.

        Raises:
            ValidationError: If the data is malformed, naming the path.
        """
        try:
            clocks = tuple(
                SlaClock(
                    SlaMetric(item["metric"]),
                    timedelta(microseconds=item["target_us"]),
                    datetime.fromisoformat(item["started_at"]),
                    _moment(item["deadline"]),
                    _moment(item["stopped_at"]),
                    timedelta(microseconds=item["elapsed_us"]),
                    timedelta(microseconds=item["remaining_us"]),
                    SlaStatus(item["status"]),
                )
                for item in data["clocks"]
            )
            return cls(str(data["ticket_id"]), str(data["policy"]), clocks)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"not an SLA report: {exc!r}"
            raise ValidationError.single("", msg) from None


@attrs.frozen
class SlaPolicy:
    """Service-level targets for tickets, measured in a business-hours calendar.

    For each metric the first target that applies to the ticket's priority and the
    customer's tier is used, so list specific targets before general ones.

    Attributes:
        name: The policy's name, recorded in its events.
        calendar: The business hours the targets are measured in.
        targets: The targets, most specific first.
        pause_stages: Ticket stages in which the clocks stop (waiting on the customer).
        warn_before: Warn when this much business time (or less) is left, unless a
            target says otherwise; ``None`` for no warning.

    Raises:
        RuleError: For a bad target, duration or calendar; ``path`` names the node
            (``"targets[2].within"``).
    """

    name: str = attrs.field(converter=_policy_name)
    calendar: BusinessCalendar = attrs.field(converter=_calendar)
    targets: tuple[SlaTarget, ...] = attrs.field(converter=_targets)
    pause_stages: frozenset[str] = attrs.field(
        default=frozenset({"pending"}), kw_only=True, converter=_stages
    )
    warn_before: timedelta | None = attrs.field(default=None, kw_only=True, converter=_warn_before)

    def target_for(
        self, metric: SlaMetric | str, priority: Priority | str, tier: str | None = None
    ) -> SlaTarget | None:
        """Return the first target for ``metric`` that applies to the priority and tier."""
        wanted, level = SlaMetric(metric), Priority(priority)
        return next(
            (target for target in self.targets if target.metric is wanted and target.applies_to(level, tier)),
            None,
        )

    def pauses(self, ticket: Ticket, now: datetime) -> list[tuple[datetime, datetime | None]]:
        """The spans the ticket spent in a pause stage, oldest first; an ongoing one ends in ``None``."""
        spans: list[tuple[datetime, datetime | None]] = []
        history = ticket.stage_history
        if not history and ticket.stage in self.pause_stages:
            return [(ticket.created_at, None)]
        if history and history[0].from_stage in self.pause_stages:
            spans.append((ticket.created_at, history[0].at))
        for index, change in enumerate(history):
            if change.to_stage in self.pause_stages:
                end = history[index + 1].at if index + 1 < len(history) else None
                spans.append((change.at, end))
        return [(start, end) for start, end in spans if start <= now]

    def deadline(
        self,
        start: datetime,
        target: timedelta,
        pauses: Iterable[tuple[datetime, datetime | None]] = (),
    ) -> datetime | None:
        """Return when ``target`` of unpaused business time has elapsed after ``start``.

        Each pause that begins before the deadline moves it by the pause's business
        time (zero for a pause over a weekend); ``None`` while a pause is ongoing.
        """
        deadline = self.calendar.add_business_time(start, target)
        for pause_start, pause_end in sorted(pauses, key=lambda span: span[0]):
            if pause_end is not None and pause_end <= start:
                continue
            begin = max(pause_start, start)
            if begin >= deadline:
                break
            if pause_end is None:
                return None
            deadline = self.calendar.add_business_time(
                deadline, self.calendar.business_time_between(begin, pause_end)
            )
        return deadline

    def evaluate(
        self,
        ticket: Ticket,
        *,
        now: datetime,
        tier: str | None = None,
        awaiting_reply_since: datetime | None = None,
        previous: SlaReport | None = None,
    ) -> SlaReport:
        """Measure every SLA clock of a ticket at ``now`` and say which events became due.

        Args:
            ticket: The ticket, with its stage history (for the pauses),
                ``first_response_at`` and ``resolved_at``.
            now: The moment of evaluation; timezone-aware.
            tier: The customer's tier, for tier-specific targets.
            awaiting_reply_since: When the customer's oldest unanswered message came in
                after the first response; starts the next-response clock.
            previous: The report of the last evaluation: its breaches stay breached and
                its events are not raised again.

        Raises:
            ValidationError: If ``now`` or ``awaiting_reply_since`` is naive.
        """
        if not isinstance(now, datetime) or now.utcoffset() is None:
            raise ValidationError.single("now", "must be a timezone-aware datetime")
        if awaiting_reply_since is not None and awaiting_reply_since.utcoffset() is None:
            raise ValidationError.single("awaiting_reply_since", "must be a timezone-aware datetime")
        pauses = self.pauses(ticket, now)
        spans = [
            (ticket.created_at, ticket.first_response_at, SlaMetric.FIRST_RESPONSE),
            (awaiting_reply_since, None, SlaMetric.NEXT_RESPONSE),
            (ticket.created_at, ticket.resolved_at, SlaMetric.RESOLUTION),
        ]
        clocks = []
        for start, stop, metric in spans:
            target = self.target_for(metric, ticket.priority, tier)
            if target is None or start is None:
                continue
            old = previous.clock(metric) if previous is not None else None
            sticky = old is not None and old.status is SlaStatus.BREACHED
            clocks.append(self._clock(metric, target, start, stop, pauses=pauses, now=now, sticky=sticky))
        return SlaReport(ticket.id, self.name, tuple(clocks), self._events(ticket, clocks, previous, now))

    def _clock(
        self,
        metric: SlaMetric,
        target: SlaTarget,
        start: datetime,
        stop: datetime | None,
        *,
        pauses: list[tuple[datetime, datetime | None]],
        now: datetime,
        sticky: bool,
    ) -> SlaClock:
        end = min(stop, now) if stop is not None else now
        deadline = self.deadline(start, target.within, pauses)
        closed = [(begin, finish if finish is not None else end) for begin, finish in pauses]
        elapsed = business_elapsed(self.calendar, start, end, closed)
        remaining = target.within - elapsed
        warn = target.warn_before if target.warn_before is not None else self.warn_before
        ongoing_pause = any(finish is None and begin <= end for begin, finish in pauses)
        if stop is not None and stop <= now:
            status = SlaStatus.MET if deadline is not None and stop <= deadline else SlaStatus.BREACHED
        elif deadline is not None and now >= deadline:
            status = SlaStatus.BREACHED
        elif ongoing_pause:
            status = SlaStatus.PAUSED
        elif warn is not None and remaining <= warn:
            status = SlaStatus.WARNING
        else:
            status = SlaStatus.RUNNING
        if sticky:
            status = SlaStatus.BREACHED
        return SlaClock(metric, target.within, start, deadline, stop, elapsed, remaining, status)

    def _events(
        self, ticket: Ticket, clocks: list[SlaClock], previous: SlaReport | None, now: datetime
    ) -> tuple[DomainEvent, ...]:
        ref = EntityRef("ticket", ticket.id)
        events: list[DomainEvent] = []
        for clock in clocks:
            before = previous.clock(clock.metric) if previous is not None else None
            was = before.status if before is not None else None
            if clock.status is SlaStatus.BREACHED and was is not SlaStatus.BREACHED:
                deadline = clock.deadline or now
                events.append(
                    SlaBreached(
                        entity=ref,
                        at=max(deadline, clock.started_at),
                        policy=self.name,
                        metric=clock.metric.value,
                        deadline=deadline,
                    )
                )
            elif clock.status is SlaStatus.WARNING and was not in {SlaStatus.WARNING, SlaStatus.BREACHED}:
                assert clock.deadline is not None  # noqa: S101 - a warning always has a deadline
                events.append(
                    SlaWarning(
                        entity=ref,
                        at=now,
                        policy=self.name,
                        metric=clock.metric.value,
                        deadline=clock.deadline,
                    )
                )
        return tuple(events)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form; :meth:`from_json` reads it back to an equal policy."""
        data: dict[str, Any] = {
            "name": self.name,
            "calendar": self.calendar.to_json(),
            "targets": [target.to_json() for target in self.targets],
            "pause_stages": sorted(self.pause_stages),
        }
        if self.warn_before is not None:
            data["warn_before"] = format_duration(self.warn_before)
        return data

    @classmethod
    def from_json(cls, data: Any) -> SlaPolicy:
        """Build and check a policy from its JSON form.

        Raises:
            RuleError: If the data is malformed; ``path`` points at the problem.
        """
        keys = {"name", "calendar", "targets", "pause_stages", "warn_before"}
        read_object(data, keys, ("name", "calendar", "targets"))
        return cls(
            data["name"],
            data["calendar"],
            data["targets"],
            pause_stages=data.get("pause_stages", ("pending",)),
            warn_before=data.get("warn_before"),
        )
