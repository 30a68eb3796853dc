"""Erasure across a randomly filled store: no personal value left in the raw database, metrics unchanged."""

import json
import os
import sqlite3
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock
from crmkit.entities import (
    Activity,
    ActivityKind,
    Address,
    Channel,
    Consent,
    Contact,
    EntityRef,
    Feedback,
    FeedbackKind,
    Lead,
    LineItem,
    Opportunity,
    Order,
    StageChange,
    Task,
    Ticket,
)
from crmkit.events import Assigned
from crmkit.metrics import (
    PeriodRange,
    csat,
    customer_value,
    lead_conversion,
    nps,
    response_times,
    retention,
    sales_summary,
)
from crmkit.money import Money
from crmkit.privacy import PersonalData, erase_person, export_person, grant_consent
from crmkit.storage import open_store

T0 = datetime(2025, 1, 1, 9, tzinfo=UTC)
# Whether this SQLite zeroes deleted content (a build option; on in Debian's and Ubuntu's builds).
SECURE_DELETE = sqlite3.connect(":memory:").execute("PRAGMA secure_delete").fetchone()[0] == 1
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
DECLARED = PersonalData({"contact": ["nickname"], "*": ["linkedin"]})
# Tokens use letters that are not hex digits, so they never occur inside ids by chance.
_TOKEN = st.text("ghijklmnopqrstuvwxyz", min_size=6, max_size=6)


@st.composite
def people(draw):
    tokens = draw(st.lists(_TOKEN, min_size=2, max_size=4, unique=True))
    return [
        {
            "token": token,
            "index": index,
            "orders": draw(st.lists(st.tuples(st.integers(0, 360), st.integers(1, 500)), max_size=3)),
            "deals": draw(
                st.lists(st.tuples(st.integers(0, 300), st.sampled_from(["won", "lost", "open"])), max_size=2)
            ),
            "tickets": draw(st.lists(st.tuples(st.integers(0, 300), st.integers(1, 72)), max_size=2)),
            "feedback": draw(
                st.lists(st.tuples(st.sampled_from(list(FeedbackKind)), st.integers(1, 5)), max_size=2)
            ),
            "leads": draw(st.integers(0, 2)),
            "converted": draw(st.booleans()),
        }
        for index, token in enumerate(tokens)
    ]


def personal_values(person):
    t = person["token"]
    return {
        f"Fn{t}",
        f"Ln{t}",
        f"{t}@example.org",
        f"+4420794601{person['index']:02d}",
        f"{t} Street",
        f"City{t}",
        f"Nick{t}",
        f"in/{t}",
    }


