"""Behavioural affinity: each customer's share of orders or spend per product category or tag."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

import attrs

from crmkit.conditions import parse_duration
from crmkit.errors import RuleError, ValidationError
from crmkit.segmentation._rows import LineRow, check_as_of

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["AffinitySegment", "Measure", "category_shares"]

Measure = Literal["orders", "spend"]
_MEASURES = ("orders", "spend")


def _category_sets(categories: Mapping[str, str | Iterable[str]]) -> dict[str, frozenset[str]]:
    return {
        product: frozenset((found,) if isinstance(found, str) else found)
        for product, found in categories.items()
    }


def category_shares(
    lines: Iterable[LineRow],
    categories: Mapping[str, str | Iterable[str]],
    *,
    as_of: datetime,
    window: str = "P12M",
    measure: Measure = "orders",
) -> dict[str, dict[str, float]]:
    """Each customer's share of orders (or spend) per category over the window ending at ``as_of``.

    Only lines with ``as_of - window < ordered_at <= as_of`` count. With ``measure="orders"``:
    share(c) = orders with at least one line in category ``c`` / orders. With ``measure="spend"``:
    share(c) = amount of the lines in ``c`` / amount of all lines (customers who spent nothing are left
    out). A product may be in several categories (tags), so shares may add up to more than 1; a product
    in none still counts in the denominator.

    Args:
        lines: Order lines (:class:`LineRow`, see :func:`line_rows`).
        categories: Product id -> its category, or its categories/tags.
        as_of: The end of the window (timezone-aware).
        window: An ISO 8601 duration (``"P12M"``: the last twelve months).
        measure: ``"orders"`` or ``"spend"``.

    Returns:
        Customer id -> category -> share (categories with a zero share left out).

    Raises:
        ValidationError: For a naive ``as_of``, an unknown measure or a bad window.
    """
    as_of = check_as_of(as_of)
    if measure not in _MEASURES:
        raise ValidationError.single("measure", f"must be 'orders' or 'spend', got {measure!r}")
    try:
        start = as_of - parse_duration(window)
    except (RuleError, TypeError) as exc:
        raise ValidationError.single("window", f"not an ISO 8601 duration: {window!r}") from exc
    of = _category_sets(categories)
    try:
        return _shares(lines, of, start, as_of, measure)
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise ValidationError.single("lines", f"expected LineRow rows with aware times: {exc}") from None


def _shares(
    lines: Iterable[LineRow], of: dict[str, frozenset[str]], start: datetime, as_of: datetime, measure: str
) -> dict[str, dict[str, float]]:
    nothing: frozenset[str] = frozenset()
    if measure == "orders":
        orders: dict[str, set[str]] = defaultdict(set)
        hits: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for customer, at, order_id, product, _amount in lines:
            if start < at <= as_of:
                orders[customer].add(order_id)
                for category in of.get(product, nothing):
                    hits[customer][category].add(order_id)
        return {
            customer: {c: len(ids) / len(placed) for c, ids in sorted(hits[customer].items())}
            for customer, placed in sorted(orders.items())
        }
    spent: dict[str, Decimal] = defaultdict(Decimal)
    by_category: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for customer, at, _order_id, product, amount in lines:
        if start < at <= as_of:
            spent[customer] += amount
            for category in of.get(product, nothing):
                by_category[customer][category] += amount
    return {
        customer: {c: float(v / total) for c, v in sorted(by_category[customer].items()) if v}
        for customer, total in sorted(spent.items())
        if total
    }


def _label(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:  # noqa: PLR2004 - a label
        msg = f"must be a non-empty text of at most 64 characters, got {value!r}"
        raise RuleError(msg, where)
    return value.strip()


def _name(value: Any) -> str:
    return _label(value, "name")


def _category(value: Any) -> str:
    return _label(value, "category")


def _share(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        msg = f"must be a fraction above 0 and at most 1, got {value!r}"
        raise RuleError(msg, "min_share")
    return float(value)


def _measure(value: Any) -> str:
    if value not in _MEASURES:
        msg = f"must be 'orders' or 'spend', got {value!r}"
        raise RuleError(msg, "measure")
    return str(value)


def _window(value: Any) -> str:
    try:
        parse_duration(value)
    except (RuleError, TypeError):
        msg = f"must be an ISO 8601 duration such as 'P12M', got {value!r}"
        raise RuleError(msg, "window") from None
    return str(value)


def _min_orders(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"must be a whole number of at least 1, got {value!r}"
        raise RuleError(msg, "min_orders")
    return value


@attrs.frozen
class AffinitySegment:
    """Customers whose share of orders (or spend) in a category reaches a threshold over a window.

    "Mostly vegetarian": ``AffinitySegment("mostly_vegetarian", "vegetarian", min_share=0.8)``, at least
    80% of their orders in the last 12 months had a vegetarian product.

    Attributes:
        name: The segment's name.
        category: The category or tag.
        min_share: The share a member reaches at least (0 < share <= 1).
        measure: ``"orders"`` or ``"spend"``.
        window: An ISO 8601 duration ending at ``as_of``.
        min_orders: Members placed at least this many orders in the window (one order is thin evidence).
    """

    name: str = attrs.field(converter=_name)
    category: str = attrs.field(converter=_category)
    min_share: float = attrs.field(default=0.8, converter=_share)
    measure: str = attrs.field(default="orders", converter=_measure)
    window: str = attrs.field(default="P12M", converter=_window)
    min_orders: int = attrs.field(default=1, converter=_min_orders)

    def members(
        self, lines: Iterable[LineRow], categories: Mapping[str, str | Iterable[str]], *, as_of: datetime
    ) -> dict[str, float]:
        """The members and their share, as of a date (see :func:`category_shares`)."""
        listed = list(lines)
        start = as_of - parse_duration(self.window)
        placed: dict[str, set[str]] = defaultdict(set)
        for line in listed:
            if start < line.ordered_at <= as_of:
                placed[line.customer_id].add(line.order_id)
        shares = category_shares(listed, categories, as_of=as_of, window=self.window, measure=self.measure)  # type: ignore[arg-type]
        return {
            customer: share
            for customer, by_category in shares.items()
            if (share := by_category.get(self.category, 0.0)) >= self.min_share
            and len(placed[customer]) >= self.min_orders
        }

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> AffinitySegment:
        """Read a segment back (a :class:`~crmkit.errors.RuleError` names a bad part)."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                msg = f"not JSON: {exc.msg}"
                raise RuleError(msg) from None
        if not isinstance(data, Mapping):
            msg = f"must be an object, got {data!r}"
            raise RuleError(msg)
        allowed = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            msg = f"unknown keys {unknown}; allowed: {sorted(allowed)}"
            raise RuleError(msg)
        for key in ("name", "category"):
            if key not in data:
                raise RuleError("missing", key)
        return cls(**data)
