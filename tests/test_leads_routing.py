"""Routing leads: first match wins, strategies, availability, seeded tie-breaks, explanations, shared turns."""

import json
import threading
from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock, use_clock
from crmkit.conditions import Schema, field
from crmkit.entities import Lead, Task, Team, User, WorkingHours
from crmkit.errors import RuleError, ValidationError
from crmkit.events import Assigned
from crmkit.leads import (
    Absence,
    Assign,
    Directory,
    MemoryRoutingState,
    Router,
    RoutingRule,
    RoutingRules,
    fairness_report,
    open_work,
    route_lead,
)

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CLOCK = FixedClock(MONDAY_10_UTC)
EMEA = Team(id="emea", name="EMEA")
US = Team(id="us", name="US")


@pytest.fixture(autouse=True)
def _fixed_clock():
    """Every record built without an explicit time gets the test's fixed time."""
    with use_clock(CLOCK):
        yield


def user(uid, team="emea", **kwargs):
    return User(id=uid, name=f"User {uid}", email=f"{uid}@crm.example", team_id=team, **kwargs)


USERS = [user("anna"), user("ben"), user("cleo"), user("dan", team="us"), user("eve", team="us")]
DIRECTORY = Directory(USERS, [EMEA, US])


def lead(i=0, **fields):
    return Lead(id=f"l{i}", email=f"lead{i}@example.com", **fields)


def rules(*chain, **kwargs):
    return RoutingRules(rules=chain, **kwargs)


def rr(team):
    return Assign(strategy="round_robin", team_id=team)


def test_the_first_matching_rule_routes_the_lead():
    chain = rules(
        RoutingRule("enterprise", field("employees").ge(1000), Assign(strategy="fixed", user_id="anna")),
        RoutingRule("dach", field("country").in_(["DE", "AT"]), rr("emea")),
    )
    router = Router(chain, DIRECTORY, clock=CLOCK)
    big_german = router.route(lead(1, country="DE", employees=5000))
    assert (big_german.rule, big_german.owner_id) == ("enterprise", "anna")
    small_german = router.route(lead(2, country="DE", employees=10))
    assert small_german.rule == "dach"
    assert small_german.owner_id in {"anna", "ben", "cleo"}


def test_a_lead_no_rule_matches_goes_to_the_fallback_queue():
    router = Router(
        rules(RoutingRule("de", field("country").eq("DE"), rr("emea")), fallback_queue="triage"), DIRECTORY
    )
    decision = router.route(lead(country="FR"), at=MONDAY_10_UTC)
    assert (decision.owner_id, decision.queue, decision.rule) == (None, "triage", None)
    assert "no rule matched" in decision.explain()


def test_round_robin_takes_turns_among_the_team():
    router = Router(rules(RoutingRule("all", field("email").exists(), rr("emea"))), DIRECTORY, clock=CLOCK)
    owners = [d.owner_id for d in router.route_many([lead(i) for i in range(9)])]
    assert Counter(owners) == {"anna": 3, "ben": 3, "cleo": 3}
    assert owners[:3] == owners[3:6]  # the same rotation each cycle


def test_the_rotation_order_depends_on_the_seed_not_on_creation_order():
    def first_cycle(seed):
        chain = rules(RoutingRule("all", field("email").exists(), rr("emea")), seed=seed)
        return tuple(
            d.owner_id for d in Router(chain, DIRECTORY, clock=CLOCK).route_many([lead(i) for i in range(3)])
        )

    assert first_cycle(7) == first_cycle(7)
    assert len({first_cycle(seed) for seed in range(8)}) > 1


def test_inactive_absent_and_off_hours_users_are_never_assigned():
    berlin_mornings = tuple(WorkingHours(day, time(8), time(12)) for day in range(5))
    tokyo_mornings = tuple(WorkingHours(day, time(8), time(12)) for day in range(5))
    people = [
        user("anna", active=False),
        user("ben"),
        user("cleo", timezone="Europe/Berlin", working_hours=berlin_mornings),  # 11:00 in Berlin: working
        user("dan", team="emea", timezone="Asia/Tokyo", working_hours=tokyo_mornings),  # 19:00 in Tokyo
    ]
    away = Absence("ben", MONDAY_10_UTC - timedelta(days=1), MONDAY_10_UTC + timedelta(days=2))
    directory = Directory(people, [EMEA], [away])
    router = Router(rules(RoutingRule("all", field("email").exists(), rr("emea"))), directory, clock=CLOCK)
    decisions = router.route_many([lead(i) for i in range(4)])
    assert {d.owner_id for d in decisions} == {"cleo"}
    notes = {note.user_id: note for note in decisions[0].candidates}
    assert notes["anna"].reason == "inactive"
    assert notes["ben"].reason.startswith("out of office until")
    assert "outside working hours" in notes["dan"].reason
    assert "Asia/Tokyo" in notes["dan"].reason
    assert notes["cleo"].outcome == "chosen"


