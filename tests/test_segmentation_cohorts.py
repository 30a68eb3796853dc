"""The cohort retention matrix: the definition by hand, options, properties and an independent pandas version."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import ValidationError
from crmkit.segmentation import CohortMatrix, OrderRow, cohort_retention, period_label


def order(customer, year, month, day=15, hour=12):
    return OrderRow(customer, datetime(year, month, day, hour, tzinfo=UTC), Decimal(1))


def test_cohorts_are_first_order_months_and_cells_are_shares_active_k_months_later():
    rows = [
        order("a", 2026, 1),
        order("a", 2026, 2),
        order("a", 2026, 2, 20),  # two orders in one month count once
        order("b", 2026, 1),
        order("b", 2026, 3),
        order("c", 2026, 2),
        order("c", 2026, 3),
    ]
    matrix = cohort_retention(rows)
    assert matrix.cohorts == ("2026-01", "2026-02")
    assert matrix.sizes == (2, 1)
    assert matrix.active == ((2, 1, 1), (1, 1))
    assert matrix.retention == ((1.0, 0.5, 0.5), (1.0, 1.0))
    assert matrix.cell("2026-01", 2) == 0.5
    assert matrix.cell("2026-02", 2) is None  # not observed yet
    assert matrix.cell("2025-12", 0) is None


def test_as_of_leaves_out_later_orders_and_runs_rows_to_its_month():
    rows = [order("a", 2026, 1), order("a", 2026, 5), order("b", 2026, 4)]
    matrix = cohort_retention(rows, as_of=datetime(2026, 3, 31, tzinfo=UTC))
    assert matrix.cohorts == ("2026-01",)
    assert matrix.active == ((1, 0, 0),)


def test_weeks_start_on_monday_and_quarters_are_calendar_quarters():
    rows = [
        OrderRow("a", datetime(2026, 3, 1, tzinfo=UTC), Decimal(1)),  # a Sunday
        OrderRow("a", datetime(2026, 3, 2, tzinfo=UTC), Decimal(1)),  # the Monday after
        OrderRow("b", datetime(2026, 4, 1, tzinfo=UTC), Decimal(1)),
    ]
    weekly = cohort_retention(rows, period="week")
    assert weekly.cohorts == ("2026-02-23", "2026-03-30")
    assert weekly.active[0][:2] == (1, 1)
    quarterly = cohort_retention(rows, period="quarter")
    assert quarterly.cohorts == ("2026-Q1", "2026-Q2")
    assert quarterly.active == ((1, 0), (1,))


def test_months_are_those_of_the_given_time_zone():
    rows = [OrderRow("a", datetime(2026, 1, 31, 23, 30, tzinfo=UTC), Decimal(1))]
    assert cohort_retention(rows).cohorts == ("2026-01",)
    assert cohort_retention(rows, tz=ZoneInfo("Europe/Berlin")).cohorts == ("2026-02",)


def test_period_labels():
    assert period_label(2026 * 12 + 2, "month") == "2026-03"
    assert period_label(2026 * 4 + 3, "quarter") == "2026-Q4"


def test_no_orders_give_an_empty_matrix():
    assert cohort_retention([]) == CohortMatrix("month", (), (), ())


def test_bad_arguments_and_rows_are_validation_errors():
    with pytest.raises(ValidationError) as caught:
        cohort_retention([], period="year")
    assert caught.value.paths == ("period",)
    with pytest.raises(ValidationError) as caught:
        cohort_retention([order("a", 2026, 1), ("b", "2026-01-01", 1)])
    assert caught.value.paths == ("orders[1].ordered_at",)
    naive = OrderRow("b", datetime(2026, 1, 1), Decimal(1))  # noqa: DTZ001 - the point
    with pytest.raises(ValidationError) as caught:
        cohort_retention(iter([order("a", 2026, 1), naive]))
    assert caught.value.paths == ("orders[1].ordered_at",)  # a generator's rows are kept, so named too


rows_strategy = st.lists(
    st.builds(
        OrderRow,
        st.sampled_from("abcdefghij"),
        st.integers(0, 700).map(lambda d: datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=d)),
        st.just(Decimal(1)),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.sampled_from(["month", "week", "quarter"]))
def test_every_cohort_starts_at_one_and_every_share_is_between_zero_and_one(rows, period):
    matrix = cohort_retention(rows, period=period)
    assert sum(matrix.sizes) == len({r.customer_id for r in rows})
    for row, size in zip(matrix.retention, matrix.sizes, strict=True):
        assert size > 0
        assert row[0] == 1.0
        assert all(0.0 <= share <= 1.0 for share in row)
    assert [len(r) for r in matrix.active] == sorted((len(r) for r in matrix.active), reverse=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_matrix_equals_an_independent_pandas_computation(seed):
    rng = random.Random(seed)  # noqa: S311 - test data
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        OrderRow(f"c{rng.randrange(400)}", start + timedelta(seconds=rng.randrange(700 * 86400)), Decimal(1))
        for _ in range(4_000)
    ]
    df = pd.DataFrame({"customer": [r.customer_id for r in rows], "at": [r.ordered_at for r in rows]})
    df["month"] = df["at"].map(lambda t: t.year * 12 + t.month - 1)
    df["cohort"] = df.groupby("customer")["month"].transform("min")
    df["k"] = df["month"] - df["cohort"]
    active = df.drop_duplicates(["customer", "month"]).groupby(["cohort", "k"]).size().unstack(fill_value=0)  # noqa: PD010 - a count table
    last = df["month"].max()
    expected = tuple(
        tuple(int(active.loc[cohort, k]) if k in active.columns else 0 for k in range(last - cohort + 1))
        for cohort in active.index
    )
    matrix = cohort_retention(rows)
    assert matrix.active == expected
    assert matrix.cohorts == tuple(period_label(int(c), "month") for c in active.index)
