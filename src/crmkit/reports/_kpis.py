"""The KPI summary: every headline number of a CRM, computed by crmkit's metric functions."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Protocol

import attrs

from crmkit.entities import Activity, Campaign, Lead, Opportunity, Order, Ticket
from crmkit.errors import ValidationError
from crmkit.lifecycle import OPPORTUNITY_LIFECYCLE
from crmkit.metrics import (
    FunnelStep,
    PeriodRange,
    PipelineRow,
    ResponseTimes,
    RetentionRow,
    SalesSummary,
    SlaAttainment,
    SpendRow,
    ValueRow,
    customer_base,
    customer_value,
    fit_bg_nbd,
    fit_gamma_gamma,
    funnel,
    historical_clv,
    predictive_clv,
    response_times,
    sales_summary,
    sla_attainment,
    weighted_pipeline,
)
from crmkit.segmentation import (
    DEFAULT_SEGMENT_MAP,
    CampaignMember,
    CampaignResults,
    CohortMatrix,
    Response,
    ResponseKind,
    RfmScore,
    btyd_summary,
    campaign_results,
    cohort_retention,
    order_rows,
    rfm_scores,
)

#: The lead stages the funnel follows.
FUNNEL_STAGES = ("new", "contacted", "qualified", "converted")
#: First-response targets by ticket priority, in business hours, when the settings give none.
DEFAULT_SLA_HOURS: Mapping[str, float] = {"urgent": 1, "high": 4, "normal": 8, "low": 24}
#: Custom fields of an :class:`~crmkit.entities.Activity` that records a campaign response.
VARIANT_FIELD, RESPONSE_FIELD = "variant", "response"


class BusinessHours(Protocol):
    """A business calendar, such as :class:`crmkit.workflows.BusinessCalendar`."""

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The business time from ``start`` to ``end``."""


@attrs.frozen(kw_only=True)
class ReportData:
    """The records a report reads: any iterables of entities, from a store, a file or a list.

    Attributes:
        orders: Orders (the customer is the order's contact).
        leads: Leads, with their stage history.
        opportunities: Deals, with their stage history.
        tickets: Support tickets.
        campaigns: Campaigns: their ``actual_cost`` is acquisition spend on ``starts_at``, credited to
            their ``channel``.
        activities: Activities; those ``regarding`` a campaign with a ``variant`` and a ``response``
            custom field are the campaign's A/B members and responses.
    """

    orders: tuple[Order, ...] = attrs.field(converter=tuple, factory=tuple)
    leads: tuple[Lead, ...] = attrs.field(converter=tuple, factory=tuple)
    opportunities: tuple[Opportunity, ...] = attrs.field(converter=tuple, factory=tuple)
    tickets: tuple[Ticket, ...] = attrs.field(converter=tuple, factory=tuple)
    campaigns: tuple[Campaign, ...] = attrs.field(converter=tuple, factory=tuple)
    activities: tuple[Activity, ...] = attrs.field(converter=tuple, factory=tuple)


class RecordSource(Protocol):
    """Where :meth:`ReportData.read` reads records: a store transaction (``tx[Order].stream()``)."""

    def __getitem__(self, entity_class: Any, /) -> Any:
        """The repository of an entity class."""


def read_data(source: RecordSource) -> ReportData:
    """Read every record a report needs from ``source`` (a store transaction), streaming each kind."""
    return ReportData(
        orders=source[Order].stream(),
        leads=source[Lead].stream(),
        opportunities=source[Opportunity].stream(),
        tickets=source[Ticket].stream(),
        campaigns=source[Campaign].stream(),
        activities=source[Activity].stream(),
    )


@attrs.frozen
class ChannelCac:
    """Customer acquisition cost of one channel over the whole report window.

    Attributes:
        channel: The channel (``None``: spend and customers without one).
        spend: Acquisition spend in the window.
        new_customers: Customers whose first order in the window is credited to the channel.
        cac: spend / new customers; ``None`` without new customers.
    """

    channel: str | None
    spend: Decimal
    new_customers: int
    cac: Decimal | None


