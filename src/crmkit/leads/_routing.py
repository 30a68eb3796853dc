"""Routing: an ordered rule chain that picks an owner by strategy and explains itself (private)."""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import reduce
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import attrs

from crmkit import clock as _clock
from crmkit._json import (
    read_enum,
    read_int,
    read_list,
    read_mapping,
    read_object,
    read_str,
    under,
)
from crmkit._validation import replace
from crmkit.conditions import Condition, Schema
from crmkit.entities import Entity, EntityRef, Lead, Task, TaskStatus, Team, User
from crmkit.errors import RuleError, ValidationError
from crmkit.events import Assigned
from crmkit.leads._state import MemoryRoutingState, OverlayState, RoutingState

if TYPE_CHECKING:
    from collections.abc import Callable

    from crmkit.clock import Clock

__all__ = [
    "Absence",
    "Assign",
    "CandidateNote",
    "Directory",
    "FairnessReport",
    "FairnessRow",
    "Period",
    "Router",
    "RoutingDecision",
    "RoutingRule",
    "RoutingRules",
    "Strategy",
    "fairness_report",
    "open_work",
    "route_lead",
]

E = TypeVar("E", bound=Entity)

RR_NAMESPACE = "routing.rr"
QUOTA_NAMESPACE = "routing.quota"
_MAX_CYCLE = 10_000
_NAME_LIMIT = 200


class Strategy(enum.StrEnum):
    """How a routing rule picks the owner among its candidates."""

    FIXED = "fixed"
    ROUND_ROBIN = "round_robin"
    WEIGHTED_ROUND_ROBIN = "weighted_round_robin"
    LEAST_LOADED = "least_loaded"
    TERRITORY = "territory"
    SKILLS = "skills"
    BASED_ON_FIELD = "based_on_field"