def records_of(person):
    t, n = person["token"], person["index"]
    day = timedelta(days=1)
    contact = Contact(
        id=f"c{n}",
        first_name=f"Fn{t}",
        last_name=f"Ln{t}",
        email=f"{t}@example.org",
        phone=f"+4420794601{n:02d}",
        address=Address(street=f"{t} Street", city=f"City{t}", country="GB"),
        custom_fields={"nickname": f"Nick{t}", "linkedin": f"in/{t}", "segment": "gold"},
        created_at=T0,
    )
    out = [contact]
    for k in range(person["leads"]):
        converted = person["converted"] and k == 0
        out.append(
            Lead(
                id=f"l{n}x{k}",
                first_name=f"Fn{t}",
                email=f"{t}@example.org",
                company="Engines Ltd" if k else None,
                source=Channel.WEB_FORM,
                converted_contact_id=contact.id if converted else None,
                converted_at=T0 + 5 * day if converted else None,
                created_at=T0,
            )
        )
    for k, (offset, amount) in enumerate(person["orders"]):
        at = T0 + offset * day
        line = LineItem(description="plan", quantity=Decimal(1), unit_price=Money(Decimal(amount), "EUR"))
        out.append(
            Order(
                id=f"o{n}x{k}",
                number=f"N{n}{k}",
                contact_id=contact.id,
                currency="EUR",
                lines=(line,),
                ordered_at=at,
                created_at=at,
            )
        )
    for k, (offset, outcome) in enumerate(person["deals"]):
        at = T0 + offset * day
        history = [StageChange(to_stage="prospecting", at=at)]
        stage, closed = "prospecting", None
        if outcome != "open":
            stage, closed = outcome, at + 20 * day
            history.append(StageChange(from_stage="prospecting", to_stage=outcome, at=closed))
        out.append(
            Opportunity(
                id=f"d{n}x{k}",
                name=f"Renewal for Ln{t}",
                contact_id=contact.id,
                amount=Money("1000", "EUR"),
                stage=stage,
                stage_history=tuple(history),
                closed_at=closed,
                lost_reason="price" if outcome == "lost" else None,
                created_at=at,
            )
        )
    for k, (offset, hours) in enumerate(person["tickets"]):
        at = T0 + offset * day
        out.append(
            Ticket(
                id=f"t{n}x{k}",
                subject=f"Fn{t} cannot log in",
                description=f"Call {t}@example.org",
                contact_id=contact.id,
                first_response_at=at + timedelta(hours=hours),
                resolved_at=at + timedelta(hours=2 * hours),
                created_at=at,
            )
        )
    for k, (survey, score) in enumerate(person["feedback"]):
        out.append(
            Feedback(
                id=f"f{n}x{k}",
                survey=survey,
                score=score * 2 if survey is FeedbackKind.NPS else score,
                comment=f"Thanks, Ln{t}",
                contact_id=contact.id,
                responded_at=T0 + 30 * day,
                created_at=T0,
            )
        )
    out.append(
        Activity(
            id=f"a{n}",
            activity_type=ActivityKind.CALL,
            direction="inbound",
            subject=f"Call with Fn{t}",
            body=f"Lives at {t} Street",
            contact_id=contact.id,
            occurred_at=T0,
            created_at=T0,
        )
    )
    out.append(
        Task(id=f"k{n}", title=f"Send Ln{t} the contract", regarding=EntityRef.to(contact), created_at=T0)
    )
    out.append(
        grant_consent(contact, purpose="marketing", channel="email", wording="News", source="form", at=T0)
    )
    return out


def fill(store, world):
    with store.transaction(actor="importer") as tx:
        for person in world:
            for record in records_of(person):
                tx.repository(type(record)).add(record)
            # An event that carries personal values into the audit log, as a host's events may.
            t = person["token"]
            reason = f"routed Fn{t} Ln{t} <{t}@example.org>, call +4420794601{person['index']:02d}"
            tx.record(
                Assigned(entity=EntityRef("contact", f"c{person['index']}"), owner_id="u-1", reason=reason)
            )
        tx.commit()


def metrics(store):
    with store.transaction() as tx:
        orders = list(tx[Order].stream())
        deals = list(tx[Opportunity].stream())
        tickets = list(tx[Ticket].stream())
        feedback = list(tx[Feedback].stream())
        leads = list(tx[Lead].stream())
    periods = PeriodRange("quarter", date(2025, 1, 1), date(2025, 12, 31))
    start, end = T0 - timedelta(days=1), AS_OF
    return {
        "value": customer_value(orders, periods=periods),
        "retention": retention(orders, periods=periods),
        "sales": sales_summary(deals, start=start, end=end, as_of=AS_OF, currency="EUR"),
        "service": response_times(tickets, start=start, end=end, as_of=AS_OF),
        "csat": csat(feedback, start=start, end=end),
        "nps": nps(feedback, start=start, end=end),
        "leads": lead_conversion(leads, start=start, end=end, as_of=AS_OF, by="source"),
    }


def leftovers(texts, values):
    lowered = [value.lower() for value in values]
    return sorted({value for text in texts for value in lowered if value in text.lower()})


def sqlite_texts(path):
    connection = sqlite3.connect(path)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        yield value.decode("utf-8", "replace")
                    elif isinstance(value, str):
                        yield value
    finally:
        connection.close()


def postgres_texts(url, schema):
    import psycopg  # noqa: PLC0415 - only when PostgreSQL is tested

    with psycopg.connect(url) as connection:
        columns = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        for table, column in columns:
            query = f'SELECT "{column}"::text FROM "{schema}"."{table}"'
            for (value,) in connection.execute(query):
                if value is not None:
                    yield value


