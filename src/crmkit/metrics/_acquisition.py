"""Acquisition beyond CAC: cost per lead, lead-to-customer conversion and marketing ROI."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import attrs

from crmkit.errors import ValidationError
from crmkit.metrics._currency import Converter, ExchangeRates
from crmkit.metrics._inputs import as_rows
from crmkit.metrics._periods import PeriodRange, Result, Table, check_aware, median_time, ratio

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from crmkit.entities import Lead, Order
    from crmkit.metrics._customers import SpendRow
    from crmkit.segmentation import OrderRow

__all__ = [
    "CostPerLeadRow",
    "LeadConversion",
    "RoiRow",
    "cost_per_lead",
    "lead_conversion",
    "marketing_roi",
]

Attribution = Literal["channel", "campaign"]


def _check_by(by: object) -> None:
    if by not in {None, "channel", "campaign"}:
        raise ValidationError.single("by", f"must be None, 'channel' or 'campaign', got {by!r}")


def _spend_key(row: SpendRow, by: Attribution | None) -> str | None:
    if by is None:
        return None
    return row.channel if by == "channel" else row.campaign_id


@attrs.frozen
class CostPerLeadRow(Result):
    """Cost per lead of one period (and one channel or campaign).

    Attributes:
        period: The period's label.
        key: The channel or campaign (``None``: all, or those without one).
        spend: Spend in the period, in the reporting currency.
        leads: Leads created in the period (credited to ``key``).
        cost_per_lead: spend / leads; ``None`` without leads.
        currency: The reporting currency.
    """

    period: str
    key: str | None
    spend: Decimal
    leads: int
    cost_per_lead: Decimal | None
    currency: str


def cost_per_lead(
    leads: Iterable[Lead],
    spend: Iterable[SpendRow],
    *,
    periods: PeriodRange,
    currency: str,
    by: Attribution | None = None,
    rates: ExchangeRates | None = None,
) -> Table[CostPerLeadRow]:
    """Cost per lead = spend in the period / leads created in the period.

    Per channel, a lead counts for its ``source``; per campaign, for its ``campaign_id``.

    Args:
        leads: The leads.
        spend: The spend rows.
        periods: The reporting periods (a lead counts in the period of its ``created_at``).
        currency: The reporting currency.
        by: ``None``, ``"channel"`` or ``"campaign"``.
        rates: Exchange rates for spend in other currencies.

    Raises:
        CurrencyMismatch: For spend in another currency without a rate.
        ValidationError: For an unknown ``by``.
    """
    _check_by(by)
    converter = Converter(currency, rates)
    counts: dict[tuple[int, Any], int] = {}
    for lead in leads:
        i = periods.index_of(lead.created_at.astimezone(periods.tz).date())
        if i is None:
            continue
        key = None if by is None else (lead.source.value if by == "channel" and lead.source else None)
        if by == "campaign":
            key = lead.campaign_id
        counts[i, key] = counts.get((i, key), 0) + 1
    spent = _spend_by_period(spend, periods, by, converter)
    keys = sorted({key for _, key in (*spent, *counts)}, key=lambda k: (k is not None, k or ""))
    rows = []
    for i, label in enumerate(periods.labels):
        for key in keys:
            amount, n = spent.get((i, key), Decimal(0)), counts.get((i, key), 0)
            rows.append(CostPerLeadRow(label, key, amount, n, amount / n if n else None, converter.currency))
    return Table(tuple(rows))


def _spend_by_period(
    spend: Iterable[SpendRow], periods: PeriodRange, by: Attribution | None, converter: Converter
) -> dict[tuple[int, Any], Decimal]:
    spent: dict[tuple[int, Any], Decimal] = {}
    for index, row in enumerate(spend):
        i = periods.index_of(row.spent_on)
        if i is None:
            continue
        key = _spend_key(row, by)
        amount = converter.amount(row.amount, row.spent_on, f"spend[{index}].amount")
        spent[i, key] = spent.get((i, key), Decimal(0)) + amount
    return spent


@attrs.frozen
class LeadConversion(Result):
    """Lead-to-customer conversion for the leads created in a period (cohort view).

    Attributes:
        key: The source or campaign (``None``: all leads, or those without one).
        leads: Leads created in the period.
        converted: Of those, the leads converted by ``as_of``.
        conversion_rate: converted / leads; ``None`` without leads.
        median_time_to_convert: Median time from creation to conversion; ``None`` when none converted.
    """

    key: str | None
    leads: int
    converted: int
    conversion_rate: float | None
    median_time_to_convert: timedelta | None


def lead_conversion(
    leads: Iterable[Lead],
    *,
    start: datetime,
    end: datetime,
    as_of: datetime,
    by: Literal["source", "campaign"] | None = None,
) -> Table[LeadConversion]:
    """Lead-to-customer conversion, cohort view.

    Conversion rate = leads created in ``[start, end)`` converted by ``as_of`` / leads created in
    ``[start, end)``.

    Args:
        leads: The leads (a lead is converted when its ``converted_at`` is set and not after ``as_of``).
        start: The cohort period's start (included).
        end: Its end (excluded).
        as_of: Conversions after it are not counted.
        by: ``None`` for one row, or one row per ``"source"`` or ``"campaign"``.

    Raises:
        ValidationError: For a naive or inverted period or an unknown ``by``.
    """
    start, end, as_of = check_aware(start, "start"), check_aware(end, "end"), check_aware(as_of, "as_of")
    if end < start:
        raise ValidationError.single("end", "must not be before start")
    if by not in {None, "source", "campaign"}:
        raise ValidationError.single("by", f"must be None, 'source' or 'campaign', got {by!r}")
    key_of: Callable[[Lead], str | None] = _no_key
    if by == "source":
        key_of = _source
    elif by == "campaign":
        key_of = _campaign
    cohorts: dict[str | None, list[Any]] = {}
    for lead in leads:
        if not start <= lead.created_at < end:
            continue
        cohort = cohorts.setdefault(key_of(lead), [0, []])
        cohort[0] += 1
        if lead.converted_at is not None and lead.converted_at <= as_of:
            cohort[1].append(lead.converted_at - lead.created_at)
    rows = []
    for key in sorted(cohorts, key=lambda k: (k is not None, k or "")):
        total, times = cohorts[key]
        median = median_time(times)
        rows.append(LeadConversion(key, total, len(times), ratio(len(times), total), median))
    if not rows and by is None:
        rows.append(LeadConversion(None, 0, 0, None, None))
    return Table(tuple(rows))


def _no_key(_lead: Lead) -> None:
    return None


def _source(lead: Lead) -> str | None:
    return lead.source.value if lead.source is not None else None


def _campaign(lead: Lead) -> str | None:
    return lead.campaign_id


@attrs.frozen
class RoiRow(Result):
    """Marketing return on investment for one channel or campaign.

    Attributes:
        key: The channel or campaign (``None``: all, or revenue and spend without one).
        revenue: Revenue attributed to it (orders credited to its campaigns).
        spend: Its spend.
        roi: (revenue - spend) / spend; ``None`` without spend.
        currency: The reporting currency.
    """

    key: str | None
    revenue: Decimal
    spend: Decimal
    roi: Decimal | None
    currency: str


def marketing_roi(
    orders: Iterable[OrderRow] | Iterable[Order],
    spend: Iterable[SpendRow],
    *,
    start: date,
    end: date,
    currency: str,
    by: Attribution | None = None,
    channels: Mapping[str, str] | None = None,
    rates: ExchangeRates | None = None,
) -> Table[RoiRow]:
    """Marketing ROI = (attributed revenue - spend) / spend, over the days ``start`` to ``end`` (included).

    An order counts on its own calendar day (in its own time zone).

    Attributed revenue is the amount of the orders credited to a campaign (their ``campaign_id``);
    orders without a campaign are not marketing's. Per channel, a campaign's channel is
    ``channels[campaign_id]``.

    Args:
        orders: Order rows (in ``currency``) or entities.
        spend: The spend rows.
        start: The first day.
        end: The last day.
        currency: The reporting currency (of the order rows, and of the spend after conversion).
        by: ``None`` for one row, or one per ``"channel"`` or ``"campaign"``.
        channels: The channel of each campaign id.
        rates: Exchange rates for spend in other currencies.

    Raises:
        CurrencyMismatch: For spend in another currency without a rate.
        ValidationError: For an unknown ``by`` or an inverted range.
    """
    _check_by(by)
    if end < start:
        raise ValidationError.single("end", "must not be before start")
    converter = Converter(currency, rates)
    channel_of = channels or {}
    revenue: dict[str | None, Decimal] = {}
    for row in as_rows(orders):
        campaign = row[4]
        if campaign is None or not start <= row[1].date() <= end:
            continue
        key = None if by is None else (campaign if by == "campaign" else channel_of.get(campaign))
        revenue[key] = revenue.get(key, Decimal(0)) + row[2]
    spent: dict[str | None, Decimal] = {}
    for index, item in enumerate(spend):
        if not start <= item.spent_on <= end:
            continue
        key = _spend_key(item, by)
        spent[key] = spent.get(key, Decimal(0)) + converter.amount(
            item.amount, item.spent_on, f"spend[{index}].amount"
        )
    keys = sorted({*revenue, *spent} or {None}, key=lambda k: (k is not None, k or ""))
    rows = []
    for key in keys:
        income, cost = revenue.get(key, Decimal(0)), spent.get(key, Decimal(0))
        rows.append(RoiRow(key, income, cost, (income - cost) / cost if cost else None, converter.currency))
    return Table(tuple(rows))
