"""Behavioural affinity (category shares, "mostly vegetarian") and next-best-offer recommendations."""

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import LineItem, Order
from crmkit.errors import RuleError, ValidationError
from crmkit.money import Money
from crmkit.segmentation import (
    AffinitySegment,
    LineRow,
    category_shares,
    co_purchases,
    line_rows,
    recommend,
)

AS_OF = datetime(2026, 6, 30, 18, tzinfo=UTC)
CATEGORIES = {
    "tofu": "vegetarian",
    "lentils": ["vegetarian", "pantry"],
    "steak": "meat",
    "rice": "pantry",
    "wine": "drinks",
}


def line(customer, order, product, amount, days_ago=10):
    return LineRow(customer, AS_OF - timedelta(days=days_ago), order, product, Decimal(amount))


LINES = [
    # vera: 5 orders in the window, 4 with something vegetarian; one old meat order outside it.
    line("vera", "v1", "tofu", "10"),
    line("vera", "v1", "rice", "2"),
    line("vera", "v2", "lentils", "4"),
    line("vera", "v3", "tofu", "10"),
    line("vera", "v4", "tofu", "10"),
    line("vera", "v5", "wine", "20"),
    line("vera", "v0", "steak", "30", days_ago=400),
    # max: mostly meat.
    line("max", "m1", "steak", "30"),
    line("max", "m2", "steak", "30"),
    line("max", "m2", "rice", "2"),
]


def test_order_shares_count_orders_with_a_line_in_the_category_over_the_window():
    shares = category_shares(LINES, CATEGORIES, as_of=AS_OF)
    assert shares["vera"] == {"drinks": 0.2, "pantry": 0.4, "vegetarian": 0.8}
    assert shares["max"] == {"meat": 1.0, "pantry": 0.5}


def test_spend_shares_divide_the_spend_in_the_category_by_all_spend():
    shares = category_shares(LINES, CATEGORIES, as_of=AS_OF, measure="spend")
    assert shares["vera"]["vegetarian"] == pytest.approx(34 / 56)
    assert shares["max"]["meat"] == pytest.approx(60 / 62)


def test_mostly_vegetarian_is_eighty_percent_of_orders_in_the_last_twelve_months():
    mostly_vegetarian = AffinitySegment("mostly_vegetarian", "vegetarian", min_share=0.8)
    assert mostly_vegetarian.members(LINES, CATEGORIES, as_of=AS_OF) == {"vera": 0.8}
    picky = AffinitySegment("mostly_vegetarian", "vegetarian", min_share=0.8, min_orders=6)
    assert picky.members(LINES, CATEGORIES, as_of=AS_OF) == {}


def test_an_affinity_segment_round_trips_and_is_validated():
    segment = AffinitySegment("meat_lovers", "meat", min_share=0.5, measure="spend", window="P6M")
    assert AffinitySegment.from_json(json.dumps(segment.to_json())) == segment
    for data, path in (
        ({"name": "x", "category": "meat", "min_share": 1.5}, "min_share"),
        ({"name": "x", "category": "meat", "measure": "visits"}, "measure"),
        ({"name": "x", "category": "meat", "window": "a year"}, "window"),
        ({"name": "x", "category": ""}, "category"),
        ({"name": "x", "category": "meat", "min_orders": 0}, "min_orders"),
        ({"name": "x"}, "category"),
        ({"name": "x", "category": "meat", "extra": 1}, ""),
    ):
        with pytest.raises(RuleError) as caught:
            AffinitySegment.from_json(data)
        assert caught.value.path == path


def test_bad_share_arguments_are_validation_errors():
    for kwargs, path in (({"measure": "visits"}, "measure"), ({"window": "x"}, "window")):
        with pytest.raises(ValidationError) as caught:
            category_shares([], {}, as_of=AS_OF, **kwargs)
        assert caught.value.paths == (path,)


