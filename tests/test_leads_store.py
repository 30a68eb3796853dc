"""The lead engine with a real store: one transaction per step, turns in ``tx.state``, conversion exactly once."""

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest

from crmkit.clock import FixedClock, use_clock
from crmkit.conditions import field
from crmkit.entities import Account, Activity, Consent, Contact, EntityRef, Lead, Opportunity, Team, User
from crmkit.errors import CrmError
from crmkit.leads import (
    Assign,
    ConsentCapture,
    Directory,
    Merged,
    MergeRecord,
    Router,
    RoutingRule,
    RoutingRules,
    capture_lead,
    convert_lead,
    merge_records,
    undo_merge,
)
from crmkit.lifecycle import LEAD_LIFECYCLE
from crmkit.storage import open_store

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TEAM = Team(id="emea", name="EMEA")
USERS = [User(id=f"u{i}", name=f"User {i}", email=f"u{i}@crm.example", team_id="emea") for i in range(3)]
RULES = RoutingRules(
    rules=[RoutingRule("all", field("email").exists(), Assign(strategy="round_robin", team_id="emea"))]
)


@pytest.fixture(autouse=True)
def _fixed_clock():
    """Every record built without an explicit time gets the test's fixed time."""
    with use_clock(FixedClock(NOW)):
        yield


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'crm.db'}"
    with open_store(url, clock=FixedClock(NOW)) as opened:
        yield opened


def test_capture_route_and_save_in_one_transaction(store):
    router = Router(RULES, Directory(USERS, [TEAM]))
    owners = []
    for i in range(4):
        captured = capture_lead(
            {"email": f"lead{i}@acme.com"},
            channel="web_form",
            consents=[ConsentCapture(purpose="news", wording="Yes please")],
            clock=FixedClock(NOW),
        )
        with store.transaction() as tx:
            decision = router.route(captured.lead, state=tx.state, at=NOW)
            lead, assigned = decision.assign(captured.lead)
            tx[Lead].add(lead)
            tx[Consent].bulk_add(captured.consents, strict=True)
            tx.record(*captured.events, assigned)
            tx.commit()
        owners.append(decision.owner_id)
    assert sorted(owners[:3]) == ["u0", "u1", "u2"]
    assert owners[3] == owners[0]
    with store.transaction() as tx:
        assert tx.state.get("routing.rr", "all").value == 4
        assert tx[Lead].count() == 4
        assert tx[Consent].count() == 4


def test_a_rolled_back_transaction_gives_the_turn_back(store):
    router = Router(RULES, Directory(USERS, [TEAM]))
    with store.transaction() as tx:
        first = router.route(Lead(id="l1", email="a@b.com"), state=tx.state, at=NOW)
    with store.transaction() as tx:
        again = router.route(Lead(id="l2", email="c@d.com"), state=tx.state, at=NOW)
        tx.commit()
    assert first.owner_id == again.owner_id


def test_conversion_is_saved_atomically_and_converting_twice_duplicates_nothing(store):
    lead = Lead(id="lead-1", email="ada@acme.com", company="Acme", domain="acme.com", created_at=NOW)
    lead, _ = LEAD_LIFECYCLE.apply(lead, "contact", at=NOW)
    lead, _ = LEAD_LIFECYCLE.apply(lead, "qualify", at=NOW)
    with store.transaction() as tx:
        stored = tx[Lead].add(lead)
        tx.commit()

    def convert_and_save(current):
        with store.transaction() as tx:
            accounts = {a.domain: a for a in tx[Account].query(field("domain").eq(current.domain)).items}
            conversion = convert_lead(current, accounts=accounts, at=NOW + timedelta(hours=1))
            for record in conversion.new_records:
                tx.repository(type(record)).add(record)
            if not conversion.already_converted:
                tx[Lead].update(conversion.lead)
            tx.record(*conversion.events)
            tx.commit()
        return conversion

    first = convert_and_save(stored)
    with store.transaction() as tx:
        reread = tx[Lead].get("lead-1")
    assert reread.stage == "converted"
    assert convert_and_save(reread).already_converted
    with pytest.raises(CrmError):
        convert_and_save(stored)  # a stale copy of the lead: the derived ids are taken, nothing is saved
    with store.transaction() as tx:
        assert tx[Contact].count() == tx[Account].count() == tx[Opportunity].count() == 1
        assert tx[Contact].get(first.contact.id).account_id == first.account.id