class Period(enum.StrEnum):
    """The period a quota counts over (calendar periods in UTC)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def _period_key(period: Period, at: datetime) -> str:
    """The sortable name of the period containing ``at``: ``2026-11-22``, ``2026-W47``, ``2026-11``."""
    utc = at.astimezone(ZoneInfo("UTC"))
    if period is Period.DAY:
        return utc.date().isoformat()
    if period is Period.WEEK:
        year, week, _ = utc.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{utc.year}-{utc.month:02d}"


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


_NEEDS: dict[Strategy, str] = {
    Strategy.FIXED: "user_id",
    Strategy.WEIGHTED_ROUND_ROBIN: "weights",
    Strategy.TERRITORY: "field and territories",
    Strategy.BASED_ON_FIELD: "field",
}
_POOL = {Strategy.ROUND_ROBIN, Strategy.LEAST_LOADED, Strategy.SKILLS}
_ASSIGN_KEYS = {
    "strategy",
    "user_id",
    "team_id",
    "users",
    "weights",
    "field",
    "territories",
    "values",
    "skills",
}
_ASSIGN_KEYS |= {"quota", "period"}


@attrs.frozen(kw_only=True)
class Assign:
    """What a routing rule does when it matches: pick an owner by a strategy.

    Which attributes a strategy uses:

    * ``fixed``: ``user_id``.
    * ``round_robin``: the pool (``team_id``'s members, or ``users``), in turn.
    * ``weighted_round_robin``: ``weights`` (user id -> turns per cycle, at least one above 0).
    * ``least_loaded``: the pool; the candidate with the fewest open leads or tasks (the ``loads`` given
      to the router, plus what it assigned in the same call).
    * ``territory``: ``field`` (such as ``"country"``) and ``territories`` (field value -> user ids),
      in turn within the territory.
    * ``skills``: the pool members holding every skill in ``skills`` (plus the lead's value of
      ``field``, when given), the least loaded of them.
    * ``based_on_field``: the user named by the lead's ``field``, through ``values`` (field value ->
      user id) when given, else the value itself is the user id.

    Every strategy respects availability (active, not absent, within working hours, under
    capacity) and, when ``quota`` is set, at most ``quota`` assignments per user per ``period``.

    Attributes:
        strategy: The strategy.
        user_id: The owner, for ``fixed``.
        team_id: A team whose members form the pool.
        users: The pool as explicit user ids.
        weights: User id -> weight, for ``weighted_round_robin``.
        field: The lead field read by ``territory``, ``skills`` and ``based_on_field``.
        territories: Field value -> user ids, for ``territory``.
        values: Field value -> user id, for ``based_on_field``.
        skills: Skills every candidate must hold, for ``skills``.
        quota: The most assignments per user per period; ``None`` for no quota.
        period: The quota's period.

    Raises:
        RuleError: A strategy without what it needs, or weights that are all zero.
    """

    strategy: Strategy = attrs.field(converter=Strategy)
    user_id: str | None = None
    team_id: str | None = None
    users: tuple[str, ...] = attrs.field(default=(), converter=_ids)
    weights: Mapping[str, int] = attrs.field(factory=dict, converter=_mapping)
    field: str | None = None
    territories: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_mapping)
    values: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    skills: frozenset[str] = attrs.field(factory=frozenset, converter=frozenset)
    quota: int | None = None
    period: Period = attrs.field(default=Period.DAY, converter=Period)

    def __attrs_post_init__(self) -> None:  # noqa: C901, PLR0912 - one check per strategy
        strategy = self.strategy
        if strategy is Strategy.FIXED and not self.user_id:
            msg = "'fixed' needs a user_id"
            raise RuleError(msg, "user_id")
        if strategy in _POOL and not (self.team_id or self.users):
            msg = f"'{strategy}' needs a team_id or users"
            raise RuleError(msg, "users")
        if strategy is Strategy.WEIGHTED_ROUND_ROBIN:
            if not self.weights:
                msg = "'weighted_round_robin' needs weights"
                raise RuleError(msg, "weights")
            for user, weight in self.weights.items():
                if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                    msg = f"a weight is a whole number of 0 or more, got {weight!r}"
                    raise RuleError(msg, f"weights.{user}")
            if not any(self.weights.values()):
                msg = "every weight is zero: no one would ever be assigned"
                raise RuleError(msg, "weights")
            if sum(self.weights.values()) // reduce(math.gcd, self.weights.values()) > _MAX_CYCLE:
                msg = f"the weights make a cycle longer than {_MAX_CYCLE} turns"
                raise RuleError(msg, "weights")
        if strategy in {Strategy.TERRITORY, Strategy.BASED_ON_FIELD} and not self.field:
            msg = f"'{strategy}' needs a field"
            raise RuleError(msg, "field")
        if strategy is Strategy.TERRITORY:
            if not self.territories:
                msg = "'territory' needs territories (field value -> user ids)"
                raise RuleError(msg, "territories")
            for value, users in self.territories.items():
                given: object = users  # read from JSON: may be anything
                if isinstance(given, str) or not users:
                    msg = "expected a non-empty list of user ids"
                    raise RuleError(msg, f"territories.{value}")
            object.__setattr__(self, "territories", {k: tuple(v) for k, v in self.territories.items()})
        if self.quota is not None and (isinstance(self.quota, bool) or not isinstance(self.quota, int)):
            msg = f"a quota is a whole number, got {self.quota!r}"
            raise RuleError(msg, "quota")
        if self.quota is not None and self.quota < 1:
            msg = "a quota is at least 1"
            raise RuleError(msg, "quota")

    def referenced_users(self) -> Iterable[tuple[str, str]]:
        """Every user id this action names, with its path."""
        if self.user_id:
            yield "user_id", self.user_id
        yield from ((f"users[{i}]", user) for i, user in enumerate(self.users))
        yield from ((f"weights.{user}", user) for user in self.weights)
        for value, users in self.territories.items():
            yield from ((f"territories.{value}[{i}]", user) for i, user in enumerate(users))
        yield from ((f"values.{value}", user) for value, user in self.values.items())

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: the strategy and every attribute that is not at its default."""
        data: dict[str, Any] = {"strategy": self.strategy.value}
        for name in ("user_id", "team_id", "field", "quota"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.users:
            data["users"] = list(self.users)
        if self.weights:
            data["weights"] = dict(self.weights)
        if self.territories:
            data["territories"] = {key: list(users) for key, users in self.territories.items()}
        if self.values:
            data["values"] = dict(self.values)
        if self.skills:
            data["skills"] = sorted(self.skills)
        if self.period is not Period.DAY:
            data["period"] = self.period.value
        return data

    @classmethod
    def from_json(cls, data: Any) -> Assign:  # noqa: C901 - one check per field
        """Build an action from its JSON form.

        Raises:
            RuleError: An unknown key or strategy, or a strategy without what it needs.
        """
        fields = read_object(data, _ASSIGN_KEYS, ("strategy",))
        with under("strategy"):
            try:
                read_enum(fields["strategy"], Strategy, "")
            except RuleError as exc:
                msg = f"unknown routing strategy {fields['strategy']!r}; one of: {', '.join(Strategy)}"
                raise RuleError(msg) from exc
        if "period" in fields:
            read_enum(fields["period"], Period, "period")
        for name in ("user_id", "team_id", "field"):
            if fields.get(name) is not None:
                read_str(fields[name], name)
        if fields.get("quota") is not None:
            read_int(fields["quota"], "quota")
        for name in ("users", "skills"):
            if name in fields:
                fields[name] = read_list(fields[name], name, lambda item: read_str(item, ""))
        if "weights" in fields:
            fields["weights"] = read_mapping(fields["weights"], "weights", read_int)
        if "values" in fields:
            fields["values"] = read_mapping(fields["values"], "values", read_str)
        if "territories" in fields:
            fields["territories"] = read_mapping(
                fields["territories"], "territories", lambda value, where: read_list(value, where, _user_id)
            )
        return cls(**fields)


def _user_id(value: Any) -> str:
    return read_str(value, "")


def _condition(value: Any) -> Condition:
    return value if isinstance(value, Condition) else Condition.from_json(value)


@attrs.frozen
class RoutingRule:
    """One rule of the chain: when the condition holds, the action picks the owner.

    Attributes:
        name: A unique name, quoted in every decision it makes.
        condition: When the rule applies (the condition language, over lead fields).
        action: How it picks the owner.
    """

    name: str
    condition: Condition = attrs.field(converter=_condition)
    action: Assign

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"name": self.name, "condition": self.condition.to_json(), "action": self.action.to_json()}


def _rule_from_json(data: Any) -> RoutingRule:
    fields = read_object(data, {"name", "condition", "action"}, ("name", "condition", "action"))
    name = read_str(fields["name"], "name")
    with under("condition"):
        condition = Condition.from_json(fields["condition"])
    with under("action"):
        action = Assign.from_json(fields["action"])
    return RoutingRule(name, condition, action)


