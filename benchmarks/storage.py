"""Storage cases: crmkit's SQLite adapter against raw ``sqlite3`` and the SQLAlchemy ORM.

Two ORM peers insert: ``sqlalchemy-orm`` maps the same three columns as the raw peer (id, email and
the JSON document); ``sqlalchemy-orm-columns`` maps what crmkit's table holds (the contact's typed
columns with the same three indexes, and the document), the model a developer would write to query
contacts by their fields. Neither writes an audit row, which crmkit does for every record. A last peer,
``sqlite3-crmkit-layout``, is the database's own share of crmkit's insert: raw ``sqlite3`` writing the
very rows crmkit writes (record and audit row, built untimed by a crmkit import read back) into
crmkit's schema, so the gap between it and crmkit is crmkit's own work.

The cases are bulk insert, get by id and get by indexed email (and PostgreSQL against raw ``COPY`` when
a server is given). Insert peers get each contact as a plain dict, prepared untimed, and serialise it to
JSON in the timed work, as a developer using a raw driver would; crmkit gets the entities.

Every contender stores the same contacts (about 400 bytes of JSON each) built from a fixed seed.
Insert contenders start from an empty database file in each repetition (creating their schema is part
of the timed work, a few milliseconds); the get cases read from a database filled once, untimed.
Answers are the stored ids (insert) or the fetched records' emails (gets), so every contender must
store and find the same rows.

Set ``CRMKIT_BENCH_POSTGRES_URL`` (or ``CRMKIT_TEST_POSTGRES_URL``) to a database the benchmark may
fill and empty to run the PostgreSQL insert case.
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Case, Contender, Skip, postgres_url

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from benchmarks.harness import Work
    from crmkit.entities import Contact

__all__ = ["CASES", "Lookups", "iter_contacts", "make_contacts", "make_lookups"]

SEED = 7_331
_FIRST = ["Ada", "Grace", "Hedy", "Alan", "Katherine", "Emmy", "Claude", "Margaret", "Donald", "Barbara"]
_LAST = ["Lovelace", "Hopper", "Lamarr", "Turing", "Johnson", "Noether", "Shannon", "Hamilton", "Knuth"]
_TITLES = ["Head of Operations", "VP Sales", "CTO", "Procurement Lead", "Marketing Manager"]
_CITIES = [
    ("Berlin", "DE", "10115"),
    ("London", "GB", "EC1A 1BB"),
    ("Paris", "FR", "75001"),
    ("Austin", "US", "73301"),
]


def make_contacts(count: int) -> list[Contact]:
    """``count`` realistic contacts from a fixed seed (a prefix of one stream)."""
    return list(iter_contacts(count))


def iter_contacts(count: int) -> Iterator[Contact]:
    """The contacts of :func:`make_contacts`, one at a time (for stores too big to build in memory)."""
    from crmkit.entities import Address, Contact  # noqa: PLC0415 - keep the harness import light

    rng = random.Random(SEED)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, country, postal = rng.choice(_CITIES)
        yield Contact(
            id=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            created_at=start - timedelta(minutes=number),
            updated_at=start,
            first_name=first,
            last_name=last,
            email=f"{first.lower()}.{last.lower()}.{number}@example.com",
            phone=f"+4930{rng.randint(1_000_000, 9_999_999)}",
            title=rng.choice(_TITLES),
            address=Address(
                street=f"{rng.randint(1, 200)} Main Street",
                city=city,
                postal_code=postal,
                country=country,
            ),
            tags=frozenset(rng.sample(["customer", "newsletter", "vip", "partner"], 2)),
            custom_fields={
                "segment": rng.choice(["smb", "mid", "enterprise"]),
                "nps": rng.randint(0, 10),
            },
        )


def _fresh_path(tmp: Path) -> Path:
    """A new database file in ``tmp``, after removing the earlier repetitions' files (and their WAL)."""
    for old in tmp.glob("*.db*"):
        old.unlink()
    return tmp / f"{uuid.uuid4().hex}.db"


def _raw_dicts(contacts: Sequence[Contact]) -> list[tuple[str, str | None, dict[str, Any]]]:
    from crmkit.serialization import to_data  # noqa: PLC0415

    return [(c.id, c.email, to_data(c)) for c in contacts]


