"""RFM scores, named segments and the BTYD summary: hand-computed cases, properties, pandas and lifetimes."""

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import LineItem, Order, OrderStatus
from crmkit.errors import CurrencyMismatch, RuleError, ValidationError
from crmkit.money import Money
from crmkit.segmentation import (
    DEFAULT_SEGMENT_MAP,
    OrderRow,
    SegmentMap,
    SegmentRule,
    btyd_summary,
    ntile,
    order_rows,
    rfm_scores,
    rfm_segments,
)

AS_OF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CDNOW = Path(__file__).resolve().parent / "data" / "CDNOW_sample.txt"


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 2, day, hour, 0, tzinfo=UTC)


def row(customer, when, amount):
    return OrderRow(customer, when, Decimal(amount))


# -- the definitions, on data small enough to compute by hand ----------------------------------------


def test_recency_frequency_monetary_and_tenure_are_computed_per_customer_as_of_a_date():
    rows = [
        row("a", at(1), "10.00"),
        row("a", at(20), "5.50"),
        row("b", at(27, 13), "100"),
        row("a", datetime(2026, 3, 2, tzinfo=UTC), "999"),  # after as_of: left out
    ]
    a, b = rfm_scores(rows, AS_OF)
    assert (a.customer_id, a.recency, a.frequency, a.monetary, a.tenure) == ("a", 9, 2, Decimal("15.50"), 28)
    # 2026-02-27 13:00 to 2026-03-01 12:00 is 1 day 23 hours: one whole day.
    assert (b.recency, b.frequency, b.monetary, b.tenure) == (1, 1, Decimal(100), 1)


def test_scores_follow_ntile_five_with_the_first_groups_one_larger():
    # 7 customers: NTILE(5) gives groups of 2, 2, 1, 1, 1.
    assert ntile(list(range(7))) == [1, 1, 2, 2, 3, 4, 5]
    assert ntile([6, 5, 4, 3, 2, 1, 0]) == [5, 4, 3, 2, 2, 1, 1]
    assert ntile([1, 0]) == [2, 1]  # fewer customers than groups: 1, 2
    assert ntile([]) == []


def test_ties_are_broken_by_customer_id_and_recency_scores_the_most_recent_highest():
    # Every customer has one order of the same amount; d and e ordered on the same day.
    rows = [
        row("e", at(25), "10"),
        row("d", at(25), "10"),
        row("c", at(10), "10"),
        row("b", at(5), "10"),
        row("a", at(1), "10"),
        row("f", at(28), "10"),
    ]
    scores = {s.customer_id: s for s in rfm_scores(rows, AS_OF)}
    # Recency days descending: a(28) b(24) c(19) d(4) e(4) f(1); groups of 2,1,1,1,1.
    assert {c: s.r for c, s in scores.items()} == {"a": 1, "b": 1, "c": 2, "d": 3, "e": 4, "f": 5}
    # Frequency and monetary all tie: customer id order decides.
    assert [scores[c].f for c in "abcdef"] == [1, 1, 2, 3, 4, 5]
    assert [scores[c].m for c in "abcdef"] == [1, 1, 2, 3, 4, 5]
    assert scores["f"].cell == "555"


def test_frequency_and_monetary_scores_rank_by_value():
    rows = [row("x", at(1), "1")] * 3 + [row("y", at(1), "50")] + [row("z", at(1), "2")] * 2
    scores = {s.customer_id: (s.f, s.m) for s in rfm_scores(rows, AS_OF)}
    assert scores == {"y": (1, 3), "z": (2, 2), "x": (3, 1)}  # monetary: x 3, z 4, y 50


def test_order_entities_are_converted_and_cancelled_ones_do_not_count():
    def order(number, contact, day, price, status=OrderStatus.PAID):
        line = LineItem(quantity=Decimal(2), unit_price=Money(price, "EUR"), product_id="p1")
        return Order(
            number=number, contact_id=contact, ordered_at=at(day), currency="EUR", lines=[line], status=status
        )

    orders = [
        order("1", "ada", 1, "10"),
        order("2", "ada", 3, "5"),
        order("3", "ada", 4, "99", OrderStatus.CANCELLED),
        order("4", None, 4, "99"),
    ]
    (ada,) = rfm_scores(orders, AS_OF)
    assert (ada.frequency, ada.monetary) == (2, Decimal("30.00"))
    assert next(order_rows(orders)).products == ("p1",)


