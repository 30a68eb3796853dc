"""``crmkit metrics``, ``crmkit segment`` and ``crmkit report``: numbers from a store, for scripts."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, date, datetime, time, tzinfo
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crmkit.cli._transfer import UserError
from crmkit.clock import now
from crmkit.entities import ENTITY_TYPES
from crmkit.reports import KpiReport, MetricTable, format_table, kpi_report, read_data
from crmkit.segmentation import DEFAULT_SEGMENT_MAP, RuleSegment

if TYPE_CHECKING:
    from collections.abc import Sequence

    from crmkit.storage import Store

_HOURS = re.compile(r"(\d\d:\d\d)-(\d\d:\d\d)")


def parse_as_of(text: str | None, tz: tzinfo = UTC) -> datetime:
    """``2026-09-30`` (the end of that day in ``tz``) or an ISO-8601 time with its offset; now by default."""
    if text is None:
        return now()
    try:
        if len(text) == len("2026-09-30"):
            return datetime.combine(date.fromisoformat(text), time(23, 59, 59), tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"--as-of {text!r} is not a date (2026-09-30) or an ISO-8601 time with its offset"
        raise UserError(msg) from None
    if moment.tzinfo is None:
        msg = f"--as-of {text!r} has no UTC offset; write it as {text}+00:00 or give a date"
        raise UserError(msg)
    return moment


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"--timezone {name!r} is not an IANA time zone such as Europe/Berlin"
        raise UserError(msg) from None


def compute(
    store: Store,
    *,
    as_of: str | None,
    months: int,
    timezone: str,
    office_hours: str | None,
    currency: str | None,
) -> KpiReport:
    """Read the store and compute its KPI report."""
    from crmkit.workflows import BusinessCalendar  # noqa: PLC0415 - only reports with office hours need it

    if not 1 <= months <= 120:  # noqa: PLR2004 - ten years of months at most
        msg = f"--months is from 1 to 120, got {months}"
        raise UserError(msg)
    zone = _zone(timezone)
    calendar = None
    if office_hours is not None:
        hours = _HOURS.fullmatch(office_hours)
        if hours is None:
            msg = f"--office-hours is HH:MM-HH:MM such as 08:00-18:00, got {office_hours!r}"
            raise UserError(msg)
        calendar = BusinessCalendar.office_hours(timezone, hours.group(1), hours.group(2))
    moment = parse_as_of(as_of, zone)
    with store.transaction() as tx:
        data = read_data(tx)
    return kpi_report(data, as_of=moment, months=months, currency=currency, calendar=calendar, tz=zone)


def write_table(table: MetricTable, out: TextIO, file_format: str) -> None:
    """Print one table as text, CSV or JSON."""
    if file_format == "json":
        out.write(json.dumps(table.records(), indent=2, ensure_ascii=False) + "\n")
    elif file_format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.columns)
        for record in table.records():
            writer.writerow(["" if value is None else value for value in record.values()])
    else:
        out.write(format_table(table))


def rfm_table(report: KpiReport, segment: str | None) -> MetricTable:
    """The customers with their RFM scores and segment; only ``segment``'s when given."""
    names = {rule.name for rule in DEFAULT_SEGMENT_MAP.rules} | {DEFAULT_SEGMENT_MAP.default}
    if segment is not None and segment not in names:
        msg = f"no RFM segment {segment!r}; one of: {', '.join(sorted(names))}"
        raise UserError(msg)
    rows = []
    for score in report.rfm:
        name = DEFAULT_SEGMENT_MAP.segment_of(score.r, score.f, score.m)
        if segment is None or name == segment:
            rows.append(
                (
                    score.customer_id,
                    name,
                    score.recency,
                    score.frequency,
                    score.monetary,
                    score.r,
                    score.f,
                    score.m,
                )
            )
    return MetricTable(
        "rfm-members",
        f"RFM {'segment ' + segment if segment else 'segments'} as of {report.as_of:%Y-%m-%d}",
        "recency = days since the last order; frequency = orders; monetary = their sum; scores 1-5 (NTILE)",
        ("customer_id", "segment", "recency_days", "frequency", "monetary", "r", "f", "m"),
        tuple(rows),
    )


def rule_table(store: Store, rule: dict[str, Any]) -> MetricTable:
    """The members of a rule segment (its condition runs in the store)."""
    segment = RuleSegment.from_json(rule)
    cls = ENTITY_TYPES[segment.entity]
    declared = attrs.fields_dict(cls)
    wanted = [
        name
        for name in ("email", "name", "first_name", "last_name", "company", "country")
        if name in declared
    ]
    with store.transaction() as tx:
        members = list(tx[cls].stream(segment.condition))
    return MetricTable(
        segment.name,
        f"Segment {segment.name} ({segment.entity})",
        "members: the records for which the condition holds",
        ("id", *wanted),
        tuple((member.id, *(getattr(member, name) for name in wanted)) for member in members),
    )


def load_rule(where: str | None, rule_file: str | None, entity: str) -> dict[str, Any]:
    """A rule segment's JSON form from ``--where`` (a condition) or ``--rule`` (a file)."""
    if (where is None) == (rule_file is None):
        msg = "give the segment's condition with --where JSON or its definition with --rule FILE"
        raise UserError(msg)
    try:
        if rule_file is not None:
            with open(rule_file, encoding="utf-8") as handle:  # noqa: PTH123 - a path from the command line
                loaded = json.load(handle)
            if not isinstance(loaded, dict):
                msg = f"{rule_file} must hold one JSON object: a segment with name, entity and condition"
                raise UserError(msg)
            return loaded
        return {"name": "segment", "entity": entity, "condition": json.loads(where or "")}
    except json.JSONDecodeError as error:
        source = f"--rule {rule_file}" if rule_file else "--where"
        msg = f"{source} is not JSON: {error.msg} (line {error.lineno})"
        raise UserError(msg) from None


def report_html(report: KpiReport, path: str) -> None:
    """Write the report as one self-contained HTML page with charts (the ``report`` extra)."""
    try:
        from crmkit.reports import render_html  # noqa: PLC0415 - needs the report extra

        page = render_html(report)
    except ImportError as error:
        msg = f"the HTML report needs the report extra: pip install 'crmkit[report]' ({error})"
        raise UserError(msg) from None
    with open(path, "w", encoding="utf-8") as handle:  # noqa: PTH123 - a path from the command line
        handle.write(page)


__all__: Sequence[str] = [
    "compute",
    "load_rule",
    "parse_as_of",
    "report_html",
    "rfm_table",
    "rule_table",
    "write_table",
]