def test_when_no_one_is_available_the_lead_goes_to_the_queue_with_the_reasons():
    directory = Directory([user("anna", active=False)], [EMEA])
    chain = rules(RoutingRule("all", field("email").exists(), rr("emea")), fallback_queue="overflow")
    decision = Router(chain, directory, clock=CLOCK).route(lead())
    assert (decision.owner_id, decision.queue, decision.rule) == (None, "overflow", "all")
    assert decision.candidates[0].outcome == "excluded"
    assert "no candidate was available" in decision.explain()


def test_weighted_round_robin_follows_the_weights_exactly_over_each_cycle():
    weights = {"anna": 3, "ben": 1, "cleo": 0}
    chain = rules(
        RoutingRule("w", field("email").exists(), Assign(strategy="weighted_round_robin", weights=weights))
    )
    decisions = Router(chain, DIRECTORY, clock=CLOCK).route_many([lead(i) for i in range(40)])
    report = fairness_report(decisions, weights)
    assert {row.user_id: row.assigned for row in report.rows} == {"anna": 30, "ben": 10, "cleo": 0}
    assert report.max_abs_deviation == 0
    owners = [d.owner_id for d in decisions[:4]]
    assert owners.count("anna") == 3  # spread over the cycle, not bunched


def test_least_loaded_picks_the_candidate_with_least_open_work():
    chain = rules(RoutingRule("ll", field("email").exists(), Assign(strategy="least_loaded", team_id="emea")))
    router = Router(chain, DIRECTORY, clock=CLOCK)
    decisions = router.route_many([lead(i) for i in range(3)], loads={"anna": 5, "ben": 1, "cleo": 2})
    assert decisions[0].owner_id == "ben"
    assert Counter(d.owner_id for d in decisions) == {"ben": 2, "cleo": 1}  # ben 1, 2 and cleo 2 open: ties
    assert decisions[0].detail.startswith("least loaded (1 open")


def test_a_tie_is_broken_by_the_seeded_digest_the_same_way_every_time():
    chain = rules(
        RoutingRule("ll", field("email").exists(), Assign(strategy="least_loaded", team_id="emea")), seed=1
    )
    first = Router(chain, DIRECTORY, clock=CLOCK).route(lead(42)).owner_id
    again = Router(chain, DIRECTORY, clock=CLOCK).route(lead(42)).owner_id
    assert first == again


def test_capacity_is_respected():
    people = [user("anna", capacity=2), user("ben", capacity=0)]
    chain = rules(RoutingRule("all", field("email").exists(), rr("emea")))
    decisions = Router(chain, Directory(people, [EMEA]), clock=CLOCK).route_many([lead(i) for i in range(3)])
    assert [d.owner_id for d in decisions] == ["anna", "anna", None]
    assert "at capacity" in decisions[2].explain()


def test_a_quota_per_period_is_kept_in_the_state_and_resets_next_period():
    state = MemoryRoutingState()
    chain = rules(
        RoutingRule("q", field("email").exists(), Assign(strategy="round_robin", users=["anna"], quota=2))
    )
    router = Router(chain, DIRECTORY, state=state)
    monday = router.route_many([lead(i) for i in range(3)], at=MONDAY_10_UTC)
    assert [d.owner_id for d in monday] == ["anna", "anna", None]
    assert "quota of 2 per day reached" in monday[2].explain()
    tuesday = router.route(lead(9), at=MONDAY_10_UTC + timedelta(days=1))
    assert tuesday.owner_id == "anna"


def test_territory_routes_by_field_value_in_turn():
    action = Assign(strategy="territory", field="country", territories={"DE": ["anna", "ben"], "US": ["dan"]})
    router = Router(rules(RoutingRule("t", field("email").exists(), action)), DIRECTORY, clock=CLOCK)
    german = [router.route(lead(i, country="DE")).owner_id for i in range(4)]
    assert Counter(german) == {"anna": 2, "ben": 2}
    assert router.route(lead(5, country="US")).owner_id == "dan"
    lost = router.route(lead(6, country="FR"))
    assert lost.owner_id is None
    assert "no territory" in lost.detail