def test_orders_in_two_currencies_are_refused():
    line = LineItem(quantity=Decimal(1), unit_price=Money("1", "USD"))
    usd = Order(number="2", contact_id="a", currency="USD", lines=[line], ordered_at=at(2))
    eur = Order(number="1", contact_id="a", currency="EUR", ordered_at=at(1))
    with pytest.raises(CurrencyMismatch) as caught:
        rfm_scores([eur, usd], AS_OF)
    assert caught.value.paths == ("orders[1].currency",)


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        (row("a", datetime(2026, 2, 1), "1"), "orders[1].ordered_at"),  # noqa: DTZ001 - the point
        (OrderRow("a", at(1), 1.5), "orders[1].amount"),
        (("a", at(1)), "orders[1]"),
        (OrderRow("", at(1), Decimal(1)), "orders[1].customer_id"),
    ],
)
def test_a_bad_row_is_a_validation_error_naming_it(bad, path):
    rows = [row("a", at(2), "1"), bad]
    with pytest.raises(ValidationError) as caught:
        rfm_scores(rows, AS_OF)
    assert caught.value.paths == (path,)


def test_a_naive_as_of_is_refused():
    with pytest.raises(ValidationError) as caught:
        rfm_scores([], datetime(2026, 1, 1))  # noqa: DTZ001 - the point
    assert caught.value.paths == ("as_of",)


def test_no_orders_give_no_scores():
    assert rfm_scores([], AS_OF) == []
    assert rfm_scores(iter([]), AS_OF) == []


def test_a_generator_of_rows_is_read_once():
    rows = (row(c, at(1 + i), "1") for i, c in enumerate("abc"))
    assert [s.customer_id for s in rfm_scores(rows, AS_OF)] == ["a", "b", "c"]


# -- named segments ----------------------------------------------------------------------------------


def test_the_default_map_names_every_cell_and_champions_are_recent_and_frequent():
    names = {
        DEFAULT_SEGMENT_MAP.segment_of(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in (1, 5)
    }
    assert "other" not in names
    assert DEFAULT_SEGMENT_MAP.segment_of(5, 5, 1) == "champions"
    assert DEFAULT_SEGMENT_MAP.segment_of(1, 1, 5) == "lost"
    assert DEFAULT_SEGMENT_MAP.segment_of(2, 4, 3) == "at_risk"
    assert DEFAULT_SEGMENT_MAP.rule_of(5, 5, 1) == 0


def test_segments_name_each_scored_customer_and_the_first_matching_rule_wins():
    segment_map = SegmentMap(
        [
            SegmentRule("big_spenders", monetary=(5, 5)),
            SegmentRule("recent", recency=(4, 5)),
        ],
        default="rest",
    )
    rows = [row(c, at(i + 1), str(i + 1)) for i, c in enumerate("abcde")]
    assert rfm_segments(rfm_scores(rows, AS_OF), segment_map) == {
        "a": "rest",
        "b": "rest",
        "c": "rest",
        "d": "recent",
        "e": "big_spenders",
    }


def test_a_segment_map_round_trips_through_json():
    text = json.dumps(DEFAULT_SEGMENT_MAP.to_json())
    assert SegmentMap.from_json(text) == DEFAULT_SEGMENT_MAP
    assert SegmentMap.from_json(json.loads(text)) == DEFAULT_SEGMENT_MAP


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"rules": [{"name": "a"}, {"name": "b", "recency": [4, 6]}]}, "rules[1].recency"),
        ({"rules": [{"name": "a", "frequency": [3, 2]}]}, "rules[0].frequency"),
        ({"rules": [{"name": "a", "monetary": "5"}]}, "rules[0].monetary"),
        ({"rules": [{"name": "a"}, {"name": "a"}]}, "rules[1].name"),
        ({"rules": [{"name": " "}]}, "rules[0].name"),
        ({"rules": [{"recency": [1, 2]}]}, "rules[0]"),
        ({"rules": [{"name": "a", "colour": "red"}]}, "rules[0]"),
        ({"rules": []}, "rules"),
        ({}, "rules"),
        ({"rules": [{"name": "a"}], "default": ""}, "default"),
        ({"rules": [{"name": "a"}], "extra": 1}, ""),
    ],
)
def test_a_bad_segment_map_is_a_rule_error_with_the_path(data, path):
    with pytest.raises(RuleError) as caught:
        SegmentMap.from_json(data)
    assert caught.value.path == path


