"""Loyalty: a points ledger per customer (earn by rules, redeem, expire) and tiers by rolling spend."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import _validation as _checks
from crmkit._validation import Validated, rules
from crmkit.clock import now
from crmkit.conditions import Condition, Schema, parse_duration
from crmkit.entities import EntityRef, Order, OrderStatus
from crmkit.errors import CurrencyMismatch, InsufficientBalance, RuleError, ValidationError
from crmkit.events import DomainEvent, register_event
from crmkit.money import Money, check_currency

if TYPE_CHECKING:
    from dateutil.relativedelta import relativedelta

__all__ = [
    "ORDER_FIELDS",
    "EarnRule",
    "LoyaltyProgram",
    "LoyaltyTier",
    "PointsEarned",
    "PointsEntry",
    "PointsEntryKind",
    "PointsExpired",
    "PointsLedger",
    "PointsRedeemed",
    "TierDowngraded",
    "TierReview",
    "TierUpgraded",
    "review_tier",
    "rolling_spend",
]

#: The fields an earn rule's condition may read from an order.
ORDER_FIELDS: Mapping[str, Any] = {
    "total": Decimal,
    "currency": str,
    "campaign_id": str,
    "tags": frozenset[str],
    "lines": int,
    "customer_tier": str,
}
_SCHEMA = Schema(ORDER_FIELDS)
#: Orders that do not count towards spend or points.
_NOT_SPENT = frozenset({OrderStatus.DRAFT, OrderStatus.CANCELLED, OrderStatus.REFUNDED})


def _rate(value: Any) -> Decimal:
    try:
        number = Decimal(value) if not isinstance(value, bool | float) else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite() or number < 0:
        msg = f"expected a decimal of 0 or more, got {value!r}"
        raise RuleError(msg)
    return number


def _points_per_unit(value: Any) -> Decimal:
    try:
        return _rate(value)
    except RuleError as exc:
        raise exc.under("points_per_unit") from None


def _min_spend(value: Any) -> Decimal:
    try:
        return _rate(value)
    except RuleError as exc:
        raise exc.under("min_spend") from None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"expected a whole number of 0 or more, got {value!r}"
        raise RuleError(msg, "bonus")
    return value


def _optional_condition(value: Any) -> Condition | None:
    return value if value is None or isinstance(value, Condition) else Condition.from_json(value)


def _earn_rules(value: Iterable[EarnRule]) -> tuple[EarnRule, ...]:
    return tuple(value)


def _tiers(value: Iterable[LoyaltyTier]) -> tuple[LoyaltyTier, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class EarnRule:
    """Points an order earns when ``when`` holds: ``floor(total x points_per_unit) + bonus``.

    Attributes:
        name: A unique name; the points ledger records which rules earned what.
        when: A condition over :data:`ORDER_FIELDS`; every order when left out.
        points_per_unit: Points per unit of currency of the order's total (``"1"``: a point per euro).
        bonus: Extra points per order.
    """

    name: str
    when: Condition | None = attrs.field(default=None, converter=_optional_condition)
    points_per_unit: Decimal = attrs.field(default=Decimal(0), converter=_points_per_unit)
    bonus: int = attrs.field(default=0, converter=_count)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "name": self.name,
            "when": None if self.when is None else self.when.to_json(),
            "points_per_unit": str(self.points_per_unit),
            "bonus": self.bonus,
        }


@attrs.frozen
class LoyaltyTier:
    """A tier a customer reaches by spending at least ``min_spend`` over the rolling window.

    Attributes:
        name: The tier's name (``"silver"``).
        min_spend: The spend that reaches it, in the program's currency.
    """

    name: str
    min_spend: Decimal = attrs.field(converter=_min_spend)


@attrs.frozen(kw_only=True)
class LoyaltyProgram:
    """A loyalty program: how orders earn points, how long points last, and the tiers.

    Attributes:
        name: The program's name.
        currency: The currency spend is counted in.
        earn_rules: Every rule whose condition holds adds its points.
        points_valid_for: How long earned points last, an ISO 8601 duration (``"P12M"``).
        tiers: From the lowest up; the first needs a ``min_spend`` of 0.
        spend_window: The rolling window tiers are computed over (``"P12M"``).

    Raises:
        RuleError: With a path: ``earn_rules[1].when.field``, ``tiers[2].min_spend``,
            ``points_valid_for``, ...
    """

    name: str
    currency: str = attrs.field(converter=check_currency)
    earn_rules: tuple[EarnRule, ...] = attrs.field(default=(), converter=_earn_rules)
    points_valid_for: str = "P12M"
    tiers: tuple[LoyaltyTier, ...] = attrs.field(default=(), converter=_tiers)
    spend_window: str = "P12M"
    _compiled: tuple[tuple[EarnRule, Callable[[Any], bool] | None], ...] = attrs.field(
        init=False, repr=False, eq=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        for name in ("points_valid_for", "spend_window"):
            try:
                parse_duration(getattr(self, name))
            except RuleError as exc:
                raise RuleError(exc.message, name) from None
        compiled = []
        names: set[str] = set()
        for index, rule in enumerate(self.earn_rules):
            if rule.name in names:
                msg = f"rule name {rule.name!r} is used twice"
                raise RuleError(msg, f"earn_rules[{index}].name")
            names.add(rule.name)
            try:
                predicate = None if rule.when is None else _SCHEMA.compile(rule.when)
            except RuleError as exc:
                raise exc.under(f"earn_rules[{index}].when") from None  # noqa: EM102 - a path, not a message
            compiled.append((rule, predicate))
        for index, tier in enumerate(self.tiers):
            floor = self.tiers[index - 1].min_spend if index else None
            if (floor is None and tier.min_spend != 0) or (floor is not None and tier.min_spend <= floor):
                message = "the first tier starts at 0 and each next tier needs more spend than the one below"
                raise RuleError(message, f"tiers[{index}].min_spend")
        object.__setattr__(self, "_compiled", tuple(compiled))

    @property
    def validity(self) -> relativedelta:
        """How long earned points last."""
        return parse_duration(self.points_valid_for)

    def points_for(self, order: Order, *, customer_tier: str | None = None) -> tuple[int, tuple[str, ...]]:
        """Return the points an order earns and the names of the rules that earned them.

        Orders that are drafts, cancelled or refunded earn nothing.

        Raises:
            CurrencyMismatch: For an order in another currency than the program's.
        """
        if order.currency != self.currency:
            message = f"the program counts {self.currency}, the order is in {order.currency}"
            raise CurrencyMismatch.single("currency", message)
        if order.status in _NOT_SPENT:
            return 0, ()
        record = {
            "total": order.total.amount,
            "currency": order.currency,
            "campaign_id": order.campaign_id,
            "tags": order.tags,
            "lines": len(order.lines),
            "customer_tier": customer_tier,
        }
        points, names = 0, []
        for rule, predicate in self._compiled:
            if predicate is None or predicate(record):
                earned = (
                    int((order.total.amount * rule.points_per_unit).to_integral_value(ROUND_FLOOR))
                    + rule.bonus
                )
                if earned > 0:
                    points += earned
                    names.append(rule.name)
        return points, tuple(names)

    def tier_for(self, spend: Money) -> str | None:
        """The highest tier ``spend`` reaches; ``None`` when the program has no tiers."""
        if spend.currency != self.currency:
            raise CurrencyMismatch.single(
                "currency", f"the program counts {self.currency}, not {spend.currency}"
            )
        reached = [tier.name for tier in self.tiers if spend.amount >= tier.min_spend]
        return reached[-1] if reached else None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "name": self.name,
            "currency": self.currency,
            "earn_rules": [rule.to_json() for rule in self.earn_rules],
            "points_valid_for": self.points_valid_for,
            "tiers": [{"name": tier.name, "min_spend": str(tier.min_spend)} for tier in self.tiers],
            "spend_window": self.spend_window,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoyaltyProgram:
        """Build a program from :meth:`to_json`'s form.

        Raises:
            RuleError: With the path of the bad value (``earn_rules[0].when.op``).
        """
        given: object = data
        if not isinstance(given, Mapping):
            msg = "a loyalty program is an object"
            raise RuleError(msg)
        rules_ = [_earn_rule(item, index) for index, item in enumerate(data.get("earn_rules", ()))]
        tiers = [_tier(item, index) for index, item in enumerate(data.get("tiers", ()))]
        try:
            return cls(
                name=data["name"],
                currency=data["currency"],
                earn_rules=rules_,
                points_valid_for=data.get("points_valid_for", "P12M"),
                tiers=tiers,
                spend_window=data.get("spend_window", "P12M"),
            )
        except KeyError as exc:
            msg = f"missing {exc.args[0]!r}"
            raise RuleError(msg, str(exc.args[0])) from None
        except ValidationError as exc:
            raise RuleError(str(exc), "currency") from None


def _earn_rule(item: Any, index: int) -> EarnRule:
    """An earn rule from its JSON form; errors under ``earn_rules[index]``."""
    path = f"earn_rules[{index}]"
    if not isinstance(item, Mapping):
        msg = f"an earn rule is an object, got {type(item).__name__}"
        raise RuleError(msg, path)
    try:
        when = Condition.from_json(item["when"]) if item.get("when") is not None else None
    except RuleError as exc:
        raise exc.under(path + ".when") from None
    try:
        return EarnRule(**{**item, "when": when})
    except RuleError as exc:
        raise exc.under(path) from None
    except TypeError as exc:
        raise RuleError(str(exc), path) from None


def _tier(item: Any, index: int) -> LoyaltyTier:
    """A tier from its JSON form; errors under ``tiers[index]``."""
    try:
        return LoyaltyTier(item["name"], item["min_spend"])
    except RuleError as exc:
        raise exc.under(f"tiers[{index}]") from None  # noqa: EM102 - a path, not a message
    except (KeyError, TypeError) as exc:
        msg = f"a tier has a name and a min_spend: {exc}"
        raise RuleError(msg, f"tiers[{index}]") from None


class PointsEntryKind(enum.StrEnum):
    """What a points entry records."""

    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"


def _positive(value: int) -> int:
    if value <= 0:
        _checks.fail(f"must be more than zero, got {value}")
    return value


@attrs.frozen(kw_only=True)
class PointsEntry(Validated):
    """One movement of a customer's points. Entries are only ever appended.

    Attributes:
        kind: Earned, redeemed or expired.
        points: How many, more than zero.
        at: When.
        expires_at: For earned points, when they lapse.
        order_id: The order that earned them.
        reason: Why (the earn rules, the reward redeemed).
    """

    kind: PointsEntryKind
    points: int = attrs.field(metadata=rules(_positive))
    at: datetime = attrs.field(factory=now)
    expires_at: datetime | None = None
    order_id: str | None = attrs.field(default=None, metadata=rules(_checks.identifier))
    reason: str | None = None


@register_event("points_earned")
@attrs.frozen(kw_only=True)
class PointsEarned(DomainEvent):
    """A customer earned loyalty points.

    Attributes:
        points: How many.
        balance: The balance afterwards.
        rules: The earn rules that gave them.
    """

    points: int
    balance: int
    rules: tuple[str, ...] = ()


@register_event("points_redeemed")
@attrs.frozen(kw_only=True)
class PointsRedeemed(DomainEvent):
    """A customer redeemed loyalty points.

    Attributes:
        points: How many.
        balance: The balance afterwards.
    """

    points: int
    balance: int


@register_event("points_expired")
@attrs.frozen(kw_only=True)
class PointsExpired(DomainEvent):
    """Earned points lapsed unused.

    Attributes:
        points: How many.
        balance: The balance afterwards.
    """

    points: int
    balance: int


@attrs.frozen
class PointsLedger:
    """The points of one customer: an append-only list of entries, oldest first.

    Points are kept in lots, one per earn entry, each lapsing at its ``expires_at``.
    A redemption takes from the live lots that lapse soonest. The balance on a date is
    what is left of the lots still live then, so it never goes negative.

    Attributes:
        customer: The customer (a contact or an account).
        entries: The entries, in time order.
    """

    customer: EntityRef
    entries: tuple[PointsEntry, ...] = ()

    def _lots(self, as_of: datetime) -> list[list[Any]]:
        """``[expires_at, remaining, index]`` per earn entry, after the entries up to ``as_of``."""
        lots: list[list[Any]] = []
        for index, entry in enumerate(self.entries):
            if entry.at > as_of:
                break
            if entry.kind is PointsEntryKind.EARN:
                lots.append([entry.expires_at, entry.points, index])
            else:
                take = entry.points
                live = [lot for lot in lots if lot[1] > 0 and (lot[0] is None or lot[0] > entry.at)]
                live.sort(key=lambda lot: (lot[0] is None, lot[0] or entry.at, lot[2]))
                if entry.kind is PointsEntryKind.EXPIRE:
                    live = [lot for lot in lots if lot[1] > 0 and lot[0] is not None and lot[0] <= entry.at]
                for lot in live:
                    taken = min(take, lot[1])
                    lot[1] -= taken
                    take -= taken
        return lots

    def balance(self, as_of: datetime | None = None) -> int:
        """The points available at ``as_of`` (the current clock by default): live lots' remainders."""
        moment = _aware(as_of)
        return sum(lot[1] for lot in self._lots(moment) if lot[0] is None or lot[0] > moment)

    def _append(self, entry: PointsEntry) -> PointsLedger:
        if self.entries and entry.at < self.entries[-1].at:
            raise ValidationError.single("at", "must not be before the ledger's last entry")
        return attrs.evolve(self, entries=(*self.entries, entry))

    def earn(
        self,
        order: Order,
        program: LoyaltyProgram,
        *,
        customer_tier: str | None = None,
        at: datetime | None = None,
    ) -> tuple[PointsLedger, PointsEarned | None]:
        """Add the points ``order`` earns under ``program``; no entry (and no event) when it earns none.

        Args:
            order: The order; its ``ordered_at`` is when the points are earned unless ``at`` is given.
            program: The loyalty program.
            customer_tier: The customer's tier, which earn rules may read.
            at: When the points are booked.

        Raises:
            CurrencyMismatch: An order in another currency than the program's.
            ConflictError: The order earned points in this ledger already.
            ValidationError: ``at`` before the last entry.
        """
        from crmkit.errors import ConflictError  # noqa: PLC0415 - only this path needs it

        if any(entry.order_id == order.id and entry.kind is PointsEntryKind.EARN for entry in self.entries):
            msg = f"order {order.id!r} already earned points"
            raise ConflictError(msg)
        points, names = program.points_for(order, customer_tier=customer_tier)
        if points == 0:
            return self, None
        moment = _aware(at or order.ordered_at)
        entry = PointsEntry(
            kind=PointsEntryKind.EARN,
            points=points,
            at=moment,
            expires_at=moment + program.validity,
            order_id=order.id,
            reason=", ".join(names),
        )
        ledger = self._append(entry)
        event = PointsEarned(
            entity=self.customer, at=moment, points=points, balance=ledger.balance(moment), rules=names
        )
        return ledger, event

    def redeem(
        self, points: int, *, at: datetime | None = None, reason: str | None = None
    ) -> tuple[PointsLedger, PointsRedeemed]:
        """Take ``points`` from the balance at ``at``.

        Raises:
            InsufficientBalance: If ``points`` is more than the balance (path ``points``); the
                ledger is unchanged.
            ValidationError: If ``points`` is not more than zero or ``at`` is naive or before the last entry.
        """
        moment = _aware(at)
        if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
            raise ValidationError.single("points", f"must be a whole number more than zero, got {points!r}")
        available = self.balance(moment)
        if points > available:
            raise InsufficientBalance.single(
                "points", f"cannot redeem {points} points: the balance is {available}"
            )
        ledger = self._append(
            PointsEntry(kind=PointsEntryKind.REDEEM, points=points, at=moment, reason=reason)
        )
        return ledger, PointsRedeemed(
            entity=self.customer, at=moment, points=points, balance=available - points
        )

    def expire(self, as_of: datetime | None = None) -> tuple[PointsLedger, PointsExpired | None]:
        """Record the points of lots that lapsed unused by ``as_of`` (one entry); ``None`` if none lapsed."""
        moment = _aware(as_of)
        lapsed = sum(lot[1] for lot in self._lots(moment) if lot[0] is not None and lot[0] <= moment)
        if lapsed == 0:
            return self, None
        ledger = self._append(
            PointsEntry(kind=PointsEntryKind.EXPIRE, points=lapsed, at=moment, reason="expired")
        )
        return ledger, PointsExpired(
            entity=self.customer, at=moment, points=lapsed, balance=ledger.balance(moment)
        )


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return now()
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValidationError.single("at", "must be a timezone-aware datetime")
    return moment


