"""The funnel from stage history: stage conversion (cohort view), drop-off, time in stage, lead velocity.

Records are anything with a ``stage``, a ``stage_history`` and a ``created_at``: leads, opportunities,
tickets, contacts. Their stays are read with :func:`crmkit.lifecycle.stage_periods`, as they stood at
``as_of``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from crmkit.errors import ValidationError
from crmkit.lifecycle import stage_periods
from crmkit.metrics._periods import PeriodRange, Result, Table, check_aware, median_time, ratio

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from crmkit.entities import Entity

__all__ = ["FunnelStep", "StageTime", "VelocityRow", "funnel", "lead_velocity", "stage_times"]


@attrs.frozen
class FunnelStep(Result):
    """One stage of a funnel, for the cohort that entered its first stage in the period.

    Attributes:
        stage: The stage.
        reached: Records of the cohort that reached this stage, after each earlier stage in order.
        conversion_rate: reached / reached at the previous stage (1.0 for the first stage); ``None``
            when nobody reached the previous stage.
        drop_off: 1 - conversion rate; ``None`` likewise.
        median_time: Median time from entering the previous stage to entering this one, over the records
            that did; ``None`` for the first stage or when nobody did.
    """

    stage: str
    reached: int
    conversion_rate: float | None
    drop_off: float | None
    median_time: timedelta | None


def _entries(record: Entity, as_of: datetime) -> list[tuple[str, datetime]]:
    return [(stage, entered) for stage, entered, _left in stage_periods(record, as_of=as_of)]


def _window(start: datetime, end: datetime, as_of: datetime) -> tuple[datetime, datetime, datetime]:
    start, end, as_of = check_aware(start, "start"), check_aware(end, "end"), check_aware(as_of, "as_of")
    if end < start:
        raise ValidationError.single("end", "must not be before start")
    return start, end, as_of


def funnel(
    records: Iterable[Entity],
    stages: Sequence[str],
    *,
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> Table[FunnelStep]:
    """Stage-to-stage conversion for the cohort that entered the first stage in ``[start, end)``.

    The cohort is every record whose first entry into ``stages[0]`` falls in the period. A record
    reaches stage k when it enters it at or after entering stage k - 1 (its first such entry), by
    ``as_of``. **Conversion rate** (stage k-1 -> k) = cohort records that reached k / cohort records that
    reached k - 1; **drop-off** = 1 - conversion rate; **median time** = the median time between the two
    entries.

    Args:
        records: Leads, opportunities, tickets or contacts.
        stages: The stages in funnel order, at least two.
        start: The cohort period's start (included).
        end: Its end (excluded).
        as_of: The moment the histories are read at (later changes are ignored).

    Raises:
        ValidationError: For fewer than two stages or a naive or inverted period.
    """
    if len(stages) < 2:  # noqa: PLR2004 - a funnel needs a step
        raise ValidationError.single("stages", "a funnel needs at least two stages")
    start, end, as_of = _window(start, end, as_of)
    reached = [0] * len(stages)
    times: list[list[timedelta]] = [[] for _ in stages]
    for record in records:
        entries = _entries(record, as_of)
        entered = next((at for stage, at in entries if stage == stages[0]), None)
        if entered is None or not start <= entered < end:
            continue
        reached[0] += 1
        for k in range(1, len(stages)):
            nxt = next((at for stage, at in entries if stage == stages[k] and at >= entered), None)
            if nxt is None:
                break
            reached[k] += 1
            times[k].append(nxt - entered)
            entered = nxt
    steps = [
        FunnelStep(stages[0], reached[0], 1.0 if reached[0] else None, 0.0 if reached[0] else None, None)
    ]
    for k in range(1, len(stages)):
        rate = ratio(reached[k], reached[k - 1])
        median = median_time(times[k])
        steps.append(FunnelStep(stages[k], reached[k], rate, None if rate is None else 1 - rate, median))
    return Table(tuple(steps))


@attrs.frozen
class StageTime(Result):
    """How long records stayed in a stage.

    Attributes:
        stage: The stage.
        stays: Completed stays that began in the period (a record entering twice counts twice).
        median: The median length of those stays; ``None`` without any.
        mean: Their mean length; ``None`` without any.
        open_stays: Stays that began in the period and were still going on at ``as_of``.
    """

    stage: str
    stays: int
    median: timedelta | None
    mean: timedelta | None
    open_stays: int


def stage_times(
    records: Iterable[Entity],
    stage: str,
    *,
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> StageTime:
    """Time in stage: the lengths of the completed stays in ``stage`` that began in ``[start, end)``.

    A stay is completed when the record left the stage by ``as_of``; the stay still going on at
    ``as_of`` is counted apart (``open_stays``), since its length is not known yet.

    Raises:
        ValidationError: For a naive or inverted period.
    """
    start, end, as_of = _window(start, end, as_of)
    lengths: list[timedelta] = []
    still_open = 0
    for record in records:
        stays = stage_periods(record, as_of=as_of)
        for index, (name, entered, left) in enumerate(stays):
            if name != stage or not start <= entered < end:
                continue
            if index == len(stays) - 1:
                still_open += 1
            else:
                lengths.append(left - entered)
    if not lengths:
        return StageTime(stage, 0, None, None, still_open)
    mean = sum(lengths, timedelta()) / len(lengths)
    return StageTime(stage, len(lengths), median_time(lengths), mean, still_open)


@attrs.frozen
class VelocityRow(Result):
    """Lead velocity of one period.

    Attributes:
        period: The period's label.
        entered: Records that first entered the stage in the period.
        previous: Records that first entered it in the period before.
        velocity: (entered - previous) / previous, the growth rate; ``None`` when previous is 0.
    """

    period: str
    entered: int
    previous: int
    velocity: float | None


def lead_velocity(
    records: Iterable[Entity],
    *,
    periods: PeriodRange,
    stage: str = "qualified",
    as_of: datetime,
) -> Table[VelocityRow]:
    """Lead velocity rate per period: the growth of the records entering ``stage``, period on period.

    **Lead velocity rate** = (entered this period - entered last period) / entered last period, counting
    each record's first entry into ``stage`` (qualified leads, by default) by ``as_of``.

    Args:
        records: Leads (or any records with stage history).
        periods: The reporting periods; the period before the first is counted too, as its base.
        stage: The stage whose entries are counted.
        as_of: The moment the histories are read at.

    Raises:
        ValidationError: For a naive ``as_of``.
    """
    as_of = check_aware(as_of, "as_of")
    first_day = periods.firsts[0]
    widened = PeriodRange(
        periods.period, first_day.fromordinal(first_day.toordinal() - 1), periods.end, periods.tz
    )
    counts = [0] * len(widened)
    for record in records:
        entered = next((at for name, at in _entries(record, as_of) if name == stage), None)
        if entered is None:
            continue
        i = widened.index_of(entered.astimezone(periods.tz).date())
        if i is not None:
            counts[i] += 1
    rows = [
        VelocityRow(label, counts[i + 1], counts[i], ratio(counts[i + 1] - counts[i], counts[i]))
        for i, label in enumerate(periods.labels)
    ]
    return Table(tuple(rows))
