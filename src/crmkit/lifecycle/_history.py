"""Reading a record's stage history: how long it spent in each stage (private)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmkit.clock import get_clock
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit.clock import Clock
    from crmkit.entities import Entity

__all__ = ["stage_periods", "time_in_stage"]


def stage_periods(entity: Entity, *, as_of: datetime | None = None) -> list[tuple[str, datetime, datetime]]:
    """Return ``(stage, entered, left)`` for every stay of the record, oldest first, up to ``as_of``.

    The first stay starts at ``created_at`` (or at the first change when it has no
    ``from_stage``); the current stay ends at ``as_of`` (the current clock's time by
    default). Stays after ``as_of`` are left out and a stay spanning it is cut there,
    so the answer is the history as it stood on that date.

    Raises:
        ValidationError: If ``as_of`` is naive.
    """
    moment = _moment(as_of, None)
    record: Any = entity
    history = record.stage_history
    periods: list[tuple[str, datetime, datetime]] = []
    if not history:
        periods.append((record.stage, record.created_at, moment))
    else:
        first = history[0]
        if first.from_stage is not None:
            periods.append((first.from_stage, record.created_at, first.at))
        for index, change in enumerate(history):
            left = history[index + 1].at if index + 1 < len(history) else moment
            periods.append((change.to_stage, change.at, left))
    return [(stage, start, min(end, moment)) for stage, start, end in periods if start <= moment]


def time_in_stage(
    entity: Entity, *, as_of: datetime | None = None, clock: Clock | None = None
) -> dict[str, timedelta]:
    """Return the total time the record spent in each stage it has been in, up to ``as_of``.

    A stage entered several times (a recycled lead, a reopened ticket) adds up its stays.
    Stages appear in the order they were first entered.

    Args:
        entity: A record with ``stage`` and ``stage_history`` (lead, opportunity, ticket, contact).
        as_of: The moment to measure at; timezone-aware. Defaults to ``clock``'s time.
        clock: Where "now" comes from when ``as_of`` is not given; the current clock by default.

    Raises:
        ValidationError: If ``as_of`` is naive.
    """
    totals: dict[str, timedelta] = {}
    for stage, start, end in stage_periods(entity, as_of=_moment(as_of, clock)):
        totals[stage] = totals.get(stage, timedelta()) + max(end - start, timedelta())
    return totals


def _moment(as_of: datetime | None, clock: Clock | None) -> datetime:
    if as_of is None:
        return (clock or get_clock()).now()
    if not isinstance(as_of, datetime) or as_of.utcoffset() is None:
        msg = "must be a timezone-aware datetime"
        raise ValidationError.single("as_of", msg)
    return as_of
