"""The customer base over time: who is active at each period boundary, who is new, what they cost.

One pass over the orders records, per customer, the day and campaign of their first order and a bit
mask of the period boundaries at which they were active. Retention, churn and acquisition cost per
period are read from that summary, so a million orders are read once for all three.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

import attrs

from crmkit.errors import ValidationError
from crmkit.metrics._currency import Converter, ExchangeRates
from crmkit.metrics._inputs import as_rows, bad_row
from crmkit.metrics._periods import PeriodRange, Result, Table, check_aware, ratio
from crmkit.money import Money

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from crmkit.entities import Order
    from crmkit.segmentation import OrderRow

__all__ = [
    "AcquisitionRow",
    "CustomerBase",
    "RetentionRow",
    "SpendRow",
    "Subscription",
    "acquisition_cost",
    "customer_base",
    "retention",
]

Attribution = Literal["channel", "campaign"]


@attrs.frozen
class SpendRow:
    """Money spent on acquisition: an invoice, a day of ads, a campaign's cost.

    Attributes:
        spent_on: The day the spend counts for.
        amount: How much.
        channel: The channel it bought (for CAC per channel), if any.
        campaign_id: The campaign it paid for (for CAC per campaign), if any.
    """

    spent_on: date
    amount: Money
    channel: str | None = None
    campaign_id: str | None = None


@attrs.frozen
class Subscription:
    """A subscription keeps its customer active while it is open, orders or not.

    Attributes:
        customer_id: Whose subscription.
        started_at: When it began.
        ended_at: When it ended; ``None`` while open.
    """

    customer_id: str
    started_at: datetime
    ended_at: datetime | None = None


@attrs.frozen
class RetentionRow(Result):
    """Retention and churn of one period.

    Attributes:
        period: The period's label (``"2026-03"``).
        customers_at_start: Customers active at the period's start (S).
        new_customers: Customers whose first order falls in the period (N).
        customers_at_end: Customers active at the period's end (E).
        lost_customers: Customers active at the start and not at the end.
        retention_rate: (E - N) / S; ``None`` when S is 0.
        churn_rate: lost / S; ``None`` when S is 0.
    """

    period: str
    customers_at_start: int
    new_customers: int
    customers_at_end: int
    lost_customers: int
    retention_rate: float | None
    churn_rate: float | None


@attrs.frozen
class AcquisitionRow(Result):
    """Customer acquisition cost of one period (and one channel or campaign).

    Attributes:
        period: The period's label.
        key: The channel or campaign (``None``: all of them, or the spend and customers without one).
        spend: Acquisition spend in the period, in the reporting currency.
        new_customers: Customers whose first order falls in the period (and is credited to ``key``).
        cac: spend / new customers; ``None`` when there is no new customer.
        currency: The reporting currency.
    """

    period: str
    key: str | None
    spend: Decimal
    new_customers: int
    cac: Decimal | None
    currency: str


class CustomerBase:
    """Each customer's first order and activity at the period boundaries, from one pass over the orders.

    Build it with :func:`customer_base`; read :meth:`retention` and :meth:`acquisition_cost` from it.

    A customer is active at an instant B when they have an order in the ``activity_days`` days before
    B (by calendar day in the periods' time zone: an order on day d counts at boundaries on days
    d + 1 to d + activity_days), or an open subscription at B.

    Attributes:
        periods: The reporting periods.
        activity_days: The activity window, in days.
    """

    __slots__ = ("_first_counts", "_mask_counts", "_states", "activity_days", "periods")

    def __init__(self, periods: PeriodRange, activity_days: int, states: dict[str, list[Any]]) -> None:
        self.periods = periods
        self.activity_days = activity_days
        # Per customer: [day ordinal of the first order, its campaign, mask of active boundaries].
        self._states = states
        self._first_counts: Counter[tuple[int, str | None]] | None = None
        self._mask_counts: Counter[int] | None = None

    @property
    def customers(self) -> int:
        """How many customers have ordered (up to the end of the last period)."""
        return sum(1 for state in self._states.values() if state[0] is not None)

    def _new_by_period(self, key_of: Callable[[str | None], str | None] | None) -> Counter[tuple[int, Any]]:
        """New customers per (period index, key); the key is ``None`` when not attributing."""
        if self._first_counts is None:
            self._first_counts = Counter(
                (state[0], state[1]) for state in self._states.values() if state[0] is not None
            )
        ordinals = [day.toordinal() for day in self.periods.firsts]
        result: Counter[tuple[int, Any]] = Counter()
        last = len(ordinals) - 1
        for (day, campaign), count in self._first_counts.items():
            i = bisect_right(ordinals, day) - 1
            if 0 <= i < last:
                result[i, None if key_of is None else key_of(campaign)] += count
        return result

    def retention(self) -> Table[RetentionRow]:
        """Retention and churn per period.

        For each period: S = customers active at its start, E = active at its end, N = new customers
        (first order in the period), lost = active at the start but not at the end;
        retention rate = (E - N) / S and churn rate = lost / S (``None`` when S is 0).
        """
        count = len(self.periods)
        active = [0] * (count + 1)
        lost = [0] * count
        if self._mask_counts is None:
            self._mask_counts = Counter(state[2] for state in self._states.values())
        for mask, n in self._mask_counts.items():
            bits = mask
            while bits:
                low = bits & -bits
                j = low.bit_length() - 1
                active[j] += n
                if j < count and not mask & (low << 1):
                    lost[j] += n
                bits ^= low
        new = self._new_by_period(None)
        rows = []
        for i, label in enumerate(self.periods.labels):
            start, end, joined = active[i], active[i + 1], new[i, None]
            rows.append(
                RetentionRow(
                    label, start, joined, end, lost[i], ratio(end - joined, start), ratio(lost[i], start)
                )
            )
        return Table(tuple(rows))

    def acquisition_cost(
        self,
        spend: Iterable[SpendRow],
        *,
        currency: str,
        by: Attribution | None = None,
        channels: Mapping[str, str] | None = None,
        rates: ExchangeRates | None = None,
    ) -> Table[AcquisitionRow]:
        """Customer acquisition cost per period, overall or per channel or campaign.

        CAC = acquisition spend in the period / customers whose first order falls in the period. Per
        channel (or campaign), spend carrying that channel is divided by the new customers whose first
        order is credited to it (a customer's channel is ``channels[campaign_id]`` of their first order).

        Args:
            spend: The spend rows.
            currency: The reporting currency.
            by: ``None`` for one row per period, ``"channel"`` or ``"campaign"`` for one row per period
                and key (spend and customers without one go to key ``None``).
            channels: The channel of each campaign id (needed for ``by="channel"``).
            rates: Exchange rates for spend in other currencies.

        Raises:
            CurrencyMismatch: For spend in another currency without a rate.
            ValidationError: For an unknown ``by``.
        """
        if by not in {None, "channel", "campaign"}:
            raise ValidationError.single("by", f"must be None, 'channel' or 'campaign', got {by!r}")
        converter = Converter(currency, rates)
        channel_of = channels or {}
        key_of: Callable[[str | None], str | None] | None = None
        if by == "campaign":
            key_of = _same
        elif by == "channel":
            key_of = channel_of.get if channels else _none  # type: ignore[assignment]
        spent: dict[tuple[int, Any], Decimal] = {}
        for index, row in enumerate(spend):
            i = self.periods.index_of(row.spent_on)
            if i is None:
                continue
            key = None if by is None else (row.channel if by == "channel" else row.campaign_id)
            amount = converter.amount(row.amount, row.spent_on, f"spend[{index}].amount")
            spent[i, key] = spent.get((i, key), Decimal(0)) + amount
        new = self._new_by_period(key_of)
        keys = sorted({key for _, key in (*spent, *new)}, key=lambda k: (k is not None, k or ""))
        rows = []
        for i, label in enumerate(self.periods.labels):
            for key in keys:
                amount, joined = spent.get((i, key), Decimal(0)), new[i, key]
                cac = amount / joined if joined else None
                rows.append(AcquisitionRow(label, key, amount, joined, cac, converter.currency))
        return Table(tuple(rows))


def _same(value: str | None) -> str | None:
    return value


def _none(_value: str | None) -> None:
    return None


def _check_activity_days(activity_days: object) -> int:
    if isinstance(activity_days, bool) or not isinstance(activity_days, int) or activity_days < 1:
        raise ValidationError.single(
            "activity_days", f"must be a whole number of days >= 1, got {activity_days!r}"
        )
    return activity_days


def customer_base(
    orders: Iterable[OrderRow] | Iterable[Order],
    *,
    periods: PeriodRange,
    activity_days: int = 90,
    subscriptions: Iterable[Subscription] = (),
) -> CustomerBase:
    """Read the orders once into a :class:`CustomerBase` for the given periods.

    Args:
        orders: :class:`crmkit.segmentation.OrderRow` rows, or order entities (converted with
            :func:`crmkit.segmentation.order_rows`).
        periods: The reporting periods; orders after the last one are ignored.
        activity_days: A customer is active for this many days after each order.
        subscriptions: Subscriptions that keep customers active while open.

    Raises:
        ValidationError: For a bad activity window or a row that is not an order.
    """
    window = _check_activity_days(activity_days)
    tz = periods.tz
    ordinals = [day.toordinal() for day in periods.firsts]
    last = ordinals[-1]
    mask_of: dict[int, int] = {}
    states: dict[str, list[Any]] = {}
    get_state, get_day_mask = states.get, mask_of.get
    row: Any = None
    try:
        for row in as_rows(orders):
            at = row[1]
            zone = at.tzinfo
            if zone is not tz:
                if zone is None:
                    raise bad_row(row)
                at = at.astimezone(tz)
            day = at.toordinal()
            if day >= last:
                continue
            mask = get_day_mask(day)
            if mask is None:
                lo, hi = bisect_right(ordinals, day), bisect_right(ordinals, day + window)
                mask = mask_of[day] = (1 << hi) - (1 << lo)
            state = get_state(row[0])
            if state is None:
                states[row[0]] = [day, row[4], mask]
            else:
                if day < state[0]:
                    state[0], state[1] = day, row[4]
                state[2] |= mask
    except (TypeError, IndexError, AttributeError, InvalidOperation):
        raise bad_row(row) from None
    _add_subscriptions(states, subscriptions, periods)
    return CustomerBase(periods, window, states)


def _add_subscriptions(
    states: dict[str, list[Any]], subscriptions: Iterable[Subscription], periods: PeriodRange
) -> None:
    for index, subscription in enumerate(subscriptions):
        mask = _subscription_mask(subscription, periods, f"subscriptions[{index}]")
        state = states.get(subscription.customer_id)
        if state is None:  # a subscriber without orders: active, but never a new customer by orders
            states[subscription.customer_id] = [None, None, mask]
        else:
            state[2] |= mask


def _subscription_mask(subscription: Subscription, periods: PeriodRange, where: str) -> int:
    """The boundaries at which a subscription is open: started_at <= B < ended_at."""
    started = check_aware(subscription.started_at, f"{where}.started_at")
    ended = None if subscription.ended_at is None else check_aware(subscription.ended_at, f"{where}.ended_at")
    mask = 0
    for j, boundary in enumerate(periods.boundaries()):
        if started <= boundary and (ended is None or boundary < ended):
            mask |= 1 << j
    return mask


def retention(
    orders: Iterable[OrderRow] | Iterable[Order],
    *,
    periods: PeriodRange,
    activity_days: int = 90,
    subscriptions: Iterable[Subscription] = (),
) -> Table[RetentionRow]:
    """Customer retention and churn per period (see :meth:`CustomerBase.retention`).

    Args:
        orders: Order rows or entities.
        periods: The reporting periods.
        activity_days: A customer is active for this many days after each order.
        subscriptions: Subscriptions that keep customers active while open.
    """
    base = customer_base(orders, periods=periods, activity_days=activity_days, subscriptions=subscriptions)
    return base.retention()


def acquisition_cost(
    orders: Iterable[OrderRow] | Iterable[Order],
    spend: Iterable[SpendRow],
    *,
    periods: PeriodRange,
    currency: str,
    by: Attribution | None = None,
    channels: Mapping[str, str] | None = None,
    rates: ExchangeRates | None = None,
) -> Table[AcquisitionRow]:
    """Customer acquisition cost per period (see :meth:`CustomerBase.acquisition_cost`).

    Args:
        orders: Order rows or entities (the first order of each customer makes them new).
        spend: The spend rows.
        periods: The reporting periods.
        currency: The reporting currency.
        by: ``None``, ``"channel"`` or ``"campaign"``.
        channels: The channel of each campaign id.
        rates: Exchange rates for spend in other currencies.
    """
    base = customer_base(orders, periods=periods)
    return base.acquisition_cost(spend, currency=currency, by=by, channels=channels, rates=rates)