def _raw_rows(contacts: Sequence[Contact]) -> list[tuple[str, str | None, str]]:
    return [(id_, email, _dumps(data)) for id_, email, data in _raw_dicts(contacts)]


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _raw_connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


# -- bulk insert ----------------------------------------------------------------------------------


def _crmkit_insert(contacts: Sequence[Contact]) -> Work:
    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.storage import SqliteStore  # noqa: PLC0415

    tmp = Path(tempfile.mkdtemp(prefix="crmkit-bench-"))

    def work() -> list[Any]:
        store = SqliteStore(_fresh_path(tmp))
        with store.transaction() as tx:
            report = tx[Contact].bulk_add(contacts)
            tx.commit()
        store.close()
        return [entity.id for entity in report.stored]

    return work


def _raw_insert(contacts: Sequence[Contact]) -> Work:
    dicts = _raw_dicts(contacts)  # plain dicts, untimed; dumping them to JSON is timed
    tmp = Path(tempfile.mkdtemp(prefix="raw-bench-"))

    def work() -> list[Any]:
        connection = _raw_connect(_fresh_path(tmp))
        connection.execute("CREATE TABLE contact (id TEXT PRIMARY KEY, email TEXT, data TEXT NOT NULL)")
        connection.execute("CREATE INDEX contact_email ON contact (email)")
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO contact VALUES (?, ?, ?)", ((i, e, _dumps(d)) for i, e, d in dicts)
        )
        connection.execute("COMMIT")
        connection.close()
        return [row[0] for row in dicts]

    return work


_AUDIT_COLUMNS = "tenant, event_id, type, entity_kind, entity_id, at, actor, data"
_READ_AUDIT = f"SELECT {_AUDIT_COLUMNS} FROM crmkit_audit ORDER BY seq"  # noqa: S608 - constants


def _crmkit_layout_rows(contacts: Sequence[Contact]) -> tuple[list[str], dict[str, list[tuple[Any, ...]]]]:
    """The schema and the rows crmkit writes for ``contacts``: stored once by crmkit, then read back."""
    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.storage import SqliteStore  # noqa: PLC0415

    path = _fresh_path(Path(tempfile.mkdtemp(prefix="crmkit-layout-")))
    store = SqliteStore(path)
    with store.transaction() as tx:
        tx[Contact].bulk_add(contacts)
        tx.commit()
    store.close()
    connection = sqlite3.connect(path)
    tables = ("crm_contact", "crmkit_audit")
    schema = [
        sql
        for (sql,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN (?, ?) AND sql IS NOT NULL "
            "ORDER BY type = 'trigger', type = 'index'",  # tables, then their indexes, then triggers
            tables,
        )
    ]
    rows = {
        "crm_contact": connection.execute("SELECT * FROM crm_contact ORDER BY rowid").fetchall(),
        "crmkit_audit": connection.execute(_READ_AUDIT).fetchall(),
    }
    connection.close()
    path.unlink()
    return schema, rows


def _raw_same_layout_insert(contacts: Sequence[Contact]) -> Work:
    """Raw ``sqlite3`` writing crmkit's rows (built untimed) into crmkit's schema: the database's share."""
    schema, rows = _crmkit_layout_rows(contacts)
    record = rows["crm_contact"]
    insert_record = f"INSERT INTO crm_contact VALUES ({', '.join(['?'] * len(record[0]))})"  # noqa: S608 - constants
    insert_audit = f"INSERT INTO crmkit_audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
    tmp = Path(tempfile.mkdtemp(prefix="raw-layout-bench-"))

    def work() -> list[Any]:
        connection = _raw_connect(_fresh_path(tmp))
        connection.execute("PRAGMA cache_size = -65536")  # crmkit's page cache
        for statement in schema:
            connection.execute(statement)
        connection.execute("BEGIN")
        connection.executemany(insert_record, record)
        connection.executemany(insert_audit, rows["crmkit_audit"])
        connection.execute("COMMIT")
        connection.close()
        return [row[1] for row in record]

    return work


