"""The storage contract under real processes: racing writers, a killed import, simultaneous first opens.

Each test runs against a SQLite file and, when ``CRMKIT_TEST_POSTGRES_URL`` is
set, PostgreSQL. The children are spawned (not forked) so that each one opens
its own store from scratch, as a second application process would.
"""

import multiprocessing
import os
import signal
import sqlite3

import attrs
import pytest

from crmkit import Contact, Lead
from crmkit.entities import EntityRef
from crmkit.errors import ConflictError
from crmkit.storage import open_store
from crmkit.storage._migrations import SCHEMA_VERSION

SPAWN = multiprocessing.get_context("spawn")
#: Generous limits for slow CI machines; the tests finish far sooner.
WAIT = 120


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """The URL of a fresh, empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    return request.getfixturevalue("postgres_schema_url")


def _join_all(processes):
    for process in processes:
        process.join(WAIT)
        assert process.exitcode == 0, f"a child process failed (exit code {process.exitcode})"


# -- racing writers ---------------------------------------------------------------------------


def _update_in_rounds(url, rounds, barrier, results):
    """Read the shared lead, wait for the other process to have read it too, then write."""
    store = open_store(url)
    accepted = conflicts = 0
    for _ in range(rounds):
        with store.transaction() as tx:
            current = tx[Lead].get("shared")
        barrier.wait(WAIT)
        try:
            with store.transaction() as tx:
                tx[Lead].update(attrs.evolve(current, score=current.score + 1))
                tx.commit()
        except ConflictError:
            conflicts += 1
        else:
            accepted += 1
    store.close()
    results.put((accepted, conflicts))


def test_two_processes_updating_one_entity_never_lose_an_update(store_url):
    rounds = 15
    with open_store(store_url) as store, store.transaction() as tx:
        tx[Lead].add(Lead(id="shared", email="shared@example.com", score=0))
        tx.commit()
    barrier = SPAWN.Barrier(2)
    results = SPAWN.Queue()
    processes = [
        SPAWN.Process(target=_update_in_rounds, args=(store_url, rounds, barrier, results)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=WAIT) for _ in processes]
    _join_all(processes)
    results.close()
    accepted = sum(won for won, _ in outcomes)
    conflicts = sum(lost for _, lost in outcomes)
    # Both read the same version every round, so exactly one write per round wins.
    assert accepted == conflicts == rounds
    with open_store(store_url) as store, store.transaction() as tx:
        final = tx[Lead].get("shared")
        assert len(tx.audit(entity=final, limit=1000)) == 1 + accepted
    assert final.score == accepted
    assert final.version == 1 + accepted


# -- racing counters (tx.state) -----------------------------------------------------------------


def _take_turns(url, count, barrier, results):
    """Take ``count`` turns from the shared counter, each in its own transaction."""
    store = open_store(url)
    barrier.wait(WAIT)
    taken = []
    for _ in range(count):
        with store.transaction() as tx:
            taken.append(tx.state.increment("routing.turns", "team"))
            tx.commit()
    store.close()
    results.put(taken)


def test_two_processes_never_take_the_same_turn(store_url):
    turns = 40
    open_store(store_url).close()  # migrate before the race
    barrier = SPAWN.Barrier(2)
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=_take_turns, args=(store_url, turns, barrier, results)) for _ in range(2)]
    for process in processes:
        process.start()
    taken = [turn for _ in processes for turn in results.get(timeout=WAIT)]
    _join_all(processes)
    results.close()
    assert sorted(taken) == list(range(1, 2 * turns + 1))


# -- a process killed in the middle of a bulk import -------------------------------------------


def _import_and_wait_to_be_killed(url, rows, commit, channel):
    """Bulk-import contacts, report, then (commit and) block until the parent kills this process."""
    store = open_store(url)
    contacts = [Contact(id=f"bulk-{n:06d}", email=f"person{n}@example.com") for n in range(rows)]
    with store.transaction() as tx:
        report = tx[Contact].bulk_add(contacts)
        channel.send(len(report.stored))
        if commit:
            tx.commit()
        channel.recv()  # never answered: SIGKILL ends the process here (or during the commit)


def _kill_during_import(url, rows, *, commit):
    parent_end, child_end = SPAWN.Pipe()
    process = SPAWN.Process(target=_import_and_wait_to_be_killed, args=(url, rows, commit, child_end))
    process.start()
    child_end.close()
    assert parent_end.poll(WAIT), "the importing process never reported"
    assert parent_end.recv() == rows
    os.kill(process.pid, signal.SIGKILL)
    process.join(WAIT)
    parent_end.close()
    assert process.exitcode == -signal.SIGKILL


def _check_store_after_a_kill(url, rows):
    """Open the store again: the schema is intact, the import is there completely or not at all."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        connection.close()
    with open_store(url) as store:
        assert store.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
        with store.transaction() as tx:
            stored = tx[Contact].count()
            assert stored in {1, 1 + rows}
            assert tx[Contact].get("before").email == "before@example.com"
            audited = tx.audit(entity=EntityRef("contact", f"bulk-{rows - 1:06d}"))
            assert len(audited) == (stored > 1)  # the audit log went with the rows
            tx[Contact].add(Contact(id="after", email="after@example.com"))  # and writes go on
            tx.commit()
    return stored - 1


def _store_one_contact(url):
    with open_store(url) as store, store.transaction() as tx:
        tx[Contact].add(Contact(id="before", email="before@example.com"))
        tx.commit()


def test_a_process_killed_before_committing_a_bulk_import_leaves_none_of_it(store_url):
    rows = 100_000
    _store_one_contact(store_url)
    _kill_during_import(store_url, rows, commit=False)
    assert _check_store_after_a_kill(store_url, rows) == 0


def test_a_process_killed_while_committing_a_bulk_import_leaves_all_or_none(store_url):
    rows = 20_000
    _store_one_contact(store_url)
    _kill_during_import(store_url, rows, commit=True)
    assert _check_store_after_a_kill(store_url, rows) in {0, rows}


# -- processes opening a new database together -------------------------------------------------


def _open_at_once(url, barrier, results):
    barrier.wait(WAIT)
    with open_store(url) as store:
        results.put(store.schema_version())  # type: ignore[attr-defined]


def test_processes_opening_a_new_database_together_create_one_schema(store_url):
    barrier = SPAWN.Barrier(3)
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=_open_at_once, args=(store_url, barrier, results)) for _ in range(3)]
    for process in processes:
        process.start()
    versions = [results.get(timeout=WAIT) for _ in processes]
    _join_all(processes)
    results.close()
    assert versions == [SCHEMA_VERSION] * 3
    with open_store(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
        with store.transaction() as tx:
            tx[Lead].add(Lead(id="l1", email="ada@example.com"))
            tx.commit()
    if store_url.startswith("sqlite:"):
        connection = sqlite3.connect(store_url.removeprefix("sqlite:///"))
        assert connection.execute("SELECT count(*) FROM crmkit_schema").fetchone() == (1,)
        connection.close()
    else:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(store_url) as connection:
            assert connection.execute("SELECT count(*) FROM crmkit_schema").fetchone() == (1,)
