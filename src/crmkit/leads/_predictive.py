"""Predictive scoring: a naive-Bayes model over field values, learned from won and lost leads (private)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from crmkit._json import read_object
from crmkit.conditions import Schema
from crmkit.entities import Lead
from crmkit.errors import RuleError, ValidationError

__all__ = ["Factor", "Prediction", "PredictiveModel"]

_PAIR = 2  # counts are (won, lost)


def _value_key(value: Any) -> str:
    """The text a field value is counted under (enums by their value, numbers as written)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    raw = getattr(value, "value", value)
    return str(raw)


def _bucket(value: Any, bounds: Sequence[float]) -> str:
    """The range label a number falls in: ``"<10"``, ``"10-50"``, ``">=500"``."""
    index = bisect.bisect_right(bounds, value)
    if index == 0:
        return f"<{bounds[0]:g}"
    if index == len(bounds):
        return f">={bounds[-1]:g}"
    return f"{bounds[index - 1]:g}-{bounds[index]:g}"


@attrs.frozen
class Factor:
    """One piece of evidence in a prediction.

    Attributes:
        field: The field, or ``"(prior)"`` for the base rate.
        value: The value seen (after bucketing), or ``None`` for the prior.
        won: Won leads in the history with this value.
        lost: Lost leads in the history with this value.
        p_won: ``P(value | won)`` with smoothing (the prior's ``P(won)``).
        p_lost: ``P(value | lost)`` with smoothing (the prior's ``P(lost)``).
        log_odds: ``ln(p_won / p_lost)``: how far this factor moves the odds; the factors add up to the
            prediction's log-odds.
    """

    field: str
    value: str | None
    won: int
    lost: int
    p_won: float
    p_lost: float
    log_odds: float


@attrs.frozen
class Prediction:
    """The chance a lead is won, and the factors behind it.

    Attributes:
        probability: ``1 / (1 + exp(-log_odds))``, from 0 to 1.
        log_odds: The sum of the factors' log-odds.
        factors: The prior first, then one factor per field value seen, in field order.
    """

    probability: float
    log_odds: float
    factors: tuple[Factor, ...]

    def explain(self) -> str:
        """The prediction in words, one line per factor."""
        lines = [f"probability {self.probability:.1%} (log-odds {self.log_odds:+.3f})"]
        for factor in self.factors:
            what = factor.field if factor.value is None else f"{factor.field} = {factor.value}"
            lines.append(f"  {factor.log_odds:+.3f} {what} (won {factor.won}, lost {factor.lost})")
        return "\n".join(lines)


def _counts(value: Mapping[str, Mapping[str, Sequence[int]]]) -> Mapping[str, Mapping[str, tuple[int, int]]]:
    return {
        name: {key: (int(pair[0]), int(pair[1])) for key, pair in table.items()}
        for name, table in value.items()
    }


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _buckets(value: Mapping[str, Sequence[float]]) -> Mapping[str, tuple[float, ...]]:
    return {name: tuple(bounds) for name, bounds in value.items()}