def _route_in_process(url, count, queue):
    router = Router(RULES, Directory(USERS, [TEAM]))
    turns = []
    with open_store(url) as store:
        for i in range(count):
            with store.transaction() as tx:
                decision = router.route(Lead(email=f"p{i}@x.com"), state=tx.state, at=NOW)
                tx.commit()
            turns.append((int(decision.detail.split()[1]), decision.owner_id))
    queue.put(turns)


def test_two_processes_never_hand_out_the_same_turn(tmp_path):
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    with open_store(url):
        pass  # create the schema once, before the race
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_route_in_process, args=(url, 30, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    turns = sorted(turn for result in results for turn, _ in result)
    assert turns == list(range(1, 61))
    owners = [owner for result in results for _, owner in result]
    assert {owners.count(user.id) for user in USERS} == {20}


def test_a_merge_is_saved_in_the_audit_log_and_undone_from_it(store):
    older = Lead(id="l-old", email="ada@acme.com", created_at=NOW - timedelta(days=9))
    newer = Lead(id="l-new", email="ada@acme.com", last_name="Lovelace", created_at=NOW - timedelta(days=1))
    call = Activity(id="a-1", activity_type="call", regarding=EntityRef("lead", "l-new"), created_at=NOW)
    with store.transaction() as tx:
        tx[Lead].bulk_add([older, newer], strict=True)
        tx[Activity].add(call)
        tx.commit()
    with store.transaction() as tx:
        leads = tx[Lead].get_many(["l-old", "l-new"])
        result = merge_records(leads, related=[tx[Activity].get("a-1")], at=NOW)
        tx[Lead].update(result.survivor)
        for retired in result.retired:
            tx[Lead].delete(retired)
        for moved in result.moved:
            tx.repository(type(moved)).update(moved)
        tx.record(*result.events)
        tx.commit()
    with store.transaction() as tx:
        entries = tx.audit(entity=EntityRef("lead", "l-old"))
        merged = [entry.event for entry in entries if isinstance(entry.event, Merged)]
        assert len(merged) == 1
        record = MergeRecord.from_json(merged[0].record)
        survivor = tx[Lead].get("l-old")
        assert survivor.last_name == "Lovelace"
        undone = undo_merge(record, survivor, [tx[Activity].get("a-1")], at=NOW)
        tx[Lead].update(undone.survivor)
        tx[Lead].bulk_add(undone.restored, strict=True)
        for item in undone.moved_back:
            tx.repository(type(item)).update(item)
        tx.record(*undone.events)
        tx.commit()
    with store.transaction() as tx:
        assert tx[Lead].get("l-old").last_name is None
        assert tx[Lead].get("l-new").last_name == "Lovelace"
        assert tx[Activity].get("a-1").regarding == EntityRef("lead", "l-new")


def test_two_threads_with_their_own_connections_never_get_the_same_turn(tmp_path):
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    router = Router(RULES, Directory(USERS, [TEAM]))
    turns: list[int] = []
    barrier = threading.Barrier(2)

    def work(store):
        barrier.wait()
        for i in range(30):
            with store.transaction() as tx:
                decision = router.route(Lead(email=f"t{i}@x.com"), state=tx.state, at=NOW)
                tx.commit()
            turns.append(decision.turn)

    stores = [open_store(url) for _ in range(2)]
    threads = [threading.Thread(target=work, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sorted(turns) == list(range(1, 61))