def test_segment_map_text_that_is_not_json_is_a_rule_error():
    with pytest.raises(RuleError):
        SegmentMap.from_json("{rules")


# -- properties --------------------------------------------------------------------------------------

customers = st.sampled_from([f"c{i:02d}" for i in range(40)])
moments = st.integers(0, 400 * 24).map(lambda hours: AS_OF - timedelta(hours=hours))
amounts = st.integers(0, 10_000).map(lambda cents: Decimal(cents) / 100)
rows_strategy = st.lists(st.builds(OrderRow, customers, moments, amounts), max_size=120)


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_scores_are_one_to_five_and_quintiles_are_balanced_within_one(rows):
    scores = rfm_scores(rows, AS_OF)
    assert len(scores) == len({r.customer_id for r in rows})
    for name in ("r", "f", "m"):
        values = [getattr(s, name) for s in scores]
        assert all(1 <= v <= 5 for v in values)
        sizes = Counter(values)
        used = [sizes.get(tile, 0) for tile in range(1, min(5, len(scores)) + 1)]
        assert max(used, default=0) - min(used, default=0) <= 1
        assert used == sorted(used, reverse=True)  # the larger groups come first


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_a_higher_value_never_gets_a_lower_score(rows):
    scores = rfm_scores(rows, AS_OF)
    for value, score, sign in (("recency", "r", -1), ("frequency", "f", 1), ("monetary", "m", 1)):
        ranked = sorted(scores, key=lambda s: (sign * getattr(s, value), s.customer_id))
        assert [getattr(s, score) for s in ranked] == sorted(getattr(s, score) for s in ranked)


@settings(max_examples=40, deadline=None)
@given(rows_strategy, st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_scores(rows, rng):
    shuffled = list(rows)
    rng.shuffle(shuffled)
    assert rfm_scores(shuffled, AS_OF) == rfm_scores(rows, AS_OF)


# -- the BTYD summary --------------------------------------------------------------------------------


def test_btyd_counts_repeat_days_and_averages_repeat_spend_without_the_first_purchase():
    rows = [
        row("a", datetime(2026, 1, 1, 9, tzinfo=UTC), "10"),
        row("a", datetime(2026, 1, 1, 18, tzinfo=UTC), "5"),  # same day: one purchase of 15
        row("a", datetime(2026, 1, 4, tzinfo=UTC), "30"),
        row("a", datetime(2026, 1, 11, tzinfo=UTC), "50"),
        row("b", datetime(2026, 1, 20, tzinfo=UTC), "7"),
        row("c", datetime(2026, 2, 2, tzinfo=UTC), "7"),  # after the end: left out
    ]
    end = datetime(2026, 1, 31, 23, tzinfo=UTC)
    a, b = btyd_summary(rows, end)
    assert a == ("a", 2, 10.0, 30.0, Decimal(40))
    assert b == ("b", 0, 0.0, 11.0, Decimal(0))
    weekly = btyd_summary(rows, end, unit="week")
    # Weeks start on Monday: 01-01 (Thu) and 01-04 (Sun) are the week of 2025-12-29, 01-11 (Sun) that of
    # 01-05, and the end (Sat 01-31) that of 01-26, four weeks after the first.
    assert weekly[0] == ("a", 1, 1.0, 4.0, Decimal(50))
    assert pytest.approx(30 / 7) == btyd_summary(rows, end, multiplier=7)[0].T


def test_btyd_days_are_calendar_days_of_the_given_time_zone():
    rows = [
        row("a", datetime(2026, 1, 1, 23, 30, tzinfo=UTC), "1"),
        row("a", datetime(2026, 1, 2, 0, 30, tzinfo=UTC), "1"),
    ]
    end = datetime(2026, 1, 10, tzinfo=UTC)
    assert btyd_summary(rows, end)[0].frequency == 1
    assert btyd_summary(rows, end, tz=ZoneInfo("Europe/Berlin"))[0].frequency == 0


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [({"unit": "month"}, "unit"), ({"multiplier": 0}, "multiplier"), ({"multiplier": True}, "multiplier")],
)
def test_btyd_refuses_unknown_units_and_multipliers(kwargs, path):
    with pytest.raises(ValidationError) as caught:
        btyd_summary([], AS_OF, **kwargs)
    assert caught.value.paths == (path,)


