"""The storage conformance suite against every built-in adapter, and adapter-specific behaviour."""

import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest

from crmkit import Lead, field
from crmkit.entities import EntityRef
from crmkit.errors import (
    ConflictError,
    NotFound,
    RuleError,
    StorageError,
    StorageUnavailable,
    ValidationError,
)
from crmkit.storage import MemoryStore, SqliteStore, open_store
from crmkit.storage._migrations import SCHEMA_VERSION
from crmkit.storage.testing import NoteRecorded, StoreConformance


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


def test_an_added_index_is_used_by_queries_on_its_field(tmp_path):
    from crmkit.storage._sql import compile_where, layout_of  # noqa: PLC0415
    from crmkit.storage.sqlite import SqliteDialect  # noqa: PLC0415

    with open_store(f"sqlite:///{tmp_path}/owner.db") as store:
        layout = layout_of(Lead)
        condition = layout.schema.validate(field("owner_id").eq("u-1"))
        where, params, _ = compile_where(layout, SqliteDialect(), condition, store.clock.now())
        before = store.explain(f"SELECT data FROM crm_lead WHERE tenant = '' AND ({where})", params)
        store.add_index(Lead, "owner_id")
        store.add_index("lead", "owner_id")  # idempotent
        after = store.explain(f"SELECT data FROM crm_lead WHERE tenant = '' AND ({where})", params)
    assert not any("crm_lead__owner_id" in step for step in before), before
    assert any("USING INDEX crm_lead__owner_id" in step for step in after), after


