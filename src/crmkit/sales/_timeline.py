"""The customer timeline: one ordered, paginated view of everything that happened with a customer."""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

import attrs

from crmkit.conditions import Condition, all_, any_, field, not_
from crmkit.entities import (
    Activity,
    ActivityKind,
    Consent,
    ConsentStatus,
    Contact,
    Entity,
    EntityRef,
    Opportunity,
    Order,
    Quote,
    StageChange,
    Ticket,
)
from crmkit.errors import ValidationError

__all__ = [
    "RecordQuery",
    "RecordSource",
    "TimelineEntry",
    "TimelineKind",
    "TimelinePage",
    "customer_timeline",
]

E = TypeVar("E", bound=Entity)
E_co = TypeVar("E_co", bound=Entity, covariant=True)
_MAX_LIMIT = 1_000


class _Page(Protocol[E_co]):
    @property
    def items(self) -> tuple[E_co, ...]: ...

    @property
    def next_cursor(self) -> str | None: ...


class RecordQuery(Protocol[E_co]):
    """The query shape the timeline needs of one record type: what ``tx[Activity]`` of a store offers."""

    def query(
        self,
        where: Condition | None = None,
        *,
        order_by: Sequence[str | tuple[str, Literal["asc", "desc"]]] = (),
        limit: int = 100,
        after: str | None = None,
    ) -> _Page[E_co]:
        """Return one page of the records for which ``where`` holds, in ``order_by`` order."""
        ...


class RecordSource(Protocol):
    """Where the timeline reads records from: a store transaction (``store.transaction()``) fits."""

    def __getitem__(self, entity_class: type[E]) -> RecordQuery[E]:
        """The records of one entity class."""
        ...


class TimelineKind(enum.StrEnum):
    """What a timeline entry is."""

    ACTIVITY = "activity"
    EMAIL = "email"
    CALL = "call"
    MEETING = "meeting"
    CAMPAIGN_TOUCH = "campaign_touch"
    TICKET = "ticket"
    ORDER = "order"
    QUOTE = "quote"
    STAGE_CHANGE = "stage_change"
    CONSENT_CHANGE = "consent_change"


@attrs.frozen(kw_only=True)
class TimelineEntry:
    """One thing that happened with the customer.

    Attributes:
        at: When it happened.
        kind: What it is.
        summary: One line for people.
        record: The record it comes from.
        entity: That record itself.
        change: For a stage change, the history entry.
    """

    at: datetime
    kind: TimelineKind
    summary: str
    record: EntityRef
    entity: Entity = attrs.field(repr=False)
    change: StageChange | None = None
    _source: str = attrs.field(alias="source", repr=False)
    _seq: int = attrs.field(default=0, alias="seq", repr=False)

    def _key(self) -> tuple[float, str, str, int]:
        return (-self.at.timestamp(), self._source, self.record.id, self._seq)


@attrs.frozen
class TimelinePage:
    """One page of a timeline, newest first.

    Attributes:
        entries: The entries on this page.
        next_cursor: Pass it as ``after=`` for the next page; ``None`` on the last page.
    """

    entries: tuple[TimelineEntry, ...]
    next_cursor: str | None


_ACTIVITY_KINDS = {
    ActivityKind.EMAIL: TimelineKind.EMAIL,
    ActivityKind.CALL: TimelineKind.CALL,
    ActivityKind.MEETING: TimelineKind.MEETING,
}


def _entry(record: Any, at: datetime, kind: TimelineKind, summary: str, source: str) -> TimelineEntry:
    """The one entry a record of a kind with one moment on the timeline gives."""
    ref = EntityRef.to(record)
    return TimelineEntry(at=at, kind=kind, summary=summary, record=ref, entity=record, source=source)


def _activity_entry(activity: Activity) -> Iterator[TimelineEntry]:
    if activity.regarding is not None and activity.regarding.kind == "campaign":
        kind = TimelineKind.CAMPAIGN_TOUCH
    else:
        kind = _ACTIVITY_KINDS.get(activity.activity_type, TimelineKind.ACTIVITY)
    direction = f" ({activity.direction})" if activity.direction else ""
    summary = f"{activity.activity_type}{direction}: {activity.subject or ''}".rstrip(": ")
    yield _entry(activity, activity.occurred_at, kind, summary, "activity")


def _ticket_entry(ticket: Ticket) -> Iterator[TimelineEntry]:
    summary = f"ticket opened: {ticket.subject} ({ticket.stage})"
    yield _entry(ticket, ticket.created_at, TimelineKind.TICKET, summary, "ticket")


def _order_entry(order: Order) -> Iterator[TimelineEntry]:
    summary = f"order {order.number}: {order.total} ({order.status})"
    yield _entry(order, order.ordered_at, TimelineKind.ORDER, summary, "order")