def test_btyd_names_a_bad_row():
    with pytest.raises(ValidationError) as caught:
        btyd_summary([row("a", at(1), "1"), ("a", None, Decimal(1))], AS_OF)
    assert caught.value.paths == ("orders[1].ordered_at",)
    with pytest.raises(ValidationError) as caught:
        btyd_summary([row("a", at(1), "1"), row("b", datetime(2026, 2, 1), "1")], AS_OF)  # noqa: DTZ001
    assert caught.value.paths == ("orders[1].ordered_at",)


# -- equality with an independent pandas computation and with lifetimes ------------------------------


def random_rows(seed, n=3_000, customers=300):
    rng = random.Random(seed)  # noqa: S311 - test data
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ids = [f"cust-{rng.randrange(10**6):06d}" for _ in range(customers)]
    return [
        OrderRow(
            rng.choice(ids),
            start + timedelta(seconds=rng.randrange(800 * 86400)),
            Decimal(rng.choice([500, 999, 1500, rng.randrange(1, 50_000)])) / 100,
        )
        for _ in range(n)
    ]


def frame(rows):
    return pd.DataFrame(
        {
            "customer": [r.customer_id for r in rows],
            "at": pd.to_datetime([r.ordered_at for r in rows], utc=True),
            "cents": [int(r.amount * 100) for r in rows],
            "amount": [float(r.amount) for r in rows],
        }
    )


