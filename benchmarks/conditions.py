"""The ``conditions`` case: route leads through 50 ordered rules, first match wins.

Every contender gets the same synthetic leads (plain dicts) and the same 50 rules of the form
``country in {3-6 countries} and industry == X and employees >= N``, and answers, per lead, the index of
the first rule that holds, or ``None``. Leads and rules come from fixed seeds, so every run (and every
size, which takes a prefix of the same stream) does the same work.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Case, Contender, Skip

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from benchmarks.harness import Work

__all__ = ["CASE", "LEAD_SEED", "RULES", "RULE_SEED", "RoutingRule", "make_leads", "make_rules"]

LEAD_SEED = 20_240_501
RULE_SEED = 3

# Territories, as a sales org would cut them; a rule's countries come from one of them.
REGIONS: dict[str, tuple[str, ...]] = {
    "dach": ("DE", "AT", "CH"),
    "benelux": ("NL", "BE", "LU"),
    "nordics": ("SE", "DK", "NO", "FI", "IS"),
    "uki": ("GB", "IE"),
    "south": ("FR", "ES", "IT", "PT"),
    "cee": ("PL", "CZ", "HU", "RO"),
    "americas": ("US", "CA", "MX", "BR", "AR"),
    "apac": ("AU", "NZ", "JP", "SG", "IN", "KR"),
}
# Roughly how often each country shows up in inbound leads (relative weights).
COUNTRY_WEIGHTS: dict[str, float] = {
    "US": 22, "GB": 9, "DE": 9, "FR": 6, "CA": 5, "NL": 4, "AU": 4, "IN": 4, "ES": 3, "IT": 3,
    "BR": 3, "SE": 2, "CH": 2, "AT": 2, "BE": 2, "PL": 2, "JP": 2, "IE": 1.5, "DK": 1.5, "NO": 1.5,
    "FI": 1, "MX": 1.5, "SG": 1, "NZ": 1, "PT": 1, "CZ": 1, "HU": 0.5, "RO": 0.5, "KR": 1, "AR": 1,
    "LU": 0.3, "IS": 0.2,
}  # fmt: skip
INDUSTRY_WEIGHTS: dict[str, float] = {
    "saas": 14, "ecommerce": 11, "fintech": 9, "healthcare": 8, "manufacturing": 8, "education": 7,
    "retail": 7, "logistics": 6, "media": 6, "consulting": 6, "real_estate": 5, "nonprofit": 4,
    "government": 3, "energy": 3, "hospitality": 3,
}  # fmt: skip
SOURCES: tuple[str, ...] = (
    "web_form",
    "webinar",
    "referral",
    "paid_search",
    "event",
    "partner",
    "cold",
    "chat",
)
MAX_EMPLOYEES = 50_000

FIELD_TYPES: dict[str, type] = {
    "country": str,
    "industry": str,
    "employees": int,
    "source": str,
    "score": int,
}


def make_leads(n: int, seed: int = LEAD_SEED) -> list[dict[str, Any]]:
    """The first ``n`` synthetic leads of the seeded stream (so a smaller size is a prefix of a larger one).

    Employee counts are log-normal (most companies are small, a long tail is large), clamped to
    1..50,000.
    """
    rng = random.Random(seed)
    countries, country_weights = list(COUNTRY_WEIGHTS), list(COUNTRY_WEIGHTS.values())
    industries, industry_weights = list(INDUSTRY_WEIGHTS), list(INDUSTRY_WEIGHTS.values())
    mu, sigma = math.log(60), 1.9
    leads = []
    for _ in range(n):
        employees = round(math.exp(rng.gauss(mu, sigma)))
        leads.append(
            {
                "country": rng.choices(countries, country_weights)[0],
                "industry": rng.choices(industries, industry_weights)[0],
                "employees": min(max(employees, 1), MAX_EMPLOYEES),
                "source": rng.choice(SOURCES),
                "score": rng.randint(0, 100),
            }
        )
    return leads


@dataclass(frozen=True)
class RoutingRule:
    """``country in countries and industry == industry and employees >= min_employees``."""

    countries: tuple[str, ...]
    industry: str
    min_employees: int

    def __str__(self) -> str:
        return f"country in {{{', '.join(self.countries)}}} and industry == {self.industry} and employees >= {self.min_employees}"  # noqa: E501 - one readable line


def make_rules(seed: int = RULE_SEED) -> list[RoutingRule]:
    """50 ordered rules: enterprise first, then mid-market, then small business, as a routing table reads.

    Each rule takes 3-6 countries from one territory (adding a neighbour's country when the territory
    is small) and an industry drawn by how common it is (one rule per territory and industry in a tier),
    so about 40% of the leads match something, most of them only a late rule, and the rest nothing.
    """
    rng = random.Random(seed)
    industries, industry_weights = list(INDUSTRY_WEIGHTS), list(INDUSTRY_WEIGHTS.values())
    tiers = ((10, (1_000, 2_000, 5_000)), (15, (100, 200, 250, 500)), (25, (1, 2, 5, 10, 20)))
    # Busy territories and common industries get more rules, as they do in a real routing table.
    region_names = list(REGIONS)
    region_weights = [sum(COUNTRY_WEIGHTS[country] for country in REGIONS[name]) for name in region_names]
    all_countries = list(COUNTRY_WEIGHTS)
    rules = []
    for count, thresholds in tiers:
        seen: set[tuple[str, str]] = set()  # a tier has one rule per territory and industry
        while len(seen) < count:
            region = rng.choices(region_names, region_weights)[0]
            industry = rng.choices(industries, industry_weights)[0]
            if (region, industry) in seen:
                continue
            seen.add((region, industry))
            territory = list(REGIONS[region])
            size = rng.randint(3, 6)
            picked: list[str] = []
            while len(picked) < size:  # the territory's big markets first; a small one borrows elsewhere
                pool = [c for c in territory if c not in picked] or [
                    c for c in all_countries if c not in picked
                ]
                weights = [COUNTRY_WEIGHTS[c] for c in pool]
                picked.append(rng.choices(pool, weights)[0])
            rules.append(
                RoutingRule(
                    countries=tuple(sorted(picked)),
                    industry=industry,
                    min_employees=rng.choice(thresholds),
                )
            )
    return rules


RULES: tuple[RoutingRule, ...] = tuple(make_rules())


def summarize(answers: Sequence[int | None]) -> str:
    """How the leads spread over the rules: matched share, rules hit, latest rule hit."""
    hits = Counter(answer for answer in answers if answer is not None)
    matched = sum(hits.values())
    share = matched / len(answers) if answers else 0.0
    late = sum(count for index, count in hits.items() if index >= len(RULES) // 2)
    return (
        f"{share:.1%} of {len(answers):,} leads matched a rule ({late:,} of them a rule in the second half),"
        f" {len(hits)} of {len(RULES)} rules hit, {len(answers) - matched:,} matched none"
    )


# -- contenders --------------------------------------------------------------------------------------


def _crmkit(leads: Sequence[dict[str, Any]]) -> Work:
    from crmkit.conditions import Schema, all_, field  # noqa: PLC0415 - a missing module skips, not fails

    schema = Schema(FIELD_TYPES)
    conditions = [
        all_(
            field("country").in_(list(rule.countries)),
            field("industry").eq(rule.industry),
            field("employees").ge(rule.min_employees),
        )
        for rule in RULES
    ]
    matcher = schema.first_match(conditions)

    def work() -> list[int | None]:
        return [matcher(lead) for lead in leads]

    return work


def _lambdas(leads: Sequence[dict[str, Any]]) -> Work:
    def rule_predicate(rule: RoutingRule) -> Callable[[dict[str, Any]], bool]:
        countries, industry, min_employees = frozenset(rule.countries), rule.industry, rule.min_employees
        return lambda r: (
            r["country"] in countries and r["industry"] == industry and r["employees"] >= min_employees
        )

    predicates = [rule_predicate(rule) for rule in RULES]

    def first_match(lead: dict[str, Any]) -> int | None:
        for index, predicate in enumerate(predicates):
            if predicate(lead):
                return index
        return None

    def work() -> list[int | None]:
        return [first_match(lead) for lead in leads]

    return work


def _rule_engine(leads: Sequence[dict[str, Any]]) -> Work:
    import rule_engine  # noqa: PLC0415 - an optional peer

    data_types = {str: rule_engine.DataType.STRING, int: rule_engine.DataType.FLOAT}
    context = rule_engine.Context(
        type_resolver=rule_engine.type_resolver_from_dict(
            {name: data_types[kind] for name, kind in FIELD_TYPES.items()}
        )
    )

    def text(rule: RoutingRule) -> str:
        countries = ", ".join(json.dumps(country) for country in rule.countries)
        return (
            f"country in {{{countries}}} and industry == {json.dumps(rule.industry)}"
            f" and employees >= {rule.min_employees}"
        )

    rules = [rule_engine.Rule(text(rule), context=context) for rule in RULES]

    def first_match(lead: dict[str, Any]) -> int | None:
        for index, rule in enumerate(rules):
            if rule.matches(lead):
                return index
        return None

    def work() -> list[int | None]:
        return [first_match(lead) for lead in leads]

    return work


def _business_rules_classes() -> tuple[Callable[..., bool], type, type]:
    """business-rules' ``run_all`` and the variables and actions classes it needs for a lead."""
    try:
        from business_rules import run_all  # noqa: PLC0415 - an optional peer
        from business_rules.actions import BaseActions, rule_action  # noqa: PLC0415
        from business_rules.fields import FIELD_NUMERIC  # noqa: PLC0415
        from business_rules.variables import (  # noqa: PLC0415
            BaseVariables,
            numeric_rule_variable,
            string_rule_variable,
        )
    except ImportError:
        raise
    except Exception as exc:  # an old package may no longer import on a new Python
        message = f"business-rules does not import on this Python: {exc!r}"
        raise Skip(message) from exc

    class LeadVariables(BaseVariables):
        def __init__(self, lead: dict[str, Any]) -> None:
            self.lead = lead

        @string_rule_variable
        def country(self) -> str:
            return self.lead["country"]

        @string_rule_variable
        def industry(self) -> str:
            return self.lead["industry"]

        @numeric_rule_variable
        def employees(self) -> int:
            return self.lead["employees"]

    class RoutingActions(BaseActions):
        def __init__(self) -> None:
            self.matched: int | None = None

        @rule_action(params={"index": FIELD_NUMERIC})
        def route_by_rule(self, index: int) -> None:
            self.matched = index

    return run_all, LeadVariables, RoutingActions


