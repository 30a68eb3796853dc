"""Metrics and forecasting: the numbers that run sales, marketing and service.

- Acquisition: :func:`acquisition_cost` (CAC overall, per channel, per campaign), :func:`marketing_roi`,
  :func:`cost_per_lead`, :func:`lead_conversion`.
- Funnel: :func:`funnel` (stage-to-stage conversion, cohort view, drop-off, median time),
  :func:`stage_times`, :func:`lead_velocity`.
- Retention: :func:`retention` (retention and churn per period with an activity window),
  :func:`revenue_retention` (gross and net); one pass for several with :func:`customer_base`; the cohort
  matrix, :func:`cohort_retention`, is segmentation's, re-exported here.
- Value: :func:`customer_value` (ARPU, average order value, purchase frequency), :func:`historical_clv`;
  predictive lifetime value with :func:`fit_bg_nbd` (expected purchases, P(alive)), :func:`fit_gamma_gamma`
  (expected spend) and :func:`predictive_clv`, fitted by maximum likelihood in pure Python.
- Sales: :func:`sales_summary` (win rate, deal size, cycle, velocity), :func:`weighted_pipeline`,
  :func:`forecast_by_category`, :func:`pipeline_coverage`.
- Service: :func:`response_times` (first response and resolution, in business hours with a calendar),
  :func:`sla_attainment`, :func:`backlog_age`, :func:`csat`, :func:`nps`.
- Revenue forecast: :func:`fit_holt_winters` (additive trend and seasonality, prediction intervals) and
  :func:`backtest` (MAPE against a seasonal-naive baseline).
- Money: :class:`ExchangeRates` (dated rates supplied by the host), :func:`converted_order_rows`.

Every function takes its ``as_of`` or periods explicitly; a zero denominator gives ``None``, never a
crash and never a silent 0. Results are small attrs values (:class:`Result`) or a :class:`Table` of
them, and convert to a pandas ``DataFrame`` with ``to_pandas()`` when pandas is installed.
"""

from crmkit.metrics._acquisition import (
    CostPerLeadRow,
    LeadConversion,
    RoiRow,
    cost_per_lead,
    lead_conversion,
    marketing_roi,
)
from crmkit.metrics._clv import (
    BetaGeoModel,
    GammaGammaModel,
    RepeatHistory,
    fit_bg_nbd,
    fit_gamma_gamma,
    predictive_clv,
)
from crmkit.metrics._currency import ExchangeRates, converted_order_rows
from crmkit.metrics._customers import (
    AcquisitionRow,
    CustomerBase,
    RetentionRow,
    SpendRow,
    Subscription,
    acquisition_cost,
    customer_base,
    retention,
)
from crmkit.metrics._forecast import Backtest, ForecastPoint, HoltWinters, backtest, fit_holt_winters
from crmkit.metrics._funnel import FunnelStep, StageTime, VelocityRow, funnel, lead_velocity, stage_times
from crmkit.metrics._periods import Period, PeriodRange, Result, Table
from crmkit.metrics._sales import (
    ForecastRow,
    PipelineRow,
    SalesSummary,
    forecast_by_category,
    pipeline_coverage,
    sales_summary,
    weighted_pipeline,
)
from crmkit.metrics._service import (
    BacklogAge,
    BusinessHours,
    NpsScore,
    ResponseTimes,
    SlaAttainment,
    SurveyScore,
    backlog_age,
    csat,
    nps,
    response_times,
    sla_attainment,
)
from crmkit.metrics._value import (
    RevenueRetentionRow,
    ValueRow,
    customer_value,
    historical_clv,
    revenue_retention,
)
from crmkit.segmentation import CohortMatrix, cohort_retention

__all__ = [
    "AcquisitionRow",
    "BacklogAge",
    "Backtest",
    "BetaGeoModel",
    "BusinessHours",
    "CohortMatrix",
    "CostPerLeadRow",
    "CustomerBase",
    "ExchangeRates",
    "ForecastPoint",
    "ForecastRow",
    "FunnelStep",
    "GammaGammaModel",
    "HoltWinters",
    "LeadConversion",
    "NpsScore",
    "Period",
    "PeriodRange",
    "PipelineRow",
    "RepeatHistory",
    "ResponseTimes",
    "Result",
    "RetentionRow",
    "RevenueRetentionRow",
    "RoiRow",
    "SalesSummary",
    "SlaAttainment",
    "SpendRow",
    "StageTime",
    "Subscription",
    "SurveyScore",
    "Table",
    "ValueRow",
    "VelocityRow",
    "acquisition_cost",
    "backlog_age",
    "backtest",
    "cohort_retention",
    "converted_order_rows",
    "cost_per_lead",
    "csat",
    "customer_base",
    "customer_value",
    "fit_bg_nbd",
    "fit_gamma_gamma",
    "fit_holt_winters",
    "forecast_by_category",
    "funnel",
    "historical_clv",
    "lead_conversion",
    "lead_velocity",
    "marketing_roi",
    "nps",
    "pipeline_coverage",
    "predictive_clv",
    "response_times",
    "retention",
    "revenue_retention",
    "sales_summary",
    "sla_attainment",
    "stage_times",
    "weighted_pipeline",
]
