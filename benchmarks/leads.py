"""The ``leads-*`` cases: routing, scoring and duplicate matching at volume.

* ``leads-route``: the 50 ordered rules and the synthetic leads of the ``conditions`` case, where each
  rule now assigns the lead by round robin inside the team of its territory (8 teams of 4). The answer
  per lead is the owner's id, or ``None`` for the fallback queue. Every contender runs the same rotation:
  a rule's turn counter starts at 1 and walks the team in the order of the NUL-separated digest
  lead. Peers: ``rule-engine`` (the same rules as text) and hand-written lambdas, each with the same
  round robin written inline, and ``first-match+rr``: crmkit's compiled first match (the ``conditions``
  case's work) with that bare round robin, which shows what the router (explained decisions, availability,
  turns kept in a state port) adds over matching.
* ``leads-score``: 40 seeded fit rules (``country in``, ``industry ==``, ``employees >=``, ``source ==``,
  ``score >=``, some combined) worth -20 to +40 points; the answer is the lead's total. crmkit builds a
  score card that explains every point; the lambdas only add numbers; ``rule-engine`` evaluates text rules.
* ``leads-match``: incoming leads matched against ten times as many existing contacts (1,000,000 for
  100,000 leads at full size) by email and by phone. The answer is the sorted ids of the contacts matched.
  crmkit's ``MatchIndex`` is built from the contacts (untimed setup, measured separately: the summary
  reports its build time and its ``tracemalloc`` peak); the floor is two plain dicts; ``pairwise``
  compares each lead with every contact and runs only at the tiny size.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import random
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

from benchmarks.conditions import FIELD_TYPES, REGIONS, RULES, SOURCES, make_leads
from benchmarks.harness import Case, Contender, Skip

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from benchmarks.harness import Work

__all__ = ["CASES", "MATCH_SEED", "SCORE_SEED", "TEAM_SIZE", "make_incoming", "make_score_rules"]

SEED = 0
TEAM_SIZE = 4
SCORE_SEED = 11
MATCH_SEED = 20_261_122
CONTACTS_PER_LEAD = 10


# -- routing -----------------------------------------------------------------------------------------


def _team_of(countries: Sequence[str]) -> str:
    """The territory holding most of a rule's countries (the first such territory on a tie)."""
    return max(REGIONS, key=lambda region: sum(country in REGIONS[region] for country in countries))


TEAMS: dict[str, tuple[str, ...]] = {
    region: tuple(f"{region}-{i}" for i in range(TEAM_SIZE)) for region in REGIONS
}
RULE_TEAMS: tuple[str, ...] = tuple(_team_of(rule.countries) for rule in RULES)


def _rule_name(index: int) -> str:
    return f"rule-{index:02d}"


def _rotation(index: int) -> tuple[str, ...]:
    """The documented rotation order of rule ``index``'s team."""
    name = _rule_name(index)

    def digest(user: str) -> bytes:
        return hashlib.blake2b(f"{SEED}\x00{name}\x00{user}".encode(), digest_size=8).digest()

    return tuple(sorted(TEAMS[RULE_TEAMS[index]], key=digest))


def _round_robin_answers(
    first_match: Callable[[dict[str, Any]], int | None],
) -> Callable[[Sequence[Any]], list[Any]]:
    """Wrap a first-match function with the benchmark's round robin (fresh counters per run)."""
    rotations = [_rotation(index) for index in range(len(RULES))]
    sizes = [len(rotation) for rotation in rotations]

    def run(leads: Sequence[dict[str, Any]]) -> list[str | None]:
        turns = [0] * len(RULES)
        owners: list[str | None] = []
        for lead in leads:
            index = first_match(lead)
            if index is None:
                owners.append(None)
                continue
            turns[index] += 1
            owners.append(rotations[index][(turns[index] - 1) % sizes[index]])
        return owners

    return run