def _rule_tuple(rules: Iterable[RoutingRule]) -> tuple[RoutingRule, ...]:
    return tuple(rules)


@attrs.frozen(kw_only=True)
class RoutingRules:
    """An ordered rule chain: the first rule whose condition holds routes the lead.

    Attributes:
        rules: The rules, in order.
        fallback_queue: Where a lead goes when no rule matches, or the matching rule finds no one
            available.
        seed: The tie-break seed (see :class:`Router`): the same seed gives the same choices.

    Raises:
        RuleError: Two rules with one name; the path names the second.
    """

    rules: tuple[RoutingRule, ...] = attrs.field(converter=_rule_tuple)
    fallback_queue: str = "unassigned"
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        seen: set[str] = set()
        given: tuple[object, ...] = self.rules  # callers may pass anything
        for index, item in enumerate(given):
            if not isinstance(item, RoutingRule):
                msg = f"expected a RoutingRule, got {type(item).__name__}"
                raise RuleError(msg, f"rules[{index}]")
        for index, rule in enumerate(self.rules):
            if not rule.name or len(rule.name) > _NAME_LIMIT:
                msg = f"a rule name is 1 to {_NAME_LIMIT} characters"
                raise RuleError(msg, f"rules[{index}].name")
            if rule.name in seen:
                msg = f"a second rule named {rule.name!r}"
                raise RuleError(msg, f"rules[{index}].name")
            seen.add(rule.name)
        if not self.fallback_queue.strip():
            msg = "the fallback queue needs a name"
            raise RuleError(msg, "fallback_queue")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (plain dicts and lists)."""
        return {
            "rules": [rule.to_json() for rule in self.rules],
            "fallback_queue": self.fallback_queue,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Any) -> RoutingRules:
        """Build a rule chain from its JSON form.

        Raises:
            RuleError: At the path of the first problem, such as ``rules[3].action.strategy``.
        """
        fields = read_object(data, {"rules", "fallback_queue", "seed"}, ("rules",))
        rules = read_list(fields.pop("rules"), "rules", _rule_from_json)
        if "seed" in fields:
            read_int(fields["seed"], "seed")
        if "fallback_queue" in fields:
            read_str(fields["fallback_queue"], "fallback_queue")
        return cls(rules=rules, **fields)


@attrs.frozen
class Absence:
    """A period a user is out of office; routing skips them from ``start`` up to ``end``.

    Attributes:
        user_id: Who is away.
        start: When the absence starts (timezone-aware).
        end: When they are back; after ``start``.
    """

    user_id: str
    start: datetime
    end: datetime

    def __attrs_post_init__(self) -> None:
        for name in ("start", "end"):
            if getattr(self, name).utcoffset() is None:
                raise ValidationError.single(name, "must be timezone-aware")
        if self.end <= self.start:
            raise ValidationError.single("end", "must be after start")


@attrs.frozen
class Directory:
    """The people routing may assign: users, teams and who is away.

    Attributes:
        users: Every user routing may name.
        teams: Every team routing may name; a team's members are the users whose ``team_id`` it is.
        absences: Out-of-office periods.
    """

    users: tuple[User, ...] = attrs.field(converter=tuple)
    teams: tuple[Team, ...] = attrs.field(default=(), converter=tuple)
    absences: tuple[Absence, ...] = attrs.field(default=(), converter=tuple)
    _by_id: dict[str, User] = attrs.field(init=False, eq=False, repr=False)
    _members: dict[str, tuple[str, ...]] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {user.id: user for user in self.users})
        members: dict[str, list[str]] = {team.id: [] for team in self.teams}
        for user in self.users:
            if user.team_id in members:
                members[user.team_id].append(user.id)
        object.__setattr__(self, "_members", {team: tuple(ids) for team, ids in members.items()})

    def user(self, user_id: str) -> User | None:
        """The user with this id, or ``None``."""
        return self._by_id.get(user_id)

    def members(self, team_id: str) -> tuple[str, ...]:
        """The ids of a team's members (empty for an unknown team)."""
        return self._members.get(team_id, ())

    def has_team(self, team_id: str) -> bool:
        """Whether the team is known."""
        return team_id in self._members

    def unavailable_reason(self, user_id: str, at: datetime) -> str | None:
        """Why the user cannot take work at ``at`` (inactive, away, off hours), or ``None`` when they can."""
        user = self._by_id.get(user_id)
        if user is None:
            return "unknown user"
        if not user.active:
            return "inactive"
        for absence in self.absences:
            if absence.user_id == user_id and absence.start <= at < absence.end:
                return f"out of office until {absence.end.isoformat()}"
        if user.working_hours:
            local = at.astimezone(ZoneInfo(user.timezone))
            moment = local.time().replace(tzinfo=None)
            if not any(
                period.weekday == local.weekday() and period.start <= moment < period.end
                for period in user.working_hours
            ):
                return f"outside working hours ({local:%a %H:%M} {user.timezone})"
        return None


@attrs.frozen
class CandidateNote:
    """One candidate a routing decision considered, and what became of them.

    Attributes:
        user_id: The candidate.
        outcome: ``"chosen"``, ``"passed over"`` (eligible, another was picked) or ``"excluded"``.
        reason: Why, in words: ``"turn 7 of the rotation"``, ``"inactive"``,
            ``"quota of 20 per day reached"``.
    """

    user_id: str
    outcome: str
    reason: str