@attrs.frozen
class StagePipeline:
    """The open deals in one stage.

    Attributes:
        stage: The stage.
        opportunities: Open deals in it.
        amount: Their total amount.
        weighted_amount: Sum of amount x probability (the deal's own, else the stage's).
    """

    stage: str
    opportunities: int
    amount: Decimal
    weighted_amount: Decimal


@attrs.frozen
class Clv:
    """Lifetime value per customer.

    Attributes:
        average_order_value: Revenue / orders over the window.
        purchase_frequency: Mean orders per buying customer per month.
        monthly_churn: Mean monthly churn rate over the window.
        gross_margin: The margin applied.
        historical_clv: average order value x purchase frequency x gross margin x (1 / churn).
        predictive_clv: Mean 12-month predictive CLV per customer (BG/NBD x Gamma-Gamma, in weeks,
            1 % discount a month, times the margin); ``None`` when the models cannot be fitted.
        probability_alive: Mean BG/NBD probability that a customer is still buying.
        models_converged: Whether both model fits converged (a fit on few customers may not).
    """

    average_order_value: Decimal | None
    purchase_frequency: Decimal | None
    monthly_churn: float | None
    gross_margin: Decimal
    historical_clv: Decimal | None
    predictive_clv: Decimal | None = None
    probability_alive: float | None = None
    models_converged: bool = False


@attrs.frozen(kw_only=True)
class KpiReport:
    """The KPI summary of a CRM as of a date, over the months before it.

    Attributes:
        as_of: The date the numbers are computed for.
        currency: The reporting currency.
        periods: The monthly periods of the window.
        cac_by_channel: CAC per channel over the window.
        funnel: The lead funnel of the leads created in the window.
        retention: Retention and churn per month.
        value: Revenue, ARPU, average order value per month.
        cohorts: The monthly cohort retention matrix.
        rfm: Every customer's RFM scores as of ``as_of``.
        rfm_segments: Customers per named RFM segment.
        clv: Lifetime value per customer.
        pipeline: The weighted pipeline by expected close month (the months after ``as_of``).
        pipeline_by_stage: Open deals by stage.
        sales: Win rate, deal size, cycle and velocity of the deals closed in the window.
        sla: First-response SLA attainment of the tickets created in the window.
        response: First-response and resolution times, in business hours when a calendar is given.
        campaigns: The A/B results of each campaign with recorded responses.
        campaign_names: The name of each campaign, by id.
    """

    as_of: datetime
    currency: str
    periods: PeriodRange
    cac_by_channel: tuple[ChannelCac, ...]
    funnel: tuple[FunnelStep, ...]
    retention: tuple[RetentionRow, ...]
    value: tuple[ValueRow, ...]
    cohorts: CohortMatrix
    rfm: tuple[RfmScore, ...]
    rfm_segments: Mapping[str, int]
    clv: Clv
    pipeline: tuple[PipelineRow, ...]
    pipeline_by_stage: tuple[StagePipeline, ...]
    sales: SalesSummary
    sla: SlaAttainment
    response: ResponseTimes
    campaigns: tuple[CampaignResults, ...]
    campaign_names: Mapping[str, str]


def _month_start(day: date, months_back: int) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def window(as_of: datetime, months: int, tz: tzinfo = UTC) -> PeriodRange:
    """The ``months`` calendar months ending with the one holding ``as_of``."""
    local = as_of.astimezone(tz).date()
    return PeriodRange("month", _month_start(local, months - 1), local, tz=tz)


def report_currency(orders: Iterable[Order], default: str = "USD") -> str:
    """The currency of the orders (the first counted one's), or ``default`` without orders."""
    return next((order.currency for order in orders), default)


