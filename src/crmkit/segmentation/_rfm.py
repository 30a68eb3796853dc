"""RFM: recency, frequency and monetary value per customer, scored 1-5 like SQL's ``NTILE(5)``."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import partial
from itertools import chain, repeat
from operator import attrgetter, itemgetter, sub
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from crmkit.errors import RuleError
from crmkit.segmentation._rows import (
    bad_row,
    check_as_of,
    collector_paused,
    per_group,
    sorted_groups,
    time_ordered,
)

if TYPE_CHECKING:
    from datetime import datetime

    from crmkit.entities import Order
    from crmkit.segmentation._rows import OrderRow

__all__ = [
    "DEFAULT_SEGMENT_MAP",
    "RfmScore",
    "SegmentMap",
    "SegmentRule",
    "ntile",
    "rfm_scores",
    "rfm_segments",
]

TILES = 5
_SCORES = range(1, TILES + 1)


class RfmScore(NamedTuple):
    """One customer's RFM summary as of a date, and its 1-5 scores.

    Attributes:
        customer_id: The customer.
        recency: Whole days from the last order to ``as_of``.
        frequency: Number of orders up to ``as_of``.
        monetary: Sum of their amounts.
        tenure: Whole days from the first order to ``as_of``.
        r: Recency score, 5 for the most recent customers.
        f: Frequency score, 5 for the most orders.
        m: Monetary score, 5 for the most spend.
    """

    customer_id: str
    recency: int
    frequency: int
    monetary: Decimal
    tenure: int
    r: int
    f: int
    m: int

    @property
    def cell(self) -> str:
        """The three scores as one label, such as ``"545"``."""
        return f"{self.r}{self.f}{self.m}"


#: Builds an :class:`RfmScore` from one tuple of its fields without the keyword machinery.
new_score = partial(tuple.__new__, RfmScore)
_WHEN, _VALUE = itemgetter(1), itemgetter(2)


def ntile(order: Sequence[int], tiles: int = TILES) -> list[int]:
    """Scores 1..``tiles`` for positions listed in rank order, exactly as SQL's ``NTILE``.

    Args:
        order: Indices ``0..n-1`` listed from the lowest to the highest rank.
        tiles: How many groups.

    Returns:
        ``scores[i]`` is the group (1-based) of index ``i``. Groups take consecutive ranks; with ``n``
        items each has ``n // tiles`` and the first ``n % tiles`` groups one more.
    """
    n = len(order)
    base, extra = divmod(n, tiles)
    by_rank: list[int] = []
    for tile in range(1, tiles + 1):
        by_rank += [tile] * (base + (1 if tile <= extra else 0))
    # Scatter the tiles back to the indices without a Python loop per item.
    scores = [0] * n
    deque(map(scores.__setitem__, order, by_rank), maxlen=0)
    if 0 in scores:  # an index listed twice left another unscored
        msg = "order must list every index 0..n-1 once"
        raise ValueError(msg)
    return scores


def rfm_scores(orders: Iterable[OrderRow] | Iterable[Order], as_of: datetime) -> list[RfmScore]:
    """Summarise and score every customer with an order at or before ``as_of``.

    Formulas (``DESIGN.md``): recency = whole days from the last order to ``as_of``; frequency = number of
    orders; monetary = sum of amounts; tenure = whole days from the first order to ``as_of``. Each of R, F
    and M is ``NTILE(5)`` over the customers ordered ascending by the value (recency by descending days,
    so the most recent score 5), ties broken by ascending customer id.

    Args:
        orders: :class:`OrderRow` tuples (read as they are, fast) or :class:`~crmkit.entities.Order`
            entities (converted by :func:`order_rows`). Orders after ``as_of`` are left out.
        as_of: The date the summary is computed for (timezone-aware).

    Returns:
        One :class:`RfmScore` per customer, sorted by customer id.

    Raises:
        ValidationError: When ``as_of`` is naive, or a row is not a sound order (the path names it).
    """
    as_of = check_as_of(as_of)
    with collector_paused():
        return _rfm_scores(orders, as_of)


def _rfm_scores(orders: Iterable[OrderRow] | Iterable[Order], as_of: datetime) -> list[RfmScore]:
    rows, ids, groups = sorted_groups(orders)
    # Per customer: C-level maps of min/max/len/sum over the groups; no Python code per order or customer.
    try:
        flat: list[datetime] = list(map(_WHEN, chain.from_iterable(groups)))
        bounds = time_ordered(flat, groups)
        if bounds is not None:  # each customer's orders in time order: first and last read directly
            firsts = list(map(flat.__getitem__, bounds[0]))
            lasts = list(map(flat.__getitem__, map(sub, bounds[1], repeat(1))))
        if bounds is None or (lasts and max(lasts) > as_of):
            times = per_group(groups, flat)
            lasts = list(map(max, times))
            if lasts and max(lasts) > as_of:
                ids, groups, times, lasts = _until(as_of, ids, groups, times)
            firsts = list(map(min, times))
        counts = list(map(len, groups))
        totals = list(map(sum, map(map, repeat(_VALUE), groups)))
    except (TypeError, IndexError, InvalidOperation):
        raise bad_row(rows, None) from None
    return _score(ids, firsts=firsts, lasts=lasts, counts=counts, totals=totals, as_of=as_of)


def _until(
    as_of: datetime, ids: list[str], groups: list[list[Any]], times: list[list[datetime]]
) -> tuple[list[str], list[list[Any]], list[list[datetime]], list[datetime]]:
    """The customers and rows with the orders after ``as_of`` left out (customers left empty dropped)."""
    kept_ids, kept_groups, kept_times = [], [], []
    for customer, rows, moments in zip(ids, groups, times, strict=True):
        if max(moments) > as_of:
            rows = [row for row in rows if row[1] <= as_of]  # noqa: PLW2901 - the kept part
            if not rows:
                continue
            moments = list(map(_WHEN, rows))  # noqa: PLW2901 - likewise
        kept_ids.append(customer)
        kept_groups.append(rows)
        kept_times.append(moments)
    return kept_ids, kept_groups, kept_times, list(map(max, kept_times))


_DAYS = attrgetter("days")


def _days_before(as_of: datetime, moments: list[datetime]) -> list[int]:
    """Whole days from each moment to ``as_of`` (``map`` keeps the loop in C)."""
    return list(map(_DAYS, map(as_of.__sub__, moments)))


def _score(
    ids: list[str],
    *,
    firsts: list[datetime],
    lasts: list[datetime],
    counts: list[int],
    totals: list[Any],
    as_of: datetime,
) -> list[RfmScore]:
    recency = _days_before(as_of, lasts)
    tenure = _days_before(as_of, firsts)
    monetary = totals if set(map(type, totals)) <= {Decimal} else [Decimal(t) for t in totals]
    positions = range(len(ids))
    # Python's sort is stable (also with reverse=True), and ids are sorted: ties stay in id order.
    r = ntile(sorted(positions, key=recency.__getitem__, reverse=True))
    f = ntile(sorted(positions, key=counts.__getitem__))
    m = ntile(sorted(positions, key=monetary.__getitem__))
    return list(map(new_score, zip(ids, recency, counts, monetary, tenure, r, f, m, strict=True)))


def _score_range(value: Any, where: str) -> tuple[int, int]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2  # noqa: PLR2004 - a (low, high) pair
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        msg = f"must be a [low, high] pair of scores, got {value!r}"
        raise RuleError(msg, where)
    low, high = value
    if low not in _SCORES or high not in _SCORES or low > high:
        msg = f"must satisfy 1 <= low <= high <= 5, got {list(value)!r}"
        raise RuleError(msg, where)
    return (low, high)


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:  # noqa: PLR2004 - a label
        msg = f"must be a non-empty text of at most 64 characters, got {value!r}"
        raise RuleError(msg, where)
    return value.strip()


def _rule_name(value: Any) -> str:
    return _name(value, "name")


def _default_name(value: Any) -> str:
    return _name(value, "default")


def _recency(value: Any) -> tuple[int, int]:
    return _score_range(value, "recency")


def _frequency(value: Any) -> tuple[int, int]:
    return _score_range(value, "frequency")


def _monetary(value: Any) -> tuple[int, int]:
    return _score_range(value, "monetary")


@attrs.frozen
class SegmentRule:
    """A named box of RFM scores: a customer is in it when every score is within its range.

    Attributes:
        name: The segment's name, such as ``"champions"``.
        recency: ``(low, high)`` recency scores, both included.
        frequency: ``(low, high)`` frequency scores.
        monetary: ``(low, high)`` monetary scores.
    """

    name: str = attrs.field(converter=_rule_name)
    recency: tuple[int, int] = attrs.field(default=(1, 5), converter=_recency)
    frequency: tuple[int, int] = attrs.field(default=(1, 5), converter=_frequency)
    monetary: tuple[int, int] = attrs.field(default=(1, 5), converter=_monetary)

    def holds(self, r: int, f: int, m: int) -> bool:
        """True when the three scores fall in this box."""
        return (
            self.recency[0] <= r <= self.recency[1]
            and self.frequency[0] <= f <= self.frequency[1]
            and self.monetary[0] <= m <= self.monetary[1]
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``{"name": ..., "recency": [lo, hi], "frequency": ..., "monetary": ...}``."""
        return {
            "name": self.name,
            "recency": list(self.recency),
            "frequency": list(self.frequency),
            "monetary": list(self.monetary),
        }


