"""Rule scoring: fit and engagement points from conditions, group caps, decay, MQL thresholds (private)."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import clock as _clock
from crmkit._json import read_enum, read_int, read_list, read_mapping, read_object, read_str, under
from crmkit._validation import replace
from crmkit.conditions import Condition, Schema, format_duration, parse_duration
from crmkit.entities import Activity, EntityRef, Lead
from crmkit.errors import RuleError, TransitionError, ValidationError
from crmkit.events import DomainEvent, EntityUpdated

if TYPE_CHECKING:
    from collections.abc import Callable

    from crmkit.clock import Clock
    from crmkit.lifecycle import Lifecycle

__all__ = [
    "Decay",
    "DecayKind",
    "Dimension",
    "MqlThresholds",
    "ScoreCard",
    "ScoreLine",
    "ScoreRule",
    "ScoredLead",
    "Scorer",
    "ScoringModel",
    "apply_score",
    "score_lead",
]

MQL_TAG = "mql"


class Dimension(enum.StrEnum):
    """What a score rule measures: who the lead is (fit) or what they did (engagement)."""

    FIT = "fit"
    ENGAGEMENT = "engagement"


class DecayKind(enum.StrEnum):
    """How engagement points fade with age."""

    HALF_LIFE = "half_life"
    LINEAR = "linear"


def _condition(value: Any) -> Condition:
    return value if isinstance(value, Condition) else Condition.from_json(value)


def _fixed_length(text: str) -> timedelta:
    """An ISO 8601 duration of fixed length (weeks, days, hours): months and years vary, so are refused."""
    delta = parse_duration(text)
    if delta.years or delta.months:
        msg = f"{text!r}: a decay period is in weeks, days or hours; months and years vary in length"
        raise RuleError(msg)
    return timedelta(days=delta.days, hours=delta.hours, minutes=delta.minutes, seconds=delta.seconds)


def _whole(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"expected a whole number, got {value!r}"
        raise RuleError(msg, path)
    return value


@attrs.frozen(kw_only=True)
class ScoreRule:
    """Points given when a condition holds.

    A fit rule is tested once on the lead; an engagement rule once on each engagement (an activity,
    a page view, an email click), so a lead that opened three emails earns its points three times.

    Attributes:
        name: A unique name, quoted in every score line.
        condition: When the points are given.
        points: The points; negative points take some away (a competitor's domain, a student).
        dimension: Fit or engagement.
        group: A cap group: the points of all rules in a group are capped together (see
            :attr:`ScoringModel.caps`).
    """

    name: str
    condition: Condition = attrs.field(converter=_condition)
    points: int
    dimension: Dimension = attrs.field(default=Dimension.FIT, converter=Dimension)
    group: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.name.strip():
            msg = "a score rule needs a name"
            raise RuleError(msg, "name")
        _whole(self.points, "points")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        data = {
            "name": self.name,
            "condition": self.condition.to_json(),
            "points": self.points,
            "dimension": self.dimension.value,
        }
        if self.group is not None:
            data["group"] = self.group
        return data

    @classmethod
    def from_json(cls, data: Any) -> ScoreRule:
        """Build a rule from its JSON form.

        Raises:
            RuleError: At the path of the problem.
        """
        fields = read_object(
            data, {"name", "condition", "points", "dimension", "group"}, ("name", "condition", "points")
        )
        read_str(fields["name"], "name")
        with under("condition"):
            fields["condition"] = Condition.from_json(fields["condition"])
        read_int(fields["points"], "points")
        if "dimension" in fields:
            read_enum(fields["dimension"], Dimension, "dimension")
        if fields.get("group") is not None:
            read_str(fields["group"], "group")
        return cls(**fields)


@attrs.frozen(kw_only=True)
class Decay:
    """How engagement points fade with the engagement's age.

    * ``half_life``: ``points x 0.5 ** (age / period)``, rounded half to even.
    * ``linear``: ``points`` minus ``per_period`` for each whole ``period`` of age, never past zero.

    Attributes:
        kind: Half-life or linear.
        period: An ISO 8601 duration such as ``"P30D"``: the half-life, or the linear step.
        per_period: Points lost per period (linear only).
    """

    kind: DecayKind = attrs.field(converter=DecayKind)
    period: str
    per_period: int = 0

    def __attrs_post_init__(self) -> None:
        with under("period"):
            step = _fixed_length(self.period)
        if step <= timedelta(0):
            msg = "the period must be longer than zero"
            raise RuleError(msg, "period")
        _whole(self.per_period, "per_period")
        if self.kind is DecayKind.LINEAR and self.per_period <= 0:
            msg = "linear decay needs per_period of 1 or more"
            raise RuleError(msg, "per_period")

    @property
    def step(self) -> timedelta:
        """The period as a ``timedelta``."""
        return _fixed_length(self.period)

    def apply(self, points: int, age: timedelta) -> int:
        """Return ``points`` faded by ``age`` (a negative age counts as zero)."""
        periods = max(age, timedelta(0)) / self.step
        if self.kind is DecayKind.HALF_LIFE:
            faded: float = points * 0.5 ** float(periods)
            return round(faded)
        lost = self.per_period * math.floor(periods)
        return max(points - lost, 0) if points >= 0 else min(points + lost, 0)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        data: dict[str, Any] = {"kind": self.kind.value, "period": self.period}
        if self.per_period:
            data["per_period"] = self.per_period
        return data


@attrs.frozen(kw_only=True)
class MqlThresholds:
    """When a lead is marketing-qualified: every threshold given must be reached.

    Attributes:
        total: The least total score.
        fit: The least fit score.
        engagement: The least engagement score.
    """

    total: int | None = None
    fit: int | None = None
    engagement: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.total is None and self.fit is None and self.engagement is None:
            msg = "give at least one threshold: total, fit or engagement"
            raise RuleError(msg)
        for name in ("total", "fit", "engagement"):
            if getattr(self, name) is not None:
                _whole(getattr(self, name), name)

    def reached(self, fit: int, engagement: int) -> bool:
        """Whether scores of ``fit`` and ``engagement`` reach every threshold."""
        return (
            (self.total is None or fit + engagement >= self.total)
            and (self.fit is None or fit >= self.fit)
            and (self.engagement is None or engagement >= self.engagement)
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            name: getattr(self, name)
            for name in ("total", "fit", "engagement")
            if getattr(self, name) is not None
        }


def _rules(value: Iterable[ScoreRule]) -> tuple[ScoreRule, ...]:
    return tuple(value)


def _caps(value: Mapping[str, int]) -> Mapping[str, int]:
    return dict(value)


@attrs.frozen(kw_only=True)
class ScoringModel:
    """A rule-scoring model: fit and engagement rules, group caps, decay and MQL thresholds.

    Attributes:
        rules: The score rules (fit and engagement).
        caps: Group name -> the most points the group's rules add up to (per lead).
        decay: How engagement points fade; ``None`` keeps them whole.
        mql: When a lead becomes marketing-qualified; ``None`` never.

    Raises:
        RuleError: Two rules with one name, a cap for an unknown group or a negative cap.
    """

    rules: tuple[ScoreRule, ...] = attrs.field(converter=_rules)
    caps: Mapping[str, int] = attrs.field(factory=dict, converter=_caps)
    decay: Decay | None = None
    mql: MqlThresholds | None = None

    def __attrs_post_init__(self) -> None:
        names: set[str] = set()
        groups = {rule.group for rule in self.rules}
        for index, rule in enumerate(self.rules):
            if rule.name in names:
                msg = f"a second rule named {rule.name!r}"
                raise RuleError(msg, f"rules[{index}].name")
            names.add(rule.name)
        for group, cap in self.caps.items():
            _whole(cap, f"caps.{group}")
            if group not in groups:
                msg = f"no rule is in group {group!r}"
                raise RuleError(msg, f"caps.{group}")
            if cap < 0:
                msg = "a cap is 0 or more"
                raise RuleError(msg, f"caps.{group}")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        data: dict[str, Any] = {"rules": [rule.to_json() for rule in self.rules]}
        if self.caps:
            data["caps"] = dict(self.caps)
        if self.decay is not None:
            data["decay"] = self.decay.to_json()
        if self.mql is not None:
            data["mql"] = self.mql.to_json()
        return data

    @classmethod
    def from_json(cls, data: Any) -> ScoringModel:
        """Build a model from its JSON form.

        Raises:
            RuleError: At the path of the first problem, such as ``rules[2].condition.field``.
        """
        fields = read_object(data, {"rules", "caps", "decay", "mql"}, ("rules",))
        fields["rules"] = read_list(fields["rules"], "rules", ScoreRule.from_json)
        if "decay" in fields:
            with under("decay"):
                decay = read_object(fields["decay"], {"kind", "period", "per_period"}, ("kind", "period"))
                read_enum(decay["kind"], DecayKind, "kind")
                read_str(decay["period"], "period")
                if "per_period" in decay:
                    read_int(decay["per_period"], "per_period")
                fields["decay"] = Decay(**decay)
        if "mql" in fields:
            with under("mql"):
                thresholds = read_object(fields["mql"], {"total", "fit", "engagement"})
                for name, value in thresholds.items():
                    if value is not None:
                        read_int(value, name)
                fields["mql"] = MqlThresholds(**thresholds)
        if "caps" in fields:
            fields["caps"] = read_mapping(fields["caps"], "caps", read_int)
        return cls(**fields)


@attrs.frozen
class ScoreLine:
    """Points a rule added (or a cap took away), and why.

    Attributes:
        rule: The rule's name; for a cap, ``"cap:<group>"``.
        dimension: Fit or engagement.
        points: The points counted in the total (after decay).
        base_points: The rule's points before decay.
        group: The rule's cap group.
        reason: What happened, in words.
    """

    rule: str
    dimension: Dimension
    points: int
    base_points: int
    group: str | None
    reason: str


@attrs.frozen
class ScoreCard:
    """A lead's score with every point explained; the lines add up to the scores exactly.

    Attributes:
        fit: Fit points.
        engagement: Engagement points.
        total: ``fit + engagement``.
        mql: Whether the thresholds are reached.
        lines: One line per rule match (and per cap applied).
        at: When the score was computed (decay is measured up to it).
    """

    fit: int
    engagement: int
    total: int
    mql: bool
    lines: tuple[ScoreLine, ...]
    at: datetime

    def explain(self) -> str:
        """The score in words, one line per rule match."""
        head = f"score {self.total} (fit {self.fit}, engagement {self.engagement})"
        head += "; marketing-qualified" if self.mql else ""
        return "\n".join([head, *(f"  {line.points:+d} {line.rule}: {line.reason}" for line in self.lines)])


class Scorer:
    """A scoring model compiled once: conditions become functions, ready for many leads.

    Args:
        model: The model.
        schema: The lead fields fit rules may read; every field of ``Lead`` by default.
        engagement_schema: The fields engagement rules may read; every field of ``Activity`` by default.
        time_field: The engagement field holding when it happened (read like any field).
        clock: Where "now" comes from; the current clock by default.

    Raises:
        RuleError: A condition that does not fit its schema, with a path like ``rules[3].condition.field``.
    """

    __slots__ = ("_clock", "_engagement", "_fit", "_model", "_read_time")

    def __init__(
        self,
        model: ScoringModel,
        *,
        schema: Schema | None = None,
        engagement_schema: Schema | None = None,
        time_field: str = "occurred_at",
        clock: Clock | None = None,
    ) -> None:
        self._model = model
        self._clock = clock
        lead_schema = schema or Schema.for_entity(Lead)
        event_schema = engagement_schema or Schema.for_entity(Activity)
        if time_field not in event_schema.fields:
            msg = f"the engagement schema declares no field {time_field!r}"
            raise RuleError(msg, "time_field")
        self._read_time: Callable[[Any], Any] = lambda record: event_schema.read(time_field, record)
        # A fit rule's line is the same for every lead it matches: built once, shared (it is immutable).
        self._fit: list[tuple[ScoreLine, Callable[[Any], bool]]] = []
        self._engagement: list[tuple[ScoreRule, Callable[[Any], bool]]] = []
        for index, rule in enumerate(model.rules):
            fit = rule.dimension is Dimension.FIT
            with under(f"rules[{index}].condition"):
                test = (lead_schema if fit else event_schema).compile(rule.condition, clock=clock)
            if fit:
                line = ScoreLine(rule.name, Dimension.FIT, rule.points, rule.points, rule.group, "matched")
                self._fit.append((line, test))
            else:
                self._engagement.append((rule, test))

    @property
    def model(self) -> ScoringModel:
        """The model."""
        return self._model

    def score(self, lead: Any, engagements: Iterable[Any] = (), *, at: datetime | None = None) -> ScoreCard:
        """Score one lead.

        Args:
            lead: The lead (or a record the schema reads).
            engagements: What the lead did: activities or records the engagement schema reads.
            at: The time decay is measured to; the clock's by default.

        Raises:
            ValidationError: ``at`` or an engagement's time is naive or missing.
        """
        moment = at or (self._clock or _clock.get_clock()).now()
        if moment.utcoffset() is None:
            raise ValidationError.single("at", "must be timezone-aware")
        lines = [line for line, test in self._fit if test(lead)]
        if self._engagement:
            lines += self._engagement_lines(engagements, moment)
        return self._card(lines, moment)

    def score_many(self, leads: Iterable[Any], *, at: datetime | None = None) -> list[ScoreCard]:
        """Score leads on fit alone (no engagements), at one time."""
        moment = at or (self._clock or _clock.get_clock()).now()
        if moment.utcoffset() is None:
            raise ValidationError.single("at", "must be timezone-aware")
        fit, card = self._fit, self._card
        return [card([line for line, test in fit if test(lead)], moment) for lead in leads]

    def _engagement_lines(self, engagements: Iterable[Any], moment: datetime) -> list[ScoreLine]:
        decay = self._model.decay
        lines = []
        for index, engagement in enumerate(engagements):
            when = self._read_time(engagement)
            if not isinstance(when, datetime) or when.utcoffset() is None:
                where = f"engagements[{index}]"
                raise ValidationError.single(where, "needs a timezone-aware time")
            for rule, test in self._engagement:
                if not test(engagement):
                    continue
                age = moment - when
                points = rule.points if decay is None else decay.apply(rule.points, age)
                reason = f"engagement {index} at {when.isoformat()}"
                if decay is not None:
                    reason += (
                        f", {_age_text(age)} old, {decay.kind} {decay.period}: {rule.points} -> {points}"
                    )
                lines.append(
                    ScoreLine(rule.name, Dimension.ENGAGEMENT, points, rule.points, rule.group, reason)
                )
        return lines

    def _card(self, lines: list[ScoreLine], moment: datetime) -> ScoreCard:
        caps = self._model.caps
        if caps:
            lines = _capped(lines, caps)
        fit = engagement = 0
        for line in lines:
            if line.dimension is Dimension.FIT:
                fit += line.points
            else:
                engagement += line.points
        mql = self._model.mql is not None and self._model.mql.reached(fit, engagement)
        return ScoreCard(fit, engagement, fit + engagement, mql, tuple(lines), moment)


def _age_text(age: timedelta) -> str:
    return format_duration(timedelta(days=age.days)) if age.days else "less than a day"


def _capped(lines: list[ScoreLine], caps: Mapping[str, int]) -> list[ScoreLine]:
    """Add one negative line per group whose points exceed its cap (in the dimension of its last line)."""
    sums: dict[str, int] = {}
    last: dict[str, Dimension] = {}
    for line in lines:
        if line.group is not None and line.group in caps:
            sums[line.group] = sums.get(line.group, 0) + line.points
            last[line.group] = line.dimension
    extra = [
        ScoreLine(
            f"cap:{group}",
            last[group],
            caps[group] - total,
            0,
            group,
            f"group {group!r} capped at {caps[group]}",
        )
        for group, total in sums.items()
        if total > caps[group]
    ]
    return lines + extra


def score_lead(
    lead: Any,
    model: ScoringModel,
    engagements: Iterable[Any] = (),
    *,
    at: datetime | None = None,
    clock: Clock | None = None,
) -> ScoreCard:
    """Score one lead with a model (compiles it; keep a :class:`Scorer` to score many)."""
    return Scorer(model, clock=clock).score(lead, engagements, at=at)


@attrs.frozen
class ScoredLead:
    """A lead with its new score applied, and the events that records.

    Attributes:
        lead: The lead with ``score`` set (and, when marketing-qualified, the ``mql`` tag and the
            lifecycle transition taken).
        events: ``EntityUpdated`` when something changed, and ``StageChanged`` when it moved stage.
        moved: Whether the MQL transition was taken.
    """

    lead: Lead
    events: tuple[DomainEvent, ...]
    moved: bool


def apply_score(
    lead: Lead,
    card: ScoreCard,
    *,
    lifecycle: Lifecycle | None = None,
    transition: str | None = None,
    actor: str | None = None,
) -> ScoredLead:
    """Write a score card onto a lead: the score, the ``mql`` tag, and the MQL transition.

    When the card is marketing-qualified and a lifecycle and transition are given, the lead takes
    that transition (say ``"qualify"`` in the lead lifecycle) if its stage allows it; a stage that does
    not allow it (already converted, say) leaves the stage alone.

    Returns:
        The new lead and its events; the same lead and no events when nothing changed.
    """
    tags = lead.tags | {MQL_TAG} if card.mql else lead.tags
    changed = [
        name for name, value in (("score", card.total), ("tags", tags)) if getattr(lead, name) != value
    ]
    events: list[DomainEvent] = []
    moved = False
    if changed:
        lead = replace(lead, score=card.total, tags=tags, updated_at=max(card.at, lead.updated_at))
        events.append(
            EntityUpdated(entity=EntityRef.to(lead), changed=tuple(changed), at=card.at, actor=actor)
        )
    if card.mql and lifecycle is not None and transition is not None:
        lead, stage_events = _take_mql_transition(
            lead, lifecycle, transition, actor, max(card.at, lead.updated_at)
        )
        moved = bool(stage_events)
        events += stage_events
    return ScoredLead(lead, tuple(events), moved)


def _take_mql_transition(
    lead: Lead, lifecycle: Lifecycle, transition: str, actor: str | None, at: datetime
) -> tuple[Lead, list[DomainEvent]]:
    """Take the MQL transition when the lead's stage allows it and its guard holds; else stay."""
    if transition not in lifecycle.allowed_transitions(lead.stage):
        return lead, []
    try:
        moved, event = lifecycle.apply(lead, transition, actor=actor, at=at)
    except TransitionError:
        return lead, []  # a guard said no: the lead stays where it is, with its new score
    return moved, [event]
