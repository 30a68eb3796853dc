"""The storage conformance suite against every built-in adapter, and adapter-specific behaviour."""

import sqlite3

import pytest

from crmkit import Lead, field
from crmkit.errors import StorageError
from crmkit.storage import MemoryStore, SqliteStore, open_store
from crmkit.storage.testing import StoreConformance


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self, clock):
        store = MemoryStore(clock=clock)
        yield store
        store.close()


class TestSqliteFileStore(StoreConformance):
    @pytest.fixture
    def store(self, clock, tmp_path):
        store = open_store(f"sqlite:///{tmp_path}/crm.db", clock=clock)
        yield store
        store.close()


class TestSqliteInMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self, clock):
        store = SqliteStore(":memory:", clock=clock)
        yield store
        store.close()

    def test_a_thread_cannot_nest_transactions(self, store):
        super().test_a_thread_cannot_nest_transactions(store)


def test_open_store_picks_the_adapter_from_the_url(tmp_path):
    assert isinstance(open_store("memory://"), MemoryStore)
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    assert isinstance(store, SqliteStore)
    store.close()
    for bad in ["mysql://x", "sqlite://relative.db", "nonsense", 42]:
        with pytest.raises(StorageError):
            open_store(bad)


def test_a_host_can_hand_in_its_own_sqlite_connection(tmp_path):
    connection = sqlite3.connect(tmp_path / "host.db", isolation_level=None, check_same_thread=False)
    store = SqliteStore(connection=connection)
    with store.transaction() as tx:
        tx[Lead].add(Lead(id="l1", email="ada@example.com"))
        tx.commit()
    store.close()
    assert connection.execute("SELECT count(*) FROM crm_lead").fetchone() == (1,)  # still open
    connection.close()


def test_opening_twice_migrates_once_and_keeps_the_data(tmp_path):
    url = f"sqlite:///{tmp_path}/twice.db"
    with open_store(url) as store:
        with store.transaction() as tx:
            tx[Lead].add(Lead(id="l1", email="ada@example.com"))
            tx.commit()
        version = store.schema_version()
    with open_store(url) as store:
        assert store.schema_version() == version
        with store.transaction() as tx:
            assert tx[Lead].get("l1").email == "ada@example.com"


def test_the_sqlite_audit_table_refuses_updates_and_deletes(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/audit.db") as store, store.transaction() as tx:
        tx[Lead].add(Lead(id="l1", email="ada@example.com"))
        tx.commit()
    connection = sqlite3.connect(tmp_path / "audit.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM crmkit_audit")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("UPDATE crmkit_audit SET actor = 'x'")
    connection.close()


def test_an_indexed_field_query_uses_the_index(tmp_path):
    from crmkit.storage._sql import compile_where, layout_of  # noqa: PLC0415
    from crmkit.storage.sqlite import SqliteDialect  # noqa: PLC0415

    with open_store(f"sqlite:///{tmp_path}/plan.db") as store:
        layout = layout_of(Lead)
        condition = layout.schema.validate(field("email").eq("ada@example.com"))
        where, params, exact = compile_where(layout, SqliteDialect(), condition, store.clock.now())
        plan = store.explain(f"SELECT data FROM crm_lead WHERE {where}", params)
    assert exact
    assert any("USING INDEX crm_lead__email" in step for step in plan), plan