def test_bad_lines_are_validation_errors():
    naive = LineRow("a", datetime(2026, 6, 1), "o", "tofu", Decimal(1))  # noqa: DTZ001 - the point
    with pytest.raises(ValidationError) as caught:
        category_shares([naive], CATEGORIES, as_of=AS_OF)
    assert caught.value.paths == ("lines",)
    with pytest.raises(ValidationError):
        co_purchases([("a", AS_OF)])


def test_order_entities_become_line_rows():
    order = Order(
        number="1",
        contact_id="vera",
        currency="EUR",
        ordered_at=AS_OF,
        lines=[
            LineItem(product_id="tofu", quantity=Decimal(2), unit_price=Money("2.50", "EUR")),
            LineItem(description="delivery", quantity=Decimal(1), unit_price=Money("3", "EUR")),
        ],
    )
    assert list(line_rows([order])) == [LineRow("vera", AS_OF, order.id, "tofu", Decimal("5.00"))]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.builds(
            line,
            st.sampled_from(["a", "b"]),
            st.sampled_from(["o1", "o2", "o3", "o4"]),
            st.sampled_from(sorted(CATEGORIES)),
            st.integers(1, 100).map(str),
            st.integers(0, 500),
        ),
        max_size=30,
    ),
    st.sampled_from(["orders", "spend"]),
)
def test_every_share_is_a_fraction(lines, measure):
    for by_category in category_shares(lines, CATEGORIES, as_of=AS_OF, measure=measure).values():
        assert all(0 < share <= 1 for share in by_category.values())


# -- next best offer ---------------------------------------------------------------------------------

BASKETS = {
    "o1": ["tofu", "rice"],
    "o2": ["tofu", "rice", "wine"],
    "o3": ["tofu", "rice"],
    "o4": ["steak", "wine"],
    "o5": ["steak", "wine"],
    "o6": ["lentils", "rice"],
    "o7": ["lentils", "rice", "tofu"],
    "o8": ["wine"],
}
BASKET_LINES = [
    line("someone", order, product, "1") for order, products in BASKETS.items() for product in products
]


def test_co_purchases_count_baskets_and_pairs():
    model = co_purchases(BASKET_LINES)
    assert model.baskets == 8
    assert model.counts["tofu"] == 4
    assert model.pairs["tofu"]["rice"] == model.pairs["rice"]["tofu"] == 4
    assert model.similarity("tofu", "rice") == pytest.approx(8 * 4 / (4 * 5))
    assert model.similarity("tofu", "rice", "cosine") == pytest.approx(4 / math.sqrt(20))
    assert model.similarity("tofu", "steak") == 0.0


def test_recommendations_exclude_what_was_bought_and_avoided_categories_and_say_why():
    model = co_purchases(BASKET_LINES)
    offers = recommend(model, ["tofu", "lentils"], categories=CATEGORIES, min_together=1)
    assert [o.product_id for o in offers] == ["rice", "wine"]
    rice = offers[0]
    assert rice.because == ("lentils", "tofu")  # both lift 1.6: a tie goes to the id
    assert rice.reason == "bought lentils and tofu"
    meat_eater = recommend(model, ["wine"], categories=CATEGORIES, min_together=1)
    # Lift with wine: steak 8*2/(4*2) = 2.0, tofu 8*1/(4*4) = 0.5, rice 8*1/(4*5) = 0.4.
    assert [o.product_id for o in meat_eater] == ["steak", "tofu", "rice"]
    vegetarian = recommend(model, ["wine"], categories=CATEGORIES, avoid=["meat"], min_together=1)
    assert "steak" not in [o.product_id for o in vegetarian]
    assert recommend(model, ["wine"], min_together=2) == recommend(model, ["wine"], min_together=2, limit=1)


def test_bad_recommendation_arguments_are_validation_errors():
    model = co_purchases([])
    for kwargs, path in (
        ({"measure": "jaccard"}, "measure"),
        ({"limit": 0}, "limit"),
        ({"min_together": 0}, "min_together"),
    ):
        with pytest.raises(ValidationError) as caught:
            recommend(model, [], **kwargs)
        assert caught.value.paths == (path,)