def _crmkit_route(leads: Sequence[dict[str, Any]]) -> Work:
    from crmkit.conditions import Schema, all_, field  # noqa: PLC0415 - a missing crmkit skips, not fails
    from crmkit.entities import Team, User  # noqa: PLC0415
    from crmkit.leads import (  # noqa: PLC0415
        Assign,
        Directory,
        MemoryRoutingState,
        Router,
        RoutingRule,
        RoutingRules,
    )

    users = [
        User(id=user, name=user, email=f"{user}@crm.example", team_id=team)
        for team, members in TEAMS.items()
        for user in members
    ]
    directory = Directory(users, [Team(id=team, name=team) for team in TEAMS])
    rules = RoutingRules(
        rules=[
            RoutingRule(
                _rule_name(index),
                all_(
                    field("country").in_(list(rule.countries)),
                    field("industry").eq(rule.industry),
                    field("employees").ge(rule.min_employees),
                ),
                Assign(strategy="round_robin", team_id=RULE_TEAMS[index]),
            )
            for index, rule in enumerate(RULES)
        ],
        seed=SEED,
    )
    router = Router(rules, directory, schema=Schema(FIELD_TYPES))

    def work() -> list[str | None]:
        state = MemoryRoutingState()  # fresh turns each run, as the peers
        return [decision.owner_id for decision in router.route_many(leads, state=state)]

    return work


def _first_match_route(leads: Sequence[dict[str, Any]]) -> Work:
    """The compiled first match of crmkit (the ``conditions`` case's work) plus a bare inline round robin."""
    from crmkit.conditions import Schema, all_, field  # noqa: PLC0415 - a missing crmkit skips, not fails

    matcher = Schema(FIELD_TYPES).first_match(
        [
            all_(
                field("country").in_(list(rule.countries)),
                field("industry").eq(rule.industry),
                field("employees").ge(rule.min_employees),
            )
            for rule in RULES
        ]
    )
    run = _round_robin_answers(matcher)
    return lambda: run(leads)


def _lambdas_route(leads: Sequence[dict[str, Any]]) -> Work:
    predicates = []
    for rule in RULES:
        countries, industry, low = frozenset(rule.countries), rule.industry, rule.min_employees
        predicates.append(
            lambda r, c=countries, i=industry, n=low: (
                r["country"] in c and r["industry"] == i and r["employees"] >= n
            )
        )

    def first_match(lead: dict[str, Any]) -> int | None:
        for index, predicate in enumerate(predicates):
            if predicate(lead):
                return index
        return None

    run = _round_robin_answers(first_match)
    return lambda: run(leads)


def _rule_engine_route(leads: Sequence[dict[str, Any]]) -> Work:
    import rule_engine  # noqa: PLC0415 - an optional peer

    data_types = {str: rule_engine.DataType.STRING, int: rule_engine.DataType.FLOAT}
    context = rule_engine.Context(
        type_resolver=rule_engine.type_resolver_from_dict(
            {name: data_types[kind] for name, kind in FIELD_TYPES.items()}
        )
    )
    rules = [
        rule_engine.Rule(
            f"country in {{{', '.join(json.dumps(c) for c in rule.countries)}}}"
            f" and industry == {json.dumps(rule.industry)}"
            f" and employees >= {rule.min_employees}",
            context=context,
        )
        for rule in RULES
    ]

    def first_match(lead: dict[str, Any]) -> int | None:
        for index, rule in enumerate(rules):
            if rule.matches(lead):
                return index
        return None

    run = _round_robin_answers(first_match)
    return lambda: run(leads)


def summarize_routes(answers: Sequence[str | None]) -> str:
    """How many leads were assigned, to how many people, and the spread inside teams."""
    owners = [owner for owner in answers if owner is not None]
    counts: dict[str, int] = {}
    for owner in owners:
        counts[owner] = counts.get(owner, 0) + 1
    return (
        f"{len(owners):,} of {len(answers):,} leads assigned to {len(counts)} people by round robin,"
        f" {len(answers) - len(owners):,} to the fallback queue"
    )


# -- scoring -----------------------------------------------------------------------------------------


def make_score_rules(seed: int = SCORE_SEED) -> list[tuple[list[tuple[str, str, Any]], int]]:
    """40 fit rules: each a list of ``(field, op, value)`` tests (all must hold) and its points."""
    rng = random.Random(seed)
    countries = sorted({country for members in REGIONS.values() for country in members})
    industries = sorted({rule.industry for rule in RULES})
    rules = []
    for _ in range(40):
        tests: list[tuple[str, str, Any]] = []
        for _ in range(rng.choice((1, 1, 2))):
            kind = rng.choice(("country", "industry", "employees", "source", "score"))
            if kind == "country":
                tests.append(("country", "in", sorted(rng.sample(countries, rng.randint(2, 6)))))
            elif kind == "industry":
                tests.append(("industry", "eq", rng.choice(industries)))
            elif kind == "employees":
                tests.append(("employees", "ge", rng.choice((10, 50, 200, 1000, 5000))))
            elif kind == "source":
                tests.append(("source", "eq", rng.choice(SOURCES)))
            else:
                tests.append(("score", "ge", rng.randint(20, 90)))
        rules.append((tests, rng.randint(-20, 40)))
    return rules