def _sqlalchemy_base() -> tuple[Any, Any]:
    """SQLAlchemy and a fresh declarative base, or a skip when SQLAlchemy is not installed."""
    try:
        import sqlalchemy as sa  # noqa: PLC0415
        from sqlalchemy import orm  # noqa: PLC0415
    except ImportError as exc:
        msg = "SQLAlchemy is not installed (pip install 'crmkit[bench]')"
        raise Skip(msg) from exc

    class Base(orm.DeclarativeBase):
        pass

    return sa, Base


def _sqlalchemy_model() -> tuple[Any, Any]:
    sa, Base = _sqlalchemy_base()  # noqa: N806 - a class

    class ContactRow(Base):
        __tablename__ = "contact"
        # Plain Column attributes: string annotations would not resolve inside this function.
        id = sa.Column(sa.String, primary_key=True)
        email = sa.Column(sa.String, index=True)
        data = sa.Column(sa.Text, nullable=False)

    return Base, ContactRow


def _sqlalchemy_engine(path: Path) -> Any:
    import sqlalchemy as sa  # noqa: PLC0415

    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode = WAL")
    return engine


def _sqlalchemy_insert(contacts: Sequence[Contact]) -> Work:
    base, row_class = _sqlalchemy_model()
    from sqlalchemy import orm  # noqa: PLC0415

    dicts = _raw_dicts(contacts)
    tmp = Path(tempfile.mkdtemp(prefix="sqla-bench-"))

    def work() -> list[Any]:
        engine = _sqlalchemy_engine(_fresh_path(tmp))
        base.metadata.create_all(engine)
        with orm.Session(engine) as session:
            session.add_all(row_class(id=id_, email=email, data=_dumps(data)) for id_, email, data in dicts)
            session.commit()
        engine.dispose()
        return [row[0] for row in dicts]

    return work


# -- gets -----------------------------------------------------------------------------------------


def _sqlalchemy_columns_model() -> tuple[Any, Any]:
    """An ORM model of what crmkit stores: the contact's typed columns, indexed alike, and its document."""
    sa, Base = _sqlalchemy_base()  # noqa: N806 - a class
    text, when = sa.String, sa.DateTime(timezone=True)

    class ContactRow(Base):
        __tablename__ = "contact"
        id = sa.Column(text, primary_key=True)
        version = sa.Column(sa.Integer, nullable=False)
        created_at = sa.Column(when, nullable=False)
        updated_at = sa.Column(when, nullable=False)
        first_name, last_name, title = sa.Column(text), sa.Column(text), sa.Column(text)
        email = sa.Column(text, index=True)
        phone = sa.Column(text, index=True)
        account_id = sa.Column(text, index=True)
        owner_id, stage, timezone = sa.Column(text), sa.Column(text), sa.Column(text)
        do_not_contact = sa.Column(sa.Boolean)
        tags = sa.Column(sa.JSON)
        street, city, region = sa.Column(text), sa.Column(text), sa.Column(text)
        postal_code, country = sa.Column(text), sa.Column(text)
        data = sa.Column(sa.JSON, nullable=False)

    return Base, ContactRow


def _column_values(contact: Contact, data: dict[str, Any]) -> dict[str, Any]:
    address = data["address"] or {}
    plain = ("first_name", "last_name", "title", "email", "phone", "account_id", "owner_id", "timezone")
    return {
        "id": contact.id,
        "version": 1,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
        **{name: data[name] for name in plain},
        "stage": data["stage"],
        "do_not_contact": data["do_not_contact"],
        "tags": data["tags"],
        **{name: address.get(name) for name in ("street", "city", "region", "postal_code", "country")},
        "data": data,
    }


def _sqlalchemy_columns_insert(contacts: Sequence[Contact]) -> Work:
    base, row_class = _sqlalchemy_columns_model()
    from sqlalchemy import orm  # noqa: PLC0415

    rows = [
        _column_values(contact, data)
        for contact, (_, _, data) in zip(contacts, _raw_dicts(contacts), strict=True)
    ]
    tmp = Path(tempfile.mkdtemp(prefix="sqla-columns-bench-"))

    def work() -> list[Any]:
        engine = _sqlalchemy_engine(_fresh_path(tmp))
        base.metadata.create_all(engine)
        with orm.Session(engine) as session:
            session.add_all(row_class(**values) for values in rows)
            session.commit()
        engine.dispose()
        return [values["id"] for values in rows]

    return work


