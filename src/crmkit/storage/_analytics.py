"""Analytical queries run in the database: RFM of the stored orders (``crmkit.segmentation`` reads it).

:func:`rfm_rows` is what every adapter's ``Transaction.rfm_rows`` calls (the method
:class:`crmkit.segmentation.RfmSource` asks for). SQLite and PostgreSQL compute the whole answer in one
query: per customer the last and first order, the count and the exact integer sum of
``crm_order.total_minor``, whole days to ``as_of`` and the three ``NTILE(5)`` scores. Only one row per
customer comes back. The in-memory store, and any transaction whose access policy hides some orders
or some of their fields from its principal, compute the same rows in Python from the orders the
repository yields to that principal.

The definitions are ``DESIGN.md``'s, as :func:`crmkit.segmentation.rfm_scores` computes them:

- recency = whole days from the last order to ``as_of``; tenure likewise from the first order. Exact to
  the microsecond: SQLite's times are UTC text ``YYYY-MM-DDTHH:MM:SS.ffffff``, turned into integer
  microseconds (``strftime('%s')`` whole seconds, plus the six fraction digits) for the two times
  per customer only; PostgreSQL takes ``floor`` of the exact numeric epoch of the interval.
- frequency = number of orders; monetary = sum of the totals, in minor units (exact integers).
- each score is ``NTILE(5)`` over the customers ordered by the value (recency descending), ties by
  ascending customer id (byte order in SQLite, the ``"C"`` collation in PostgreSQL: both are code
  point order, as Python's).

Every value is a bound parameter; the one name put into the text, the customer column, comes from a
fixed table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crmkit.entities import Order
from crmkit.errors import ValidationError
from crmkit.money import minor_units
from crmkit.storage._base import schema_of
from crmkit.storage._sql import SqlTransaction, utc_text

if TYPE_CHECKING:
    from collections.abc import Iterable

    from crmkit.storage._base import Transaction

__all__ = ["RFM_TILES", "RfmRows", "rfm_rows", "rfm_rows_of_orders", "rfm_sql"]

#: One row per customer: ``(customer_id, recency, frequency, monetary_minor, tenure, r, f, m)``.
RfmRows = list[tuple[str, int, int, int, int, int, int, int]]

RFM_TILES = 5
_CUSTOMER_COLUMNS = {"contact": "contact_id", "account": "account_id"}
_DIALECTS = frozenset({"sqlite", "postgresql"})  # the ones with a query here; others compute in Python
_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = datetime.resolution

# SQLite: integer microseconds since 1970 of a stored UTC text time (exact: no float on the way).
# (The fraction is cut off before strftime: SQLite would round it to milliseconds, and up to the next second.)
_SQLITE_US = (
    "(CAST(strftime('%s', substr({t}, 1, 19)) AS INTEGER) * 1000000 + CAST(substr({t}, 21, 6) AS INTEGER))"
)

_SQLITE_RFM = """
WITH summary AS (
    SELECT {customer} AS customer_id, MAX(ordered_at) AS last_at, MIN(ordered_at) AS first_at,
           COUNT(*) AS frequency, SUM(total_minor) AS monetary
    FROM crm_order
    WHERE tenant = :tenant AND currency = :currency AND status IN ({statuses})
      AND {customer} IS NOT NULL AND ordered_at <= :as_of_text
    GROUP BY {customer}
), days AS (
    SELECT customer_id, frequency, monetary,
           (:as_of_us - {last_us}) / {day} AS recency,
           (:as_of_us - {first_us}) / {day} AS tenure
    FROM summary
)
SELECT customer_id, recency, frequency, monetary, tenure,
       NTILE({tiles}) OVER (ORDER BY recency DESC, customer_id) AS r,
       NTILE({tiles}) OVER (ORDER BY frequency, customer_id) AS f,
       NTILE({tiles}) OVER (ORDER BY monetary, customer_id) AS m
FROM days
ORDER BY customer_id
"""

_POSTGRES_RFM = """
WITH summary AS (
    SELECT {customer} AS customer_id, MAX(ordered_at) AS last_at, MIN(ordered_at) AS first_at,
           COUNT(*) AS frequency, SUM(total_minor) AS monetary
    FROM crm_order
    WHERE tenant = %(tenant)s AND currency = %(currency)s AND status = ANY(%(statuses)s)
      AND {customer} IS NOT NULL AND ordered_at <= %(as_of)s
    GROUP BY {customer}
), days AS (
    SELECT customer_id, frequency, monetary,
           floor(extract(epoch FROM (%(as_of)s - last_at)) / 86400)::bigint AS recency,
           floor(extract(epoch FROM (%(as_of)s - first_at)) / 86400)::bigint AS tenure
    FROM summary
)
SELECT customer_id, recency, frequency, monetary::bigint, tenure,
       NTILE({tiles}) OVER (ORDER BY recency DESC, customer_id COLLATE "C") AS r,
       NTILE({tiles}) OVER (ORDER BY frequency, customer_id COLLATE "C") AS f,
       NTILE({tiles}) OVER (ORDER BY monetary, customer_id COLLATE "C") AS m
