"""The SQL that RFM push-down must run equals ``rfm_scores``: the reference query, on SQLite's own table.

This pins the definition the storage adapters run against their order tables (``crmkit/storage/_analytics.py``,
tested through ``rfm_scores_in_store`` in ``test_segmentation_in_store.py``; the benchmark's hand-written query
is this one on ``crm_order``): the same ``NTILE(5)`` ordering, the same whole days, the same ties. It uses a
scratch table of its own, never the store's tables.
"""

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from crmkit.segmentation import OrderRow, rfm_scores

# Times as Unix seconds, amounts as integer minor units (cents); :as_of in Unix seconds.
RFM_SQL = """
WITH summary AS (
    SELECT customer_id,
           (:as_of - MAX(ordered_at)) / 86400 AS recency,
           COUNT(*) AS frequency,
           SUM(amount_minor) AS monetary,
           (:as_of - MIN(ordered_at)) / 86400 AS tenure
    FROM orders
    WHERE ordered_at <= :as_of
    GROUP BY customer_id
)
SELECT customer_id, recency, frequency, monetary, tenure,
       NTILE(5) OVER (ORDER BY recency DESC, customer_id) AS r,
       NTILE(5) OVER (ORDER BY frequency, customer_id) AS f,
       NTILE(5) OVER (ORDER BY monetary, customer_id) AS m
FROM summary
ORDER BY customer_id
"""


def random_rows(seed):
    rng = random.Random(seed)  # noqa: S311 - test data
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        OrderRow(
            f"c{rng.randrange(250):03d}",
            start + timedelta(seconds=rng.randrange(400 * 86400)),
            Decimal(rng.choice([1000, 2500, rng.randrange(1, 90_000)])) / 100,
        )
        for _ in range(2_000)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_reference_sql_equals_rfm_scores(seed):
    rows = random_rows(seed)
    as_of = datetime(2026, 1, 20, 6, 30, tzinfo=UTC)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE orders (customer_id TEXT, ordered_at INTEGER, amount_minor INTEGER)")
    db.executemany(
        "INSERT INTO orders VALUES (?, ?, ?)",
        [(r.customer_id, int(r.ordered_at.timestamp()), int(r.amount * 100)) for r in rows],
    )
    got = db.execute(RFM_SQL, {"as_of": int(as_of.timestamp())}).fetchall()
    expected = [
        (s.customer_id, s.recency, s.frequency, int(s.monetary * 100), s.tenure, s.r, s.f, s.m)
        for s in rfm_scores(rows, as_of)
    ]
    assert got == expected
