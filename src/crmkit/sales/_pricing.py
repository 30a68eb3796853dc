"""Configuration and pricing rules: if-then-else in the condition language, compiled once, explained."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.conditions import AllOf, Condition, Op, Predicate, Schema
from crmkit.entities import LineItem
from crmkit.errors import RuleError, ValidationError
from crmkit.money import Money
from crmkit.sales._catalog import Catalog, PriceLookup

if TYPE_CHECKING:
    from datetime import date

__all__ = [
    "PRICING_FIELDS",
    "Action",
    "AppliedRule",
    "Effect",
    "LineRequest",
    "PricedLine",
    "PricingRule",
    "PricingRules",
    "price_line",
    "price_lines",
]

#: The fields a pricing rule's condition may read, and their types.
PRICING_FIELDS: Mapping[str, Any] = {
    "product_id": str,
    "sku": str,
    "family": str,
    "tags": frozenset[str],
    "options": frozenset[str],
    "quantity": Decimal,
    "list_price": Decimal,
    "currency": str,
    "customer_tier": str,
    "segment": str,
    "channel": str,
    "campaign_id": str,
}
_SCHEMA = Schema(PRICING_FIELDS)
# A top-level predicate on one of these with "eq" or "in" lets a rule be skipped for other values.
_INDEXED = ("product_id", "sku", "family", "campaign_id", "segment", "channel", "customer_tier", "currency")
_ONE = Decimal(1)


class Effect(enum.StrEnum):
    """What an :class:`Action` does to a line."""

    DISCOUNT = "discount"
    SURCHARGE = "surcharge"
    REQUIRE_OPTION = "require_option"
    EXCLUDE_OPTION = "exclude_option"
    REQUIRE_APPROVAL = "require_approval"


def _percent(fraction: Decimal) -> str:
    """``Decimal("0.125")`` as ``"12.5%"``."""
    return f"{(fraction * 100).normalize():f}%"


def _rule_error(message: str, path: str) -> RuleError:
    return RuleError(message, path)


def _decimal(value: Any, path: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool | float) or not isinstance(value, Decimal | int | str):
        msg = f"expected a decimal (Decimal, int or str), got {type(value).__name__}"
        raise _rule_error(msg, path)
    try:
        number = Decimal(value)
    except ArithmeticError:
        msg = f"{value!r} is not a decimal number"
        raise _rule_error(msg, path) from None
    if not number.is_finite() or number < 0:
        msg = f"must be a finite amount of 0 or more, got {value!r}"
        raise _rule_error(msg, path)
    return number


def _rate(value: Any) -> Decimal | None:
    return _decimal(value, "rate")


def _amount(value: Any) -> Decimal | None:
    return _decimal(value, "amount")


def _threshold(value: Any) -> Decimal | None:
    return _decimal(value, "approval_threshold")


def _rules(value: Iterable[PricingRule]) -> tuple[PricingRule, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Action:
    """One step of a rule's ``then`` or ``otherwise`` branch.

    Attributes:
        effect: What it does.
        rate: For a discount or surcharge, a fraction of the list price (``0.1`` is 10 %).
        amount: For a surcharge, a fixed amount per unit in the line's currency.
        option: For ``require_option`` and ``exclude_option``, the option concerned.

    Raises:
        RuleError: If the fields do not fit the effect (path ``rate``, ``amount``, ``option``).
    """

    effect: Effect = attrs.field(converter=Effect)
    rate: Decimal | None = attrs.field(default=None, converter=_rate)
    amount: Decimal | None = attrs.field(default=None, converter=_amount)
    option: str | None = None

    def __attrs_post_init__(self) -> None:
        priced = self.effect in {Effect.DISCOUNT, Effect.SURCHARGE}
        if self.effect is Effect.DISCOUNT and (self.rate is None or self.amount is not None):
            msg = "a discount takes a rate (a fraction of the list price)"
            raise _rule_error(msg, "rate")
        if self.effect is Effect.SURCHARGE and (self.rate is None) == (self.amount is None):
            msg = "a surcharge takes either a rate or an amount"
            raise _rule_error(msg, "rate")
        if self.rate is not None and self.rate > 1:
            msg = f"a rate is a fraction from 0 to 1, got {self.rate}"
            raise _rule_error(msg, "rate")
        if not priced and (self.rate is not None or self.amount is not None):
            msg = f"{self.effect} takes no rate or amount"
            raise _rule_error(msg, "rate")
        needs_option = self.effect in {Effect.REQUIRE_OPTION, Effect.EXCLUDE_OPTION}
        if needs_option != (isinstance(self.option, str) and bool(self.option.strip())):
            message = f"{self.effect} needs an option" if needs_option else f"{self.effect} takes no option"
            raise _rule_error(message, "option")

    def describe(self) -> str:
        """The action in plain words (``"discount 10%"``, ``"requires option 'router'"``)."""
        if self.effect is Effect.DISCOUNT or (self.effect is Effect.SURCHARGE and self.rate is not None):
            return f"{self.effect} {_percent(self.rate or Decimal(0))}"
        if self.effect is Effect.SURCHARGE:
            return f"surcharge {self.amount} per unit"
        if self.effect is Effect.REQUIRE_OPTION:
            return f"requires option {self.option!r}"
        if self.effect is Effect.EXCLUDE_OPTION:
            return f"excludes option {self.option!r}"
        return "requires approval"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``effect`` and whichever of rate, amount, option is set."""
        data: dict[str, Any] = {"effect": self.effect.value}
        if self.rate is not None:
            data["rate"] = str(self.rate)
        if self.amount is not None:
            data["amount"] = str(self.amount)
        if self.option is not None:
            data["option"] = self.option
        return data

    @classmethod
    def from_json(cls, data: Any) -> Action:
        """Build an action from its JSON form.

        Raises:
            RuleError: For an unknown key or effect, or fields that do not fit the effect.
        """
        if not isinstance(data, Mapping):
            msg = f"an action is an object, got {type(data).__name__}"
            raise RuleError(msg)
        unknown = set(data) - {"effect", "rate", "amount", "option"}
        if unknown:
            key = min(unknown)
            msg = f"unknown key {key!r}; an action has effect, rate, amount, option"
            raise RuleError(msg, key)
        effect = data.get("effect")
        if effect not in set(Effect):
            msg = f"unknown effect {effect!r}; one of: {', '.join(e.value for e in Effect)}"
            raise RuleError(msg, "effect")
        return cls(effect=effect, rate=data.get("rate"), amount=data.get("amount"), option=data.get("option"))