class Lookups(list):  # type: ignore[type-arg]
    """The contacts to look up (the items), drawn from a stored ``population`` ten times larger."""

    population: list[Contact]


def make_lookups(count: int) -> Lookups:
    """``count`` random lookups among ``10 * count`` stored contacts (10,000 among 100,000 at full size)."""
    population = make_contacts(10 * count)
    rng = random.Random(SEED + 1)
    lookups = Lookups(rng.choice(population) for _ in range(count))
    lookups.population = population
    return lookups


def _filled_crmkit(contacts: Sequence[Contact]) -> Any:
    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.storage import SqliteStore  # noqa: PLC0415

    store = SqliteStore(_fresh_path(Path(tempfile.mkdtemp(prefix="crmkit-bench-"))))
    with store.transaction() as tx:
        tx[Contact].bulk_add(contacts)
        tx.commit()
    return store


def _filled_raw(contacts: Sequence[Contact]) -> sqlite3.Connection:
    connection = _raw_connect(_fresh_path(Path(tempfile.mkdtemp(prefix="raw-bench-"))))
    connection.execute("CREATE TABLE contact (id TEXT PRIMARY KEY, email TEXT, data TEXT NOT NULL)")
    connection.execute("CREATE INDEX contact_email ON contact (email)")
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO contact VALUES (?, ?, ?)", _raw_rows(contacts))
    connection.execute("COMMIT")
    return connection


def _crmkit_get(lookups: Lookups) -> Work:
    from crmkit.entities import Contact  # noqa: PLC0415

    store = _filled_crmkit(lookups.population)
    wanted = [c.id for c in lookups]

    def work() -> list[Any]:
        with store.transaction() as tx:
            repository = tx[Contact]
            return [repository.get(id_).email for id_ in wanted]

    return work


def _raw_get(lookups: Lookups) -> Work:
    connection = _filled_raw(lookups.population)
    wanted = [c.id for c in lookups]

    def work() -> list[Any]:
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        found = [
            json.loads(cursor.execute("SELECT data FROM contact WHERE id = ?", (id_,)).fetchone()[0])["email"]
            for id_ in wanted
        ]
        cursor.execute("COMMIT")
        return found

    return work


def _sqlalchemy_get(lookups: Lookups) -> Work:
    base, row_class = _sqlalchemy_model()
    from sqlalchemy import orm  # noqa: PLC0415

    engine = _sqlalchemy_engine(_fresh_path(Path(tempfile.mkdtemp(prefix="sqla-bench-"))))
    base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        rows = _raw_rows(lookups.population)
        session.add_all(row_class(id=id_, email=email, data=data) for id_, email, data in rows)
        session.commit()
    wanted = [c.id for c in lookups]

    def work() -> list[Any]:
        with orm.Session(engine) as session:
            found = []
            for id_ in wanted:
                found.append(json.loads(session.get(row_class, id_).data)["email"])
                session.expunge_all()  # no identity-map hits: every get reads the database
            return found

    return work


def _crmkit_by_email(lookups: Lookups) -> Work:
    from crmkit.conditions import Predicate  # noqa: PLC0415
    from crmkit.entities import Contact  # noqa: PLC0415

    store = _filled_crmkit(lookups.population)
    emails = [c.email for c in lookups]

    def work() -> list[Any]:
        with store.transaction() as tx:
            repository = tx[Contact]
            return [
                repository.query(Predicate("email", "eq", email), limit=1).items[0].email for email in emails
            ]

    return work


def _raw_by_email(lookups: Lookups) -> Work:
    connection = _filled_raw(lookups.population)
    emails = [c.email for c in lookups]

    def work() -> list[Any]:
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        found = [
            json.loads(
                cursor.execute("SELECT data FROM contact WHERE email = ? LIMIT 1", (e,)).fetchone()[0]
            )["email"]
            for e in emails
        ]
        cursor.execute("COMMIT")
        return found

    return work


