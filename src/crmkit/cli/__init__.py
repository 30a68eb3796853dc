"""The ``crmkit`` command.

``crmkit demo`` runs a seeded company through the real crmkit APIs and prints its KPIs;
``crmkit import`` / ``crmkit export`` move contacts, leads and orders in and out of a store as CSV or
JSON; ``crmkit metrics``, ``crmkit segment`` and ``crmkit report`` compute from any store.

Exit status: 0 on success, 1 for a user error (a bad file, mapping, option value or store; one line on
standard error, never a traceback), 2 for a usage error (an unknown command or option).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from crmkit._version import __version__
from crmkit.cli._company import DEFAULT_SIZE, SIZES
from crmkit.cli._demo import DEMO_STORE, demo
from crmkit.cli._scripts import compute, load_rule, report_html, rfm_table, rule_table, write_table
from crmkit.cli._transfer import UserError, export_records, import_file, parse_mapping, write_rejects
from crmkit.entities import Lead, Order
from crmkit.errors import CrmError
from crmkit.reports import METRICS, metric_table, render_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from crmkit.storage import Store

__all__ = ["main"]

#: The store the commands use when neither ``--store`` nor ``CRMKIT_STORE`` names one.
DEFAULT_STORE = "sqlite:///crmkit.db"


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help=f"the store: memory://, sqlite:///path.db or postgresql://... "
        f"(default: $CRMKIT_STORE, else {DEFAULT_STORE})",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crmkit", description="crmkit: a pure-Python CRM domain library.")
    parser.add_argument("--version", action="version", version=f"crmkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tour = commands.add_parser(
        "demo",
        help="simulate a seeded company through crmkit and print its KPIs",
        description="Simulate two years of a company (sales team, leads from several channels, deals, "
        "orders, "
        "tickets under SLA, A/B e-mail campaigns) through crmkit's real APIs, store it, and print its KPIs.",
    )
    tour.add_argument(
        "--size",
        default=DEFAULT_SIZE,
        help=f"{', '.join(SIZES)} or a number of lead rows (default: {DEFAULT_SIZE})",
    )
    tour.add_argument("--seed", type=int, default=7, help="the random seed (default: 7)")
    tour.add_argument(
        "--store", metavar="URL", default=None, help=f"an empty store to fill (default: a fresh {DEMO_STORE})"
    )

    load = commands.add_parser(
        "import",
        help="import contacts, leads or orders from CSV or JSON lines",
        description="Store the good rows of a CSV (with a header) or JSON-lines file; write the rejected "
        "rows with their line numbers and errors to a rejects file. Re-running the same file stores "
        "nothing twice.",
    )
    load.add_argument("kind", choices=["contact", "lead", "order"], help="what the file holds")
    load.add_argument("file", type=Path, help="the CSV or JSON-lines file")
    load.add_argument(
        "--format", choices=["csv", "jsonl"], default=None, help="default: by the file's suffix"
    )
    load.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="read FIELD from COLUMN (repeatable)",
    )
    load.add_argument("--mapping", type=Path, default=None, help="a JSON file of {field: column}")
    load.add_argument(
        "--id-column",
        default=None,
        help="the column of the external id (default: external_id; orders: number)",
    )
    load.add_argument(
        "--rejects", type=Path, default=None, help="where rejected rows go (default: FILE.rejects.csv)"
    )
    _store_option(load)

    dump = commands.add_parser("export", help="export records as CSV, JSON or JSON lines")
    dump.add_argument("kind", help="contact, lead, order, account, opportunity, ticket, ...")
    dump.add_argument("--format", choices=["csv", "json", "jsonl"], default="csv")
    dump.add_argument("--output", "-o", type=Path, default=None, help="the file (default: standard output)")
    dump.add_argument(
        "--where",
        default=None,
        help='a condition in its JSON form, such as \'{"field": "country", "op": "eq", "value": "DE"}\'',
    )
    _store_option(dump)

    numbers = commands.add_parser(
        "metrics",
        help="one metric as of a date, as text, CSV or JSON",
        description="Compute one KPI from a store as of a date and print it as text, CSV or JSON.",
    )
    numbers.add_argument("name", choices=METRICS, help="the metric")
    _report_options(numbers)
    numbers.add_argument("--format", choices=["text", "csv", "json"], default="text")

    members = commands.add_parser(
        "segment",
        help="a segment's members, as text, CSV or JSON",
        description="List the members of an RFM segment (as of a date) or of a rule segment (a condition "
        "the store evaluates).",
    )
    members.add_argument("kind", choices=["rfm", "rule"], help="rfm: RFM segments; rule: a condition")
    members.add_argument("--segment", default=None, help="rfm: only this segment (champions, at_risk, ...)")
    members.add_argument(
        "--where",
        default=None,
        help="rule: a condition in its JSON form, such as "
        '\'{"field": "country", "op": "eq", "value": "DE"}\'',
    )
    members.add_argument("--rule", default=None, help="rule: a JSON file with the segment's definition")
    members.add_argument(
        "--entity", default="contact", help="rule with --where: the kind of record (default: contact)"
    )
    _report_options(members)
    members.add_argument("--format", choices=["text", "csv", "json"], default="text")

    summary = commands.add_parser(
        "report",
        help="every KPI as text, or one HTML page with charts",
        description="Compute the KPI summary of a store as text, or write it as one self-contained HTML page "
        "with charts (needs the report extra).",
    )
    _report_options(summary)
    summary.add_argument("--html", metavar="FILE", default=None, help="write the HTML page with charts here")
    return parser


def _report_options(parser: argparse.ArgumentParser) -> None:
    _store_option(parser)
    parser.add_argument(
        "--as-of", default=None, help="a date (2026-09-30: its end in --timezone) or an ISO time; default now"
    )
    parser.add_argument(
        "--months", type=int, default=12, help="the window: months up to --as-of (default: 12)"
    )
    parser.add_argument("--timezone", default="UTC", help="the time zone of the months (default: UTC)")
    parser.add_argument(
        "--office-hours",
        default=None,
        metavar="HH:MM-HH:MM",
        help="measure SLAs in these weekday business hours of --timezone (default: wall-clock time)",
    )
    parser.add_argument("--currency", default=None, help="the reporting currency (default: the orders')")


def _open(url: str | None) -> Store:
    from crmkit.storage import open_store  # noqa: PLC0415 - the storage layer is only needed by some commands

    return open_store(url or os.environ.get("CRMKIT_STORE") or DEFAULT_STORE)


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    size = SIZES.get(args.size)
    if size is None:
        try:
            size = int(args.size)
        except ValueError:
            size = 0
        if not 1 <= size <= 1_000_000:  # noqa: PLR2004 - a sane upper bound for a demo
            parser.error(
                f"--size is one of {', '.join(SIZES)} or a number from 1 to 1000000, got {args.size!r}"
            )
    if args.store is None:
        return demo(sys.stdout, size=size, seed=args.seed)
    store = _open(args.store)
    with store.transaction() as tx:
        filled = tx[Lead].count() or tx[Order].count()
    if filled:
        store.close()
        msg = f"{args.store} already holds records; the demo fills an empty store"
        raise UserError(msg)
    return demo(sys.stdout, size=size, seed=args.seed, store=store, store_name=args.store)


def _import(args: argparse.Namespace) -> int:
    path: Path = args.file
    suffix = path.suffix.lower()
    file_format: Literal["csv", "jsonl"] = args.format or (
        "jsonl" if suffix in {".jsonl", ".ndjson", ".json"} else "csv"
    )
    mapping = parse_mapping(args.map, args.mapping)
    if not path.is_file():
        msg = f"no such file: {path}"
        raise UserError(msg)
    store = _open(args.store)
    try:
        summary = import_file(
            store, args.kind, path, file_format=file_format, mapping=mapping, id_column=args.id_column
        )
    finally:
        store.close()
    out = sys.stdout.write
    out(
        f"{path}: read {summary.read} rows; stored {summary.stored} {args.kind}s, "
        f"skipped {summary.skipped} already stored, rejected {len(summary.rejected)}\n"
    )
    if summary.ignored_columns:
        ignored = ", ".join(summary.ignored_columns)
        out(f"ignored columns (no such field; map them with --map FIELD=COLUMN): {ignored}\n")
    if summary.rejected:
        rejects = args.rejects or path.with_name(path.name + ".rejects.csv")
        write_rejects(summary.rejected, rejects)
        first = summary.rejected[0]
        problem = first.problems[0]
        where = f"{problem.path}: " if problem.path else ""
        out(f"rejected rows are in {rejects} (first: line {first.line}, {where}{problem.message})\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415 - only this command reads JSON from an option

    where = None
    if args.where is not None:
        try:
            where = json.loads(args.where)
        except json.JSONDecodeError as error:
            msg = f"--where is not JSON: {error.msg} at column {error.colno}"
            raise UserError(msg) from error
    store = _open(args.store)
    try:
        if args.output is None:
            export_records(store, args.kind, sys.stdout, file_format=args.format, where=where)
        else:
            with args.output.open("w", encoding="utf-8", newline="") as handle:
                count = export_records(store, args.kind, handle, file_format=args.format, where=where)
            sys.stderr.write(f"wrote {count} {args.kind} records to {args.output}\n")
    finally:
        store.close()
    return 0


def _numbers(args: argparse.Namespace) -> int:
    store = _open(args.store)
    try:
        if args.command == "segment" and args.kind == "rule":
            table = rule_table(store, load_rule(args.where, args.rule, args.entity))
            write_table(table, sys.stdout, args.format)
            return 0
        report = compute(
            store,
            as_of=args.as_of,
            months=args.months,
            timezone=args.timezone,
            office_hours=args.office_hours,
            currency=args.currency,
        )
    finally:
        store.close()
    if args.command == "metrics":
        write_table(metric_table(report, args.name), sys.stdout, args.format)
    elif args.command == "segment":
        write_table(rfm_table(report, args.segment), sys.stdout, args.format)
    elif args.html is not None:
        report_html(report, args.html)
        sys.stderr.write(f"wrote {args.html}\n")
    else:
        sys.stdout.write(render_text(report))
    return 0


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:  # noqa: RET503 - parser.error exits
    if args.command == "demo":
        return _demo(args, parser)
    if args.command == "import":
        return _import(args)
    if args.command == "export":
        return _export(args)
    if args.command in {"metrics", "segment", "report"}:
        return _numbers(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks the choices


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crmkit`` command with ``argv`` (the process arguments by default); return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args, parser)
    except (CrmError, UserError) as error:
        message = " ".join(str(error).split())
        sys.stderr.write(f"crmkit {args.command}: {message}\n")
        return 1
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            # The reader went away (`crmkit demo | head`): stop quietly, and keep Python's
            # final flush of stdout from raising again at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        sys.stderr.write(f"crmkit {args.command}: {error.strerror or error}: {error.filename or ''}\n")
        return 1
