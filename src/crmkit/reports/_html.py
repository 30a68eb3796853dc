"""The KPI report as one self-contained HTML page: inline SVG charts drawn by matplotlib, no script.

matplotlib (the ``report`` extra) renders each chart to SVG with its text as paths, so the page needs no
font, no JavaScript and no network: it opens the same offline, in a mail attachment or printed.
"""

from __future__ import annotations

import html
import io
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmkit.reports._tables import METRICS, MetricTable, metric_table

if TYPE_CHECKING:
    from crmkit.reports._kpis import KpiReport

_TEAL, _ORANGE, _GREY, _RED = "#00897b", "#f57c00", "#90a4ae", "#c62828"
_NO_DATA = "\u2013"  # an en dash: no data
_DARK = 0.55  # cells of the heat map above this share get white text
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f5f7f8;
       color: #263238; }
header { background: #00695c; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; } header p { margin: 4px 0 0; opacity: .85; }
main { padding: 16px 32px 40px; }
.tiles { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin-bottom: 16px; }
.tile { background: white; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.tile .value { font-size: 26px; font-weight: 600; color: #00695c; } .tile .label { font-size: 13px; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
figure { background: white; margin: 0; padding: 12px; border-radius: 8px;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); }
figure svg { width: 100%; height: auto; } figcaption { font-size: 13px; color: #546e7a; }
section { background: white; margin-top: 16px; padding: 4px 16px 12px; border-radius: 8px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 14px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eceff1; text-align: right; }
th:first-child, td:first-child { text-align: left; } h3 { margin: 14px 0 2px; font-size: 15px; }
.formula { color: #546e7a; font-size: 12px; margin: 0; }
"""


def _pyplot() -> Any:
    """The matplotlib figure class, with the SVG settings the page needs (ImportError without the extra)."""
    import matplotlib as mpl  # noqa: PLC0415 - optional: the report extra

    mpl.rcParams.update(
        {
            "svg.fonttype": "path",  # text as outlines: no font needed where the page is opened
            "svg.hashsalt": "crmkit",  # stable element ids, so the same report gives the same page
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    from matplotlib.figure import Figure  # noqa: PLC0415 - no pyplot: no global state, no GUI backend

    return Figure


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _number(value: Any) -> float:
    return float(value) if value is not None else math.nan


def _funnel(report: KpiReport, figure_class: Any) -> str:
    figure = figure_class(figsize=(6, 3.2))
    axes = figure.subplots()
    stages = [step.stage for step in report.funnel]
    reached = [step.reached for step in report.funnel]
    bars = axes.barh(stages[::-1], reached[::-1], color=_TEAL)
    for bar, step in zip(bars, report.funnel[::-1], strict=True):
        rate = "" if step.conversion_rate is None else f"  {step.conversion_rate:.0%} of previous"
        axes.text(
            bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {step.reached:,}{rate}", va="center"
        )
    axes.set_xlabel("leads created in the window that reached the stage")
    axes.set_xlim(0, max(reached or [1]) * 1.45)
    return _svg(figure)


def _cohorts(report: KpiReport, figure_class: Any) -> str:
    matrix = report.cohorts
    rows = matrix.retention
    width = max((len(row) for row in rows), default=1)
    grid = [[row[k] if k < len(row) else math.nan for k in range(width)] for row in rows] or [[math.nan]]
    figure = figure_class(figsize=(6, 3.6))
    axes = figure.subplots()
    image = axes.imshow(grid, cmap="YlGnBu", vmin=0, vmax=1, aspect="auto")
    axes.set_yticks(
        range(len(matrix.cohorts)), [f"{c} ({n})" for c, n in zip(matrix.cohorts, matrix.sizes, strict=True)]
    )
    axes.set_xticks(range(width), [str(k) for k in range(width)])
    axes.set_xlabel("months after the first order")
    for i, row in enumerate(grid):
        for k, value in enumerate(row):
            if not math.isnan(value) and k > 0:
                axes.text(
                    k,
                    i,
                    f"{value:.0%}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if value > _DARK else "#263238",
                )
    figure.colorbar(image, ax=axes, fraction=0.04, format=lambda v, _: f"{v:.0%}")
    return _svg(figure)


def _revenue_and_churn(report: KpiReport, figure_class: Any) -> str:
    figure = figure_class(figsize=(6, 3.2))
    axes = figure.subplots()
    labels = [row.period for row in report.value]
    axes.bar(
        labels,
        [float(row.revenue) for row in report.value],
        color=_TEAL,
        label=f"revenue ({report.currency})",
    )
    axes.set_ylabel(f"revenue ({report.currency})")
    axes.tick_params(axis="x", labelrotation=60)
    churn_axes = axes.twinx()
    churn = [_number(row.churn_rate) for row in report.retention]
    churn_axes.plot(
        [row.period for row in report.retention], churn, color=_RED, marker="o", label="churn rate"
    )
    churn_axes.set_ylim(0, max([c for c in churn if not math.isnan(c)] or [0.1]) * 1.3)
    churn_axes.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    churn_axes.spines["right"].set_visible(True)
    churn_axes.set_ylabel("monthly churn")
    handles = axes.get_legend_handles_labels()[0] + churn_axes.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    return _svg(figure)


def _pipeline(report: KpiReport, figure_class: Any) -> str:
    figure = figure_class(figsize=(6, 3.2))
    axes = figure.subplots()
    stages = [row.stage for row in report.pipeline_by_stage]
    positions = range(len(stages))
    axes.bar(
        [p - 0.2 for p in positions],
        [float(r.amount) for r in report.pipeline_by_stage],
        0.4,
        color=_GREY,
        label="amount",
    )
    axes.bar(
        [p + 0.2 for p in positions],
        [float(r.weighted_amount) for r in report.pipeline_by_stage],
        0.4,
        color=_ORANGE,
        label="weighted by probability",
    )
    axes.set_xticks(
        list(positions),
        [f"{s}\n({r.opportunities})" for s, r in zip(stages, report.pipeline_by_stage, strict=True)],
    )
    axes.set_ylabel(report.currency)
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    return _svg(figure)


def _rfm(report: KpiReport, figure_class: Any) -> str:
    table = metric_table(report, "rfm")
    figure = figure_class(figsize=(6, 3.2))
    axes = figure.subplots()
    names = [row[0] for row in table.rows][::-1]
    sizes = [row[1] for row in table.rows][::-1]
    bars = axes.barh(names, sizes, color=_TEAL)
    for bar, size in zip(bars, sizes, strict=True):
        axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {size}", va="center")
    axes.set_xlabel("customers")
    return _svg(figure)


def _cac(report: KpiReport, figure_class: Any) -> str:
    figure = figure_class(figsize=(6, 3.2))
    axes = figure.subplots()
    rows = [row for row in report.cac_by_channel if row.cac is not None and row.channel is not None]
    bars = axes.bar([row.channel or "" for row in rows], [float(row.cac or 0) for row in rows], color=_ORANGE)
    for bar, row in zip(bars, rows, strict=True):
        axes.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height(),
            f"{row.new_customers} new",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    axes.set_ylabel(f"CAC ({report.currency} per new customer)")
    return _svg(figure)


def _table(table: MetricTable) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            if value is None:
                text = _NO_DATA
            elif column in table.percent:
                text = f"{value:.1%}"
            elif isinstance(value, Decimal):
                text = f"{value:,.2f}"
            elif isinstance(value, int) and not isinstance(value, bool):
                text = f"{value:,}"
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<h3>{html.escape(table.title)}</h3><p class='formula'>{html.escape(table.formula)}</p>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>"
    )


def _tiles(report: KpiReport) -> str:
    revenue = sum((row.revenue for row in report.value), Decimal(0))
    churn = report.clv.monthly_churn
    tiles = [
        (f"{revenue:,.0f} {report.currency}", f"revenue, {len(report.periods)} months"),
        (f"{len(report.rfm):,}", "customers"),
        (
            _NO_DATA if report.clv.historical_clv is None else f"{report.clv.historical_clv:,.0f}",
            "historical CLV"
            if report.clv.predictive_clv is None
            else f"historical CLV; next 12 months predicted: {report.clv.predictive_clv:,.0f}",
        ),
        (_NO_DATA if churn is None else f"{churn:.1%}", "mean monthly churn"),
        (_NO_DATA if report.sales.win_rate is None else f"{report.sales.win_rate:.0%}", "win rate"),
        (
            _NO_DATA if report.sla.attainment is None else f"{report.sla.attainment:.0%}",
            "first-response SLA met",
        ),
    ]
    return "".join(
        f"<div class='tile'><div class='value'>{html.escape(value)}</div>"
        f"<div class='label'>{html.escape(label)}</div></div>"
        for value, label in tiles
    )


def render_html(report: KpiReport) -> str:
    """The report as one self-contained HTML page: KPI tiles, six charts and every KPI table.

    Raises:
        ImportError: Without matplotlib (install the ``report`` extra).
    """
    figure_class = _pyplot()
    charts = [
        ("Lead funnel", _funnel),
        ("Cohort retention", _cohorts),
        ("Revenue and churn over time", _revenue_and_churn),
        ("Open pipeline by stage", _pipeline),
        ("RFM segment sizes", _rfm),
        ("Customer acquisition cost by channel", _cac),
    ]
    figures = "".join(
        f"<figure>{draw(report, figure_class)}<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, draw in charts
    )
    tables = "".join(_table(metric_table(report, name)) for name in METRICS)
    title = f"KPI report as of {report.as_of:%Y-%m-%d}"
    window = f"{report.periods.labels[0]} to {report.periods.labels[-1]}, amounts in {report.currency}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(window)} · made by crmkit</p></header>"
        f"<main><div class='tiles'>{_tiles(report)}</div><div class='charts'>{figures}</div>"
        f"<section>{tables}</section></main></body></html>\n"
    )