def pandas_ntile(df, column, *, descending):
    ordered = df.sort_values([column, "customer"], ascending=[not descending, True], kind="stable")
    n = len(ordered)
    base, extra = divmod(n, 5)
    position = np.arange(n)
    big = extra * (base + 1)
    tile = np.where(position < big, position // (base + 1), extra + (position - big) // max(base, 1)) + 1
    return dict(zip(ordered["customer"], tile.tolist(), strict=True))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rfm_equals_an_independent_pandas_computation(seed):
    rows = random_rows(seed)
    as_of = datetime(2026, 1, 15, 8, tzinfo=UTC)
    df = frame(rows)
    df = df[df["at"] <= pd.Timestamp(as_of)]
    g = df.groupby("customer").agg(
        first=("at", "min"), last=("at", "max"), n=("at", "size"), cents=("cents", "sum")
    )
    g = g.reset_index()
    g["recency"] = (pd.Timestamp(as_of) - g["last"]).dt.days
    g["tenure"] = (pd.Timestamp(as_of) - g["first"]).dt.days
    r = pandas_ntile(g, "recency", descending=True)
    f = pandas_ntile(g, "n", descending=False)
    m = pandas_ntile(g, "cents", descending=False)
    expected = [
        (c, rec, n, cents, ten, r[c], f[c], m[c])
        for c, rec, n, cents, ten in zip(
            g["customer"], g["recency"], g["n"], g["cents"], g["tenure"], strict=True
        )
    ]
    ours = [
        (s.customer_id, s.recency, s.frequency, int(s.monetary * 100), s.tenure, s.r, s.f, s.m)
        for s in rfm_scores(rows, as_of)
    ]
    assert ours == sorted(expected)


def pandas_btyd(rows, end, unit):
    df = frame(rows)
    day = df["at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    days = 7 if unit == "week" else 1
    df["period"] = day - pd.to_timedelta(day.dt.day_of_week if unit == "week" else 0, unit="D")
    end_day = pd.Timestamp(end.date())
    end_period = end_day - pd.Timedelta(days=end_day.day_of_week if unit == "week" else 0)
    df = df[df["period"] <= end_period]
    per = (
        df.groupby(["customer", "period"], as_index=False)["cents"].sum().sort_values(["customer", "period"])
    )
    out = []
    for customer, group in per.groupby("customer"):
        periods = group["period"].tolist()
        cents = group["cents"].tolist()
        frequency = len(periods) - 1
        out.append(
            (
                customer,
                frequency,
                (periods[-1] - periods[0]).days / days,
                (end_period - periods[0]).days / days,
                Decimal(sum(cents[1:])) / 100 / frequency if frequency else Decimal(0),
            )
        )
    return out


@pytest.mark.parametrize("unit", ["day", "week"])
@pytest.mark.parametrize("seed", [4, 5])
def test_btyd_equals_an_independent_pandas_computation(seed, unit):
    rows = random_rows(seed)
    end = datetime(2025, 12, 3, 15, tzinfo=UTC)
    assert btyd_summary(rows, end, unit=unit) == pandas_btyd(rows, end, unit)


def lifetimes_summary(rows, end, **kwargs):
    pytest.importorskip("lifetimes")
    from lifetimes.utils import summary_data_from_transaction_data  # noqa: PLC0415 - optional

    df = frame(rows)
    df["at"] = df["at"].dt.tz_convert("UTC").dt.tz_localize(None)
    summary = summary_data_from_transaction_data(
        df, "customer", "at", "amount", observation_period_end=end.replace(tzinfo=None), **kwargs
    )
    return summary.sort_index()


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize(("unit", "freq"), [("day", "D"), ("week", "W")])
def test_btyd_equals_lifetimes_summary_data_from_transaction_data(unit, freq):
    rows = random_rows(6)
    end = datetime(2025, 11, 30, 18, tzinfo=UTC)
    expected = lifetimes_summary(rows, end, freq=freq, freq_multiplier=2)
    ours = btyd_summary(rows, end, unit=unit, multiplier=2)
    assert [s.customer_id for s in ours] == expected.index.tolist()
    assert [s.frequency for s in ours] == expected["frequency"].tolist()
    assert [s.recency for s in ours] == expected["recency"].tolist()
    assert [s.T for s in ours] == expected["T"].tolist()
    assert [float(s.monetary) for s in ours] == pytest.approx(expected["monetary_value"].tolist(), rel=1e-12)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_btyd_of_the_cdnow_sample_equals_lifetimes_in_weeks():
    rows = []
    for line in CDNOW.read_text(encoding="utf-8").splitlines():
        _, customer, day, _, value = line.split()
        when = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
        rows.append(OrderRow(customer, when, Decimal(value)))
    end = datetime(1997, 9, 30, tzinfo=UTC)
    ours = btyd_summary(rows, end, unit="day", multiplier=7)
    expected = lifetimes_summary(rows, end, freq="D", freq_multiplier=7)
    assert len(ours) == len(expected) == 2_357
    assert [s.frequency for s in ours] == expected["frequency"].tolist()
    assert [s.T for s in ours] == expected["T"].tolist()
    assert [float(s.monetary) for s in ours] == pytest.approx(expected["monetary_value"].tolist(), rel=1e-12)


def test_the_collector_is_paused_only_during_the_computation_and_restored_as_it_was():
    import gc  # noqa: PLC0415 - only this test needs it

    rows = [row("a", at(1), "1")]
    assert gc.isenabled()
    rfm_scores(rows, AS_OF)
    assert gc.isenabled()
    gc.disable()
    try:
        btyd_summary(rows, AS_OF)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ValidationError):
        rfm_scores([("a",)], AS_OF)
    assert gc.isenabled()