FROM days
ORDER BY customer_id COLLATE "C"
"""


def rfm_sql(
    dialect: str, *, tenant: str, as_of: datetime, currency: str, customer: str, statuses: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    """The RFM query of a SQL dialect (``"sqlite"`` or ``"postgresql"``) and its parameters.

    Raises:
        ValueError: For another dialect or customer.
    """
    column = _CUSTOMER_COLUMNS[customer]
    if dialect == "sqlite":
        marks = {f"status{index}": status for index, status in enumerate(statuses)}
        text = _SQLITE_RFM.format(
            customer=column,
            statuses=", ".join(f":{name}" for name in marks),
            last_us=_SQLITE_US.format(t="last_at"),
            first_us=_SQLITE_US.format(t="first_at"),
            day=_DAY_US,
            tiles=RFM_TILES,
        )
        as_of_us = (as_of - _EPOCH) // _ONE_US
        params = {"tenant": tenant, "currency": currency, "as_of_text": utc_text(as_of), "as_of_us": as_of_us}
        return text, {**params, **marks}
    if dialect == "postgresql":
        text = _POSTGRES_RFM.format(customer=column, tiles=RFM_TILES)
        params = {"tenant": tenant, "currency": currency, "statuses": list(statuses), "as_of": as_of}
        return text, params
    msg = f"no RFM query for the {dialect!r} dialect"
    raise ValueError(msg)


def rfm_rows(
    tx: Transaction, as_of: datetime, *, currency: str, customer: str, statuses: tuple[str, ...]
) -> RfmRows:
    """The RFM rows of ``tx``'s tenant (see the module docstring), sorted by customer id.

    Args:
        tx: An open transaction.
        as_of: Aware; orders after it do not count.
        currency: The upper-case ISO 4217 code of the orders that count.
        customer: ``"contact"`` or ``"account"``.
        statuses: The order status values that count.
    """
    if customer not in _CUSTOMER_COLUMNS:
        raise ValidationError.single("customer", f"must be 'contact' or 'account', got {customer!r}")
    tx._require_open()
    if isinstance(tx, SqlTransaction) and tx.dialect.name in _DIALECTS and _sees_every_order(tx):
        text, params = rfm_sql(
            tx.dialect.name,
            tenant=tx.tenant,
            as_of=as_of,
            currency=currency,
            customer=customer,
            statuses=statuses,
        )
        with tx._store._translate():  # driver errors become crmkit's
            cursor = tx.cursor
            cursor.execute(text, params)
            return [tuple(row) for row in cursor.fetchall()]
    # In memory, or seen through an access policy: the orders the repository yields to this principal.
    orders = tx.repository(Order).stream()
    return rfm_rows_of_orders(orders, as_of, currency=currency, customer=customer, statuses=statuses)


def _sees_every_order(tx: Transaction) -> bool:
    """Whether ``tx`` may read every order of its tenant in full (no access policy narrows or masks it)."""
    guard = tx._guard(Order, schema_of(Order))
    return guard is None or (guard.scope is None and not guard.hidden)


def rfm_rows_of_orders(
    orders: Iterable[Order], as_of: datetime, *, currency: str, customer: str, statuses: tuple[str, ...]
) -> RfmRows:
    """The rows :func:`rfm_rows` returns, computed in Python from order entities."""
    attribute = _CUSTOMER_COLUMNS[customer]
    exponent = minor_units(currency)
    counted = frozenset(statuses)
    stats: dict[str, list[Any]] = {}
    for order in orders:
        customer_id = getattr(order, attribute)
        if (
            customer_id is None
            or order.currency != currency
            or order.status.value not in counted
            or order.ordered_at > as_of
        ):
            continue
        minor = int(order.total.amount.scaleb(exponent))
        entry = stats.get(customer_id)
        if entry is None:
            stats[customer_id] = [order.ordered_at, order.ordered_at, 1, minor]
        else:
            entry[0] = min(entry[0], order.ordered_at)
            entry[1] = max(entry[1], order.ordered_at)
            entry[2] += 1
            entry[3] += minor
    ids = sorted(stats)
    recency = [(as_of - stats[c][1]).days for c in ids]
    frequency = [stats[c][2] for c in ids]
    monetary = [stats[c][3] for c in ids]
    tenure = [(as_of - stats[c][0]).days for c in ids]
    positions = range(len(ids))
    # Stable sorts over ids in ascending order: ties stay in id order, as NTILE's "ORDER BY ..., id".
    r = _ntile(sorted(positions, key=recency.__getitem__, reverse=True))
    f = _ntile(sorted(positions, key=frequency.__getitem__))
    m = _ntile(sorted(positions, key=monetary.__getitem__))
    return list(zip(ids, recency, frequency, monetary, tenure, r, f, m, strict=True))


def _ntile(order: list[int]) -> list[int]:
    """SQL's ``NTILE(5)`` of positions listed in rank order: the first ``n % 5`` groups one larger."""
    scores = [0] * len(order)
    base, extra = divmod(len(order), RFM_TILES)
    start = 0
    for tile in range(1, RFM_TILES + 1):
        stop = start + base + (1 if tile <= extra else 0)
        for position in order[start:stop]:
            scores[position] = tile
        start = stop
    return scores