def _quote_entry(quote: Quote) -> Iterator[TimelineEntry]:
    summary = f"quote {quote.number} rev. {quote.revision}: {quote.total} ({quote.stage})"
    yield _entry(quote, quote.created_at, TimelineKind.QUOTE, summary, "quote")


def _stage_entries(record: Entity) -> Iterator[TimelineEntry]:
    history: tuple[StageChange, ...] = getattr(record, "stage_history", ())
    name = getattr(record, "full_name", None) or getattr(record, "name", None) or record.id
    for seq, change in enumerate(history):
        summary = f"{record.kind} {name}: {change.from_stage or 'start'} -> {change.to_stage}"
        yield TimelineEntry(
            at=change.at,
            kind=TimelineKind.STAGE_CHANGE,
            summary=summary,
            record=EntityRef.to(record),
            entity=record,
            change=change,
            source=f"stage_{record.kind}",
            seq=seq,
        )


def _consent_entries(consent: Consent) -> Iterator[TimelineEntry]:
    ref = EntityRef.to(consent)
    first = ConsentStatus.GRANTED if consent.status is ConsentStatus.WITHDRAWN else consent.status
    yield TimelineEntry(
        at=consent.captured_at,
        kind=TimelineKind.CONSENT_CHANGE,
        summary=f"consent {consent.purpose}: {first}",
        record=ref,
        entity=consent,
        source="consent",
    )
    if consent.withdrawn_at is not None:
        yield TimelineEntry(
            at=consent.withdrawn_at,
            kind=TimelineKind.CONSENT_CHANGE,
            summary=f"consent {consent.purpose}: withdrawn",
            record=ref,
            entity=consent,
            source="consent",
            seq=1,
        )


@attrs.frozen
class _Source:
    """A record type on the timeline: how to find a customer's records and turn them into entries."""

    name: str
    cls: type[Entity]
    time_field: str | None  # None: few records per customer, loaded whole and expanded in memory
    kinds: frozenset[TimelineKind]
    entries: Callable[[Any], Iterator[TimelineEntry]]


_SOURCES = (
    _Source(
        "activity",
        Activity,
        "occurred_at",
        frozenset({*_ACTIVITY_KINDS.values(), TimelineKind.ACTIVITY, TimelineKind.CAMPAIGN_TOUCH}),
        _activity_entry,
    ),
    _Source("consent", Consent, None, frozenset({TimelineKind.CONSENT_CHANGE}), _consent_entries),
    _Source("order", Order, "ordered_at", frozenset({TimelineKind.ORDER}), _order_entry),
    _Source("quote", Quote, "created_at", frozenset({TimelineKind.QUOTE}), _quote_entry),
    _Source("stage_contact", Contact, None, frozenset({TimelineKind.STAGE_CHANGE}), _stage_entries),
    _Source("stage_opportunity", Opportunity, None, frozenset({TimelineKind.STAGE_CHANGE}), _stage_entries),
    _Source("ticket", Ticket, "created_at", frozenset({TimelineKind.TICKET}), _ticket_entry),
)


def _activity_filter(kinds: frozenset[TimelineKind]) -> Condition | None:
    """The condition selecting the activities of the wanted kinds (``None``: all of them)."""
    every = _SOURCES[0].kinds
    if kinds >= every:
        return None
    campaign = field("regarding.kind").eq("campaign")
    types = [t for t, kind in _ACTIVITY_KINDS.items() if kind in kinds]
    if TimelineKind.ACTIVITY in kinds:
        types.extend(t for t in ActivityKind if t not in _ACTIVITY_KINDS)
    parts: list[Condition] = []
    if types:
        parts.append(all_(field("activity_type").in_([str(t) for t in types]), not_(campaign)))
    if TimelineKind.CAMPAIGN_TOUCH in kinds:
        parts.append(campaign)
    return any_(*parts) if len(parts) > 1 else parts[0]


def _subject_filter(source: _Source, contact_id: str | None, account_id: str | None) -> Condition:
    if source.cls is Consent:
        kind, id_ = ("contact", contact_id) if contact_id is not None else ("account", account_id)
        return field("subject.kind").eq(kind) & field("subject.id").eq(id_)
    if source.cls is Contact:
        if contact_id is not None:
            return field("id").eq(contact_id)
        return field("account_id").eq(account_id)
    if contact_id is not None:
        return field("contact_id").eq(contact_id)
    return field("account_id").eq(account_id)


