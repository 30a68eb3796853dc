"""The customer timeline over real stores (memory and SQLite) and over a hand-written source."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit import (
    Activity,
    Consent,
    Contact,
    EntityRef,
    FixedClock,
    LineItem,
    Money,
    Opportunity,
    Order,
    Quote,
    StageChange,
    Ticket,
)
from crmkit.errors import ValidationError
from crmkit.lifecycle import OPPORTUNITY_LIFECYCLE
from crmkit.sales import TimelineKind, customer_timeline
from crmkit.storage import open_store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def hours(n):
    return T0 + timedelta(hours=n)


def a_history(contact_id, account_id="acc-1"):
    """Everything that happened with Ada, oldest first, plus a stranger's call."""
    ada = Contact(
        id=contact_id,
        first_name="Ada",
        account_id=account_id,
        stage="customer",
        stage_history=[
            StageChange(to_stage="lead", at=hours(0)),
            StageChange(from_stage="lead", to_stage="customer", at=hours(30)),
        ],
        created_at=T0,
    )
    deal = Opportunity(
        name="Engines", account_id=account_id, contact_id=contact_id, stage="prospecting", created_at=T0
    )
    deal, _ = OPPORTUNITY_LIFECYCLE.apply(deal, "qualify", at=hours(5))
    line = LineItem(quantity=1, unit_price=Money(100, "EUR"))
    return [
        ada,
        deal,
        Activity(
            activity_type="email", contact_id=contact_id, occurred_at=hours(1), subject="Hello", created_at=T0
        ),
        Activity(
            activity_type="call",
            direction="outbound",
            contact_id=contact_id,
            occurred_at=hours(2),
            created_at=T0,
        ),
        Activity(activity_type="meeting", contact_id=contact_id, occurred_at=hours(3), created_at=T0),
        Activity(activity_type="note", contact_id=contact_id, occurred_at=hours(4), created_at=T0),
        Activity(
            activity_type="email",
            contact_id=contact_id,
            occurred_at=hours(6),
            regarding=EntityRef("campaign", "spring"),
            created_at=T0,
        ),
        Ticket(subject="Broken gear", contact_id=contact_id, account_id=account_id, created_at=hours(7)),
        Quote(number="Q-1", currency="EUR", contact_id=contact_id, lines=[line], created_at=hours(8)),
        Order(
            number="O-1",
            currency="EUR",
            contact_id=contact_id,
            lines=[line],
            ordered_at=hours(9),
            created_at=T0,
        ),
        Consent(
            subject=EntityRef("contact", contact_id),
            purpose="newsletter",
            status="withdrawn",
            captured_at=hours(1),
            withdrawn_at=hours(10),
            created_at=T0,
        ),
        Activity(activity_type="call", contact_id="someone-else", occurred_at=hours(3), created_at=T0),
    ]


def fill(store, records):
    with store.transaction() as tx:
        for record in records:
            tx[type(record)].add(record)
        tx.commit()


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'crm.db'}"
    with open_store(url) as opened:
        yield opened


def every_page(tx, **options):
    entries, after = [], None
    while True:
        page = customer_timeline(tx, after=after, **options)
        entries.extend(page.entries)
        if page.next_cursor is None:
            return entries
        after = page.next_cursor


def test_a_contacts_timeline_merges_every_kind_of_record_newest_first(store):
    fill(store, a_history("ada"))
    with store.transaction() as tx:
        page = customer_timeline(tx, contact_id="ada", limit=50)
    assert page.next_cursor is None
    kinds = [entry.kind for entry in page.entries]
    assert kinds == [
        TimelineKind.STAGE_CHANGE,  # 30 h: lead -> customer
        TimelineKind.CONSENT_CHANGE,  # 10 h: withdrawn
        TimelineKind.ORDER,
        TimelineKind.QUOTE,
        TimelineKind.TICKET,
        TimelineKind.CAMPAIGN_TOUCH,
        TimelineKind.STAGE_CHANGE,  # 5 h: the deal qualified
        TimelineKind.ACTIVITY,  # the note
        TimelineKind.MEETING,
        TimelineKind.CALL,
        TimelineKind.EMAIL,  # 1 h: at equal times, activities come before consents
        TimelineKind.CONSENT_CHANGE,  # 1 h: granted
        TimelineKind.STAGE_CHANGE,  # 0 h: became a lead
    ]
    times = [entry.at for entry in page.entries]
    assert times == sorted(times, reverse=True)
    assert page.entries[0].summary == "contact Ada: lead -> customer"
    assert page.entries[1].summary == "consent newsletter: withdrawn"
    assert "someone-else" not in {getattr(entry.entity, "contact_id", None) for entry in page.entries}


def test_equal_times_are_ordered_by_source_then_id():
    store = open_store("memory://")
    fill(store, a_history("ada"))
    with store.transaction() as tx:
        at_one_hour = [e for e in customer_timeline(tx, contact_id="ada").entries if e.at == hours(1)]
    assert [e.kind for e in at_one_hour] == [TimelineKind.EMAIL, TimelineKind.CONSENT_CHANGE]


def test_the_timeline_filters_by_kind(store):
    fill(store, a_history("ada"))
    with store.transaction() as tx:
        emails = customer_timeline(tx, contact_id="ada", kinds=["email"]).entries
        touches = customer_timeline(tx, contact_id="ada", kinds=[TimelineKind.CAMPAIGN_TOUCH]).entries
        deals = customer_timeline(tx, contact_id="ada", kinds=["stage_change", "order"]).entries
    assert [e.entity.subject for e in emails] == ["Hello"]
    assert [e.record for e in touches] == [EntityRef("activity", touches[0].record.id)]
    assert {e.kind for e in deals} == {TimelineKind.STAGE_CHANGE, TimelineKind.ORDER}
    assert len(deals) == 4


