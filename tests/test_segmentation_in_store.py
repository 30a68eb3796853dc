"""RFM pushed down to the store: the same scores as ``rfm_scores`` on the same orders, in every adapter.

SQLite and PostgreSQL compute the rows in one query (PostgreSQL only when ``CRMKIT_TEST_POSTGRES_URL`` is
set, see ``tests/conftest.py``); the in-memory store and a store seen through an access policy compute them
in Python. Every case compares with ``rfm_scores(order_rows(orders), as_of)``.
"""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.access import AccessPolicy, FieldRestriction, Principal, Role
from crmkit.clock import FixedClock
from crmkit.entities import LineItem, Order, OrderStatus
from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.segmentation import COUNTED_STATUSES, RfmScore, order_rows, rfm_scores, rfm_scores_in_store
from crmkit.storage import open_store

AS_OF = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
ADAPTERS = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=ADAPTERS)
def store(request, tmp_path):
    clock = FixedClock(AS_OF)
    if request.param == "memory":
        opened = open_store("memory://", clock=clock)
    elif request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'crm.db'}", clock=clock)
    else:
        opened = open_store(request.getfixturevalue("postgres_schema_url"), clock=clock)
    yield opened
    opened.close()


def order(contact, at, price, *, currency="EUR", status=OrderStatus.PAID, account=None, quantity=1):
    line = LineItem(quantity=Decimal(quantity), unit_price=Money(price, currency))
    number = uuid.uuid4().hex[:12]
    return Order(
        number=number,
        contact_id=contact,
        account_id=account,
        ordered_at=at,
        currency=currency,
        lines=[line],
        status=status,
    )


def stored(store, orders):
    with store.transaction() as tx:
        tx[Order].bulk_add(orders, strict=True)
        tx.commit()


def in_store(store, as_of=AS_OF, **kwargs):
    kwargs.setdefault("currency", "EUR")
    with store.transaction() as tx:
        return rfm_scores_in_store(tx, as_of, **kwargs)


def expected(orders, as_of=AS_OF, *, currency="EUR", customer="contact", statuses=COUNTED_STATUSES):
    mine = [o for o in orders if o.currency == currency]
    return rfm_scores(order_rows(mine, customer=customer, statuses=frozenset(statuses)), as_of)


# -- the definitions ---------------------------------------------------------------------------------


def test_the_store_scores_equal_rfm_scores_of_the_same_orders(store):
    orders = [
        order(f"c{i % 9}", AS_OF - timedelta(hours=29 * i, microseconds=7 * i), f"{3 + i % 11}.{i % 100:02d}")
        for i in range(60)
    ]
    stored(store, orders)
    got = in_store(store)
    assert got == expected(orders)
    assert all(isinstance(score, RfmScore) and isinstance(score.monetary, Decimal) for score in got)


def test_recency_counts_whole_days_exactly_to_the_microsecond(store):
    day, tick = timedelta(days=1), timedelta(microseconds=1)
    orders = [
        order("a", AS_OF - day, "1"),  # exactly one day: 1
        order("b", AS_OF - day + tick, "1"),  # a microsecond short of a day: 0
        order("c", AS_OF - day - tick, "1"),  # a microsecond over: 1
        order("d", AS_OF, "1"),  # at as_of: counts, 0 days
        order("e", AS_OF + tick, "1"),  # after as_of: left out
        order("f", AS_OF - 30 * day + tick, "1"),  # tenure and recency 29
        order("f", AS_OF - 2 * day - tick, "1"),  # recency 2
    ]
    stored(store, orders)
    got = {s.customer_id: (s.recency, s.tenure) for s in in_store(store)}
    assert got == {"a": (1, 1), "b": (0, 0), "c": (1, 1), "d": (0, 0), "f": (2, 29)}
    assert in_store(store) == expected(orders)


def test_times_in_other_zones_count_as_the_instants_they_are(store):
    zone = timezone(timedelta(hours=-11, minutes=-30))
    orders = [order("a", (AS_OF - timedelta(days=3)).astimezone(zone), "5"), order("b", AS_OF, "1")]
    stored(store, orders)
    assert [s.recency for s in in_store(store)] == [3, 0]


def test_ties_are_broken_by_customer_id_and_fewer_than_five_customers_get_the_top_scores_first(store):
    orders = [order(c, AS_OF - timedelta(days=4), "10") for c in ("z", "m", "a")]
    stored(store, orders)
    got = in_store(store)
    assert [(s.customer_id, s.r, s.f, s.m) for s in got] == [("a", 1, 1, 1), ("m", 2, 2, 2), ("z", 3, 3, 3)]
    assert got == expected(orders)


def test_a_single_customer_scores_one_and_no_orders_give_no_scores(store):
    assert in_store(store) == []
    stored(store, [order("solo", AS_OF - timedelta(days=2), "3")])
    (solo,) = in_store(store)
    assert (solo.r, solo.f, solo.m, solo.monetary) == (1, 1, 1, Decimal("3.00"))


