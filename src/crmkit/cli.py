"""The ``crmkit`` command.

``crmkit demo`` is a short tour of what crmkit does with real data: it
captures a batch of messy web-form leads (normalising them and rejecting the
bad rows with their field paths, keeping the good ones), routes them with
first-match rules kept as JSON, explains one routing decision, and shows how
fast the compiled rules run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from crmkit._version import __version__
from crmkit.conditions import Condition, Schema
from crmkit.entities import Lead
from crmkit.errors import CrmError, ValidationError
from crmkit.serialization import from_data, to_data

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

__all__ = ["main"]

# Raw rows as a web form would post them: mixed case, spaces, one bad email, one bad country.
SAMPLE_FORM_ROWS: tuple[dict[str, Any], ...] = (
    {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": " Ada@Analytical.Example ",
        "phone": "+44 20 7946 0958",
        "company": "Analytical Engines",
        "country": "GB",
        "industry": "software",
        "employees": 420,
        "source": "web_form",
    },
    {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@cobol.example",
        "company": "Cobol Systems",
        "country": "US",
        "industry": "software",
        "employees": 12000,
        "source": "event",
    },
    {
        "first_name": "Hedy",
        "last_name": "Lamarr",
        "email": "hedy@spread.example",
        "company": "Spread Spectrum",
        "country": "AT",
        "industry": "telecom",
        "employees": 35,
        "source": "web_form",
    },
    {
        "first_name": "Alan",
        "last_name": "Turing",
        "email": "alan@@bletchley",
        "company": "Bletchley",
        "country": "GB",
        "industry": "government",
        "employees": -5,
        "source": "referral",
    },
    {
        "first_name": "Katherine",
        "last_name": "Johnson",
        "email": "kj@orbit.example",
        "company": "Orbital",
        "country": "usa",
        "industry": "aerospace",
        "employees": 800,
        "source": "web_form",
    },
    {
        "first_name": "Emmy",
        "last_name": "Noether",
        "email": "emmy@rings.example",
        "phone": "+49 30 901820",
        "company": "Rings & Fields",
        "country": "DE",
        "industry": "software",
        "employees": 95,
        "source": "partner",
    },
    {
        "first_name": "Claude",
        "last_name": "Shannon",
        "email": "claude@bits.example",
        "company": "Bits",
        "country": "US",
        "industry": "telecom",
        "employees": 60,
        "source": "social",
    },
)

# Routing rules are plain data: they could live in a JSON file or a database.
ROUTING_RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("enterprise", {"field": "employees", "op": "ge", "value": 1000}),
    (
        "dach-software",
        {
            "all": [
                {"field": "country", "op": "in", "value": ["DE", "AT", "CH"]},
                {"field": "industry", "op": "eq", "value": "software"},
            ]
        },
    ),
    (
        "emea-mid-market",
        {
            "all": [
                {"field": "country", "op": "in", "value": ["GB", "DE", "AT", "CH", "FR", "NL"]},
                {"field": "employees", "op": "between", "value": [100, 999]},
            ]
        },
    ),
    ("inside-sales", {"field": "email", "op": "exists", "value": True}),
)


def _capture(rows: Sequence[dict[str, Any]]) -> tuple[list[Lead], list[tuple[int, ValidationError]]]:
    leads: list[Lead] = []
    rejected: list[tuple[int, ValidationError]] = []
    for index, row in enumerate(rows):
        try:
            leads.append(from_data(Lead, row))
        except ValidationError as error:
            rejected.append((index, error))
    return leads, rejected


def _synthetic_leads(count: int, seed: int) -> list[Lead]:
    rng = random.Random(seed)  # noqa: S311 - synthetic demo data, not security
    countries = ["DE", "AT", "CH", "GB", "FR", "NL", "US", "CA", "BR", "JP"]
    industries = ["software", "telecom", "retail", "banking", "aerospace", "government"]
    return [
        Lead(
            country=rng.choice(countries),
            industry=rng.choice(industries),
            employees=int(10 ** rng.uniform(0, 4.5)),
            company=f"Company {number}",
            email=f"lead{number}@example.com" if rng.random() < 0.9 else None,  # noqa: PLR2004 - 90 % leave an email
        )
        for number in range(count)
    ]


def demo(out: TextIO, *, synthetic: int = 10_000, seed: int = 7) -> int:
    """Run the tour, writing to ``out``; return the exit status."""
    write = out.write
    write(f"crmkit {__version__} demo\n\n")

    write(
        f"1. Capturing {len(SAMPLE_FORM_ROWS)} web-form leads "
        "(normalised; bad rows rejected, good rows kept)\n"
    )
    leads, rejected = _capture(SAMPLE_FORM_ROWS)
    for index, error in rejected:
        write(f"   row {index} rejected:\n")
        for problem in error.problems:
            write(f"     - {problem}\n")
    write(f"   kept {len(leads)}, rejected {len(rejected)}\n")
    first = leads[0]
    write(
        f"   e.g. email {SAMPLE_FORM_ROWS[0]['email']!r} -> {first.email!r}, "
        f"phone {SAMPLE_FORM_ROWS[0]['phone']!r} -> {first.phone!r}\n\n"
    )

    write("2. Routing with first-match rules stored as JSON\n")
    schema = Schema.for_entity(Lead)
    queues = [name for name, _ in ROUTING_RULES]
    conditions = [Condition.from_json(json.loads(json.dumps(rule))) for _, rule in ROUTING_RULES]
    route = schema.first_match(conditions)
    for lead in leads:
        position = route(lead)
        queue = queues[position] if position is not None else "unassigned"
        company, country = lead.company or "-", lead.country or "-"
        write(f"   {company:<20} {country:<3} {lead.employees or 0:>6}  -> {queue}\n")
    write("\n")

    sample = next(lead for lead in leads if lead.country == "AT")
    write(f"3. Why did {sample.company} not go to dach-software?\n")
    for line in schema.explain(conditions[1], sample).lines():
        write(f"   {line}\n")
    write("\n")

    write(
        f"4. The lead as JSON-ready data (round-trips losslessly): {len(json.dumps(to_data(first)))} bytes, "
        f"equal after the round trip: {from_data(Lead, to_data(first)) == first}\n\n"
    )

    if synthetic > 0:
        batch = _synthetic_leads(synthetic, seed)
        started = time.perf_counter()
        routed = [route(lead) for lead in batch]
        elapsed = time.perf_counter() - started
        counts = Counter(queues[i] if i is not None else "unassigned" for i in routed)
        write(
            f"5. Routed {synthetic:,} synthetic leads in {elapsed * 1000:.1f} ms "
            f"({synthetic / elapsed:,.0f} leads/s)\n"
        )
        for queue in (*queues, "unassigned"):
            write(f"   {queue:<16} {counts[queue]:>7,}\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crmkit", description="crmkit: a pure-Python CRM domain library.")
    parser.add_argument("--version", action="version", version=f"crmkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    tour = commands.add_parser("demo", help="a short tour: capture, validate, route and explain leads")
    tour.add_argument(
        "--synthetic", type=int, default=10_000, help="synthetic leads to route for timing (0 skips)"
    )
    tour.add_argument("--seed", type=int, default=7, help="seed for the synthetic leads")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crmkit`` command with ``argv`` (the process arguments by default)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            if args.synthetic < 0:
                _parser().error("--synthetic must be 0 or more")
            return demo(sys.stdout, synthetic=args.synthetic, seed=args.seed)
    except CrmError as error:
        sys.stderr.write(f"crmkit: {error}\n")
        return 1
    except BrokenPipeError:
        # The reader went away (`crmkit demo | head`): stop quietly, and keep Python's
        # final flush of stdout from raising again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