def _business_rules(leads: Sequence[dict[str, Any]]) -> Work:
    run_all, lead_variables, routing_actions = _business_rules_classes()
    rule_list = [
        {
            "conditions": {
                "all": [
                    {
                        "any": [
                            {"name": "country", "operator": "equal_to", "value": c} for c in rule.countries
                        ]
                    },
                    {"name": "industry", "operator": "equal_to", "value": rule.industry},
                    {
                        "name": "employees",
                        "operator": "greater_than_or_equal_to",
                        "value": rule.min_employees,
                    },
                ]
            },
            "actions": [{"name": "route_by_rule", "params": {"index": index}}],
        }
        for index, rule in enumerate(RULES)
    ]

    def first_match(lead: dict[str, Any]) -> int | None:
        actions = routing_actions()
        run_all(rule_list, lead_variables(lead), actions, stop_on_first_trigger=True)
        return actions.matched

    def work() -> list[int | None]:
        return [first_match(lead) for lead in leads]

    return work


CASE = Case(
    name="conditions",
    description="50 ordered routing rules, first match wins, over synthetic leads (dicts)",
    unit="lead",
    sizes={"tiny": 2_000, "small": 20_000, "full": 100_000},
    make_items=make_leads,
    contenders=(
        Contender("crmkit", _crmkit, distribution="crmkit"),
        Contender("lambdas", _lambdas),
        Contender("rule-engine", _rule_engine, distribution="rule-engine", slow=True),
        Contender("business-rules", _business_rules, distribution="business-rules", slow=True),
    ),
    summarize=summarize,
)
