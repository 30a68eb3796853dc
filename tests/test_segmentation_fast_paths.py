"""The C-level paths of ``rfm_scores`` and ``btyd_summary`` equal a plain loop over the orders, row by row.

The fast code groups with one sort and computes per customer with ``map``; these properties pin it to the
definitions written the obvious way, on inputs that reach every branch: orders after ``as_of``, several
orders on a customer's first day, rows in other time zones, weeks, and int amounts.
"""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.segmentation import BtydSummary, OrderRow, btyd_summary, ntile, rfm_scores

AS_OF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ZONES = (UTC, timezone(timedelta(hours=-5)), ZoneInfo("Europe/Berlin"))

customers = st.sampled_from([f"c{i:02d}" for i in range(12)])
moments = st.builds(
    lambda minutes, zone: (AS_OF + timedelta(minutes=minutes)).astimezone(zone),
    st.integers(-40 * 24 * 60, 3 * 24 * 60),  # some orders after AS_OF
    st.sampled_from(ZONES),
)
amounts = st.one_of(st.integers(0, 5_000).map(lambda cents: Decimal(cents).scaleb(-2)), st.integers(0, 50))
rows_strategy = st.lists(st.builds(OrderRow, customers, moments, amounts), max_size=60)


def plain_rfm(rows, as_of):
    stats = {}
    for customer, when, amount, *_ in rows:
        if when > as_of:
            continue
        first, last, count, total = stats.get(customer, (when, when, 0, 0))
        stats[customer] = (min(first, when), max(last, when), count + 1, total + amount)
    ids = sorted(stats)
    recency = [(as_of - stats[c][1]).days for c in ids]
    counts = [stats[c][2] for c in ids]
    totals = [Decimal(stats[c][3]) for c in ids]
    positions = range(len(ids))
    r = ntile(sorted(positions, key=lambda i: (-recency[i], i)))
    f = ntile(sorted(positions, key=lambda i: (counts[i], i)))
    m = ntile(sorted(positions, key=lambda i: (totals[i], i)))
    return [
        (c, recency[i], counts[i], totals[i], (as_of - stats[c][0]).days, r[i], f[i], m[i])
        for i, c in enumerate(ids)
    ]


def plain_btyd(rows, end, *, tz, week, multiplier):
    def start(when):
        day = when.astimezone(tz).toordinal()
        return day - (day - 1) % 7 if week else day

    last_period = start(end)
    periods = {}
    for customer, when, amount, *_ in rows:
        period = start(when)
        if period <= last_period:
            spend = periods.setdefault(customer, {})
            spend[period] = spend.get(period, 0) + amount
    scale = 7 if week else 1
    out = []
    for customer in sorted(periods):
        spend = periods[customer]
        first, last, frequency = min(spend), max(spend), len(spend) - 1
        repeat = Decimal(sum(spend.values()) - spend[first]) / frequency if frequency else Decimal(0)
        recency, age = (last - first) / scale / multiplier, (last_period - first) / scale / multiplier
        out.append(BtydSummary(customer, frequency, recency, age, repeat))
    return out


@settings(max_examples=80, deadline=None)
@given(rows_strategy)
def test_rfm_scores_equal_a_plain_loop_over_the_orders(rows):
    assert [tuple(s) for s in rfm_scores(rows, AS_OF)] == plain_rfm(rows, AS_OF)


@settings(max_examples=80, deadline=None)
@given(rows_strategy, st.sampled_from(ZONES), st.booleans(), st.integers(1, 3))
def test_btyd_summary_equals_a_plain_loop_over_the_orders(rows, tz, week, multiplier):
    unit = "week" if week else "day"
    got = btyd_summary(rows, AS_OF, unit=unit, multiplier=multiplier, tz=tz)
    assert got == plain_btyd(rows, AS_OF, tz=tz, week=week, multiplier=multiplier)


def test_several_orders_on_the_first_day_are_one_opening_purchase():
    day = datetime(2026, 2, 2, 9, tzinfo=UTC)
    rows = [
        OrderRow("a", day, Decimal("5.00")),
        OrderRow("a", day + timedelta(hours=3), Decimal("7.00")),
        OrderRow("a", day + timedelta(days=2), Decimal("4.00")),
        OrderRow("a", day + timedelta(days=9), Decimal("6.00")),
    ]
    (summary,) = btyd_summary(rows, AS_OF)
    assert (summary.frequency, summary.recency, summary.monetary) == (2, 9.0, Decimal("5.00"))


def test_customers_whose_orders_all_come_later_are_left_out():
    later = AS_OF + timedelta(days=1)
    rows = [OrderRow("a", later, Decimal(1)), OrderRow("b", AS_OF, Decimal(2))]
    assert [s.customer_id for s in rfm_scores(rows, AS_OF)] == ["b"]
    assert [s.customer_id for s in btyd_summary(rows, AS_OF)] == ["b"]


@settings(max_examples=80, deadline=None)
@given(rows_strategy, st.sampled_from(ZONES), st.booleans(), st.booleans())
def test_btyd_summary_of_orders_in_time_order_equals_a_plain_loop(rows, tz, week, later_end):
    # In time order each customer's rows stay in time order: the flat path reads them without lists.
    rows = sorted(rows, key=lambda row: row.ordered_at)
    end = AS_OF + timedelta(days=4) if later_end else AS_OF
    unit = "week" if week else "day"
    got = btyd_summary(rows, end, unit=unit, tz=tz)
    assert got == plain_btyd(rows, end, tz=tz, week=week, multiplier=1)


def test_orders_in_time_order_with_repeats_on_the_first_and_a_later_day():
    day = datetime(2026, 2, 2, 9, tzinfo=UTC)
    rows = [
        OrderRow("b", day - timedelta(days=1), Decimal("1.00")),
        OrderRow("a", day, Decimal("5.00")),
        OrderRow("b", day, Decimal("2.00")),
        OrderRow("a", day + timedelta(hours=3), Decimal("7.00")),
        OrderRow("a", day + timedelta(days=2), Decimal("4.00")),
        OrderRow("a", day + timedelta(days=2, hours=1), Decimal("6.00")),
    ]
    a, b = btyd_summary(rows, AS_OF)
    assert (a.frequency, a.recency, a.monetary) == (1, 2.0, Decimal("10.00"))
    assert (b.frequency, b.recency, b.monetary) == (1, 1.0, Decimal("2.00"))


@settings(max_examples=80, deadline=None)
@given(rows_strategy, st.booleans())
def test_rfm_scores_of_orders_in_time_order_equal_a_plain_loop(rows, later_as_of):
    rows = sorted(rows, key=lambda row: row.ordered_at)
    as_of = AS_OF + timedelta(days=4) if later_as_of else AS_OF
    assert [tuple(s) for s in rfm_scores(rows, as_of)] == plain_rfm(rows, as_of)