# -- tenants ----------------------------------------------------------------------------------------

#: Tenants in the shared store of the tenant case (each holds a copy of the same contacts).
TENANTS = 100


def _tenant_queries(lookups: Lookups) -> list[Any]:
    from crmkit.conditions import field  # noqa: PLC0415

    # A lookup by indexed email, and one page of a condition on an indexed field, per item.
    return [(c.email, field("phone").eq(c.phone) & field("title").ne("nobody")) for c in lookups]


def _tenant_work(store: Any, lookups: Lookups) -> Work:
    from crmkit.conditions import field  # noqa: PLC0415
    from crmkit.entities import Contact  # noqa: PLC0415

    queries = _tenant_queries(lookups)

    def work() -> list[Any]:
        with store.transaction() as tx:
            repository = tx[Contact]
            found = []
            for email, condition in queries:
                by_email = repository.query(field("email").eq(email), limit=1).items[0]
                page = repository.query(condition, limit=10).items
                found.append((by_email.id, len(page)))
            return found

    return work


def _single_tenant(lookups: Lookups) -> Work:
    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.storage import SqliteStore  # noqa: PLC0415

    store = SqliteStore(_fresh_path(Path(tempfile.mkdtemp(prefix="crmkit-tenant-"))))
    with store.transaction() as tx:
        tx[Contact].bulk_add(lookups.population)
        tx.commit()
    return _tenant_work(store, lookups)


def _many_tenants(lookups: Lookups) -> Work:
    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.storage import SqliteStore  # noqa: PLC0415

    store = SqliteStore(_fresh_path(Path(tempfile.mkdtemp(prefix="crmkit-tenants-"))))
    for number in range(TENANTS):
        with store.for_tenant(f"t-{number:03d}").transaction() as tx:
            tx[Contact].bulk_add(lookups.population)  # the same ids in every tenant: keys are per tenant
            tx.commit()
    return _tenant_work(store.for_tenant(f"t-{TENANTS // 2:03d}"), lookups)


# -- PostgreSQL -----------------------------------------------------------------------------------


def _reset_postgres(url: str) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS crmkit_bench CASCADE")
        connection.execute("CREATE SCHEMA crmkit_bench")


def _crmkit_postgres_insert(contacts: Sequence[Contact]) -> Work:
    url = postgres_url()
    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.storage import open_store  # noqa: PLC0415

    def work() -> list[Any]:
        _reset_postgres(url)
        store = open_store(url, options="-c search_path=crmkit_bench")
        with store.transaction() as tx:
            report = tx[Contact].bulk_add(contacts)
            tx.commit()
        store.close()
        return [entity.id for entity in report.stored]

    return work


def _raw_copy(contacts: Sequence[Contact]) -> Work:
    url = postgres_url()
    import psycopg  # noqa: PLC0415

    dicts = _raw_dicts(contacts)

    def work() -> list[Any]:
        _reset_postgres(url)
        with psycopg.connect(url, options="-c search_path=crmkit_bench") as connection:
            connection.execute("CREATE TABLE contact (id text PRIMARY KEY, email text, data jsonb NOT NULL)")
            connection.execute("CREATE INDEX contact_email ON contact (email)")
            with (
                connection.cursor() as cursor,
                cursor.copy("COPY contact (id, email, data) FROM STDIN") as copy,
            ):
                for id_, email, data in dicts:
                    copy.write_row((id_, email, _dumps(data)))
            connection.commit()
        return [row[0] for row in dicts]

    return work


_BENCH_SCHEMA = "-c search_path=crmkit_bench"