def test_a_version_1_database_gains_the_state_table_and_keeps_its_records(tmp_path):
    path = tmp_path / "old.db"
    with open_store(f"sqlite:///{path}") as store, store.transaction() as tx:
        tx[Lead].add(Lead(id="l1", email="ada@example.com"))
        tx.commit()
    with sqlite3.connect(path) as connection:  # make it look as version 1 left it
        connection.execute("DROP TABLE crmkit_state")
        connection.execute("UPDATE crmkit_schema SET version = 1")
    connection.close()
    with open_store(f"sqlite:///{path}") as store:
        assert store.schema_version() == SCHEMA_VERSION
        with store.transaction() as tx:
            assert tx[Lead].get("l1").email == "ada@example.com"
            assert tx.state.increment("turns", "t") == 1


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
        plan = store.explain(f"SELECT data FROM crm_lead WHERE tenant = '' AND ({where})", params)
    assert exact
    assert any("USING INDEX crm_lead__email" in step for step in plan), plan


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def store(self, clock, postgres_schema_url):
        store = open_store(postgres_schema_url, clock=clock)
        yield store
        store.close()

    def test_text_orders_by_code_point_as_python_does(self, store):
        names = ["b", "B", "a", "A", "é", "e", "Z", "z", "🚀", "10", "9", "_", " x", "ä", "Ä"]
        stored = self.add_all(
            store,
            [Lead(id=f"l{n:02d}", email=f"p{n}@example.com", company=name) for n, name in enumerate(names)],
        )
        companies = [lead.company for lead in stored]
        with store.transaction() as tx:
            ordered = [lead.company for lead in tx[Lead].query(order_by=["company"]).items]
            after_b = tx[Lead].count(field("company").gt("b"))
        assert ordered == sorted(companies)
        assert after_b == sum(1 for company in companies if company > "b")

    def test_a_pattern_condition_streams_through_pages_in_order(self, store):
        with store.transaction() as tx:
            tx[Lead].bulk_add(
                [
                    Lead(id=f"l{n:04d}", email=f"p{n}@example.com", company=f"Company {n % 7}")
                    for n in range(700)
                ]
            )
            tx.commit()
        condition = field("company").matches(r"Company [25]$")
        with store.transaction() as tx:
            streamed = [lead.id for lead in tx[Lead].stream(condition, order_by=["id"], batch_size=30)]
            counted = tx[Lead].count(condition)
        expected = [f"l{n:04d}" for n in range(700) if n % 7 in {2, 5}]
        assert streamed == expected
        assert counted == len(expected)

    def test_a_bulk_insert_racing_another_writer_conflicts_and_keeps_the_transaction(
        self, store, monkeypatch
    ):
        from crmkit.storage.postgres import PostgresTransaction  # noqa: PLC0415

        self.add_all(store, [Lead(id="taken", email="a@example.com")])
        # As if another transaction stored "taken" after this batch was screened.
        monkeypatch.setattr(PostgresTransaction, "_existing_ids", lambda *_: set())
        for size in (3, 300):  # executemany and COPY
            rows = [Lead(id=f"new-{n}", email=f"p{n}@example.com") for n in range(size - 1)]
            with store.transaction() as tx:
                with pytest.raises(ConflictError):
                    tx[Lead].bulk_add([*rows, Lead(id="taken", email="b@example.com")])
                assert tx[Lead].count() == 1  # the batch left nothing behind
                tx[Lead].add(Lead(id="other", email="c@example.com"))  # and the transaction goes on
                tx.commit()
            with store.transaction() as tx:
                assert sorted(lead.id for lead in tx[Lead].stream()) == ["other", "taken"]
                tx[Lead].delete(tx[Lead].get("other"))
                tx.commit()

    def test_ids_go_as_one_split_text_unless_one_holds_a_space(self, store):
        from crmkit.storage.postgres import PostgresDialect  # noqa: PLC0415

        assert PostgresDialect().ids_in(["a", "b"]) == ("id = ANY(string_to_array(%s, ' '))", ["a b"])
        assert PostgresDialect().ids_in(["a b", "c"]) == ("id = ANY(%s::text[])", [["a b", "c"]])
        self.add_all(store, [Lead(id=f"id-{n}", email=f"i{n}@example.com") for n in range(3)])
        with store.transaction() as tx:
            assert [lead.id for lead in tx[Lead].get_many(["id-2", "id-0"])] == ["id-2", "id-0"]
            with pytest.raises(NotFound, match="id-1 id-2"):  # not split into two ids that exist
                tx[Lead].get_many(["id-1", "id-1 id-2"])
            report = tx[Lead].bulk_add([Lead(id=f"id-{n}", email=f"j{n}@example.com") for n in range(1, 5)])
            assert [row.index for row in report.rejected] == [0, 1]
            assert [lead.id for lead in report.stored] == ["id-3", "id-4"]

    def test_text_postgresql_cannot_hold_is_refused_with_a_clear_storage_error(self, store):
        # Validation refuses NUL (and the conformance suite checks it); smuggle values past it
        # to check that the adapter still fails cleanly, with a crmkit error, and stays usable.
        nul = Lead(id="n", email="n@example.com")
        object.__setattr__(nul, "company", "nul\x00here")
        surrogate = Lead(id="s", email="s@example.com")
        object.__setattr__(surrogate, "company", "lone \ud800 surrogate")
        with store.transaction() as tx:
            with pytest.raises(StorageError, match="NUL") as caught:
                tx[Lead].add(nul)
            assert not isinstance(caught.value, StorageUnavailable)
            with pytest.raises(StorageError, match="Unicode"):
                tx[Lead].add(surrogate)
            tx[Lead].add(Lead(id="ok", email="ok@example.com"))  # the transaction stays usable
            tx.commit()
        with store.transaction() as tx:
            assert [lead.id for lead in tx[Lead].stream()] == ["ok"]

    def test_the_audit_table_refuses_updates_deletes_and_truncation(self, store, postgres_schema_url):
        import psycopg  # noqa: PLC0415

        self.add_all(store, [Lead(id="l1", email="ada@example.com")])
        with psycopg.connect(postgres_schema_url, autocommit=True) as connection:
            for statement in [
                "UPDATE crmkit_audit SET actor = 'x'",
                "DELETE FROM crmkit_audit",
                "TRUNCATE crmkit_audit",
            ]:
                with pytest.raises(psycopg.Error, match="append-only"):
                    connection.execute(statement)
            assert connection.execute("SELECT count(*) FROM crmkit_audit").fetchone() == (1,)

    def test_connection_parameters_can_be_given_as_keywords(self, postgres_schema_url):
        schema = postgres_schema_url.rsplit("%3D", 1)[1]
        url = postgres_schema_url.split("?options=")[0]
        with open_store(url, options=f"-c search_path={schema}") as store, store.transaction() as tx:
            tx[Lead].add(Lead(id="l1", email="ada@example.com"))
            tx.commit()
        with open_store(postgres_schema_url) as store, store.transaction() as tx:
            assert tx[Lead].get("l1").email == "ada@example.com"  # in the same schema

    def test_the_url_never_shows_the_password(self, store, postgres_url):
        from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

        password = conninfo_to_dict(postgres_url).get("password")
        assert store.url.startswith("postgresql://")
        assert password
        assert str(password) not in store.url

    def test_opening_again_migrates_once_and_keeps_the_data(self, store, postgres_schema_url):
        self.add_all(store, [Lead(id="l1", email="ada@example.com")])
        with open_store(postgres_schema_url) as again:
            assert again.schema_version() == store.schema_version() == SCHEMA_VERSION
            with again.transaction() as tx:
                assert tx[Lead].get("l1").email == "ada@example.com"

    @pytest.mark.parametrize("autocommit", [True, False])
    def test_a_host_can_hand_in_its_own_connection(self, postgres_schema_url, autocommit):
        import psycopg  # noqa: PLC0415

        from crmkit.storage.postgres import PostgresStore  # noqa: PLC0415

        connection = psycopg.connect(postgres_schema_url, autocommit=autocommit)
        store = PostgresStore(connection=connection)
        assert "@" in store.url
        with store.transaction() as tx:
            tx[Lead].add(Lead(id="l1", email="ada@example.com"))
            tx.commit()
        with store.transaction() as tx:
            tx[Lead].add(Lead(id="l2", email="bob@example.com"))  # rolled back
        store.close()
        assert not connection.closed
        assert connection.execute("SELECT id FROM crm_lead").fetchall() == [("l1",)]
        connection.rollback()
        connection.close()

    def test_driver_errors_become_storage_errors_without_the_password(self):
        pytest.importorskip("psycopg")
        from crmkit.storage.postgres import PostgresStore  # noqa: PLC0415

        with pytest.raises(StorageUnavailable) as caught:
            PostgresStore("postgresql://someone:s3cret-pw@127.0.0.1:1/crm?connect_timeout=5")
        assert "s3cret-pw" not in str(caught.value)
        with pytest.raises(StorageError) as caught:
            PostgresStore("postgresql://someone:s3cret-pw@localhost/crm?no_such_option=1")
        assert "s3cret-pw" not in str(caught.value)
        with pytest.raises(StorageError):
            PostgresStore()

    def test_a_pooled_connection_that_died_is_replaced(self, store, postgres_url):
        import psycopg  # noqa: PLC0415

        self.add_all(store, [Lead(id="l1", email="ada@example.com")])
        (idle,) = store._idle
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [idle.info.backend_pid])
        with store.transaction() as tx:
            assert tx[Lead].get("l1").email == "ada@example.com"


