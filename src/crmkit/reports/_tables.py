"""Each KPI of a report as a table of plain rows, for text, CSV and JSON output."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.segmentation import DEFAULT_SEGMENT_MAP, ResponseKind

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from crmkit.reports._kpis import KpiReport


@attrs.frozen
class MetricTable:
    """One KPI as rows of plain values.

    Attributes:
        name: The metric's name, as ``crmkit metrics`` takes it.
        title: A heading.
        formula: How it is computed.
        columns: The column names.
        rows: The rows, one value per column (``None`` is "no data").
        percent: The columns that hold ratios, shown as percentages in text.
    """

    name: str
    title: str
    formula: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    percent: frozenset[str] = frozenset()

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts of JSON-ready values (decimals and durations as strings)."""
        return [{c: _json_value(v) for c, v in zip(self.columns, row, strict=True)} for row in self.rows]


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds() / 3600
    return value


def _hours(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 3600, 2)


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


def _rate(value: float | Decimal | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _cac(report: KpiReport) -> MetricTable:
    return MetricTable(
        "cac",
        "Customer acquisition cost by channel",
        "CAC = acquisition spend / new customers (first order in the window credited to the channel)",
        ("channel", "spend", "new_customers", "cac"),
        tuple(
            (r.channel or "(none)", _money(r.spend), r.new_customers, _money(r.cac))
            for r in report.cac_by_channel
        ),
    )


def _funnel(report: KpiReport) -> MetricTable:
    return MetricTable(
        "funnel",
        "Lead funnel (leads created in the window)",
        "conversion A -> B = leads that reached B / leads that reached A",
        ("stage", "reached", "conversion_rate", "median_hours"),
        tuple((s.stage, s.reached, _rate(s.conversion_rate), _hours(s.median_time)) for s in report.funnel),
        frozenset({"conversion_rate"}),
    )


def _retention(report: KpiReport) -> MetricTable:
    return MetricTable(
        "retention",
        "Retention and churn by month",
        "retention = (E - N) / S; churn = lost / S",
        ("period", "at_start", "new", "at_end", "lost", "retention_rate", "churn_rate"),
        tuple(
            (
                r.period,
                r.customers_at_start,
                r.new_customers,
                r.customers_at_end,
                r.lost_customers,
                _rate(r.retention_rate),
                _rate(r.churn_rate),
            )
            for r in report.retention
        ),
        frozenset({"retention_rate", "churn_rate"}),
    )


def _revenue(report: KpiReport) -> MetricTable:
    return MetricTable(
        "revenue",
        "Revenue by month",
        "ARPU = revenue / active customers; AOV = revenue / orders",
        ("period", "revenue", "orders", "buyers", "arpu", "average_order_value"),
        tuple(
            (r.period, _money(r.revenue), r.orders, r.buyers, _money(r.arpu), _money(r.average_order_value))
            for r in report.value
        ),
    )


def _cohorts(report: KpiReport) -> MetricTable:
    matrix = report.cohorts
    width = max((len(row) for row in matrix.active), default=0)
    retention = matrix.retention
    return MetricTable(
        "cohorts",
        "Cohort retention (share of each monthly cohort ordering k months later)",
        "cell (cohort, k) = customers of the cohort with an order in month cohort + k / cohort size",
        ("cohort", "size", *(f"m{k}" for k in range(width))),
        tuple(
            (label, size, *(_rate(v) for v in row), *([None] * (width - len(row))))
            for label, size, row in zip(matrix.cohorts, matrix.sizes, retention, strict=True)
        ),
        frozenset(f"m{k}" for k in range(width)),
    )


def _rfm(report: KpiReport) -> MetricTable:
    names = [rule.name for rule in DEFAULT_SEGMENT_MAP.rules] + [DEFAULT_SEGMENT_MAP.default]
    return MetricTable(
        "rfm",
        "RFM segments",
        "R, F, M scored 1-5 like SQL's NTILE(5); the segment is the first box that holds",
        ("segment", "customers"),
        tuple((name, report.rfm_segments[name]) for name in names if name in report.rfm_segments),
    )


def _clv(report: KpiReport) -> MetricTable:
    clv = report.clv
    return MetricTable(
        "clv",
        "Customer lifetime value",
        "historical = AOV x monthly purchase frequency x margin x (1 / monthly churn); predictive = "
        "BG/NBD x Gamma-Gamma over 12 months, 1 %/month discount, x margin (mean per customer)",
        (
            "average_order_value",
            "purchase_frequency",
            "monthly_churn",
            "gross_margin",
            "historical_clv",
            "predictive_clv_12m",
            "p_alive",
            "models_converged",
        ),
        (
            (
                _money(clv.average_order_value),
                _rate(clv.purchase_frequency),
                _rate(clv.monthly_churn),
                clv.gross_margin,
                _money(clv.historical_clv),
                clv.predictive_clv,
                _rate(clv.probability_alive),
                clv.models_converged,
            ),
        ),
        frozenset({"monthly_churn", "p_alive"}),
    )


def _pipeline(report: KpiReport) -> MetricTable:
    return MetricTable(
        "pipeline",
        "Weighted pipeline by expected close month",
        "weighted pipeline = sum of amount x stage probability of the open deals",
        ("period", "opportunities", "amount", "weighted_amount"),
        tuple(
            (r.period, r.opportunities, _money(r.amount), _money(r.weighted_amount)) for r in report.pipeline
        ),
    )


def _stages(report: KpiReport) -> MetricTable:
    return MetricTable(
        "stages",
        "Open pipeline by stage",
        "weighted = amount x probability (the deal's own, else its stage's)",
        ("stage", "opportunities", "amount", "weighted_amount"),
        tuple(
            (r.stage, r.opportunities, _money(r.amount), r.weighted_amount) for r in report.pipeline_by_stage
        ),
    )


def _sales(report: KpiReport) -> MetricTable:
    s = report.sales
    return MetricTable(
        "sales",
        "Sales (deals closed in the window)",
        "win rate = won / (won + lost); velocity = open x win rate x deal size / cycle days",
        ("won", "lost", "win_rate", "average_deal_size", "sales_cycle_days", "sales_velocity_per_day"),
        (
            (
                s.won,
                s.lost,
                _rate(s.win_rate),
                _money(s.average_deal_size),
                s.sales_cycle_days,
                _money(s.sales_velocity),
            ),
        ),
        frozenset({"win_rate"}),
    )


def _sla(report: KpiReport) -> MetricTable:
    sla, times = report.sla, report.response
    return MetricTable(
        "sla",
        "Service: first-response SLA (business hours)",
        "SLA attainment = tickets meeting the target / tickets due",
        ("due", "met", "attainment", "median_first_response_hours", "median_resolution_hours"),
        (
            (
                sla.due,
                sla.met,
                _rate(sla.attainment),
                _hours(times.median_first_response),
                _hours(times.median_resolution),
            ),
        ),
        frozenset({"attainment"}),
    )


def _campaigns(report: KpiReport) -> MetricTable:
    rows = []
    for result in report.campaigns:
        for variant in result.variants:
            test = variant.test
            rows.append(
                (
                    report.campaign_names.get(result.campaign_id, result.campaign_id),
                    variant.variant,
                    variant.members,
                    variant.counts.get(ResponseKind.OPENED, 0),
                    variant.counts.get(ResponseKind.CLICKED, 0),
                    variant.counts.get(result.measured, 0),
                    _rate(
                        variant.counts.get(result.measured, 0) / variant.members if variant.members else None
                    ),
                    None if test is None else round(test.p_value, 4),
                )
            )
    return MetricTable(
        "campaigns",
        "Campaign results (A/B, converted against the control)",
        "two-proportion z-test of each variant's conversion rate against the control's",
        ("campaign", "variant", "members", "opened", "clicked", "converted", "conversion_rate", "p_value"),
        tuple(rows),
        frozenset({"conversion_rate"}),
    )


_BUILDERS: Mapping[str, Callable[[KpiReport], MetricTable]] = {
    "cac": _cac,
    "funnel": _funnel,
    "retention": _retention,
    "cohorts": _cohorts,
    "rfm": _rfm,
    "clv": _clv,
    "pipeline": _pipeline,
    "stages": _stages,
    "revenue": _revenue,
    "sales": _sales,
    "sla": _sla,
    "campaigns": _campaigns,
}

#: The metric names, in the order the summary shows them.
METRICS: tuple[str, ...] = tuple(_BUILDERS)


def metric_table(report: KpiReport, name: str) -> MetricTable:
    """One KPI of ``report`` as a table.

    Raises:
        KeyError: For a name not in :data:`METRICS`.
    """
    return _BUILDERS[name](report)


def _cell(value: Any, *, percent: bool = False) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif percent:
        text = f"{value:.1%}"
    elif isinstance(value, float | Decimal):
        text = f"{value:,.2f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return text


def format_table(table: MetricTable, indent: str = "  ") -> str:
    """The table as aligned text: a heading, the formula, the header and the rows."""
    flags = [column in table.percent for column in table.columns]
    cells = [
        list(table.columns),
        *([_cell(v, percent=flag) for v, flag in zip(row, flags, strict=True)] for row in table.rows),
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in table.rows)
        for i in range(len(table.columns))
    ]
    lines = [table.title, f"{indent}{table.formula}"]
    if not table.rows:
        lines.append(f"{indent}(no data)")
    for row in cells:
        text = "  ".join(
            cell.rjust(width) if numeric[i] else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        lines.append(f"{indent}{text.rstrip()}")
    return "\n".join(lines) + "\n"


def render_text(report: KpiReport, names: Sequence[str] = METRICS) -> str:
    """The KPI summary as text, one aligned table per metric."""
    head = (
        f"KPI summary as of {report.as_of:%Y-%m-%d}, {report.periods.labels[0]} to "
        f"{report.periods.labels[-1]}, amounts in {report.currency}\n"
    )
    return head + "\n" + "\n".join(format_table(metric_table(report, name)) for name in names)
