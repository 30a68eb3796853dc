"""``crmkit import``'s row pipeline against a pandas loader, on the same CSV text.

Each item is one CSV line of a lead export (a header is added); both contenders parse the text, map the
columns to Lead fields, read the numbers, and build each Lead with crmkit's validation, answering the
normalised email of a good row or the field paths of a bad one. crmkit streams the file with the ``csv``
module through its ``RowMapper`` (the code ``crmkit import`` runs per row); the pandas contender reads the
whole file with ``read_csv`` first, as an analyst's loader would.
"""

from __future__ import annotations

import csv
import io
import random
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Case, Contender, Work
from crmkit.cli._transfer import RowMapper
from crmkit.entities import Lead
from crmkit.errors import ValidationError
from crmkit.serialization import from_data

if TYPE_CHECKING:
    from collections.abc import Sequence

HEADER = "crm_id,Given name,Family name,E-mail,country,employees,industry,tags"
MAPPING = {"first_name": "Given name", "last_name": "Family name", "email": "E-mail"}
COUNTRIES = ("DE", "AT", "CH", "GB", "FR", "US", "us", "CA", "BR", "JP")


def make_lines(n: int, seed: int = 11) -> list[str]:
    """``n`` CSV lines; about 5 % have a broken email and 2 % a number that is not one."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        email = f" Person.{i}@Example{i % 50}.com " if rng.random() > 0.05 else f"person{i}@@example.com"
        employees = str(int(10 ** rng.uniform(0, 4))) if rng.random() > 0.02 else "many"
        lines.append(
            f"C{i},Name{i},Family{i % 97},{email},{rng.choice(COUNTRIES)},{employees},"
            f"{rng.choice(('retail', 'software', 'food'))},vip; newsletter"
        )
    return lines


def _answer(data: dict[str, Any]) -> str:
    try:
        return from_data(Lead, data).email or ""
    except ValidationError as error:
        return "rejected: " + ",".join(error.paths)


def _crmkit(lines: Sequence[str]) -> Work:
    text = "\n".join((HEADER, *lines)) + "\n"

    def work() -> list[str]:
        mapper = RowMapper("lead", MAPPING, "crm_id")
        answers = []
        for row in csv.DictReader(io.StringIO(text)):
            try:
                data, _ = mapper.data(row)
            except ValidationError as error:
                answers.append("rejected: " + ",".join(error.paths))
                continue
            answers.append(_answer(data))
        return answers

    return work


def _pandas(lines: Sequence[str]) -> Work:
    import pandas as pd  # noqa: PLC0415 - a peer, imported only when it runs

    text = "\n".join((HEADER, *lines)) + "\n"
    renames = {column: field for field, column in MAPPING.items()}

    def work() -> list[str]:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).rename(columns=renames)
        numbers = pd.to_numeric(frame["employees"], errors="coerce")
        answers = []
        for record, employees in zip(frame.to_dict("records"), numbers, strict=True):
            if employees != employees:  # NaN: not a number  # noqa: PLR0124
                answers.append("rejected: employees")
                continue
            record.pop("crm_id")
            record["employees"] = int(employees)
            record["tags"] = [tag.strip() for tag in record["tags"].split(";") if tag.strip()]
            answers.append(_answer(record))
        return answers

    return work


def summarize(answers: Sequence[str]) -> str:
    """How many rows were kept and rejected."""
    rejected = sum(1 for answer in answers if answer.startswith("rejected"))
    return f"{len(answers) - rejected:,} rows kept, {rejected:,} rejected"


CASE = Case(
    name="cli-import",
    description="CSV lead rows mapped, typed and validated into Leads (the crmkit import row pipeline)",
    unit="row",
    sizes={"tiny": 2_000, "small": 20_000, "full": 100_000},
    make_items=make_lines,
    contenders=(
        Contender("crmkit", _crmkit, distribution="crmkit"),
        Contender("pandas", _pandas, distribution="pandas"),
    ),
    summarize=summarize,
)