def test_skills_routing_picks_a_candidate_with_every_required_skill():
    people = [user("anna", skills={"german"}), user("ben", skills={"german", "billing"}), user("cleo")]
    action = Assign(strategy="skills", team_id="emea", skills={"billing"}, field="country")
    router = Router(
        rules(RoutingRule("s", field("email").exists(), action)), Directory(people, [EMEA]), clock=CLOCK
    )
    decision = router.route(lead(country="DE"))
    assert decision.owner_id is None  # nobody holds skill "DE"
    plain = Router(
        rules(
            RoutingRule(
                "s", field("email").exists(), Assign(strategy="skills", team_id="emea", skills={"billing"})
            )
        ),
        Directory(people, [EMEA]),
        clock=CLOCK,
    )
    chosen = plain.route(lead())
    assert chosen.owner_id == "ben"
    reasons = {note.user_id: note.reason for note in chosen.candidates}
    assert reasons["anna"] == "lacks skill billing"


def test_based_on_field_routes_to_the_user_the_field_names():
    schema = Schema({"email": str, "account_manager": str, "region": str})
    direct = Assign(strategy="based_on_field", field="account_manager")
    mapped = Assign(strategy="based_on_field", field="region", values={"north": "ben"})
    chain = rules(
        RoutingRule("am", field("account_manager").exists(), direct),
        RoutingRule("region", field("region").exists(), mapped),
    )
    router = Router(chain, DIRECTORY, schema=schema, clock=CLOCK)
    assert router.route({"id": "l1", "account_manager": "cleo"}).owner_id == "cleo"
    assert router.route({"id": "l2", "region": "north"}).owner_id == "ben"
    assert router.route({"id": "l3", "account_manager": "ghost"}).queue == "unassigned"


def test_every_decision_explains_the_rule_and_each_candidate():
    router = Router(rules(RoutingRule("all", field("email").exists(), rr("emea"))), DIRECTORY, clock=CLOCK)
    decision = router.route(lead())
    text = decision.explain()
    assert text.startswith(f"rule 'all' (round_robin) assigned {decision.owner_id}: turn 1 of the rotation")
    assert {note.outcome for note in decision.candidates} == {"chosen", "passed over"}
    assert len(decision.candidates) == 3


def test_the_decision_gives_the_assigned_event():
    decision = route_lead(
        lead(3), rules(RoutingRule("all", field("email").exists(), rr("emea"))), DIRECTORY, clock=CLOCK
    )
    event = decision.assigned_event(previous_owner_id="dan")
    assert isinstance(event, Assigned)
    assert (event.entity.id, event.owner_id, event.previous_owner_id) == ("l3", decision.owner_id, "dan")
    assert event.reason.startswith("rule all:")


def test_a_dry_run_routes_a_batch_without_moving_the_turns():
    state = MemoryRoutingState()
    router = Router(
        rules(RoutingRule("all", field("email").exists(), rr("emea"))), DIRECTORY, state=state, clock=CLOCK
    )
    preview = router.dry_run([lead(i) for i in range(5)])
    assert state.get("routing.rr", "all") is None
    real = router.route_many([lead(i) for i in range(5)])
    assert [d.owner_id for d in preview] == [d.owner_id for d in real]
    assert state.get("routing.rr", "all").value == 5


def test_two_threads_never_get_the_same_turn():
    state = MemoryRoutingState()
    router = Router(
        rules(RoutingRule("all", field("email").exists(), rr("emea"))), DIRECTORY, state=state, clock=CLOCK
    )
    results: list = []
    barrier = threading.Barrier(2)

    def work(offset):
        barrier.wait()
        results.extend(router.route_many([lead(offset + i) for i in range(300)]))

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    turns = [int(d.detail.split()[1]) for d in results]
    assert sorted(turns) == list(range(1, 601))
    assert Counter(d.owner_id for d in results) == {"anna": 200, "ben": 200, "cleo": 200}