def _actions(value: Any) -> tuple[Action, ...]:
    items = tuple(value)
    for index, item in enumerate(items):
        if not isinstance(item, Action):
            msg = f"expected an Action, got {type(item).__name__}"
            raise RuleError(msg, f"[{index}]")
    return items


def _condition(value: Any) -> Condition:
    return value if isinstance(value, Condition) else Condition.from_json(value)


@attrs.frozen(kw_only=True)
class PricingRule:
    """If ``when`` holds for a line, apply ``then``; otherwise apply ``otherwise``.

    Attributes:
        name: A unique name; every price lists the names of the rules that made it.
        when: A condition over :data:`PRICING_FIELDS` (a tree or its JSON form).
        then: The actions when it holds.
        otherwise: The actions when it does not (often none).
        description: Why the rule exists, for people.
    """

    name: str
    when: Condition = attrs.field(converter=_condition)
    then: tuple[Action, ...] = attrs.field(default=(), converter=_actions)
    otherwise: tuple[Action, ...] = attrs.field(default=(), converter=_actions)
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: name, when, then, otherwise (and description when set)."""
        data: dict[str, Any] = {
            "name": self.name,
            "when": self.when.to_json(),
            "then": [action.to_json() for action in self.then],
            "otherwise": [action.to_json() for action in self.otherwise],
        }
        if self.description is not None:
            data["description"] = self.description
        return data

    @classmethod
    def from_json(cls, data: Any) -> PricingRule:
        """Build a rule from its JSON form.

        Raises:
            RuleError: With the path of the bad node (``when.all[0].op``, ``then[1].rate``).
        """
        if not isinstance(data, Mapping):
            msg = f"a rule is an object, got {type(data).__name__}"
            raise RuleError(msg)
        unknown = set(data) - {"name", "when", "then", "otherwise", "description"}
        if unknown:
            key = min(unknown)
            msg = f"unknown key {key!r}"
            raise RuleError(msg, key)
        for key in ("name", "when"):
            if key not in data:
                msg = f"a rule needs {key!r}"
                raise RuleError(msg, key)
        try:
            when = Condition.from_json(data["when"])
        except RuleError as exc:
            raise exc.under("when") from None
        branches: dict[str, tuple[Action, ...]] = {}
        for branch in ("then", "otherwise"):
            actions = []
            for index, item in enumerate(data.get(branch, ())):
                try:
                    actions.append(Action.from_json(item))
                except RuleError as exc:
                    raise exc.under(f"{branch}[{index}]") from None  # noqa: EM102 - a path, not a message
            branches[branch] = tuple(actions)
        return cls(name=data["name"], when=when, description=data.get("description"), **branches)


@attrs.frozen(kw_only=True)
class LineRequest:
    """What a salesperson asks to price: a product, a quantity, options, and who the customer is.

    Attributes:
        product_id: The product.
        quantity: How many units; a negative quantity is refused when priced.
        options: The configuration options chosen.
        customer_tier: The customer's tier (loyalty or account tier).
        segment: The customer's segment.
        channel: The sales channel.
        campaign_id: The campaign the sale is credited to.
        tax_rate: The tax rate of the line, 0 to 1.
        description: The text printed on the line; the product's name by default.
    """

    product_id: str
    quantity: Decimal = attrs.field(converter=Decimal)
    options: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    customer_tier: str | None = None
    segment: str | None = None
    channel: str | None = None
    campaign_id: str | None = None
    tax_rate: Decimal = attrs.field(default=Decimal(0), converter=Decimal)
    description: str | None = None


@attrs.frozen
class AppliedRule:
    """A rule that shaped a price: which branch ran and what it did.

    Attributes:
        name: The rule's name.
        branch: ``"then"`` or ``"otherwise"``.
        effects: Each action in plain words.
    """

    name: str
    branch: str
    effects: tuple[str, ...]


@attrs.frozen(kw_only=True)
class PricedLine:
    """A priced line and everything that explains it.

    Attributes:
        request: What was asked.
        lookup: The list price and the price book it came from.
        unit_price: The unit price after surcharges (before the discount).
        discount: The discount fraction, the sum of the discount rates of the rules applied.
        line: The quote or order line (:class:`~crmkit.entities.LineItem`).
        applied: The rules that made the price, in rule order.
        approval_required: Whether the discount needs a manager's approval.
        approval_reasons: Why approval is needed.
    """

    request: LineRequest
    lookup: PriceLookup
    unit_price: Money
    discount: Decimal
    line: LineItem
    applied: tuple[AppliedRule, ...]
    approval_required: bool
    approval_reasons: tuple[str, ...]

    @property
    def rule_names(self) -> tuple[str, ...]:
        """The names of the rules that made the price."""
        return tuple(rule.name for rule in self.applied)

    @property
    def total(self) -> Money:
        """The line total, rounded half to even to the currency's minor units."""
        return self.line.total