SCORE_RULES = make_score_rules()


def _crmkit_score(leads: Sequence[dict[str, Any]]) -> Work:
    from crmkit.conditions import Predicate, Schema, all_  # noqa: PLC0415
    from crmkit.leads import Scorer, ScoreRule, ScoringModel  # noqa: PLC0415

    model = ScoringModel(
        rules=[
            ScoreRule(
                name=f"fit-{index:02d}",
                condition=all_(*(Predicate(f, op, v) for f, op, v in tests)),
                points=points,
            )
            for index, (tests, points) in enumerate(SCORE_RULES)
        ]
    )
    scorer = Scorer(model, schema=Schema(FIELD_TYPES))

    def work() -> list[int]:
        return [card.total for card in scorer.score_many(leads)]

    return work


def _test_lambda(name: str, op: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    if op == "in":
        allowed = frozenset(value)
        return lambda r: r[name] in allowed
    if op == "eq":
        return lambda r: r[name] == value
    return lambda r: r[name] >= value


def _lambdas_score(leads: Sequence[dict[str, Any]]) -> Work:
    rules = [([_test_lambda(*test) for test in tests], points) for tests, points in SCORE_RULES]

    def work() -> list[int]:
        return [sum(points for tests, points in rules if all(test(lead) for test in tests)) for lead in leads]

    return work


def _rule_engine_score(leads: Sequence[dict[str, Any]]) -> Work:
    import rule_engine  # noqa: PLC0415 - an optional peer

    data_types = {str: rule_engine.DataType.STRING, int: rule_engine.DataType.FLOAT}
    context = rule_engine.Context(
        type_resolver=rule_engine.type_resolver_from_dict(
            {name: data_types[kind] for name, kind in FIELD_TYPES.items()}
        )
    )

    def text(name: str, op: str, value: Any) -> str:
        if op == "in":
            return f"{name} in {{{', '.join(json.dumps(item) for item in value)}}}"
        return f"{name} {'==' if op == 'eq' else '>='} {json.dumps(value)}"

    rules = [
        (rule_engine.Rule(" and ".join(text(*test) for test in tests), context=context), points)
        for tests, points in SCORE_RULES
    ]

    def work() -> list[int]:
        return [sum(points for rule, points in rules if rule.matches(lead)) for lead in leads]

    return work


def summarize_scores(answers: Sequence[int]) -> str:
    """The spread of the scores."""
    if not answers:
        return "no leads"
    ordered = sorted(answers)
    return (
        f"{len(answers):,} leads scored against {len(SCORE_RULES)} rules: min {ordered[0]}, median"
        f" {ordered[len(ordered) // 2]}, max {ordered[-1]}"
    )


# -- matching ----------------------------------------------------------------------------------------


def _contact(i: int) -> dict[str, Any]:
    return {
        "kind": "contact",
        "id": f"c{i}",
        "email": f"person{i}@company{i % 5000}.example",
        "phone": f"+4420{7_000_000 + i:08d}",
    }


def make_incoming(n: int, seed: int = MATCH_SEED) -> list[dict[str, Any]]:
    """``n`` incoming leads: about 30% share an email with a contact, 20% a phone, 5% both (different people).

    Each lead carries ``universe``, the number of existing contacts of the run (``10 n``), so a contender
    given only a prefix of the leads (a slow one) still matches against the same contacts.
    """
    rng = random.Random(seed)
    contacts = n * CONTACTS_PER_LEAD
    leads = []
    for i in range(n):
        roll = rng.random()
        email = f"new{i}@prospect{i % 977}.example"
        phone = f"+4930{5_000_000 + i:08d}"
        if roll < 0.30:
            email = _contact(rng.randrange(contacts))["email"]
        elif roll < 0.50:
            phone = _contact(rng.randrange(contacts))["phone"]
        elif roll < 0.55:
            email = _contact(rng.randrange(contacts))["email"]
            phone = _contact(rng.randrange(contacts))["phone"]
        leads.append({"kind": "lead", "id": f"n{i}", "email": email, "phone": phone, "universe": contacts})
    return leads


_MATCH_STATS: dict[str, str] = {}


def _universe(leads: Sequence[dict[str, Any]]) -> int:
    return int(leads[0]["universe"]) if leads else 0


@functools.lru_cache(maxsize=1)
def _contacts(count: int) -> tuple[dict[str, Any], ...]:
    """The existing contacts, built once per run and shared by the contenders (a million dicts is big)."""
    return tuple(_contact(i) for i in range(count))


def _crmkit_match(leads: Sequence[dict[str, Any]]) -> Work:
    from crmkit.leads import MatchIndex, MatchRule  # noqa: PLC0415

    contacts = _contacts(_universe(leads))
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    index = MatchIndex([MatchRule(name="email", keys=["email"]), MatchRule(name="phone", keys=["phone"])])
    index.add_many(contacts)
    built = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # tracemalloc slows the build several times over; time it again untraced for the figure.
    started = time.perf_counter()
    MatchIndex([MatchRule(name="email", keys=["email"]), MatchRule(name="phone", keys=["phone"])]).add_many(
        contacts
    )
    built = time.perf_counter() - started
    _MATCH_STATS["crmkit"] = (
        f"crmkit index of {len(contacts):,} contacts: built in {built:.2f} s"
        f" ({len(contacts) / built:,.0f} contacts/s),"
        f" tracemalloc peak {peak / 2**20:,.1f} MiB ({peak / len(contacts):,.0f} bytes per contact)"
    )

    def work() -> list[tuple[str, ...]]:
        find = index.find
        return [tuple(sorted(match.id for match in find(lead))) for lead in leads]

    return work


def _dict_match(leads: Sequence[dict[str, Any]]) -> Work:
    contacts = _contacts(_universe(leads))
    by_email = {contact["email"]: contact["id"] for contact in contacts}
    by_phone = {contact["phone"]: contact["id"] for contact in contacts}

    def work() -> list[tuple[str, ...]]:
        answers = []
        for lead in leads:
            found = {by_email.get(lead["email"]), by_phone.get(lead["phone"])}
            found.discard(None)
            answers.append(tuple(sorted(found)))  # type: ignore[arg-type]
        return answers

    return work


def _pairwise_match(leads: Sequence[dict[str, Any]]) -> Work:
    count = _universe(leads)
    if count > 50_000:
        message = f"pairwise would compare {len(leads):,} leads with {count:,} contacts each; tiny size only"
        raise Skip(message)
    contacts = [(c["email"], c["phone"], c["id"]) for c in _contacts(count)]

    def work() -> list[tuple[str, ...]]:
        return [
            tuple(
                sorted(
                    cid for email, phone, cid in contacts if email == lead["email"] or phone == lead["phone"]
                )
            )
            for lead in leads
        ]

    return work


def summarize_matches(answers: Sequence[tuple[str, ...]]) -> str:
    """How many leads matched a contact, and the index's build time and memory."""
    matched = sum(1 for answer in answers if answer)
    two = sum(1 for answer in answers if len(answer) > 1)
    stats = f"; {_MATCH_STATS['crmkit']}" if "crmkit" in _MATCH_STATS else ""
    return f"{matched:,} of {len(answers):,} leads matched a contact ({two:,} matched two){stats}"


SIZES = {"tiny": 2_000, "small": 20_000, "full": 100_000}

CASES = (
    Case(
        name="leads-route",
        description="route leads through 50 rules, round robin inside 8 teams of 4 (answers: owner ids)",
        unit="lead",
        sizes=SIZES,
        make_items=make_leads,
        contenders=(
            Contender("crmkit", _crmkit_route, distribution="crmkit"),
            Contender("first-match+rr", _first_match_route),
            Contender("lambdas", _lambdas_route),
            Contender("rule-engine", _rule_engine_route, distribution="rule-engine", slow=True),
        ),
        summarize=summarize_routes,
    ),
    Case(
        name="leads-score",
        description="score leads against 40 fit rules (answers: total points)",
        unit="lead",
        sizes=SIZES,
        make_items=make_leads,
        contenders=(
            Contender("crmkit", _crmkit_score, distribution="crmkit"),
            Contender("lambdas", _lambdas_score),
            Contender("rule-engine", _rule_engine_score, distribution="rule-engine", slow=True),
        ),
        summarize=summarize_scores,
    ),
    Case(
        name="leads-match",
        description="match leads against 10x as many contacts by email and phone (answers: contact ids)",
        unit="lead",
        sizes=SIZES,
        make_items=make_incoming,
        contenders=(
            Contender("crmkit", _crmkit_match, distribution="crmkit"),
            Contender("dicts", _dict_match),
            Contender("pairwise", _pairwise_match, slow=True),
        ),
        summarize=summarize_matches,
    ),
)