def kpi_report(
    data: ReportData,
    *,
    as_of: datetime,
    months: int = 12,
    currency: str | None = None,
    gross_margin: Decimal = Decimal("0.6"),
    sla_hours: Mapping[str, float] = DEFAULT_SLA_HOURS,
    calendar: BusinessHours | None = None,
    activity_days: int = 90,
    tz: tzinfo = UTC,
) -> KpiReport:
    """Compute every KPI of the summary from ``data`` as of ``as_of``.

    Args:
        data: The records.
        as_of: The date the numbers are computed for (timezone-aware).
        months: The length of the window, in calendar months ending with ``as_of``'s.
        currency: The reporting currency; the orders' by default.
        gross_margin: The margin historical CLV applies.
        sla_hours: First-response targets by ticket priority, in business hours.
        calendar: Measures SLA and response times in business time; wall-clock time without it.
        activity_days: How long after an order a customer counts as active.
        tz: The time zone of the monthly periods.

    Raises:
        ValidationError: A naive ``as_of`` (or a record that is not sound).
        CurrencyMismatch: Orders or spend in several currencies.
    """
    periods = window(as_of, months, tz)
    start, end = periods.boundaries()[0], periods.boundaries()[-1]
    currency = currency or report_currency(data.orders)
    rows = list(order_rows(data.orders))
    value = tuple(customer_value(rows, periods=periods, activity_days=activity_days))
    base = customer_base(rows, periods=periods, activity_days=activity_days)
    retention_rows = tuple(base.retention())
    scores = tuple(rfm_scores(rows, as_of))
    segments = Counter(DEFAULT_SEGMENT_MAP.segment_of(s.r, s.f, s.m) for s in scores)
    targets = {priority: timedelta(hours=hours) for priority, hours in sla_hours.items()}
    return KpiReport(
        as_of=as_of,
        currency=currency,
        periods=periods,
        cac_by_channel=_cac_by_channel(base, data.campaigns, currency),
        funnel=tuple(funnel(data.leads, FUNNEL_STAGES, start=start, end=end, as_of=as_of)),
        retention=retention_rows,
        value=value,
        cohorts=cohort_retention(
            [row for row in rows if row.ordered_at >= start], period="month", as_of=as_of, tz=tz
        ),
        rfm=scores,
        rfm_segments=dict(segments.most_common()),
        clv=_predictive(_clv(value, retention_rows, gross_margin), rows, as_of),
        pipeline=tuple(
            weighted_pipeline(
                data.opportunities,
                periods=PeriodRange("month", as_of.date(), _month_start(as_of.date(), -5), tz=tz),
                as_of=as_of,
                currency=currency,
            )
        ),
        pipeline_by_stage=_by_stage(data.opportunities),
        sales=sales_summary(data.opportunities, start=start, end=end, as_of=as_of, currency=currency),
        sla=sla_attainment(
            data.tickets, target=targets, start=start, end=end, as_of=as_of, calendar=calendar
        ),
        response=response_times(data.tickets, start=start, end=end, as_of=as_of, calendar=calendar),
        campaigns=_campaign_results(data.campaigns, data.activities),
        campaign_names={campaign.id: campaign.name for campaign in data.campaigns},
    )


def _spend(campaigns: Iterable[Campaign]) -> list[SpendRow]:
    return [
        SpendRow(
            campaign.starts_at.date(),
            campaign.actual_cost,
            channel=str(campaign.channel) if campaign.channel else None,
            campaign_id=campaign.id,
        )
        for campaign in campaigns
        if campaign.actual_cost is not None and campaign.starts_at is not None
    ]


def _cac_by_channel(base: Any, campaigns: tuple[Campaign, ...], currency: str) -> tuple[ChannelCac, ...]:
    channels = {c.id: str(c.channel) for c in campaigns if c.channel is not None}
    rows = base.acquisition_cost(_spend(campaigns), currency=currency, by="channel", channels=channels)
    spend: dict[str | None, Decimal] = defaultdict(Decimal)
    new: dict[str | None, int] = defaultdict(int)
    for row in rows:
        spend[row.key] += row.spend
        new[row.key] += row.new_customers
    return tuple(
        ChannelCac(key, spend[key], new[key], spend[key] / new[key] if new[key] else None)
        for key in sorted(spend, key=lambda k: (k is None, k or ""))
    )