class _FailingCommit:
    """A connection stand-in whose COMMIT fails, as a full disk or a lost lock would make it."""

    def __init__(self, connection):
        self._connection = connection

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def execute(self, sql, *args):
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return self._connection.execute(sql, *args)


@pytest.mark.parametrize("path", [":memory:", "file"])
def test_a_failed_commit_rolls_back_and_leaves_the_store_usable(tmp_path, path):
    from crmkit.errors import StorageUnavailable  # noqa: PLC0415

    store = SqliteStore(":memory:" if path == ":memory:" else tmp_path / "commit.db")
    with store.transaction() as tx:
        tx[Lead].add(Lead(id="l1", email="ada@example.com"))
        tx._connection = _FailingCommit(tx._connection)
        with pytest.raises(StorageUnavailable):
            tx.commit()
    with store.transaction() as tx:
        assert tx[Lead].count() == 0
        tx[Lead].add(Lead(id="l1", email="ada@example.com"))
        tx.commit()
    store.close()


# -- databases written by an older crmkit -------------------------------------------------------

DATA = Path(__file__).parent / "data"


def _check_upgraded(store):
    assert store.schema_version() == SCHEMA_VERSION
    with store.transaction() as tx:
        assert tx[Lead].get("lead-1").email == "ada@example.com"
        assert [lead.id for lead in tx[Lead].query(field("country").eq("US")).items] == ["lead-2"]
        assert tx.state.get("routing.turns", "team-emea").value == 3
        assert [entry.event.entity.id for entry in tx.audit()] == ["lead-1", "lead-2", "contact-1"]
        tx.record(NoteRecorded(entity=EntityRef("lead", "lead-1"), text="Ada called"))
        assert tx.redact_audit(["Ada"], "[erased]") == 1  # the audit table accepts redactions now
        assert tx.audit(entity=EntityRef("lead", "lead-1"))[-1].event.text == "[erased] called"
        tx[Lead].add(Lead(id="lead-3", email="alan@example.com"))
        tx.commit()
    with store.for_tenant("acme").transaction() as tx:  # the old rows went to the default tenant
        assert tx[Lead].count() == 0
        tx[Lead].add(Lead(id="lead-1", email="other@acme.example"))
        tx.commit()