#: What a rule that ran contributes: its index, the rule, the branch, the actions, and their description.
Fired = tuple[int, "PricingRule", str, tuple["Action", ...], "AppliedRule"]
_Compiled = tuple[int, PricingRule, Callable[[Any], bool], Fired | None, Fired | None]


def _index_keys(condition: Condition) -> tuple[str, tuple[Any, ...]] | None:
    """The (field, values) a rule is restricted to, if its condition pins an indexed text field at the top."""
    parts = condition.conditions if isinstance(condition, AllOf) else (condition,)
    for part in parts:
        if isinstance(part, Predicate) and part.field in _INDEXED and part.op in {Op.EQ, Op.IN}:
            values = part.value if isinstance(part.value, tuple) else (part.value,)
            return part.field, values
    return None


@attrs.frozen
class PricingRules:
    """An ordered set of pricing and configuration rules, validated and compiled when built.

    Attributes:
        rules: The rules, applied in order; every rule whose condition is evaluated has
            its ``then`` or ``otherwise`` branch run.
        approval_threshold: A line whose discount is above this fraction needs approval.

    Raises:
        RuleError: For duplicate names (``rules[3].name``), a condition that does not fit
            :data:`PRICING_FIELDS` (``rules[3].when.all[0].field``), a threshold outside 0..1, a
            rule that requires and excludes one option (``rules[3].then[1]``), or two rules with
            the same condition where one requires an option the other excludes.
    """

    rules: tuple[PricingRule, ...] = attrs.field(converter=_rules)
    approval_threshold: Decimal = attrs.field(default=Decimal("0.2"), converter=_threshold)
    _compiled: tuple[_Compiled, ...] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _generic: tuple[_Compiled, ...] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _indexed: dict[tuple[str, Any], tuple[_Compiled, ...]] = attrs.field(
        init=False, repr=False, eq=False, hash=False
    )
    _keys: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _plans: dict[tuple[Any, ...], tuple[_Compiled, ...]] = attrs.field(
        init=False, repr=False, eq=False, hash=False
    )

    def __attrs_post_init__(self) -> None:  # noqa: C901 - one check after another, in path order
        if self.approval_threshold is None or self.approval_threshold > 1:
            msg = f"approval_threshold is a fraction from 0 to 1, got {self.approval_threshold}"
            raise RuleError(msg, "approval_threshold")
        compiled: list[_Compiled] = []
        seen: dict[str, int] = {}
        given: tuple[object, ...] = self.rules  # callers may pass anything
        for index, rule in enumerate(given):
            path = f"rules[{index}]"
            if not isinstance(rule, PricingRule):
                msg = f"expected a PricingRule, got {type(rule).__name__}"
                raise RuleError(msg, path)
            if not rule.name or not rule.name.strip():
                msg = "a rule needs a name"
                raise RuleError(msg, f"{path}.name")
            if rule.name in seen:
                msg = f"rule name {rule.name!r} is used by rules[{seen[rule.name]}] too"
                raise RuleError(msg, f"{path}.name")
            seen[rule.name] = index
            try:
                predicate = _SCHEMA.compile(rule.when)
            except RuleError as exc:
                raise exc.under(f"{path}.when") from None  # noqa: EM102 - a path, not a message
            for branch in ("then", "otherwise"):
                _check_branch(rule, branch, path)
            compiled.append(
                (index, rule, predicate, _fired(index, rule, "then"), _fired(index, rule, "otherwise"))
            )
        _check_pairs(self.rules)
        generic: list[_Compiled] = []
        indexed: dict[tuple[str, Any], list[_Compiled]] = {}
        for item in compiled:
            keys = _index_keys(item[1].when) if not item[1].otherwise else None
            if keys is None:
                generic.append(item)
            else:
                name, values = keys
                for value in values:
                    indexed.setdefault((name, value), []).append(item)
        object.__setattr__(self, "_compiled", tuple(compiled))
        object.__setattr__(self, "_generic", tuple(generic))
        object.__setattr__(self, "_indexed", {key: tuple(items) for key, items in indexed.items()})
        object.__setattr__(self, "_plans", {})
        object.__setattr__(
            self, "_keys", tuple(name for name in _INDEXED if any(k[0] == name for k in indexed))
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``{"approval_threshold": "0.2", "rules": [...]}``."""
        return {
            "approval_threshold": str(self.approval_threshold),
            "rules": [r.to_json() for r in self.rules],
        }

    @classmethod
    def from_json(cls, data: Any) -> PricingRules:
        """Build a rule set from its JSON form.

        Raises:
            RuleError: With the path of the bad node, such as ``rules[3].when.all[0].field``.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
            msg = "a rule set is an object with a list of 'rules'"
            raise RuleError(msg, "rules")
        rules = []
        for index, item in enumerate(data["rules"]):
            try:
                rules.append(PricingRule.from_json(item))
            except RuleError as exc:
                raise exc.under(f"rules[{index}]") from None  # noqa: EM102 - a path, not a message
        return cls(rules, approval_threshold=data.get("approval_threshold", "0.2"))

    def _plan(self, context: Mapping[str, Any]) -> tuple[_Compiled, ...]:
        """The rules worth evaluating for a line: those not pinned to other values, in rule order."""
        key = tuple(context.get(name) for name in self._keys)
        plan = self._plans.get(key)
        if plan is None:
            chosen = list(self._generic)
            for name, value in zip(self._keys, key, strict=True):
                chosen.extend(self._indexed.get((name, value), ()))
            plan = tuple(sorted(set(chosen), key=lambda item: item[0]))
            if len(self._plans) < 100_000:  # noqa: PLR2004 - a bound on the cache, not a rule
                self._plans[key] = plan
        return plan

    def evaluate(self, context: Mapping[str, Any]) -> list[Fired]:
        """Return, in rule order, each rule whose branch has actions.

        Each is ``(index, rule, branch, actions, applied)``: ``branch`` is ``"then"`` or
        ``"otherwise"``, ``applied`` the :class:`AppliedRule` describing it.

        Args:
            context: A record with the :data:`PRICING_FIELDS` of a line.
        """
        fired = []
        for _, _, predicate, then, otherwise in self._plan(context):
            branch = then if predicate(context) else otherwise
            if branch is not None:
                fired.append(branch)
        return fired


def _fired(index: int, rule: PricingRule, branch: str) -> Fired | None:
    actions: tuple[Action, ...] = getattr(rule, branch)
    if not actions:
        return None
    return (
        index,
        rule,
        branch,
        actions,
        AppliedRule(rule.name, branch, tuple(a.describe() for a in actions)),
    )


def _check_branch(rule: PricingRule, branch: str, path: str) -> None:
    actions: tuple[Action, ...] = getattr(rule, branch)
    required = {a.option: i for i, a in enumerate(actions) if a.effect is Effect.REQUIRE_OPTION}
    for position, action in enumerate(actions):
        if action.effect is Effect.EXCLUDE_OPTION and action.option in required:
            msg = f"rule {rule.name!r} both requires and excludes option {action.option!r}"
            raise RuleError(msg, f"{path}.{branch}[{position}]")


def _check_pairs(rules: Sequence[PricingRule]) -> None:
    """Two rules with the same condition must not require and exclude the same option."""
    by_condition: dict[Condition, list[int]] = {}
    for index, rule in enumerate(rules):
        by_condition.setdefault(rule.when, []).append(index)
    for indexes in by_condition.values():
        for first in indexes:
            for second in indexes:
                if first == second:
                    continue
                required = {a.option for a in rules[first].then if a.effect is Effect.REQUIRE_OPTION}
                for position, action in enumerate(rules[second].then):
                    if action.effect is Effect.EXCLUDE_OPTION and action.option in required:
                        msg = (
                            f"rule {rules[second].name!r} excludes option {action.option!r}, which rule "
                            f"{rules[first].name!r} requires under the same condition"
                        )
                        raise RuleError(msg, f"rules[{second}].then[{position}]")


def _context(request: LineRequest, lookup: PriceLookup, catalog: Catalog) -> dict[str, Any]:
    product = catalog.product(request.product_id)
    return {
        "product_id": product.id,
        "sku": product.sku,
        "family": product.family,
        "tags": product.tags,
        "options": request.options,
        "quantity": request.quantity,
        "list_price": lookup.unit_price.amount,
        "currency": lookup.unit_price.currency,
        "customer_tier": request.customer_tier,
        "segment": request.segment,
        "channel": request.channel,
        "campaign_id": request.campaign_id,
    }


def price_line(  # noqa: C901, PLR0912, PLR0915 - one pass over the fired rules, effect by effect
    request: LineRequest,
    *,
    catalog: Catalog,
    rules: PricingRules,
    currency: str,
    on: date,
    price_book_id: str | None = None,
    line: int | None = None,
) -> PricedLine:
    """Price one line: the list price from the catalog, then every rule that applies.

    The unit price is the list price plus the surcharges (rates of the list price, then
    amounts per unit); the discount is the sum of the discount rates. The line total is
    quantity x unit price x (1 - discount), rounded half to even to the currency's minor
    units (see :attr:`crmkit.entities.LineItem.total`).

    Args:
        request: The product, quantity, options and customer facts.
        catalog: Products and price books.
        rules: The pricing and configuration rules.
        currency: The currency of the quote.
        on: The day the price is for (price book validity).
        price_book_id: Price from this book only.
        line: The line's position, named in errors (``lines[3].quantity``).

    Raises:
        ValidationError: For a negative quantity (``lines[3].quantity``) or a tax rate outside 0..1.
        CurrencyMismatch: When no price exists in ``currency`` or the book is in another currency.
        RuleError: When a rule requires an option that is not chosen, excludes one that is, two
            rules require and exclude the same option, or the discounts add up to more than 100 %;
            the message names the rules and the line, ``path`` the first rule (``rules[4].then[0]``).
    """
    where = "" if line is None else f"lines[{line}]."
    if request.quantity < 0:
        message = f"must not be negative, got {request.quantity}"
        raise ValidationError.single(where + "quantity", message)
    if not 0 <= request.tax_rate <= 1:
        message = f"must be between 0 and 1, got {request.tax_rate}"
        raise ValidationError.single(where + "tax_rate", message)
    try:
        lookup = catalog.lookup(
            request.product_id,
            quantity=request.quantity,
            currency=currency,
            on=on,
            segment=request.segment,
            channel=request.channel,
            price_book_id=price_book_id,
        )
    except ValidationError as exc:
        raise exc.under(line) if line is not None else exc from None
    context = _context(request, lookup, catalog)
    label = f"line {line}" if line is not None else f"the line for {request.product_id!r}"
    list_price = lookup.unit_price.amount
    discount = Decimal(0)
    surcharge_rate = Decimal(0)
    surcharge_amount = Decimal(0)
    required: dict[str, tuple[str, str]] = {}
    excluded: dict[str, tuple[str, str]] = {}
    approval: list[str] = []
    applied: list[AppliedRule] = []
    discounted_by: list[str] = []
    for index, rule, branch, actions, described in rules.evaluate(context):
        for position, action in enumerate(actions):
            path = f"rules[{index}].{branch}[{position}]"
            effect = action.effect
            if effect is Effect.DISCOUNT:
                discount += action.rate or 0
                discounted_by.append(rule.name)
            elif effect is Effect.SURCHARGE:
                surcharge_rate += action.rate or 0
                surcharge_amount += action.amount or 0
            elif effect is Effect.REQUIRE_OPTION:
                required.setdefault(action.option or "", (rule.name, path))
            elif effect is Effect.EXCLUDE_OPTION:
                excluded.setdefault(action.option or "", (rule.name, path))
            else:
                approval.append(f"rule {rule.name!r} requires approval")
        applied.append(described)
    for option, (name, path) in required.items():
        if option in excluded:
            other, _ = excluded[option]
            msg = f"{label}: rule {name!r} requires option {option!r}, which rule {other!r} excludes"
            raise RuleError(msg, path)
        if option not in request.options:
            msg = f"{label}: rule {name!r} requires option {option!r}, which is not chosen"
            raise RuleError(msg, path)
    for option, (name, path) in excluded.items():
        if option in request.options:
            msg = f"{label}: rule {name!r} excludes option {option!r}, which is chosen"
            raise RuleError(msg, path)
    if discount > _ONE:
        first = next(i for i, r in enumerate(rules.rules) if r.name == discounted_by[0])
        names = ", ".join(map(repr, discounted_by))
        msg = f"{label}: the discounts of rules {names} add up to {_percent(discount)}"
        raise RuleError(msg, f"rules[{first}]")
    if discount > rules.approval_threshold:
        threshold = _percent(rules.approval_threshold)
        approval.append(f"discount {_percent(discount)} is above the {threshold} approval threshold")
    unit = Money(list_price * (1 + surcharge_rate) + surcharge_amount, lookup.unit_price.currency)
    item = LineItem(
        product_id=request.product_id,
        description=request.description or catalog.product(request.product_id).name,
        quantity=request.quantity,
        unit_price=unit,
        discount=discount,
        tax_rate=request.tax_rate,
    )
    return PricedLine(
        request=request,
        lookup=lookup,
        unit_price=unit,
        discount=discount,
        line=item,
        applied=tuple(applied),
        approval_required=bool(approval),
        approval_reasons=tuple(approval),
    )


def price_lines(
    requests: Iterable[LineRequest],
    *,
    catalog: Catalog,
    rules: PricingRules,
    currency: str,
    on: date,
    price_book_id: str | None = None,
) -> list[PricedLine]:
    """Price many lines with :func:`price_line`; errors name the line (``lines[3].quantity``)."""
    return [
        price_line(
            request,
            catalog=catalog,
            rules=rules,
            currency=currency,
            on=on,
            price_book_id=price_book_id,
            line=index,
        )
        for index, request in enumerate(requests)
    ]
