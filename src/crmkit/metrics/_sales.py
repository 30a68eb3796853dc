"""Sales metrics: win rate, deal size, cycle, velocity, weighted pipeline, forecast, coverage.

A stage's meaning (open, won, lost), its default probability and its forecast category come from a
:class:`~crmkit.lifecycle.Lifecycle` (the built-in opportunity lifecycle by default). Stages are read
from the stage history as it stood at ``as_of``, so every number can be recomputed for a past date.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from crmkit.errors import ValidationError
from crmkit.lifecycle import OPPORTUNITY_LIFECYCLE, ForecastCategory, Lifecycle, StageCategory, stage_periods
from crmkit.metrics._currency import Converter, ExchangeRates
from crmkit.metrics._periods import PeriodRange, Result, Table, check_aware, median_time

if TYPE_CHECKING:
    from collections.abc import Iterable

    from crmkit.entities import Opportunity

__all__ = [
    "ForecastRow",
    "PipelineRow",
    "SalesSummary",
    "forecast_by_category",
    "pipeline_coverage",
    "sales_summary",
    "weighted_pipeline",
]


def _categories(lifecycle: Lifecycle) -> dict[str, StageCategory]:
    return {stage.name: stage.category for stage in lifecycle.stages}


def _closing(
    opportunity: Opportunity, as_of: datetime, categories: dict[str, StageCategory]
) -> tuple[StageCategory, datetime] | None:
    """Whether and when the deal was first won or lost, by ``as_of``."""
    for stage, entered, _left in stage_periods(opportunity, as_of=as_of):
        category = categories.get(stage, StageCategory.OPEN)
        if category in {StageCategory.WON, StageCategory.LOST}:
            when = (
                opportunity.closed_at if not opportunity.stage_history and opportunity.closed_at else entered
            )
            return category, when
    return None


def _stage_at(opportunity: Opportunity, as_of: datetime) -> str | None:
    stays = stage_periods(opportunity, as_of=as_of)
    return stays[-1][0] if stays else None


@attrs.frozen
class SalesSummary(Result):
    """The sales numbers of one period.

    Attributes:
        won: Deals won in the period.
        lost: Deals lost in the period.
        win_rate: won / (won + lost); ``None`` when none closed.
        average_deal_size: Mean amount of the deals won; ``None`` when none was won.
        sales_cycle_days: Median days from creation to won, over the deals won; ``None`` when none.
        average_cycle_days: Mean days from creation to won; ``None`` when none.
        open_opportunities: Deals open at ``as_of``.
        sales_velocity: open opportunities x win rate x average deal size / average cycle days (revenue
            per day); ``None`` when a part is missing or the cycle is 0.
        currency: The reporting currency.
    """

    won: int
    lost: int
    win_rate: Decimal | None
    average_deal_size: Decimal | None
    sales_cycle_days: Decimal | None
    average_cycle_days: Decimal | None
    open_opportunities: int
    sales_velocity: Decimal | None
    currency: str


def _days(delta: timedelta) -> Decimal:
    return Decimal(delta.days) + Decimal(delta.seconds + delta.microseconds / 1_000_000) / 86_400


def sales_summary(
    opportunities: Iterable[Opportunity],
    *,
    start: datetime,
    end: datetime,
    as_of: datetime,
    currency: str,
    rates: ExchangeRates | None = None,
    lifecycle: Lifecycle = OPPORTUNITY_LIFECYCLE,
) -> SalesSummary:
    """Win rate, average deal size, sales cycle and sales velocity of the deals closed in ``[start, end)``.

    - **Win rate** = won / (won + lost), deals closed in the period
    - **Average deal size** = mean amount of the deals won in the period
    - **Sales cycle** = median days from creation to won
    - **Sales velocity** = open opportunities x win rate x average deal size / average cycle days

    A deal closes when it first enters a won or lost stage of ``lifecycle`` (by its history as of
    ``as_of``); amounts convert to ``currency`` at the rate of the closing day.

    Raises:
        ValidationError: For a naive or inverted period.
        CurrencyMismatch: For an amount in another currency without a rate.
    """
    start, end, as_of = check_aware(start, "start"), check_aware(end, "end"), check_aware(as_of, "as_of")
    if end < start:
        raise ValidationError.single("end", "must not be before start")
    converter = Converter(currency, rates)
    categories = _categories(lifecycle)
    won = lost = still_open = 0
    amounts: list[Decimal] = []
    cycles: list[timedelta] = []
    for index, opportunity in enumerate(opportunities):
        closing = _closing(opportunity, as_of, categories)
        if closing is None:
            stage = _stage_at(opportunity, as_of)
            if stage is not None and categories.get(stage, StageCategory.OPEN) is StageCategory.OPEN:
                still_open += 1
            continue
        category, when = closing
        if not start <= when < end:
            continue
        if category is StageCategory.LOST:
            lost += 1
            continue
        won += 1
        cycles.append(when - opportunity.created_at)
        if opportunity.amount is not None:
            amounts.append(converter.amount(opportunity.amount, when, f"opportunities[{index}].amount"))
    win_rate = Decimal(won) / (won + lost) if won + lost else None
    deal_size = sum(amounts, Decimal(0)) / len(amounts) if amounts else None
    median = median_time(cycles)
    mean_days = sum((_days(c) for c in cycles), Decimal(0)) / len(cycles) if cycles else None
    velocity = None
    if win_rate is not None and deal_size is not None and mean_days:
        velocity = still_open * win_rate * deal_size / mean_days
    return SalesSummary(
        won,
        lost,
        win_rate,
        deal_size,
        None if median is None else _days(median),
        mean_days,
        still_open,
        velocity,
        converter.currency,
    )


@attrs.frozen
class PipelineRow(Result):
    """The open pipeline expected to close in one period.

    Attributes:
        period: The period's label.
        opportunities: Open deals expected to close in the period.
        amount: Their total amount.
        weighted_amount: Sum of amount x probability (the deal's own, else its stage's).
        currency: The reporting currency.
    """

    period: str
    opportunities: int
    amount: Decimal
    weighted_amount: Decimal
    currency: str


def weighted_pipeline(
    opportunities: Iterable[Opportunity],
    *,
    periods: PeriodRange,
    as_of: datetime,
    currency: str,
    rates: ExchangeRates | None = None,
    lifecycle: Lifecycle = OPPORTUNITY_LIFECYCLE,
) -> Table[PipelineRow]:
    """Weighted pipeline by expected close period.

    **Weighted pipeline** = sum of amount x stage probability of the deals open at ``as_of``, grouped by
    the period of their ``expected_close``. A deal's own ``probability`` wins over its stage's default;
    deals without amount or expected close, or expected to close outside the periods, are left out. A
    stage the lifecycle does not know counts as open, weighted by the deal's own probability (0 without).
    Amounts convert at the rate of ``as_of``.

    Raises:
        ValidationError: For a naive ``as_of``.
        CurrencyMismatch: For an amount in another currency without a rate.
    """
    as_of = check_aware(as_of, "as_of")
    converter = Converter(currency, rates)
    by_name = {stage.name: stage for stage in lifecycle.stages}
    count = len(periods)
    deals, totals, weighted = [0] * count, [Decimal(0)] * count, [Decimal(0)] * count
    for index, opportunity in enumerate(opportunities):
        stage_name = _stage_at(opportunity, as_of)
        stage = by_name.get(stage_name or "")
        if stage_name is None or (stage is not None and not stage.is_open):
            continue
        if opportunity.amount is None or opportunity.expected_close is None:
            continue
        i = periods.index_of(opportunity.expected_close)
        if i is None:
            continue
        probability = opportunity.probability
        if probability is None:
            probability = (
                stage.probability if stage is not None and stage.probability is not None else Decimal(0)
            )
        amount = converter.amount(opportunity.amount, as_of, f"opportunities[{index}].amount")
        deals[i] += 1
        totals[i] += amount
        weighted[i] += amount * probability
    rows = [
        PipelineRow(label, deals[i], totals[i], weighted[i], converter.currency)
        for i, label in enumerate(periods.labels)
    ]
    return Table(tuple(rows))


@attrs.frozen
class ForecastRow(Result):
    """The amounts of one forecast category in a close period.

    Attributes:
        category: The forecast category (pipeline, best case, commit, closed, omitted).
        opportunities: Deals in it.
        amount: Their amount: closed deals count what they were won for.
        currency: The reporting currency.
    """

    category: ForecastCategory
    opportunities: int
    amount: Decimal
    currency: str


def forecast_by_category(
    opportunities: Iterable[Opportunity],
    *,
    start: datetime,
    end: datetime,
    as_of: datetime,
    currency: str,
    rates: ExchangeRates | None = None,
    lifecycle: Lifecycle = OPPORTUNITY_LIFECYCLE,
) -> Table[ForecastRow]:
    """The forecast for a close period, by forecast category.

    Open deals count in their stage's forecast category when their ``expected_close`` day (its midnight
    in ``start``'s time zone) falls in ``[start, end)``; won deals count as ``closed`` when they were won
    in that period; lost deals are left out. Every category appears, in the order pipeline, best case,
    commit, closed, omitted.

    Raises:
        ValidationError: For a naive or inverted period.
        CurrencyMismatch: For an amount in another currency without a rate.
    """
    start, end, as_of = check_aware(start, "start"), check_aware(end, "end"), check_aware(as_of, "as_of")
    if end < start:
        raise ValidationError.single("end", "must not be before start")
    converter = Converter(currency, rates)
    by_name = {stage.name: stage for stage in lifecycle.stages}
    categories = _categories(lifecycle)
    counts = dict.fromkeys(ForecastCategory, 0)
    totals = dict.fromkeys(ForecastCategory, Decimal(0))
    for index, opportunity in enumerate(opportunities):
        if opportunity.amount is None:
            continue
        where = f"opportunities[{index}].amount"
        closing = _closing(opportunity, as_of, categories)
        if closing is not None:
            category, when = closing
            if category is StageCategory.WON and start <= when < end:
                counts[ForecastCategory.CLOSED] += 1
                totals[ForecastCategory.CLOSED] += converter.amount(opportunity.amount, when, where)
            continue
        stage = by_name.get(_stage_at(opportunity, as_of) or "")
        close = opportunity.expected_close
        if stage is None or stage.forecast is None or close is None:
            continue
        if not start <= datetime.combine(close, time(), start.tzinfo) < end:
            continue
        counts[stage.forecast] += 1
        totals[stage.forecast] += converter.amount(opportunity.amount, as_of, where)
    rows = [
        ForecastRow(category, counts[category], totals[category], converter.currency)
        for category in ForecastCategory
    ]
    return Table(tuple(rows))


def pipeline_coverage(pipeline: Decimal, quota: Decimal) -> Decimal | None:
    """Pipeline coverage = open pipeline amount for the period / quota for the period.

    Args:
        pipeline: The open pipeline expected to close in the period (a :class:`PipelineRow` ``amount``).
        quota: The sales target of the period, in the same currency.

    Returns:
        The coverage (3 means three times the quota), or ``None`` when the quota is 0.

    Raises:
        ValidationError: For a negative quota.
    """
    if quota < 0:
        raise ValidationError.single("quota", f"must not be negative, got {quota}")
    return pipeline / quota if quota else None