def test_pages_follow_each_other_without_gaps_or_repeats(store):
    records = a_history("ada")
    records += [
        Activity(activity_type="call", contact_id="ada", occurred_at=hours(2), created_at=T0)
        for _ in range(7)
    ]
    fill(store, records)
    with store.transaction() as tx:
        whole = customer_timeline(tx, contact_id="ada", limit=100).entries
        paged = every_page(tx, contact_id="ada", limit=3)
    assert len(whole) == 20
    assert [(e.record, e.at, e.kind) for e in paged] == [(e.record, e.at, e.kind) for e in whole]


def test_an_accounts_timeline_reads_records_by_account(store):
    fill(store, a_history("ada"))
    with store.transaction() as tx:
        entries = customer_timeline(tx, account_id="acc-1").entries
    assert {e.kind for e in entries} == {TimelineKind.TICKET, TimelineKind.STAGE_CHANGE}


def test_bad_requests_are_validation_errors_with_a_path():
    store = open_store("memory://")
    with store.transaction() as tx:
        for options, path in [
            ({}, "contact_id"),
            ({"contact_id": "a", "account_id": "b"}, "contact_id"),
            ({"contact_id": "a", "limit": 0}, "limit"),
            ({"contact_id": "a", "kinds": ["email", "fax"]}, "kinds[1]"),
            ({"contact_id": "a", "after": "not-a-cursor"}, "after"),
        ]:
            with pytest.raises(ValidationError) as caught:
                customer_timeline(tx, **options)
            assert caught.value.paths == (path,), options


class ListSource:
    """A hand-written source: the timeline needs only ``source[Cls].query(...)``."""

    def __init__(self, records):
        self.records = records

    def __getitem__(self, cls):
        return ListQuery([r for r in self.records if type(r) is cls])


class ListQuery:
    def __init__(self, records):
        self.records = records

    def query(self, where=None, *, order_by=(), limit=100, after=None):
        from crmkit.conditions import Schema  # noqa: PLC0415 - only this fake needs it

        assert after is None  # the timeline seeks by condition, never by the source's own cursor here
        if not self.records:
            return Page((), None)
        schema = Schema.for_entity(type(self.records[0]))
        matching = [r for r in self.records if where is None or schema.evaluate(where, r)]
        for name, direction in reversed([(o, "asc") if isinstance(o, str) else o for o in order_by]):
            matching.sort(key=lambda r, name=name: getattr(r, name), reverse=direction == "desc")
        return Page(tuple(matching[:limit]), "more" if len(matching) > limit else None)


class Page:
    def __init__(self, items, next_cursor):
        self.items, self.next_cursor = items, next_cursor


def test_any_source_with_the_query_shape_works():
    records = a_history("ada")
    source = ListSource(records)
    entries = customer_timeline(source, contact_id="ada", kinds=["email", "call", "meeting"]).entries
    assert [e.kind for e in entries] == [TimelineKind.MEETING, TimelineKind.CALL, TimelineKind.EMAIL]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.sampled_from(["email", "call", "note"]), st.integers(0, 5)), max_size=25),
    st.integers(1, 6),
)
def test_paging_through_any_timeline_gives_the_whole_timeline_once(events, limit):
    store = open_store("memory://")
    fill(
        store,
        [
            Activity(activity_type=kind, contact_id="c", occurred_at=hours(hour), created_at=T0)
            for kind, hour in events
        ],
    )
    with store.transaction() as tx:
        whole = customer_timeline(tx, contact_id="c", limit=1000).entries
        paged = every_page(tx, contact_id="c", limit=limit)
    assert len(whole) == len(events)
    assert [e.record for e in paged] == [e.record for e in whole]


def test_an_accepted_quote_is_stored_in_one_transaction_and_shows_on_the_timeline(store):
    from crmkit.sales import accept_quote, draft_quote, move_quote  # noqa: PLC0415 - this test only

    ada = Contact(id="ada", first_name="Ada", created_at=T0)
    deal = Opportunity(name="Engines", contact_id="ada", stage="negotiation", created_at=T0)
    line = LineItem(quantity=2, unit_price=Money("9.99", "EUR"), tax_rate="0.2")
    quote = draft_quote(
        deal, number="Q-9", currency="EUR", lines=[line], valid_until=hours(48).date(), clock=FixedClock(T0)
    )
    with store.transaction() as tx:
        tx[Contact].add(ada)
        deal = tx[Opportunity].add(deal)
        quote = tx[Quote].add(quote)
        tx.commit()
    sent, sent_event = move_quote(quote, "send", at=hours(1))
    outcome = accept_quote(sent, order_number="SO-9", opportunity=deal, at=hours(2))
    with store.transaction() as tx:
        tx[Quote].update(outcome.quote)
        tx[Order].add(outcome.order)
        tx[Opportunity].update(outcome.opportunity)
        tx.record(sent_event, *outcome.events)
        tx.commit()
    with store.transaction() as tx:
        stored = tx[Quote].get(quote.id)
        entries = customer_timeline(tx, contact_id="ada").entries
        audit = [entry.event.name for entry in tx.audit(entity=EntityRef("quote", quote.id))]
    assert (stored.stage, stored.status, stored.lines[0].tax_rate) == ("accepted", "accepted", line.tax_rate)
    assert [change.to_stage for change in stored.stage_history] == ["sent", "accepted"]
    assert [e.kind for e in entries] == [TimelineKind.ORDER, TimelineKind.STAGE_CHANGE, TimelineKind.QUOTE]
    assert "quote_accepted" in audit