_RULE_KEYS = frozenset({"name", "recency", "frequency", "monetary"})


def _rule_from_json(data: Any, where: str) -> SegmentRule:
    if not isinstance(data, Mapping):
        msg = f"must be an object, got {data!r}"
        raise RuleError(msg, where)
    unknown = sorted(set(data) - _RULE_KEYS)
    if unknown:
        msg = f"unknown keys {unknown}; allowed: {sorted(_RULE_KEYS)}"
        raise RuleError(msg, where)
    if "name" not in data:
        msg = "a segment rule needs a name"
        raise RuleError(msg, where)
    try:
        return SegmentRule(**data)
    except RuleError as exc:
        raise exc.under(where) from None


def _rules(value: Any) -> tuple[SegmentRule, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"must be a list of segment rules, got {value!r}"
        raise RuleError(msg, "rules")
    rules = tuple(
        rule if isinstance(rule, SegmentRule) else _rule_from_json(rule, f"rules[{index}]")
        for index, rule in enumerate(value)
    )
    if not rules:
        msg = "needs at least one rule"
        raise RuleError(msg, "rules")
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.name in seen:
            msg = f"segment {rule.name!r} is named twice"
            raise RuleError(msg, f"rules[{index}].name")
        seen.add(rule.name)
    return rules


@attrs.frozen
class SegmentMap:
    """Named RFM segments: an ordered list of score boxes, the first that holds names the customer.

    Built from data and validated when built (a bad range is a :class:`~crmkit.errors.RuleError` with a
    path such as ``rules[3].recency``); :meth:`to_json` / :meth:`from_json` round-trip it.

    Attributes:
        rules: The boxes, in priority order.
        default: The name of customers no rule holds for.
    """

    rules: tuple[SegmentRule, ...] = attrs.field(converter=_rules)
    default: str = attrs.field(default="other", converter=_default_name)
    _table: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        # All 125 score cells resolved once, so naming a customer is one tuple index.
        table = tuple(
            next((rule.name for rule in self.rules if rule.holds(r, f, m)), self.default)
            for r in _SCORES
            for f in _SCORES
            for m in _SCORES
        )
        object.__setattr__(self, "_table", table)

    def segment_of(self, r: int, f: int, m: int) -> str:
        """The segment of a customer with these scores."""
        return self._table[(r - 1) * 25 + (f - 1) * 5 + (m - 1)]

    def rule_of(self, r: int, f: int, m: int) -> int | None:
        """The index of the rule that names these scores (``None`` for the default): the explanation."""
        return next((index for index, rule in enumerate(self.rules) if rule.holds(r, f, m)), None)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``{"rules": [...], "default": "other"}``."""
        return {"rules": [rule.to_json() for rule in self.rules], "default": self.default}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> SegmentMap:
        """Build a map from its JSON form (a dict or a JSON text).

        Raises:
            RuleError: With the path of the bad part.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                msg = f"not JSON: {exc.msg}"
                raise RuleError(msg) from None
        if not isinstance(data, Mapping):
            msg = f"must be an object, got {data!r}"
            raise RuleError(msg)
        unknown = sorted(set(data) - {"rules", "default"})
        if unknown:
            msg = f"unknown keys {unknown}; allowed: ['default', 'rules']"
            raise RuleError(msg)
        if "rules" not in data:
            raise RuleError("missing", "rules")
        return cls(data["rules"], data.get("default", "other"))


#: A common recency x frequency grid (monetary left open), first match wins; every cell is named.
DEFAULT_SEGMENT_MAP = SegmentMap(
    (
        SegmentRule("champions", recency=(5, 5), frequency=(4, 5)),
        SegmentRule("loyal", recency=(3, 5), frequency=(4, 5)),
        SegmentRule("new", recency=(5, 5), frequency=(1, 1)),
        SegmentRule("promising", recency=(4, 4), frequency=(1, 1)),
        SegmentRule("potential_loyalist", recency=(4, 5), frequency=(2, 3)),
        SegmentRule("need_attention", recency=(3, 3), frequency=(3, 3)),
        SegmentRule("about_to_sleep", recency=(3, 3), frequency=(1, 2)),
        SegmentRule("cannot_lose", recency=(1, 2), frequency=(5, 5)),
        SegmentRule("at_risk", recency=(1, 2), frequency=(3, 4)),
        SegmentRule("lost", recency=(1, 1), frequency=(1, 1)),
        SegmentRule("hibernating", recency=(1, 2), frequency=(1, 2)),
    ),
    default="other",
)


def rfm_segments(scores: Iterable[RfmScore], segment_map: SegmentMap = DEFAULT_SEGMENT_MAP) -> dict[str, str]:
    """Name each scored customer's segment.

    Args:
        scores: From :func:`rfm_scores`.
        segment_map: The named score boxes; :data:`DEFAULT_SEGMENT_MAP` by default.

    Returns:
        Customer id -> segment name.
    """
    of = segment_map.segment_of
    return {score.customer_id: of(score.r, score.f, score.m) for score in scores}
