"""Reports: the KPI summary of a CRM as text, tables or one self-contained HTML page with charts.

:func:`kpi_report` computes every headline number (CAC by channel, the lead funnel, retention and
churn, the cohort matrix, RFM segments, lifetime value, the weighted pipeline, sales, SLA attainment and
campaign results) from a :class:`ReportData` of entities with crmkit's own metric functions;
:func:`read_data` reads one from a store transaction. :func:`metric_table` turns one KPI into a
:class:`MetricTable` (the rows ``crmkit metrics`` prints as text, CSV or JSON), :func:`render_text`
prints them all, and :func:`render_html` draws the charts (the ``report`` extra: matplotlib).
"""

from crmkit.reports._html import render_html
from crmkit.reports._kpis import (
    DEFAULT_SLA_HOURS,
    FUNNEL_STAGES,
    BusinessHours,
    ChannelCac,
    Clv,
    KpiReport,
    RecordSource,
    ReportData,
    StagePipeline,
    kpi_report,
    read_data,
    window,
)
from crmkit.reports._tables import METRICS, MetricTable, format_table, metric_table, render_text

__all__ = [
    "DEFAULT_SLA_HOURS",
    "FUNNEL_STAGES",
    "METRICS",
    "BusinessHours",
    "ChannelCac",
    "Clv",
    "KpiReport",
    "MetricTable",
    "RecordSource",
    "ReportData",
    "StagePipeline",
    "format_table",
    "kpi_report",
    "metric_table",
    "read_data",
    "render_html",
    "render_text",
    "window",
]
