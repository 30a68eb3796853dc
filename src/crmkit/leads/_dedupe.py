"""Duplicate matching through blocking indexes, merge with survivorship rules, and undo (private)."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from difflib import SequenceMatcher
from typing import Any, NamedTuple, TypeVar

import attrs

from crmkit import clock as _clock
from crmkit._json import read_enum, read_list, read_mapping, read_number, read_object, read_str
from crmkit._validation import replace
from crmkit.entities import Channel, Entity, EntityRef, Lead
from crmkit.errors import Problem, RuleError, ValidationError
from crmkit.events import DomainEvent, EntityCreated, EntityDeleted, EntityUpdated, register_event
from crmkit.leads._capture import FREE_MAIL_DOMAINS, CapturedLead
from crmkit.serialization import from_data, to_data

__all__ = [
    "DEFAULT_RULES",
    "MATCH_KEYS",
    "DuplicateMatch",
    "MatchIndex",
    "MatchRule",
    "MergePolicy",
    "MergeRecord",
    "MergeResult",
    "Merged",
    "OnDuplicate",
    "Survivorship",
    "UndoResult",
    "Unmerged",
    "merge_records",
    "screen_duplicates",
    "undo_merge",
]

E = TypeVar("E", bound=Entity)

DUPLICATE_TAG = "possible_duplicate"
_MAX_BLOCK = 500  # fuzzy comparisons per blocking key; a bigger block is a key too common to block on


def _read(record: Any, name: str) -> Any:
    if record.__class__ is dict or isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def _email_key(record: Any) -> str | None:
    value = record.get("email") if record.__class__ is dict else _read(record, "email")
    return value.lower() if isinstance(value, str) and value else None


def _phone_key(record: Any) -> str | None:
    value = record.get("phone") if record.__class__ is dict else _read(record, "phone")
    return value if isinstance(value, str) and value else None


def _name_key(record: Any) -> str | None:
    parts = [_read(record, "first_name"), _read(record, "last_name")]
    name = " ".join(part for part in parts if isinstance(part, str) and part).casefold()
    return name or None


def _domain_key(record: Any) -> str | None:
    value = _read(record, "domain")
    if isinstance(value, str) and value:
        return value
    email = _email_key(record)
    if email is None:
        return None
    domain = email.rsplit("@", 1)[-1]
    return None if domain in FREE_MAIL_DOMAINS else domain


def _company_key(record: Any) -> str | None:
    value = _read(record, "company")
    return " ".join(value.casefold().split()) if isinstance(value, str) and value.strip() else None


#: The keys match rules may use, and how each is read from a lead, a contact or a mapping: ``email``
#: (lower-cased), ``phone`` (E.164 as stored), ``name`` (first and last, case-folded), ``domain`` (the
#: company domain, else a business email's domain) and ``company`` (case-folded, spaces collapsed).
MATCH_KEYS: Mapping[str, Callable[[Any], str | None]] = {
    "email": _email_key,
    "phone": _phone_key,
    "name": _name_key,
    "domain": _domain_key,
    "company": _company_key,
}


def _keys(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class MatchRule:
    """When two records are the same person.

    An exact rule matches when every key in ``keys`` is present and equal. A fuzzy rule also needs the
    ``similar`` key to be alike: a similarity (``difflib``'s ratio, 0 to 1) of at least ``threshold``.
    The ``keys`` are the blocking keys: only records sharing them are ever compared, so matching
    costs a dictionary lookup per rule, never a comparison with every record.

    Attributes:
        name: A unique name, quoted in every match.
        keys: Blocking keys that must be equal (names from :data:`MATCH_KEYS`).
        similar: The key compared fuzzily, for a fuzzy rule.
        threshold: The least similarity, from 0 to 1.
    """

    name: str
    keys: tuple[str, ...] = attrs.field(converter=_keys)
    similar: str | None = None
    threshold: float = 0.9

    def __attrs_post_init__(self) -> None:
        if not self.name.strip():
            msg = "a match rule needs a name"
            raise RuleError(msg, "name")
        if not self.keys:
            msg = "a match rule needs at least one blocking key"
            raise RuleError(msg, "keys")
        for index, key in enumerate(self.keys):
            if key not in MATCH_KEYS:
                msg = f"unknown match key {key!r}; one of: {', '.join(MATCH_KEYS)}"
                raise RuleError(msg, f"keys[{index}]")
        if self.similar is not None and self.similar not in MATCH_KEYS:
            msg = f"unknown match key {self.similar!r}; one of: {', '.join(MATCH_KEYS)}"
            raise RuleError(msg, "similar")
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int | float)
            or not 0 < self.threshold <= 1
        ):
            msg = f"a threshold is above 0 and at most 1, got {self.threshold!r}"
            raise RuleError(msg, "threshold")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        data: dict[str, Any] = {"name": self.name, "keys": list(self.keys), "threshold": self.threshold}
        if self.similar is not None:
            data["similar"] = self.similar
        return data

    @classmethod
    def from_json(cls, data: Any) -> MatchRule:
        """Build a rule from its JSON form.

        Raises:
            RuleError: At the path of the problem.
        """
        fields = read_object(data, {"name", "keys", "similar", "threshold"}, ("name", "keys"))
        read_str(fields["name"], "name")
        fields["keys"] = read_list(fields["keys"], "keys", lambda item: read_str(item, ""))
        if fields.get("similar") is not None:
            read_str(fields["similar"], "similar")
        if "threshold" in fields:
            read_number(fields["threshold"], "threshold")
        return cls(**fields)


#: The usual rules: the same email, the same phone, or a similar name at the same company domain.
DEFAULT_RULES: tuple[MatchRule, ...] = (
    MatchRule(name="email", keys=("email",)),
    MatchRule(name="phone", keys=("phone",)),
    MatchRule(name="name_and_domain", keys=("domain",), similar="name", threshold=0.85),
)


class DuplicateMatch(NamedTuple):
    """A record an incoming one matches.

    Attributes:
        rule: The name of the rule that matched.
        kind: The kind of the record matched (``"lead"``, ``"contact"``).
        id: Its id.
        similarity: 1 for an exact rule; the fuzzy similarity otherwise.
        key: The blocking key both share (``"email"``), for the explanation.
    """

    rule: str
    kind: str
    id: str
    similarity: float
    key: str

    @property
    def record(self) -> EntityRef:
        """The record matched, as a reference."""
        return EntityRef(self.kind, self.id)


class MatchIndex:
    """An index of known leads and contacts by each rule's blocking keys.

    Add the existing records once (:meth:`add_many`), then :meth:`find` the matches of each incoming
    lead: a dictionary lookup per rule, plus fuzzy comparisons within the (small) block.

    Args:
        rules: The match rules; :data:`DEFAULT_RULES` (email, phone, name and domain) by default.

    Raises:
        RuleError: Two rules with one name.
    """

    __slots__ = ("_indexes", "_plans", "_rules", "_size")

    def __init__(self, rules: Sequence[MatchRule] = DEFAULT_RULES) -> None:
        names = [rule.name for rule in rules]
        for index, name in enumerate(names):
            if name in names[:index]:
                msg = f"a second rule named {name!r}"
                raise RuleError(msg, f"rules[{index}].name")
        self._rules = tuple(rules)
        self._indexes: list[dict[Any, Any]] = [{} for _ in self._rules]
        # Per rule: its index, its key readers (one reader alone when the key is single), its fuzzy reader.
        self._plans = [
            (
                rule,
                index,
                tuple(MATCH_KEYS[key] for key in rule.keys),
                MATCH_KEYS[rule.keys[0]] if len(rule.keys) == 1 else None,
                MATCH_KEYS[rule.similar] if rule.similar else None,
                "+".join(rule.keys),
            )
            for rule, index in zip(self._rules, self._indexes, strict=True)
        ]
        self._size = 0

    @property
    def rules(self) -> tuple[MatchRule, ...]:
        """The match rules."""
        return self._rules

    def __len__(self) -> int:
        return self._size

    def add(self, record: Any) -> None:
        """Index one record (a lead, a contact, or a mapping with ``kind`` and ``id``)."""
        self.add_many((record,))

    def add_many(self, records: Iterable[Any]) -> None:
        """Index many records (leads, contacts, or mappings with ``kind`` and ``id``)."""
        count = 0
        for record in records:
            ref = (_read(record, "kind") or "lead", _read(record, "id"))
            count += 1
            for _, index, readers, single, similar, _ in self._plans:
                block = single(record) if single is not None else _block(readers, record)
                if block is None:
                    continue
                entry = ref if similar is None else (ref, similar(record))
                found = index.get(block)
                if found is None:
                    index[block] = entry
                elif found.__class__ is list:
                    found.append(entry)
                else:
                    index[block] = [found, entry]
        self._size += count

    def find(self, record: Any) -> tuple[DuplicateMatch, ...]:
        """The records that ``record`` matches, best first (exact before fuzzy), each once.

        A record never matches itself (the same kind and id).
        """
        own = (_read(record, "kind") or "lead", _read(record, "id"))
        matches: dict[tuple[str, str], DuplicateMatch] = {}
        for rule, index, readers, single, similar, key_text in self._plans:
            block = single(record) if single is not None else _block(readers, record)
            found = index.get(block) if block is not None else None
            if found is None:
                continue
            if similar is not None:
                _fuzzy_matches(rule, record, found if found.__class__ is list else [found], own, matches)
            elif found.__class__ is not list:
                if found != own and found not in matches:
                    matches[found] = DuplicateMatch(rule.name, found[0], found[1], 1.0, key_text)
            else:
                for ref in found:
                    if ref != own and ref not in matches:
                        matches[ref] = DuplicateMatch(rule.name, ref[0], ref[1], 1.0, key_text)
        if len(matches) < 2:  # noqa: PLR2004 - nothing to order
            return tuple(matches.values())
        return tuple(sorted(matches.values(), key=lambda match: -match.similarity))


def _block(readers: Sequence[Callable[[Any], str | None]], record: Any) -> Any:
    """The blocking key of a record for one rule: one value, a tuple of values, or ``None``."""
    if len(readers) == 1:
        return readers[0](record)
    parts = tuple(read(record) for read in readers)
    return None if None in parts else parts


def _fuzzy_matches(
    rule: MatchRule,
    record: Any,
    entries: Sequence[Any],
    own: tuple[Any, Any],
    matches: dict[tuple[str, str], DuplicateMatch],
) -> None:
    """Add the entries of a block whose ``similar`` key is alike enough (cheap upper bounds first)."""
    assert rule.similar is not None  # noqa: S101 - only fuzzy rules come here
    mine = MATCH_KEYS[rule.similar](record)
    if mine is None:
        return
    key_text = "+".join(rule.keys)
    matcher = SequenceMatcher(None, b=mine)
    for ref, theirs in entries[:_MAX_BLOCK]:
        if ref == own or ref in matches or theirs is None:
            continue
        matcher.set_seq1(theirs)
        if matcher.real_quick_ratio() < rule.threshold or matcher.quick_ratio() < rule.threshold:
            continue
        similarity = matcher.ratio()
        if similarity >= rule.threshold:
            matches[ref] = DuplicateMatch(rule.name, ref[0], ref[1], round(similarity, 4), key_text)


# -- merge -------------------------------------------------------------------------------------------


class Survivorship(enum.StrEnum):
    """Which record's value a merged field keeps.

    * ``newest``: from the most recently updated record that has one.
    * ``oldest``: from the earliest created record that has one.
    * ``non_empty``: the survivor's, unless empty; then the newest other value.
    * ``longest``: the longest text.
    * ``source_priority``: from the record whose ``source`` comes first in the policy's priority list.
    """

    NEWEST = "newest"
    OLDEST = "oldest"
    NON_EMPTY = "non_empty"
    LONGEST = "longest"
    SOURCE_PRIORITY = "source_priority"


class OnDuplicate(enum.StrEnum):
    """What capture does with a lead that matches a known record."""

    MERGE = "merge"
    FLAG = "flag"
    REJECT = "reject"


def _field_rules(value: Mapping[str, Survivorship | str]) -> Mapping[str, Survivorship]:
    return {name: Survivorship(rule) for name, rule in value.items()}


def _channels(value: Iterable[Channel | str]) -> tuple[Channel, ...]:
    return tuple(Channel(item) for item in value)


_NEVER_MERGED = frozenset({"id", "created_at", "updated_at", "version", "stage", "stage_history"})


@attrs.frozen(kw_only=True)
class MergePolicy:
    """How records are merged.

    Attributes:
        default: The survivorship rule of every field not named in ``fields``.
        fields: Field name -> its survivorship rule.
        source_priority: Channels, most trusted first, for ``source_priority``.
        survivor: Which record keeps its id: ``"oldest"`` (created first) or ``"newest"``.

    Raises:
        RuleError: An unknown rule or channel, or ``source_priority`` rules without a priority list.
    """

    default: Survivorship = attrs.field(default=Survivorship.NON_EMPTY, converter=Survivorship)
    fields: Mapping[str, Survivorship] = attrs.field(factory=dict, converter=_field_rules)
    source_priority: tuple[Channel, ...] = attrs.field(default=(), converter=_channels)
    survivor: str = "oldest"

    def __attrs_post_init__(self) -> None:
        if self.survivor not in {"oldest", "newest"}:
            msg = f"survivor is 'oldest' or 'newest', got {self.survivor!r}"
            raise RuleError(msg, "survivor")
        uses_priority = (
            self.default is Survivorship.SOURCE_PRIORITY
            or Survivorship.SOURCE_PRIORITY in self.fields.values()
        )
        if uses_priority and not self.source_priority:
            msg = "source_priority rules need the channels in order of trust"
            raise RuleError(msg, "source_priority")
        for name in self.fields:
            if name in _NEVER_MERGED:
                msg = f"{name!r} is never merged: the survivor keeps its own"
                raise RuleError(msg, f"fields.{name}")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "default": self.default.value,
            "fields": {name: rule.value for name, rule in self.fields.items()},
            "source_priority": [channel.value for channel in self.source_priority],
            "survivor": self.survivor,
        }

    @classmethod
    def from_json(cls, data: Any) -> MergePolicy:
        """Build a policy from its JSON form.

        Raises:
            RuleError: At the path of the problem, such as ``fields.email``.
        """
        fields = read_object(data, {"default", "fields", "source_priority", "survivor"})
        if "fields" in fields:
            fields["fields"] = read_mapping(
                fields["fields"], "fields", lambda value, where: read_enum(value, Survivorship, where)
            )
        if "default" in fields:
            fields["default"] = read_enum(fields["default"], Survivorship, "default")
        if "source_priority" in fields:
            fields["source_priority"] = read_list(
                fields["source_priority"], "source_priority", lambda value: read_enum(value, Channel, "")
            )
        if "survivor" in fields:
            read_str(fields["survivor"], "survivor")
        return cls(**fields)


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, frozenset | tuple | dict) and not value)


@attrs.frozen
class MergeRecord:
    """What a merge did, enough to audit it and to undo it.

    Attributes:
        survivor: The record that remains.
        merged: The records merged into it (deleted).
        choices: ``(field, id of the record the kept value came from, rule)`` per field that changed.
        before: Each record's data before the merge (survivor first), as the converter writes it.
        moved: ``(kind, id, field, old reference)`` per related record re-pointed to the survivor.
        at: When the merge happened.
    """

    survivor: EntityRef
    merged: tuple[EntityRef, ...]
    choices: tuple[tuple[str, str, str], ...]
    before: tuple[dict[str, Any], ...]
    moved: tuple[tuple[str, str, str, dict[str, Any] | str], ...]
    at: datetime

    def to_json(self) -> str:
        """Return the record as a JSON string (what the ``Merged`` event carries)."""
        return json.dumps(
            {
                "survivor": [self.survivor.kind, self.survivor.id],
                "merged": [[ref.kind, ref.id] for ref in self.merged],
                "choices": [list(choice) for choice in self.choices],
                "before": list(self.before),
                "moved": [list(item) for item in self.moved],
                "at": self.at.isoformat(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> MergeRecord:
        """Read a record back from :meth:`to_json`'s output (for example from the audit log)."""
        data = json.loads(text)
        return cls(
            EntityRef(*data["survivor"]),
            tuple(EntityRef(*ref) for ref in data["merged"]),
            tuple(tuple(choice) for choice in data["choices"]),
            tuple(data["before"]),
            tuple(tuple(item) for item in data["moved"]),
            datetime.fromisoformat(data["at"]),
        )


@register_event("records_merged")
@attrs.frozen(kw_only=True)
class Merged(DomainEvent):
    """Records were merged into one (the event's ``entity`` is the survivor).

    Attributes:
        merged: The records merged into the survivor.
        record: The :class:`MergeRecord` as JSON, so the audit log holds what undo needs.
    """

    merged: tuple[EntityRef, ...] = ()
    record: str = "{}"


@register_event("merge_undone")
@attrs.frozen(kw_only=True)
class Unmerged(DomainEvent):
    """A merge was undone: the merged records are back (the event's ``entity`` is the survivor).

    Attributes:
        restored: The records restored.
    """

    restored: tuple[EntityRef, ...] = ()


@attrs.frozen
class MergeResult:
    """A merge: what to save, what to delete, and the audit record.

    Attributes:
        survivor: The survivor with the merged values.
        retired: The records merged into it; delete them.
        moved: Related activities, tasks and consents re-pointed to the survivor; update them.
        record: What the merge did (also inside the ``Merged`` event).
        events: ``EntityUpdated`` for the survivor and each moved record, ``EntityDeleted`` for each
            retired one, ``EntityCreated`` for each new record, and ``Merged``.
        new_records: Records to add: when a just-captured lead is merged into a stored one, the consents
            captured with it, already pointing at the survivor (the captured lead itself is never stored).
    """

    survivor: Entity
    retired: tuple[Entity, ...]
    moved: tuple[Entity, ...]
    record: MergeRecord
    events: tuple[DomainEvent, ...]
    new_records: tuple[Entity, ...] = ()


def _pick(  # noqa: PLR0911 - one return per rule
    rule: Survivorship, name: str, survivor: Entity, ordered: Sequence[Entity], policy: MergePolicy
) -> Entity | None:
    """The record whose value of ``name`` survives (``None``: every value is empty)."""
    having = [record for record in ordered if not _empty(getattr(record, name))]
    if not having:
        return None
    if rule is Survivorship.NON_EMPTY:
        if survivor in having:
            return survivor
        return max(having, key=lambda record: record.updated_at)
    if rule is Survivorship.NEWEST:
        return max(having, key=lambda record: record.updated_at)
    if rule is Survivorship.OLDEST:
        return min(having, key=lambda record: record.created_at)
    if rule is Survivorship.LONGEST:
        return max(having, key=lambda record: len(str(getattr(record, name))))
    ranks: dict[Any, int] = {channel: index for index, channel in enumerate(policy.source_priority)}
    return min(having, key=lambda record: ranks.get(getattr(record, "source", None), len(ranks)))


_REF_FIELDS = ("regarding", "subject")
_ID_FIELDS = ("contact_id",)


def _move(
    related: Entity, retired: Mapping[tuple[str, str], Entity], survivor: Entity
) -> tuple[Entity, list[tuple[str, str, str, Any]]]:
    changes: dict[str, Any] = {}
    notes: list[tuple[str, str, str, Any]] = []
    for name in _REF_FIELDS:
        ref = getattr(related, name, None)
        if isinstance(ref, EntityRef) and (ref.kind, ref.id) in retired:
            changes[name] = EntityRef.to(survivor)
            notes.append((related.kind, related.id, name, {"kind": ref.kind, "id": ref.id}))
    if survivor.kind == "contact":
        for name in _ID_FIELDS:
            value = getattr(related, name, None)
            if isinstance(value, str) and ("contact", value) in retired:
                changes[name] = survivor.id
                notes.append((related.kind, related.id, name, value))
    if not changes:
        return related, []
    return replace(related, **changes), notes


def merge_records(
    records: Sequence[E],
    policy: MergePolicy | None = None,
    *,
    related: Iterable[Entity] = (),
    at: datetime | None = None,
    actor: str | None = None,
) -> MergeResult:
    """Merge duplicate records of one kind into one survivor, field by field.

    Each field keeps the value its survivorship rule picks; tags are united and custom fields are
    merged key by key with the same rules. Activities, tasks and consents in ``related`` that refer to
    a merged record (``regarding``, ``subject``, ``contact_id``) are re-pointed to the survivor.

    Args:
        records: Two or more records of one kind (say, leads).
        policy: The survivorship rules; ``non_empty`` for every field by default.
        related: Records that may refer to the merged ones.
        at: When the merge happens; the current clock's time by default.
        actor: Who merged, for the events.

    Raises:
        ValidationError: Fewer than two records, records of different kinds, or one id twice.
    """
    policy = policy or MergePolicy()
    moment = at or _clock.now()
    if len(records) < 2:  # noqa: PLR2004 - a merge needs two records
        raise ValidationError.single("records", "a merge needs at least two records")
    kinds = {record.kind for record in records}
    if len(kinds) != 1:
        raise ValidationError.single("records", f"records of one kind only, got {', '.join(sorted(kinds))}")
    if len({record.id for record in records}) != len(records):
        raise ValidationError.single("records", "the same record is given twice")
    by_age = sorted(records, key=lambda record: (record.created_at, record.id))
    survivor = by_age[0] if policy.survivor == "oldest" else by_age[-1]
    others = [record for record in by_age if record is not survivor]
    ordered = [survivor, *others]
    changes, choices = _merged_fields(survivor, ordered, policy)
    if changes:
        changes["updated_at"] = max(moment, survivor.updated_at)
    merged = replace(survivor, **changes) if changes else survivor
    retired = {(record.kind, record.id): record for record in others}
    moved: list[Entity] = []
    moved_notes: list[tuple[str, str, str, Any]] = []
    for item in related:
        new, notes = _move(item, retired, merged)
        if notes:
            moved.append(replace(new, updated_at=max(moment, new.updated_at)))
            moved_notes.extend(notes)
    record = MergeRecord(
        EntityRef.to(merged),
        tuple(EntityRef.to(other) for other in others),
        tuple(choices),
        tuple(to_data(item) for item in ordered),
        tuple(moved_notes),
        moment,
    )
    events: list[DomainEvent] = []
    if changes:
        events.append(
            EntityUpdated(
                entity=EntityRef.to(merged), changed=tuple(c[0] for c in choices), at=moment, actor=actor
            )
        )
    events += [EntityDeleted(entity=EntityRef.to(other), at=moment, actor=actor) for other in others]
    events += [
        EntityUpdated(entity=EntityRef.to(item), changed=("reference",), at=moment, actor=actor)
        for item in moved
    ]
    events.append(
        Merged(
            entity=EntityRef.to(merged), merged=record.merged, record=record.to_json(), at=moment, actor=actor
        )
    )
    return MergeResult(merged, tuple(others), tuple(moved), record, tuple(events))


def _merged_fields(
    survivor: Entity, ordered: Sequence[Entity], policy: MergePolicy
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """The survivor's changed fields, and per field where its value came from and by which rule."""
    changes: dict[str, Any] = {}
    choices: list[tuple[str, str, str]] = []
    for attribute in attrs.fields(type(survivor)):
        name = attribute.name
        if name in _NEVER_MERGED or name.startswith("converted_"):
            continue
        if name == "tags":
            united = frozenset().union(*(record.tags for record in ordered))
            if united != survivor.tags:
                changes[name] = united
                choices.append((name, "*", "union"))
            continue
        if name == "custom_fields":
            merged_custom = _merge_custom(survivor, ordered, policy)
            if merged_custom != survivor.custom_fields:
                changes[name] = merged_custom
                choices.append((name, "*", "per key"))
            continue
        rule = policy.fields.get(name, policy.default)
        source = _pick(rule, name, survivor, ordered, policy)
        if source is not None and source is not survivor and getattr(source, name) != getattr(survivor, name):
            changes[name] = getattr(source, name)
            choices.append((name, source.id, rule.value))
    return changes, choices


def _merge_captured(existing: Lead, captured: CapturedLead, policy: MergePolicy | None) -> MergeResult:
    """Merge a just-captured lead (never stored) into a stored one: nothing to delete, consents to add."""
    at = captured.lead.created_at
    result = merge_records([existing, captured.lead], policy, related=captured.consents, at=at)
    if result.survivor.id != existing.id:  # the policy kept the newer record: the captured lead is new
        return result
    fresh = captured.lead.id
    events = [
        event
        for event in result.events
        if not (isinstance(event, EntityDeleted | EntityUpdated) and event.entity.kind == "consent")
        and not (isinstance(event, EntityDeleted) and event.entity.id == fresh)
    ]
    created = [EntityCreated(entity=EntityRef.to(consent), at=at) for consent in result.moved]
    return MergeResult(result.survivor, (), (), result.record, (*created, *events), result.moved)


def _merge_custom(survivor: Entity, ordered: Sequence[Entity], policy: MergePolicy) -> dict[str, Any]:
    result = dict(survivor.custom_fields)
    keys = dict.fromkeys(key for record in ordered for key in record.custom_fields)
    rule = policy.default
    for key in keys:
        having = [record for record in ordered if not _empty(record.custom_fields.get(key))]
        if not having:
            continue
        if rule is Survivorship.NEWEST:
            source = max(having, key=lambda record: record.updated_at)
        elif rule is Survivorship.OLDEST:
            source = min(having, key=lambda record: record.created_at)
        else:
            source = survivor if survivor in having else having[0]
        result[key] = source.custom_fields[key]
    return result


@attrs.frozen
class UndoResult:
    """What undoing a merge gives back.

    Attributes:
        survivor: The survivor with its values from before the merge (at its current version).
        restored: The merged records, as they were (version 0: add them again).
        moved_back: The related records pointed at their original record again.
        events: ``EntityUpdated`` per changed record and ``Unmerged``.
    """

    survivor: Entity
    restored: tuple[Entity, ...]
    moved_back: tuple[Entity, ...]
    events: tuple[DomainEvent, ...]


def undo_merge(
    record: MergeRecord,
    survivor: Entity,
    related: Iterable[Entity] = (),
    *,
    at: datetime | None = None,
    actor: str | None = None,
) -> UndoResult:
    """Undo a merge from its record: restore the survivor's fields, the merged records and the references.

    Args:
        record: The merge record (from :class:`MergeResult` or read back from a ``Merged`` event).
        survivor: The survivor as stored now.
        related: The related records as stored now (those the merge moved).
        at: When the undo happens; the current clock's time by default.
        actor: Who undid it.

    Raises:
        ValidationError: The survivor is not the record's survivor.
    """
    moment = at or _clock.now()
    if EntityRef.to(survivor) != record.survivor:
        raise ValidationError.single(
            "survivor", f"the merge's survivor is {record.survivor.kind} {record.survivor.id}"
        )
    cls = type(survivor)
    original = from_data(cls, record.before[0])
    restored_fields = {
        attribute.name: getattr(original, attribute.name)
        for attribute in attrs.fields(cls)
        if attribute.name not in {"id", "created_at", "updated_at", "version"}
    }
    back = replace(survivor, **restored_fields, updated_at=max(moment, survivor.updated_at))
    restored = tuple(attrs.evolve(from_data(cls, data), version=0) for data in record.before[1:])
    notes = {(kind, rid, name): old for kind, rid, name, old in record.moved}
    moved_back = []
    for item in related:
        changes = {
            name: EntityRef(**old) if isinstance(old, dict) else old
            for (kind, rid, name), old in notes.items()
            if (kind, rid) == (item.kind, item.id)
        }
        if changes:
            moved_back.append(replace(item, **changes, updated_at=max(moment, item.updated_at)))
    events: list[DomainEvent] = [
        EntityUpdated(entity=EntityRef.to(back), changed=("merge_undone",), at=moment, actor=actor)
    ]
    events += [
        EntityUpdated(entity=EntityRef.to(item), changed=("reference",), at=moment, actor=actor)
        for item in moved_back
    ]
    events.append(
        Unmerged(
            entity=EntityRef.to(back),
            restored=tuple(EntityRef.to(r) for r in restored),
            at=moment,
            actor=actor,
        )
    )
    return UndoResult(back, restored, tuple(moved_back), tuple(events))


# -- capture with duplicate screening --------------------------------------------------------------


def screen_duplicates(
    captured: CapturedLead,
    index: MatchIndex,
    on_duplicate: OnDuplicate | str,
    *,
    fetch: Callable[[EntityRef], Entity] | None = None,
    policy: MergePolicy | None = None,
) -> CapturedLead | MergeResult:
    """Check a captured lead against the index and merge, flag or reject it as configured.

    * ``reject``: a ``ValidationError`` at the matched key (``email``), naming the record matched.
    * ``flag``: the lead is kept, tagged ``possible_duplicate`` with ``duplicate_of`` (the best
      match's id) in its custom fields.
    * ``merge``: the new lead is merged into the best matching lead (fetched with ``fetch``); its
      consents move to the survivor. A match that is a contact cannot absorb a lead, so it is flagged.

    Without a match, the captured lead is returned unchanged.

    Raises:
        ValidationError: A duplicate in ``reject`` mode, or ``merge`` without ``fetch``.
    """
    mode = OnDuplicate(on_duplicate)
    matches = index.find(captured.lead)
    if not matches:
        return captured
    best = matches[0]
    if mode is OnDuplicate.REJECT:
        path = best.key.split("+")[0]
        matched = f"{best.record.kind} {best.record.id}"
        message = f"duplicates {matched} (rule {best.rule!r}, similarity {best.similarity})"
        raise ValidationError([Problem(path, message)])
    lead_match = next((match for match in matches if match.record.kind == "lead"), None)
    if mode is OnDuplicate.MERGE and lead_match is not None:
        if fetch is None:
            raise ValidationError.single("fetch", "merging needs a way to fetch the matched lead")
        existing = fetch(lead_match.record)
        if not isinstance(existing, Lead):
            raise ValidationError.single(
                "fetch", f"expected the lead {lead_match.record.id}, got {type(existing).__name__}"
            )
        return _merge_captured(existing, captured, policy)
    tags = captured.lead.tags | {DUPLICATE_TAG}
    custom = {**captured.lead.custom_fields, "duplicate_of": best.record.id}
    flagged = replace(captured.lead, tags=tags, custom_fields=custom)
    return CapturedLead(flagged, captured.consents, captured.events)
