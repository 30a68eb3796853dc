"""Campaign results with a two-proportion z-test, and revenue attribution by four models."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import ValidationError
from crmkit.segmentation import (
    CampaignMember,
    OrderRow,
    Response,
    ResponseKind,
    Touch,
    attribute_revenue,
    campaign_results,
    two_proportion_z_test,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_the_z_test_matches_a_hand_computation():
    # 200/1000 against 150/1000: pooled 0.175, se = sqrt(0.175 * 0.825 * 0.002) = 0.016993...
    test = two_proportion_z_test(200, 1000, 150, 1000)
    assert test is not None
    se = math.sqrt(0.175 * 0.825 * 0.002)
    assert test.z == pytest.approx(0.05 / se)
    assert test.z == pytest.approx(2.9424, abs=1e-4)
    assert test.p_value == pytest.approx(0.003257, abs=1e-6)
    assert test.significant()
    assert (test.rate_a, test.rate_b) == (0.2, 0.15)


def test_the_z_test_is_undefined_without_trials_or_variance():
    assert two_proportion_z_test(0, 0, 1, 10) is None
    assert two_proportion_z_test(0, 10, 0, 10) is None
    assert two_proportion_z_test(10, 10, 10, 10) is None
    with pytest.raises(ValidationError) as caught:
        two_proportion_z_test(11, 10, 1, 10)
    assert caught.value.paths == ("group_a",)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 500), st.integers(1, 500), st.data())
def test_the_z_test_is_antisymmetric_and_its_p_value_a_probability(n_a, n_b, data):
    x_a, x_b = data.draw(st.integers(0, n_a)), data.draw(st.integers(0, n_b))
    forward, backward = two_proportion_z_test(x_a, n_a, x_b, n_b), two_proportion_z_test(x_b, n_b, x_a, n_a)
    if forward is None:
        assert backward is None
        return
    assert backward is not None
    assert forward.z == pytest.approx(-backward.z)
    assert 0 <= forward.p_value <= 1
    assert forward.p_value == pytest.approx(backward.p_value)


def test_results_count_each_members_responses_once_per_kind_and_test_against_the_control():
    members = [CampaignMember("c1", f"a{i}", "A") for i in range(10)] + [
        CampaignMember("c1", f"b{i}", "B") for i in range(10)
    ]
    members.append(CampaignMember("c2", "z", "A"))
    responses = [Response("c1", f"a{i}", "converted", NOW) for i in range(2)]
    responses += [Response("c1", "a0", "converted", NOW)]  # twice: counted once
    responses += [Response("c1", f"b{i}", ResponseKind.CONVERTED, NOW) for i in range(6)]
    responses += [Response("c1", f"b{i}", ResponseKind.OPENED, NOW) for i in range(9)]
    responses += [Response("c2", "a5", "converted", NOW), Response("c1", "stranger", "converted", NOW)]
    results = campaign_results("c1", members, responses, control="A")
    control, treatment = results.variants
    assert (control.variant, control.members, control.counts[ResponseKind.CONVERTED]) == ("A", 10, 2)
    assert control.test is None
    assert treatment.rate("converted") == 0.6
    assert treatment.rate(ResponseKind.OPENED) == 0.9
    assert treatment.test == two_proportion_z_test(6, 10, 2, 10)
    with pytest.raises(ValidationError) as caught:
        campaign_results("c1", members, responses, control="C")
    assert caught.value.paths == ("control",)


# -- attribution --------------------------------------------------------------------------------------

ORDER_AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
TOUCHES = [
    Touch("ann", "email", ORDER_AT - timedelta(days=14)),
    Touch("ann", "social", ORDER_AT - timedelta(days=7)),
    Touch("ann", "search", ORDER_AT - timedelta(days=0)),
    Touch("ann", "old", ORDER_AT - timedelta(days=40)),  # outside the 30-day window
    Touch("bob", "email", ORDER_AT + timedelta(days=1)),  # after the order
]
ORDERS = [OrderRow("ann", ORDER_AT, Decimal("70.00"), "o1"), OrderRow("bob", ORDER_AT, Decimal("5.00"), "o2")]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", {"email": Decimal(70)}),
        ("last_touch", {"search": Decimal(70)}),
        ("linear", {"email": Decimal(70) / 3, "social": Decimal(70) / 3}),
        # Weights 1/4, 1/2, 1 (half-life 7 days): shares 1/7, 2/7, 4/7.
        ("time_decay", {"email": Decimal(10), "social": Decimal(20)}),
    ],
)
def test_each_model_credits_the_touches_in_the_window_before_the_order(model, expected):
    attribution = attribute_revenue(ORDERS, TOUCHES, model=model)
    assert attribution.unattributed == Decimal(5)
    assert sum(attribution.revenue.values()) == Decimal(70)
    for campaign, credit in expected.items():
        assert attribution.revenue[campaign] == pytest.approx(credit)
    assert "old" not in attribution.revenue
    assert all(count == 1 for count in attribution.orders.values())


def test_touches_and_responses_need_aware_times():
    with pytest.raises(ValidationError) as caught:
        Touch("ann", "email", datetime(2026, 1, 1))  # noqa: DTZ001 - the point
    assert caught.value.paths == ("at",)
    with pytest.raises(ValidationError):
        Response("c1", "ann", "opened", datetime(2026, 1, 1))  # noqa: DTZ001 - the point
    with pytest.raises(ValidationError) as caught:
        Response("c1", "ann", "bounced", NOW)
    assert caught.value.paths == ("kind",)


def test_bad_attribution_arguments_are_validation_errors():
    for kwargs, path in (
        ({"model": "u_shaped"}, "model"),
        ({"window": "a month"}, "window"),
        ({"half_life_days": 0}, "half_life_days"),
    ):
        with pytest.raises(ValidationError) as caught:
            attribute_revenue([], [], **kwargs)
        assert caught.value.paths == (path,)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["x", "y", "z"]), st.integers(0, 40)), max_size=8),
    st.lists(st.integers(1, 100_000), min_size=1, max_size=4),
    st.sampled_from(["first_touch", "last_touch", "linear", "time_decay"]),
)
def test_credits_always_add_up_to_the_revenue(touch_days, cents, model):
    touches = [Touch("c", campaign, ORDER_AT - timedelta(days=d)) for campaign, d in touch_days]
    orders = [OrderRow("c", ORDER_AT, Decimal(c) / 100) for c in cents]
    attribution = attribute_revenue(orders, touches, model=model)
    assert sum(attribution.revenue.values()) + attribution.unattributed == sum(o.amount for o in orders)