def erase_and_check(store, world, victim, texts):
    fill(store, world)
    before = metrics(store)
    values = personal_values(victim)
    assert leftovers(texts(), values), "the values must be stored before the erasure"
    person = EntityRef("contact", f"c{victim['index']}")
    with store.transaction() as tx:
        exported = json.dumps(export_person(tx, person, personal_data=DECLARED))
    assert leftovers([exported], values) == sorted(value.lower() for value in values)
    with store.transaction(actor="dpo") as tx:
        report = erase_person(tx, person, personal_data=DECLARED)
        tx.commit()
    with store.transaction() as tx:
        assert leftovers([json.dumps(export_person(tx, person, personal_data=DECLARED))], values) == []
    assert not report.already_erased
    assert report.audit_entries_redacted == 1
    assert leftovers(texts(), values) == []
    for other in world:
        if other is not victim:
            assert leftovers(texts(), personal_values(other)) == sorted(
                v.lower() for v in personal_values(other)
            )
    assert metrics(store) == before
    with store.transaction(actor="dpo") as tx:
        again = erase_person(tx, EntityRef("contact", f"c{victim['index']}"), personal_data=DECLARED)
    assert again.already_erased
    assert again.changed == ()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=people(), pick=st.integers(0, 3))
def test_after_erasure_no_personal_value_is_left_in_the_sqlite_file_and_metrics_are_unchanged(world, pick):
    victim = world[pick % len(world)]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "crm.db")  # noqa: PTH118 - a plain path for sqlite3
        store = open_store(f"sqlite:///{path}", clock=FixedClock(AS_OF))
        try:
            erase_and_check(store, world, victim, lambda: sqlite_texts(path))
        finally:
            store.close()
        if SECURE_DELETE:  # freed pages are zeroed: the closed files hold no trace either
            raw = b"".join(file.read_bytes() for file in Path(folder).iterdir())
            assert [v for v in personal_values(victim) if v.encode() in raw] == []


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=people(), pick=st.integers(0, 3))
def test_after_erasure_no_personal_value_is_left_in_postgresql_and_metrics_are_unchanged(
    postgres_url, world, pick
):
    import psycopg  # noqa: PLC0415 - only when PostgreSQL is tested

    victim = world[pick % len(world)]
    schema = f"crmkit_privacy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}options={quote(f'-c search_path={schema}', safe='')}"
    store = open_store(url, clock=FixedClock(AS_OF))
    try:
        erase_and_check(store, world, victim, lambda: postgres_texts(postgres_url, schema))
    finally:
        store.close()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
def test_the_memory_and_sqlite_stores_keep_the_metrics_through_an_erasure(url):
    world = [
        {
            "token": "ghijkl",
            "index": 0,
            "orders": [(3, 50), (100, 70)],
            "deals": [(5, "won")],
            "tickets": [(2, 4)],
            "feedback": [(FeedbackKind.NPS, 5)],
            "leads": 2,
            "converted": True,
        },
        {
            "token": "mnopqr",
            "index": 1,
            "orders": [(30, 20)],
            "deals": [(9, "lost")],
            "tickets": [],
            "feedback": [],
            "leads": 1,
            "converted": False,
        },
    ]
    store = open_store(url, clock=FixedClock(AS_OF))
    fill(store, world)
    before = metrics(store)
    with store.transaction(actor="dpo") as tx:
        report = erase_person(tx, EntityRef("lead", "l0x1"), personal_data=DECLARED)
        tx.commit()
    assert {ref.id for ref in report.people} == {"c0", "l0x0", "l0x1"}
    assert report.consents_withdrawn == 1
    assert metrics(store) == before
    with store.transaction() as tx:
        contact = tx[Contact].get("c0")
        assert (contact.email, contact.address, contact.custom_fields) == (None, None, {"segment": "gold"})
        assert tx[Ticket].get("t0x0").subject == "[erased]"
        assert tx[Lead].get("l0x0").last_name == "[erased]"  # a lead must keep something to reach it by
        assert tx[Lead].get("l0x1").company == "Engines Ltd"  # a company name is not personal data
        consent_id = next(ref.id for ref in report.changed if ref.kind == "consent")
        assert tx[Consent].get(consent_id).status == "withdrawn"
    store.close()