class RoutingDecision(NamedTuple):
    """Where one lead went, and why.

    Attributes:
        lead_id: The lead routed.
        owner_id: The user chosen; ``None`` when the lead went to the fallback queue.
        queue: The fallback queue, when no one was chosen.
        rule: The name of the rule that matched; ``None`` when none did.
        rule_index: Its position in the chain.
        strategy: The strategy of that rule.
        at: When the decision was made.
        considered: The candidates in the order the strategy looked at them.
        excluded: ``(user id, reason)`` for each candidate that could not take the lead.
        how: How the owner was picked, with ``{turn}`` standing for the turn; read :attr:`detail`.
        turn: The rotation turn the lead took, for rotating strategies.
    """

    lead_id: str | None
    owner_id: str | None
    queue: str | None
    rule: str | None
    rule_index: int | None
    strategy: Strategy | None
    at: datetime
    considered: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...]
    how: str
    turn: int | None = None

    @property
    def detail(self) -> str:
        """How the owner was picked, in words (``"turn 7 of the rotation"``)."""
        return self.how if self.turn is None else self.how.replace("{turn}", str(self.turn))

    @property
    def candidates(self) -> tuple[CandidateNote, ...]:
        """Every candidate considered: chosen, passed over or excluded, each with the reason."""
        reasons = dict(self.excluded)
        notes = []
        for user_id in self.considered:
            if user_id == self.owner_id:
                notes.append(CandidateNote(user_id, "chosen", self.detail))
            elif user_id in reasons:
                notes.append(CandidateNote(user_id, "excluded", reasons[user_id]))
            else:
                why = (
                    "not their turn"
                    if "turn" in self.detail
                    else "more open work, or lost the seeded tie-break"
                )
                notes.append(CandidateNote(user_id, "passed over", f"eligible; {why}"))
        return tuple(notes)

    def explain(self) -> str:
        """The decision in words, one line per candidate."""
        if self.rule is None:
            head = f"no rule matched; sent to queue {self.queue!r}"
        elif self.owner_id is None:
            head = f"rule {self.rule!r} ({self.strategy}) matched but no candidate was available; "
            head += f"sent to queue {self.queue!r}"
        else:
            head = f"rule {self.rule!r} ({self.strategy}) assigned {self.owner_id}: {self.detail}"
        lines = [head] + [f"  {note.user_id}: {note.outcome} ({note.reason})" for note in self.candidates]
        return "\n".join(lines)

    def assign(self, lead: E, *, actor: str | None = None) -> tuple[E, Assigned]:
        """Apply the decision: the lead with its new owner (``None`` for a queue) and the ``Assigned`` event.

        Args:
            lead: The record routed (any entity with an ``owner_id``).
            actor: Who routed, for the event.
        """
        if self.lead_id is not None and lead.id != self.lead_id:
            raise ValidationError.single("lead", f"the decision is for {self.lead_id}, not {lead.id}")
        event = self._event(lead.id, getattr(lead, "owner_id", None), actor)
        event = attrs.evolve(event, entity=EntityRef.to(lead))
        changed = replace(lead, owner_id=self.owner_id, updated_at=max(self.at, lead.updated_at))
        return changed, event

    def assigned_event(self, *, previous_owner_id: str | None = None, actor: str | None = None) -> Assigned:
        """The ``Assigned`` event for this decision (owner ``None`` when it went to a queue)."""
        if self.lead_id is None:
            raise ValidationError.single("lead_id", "the decision has no lead id to refer to")
        return self._event(self.lead_id, previous_owner_id, actor)

    def _event(self, lead_id: str, previous_owner_id: str | None, actor: str | None) -> Assigned:
        reason = f"rule {self.rule}: {self.detail}" if self.rule else f"fallback queue {self.queue}"
        return Assigned(
            entity=EntityRef("lead", lead_id),
            owner_id=self.owner_id,
            previous_owner_id=previous_owner_id,
            reason=reason,
            at=self.at,
            actor=actor,
        )


_NO_MATCH = "no rule matched"
_ROTATION = "turn {turn} of the rotation"


def _lead_id(lead: Any) -> str | None:
    """The id of a lead given as an entity or a mapping."""
    value = getattr(lead, "id", None)
    if value is None and isinstance(lead, Mapping):
        value = lead.get("id")
    return value if isinstance(value, str) else None


def _rank(seed: int, scope: str, user_id: str) -> bytes:
    """The tie-break key: a seeded digest, so order depends on the seed and ids, never on creation order."""
    return hashlib.blake2b(f"{seed}\x00{scope}\x00{user_id}".encode(), digest_size=8).digest()