def test_only_orders_in_the_currency_with_a_counted_status_and_a_customer_count(store):
    orders = [
        order("a", AS_OF - timedelta(days=1), "10"),
        order("a", AS_OF - timedelta(days=2), "900", currency="USD"),
        order("a", AS_OF - timedelta(days=3), "70", status=OrderStatus.CANCELLED),
        order("b", AS_OF - timedelta(days=1), "1", status=OrderStatus.DRAFT),
        order(None, AS_OF - timedelta(days=1), "5", account="acc1"),
        order("c", AS_OF - timedelta(days=9), "1000", currency="JPY"),
    ]
    stored(store, orders)
    assert [(s.customer_id, s.frequency, s.monetary) for s in in_store(store)] == [("a", 1, Decimal("10.00"))]
    (jpy,) = in_store(store, currency="jpy")
    assert (jpy.customer_id, jpy.monetary, jpy.recency) == ("c", Decimal(1000), 9)
    drafts = in_store(store, statuses={OrderStatus.DRAFT, "cancelled"})
    assert [(s.customer_id, s.monetary) for s in drafts] == [("a", Decimal("70.00")), ("b", Decimal("1.00"))]
    assert drafts == expected(orders, statuses={OrderStatus.DRAFT, OrderStatus.CANCELLED})


def test_accounts_can_be_the_customers(store):
    orders = [
        order("p1", AS_OF - timedelta(days=1), "10", account="acme"),
        order("p2", AS_OF - timedelta(days=5), "20", account="acme"),
        order("p3", AS_OF - timedelta(days=2), "5", account="initech"),
    ]
    stored(store, orders)
    got = in_store(store, customer="account")
    assert [(s.customer_id, s.frequency, s.monetary) for s in got] == [
        ("acme", 2, Decimal("30.00")),
        ("initech", 1, Decimal("5.00")),
    ]
    assert got == expected(orders, customer="account")


def test_each_tenant_scores_its_own_orders(store):
    stored(store, [order("a", AS_OF - timedelta(days=1), "10")])
    other = store.for_tenant("t2")
    stored(other, [order("b", AS_OF - timedelta(days=1), "20")])
    assert [s.customer_id for s in in_store(store)] == ["a"]
    assert [s.customer_id for s in in_store(other)] == ["b"]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MEMBER])
def test_a_store_seen_through_an_access_policy_scores_the_orders_its_user_may_see(store, role):
    orders = [order(f"c{i}", AS_OF - timedelta(days=i), str(i + 1)) for i in range(7)]
    stored(store, orders)
    # A field hidden from members: they read their orders through the repository (computed in Python);
    # admins see everything, so their query runs in the database. Both see every order here.
    policy = AccessPolicy(restricted=[FieldRestriction(kind="order", field="campaign_id", roles={Role.MANAGER})])
    viewer = store.with_access(Principal(user_id="ann", role=role), policy)
    with viewer.transaction() as tx:
        got = rfm_scores_in_store(tx, AS_OF, currency="EUR")
    assert got == expected(orders)


# -- bad arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"as_of": datetime(2026, 1, 1)}, "as_of"),  # noqa: DTZ001 - the point
        ({"as_of": "2026-01-01"}, "as_of"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": 978}, "currency"),
        ({"customer": "lead"}, "customer"),
        ({"statuses": []}, "statuses"),
        ({"statuses": "paid"}, "statuses"),
        ({"statuses": ["paid", "shipped"]}, "statuses[1]"),
    ],
)
def test_bad_arguments_are_validation_errors_naming_them(kwargs, path):
    store = open_store("memory://")
    arguments = {"as_of": AS_OF, "currency": "EUR", **kwargs}
    with store.transaction() as tx, pytest.raises(ValidationError) as caught:
        rfm_scores_in_store(tx, arguments.pop("as_of"), **arguments)
    assert caught.value.paths == (path,)


def test_a_source_without_the_method_is_refused():
    with pytest.raises(ValidationError) as caught:
        rfm_scores_in_store(object(), AS_OF, currency="EUR")
    assert caught.value.paths == ("source",)


# -- property: any orders, any adapter ---------------------------------------------------------------

# Minutes, plus microseconds near whole days before AS_OF, so day boundaries are hit often.
offsets = st.one_of(
    st.integers(-3 * 24 * 60, 90 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)),
    st.tuples(st.integers(0, 60), st.integers(-2, 2)).map(
        lambda pair: timedelta(days=pair[0], microseconds=pair[1])
    ),
)
order_strategy = st.builds(
    lambda contact, offset, cents, status, currency: order(
        contact, AS_OF - offset, str(Decimal(cents).scaleb(-2)), status=status, currency=currency
    ),
    st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", "ab", "B", "é"]),
    offsets,
    st.sampled_from([0, 100, 999, 1_000, 4_999, 123_456]),
    st.sampled_from([OrderStatus.PAID, OrderStatus.PLACED, OrderStatus.CANCELLED]),
    st.sampled_from(["EUR", "EUR", "EUR", "USD"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(order_strategy, max_size=40))
def test_any_orders_give_the_scores_rfm_scores_gives(store, orders):
    tenant = f"t{uuid.uuid4().hex[:10]}"  # a fresh tenant per example, in the same database
    mine = store.for_tenant(tenant)
    if orders:
        stored(mine, orders)
    assert in_store(mine) == expected(orders)