def test_a_schema_version_2_sqlite_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "v2.db"
    shutil.copy(DATA / "crmkit-schema-v2.db", path)
    with open_store(f"sqlite:///{path}") as store:
        _check_upgraded(store)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("UPDATE crmkit_audit SET actor = 'x'")
    connection.close()
    with open_store(f"sqlite:///{path}") as again:  # idempotent
        assert again.schema_version() == SCHEMA_VERSION


def test_a_schema_version_2_postgres_database_is_upgraded_in_place(postgres_schema_url):
    import psycopg  # noqa: PLC0415

    schema = postgres_schema_url.rsplit("%3D", 1)[1]
    script = (DATA / "crmkit-schema-v2-postgres.sql").read_text(encoding="utf-8")
    with psycopg.connect(postgres_schema_url.split("?options=")[0], autocommit=True) as connection:
        connection.execute(script.replace("crmkit_v2_fixture", schema))
    with open_store(postgres_schema_url) as store:
        _check_upgraded(store)
    with open_store(postgres_schema_url) as again:
        assert again.schema_version() == SCHEMA_VERSION


def test_postgres_row_level_security_confines_even_raw_sql_to_the_tenant(postgres_url):
    import psycopg  # noqa: PLC0415
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    # Superusers bypass row-level security: the application connects as a plain role.
    role, password, schema = "crmkit_rls_app", "rls-test-only", f"crmkit_rls_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS")
        admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    server = conninfo_to_dict(postgres_url)
    url = f"postgresql://{role}:{password}@{server['host']}:{server['port']}/{server['dbname']}"
    try:
        store = open_store(url, row_level_security=True, options=f"-c search_path={schema}")
        acme, globex = store.for_tenant("acme"), store.for_tenant("globex")
        for view, email in ((acme, "a@acme.example"), (globex, "g@globex.example")):
            with view.transaction() as tx:
                tx[Lead].add(Lead(id="l1", email=email))
                tx.commit()
        with acme.transaction() as tx:
            tx.cursor.execute("SELECT email FROM crm_lead")  # no tenant in the SQL: the policy adds it
            assert tx.cursor.fetchall() == [("a@acme.example",)]
        with acme.transaction() as tx, pytest.raises(psycopg.errors.InsufficientPrivilege):
            tx.cursor.execute("UPDATE crm_lead SET tenant = 'globex'")  # the policy refuses the row
        with store.transaction() as tx:  # the default tenant sees neither
            tx.cursor.execute("SELECT count(*) FROM crm_lead")
            assert tx.cursor.fetchone() == (0,)
        store.close()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_a_composite_index_serves_a_contacts_newest_activities_without_sorting(tmp_path):
    from crmkit import Activity  # noqa: PLC0415
    from crmkit.storage._base import resolve_order  # noqa: PLC0415
    from crmkit.storage._sql import compile_order, compile_where, layout_of  # noqa: PLC0415
    from crmkit.storage.sqlite import SqliteDialect  # noqa: PLC0415

    with open_store(f"sqlite:///{tmp_path}/timeline.db") as store:
        store.add_index(Activity, "contact_id", ("occurred_at", "desc"))
        layout = layout_of(Activity)
        condition = layout.schema.validate(field("contact_id").eq("c-1"))
        where, params, _ = compile_where(layout, SqliteDialect(), condition, store.clock.now())
        order = compile_order(layout, SqliteDialect(), resolve_order(layout.schema, [("occurred_at", "desc")]))
        plan = store.explain(
            f"SELECT data FROM crm_activity WHERE tenant = '' AND ({where}) ORDER BY {order} LIMIT 20", params
        )
    assert any("crm_activity__contact_id__occurred_at_desc" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan  # the index gives the order
    with pytest.raises(RuleError):
        store.add_index(Activity, "contact_id", ("occurred_at", "sideways"))


def test_sqlite_connections_get_the_page_cache_asked_for(tmp_path):
    store = SqliteStore(tmp_path / "crm.db", cache_mib=16)
    with store.transaction() as tx:
        assert tx.cursor.execute("PRAGMA cache_size").fetchone() == (-16 * 1024,)
    store.close()


@pytest.mark.parametrize("bad", [0, -4, 1.5, True, "64"])
def test_a_page_cache_that_is_not_a_whole_number_of_mib_is_refused(tmp_path, bad):
    with pytest.raises(ValidationError) as caught:
        SqliteStore(tmp_path / "crm.db", cache_mib=bad)
    assert caught.value.problems[0].path == "cache_mib"
