"""PostgreSQL bulk imports use binary COPY: the stored columns must be exactly what a plain INSERT stores.

Documents go to ``json``/``jsonb`` columns as crmkit's own text; a wrong binary form could still read
back (a document stored as one JSON string parses twice), so these tests look at the stored values.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from crmkit.entities import Contact, LineItem, Opportunity, Order
from crmkit.money import Money
from crmkit.storage import open_store

WHEN = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
BULK = 80  # over the 64 rows from which the adapter uses COPY


def contact(n):
    return Contact(
        id=f"c{n:03d}",
        first_name="Zoë",
        email=f"zoe.{n}@example.com",
        tags=frozenset({"vip", 'quote"d', "back\\slash"}),
        custom_fields={"score": Decimal("1.50"), "note": "tab\there"},
        created_at=WHEN,
        updated_at=WHEN,
    )


@pytest.fixture
def url(postgres_schema_url):
    return postgres_schema_url


def stored(url, sql):
    import psycopg  # noqa: PLC0415 - the postgres extra

    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()


def both_ways(url, records):
    """Store ``records[0]`` with one INSERT and the rest with COPY."""
    store = open_store(url)
    cls = type(records[0])
    with store.transaction() as tx:
        tx[cls].add(records[0])
        tx[cls].bulk_add(records[1:])
        tx.commit()
    store.close()


def test_documents_are_stored_as_json_objects_not_as_json_strings(url):
    both_ways(url, [contact(n) for n in range(BULK)])
    assert stored(url, "SELECT DISTINCT json_typeof(data) FROM crm_contact") == [("object",)]
    assert stored(url, "SELECT DISTINCT jsonb_typeof(data) FROM crmkit_audit") == [("object",)]


def test_every_typed_column_holds_what_a_single_insert_holds(url):
    both_ways(url, [contact(n) for n in range(BULK)])
    columns = "first_name, email LIKE 'zoe.%', tags, created_at, updated_at, version, data::text"
    rows = stored(url, f"SELECT {columns} FROM crm_contact ORDER BY id")
    first = rows[0]

    def document(row):  # the text as stored, without what differs between the contacts
        data = json.loads(row[6])
        return {key: value for key, value in data.items() if key not in {"id", "email"}}

    for row in rows[1:]:
        assert row[:6] == first[:6]
        assert document(row) == document(first)
    assert first[2] == ["back\\slash", 'quote"d', "vip"]
    assert first[3] == WHEN
    audit = stored(url, "SELECT DISTINCT type, at, data->>'at' FROM crmkit_audit")
    assert audit == [("entity_created", WHEN, WHEN.isoformat())]


def test_money_dates_and_derived_totals_go_through_copy_exactly(url):
    lines = (LineItem(quantity=Decimal(3), unit_price=Money(Decimal("19.99"), "EUR")),)
    orders = [Order(id=f"o{n:03d}", number=f"N{n}", currency="EUR", lines=lines) for n in range(BULK)]
    both_ways(url, orders)
    assert stored(url, "SELECT DISTINCT total_minor FROM crm_order") == [(5997,)]
    deals = [
        Opportunity(id=f"d{n:03d}", name="Deal", amount=Money(Decimal("1234.5678"), "EUR")) for n in range(BULK)
    ]
    both_ways(url, deals)
    assert stored(url, 'SELECT DISTINCT "amount__amount" FROM crm_opportunity') == [(Decimal("1234.5678"),)]