def test_rule_sets_round_trip_through_json():
    chain = rules(
        RoutingRule("dach", field("country").in_(["DE", "AT"]) & field("employees").ge(50), rr("emea")),
        RoutingRule(
            "w",
            field("email").exists(),
            Assign(strategy="weighted_round_robin", weights={"dan": 2, "eve": 1}),
        ),
        RoutingRule(
            "t",
            field("country").exists(),
            Assign(
                strategy="territory", field="country", territories={"US": ["dan"]}, quota=5, period="week"
            ),
        ),
        fallback_queue="triage",
        seed=9,
    )
    assert RoutingRules.from_json(json.loads(json.dumps(chain.to_json()))) == chain


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "condition": {"field": "email", "op": "exists"},
                        "action": {"strategy": "lottery"},
                    }
                ]
            },
            "rules[0].action.strategy",
        ),
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "condition": {"field": "email", "op": "exists"},
                        "action": {"strategy": "weighted_round_robin", "weights": {"anna": 0, "ben": 0}},
                    }
                ]
            },
            "rules[0].action.weights",
        ),
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "condition": {"field": "email", "op": "exists"},
                        "action": {"strategy": "fixed"},
                    }
                ]
            },
            "rules[0].action.user_id",
        ),
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "condition": {"field": "email"},
                        "action": {"strategy": "fixed", "user_id": "anna"},
                    }
                ]
            },
            "rules[0].condition",
        ),
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "condition": {"all": []},
                        "action": {"strategy": "fixed", "user_id": "anna"},
                    }
                ]
            },
            "rules[0].condition.all",
        ),
        ({"rules": [], "color": "red"}, "color"),
    ],
)
def test_bad_rule_sets_are_rule_errors_with_a_path(data, path):
    with pytest.raises(RuleError) as error:
        RoutingRules.from_json(data)
    assert error.value.path.startswith(path)


@pytest.mark.parametrize(
    ("action", "path"),
    [
        (Assign(strategy="fixed", user_id="ghost"), "rules[1].action.user_id"),
        (Assign(strategy="round_robin", team_id="apac"), "rules[1].action.team_id"),
        (Assign(strategy="round_robin", users=["anna", "ghost"]), "rules[1].action.users[1]"),
        (
            Assign(strategy="territory", field="planet", territories={"mars": ["anna"]}),
            "rules[1].action.field",
        ),
    ],
)
def test_a_rule_naming_an_unknown_user_team_or_field_is_refused_when_the_router_is_built(action, path):
    chain = rules(
        RoutingRule("ok", field("email").exists(), rr("emea")),
        RoutingRule("bad", field("email").exists(), action),
    )
    with pytest.raises(RuleError) as error:
        Router(chain, DIRECTORY)
    assert error.value.path == path


def test_a_bad_condition_is_refused_with_its_path():
    chain = rules(
        RoutingRule("a", field("email").exists(), rr("emea")),
        RoutingRule("b", field("planet").eq("mars"), rr("emea")),
    )
    with pytest.raises(RuleError) as error:
        Router(chain, DIRECTORY)
    assert error.value.path == "rules[1].condition.field"


def test_duplicate_rule_names_and_naive_times_are_refused():
    with pytest.raises(RuleError, match="second rule"):
        rules(
            RoutingRule("a", field("email").exists(), rr("emea")),
            RoutingRule("a", field("email").exists(), rr("us")),
        )
    router = Router(rules(RoutingRule("a", field("email").exists(), rr("emea"))), DIRECTORY)
    with pytest.raises(ValidationError):
        router.route(lead(), at=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValidationError):
        Absence("anna", MONDAY_10_UTC, MONDAY_10_UTC)


def test_the_fairness_report_compares_assignments_with_weights():
    chain = rules(RoutingRule("all", field("email").exists(), rr("emea")))
    decisions = Router(chain, DIRECTORY, clock=CLOCK).route_many([lead(i) for i in range(10)])
    report = fairness_report(decisions, {"anna": 1, "ben": 1, "cleo": 1})
    assert report.total == 10
    assert sum(row.assigned for row in report.rows) == 10
    assert report.max_abs_deviation == pytest.approx((4 - 10 / 3) / (10 / 3))
    with pytest.raises(RuleError):
        fairness_report(decisions, {"anna": 0})


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 6), n=st.integers(0, 60), seed=st.integers(0, 10**6))
def test_round_robin_never_gives_anyone_two_more_than_another(size, n, seed):
    people = [user(f"u{i}") for i in range(size)]
    chain = rules(RoutingRule("all", field("email").exists(), rr("emea")), seed=seed)
    decisions = Router(chain, Directory(people, [EMEA]), clock=CLOCK).route_many([lead(i) for i in range(n)])
    counts = Counter(d.owner_id for d in decisions)
    assert sum(counts.values()) == n
    assert max(counts.values(), default=0) - min((counts[p.id] for p in people), default=0) <= 1