def _mean(values: Iterable[Any]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _clv(value: tuple[ValueRow, ...], retention: tuple[RetentionRow, ...], margin: Decimal) -> Clv:
    revenue = sum((row.revenue for row in value), Decimal(0))
    orders = sum(row.orders for row in value)
    aov = revenue / orders if orders else None
    frequency = _mean(row.purchase_frequency for row in value)
    churn = _mean(row.churn_rate for row in retention)
    clv = historical_clv(
        average_order_value=aov, purchase_frequency=frequency, churn_rate=churn, gross_margin=margin
    )
    return Clv(aov, frequency, churn, margin, clv)


_MIN_CUSTOMERS = 20  # fewer say too little for a four-parameter model
_WEEKS_PER_MONTH = 4.345


def _predictive(clv: Clv, rows: list[Any], as_of: datetime) -> Clv:
    """Add the BG/NBD and Gamma-Gamma lifetime value, averaged over the customers."""
    summaries = btyd_summary(
        [row for row in rows if row.ordered_at <= as_of], as_of, unit="day", multiplier=7
    )
    repeaters = [summary for summary in summaries if summary.frequency > 0]
    if len(summaries) < _MIN_CUSTOMERS or len(repeaters) < _MIN_CUSTOMERS:
        return clv
    try:
        purchases = fit_bg_nbd(summaries, penalty=0.001)
        spend = fit_gamma_gamma(repeaters, penalty=0.001)
    except (ValidationError, ValueError, ArithmeticError):
        return clv  # data the models cannot describe: leave the predictive part out
    margin = float(clv.gross_margin)
    values = [
        predictive_clv(
            purchases,
            spend,
            summary,
            periods=12,
            period_length=_WEEKS_PER_MONTH,
            discount_rate=0.01,
            margin=margin,
        )
        for summary in summaries
    ]
    alive = [purchases.probability_alive(summary) for summary in summaries]
    mean = Decimal(str(sum(values) / len(values))).quantize(Decimal("0.01"))
    return attrs.evolve(
        clv,
        predictive_clv=mean,
        probability_alive=sum(alive) / len(alive),
        models_converged=purchases.converged and spend.converged,
    )


def _by_stage(opportunities: Iterable[Opportunity]) -> tuple[StagePipeline, ...]:
    counts: dict[str, int] = defaultdict(int)
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    weighted: dict[str, Decimal] = defaultdict(Decimal)
    for deal in opportunities:
        stage = OPPORTUNITY_LIFECYCLE.stage(deal.stage)
        if not stage.is_open or deal.amount is None:
            continue
        probability = deal.probability if deal.probability is not None else stage.probability or Decimal(0)
        counts[deal.stage] += 1
        amounts[deal.stage] += deal.amount.amount
        weighted[deal.stage] += deal.amount.amount * probability
    order = [s.name for s in OPPORTUNITY_LIFECYCLE.stages]
    return tuple(
        StagePipeline(name, counts[name], amounts[name], weighted[name].quantize(Decimal("0.01")))
        for name in sorted(counts, key=order.index)
    )


def _campaign_results(
    campaigns: tuple[Campaign, ...], activities: tuple[Activity, ...]
) -> tuple[CampaignResults, ...]:
    members: dict[str, dict[str, str]] = defaultdict(dict)
    responses: list[Response] = []
    for activity in activities:
        regarding = activity.regarding
        if regarding is None or regarding.kind != "campaign" or activity.contact_id is None:
            continue
        variant = activity.custom_fields.get(VARIANT_FIELD)
        kind = activity.custom_fields.get(RESPONSE_FIELD)
        if not isinstance(variant, str) or not isinstance(kind, str) or kind not in set(ResponseKind):
            continue
        members[regarding.id][activity.contact_id] = variant
        responses.append(Response(regarding.id, activity.contact_id, kind, activity.occurred_at))
    results = []
    for campaign in sorted(campaigns, key=lambda c: (c.starts_at or c.created_at, c.id)):
        variants = members.get(campaign.id)
        if not variants:
            continue
        control = "A" if "A" in variants.values() else min(variants.values())
        rows = [CampaignMember(campaign.id, customer, variant) for customer, variant in variants.items()]
        results.append(campaign_results(campaign.id, rows, responses, control=control))
    return tuple(results)