@attrs.frozen(kw_only=True)
class PredictiveModel:
    """A naive-Bayes model of winning a lead, learned from won and lost history.

    For a lead with field values ``v1..vn`` (missing values are skipped: they say nothing)::

        P(won | v) = P(won) x prod P(vi | won) / (P(won) x prod P(vi | won) + P(lost) x prod P(vi | lost))

    with Laplace smoothing: ``P(v | won) = (won with v + alpha) / (won + alpha x K)``, where ``K`` is the
    number of distinct values of the field seen (plus one for a value never seen), and
    ``P(won) = (won + alpha) / (won + lost + 2 alpha)``. A set field (tags) counts each member as a value.
    Numbers can be grouped into ranges with ``buckets``.

    Build one with :meth:`train`; it is plain data and round-trips through JSON.

    Attributes:
        fields: The fields learned from.
        won: Won leads in the history.
        lost: Lost leads in the history.
        counts: Field -> value -> ``(won, lost)`` counts.
        alpha: The smoothing constant (1 is Laplace smoothing).
        buckets: Field -> ascending bounds grouping a number into ranges.
    """

    fields: tuple[str, ...] = attrs.field(converter=_names)
    won: int
    lost: int
    counts: Mapping[str, Mapping[str, tuple[int, int]]] = attrs.field(converter=_counts)
    alpha: float = 1.0
    buckets: Mapping[str, tuple[float, ...]] = attrs.field(factory=dict, converter=_buckets)

    def __attrs_post_init__(self) -> None:
        if not self.alpha > 0:
            msg = f"alpha must be above 0, got {self.alpha!r}"
            raise RuleError(msg, "alpha")
        if self.won < 0 or self.lost < 0:
            msg = "won and lost counts must not be negative"
            raise RuleError(msg, "won")
        for name, bounds in self.buckets.items():
            if not bounds or list(bounds) != sorted(set(bounds)):
                msg = "bucket bounds are one or more strictly ascending numbers"
                raise RuleError(msg, f"buckets.{name}")
        for name in self.counts:
            if name not in self.fields:
                msg = f"counts for a field the model does not use: {name!r}"
                raise RuleError(msg, f"counts.{name}")

    @classmethod
    def train(
        cls,
        history: Iterable[tuple[Any, bool]],
        fields: Sequence[str],
        *,
        schema: Schema | None = None,
        alpha: float = 1.0,
        buckets: Mapping[str, Sequence[float]] | None = None,
    ) -> PredictiveModel:
        """Learn the frequency tables from ``(lead, won)`` pairs.

        Args:
            history: Closed leads, each with ``True`` when it was won and ``False`` when lost.
            fields: The fields to learn from (declared in ``schema``).
            schema: How fields are read; every field of ``Lead`` by default.
            alpha: The smoothing constant.
            buckets: Field -> ascending bounds for numeric fields.

        Raises:
            RuleError: A field the schema does not declare.
        """
        schema = schema or Schema.for_entity(Lead)
        for index, name in enumerate(fields):
            if name not in schema.fields:
                msg = f"unknown field {name!r}"
                raise RuleError(msg, f"fields[{index}]")
        bounds = _buckets(buckets or {})
        tables: dict[str, dict[str, list[int]]] = {name: {} for name in fields}
        won = lost = 0
        for record, outcome in history:
            column = 0 if outcome else 1
            if outcome:
                won += 1
            else:
                lost += 1
            for name in fields:
                for key in _keys(schema.read(name, record), bounds.get(name)):
                    tables[name].setdefault(key, [0, 0])[column] += 1
        counts = {
            name: {key: (pair[0], pair[1]) for key, pair in table.items()} for name, table in tables.items()
        }
        return cls(fields=tuple(fields), won=won, lost=lost, counts=counts, alpha=alpha, buckets=bounds)

    def predict(self, record: Any, *, schema: Schema | None = None) -> Prediction:
        """The probability that ``record`` is won, with one factor per piece of evidence.

        Args:
            record: The lead (or a record ``schema`` reads).
            schema: How fields are read; every field of ``Lead`` by default.
        """
        schema = schema or _lead_schema()
        alpha = self.alpha
        p_won = (self.won + alpha) / (self.won + self.lost + 2 * alpha)
        factors = [
            Factor("(prior)", None, self.won, self.lost, p_won, 1 - p_won, math.log(p_won / (1 - p_won)))
        ]
        for name in self.fields:
            table = self.counts.get(name, {})
            distinct = len(table) + 1
            for key in _keys(schema.read(name, record), self.buckets.get(name)):
                won, lost = table.get(key, (0, 0))
                given_won = (won + alpha) / (self.won + alpha * distinct)
                given_lost = (lost + alpha) / (self.lost + alpha * distinct)
                factors.append(
                    Factor(name, key, won, lost, given_won, given_lost, math.log(given_won / given_lost))
                )
        log_odds = math.fsum(factor.log_odds for factor in factors)
        return Prediction(_sigmoid(log_odds), log_odds, tuple(factors))

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "fields": list(self.fields),
            "won": self.won,
            "lost": self.lost,
            "alpha": self.alpha,
            "counts": {
                name: {key: list(pair) for key, pair in table.items()} for name, table in self.counts.items()
            },
            "buckets": {name: list(bounds) for name, bounds in self.buckets.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> PredictiveModel:
        """Build a model from its JSON form.

        Raises:
            RuleError: A missing or unexpected key, or counts that are not pairs of whole numbers.
        """
        fields = read_object(
            data, {"fields", "won", "lost", "alpha", "counts", "buckets"}, ("fields", "won", "lost", "counts")
        )
        for name, table in dict(fields["counts"]).items():
            for key, pair in dict(table).items():
                if not (
                    isinstance(pair, list | tuple)
                    and len(pair) == _PAIR
                    and all(type(n) is int and n >= 0 for n in pair)
                ):
                    msg = f"expected [won, lost] whole numbers, got {pair!r}"
                    raise RuleError(msg, f"counts.{name}.{key}")
        for name in ("won", "lost"):
            if type(fields[name]) is not int:
                msg = f"expected a whole number, got {fields[name]!r}"
                raise RuleError(msg, name)
        return cls(**fields)


_LEAD_SCHEMA: list[Schema] = []


def _lead_schema() -> Schema:
    if not _LEAD_SCHEMA:
        _LEAD_SCHEMA.append(Schema.for_entity(Lead))
    return _LEAD_SCHEMA[0]


def _keys(value: Any, bounds: tuple[float, ...] | None) -> list[str]:
    """The value keys a field value counts under: none when missing, one per member of a set."""
    if value is None or value == "":
        return []
    if isinstance(value, frozenset | set):
        return sorted(_value_key(member) for member in value)
    if bounds is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError.single("", f"a bucketed field holds numbers, got {value!r}")
        return [_bucket(value, bounds)]
    return [_value_key(value)]


def _sigmoid(log_odds: float) -> float:
    if log_odds >= 0:
        return 1 / (1 + math.exp(-log_odds))
    odds = math.exp(log_odds)
    return odds / (1 + odds)