def _encode(entry: TimelineEntry) -> str:
    key = [entry.at.isoformat(), entry._source, entry.record.id, entry._seq]  # noqa: SLF001 - our own class
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str, str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, source, id_, seq = json.loads(raw)
        moment = datetime.fromisoformat(at)
        if moment.utcoffset() is None or not isinstance(seq, int):
            raise ValueError(cursor)  # noqa: TRY301 - one handler for every malformed cursor
    except (ValueError, TypeError) as exc:
        raise ValidationError.single("after", "not a cursor of a customer timeline") from exc
    return moment, str(source), str(id_), seq


def _after_filter(source: _Source, cursor: tuple[datetime, str, str, int]) -> Condition:
    """The records of ``source`` that come after the cursor in timeline order (time desc, source, id)."""
    at, name, id_, _ = cursor
    time = field(source.time_field or "created_at")
    if source.name > name:
        return time.le(at)
    if source.name < name:
        return time.lt(at)
    return any_(time.lt(at), all_(time.eq(at), field("id").gt(id_)))


def customer_timeline(  # noqa: C901, PLR0912 - one loop over the sources
    store: RecordSource,
    *,
    contact_id: str | None = None,
    account_id: str | None = None,
    kinds: Iterable[TimelineKind | str] | None = None,
    limit: int = 50,
    after: str | None = None,
) -> TimelinePage:
    """Return one page of a contact's or an account's timeline, newest first.

    The timeline merges activities (emails, calls, meetings, campaign touches and the
    rest), tickets, orders, quotes, stage changes of the contact and of its opportunities,
    and consent changes. Records that can be many per customer (activities, tickets,
    orders, quotes) are queried page by page in timeline order, so the store reads only
    about ``limit`` rows of each (through its ``contact_id`` or ``account_id`` index);
    contacts, opportunities and consents, a few per customer, are read whole.

    Order: newest first; equal times by source (``activity``, ``consent``, ``order``,
    ``quote``, ``stage_contact``, ``stage_opportunity``, ``ticket``), then record id.

    Args:
        store: Where to read: a store transaction, or anything with the same query shape.
        contact_id: The contact (give this or ``account_id``).
        account_id: The account.
        kinds: Only these kinds of entries (all by default).
        limit: The page size, 1 to 1,000.
        after: The ``next_cursor`` of the previous page.

    Raises:
        ValidationError: Neither or both of ``contact_id`` and ``account_id`` (``contact_id``), an
            unknown kind (``kinds[1]``), a bad ``limit`` or a cursor from elsewhere (``after``).
    """
    if (contact_id is None) == (account_id is None):
        raise ValidationError.single("contact_id", "give exactly one of contact_id and account_id")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
        raise ValidationError.single("limit", f"must be a whole number from 1 to {_MAX_LIMIT}, got {limit!r}")
    wanted = frozenset(TimelineKind)
    if kinds is not None:
        chosen = []
        for index, kind in enumerate(kinds):
            try:
                chosen.append(TimelineKind(kind))
            except ValueError:
                known = ", ".join(k.value for k in TimelineKind)
                message = f"{kind!r} is not a timeline kind; one of: {known}"
                raise ValidationError.single(f"kinds[{index}]", message) from None  # noqa: EM102 - a path
        wanted = frozenset(chosen)
    cursor = _decode(after) if after is not None else None
    found: list[TimelineEntry] = []
    more = False
    for source in _SOURCES:
        if not wanted & source.kinds:
            continue
        if source.cls is Contact and account_id is not None:
            continue  # an account's contacts have their own timelines
        conditions = [_subject_filter(source, contact_id, account_id)]
        if source.time_field is None:
            for record in _every(store[source.cls], all_(*conditions)):
                found.extend(e for e in source.entries(record) if cursor is None or _is_after(e, cursor))
            continue
        if source.cls is Activity and (narrowed := _activity_filter(wanted)) is not None:
            conditions.append(narrowed)
        if cursor is not None:
            conditions.append(_after_filter(source, cursor))
        page = store[source.cls].query(all_(*conditions), order_by=[(source.time_field, "desc")], limit=limit)
        more = more or page.next_cursor is not None
        for record in page.items:
            found.extend(source.entries(record))
    found = [entry for entry in found if entry.kind in wanted]
    found.sort(key=TimelineEntry._key)  # noqa: SLF001 - our own class
    more = more or len(found) > limit
    entries = tuple(found[:limit])
    return TimelinePage(entries, _encode(entries[-1]) if more and entries else None)


def _is_after(entry: TimelineEntry, cursor: tuple[datetime, str, str, int]) -> bool:
    at, source, id_, seq = cursor
    return entry._key() > (-at.timestamp(), source, id_, seq)  # noqa: SLF001 - our own class


def _every(records: RecordQuery[E], where: Condition) -> Iterator[E]:
    after: str | None = None
    while True:
        page = records.query(where, limit=_MAX_LIMIT, after=after)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor
