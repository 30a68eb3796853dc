"""Derived columns: values computed from a record and stored beside it for queries run in the database.

An order's total is derived from its lines; ``crm_order.total_minor`` holds it in minor units of the
order's currency so that SQL can sum revenue exactly. It is written on insert, bulk import and update,
and filled from the stored documents when an older database gains the column.
"""

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import LineItem, Order
from crmkit.money import CURRENCIES, Money
from crmkit.storage import open_store
from crmkit.storage._sql import layout_of

WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def order(number, currency="EUR", prices=("12.34",), quantity=1):
    lines = tuple(
        LineItem(
            description=f"item {i}", quantity=Decimal(quantity), unit_price=Money(Decimal(price), currency)
        )
        for i, price in enumerate(prices)
    )
    return Order(number=number, currency=currency, lines=lines, ordered_at=WHEN, contact_id="c1")


def stored_totals(url_or_path, *, postgres=False):
    if postgres:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(url_or_path) as connection:
            rows = connection.execute("SELECT number, total_minor FROM crm_order").fetchall()
    else:
        with sqlite3.connect(url_or_path) as connection:
            rows = connection.execute("SELECT number, total_minor FROM crm_order").fetchall()
    return dict(rows)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path):
    """A store URL and what reads its table directly."""
    if request.param == "sqlite":
        path = tmp_path / "crm.db"
        return f"sqlite:///{path}", path, False
    url = request.getfixturevalue("postgres_schema_url")
    return url, url, True


def test_the_order_table_has_a_total_column_that_no_condition_can_reach():
    layout = layout_of(Order)
    assert layout.column("total_minor").derive is not None
    assert "total_minor" not in layout.schema.fields


def test_insert_bulk_import_and_update_write_the_total_in_minor_units(target):
    url, where, postgres = target
    store = open_store(url)
    with store.transaction() as tx:
        tx[Order].add(order("A-1", prices=("12.34", "0.66")))
        tx[Order].bulk_add([order("A-2", currency="JPY", prices=("1500",)), order("A-3", currency="BHD")])
        tx.commit()
    assert stored_totals(where, postgres=postgres) == {"A-1": 1300, "A-2": 1500, "A-3": 12340}
    with store.transaction() as tx:
        first = tx[Order].query({"field": "number", "op": "eq", "value": "A-1"}).items[0]
        tx[Order].update(attrs.evolve(first, lines=(*first.lines, *order("x", prices=("0.01",)).lines)))
        tx.commit()
    store.close()
    assert stored_totals(where, postgres=postgres)["A-1"] == 1301


def test_an_order_without_lines_totals_zero(target):
    url, where, postgres = target
    store = open_store(url)
    with store.transaction() as tx:
        tx[Order].add(order("E-1", prices=()))
        tx.commit()
    store.close()
    assert stored_totals(where, postgres=postgres) == {"E-1": 0}


def test_an_older_database_gains_the_column_filled_from_its_documents(target):
    url, where, postgres = target
    store = open_store(url)
    with store.transaction() as tx:
        tx[Order].bulk_add([order("O-1", prices=("9.99",)), order("O-2", currency="KWD", prices=("1.5",))])
        tx.commit()
    store.close()
    if postgres:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(where) as connection:
            connection.execute("ALTER TABLE crm_order DROP COLUMN total_minor")
    else:
        with sqlite3.connect(where) as connection:
            connection.execute("ALTER TABLE crm_order DROP COLUMN total_minor")
    open_store(url).close()
    assert stored_totals(where, postgres=postgres) == {"O-1": 999, "O-2": 1500}


@settings(max_examples=60, deadline=None)
@given(
    currency=st.sampled_from(sorted(CURRENCIES)),
    cents=st.lists(st.integers(min_value=0, max_value=10**9), max_size=4),
    quantity=st.integers(min_value=1, max_value=50),
)
def test_the_derived_total_is_the_order_total_scaled_exactly(currency, cents, quantity):
    digits = CURRENCIES[currency]
    prices = [str(Decimal(c).scaleb(-digits)) for c in cents]
    made = order("P-1", currency=currency, prices=prices, quantity=quantity)
    derived = layout_of(Order).column("total_minor").derive(made)
    assert isinstance(derived, int)
    assert Decimal(derived).scaleb(-digits) == made.total.amount