def rolling_spend(orders: Iterable[Order], *, as_of: datetime, window: str = "P12M", currency: str) -> Money:
    """The spend of ``orders`` placed in the window ``as_of - window < ordered_at <= as_of``.

    Drafts, cancelled and refunded orders do not count. The order totals are summed exactly.

    Raises:
        CurrencyMismatch: For an order in another currency.
    """
    moment = _aware(as_of)
    start = moment - parse_duration(window)
    total = Money.zero(currency)
    for order in orders:
        if order.status in _NOT_SPENT or not start < order.ordered_at <= moment:
            continue
        total = total + order.total
    return total


@register_event("loyalty_tier_upgraded")
@attrs.frozen(kw_only=True)
class TierUpgraded(DomainEvent):
    """A customer reached a higher loyalty tier; workflows can send a reward.

    Attributes:
        from_tier: The tier before (``None`` for a first tier).
        to_tier: The new tier.
        spend: The rolling spend that reached it.
    """

    from_tier: str | None = None
    to_tier: str
    spend: Money


@register_event("loyalty_tier_downgraded")
@attrs.frozen(kw_only=True)
class TierDowngraded(DomainEvent):
    """A customer's rolling spend fell below their tier.

    Attributes:
        from_tier: The tier before.
        to_tier: The new tier (``None`` when below every tier).
        spend: The rolling spend.
    """

    from_tier: str | None = None
    to_tier: str | None = None
    spend: Money