def _smooth_cycle(order: Sequence[str], weights: Mapping[str, int]) -> tuple[str, ...]:
    """One cycle of smooth weighted round robin: each user ``weight / gcd`` times, spread out evenly."""
    active = [user for user in order if weights[user] > 0]
    divisor = reduce(math.gcd, (weights[user] for user in active))
    share = {user: weights[user] // divisor for user in active}
    total = sum(share.values())
    current = dict.fromkeys(active, 0)
    cycle = []
    for _ in range(total):
        for user in active:
            current[user] += share[user]
        best = max(active, key=lambda user: current[user])  # max keeps the first of equals: rotation order
        current[best] -= total
        cycle.append(best)
    return tuple(cycle)


class _Context:
    """What one routing call shares across its leads: time, availability, loads, state."""

    __slots__ = ("at", "available", "loads", "period_keys", "present", "state")

    def __init__(self, at: datetime, state: RoutingState, loads: Mapping[str, int] | None) -> None:
        self.at = at
        self.state = state
        self.loads: dict[str, int] = dict(loads or {})
        self.available: dict[str, str | None] = {}
        self.period_keys: dict[Period, str] = {}
        self.present: dict[int, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {}


class _Plan:
    """A rule compiled for routing: its candidate order and how it picks."""

    __slots__ = (
        "action",
        "cycle",
        "index",
        "name",
        "plain_rotation",
        "pool",
        "read_field",
        "territory_orders",
    )

    def __init__(self, index: int, rule: RoutingRule, pool: tuple[str, ...], cycle: tuple[str, ...]) -> None:
        self.index = index
        self.name = rule.name
        self.action = rule.action
        self.pool = pool
        self.cycle = cycle
        self.read_field: Callable[[Any], Any] | None = None
        self.territory_orders: dict[str, tuple[str, ...]] = {}
        # A rotation with no capacity and no quota: who is present decides alone, so a batch can
        # reserve all its turns of the rule at once.
        self.plain_rotation = False


class Router:
    """Routes leads through a rule chain: compiled once, then a fast, explained decision per lead.

    Candidates are never picked by creation order. A rotation (round robin, territory) runs through
    the candidates in the order of a seeded digest of ``(seed, rule name, user id)``; a tie between
    equally good candidates (least loaded) is broken by the digest of ``(seed, lead id, user id)``.
    The same seed and ids give the same choices on every machine; another seed reshuffles them.

    Round-robin turns and quota counts live in a :class:`~crmkit.leads.RoutingState`: a store
    transaction's ``tx.state`` (shared by every process using that store) or, by default, this
    router's own in-memory counters.

    Args:
        rules: The rule chain.
        directory: The users and teams the rules may name.
        schema: The fields conditions may read; by default every field of :class:`~crmkit.entities.Lead`.
        state: Where turns and quotas are kept when a call gives none.
        clock: Where "now" comes from; the current clock by default.

    Raises:
        RuleError: A condition that does not fit the schema, or a rule naming an unknown user, team or
            field; the path names it, such as ``rules[3].action.users[1]``.
    """

    __slots__ = (
        "_clock",
        "_counts_loads",
        "_directory",
        "_first_match",
        "_plans",
        "_rules",
        "_schema",
        "_state",
    )

    def __init__(
        self,
        rules: RoutingRules,
        directory: Directory,
        *,
        schema: Schema | None = None,
        state: RoutingState | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._rules = rules
        self._directory = directory
        self._schema = schema or Schema.for_entity(Lead)
        self._state: RoutingState = state if state is not None else MemoryRoutingState()
        self._clock = clock
        conditions = []
        for index, rule in enumerate(rules.rules):
            with under(f"rules[{index}].condition"):
                conditions.append(self._schema.validate(rule.condition))
        self._first_match = self._schema.first_match(conditions, clock=clock)
        self._plans = tuple(self._plan(index, rule) for index, rule in enumerate(rules.rules))
        # Loads matter only to strategies that weigh them; plain rotations do not count them.
        self._counts_loads = not all(plan.plain_rotation for plan in self._plans)

    @property
    def rules(self) -> RoutingRules:
        """The rule chain."""
        return self._rules

    def _plan(self, index: int, rule: RoutingRule) -> _Plan:
        action, directory, seed = rule.action, self._directory, self._rules.seed
        path = f"rules[{index}].action"
        for where, user_id in action.referenced_users():
            if directory.user(user_id) is None:
                msg = f"unknown user {user_id!r}"
                raise RuleError(msg, f"{path}.{where}")
        if action.team_id is not None and not directory.has_team(action.team_id):
            msg = f"unknown team {action.team_id!r}"
            raise RuleError(msg, f"{path}.team_id")
        if action.field is not None and action.field not in self._schema.fields:
            msg = f"unknown field {action.field!r}"
            raise RuleError(msg, f"{path}.field")
        members = directory.members(action.team_id) if action.team_id else ()
        candidates = tuple(dict.fromkeys((*action.users, *members, *action.weights)))
        if action.strategy is Strategy.FIXED and action.user_id:
            candidates = (action.user_id,)
        if action.strategy in _POOL and not candidates:
            msg = f"team {action.team_id!r} has no members"
            raise RuleError(msg, f"{path}.team_id")
        pool = tuple(sorted(candidates, key=lambda user: _rank(seed, rule.name, user)))
        cycle = (
            _smooth_cycle(pool, action.weights) if action.strategy is Strategy.WEIGHTED_ROUND_ROBIN else pool
        )
        plan = _Plan(index, rule, pool, cycle)
        plan.plain_rotation = (
            action.strategy in {Strategy.ROUND_ROBIN, Strategy.WEIGHTED_ROUND_ROBIN}
            and action.quota is None
            and all(getattr(directory.user(user), "capacity", None) is None for user in pool)
        )
        for value, users in action.territories.items():
            scope = f"{rule.name}:{value}"
            plan.territory_orders[value] = tuple(sorted(users, key=lambda user: _rank(seed, scope, user)))
        if action.field is not None:
            name, schema = action.field, self._schema
            plan.read_field = lambda record: schema.read(name, record)
        return plan

    # -- routing -------------------------------------------------------------------------------

    def route(
        self,
        lead: Any,
        *,
        state: RoutingState | None = None,
        loads: Mapping[str, int] | None = None,
        at: datetime | None = None,
    ) -> RoutingDecision:
        """Route one lead.

        Args:
            lead: A lead (or any record the schema reads).
            state: Where turns and quotas are kept, such as ``tx.state``; the router's own by default.
            loads: Open leads or tasks per user id, for ``least_loaded`` and capacities.
            at: The time of the decision; the clock's by default.

        Returns:
            The decision, with its explanation. Nothing is saved but the turn and quota counters.
        """
        return self.route_many([lead], state=state, loads=loads, at=at)[0]

    def route_many(
        self,
        leads: Iterable[Any],
        *,
        state: RoutingState | None = None,
        loads: Mapping[str, int] | None = None,
        at: datetime | None = None,
    ) -> list[RoutingDecision]:
        """Route leads in order, as one batch at one time; loads grow with each assignment made."""
        moment = at or (self._clock or _clock.get_clock()).now()
        if moment.utcoffset() is None:
            raise ValidationError.single("at", "must be timezone-aware")
        context = _Context(moment, state if state is not None else self._state, loads)
        first_match, plans, queue = self._first_match, self._plans, self._rules.fallback_queue
        batch = leads if isinstance(leads, list | tuple) else list(leads)
        indices = [first_match(lead) for lead in batch]
        turns = self._reserve_turns(indices, context)
        decide, new, loads = self._decide, tuple.__new__, context.loads
        count_loads = self._counts_loads
        decisions: list[RoutingDecision] = []
        append = decisions.append
        for lead, index in zip(batch, indices, strict=True):
            lead_id = lead.get("id") if lead.__class__ is dict else _lead_id(lead)
            if index is None:
                append(
                    new(RoutingDecision, (lead_id, None, queue, None, None, None, moment, (), (), _NO_MATCH))
                )
                continue
            reserved = turns.get(index)
            if reserved is None:
                append(decide(plans[index], lead, lead_id, context))
                continue
            turn, present, size, head = reserved
            reserved[0] = turn + 1
            owner = present[(turn - 1) % size]
            if count_loads:
                loads[owner] = loads.get(owner, 0) + 1
            append(new(RoutingDecision, (lead_id, owner, *head, turn)))
        return decisions

    def _reserve_turns(self, indices: list[int | None], context: _Context) -> dict[int, list[Any]]:
        """Claim every turn a batch needs of each plain rotation with one atomic increment per rule.

        Returns rule index -> ``[next turn, present candidates, how many, the decision's fixed fields]``;
        rules whose candidates are all away are left out.
        """
        counts: dict[int, int] = {}
        plans = self._plans
        for index in indices:
            if index is not None and plans[index].plain_rotation:
                counts[index] = counts.get(index, 0) + 1
        turns: dict[int, list[Any]] = {}
        for index, count in counts.items():
            plan = plans[index]
            present, absent = self._present(plan.cycle, context)
            if present:
                last = context.state.increment(RR_NAMESPACE, plan.name, count)
                head = (
                    None,
                    plan.name,
                    index,
                    plan.action.strategy,
                    context.at,
                    plan.pool,
                    absent,
                    _ROTATION,
                )
                turns[index] = [last - count + 1, present, len(present), head]
        return turns

    def dry_run(
        self, leads: Iterable[Any], *, state: RoutingState | None = None, **kwargs: Any
    ) -> list[RoutingDecision]:
        """Route a batch without saving anything: turns and quotas are read, never written.

        Takes the same keyword arguments as :meth:`route_many`.
        """
        overlay = OverlayState(state if state is not None else self._state)
        return self.route_many(leads, state=overlay, **kwargs)

    # -- strategies ----------------------------------------------------------------------------

    def _absent_reason(self, user_id: str, context: _Context) -> str | None:
        """Why the user cannot work now (inactive, away, off hours), remembered for the call."""
        available = context.available
        if user_id in available:
            return available[user_id]
        reason = available[user_id] = self._directory.unavailable_reason(user_id, context.at)
        return reason

    def _busy_reason(self, user_id: str, context: _Context, action: Assign) -> str | None:
        """Why the user cannot take one more lead: at capacity, or the quota is used up."""
        user = self._directory.user(user_id)
        if user is not None and user.capacity is not None:
            load = context.loads.get(user_id, 0)
            if load >= user.capacity:
                return f"at capacity ({load} open of {user.capacity})"
        if action.quota is not None:
            used = self._quota_used(user_id, context, action.period)
            if used >= action.quota:
                return f"quota of {action.quota} per {action.period} reached"
        return None

    def _excluded_reason(self, user_id: str, context: _Context, action: Assign) -> str | None:
        return self._absent_reason(user_id, context) or self._busy_reason(user_id, context, action)

    def _present(
        self, cycle: tuple[str, ...], context: _Context
    ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """The rotation without the people who cannot work now, and why each was left out."""
        found = context.present.get(id(cycle))
        if found is None:
            present, absent = [], {}
            for user_id in cycle:
                reason = self._absent_reason(user_id, context)
                if reason is None:
                    present.append(user_id)
                else:
                    absent[user_id] = reason
            found = context.present[id(cycle)] = (tuple(present), tuple(absent.items()))
        return found

    def _quota_key(self, user_id: str, context: _Context, period: Period) -> str:
        key = context.period_keys.get(period)
        if key is None:
            key = context.period_keys[period] = _period_key(period, context.at)
        return f"{user_id}:{key}"

    def _quota_used(self, user_id: str, context: _Context, period: Period) -> int:
        entry = context.state.get(QUOTA_NAMESPACE, self._quota_key(user_id, context, period))
        value = entry.value if entry is not None else 0
        return value if isinstance(value, int) else 0

    def _take(self, user_id: str, context: _Context, action: Assign) -> bool:
        """Count the assignment; with a quota, claim the slot atomically (a lost race gives it back)."""
        if action.quota is not None:
            key = self._quota_key(user_id, context, action.period)
            if context.state.increment(QUOTA_NAMESPACE, key, 1) > action.quota:
                context.state.increment(QUOTA_NAMESPACE, key, -1)
                return False
        context.loads[user_id] = context.loads.get(user_id, 0) + 1
        return True

    def _decide(self, plan: _Plan, lead: Any, lead_id: str | None, context: _Context) -> RoutingDecision:  # noqa: PLR0911 - one return per strategy
        strategy = plan.action.strategy
        if strategy in {Strategy.ROUND_ROBIN, Strategy.WEIGHTED_ROUND_ROBIN}:
            return self._rotate(plan, plan.cycle, plan.name, lead_id, context)
        if strategy is Strategy.TERRITORY:
            value = plan.read_field(lead) if plan.read_field else None
            order = plan.territory_orders.get(str(value), ()) if value is not None else ()
            if not order:
                return self._nobody(
                    plan, lead_id, context, (), (), f"no territory for {plan.action.field}={value!r}"
                )
            return self._rotate(
                plan, order, f"{plan.name}:{value}", lead_id, context, f"territory {value!r}, "
            )
        if strategy is Strategy.FIXED:
            return self._pick_best(plan, plan.pool, lead_id, context, "the rule's fixed owner")
        if strategy is Strategy.BASED_ON_FIELD:
            value = plan.read_field(lead) if plan.read_field else None
            user_id = plan.action.values.get(str(value)) if plan.action.values else value
            if not isinstance(user_id, str) or self._directory.user(user_id) is None:
                detail = f"{plan.action.field}={value!r} names no known user"
                return self._nobody(plan, lead_id, context, (), (), detail)
            return self._pick_best(plan, (user_id,), lead_id, context, f"named by {plan.action.field}")
        if strategy is Strategy.SKILLS:
            return self._skills(plan, lead, lead_id, context)
        return self._least_loaded(plan, plan.pool, (), lead_id, context)

    def _rotate(  # noqa: PLR0917 - private; the rotation's parts
        self,
        plan: _Plan,
        cycle: tuple[str, ...],
        key: str,
        lead_id: str | None,
        context: _Context,
        prefix: str = "",
    ) -> RoutingDecision:
        present, absent = self._present(cycle, context)
        considered = plan.pool if cycle is plan.cycle else tuple(dict.fromkeys(cycle))
        if not present:
            return self._nobody(plan, lead_id, context, considered, absent, f"{prefix}no one available now")
        turn = context.state.increment(RR_NAMESPACE, key, 1)
        size = len(present)
        excluded = absent
        action = plan.action
        for step in range(size):
            user_id = present[(turn - 1 + step) % size]
            if excluded is not absent and any(user_id == seen for seen, _ in excluded):
                continue  # a weighted cycle names a person several times
            reason = self._busy_reason(user_id, context, action)
            if reason is None and self._take(user_id, context, action):
                detail = f"{prefix}turn {{turn}} of the rotation"
                if step:
                    detail += f", moved on {step} past busy candidates"
                return RoutingDecision(
                    lead_id, user_id, None, plan.name, plan.index, action.strategy, context.at,
                    considered, excluded, detail, turn,
                )  # fmt: skip
            excluded = (
                *excluded,
                (user_id, reason or f"quota of {action.quota} per {action.period} reached"),
            )
        detail = f"{prefix}turn {turn}: every candidate is busy"
        return self._nobody(plan, lead_id, context, considered, excluded, detail)

    def _pick_best(
        self, plan: _Plan, users: tuple[str, ...], lead_id: str | None, context: _Context, detail: str
    ) -> RoutingDecision:
        return self._least_loaded(plan, users, (), lead_id, context, detail)

    def _least_loaded(  # noqa: PLR0917 - private; the choice's parts
        self,
        plan: _Plan,
        users: tuple[str, ...],
        excluded_before: tuple[tuple[str, str], ...],
        lead_id: str | None,
        context: _Context,
        detail: str | None = None,
    ) -> RoutingDecision:
        action, seed = plan.action, self._rules.seed
        excluded = list(excluded_before)
        eligible = []
        for user_id in users:
            reason = self._excluded_reason(user_id, context, action)
            if reason is None:
                eligible.append(user_id)
            else:
                excluded.append((user_id, reason))
        scope = lead_id or ""
        eligible.sort(key=lambda user: (context.loads.get(user, 0), _rank(seed, scope, user)))
        considered = tuple(dict.fromkeys((*(user for user, _ in excluded_before), *users)))
        for user_id in eligible:
            if self._take(user_id, context, action):
                load = context.loads[user_id] - 1
                text = detail or f"least loaded ({load} open; ties broken by the seeded digest)"
                return RoutingDecision(
                    lead_id, user_id, None, plan.name, plan.index, action.strategy, context.at,
                    considered, tuple(excluded), text,
                )  # fmt: skip
            excluded.append((user_id, f"quota of {action.quota} per {action.period} reached"))
        return self._nobody(plan, lead_id, context, considered, tuple(excluded), "no one available")

    def _skills(self, plan: _Plan, lead: Any, lead_id: str | None, context: _Context) -> RoutingDecision:
        needed = set(plan.action.skills)
        if plan.read_field is not None:
            value = plan.read_field(lead)
            if isinstance(value, str) and value:
                needed.add(value)
            elif isinstance(value, frozenset | set | tuple | list):
                needed.update(str(item) for item in value)
        skilled, lacking = [], []
        for user_id in plan.pool:
            user = self._directory.user(user_id)
            missing = sorted(needed - (user.skills if user else frozenset()))
            if missing:
                lacking.append((user_id, f"lacks skill {', '.join(missing)}"))
            else:
                skilled.append(user_id)
        return self._least_loaded(plan, tuple(skilled), tuple(lacking), lead_id, context)

    def _nobody(  # noqa: PLR0917 - private; the decision's parts
        self,
        plan: _Plan,
        lead_id: str | None,
        context: _Context,
        considered: tuple[str, ...],
        excluded: tuple[tuple[str, str], ...],
        detail: str,
    ) -> RoutingDecision:
        queue, strategy = self._rules.fallback_queue, plan.action.strategy
        return RoutingDecision(
            lead_id, None, queue, plan.name, plan.index, strategy, context.at, considered, excluded, detail
        )


def open_work(
    records: Iterable[Any], *, closed_stages: Iterable[str] = ("converted", "disqualified")
) -> dict[str, int]:
    """Count open work per owner: the ``loads`` that ``least_loaded`` and capacities weigh.

    A record counts for its ``owner_id`` unless it is a task that is done or cancelled, or a record whose
    ``stage`` is one of ``closed_stages`` (a converted or disqualified lead).

    Args:
        records: Leads, tasks, tickets: anything with an ``owner_id``.
        closed_stages: Stages that no longer need work.
    """
    closed = frozenset(closed_stages)
    counts: dict[str, int] = {}
    for record in records:
        owner = getattr(record, "owner_id", None)
        if not isinstance(owner, str):
            continue
        if isinstance(record, Task) and record.status in {TaskStatus.DONE, TaskStatus.CANCELLED}:
            continue
        if getattr(record, "stage", None) in closed:
            continue
        counts[owner] = counts.get(owner, 0) + 1
    return counts


def route_lead(
    lead: Any,
    rules: RoutingRules,
    directory: Directory,
    *,
    state: RoutingState | None = None,
    loads: Mapping[str, int] | None = None,
    schema: Schema | None = None,
    clock: Clock | None = None,
) -> RoutingDecision:
    """Route one lead through a rule chain: build a :class:`Router` and call :meth:`Router.route`.

    Building the router compiles the rules; a host routing many leads keeps one :class:`Router`.
    """
    return Router(rules, directory, schema=schema, clock=clock).route(lead, state=state, loads=loads)


@attrs.frozen
class FairnessRow:
    """One person's share of the assignments against their weight.

    Attributes:
        user_id: The person.
        weight: Their weight.
        assigned: Leads assigned to them.
        expected: ``total x weight / sum of weights``.
        deviation: ``(assigned - expected) / expected``; ``None`` when ``expected`` is 0.
    """

    user_id: str
    weight: int
    assigned: int
    expected: float
    deviation: float | None


@attrs.frozen
class FairnessReport:
    """How evenly assignments followed the weights.

    Attributes:
        total: Assignments counted (decisions with an owner among the weighted users).
        rows: One row per weighted user, in user id order.
        max_abs_deviation: The largest ``|deviation|``; ``None`` without data.
    """

    total: int
    rows: tuple[FairnessRow, ...]
    max_abs_deviation: float | None


def fairness_report(decisions: Iterable[RoutingDecision], weights: Mapping[str, int]) -> FairnessReport:
    """Compare the assignments per person with their weights.

    ``expected_i = N x w_i / sum(w)`` where ``N`` counts the decisions that chose one of the weighted
    users, and ``deviation_i = (assigned_i - expected_i) / expected_i``.

    Raises:
        RuleError: If every weight is zero or one is negative.
    """
    if any(weight < 0 for weight in weights.values()):
        msg = "weights must not be negative"
        raise RuleError(msg, "weights")
    total_weight = sum(weights.values())
    if total_weight == 0:
        msg = "every weight is zero"
        raise RuleError(msg, "weights")
    counts = dict.fromkeys(weights, 0)
    for decision in decisions:
        if decision.owner_id in counts:
            counts[decision.owner_id] += 1
    total = sum(counts.values())
    rows = []
    for user_id in sorted(weights):
        expected = total * weights[user_id] / total_weight
        deviation = (counts[user_id] - expected) / expected if expected else None
        rows.append(FairnessRow(user_id, weights[user_id], counts[user_id], expected, deviation))
    deviations = [abs(row.deviation) for row in rows if row.deviation is not None]
    return FairnessReport(total, tuple(rows), max(deviations) if deviations else None)
