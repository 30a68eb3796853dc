"""Campaign results: responses per variant, a two-proportion z-test, and revenue attribution."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import attrs

from crmkit.conditions import parse_duration
from crmkit.errors import RuleError, ValidationError
from crmkit.segmentation._rows import as_rows

if TYPE_CHECKING:
    from crmkit.entities import Order
    from crmkit.segmentation._rows import OrderRow

__all__ = [
    "Attribution",
    "AttributionModel",
    "CampaignMember",
    "CampaignResults",
    "Response",
    "ResponseKind",
    "Touch",
    "VariantResult",
    "ZTest",
    "attribute_revenue",
    "campaign_results",
    "two_proportion_z_test",
]


def _aware(_instance: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationError.single(attribute.name, f"must be a timezone-aware datetime, got {value!r}")


class ResponseKind(StrEnum):
    """What a campaign member did, in funnel order."""

    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    CONVERTED = "converted"
    UNSUBSCRIBED = "unsubscribed"


def _response_kind(value: Any) -> ResponseKind:
    try:
        return ResponseKind(value)
    except ValueError:
        known = ", ".join(kind.value for kind in ResponseKind)
        raise ValidationError.single("kind", f"unknown response {value!r}; known: {known}") from None


@attrs.frozen
class CampaignMember:
    """A customer in a campaign, and the variant they were given.

    Attributes:
        campaign_id: The campaign.
        customer_id: The customer.
        variant: The arm name, or ``"holdout"``.
    """

    campaign_id: str
    customer_id: str
    variant: str


@attrs.frozen
class Response:
    """One response of a member.

    Attributes:
        campaign_id: The campaign.
        customer_id: The member.
        kind: What they did.
        at: When.
    """

    campaign_id: str
    customer_id: str
    kind: ResponseKind = attrs.field(converter=_response_kind)
    at: datetime = attrs.field(validator=_aware)


@attrs.frozen
class ZTest:
    """A two-sided two-proportion z-test of ``successes / trials`` in two groups.

    Attributes:
        rate_a: ``successes_a / trials_a``.
        rate_b: ``successes_b / trials_b``.
        z: ``(rate_a - rate_b) / sqrt(p (1 - p) (1/trials_a + 1/trials_b))`` with the pooled rate
            ``p = (successes_a + successes_b) / (trials_a + trials_b)``.
        p_value: ``erfc(|z| / sqrt(2))``, the two-sided p-value.
    """

    rate_a: float
    rate_b: float
    z: float
    p_value: float

    def significant(self, alpha: float = 0.05) -> bool:
        """True when the p-value is below ``alpha``."""
        return self.p_value < alpha


def two_proportion_z_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> ZTest | None:
    """Compare two rates (pure Python, normal approximation).

    Returns:
        The test, or ``None`` when it is undefined: a group without trials, or a pooled rate of 0 or 1
        (no variance to test against).

    Raises:
        ValidationError: When a count is negative or successes exceed trials.
    """
    for name, successes, trials in (("a", successes_a, trials_a), ("b", successes_b, trials_b)):
        if successes < 0 or trials < 0 or successes > trials:
            message = f"needs 0 <= successes <= trials, got {successes} of {trials}"
            where = f"group_{name}"
            raise ValidationError.single(where, message)
    if not trials_a or not trials_b:
        return None
    rate_a, rate_b = successes_a / trials_a, successes_b / trials_b
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return None
    z = (rate_a - rate_b) / math.sqrt(variance)
    return ZTest(rate_a, rate_b, z, math.erfc(abs(z) / math.sqrt(2)))


@attrs.frozen
class VariantResult:
    """What one variant's members did.

    Attributes:
        variant: The arm name (or ``"holdout"``).
        members: How many members it has.
        counts: Response kind -> members who responded so at least once.
        test: The z-test of the measured response against the control (``None`` for the control itself
            or when undefined).
    """

    variant: str
    members: int
    counts: Mapping[ResponseKind, int]
    test: ZTest | None = None

    def rate(self, kind: ResponseKind | str) -> float | None:
        """Members who responded with ``kind`` / members; ``None`` without members."""
        return self.counts.get(ResponseKind(kind), 0) / self.members if self.members else None


@attrs.frozen
class CampaignResults:
    """Per-variant results of one campaign.

    Attributes:
        campaign_id: The campaign.
        measured: The response the tests compare (``converted`` by default).
        control: The variant the others are tested against.
        variants: One result per variant, by name.
    """

    campaign_id: str
    measured: ResponseKind
    control: str
    variants: tuple[VariantResult, ...]


def campaign_results(
    campaign_id: str,
    members: Iterable[CampaignMember],
    responses: Iterable[Response],
    *,
    control: str,
    measured: ResponseKind | str = ResponseKind.CONVERTED,
) -> CampaignResults:
    """Count each variant's responders and test every variant's rate against the control's.

    A member counts once per response kind however often they responded; responses of non-members or
    of other campaigns are ignored.

    Raises:
        ValidationError: When ``control`` is not a variant of the members.
    """
    measured = _response_kind(measured)
    variant_of = {m.customer_id: m.variant for m in members if m.campaign_id == campaign_id}
    sizes: dict[str, int] = defaultdict(int)
    for variant in variant_of.values():
        sizes[variant] += 1
    if control not in sizes:
        raise ValidationError.single("control", f"{control!r} is not a variant; variants: {sorted(sizes)}")
    responders: dict[tuple[str, ResponseKind], set[str]] = defaultdict(set)
    for response in responses:
        responder = variant_of.get(response.customer_id)
        if response.campaign_id == campaign_id and responder is not None:
            responders[responder, response.kind].add(response.customer_id)
    counts = {
        variant: {kind: len(responders.get((variant, kind), ())) for kind in ResponseKind}
        for variant in sizes
    }
    base = counts[control][measured], sizes[control]
    results = tuple(
        VariantResult(
            variant,
            sizes[variant],
            counts[variant],
            None
            if variant == control
            else two_proportion_z_test(counts[variant][measured], sizes[variant], *base),
        )
        for variant in sorted(sizes, key=lambda v: (v != control, v))
    )
    return CampaignResults(campaign_id, measured, control, results)


# -- attribution --------------------------------------------------------------------------------------

AttributionModel = Literal["first_touch", "last_touch", "linear", "time_decay"]
_MODELS = ("first_touch", "last_touch", "linear", "time_decay")
# Shares are rounded to 12 decimal places so that sums over many orders stay exact.
_CREDIT_QUANTUM = Decimal("1e-12")


@attrs.frozen
class Touch:
    """A campaign reaching a customer (a delivered message, a click).

    Attributes:
        customer_id: Who was reached.
        campaign_id: By which campaign.
        at: When.
    """

    customer_id: str
    campaign_id: str
    at: datetime = attrs.field(validator=_aware)


@attrs.frozen
class Attribution:
    """Revenue credited to campaigns.

    Attributes:
        model: The attribution model used.
        revenue: Campaign id -> credited revenue.
        orders: Campaign id -> orders it had a share in.
        unattributed: Revenue of orders with no touch in the window.
    """

    model: str
    revenue: Mapping[str, Decimal]
    orders: Mapping[str, int]
    unattributed: Decimal


def _weights(model: str, ages: list[float], half_life: float) -> list[float]:
    if model == "first_touch":
        return [1.0] + [0.0] * (len(ages) - 1)
    if model == "last_touch":
        return [0.0] * (len(ages) - 1) + [1.0]
    if model == "linear":
        return [1.0] * len(ages)
    return [0.5 ** (age / half_life) for age in ages]


def attribute_revenue(
    orders: Iterable[OrderRow] | Iterable[Order],
    touches: Iterable[Touch],
    *,
    model: AttributionModel = "last_touch",
    window: str = "P30D",
    half_life_days: float = 7.0,
) -> Attribution:
    """Credit each order's amount to the campaigns that touched its customer within ``window`` before it.

    With the touches ``t_1 .. t_n`` of the order's customer in ``[ordered_at - window, ordered_at]``, in
    time order, each gets ``amount x w_i / sum(w)`` (rounded to 12 decimal places) where ``w`` is: first
    touch ``(1, 0, .., 0)``; last touch ``(0, .., 0, 1)``; linear ``(1, .., 1)``; time decay
    ``w_i = 0.5 ** (age_i / half_life_days)`` with ``age_i`` in days before the order. The last touch
    with a share gets the rounding remainder, so the credits of an order, and of all orders, add up to
    the revenue exactly.

    Raises:
        ValidationError: For an unknown model, a bad window or a half-life that is not positive.
    """
    if model not in _MODELS:
        raise ValidationError.single("model", f"must be one of {', '.join(_MODELS)}, got {model!r}")
    if not (isinstance(half_life_days, int | float) and math.isfinite(half_life_days) and half_life_days > 0):
        raise ValidationError.single("half_life_days", f"must be a positive number, got {half_life_days!r}")
    try:
        lookback = parse_duration(window)
    except (RuleError, TypeError) as exc:
        raise ValidationError.single("window", f"not an ISO 8601 duration: {window!r}") from exc
    by_customer: dict[str, list[Touch]] = defaultdict(list)
    for touch in touches:
        by_customer[touch.customer_id].append(touch)
    times: dict[str, list[datetime]] = {}
    for customer, listed in by_customer.items():
        listed.sort(key=lambda t: (t.at, t.campaign_id))
        times[customer] = [t.at for t in listed]
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    counted: dict[str, set[Any]] = defaultdict(set)
    unattributed = Decimal(0)
    day = timedelta(days=1)
    for number, row in enumerate(as_rows(orders)):
        customer, at, amount = row[0], row[1], Decimal(row[2])
        moments = times.get(customer, [])
        low, high = bisect.bisect_left(moments, at - lookback), bisect.bisect_right(moments, at)
        window_touches = by_customer[customer][low:high] if high > low else []
        if not window_touches:
            unattributed += amount
            continue
        weights = _weights(model, [(at - t.at) / day for t in window_touches], half_life_days)
        total = sum(weights)
        shared = [(t, w) for t, w in zip(window_touches, weights, strict=True) if w > 0]
        given = Decimal(0)
        for index, (touch, weight) in enumerate(shared):
            if index == len(shared) - 1:
                credit = amount - given
            else:
                credit = (amount * Decimal(weight / total)).quantize(_CREDIT_QUANTUM)
            given += credit
            revenue[touch.campaign_id] += credit
            counted[touch.campaign_id].add(row[3] if len(row) > 3 and row[3] is not None else number)  # noqa: PLR2004
    return Attribution(
        model, dict(revenue), {campaign: len(ids) for campaign, ids in counted.items()}, unattributed
    )