@attrs.frozen(kw_only=True)
class TierReview:
    """The outcome of a tier review.

    Attributes:
        tier: The tier the customer is in now.
        spend: The rolling spend it was computed from.
        event: A :class:`TierUpgraded` or :class:`TierDowngraded`, or ``None`` when unchanged.
    """

    tier: str | None
    spend: Money
    event: TierUpgraded | TierDowngraded | None


def review_tier(
    customer: EntityRef,
    current: str | None,
    orders: Iterable[Order],
    program: LoyaltyProgram,
    *,
    as_of: datetime,
) -> TierReview:
    """Recompute a customer's tier from their rolling spend; an event when it moves up or down.

    Args:
        customer: The customer.
        current: Their tier now (``None``: none yet).
        orders: Their orders (any; only those in the window count).
        program: The loyalty program.
        as_of: The end of the rolling window.

    Raises:
        ValidationError: If ``current`` is not one of the program's tiers (path ``current``).
    """
    names = [tier.name for tier in program.tiers]
    if current is not None and current not in names:
        raise ValidationError.single("current", f"{current!r} is not a tier of {program.name!r}: {names}")
    spend = rolling_spend(orders, as_of=as_of, window=program.spend_window, currency=program.currency)
    tier = program.tier_for(spend)
    rank = {name: index for index, name in enumerate(names)}
    before, after = rank.get(current or "", -1), rank.get(tier or "", -1)
    event: TierUpgraded | TierDowngraded | None = None
    if after > before:
        event = TierUpgraded(entity=customer, at=as_of, from_tier=current, to_tier=tier or "", spend=spend)
    elif after < before:
        event = TierDowngraded(entity=customer, at=as_of, from_tier=current, to_tier=tier, spend=spend)
    return TierReview(tier=tier, spend=spend, event=event)