def _postgres_layout_copy(contacts: Sequence[Contact]) -> Work:
    """Binary ``COPY`` of crmkit's own rows into crmkit's schema: the server's share of crmkit's insert.

    The rows are those a crmkit import wrote (copied out untimed, in PostgreSQL's binary form), so the
    timed work is only the server storing them with crmkit's tables, indexes and audit log.
    """
    url = postgres_url()
    import psycopg  # noqa: PLC0415

    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.storage import open_store  # noqa: PLC0415

    _reset_postgres(url)
    store = open_store(url, options=_BENCH_SCHEMA)
    with store.transaction() as tx:
        tx[Contact].bulk_add(contacts)
        tx.commit()
    store.close()
    copies = {
        "crm_contact": ("SELECT * FROM crm_contact", "crm_contact"),
        "crmkit_audit": (_READ_AUDIT, f"crmkit_audit ({_AUDIT_COLUMNS})"),
    }
    blocks: dict[str, bytes] = {}
    with psycopg.connect(url, options=_BENCH_SCHEMA) as connection, connection.cursor() as cursor:
        for name, (query, _) in copies.items():
            with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
                blocks[name] = b"".join(bytes(block) for block in copy)
    ids = [contact.id for contact in contacts]

    def work() -> list[Any]:
        _reset_postgres(url)
        open_store(url, options=_BENCH_SCHEMA).close()  # crmkit's schema, as crmkit's own run creates it
        with psycopg.connect(url, options=_BENCH_SCHEMA) as connection:
            with connection.cursor() as cursor:
                for name, (_, target) in copies.items():
                    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
                        copy.write(blocks[name])
            connection.commit()
        return ids

    return work


_SIZES = {"tiny": 2_000, "small": 20_000, "full": 100_000}
_GET_SIZES = {"tiny": 200, "small": 2_000, "full": 10_000}


def _summary(answers: Sequence[Any]) -> str:
    return f"{len(answers):,} answers, {len(set(answers)):,} distinct"


CASES = (
    Case(
        name="storage-insert",
        description="bulk insert of contacts into an empty SQLite database, one transaction",
        unit="contact",
        sizes=_SIZES,
        make_items=make_contacts,
        contenders=(
            Contender("crmkit", _crmkit_insert, distribution="crmkit"),
            Contender("sqlite3-raw", _raw_insert),
            Contender("sqlalchemy-orm", _sqlalchemy_insert, distribution="SQLAlchemy"),
            Contender("sqlalchemy-orm-columns", _sqlalchemy_columns_insert, distribution="SQLAlchemy"),
            Contender("sqlite3-crmkit-layout", _raw_same_layout_insert),
        ),
        summarize=_summary,
    ),
    Case(
        name="storage-get",
        description="random gets by id from a filled SQLite database (crmkit returns validated entities)",
        unit="get",
        sizes=_GET_SIZES,
        make_items=make_lookups,
        contenders=(
            Contender("crmkit", _crmkit_get, distribution="crmkit"),
            Contender("sqlite3-raw", _raw_get),
            Contender("sqlalchemy-orm", _sqlalchemy_get, distribution="SQLAlchemy"),
        ),
        summarize=_summary,
    ),
    Case(
        name="storage-get-by-email",
        description="random lookups by indexed email (crmkit: a condition query compiled to SQL)",
        unit="get",
        sizes=_GET_SIZES,
        make_items=make_lookups,
        contenders=(
            Contender("crmkit", _crmkit_by_email, distribution="crmkit"),
            Contender("sqlite3-raw", _raw_by_email),
        ),
        summarize=_summary,
    ),
    Case(
        name="storage-tenant-query",
        description=(
            f"crmkit: email lookups and condition pages in one tenant of {TENANTS} sharing a SQLite file, "
            "against the same store with one tenant (population: 10 contacts per item, in every tenant)"
        ),
        unit="query pair",
        sizes={"tiny": 20, "small": 200, "full": 1_000},
        make_items=make_lookups,
        contenders=(
            Contender("crmkit", _many_tenants, distribution="crmkit"),
            Contender("crmkit-single-tenant", _single_tenant),
        ),
        summarize=_summary,
    ),
    Case(
        name="storage-postgres-insert",
        description="bulk insert of contacts into PostgreSQL, one transaction (needs a server URL)",
        unit="contact",
        sizes=_SIZES,
        make_items=make_contacts,
        contenders=(
            Contender("crmkit", _crmkit_postgres_insert, distribution="crmkit"),
            Contender("psycopg-copy", _raw_copy, distribution="psycopg"),
            Contender("psycopg-copy-crmkit-layout", _postgres_layout_copy, distribution="psycopg"),
        ),
        summarize=_summary,
    ),
)