@settings(max_examples=40, deadline=None)
@given(
    weights=st.dictionaries(st.sampled_from(["anna", "ben", "cleo", "dan"]), st.integers(0, 5), min_size=1)
)
def test_weighted_round_robin_rule_sets_round_trip_or_are_refused(weights):
    data = {
        "rules": [
            {
                "name": "w",
                "condition": {"field": "email", "op": "exists", "value": True},
                "action": {"strategy": "weighted_round_robin", "weights": weights},
            }
        ]
    }
    if not any(weights.values()):
        with pytest.raises(RuleError):
            RoutingRules.from_json(data)
        return
    chain = RoutingRules.from_json(data)
    assert RoutingRules.from_json(chain.to_json()) == chain
    cycle = sum(weights.values())
    decisions = Router(chain, DIRECTORY, clock=CLOCK).route_many([lead(i) for i in range(cycle * 2)])
    assert fairness_report(decisions, weights).max_abs_deviation == 0


def test_assign_gives_the_lead_its_owner_and_the_event():
    router = Router(rules(RoutingRule("all", field("email").exists(), rr("emea"))), DIRECTORY, clock=CLOCK)
    original = lead(5, owner_id="dan")
    decision = router.route(original)
    assigned, event = decision.assign(original, actor="router")
    assert assigned.owner_id == decision.owner_id
    assert (event.owner_id, event.previous_owner_id, event.actor) == (decision.owner_id, "dan", "router")
    with pytest.raises(ValidationError):
        decision.assign(lead(6))


def test_open_work_counts_open_leads_and_tasks_per_owner():
    done = datetime(2026, 11, 20, tzinfo=UTC)
    records = [
        lead(1, owner_id="anna"),
        lead(2, owner_id="anna", stage="disqualified"),
        Task(title="Call", owner_id="anna"),
        Task(title="Old", owner_id="ben", status="done", completed_at=done, created_at=done),
        Task(title="Mail", owner_id="ben"),
        lead(3),
    ]
    loads = open_work(records)
    assert loads == {"anna": 2, "ben": 1}
    chain = rules(RoutingRule("ll", field("email").exists(), Assign(strategy="least_loaded", team_id="emea")))
    decision = Router(chain, DIRECTORY, clock=CLOCK).route(lead(9), loads=loads)
    assert decision.owner_id == "cleo"


@settings(max_examples=40, deadline=None)
@given(
    loads=st.dictionaries(st.sampled_from(["anna", "ben", "cleo"]), st.integers(0, 5)),
    n=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_least_loaded_always_picks_a_candidate_with_the_least_open_work(loads, n, seed):
    chain = rules(
        RoutingRule("ll", field("email").exists(), Assign(strategy="least_loaded", team_id="emea")), seed=seed
    )
    router = Router(chain, DIRECTORY, clock=CLOCK)
    current = {user: loads.get(user, 0) for user in ("anna", "ben", "cleo")}
    for i in range(n):
        decision = router.route(lead(i), loads=current)
        assert current[decision.owner_id] == min(current.values())
        current[decision.owner_id] += 1


@settings(max_examples=30, deadline=None)
@given(countries=st.lists(st.sampled_from(["DE", "AT", "US", "FR"]), max_size=20), seed=st.integers(0, 1000))
def test_a_dry_run_predicts_exactly_what_routing_then_does(countries, seed):
    chain = rules(
        RoutingRule("dach", field("country").in_(["DE", "AT"]), rr("emea")),
        RoutingRule(
            "us",
            field("country").eq("US"),
            Assign(strategy="weighted_round_robin", weights={"dan": 2, "eve": 1}),
        ),
        seed=seed,
    )
    router = Router(chain, DIRECTORY, state=MemoryRoutingState(), clock=CLOCK)
    batch = [lead(i, country=country) for i, country in enumerate(countries)]
    router.route_many(batch[: len(batch) // 2])
    preview = router.dry_run(batch)
    assert [d.owner_id for d in preview] == [d.owner_id for d in router.route_many(batch)]
