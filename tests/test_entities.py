from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import attrs
import pytest
from hypothesis import given

from crmkit.clock import FixedClock, use_clock
from crmkit.entities import (
    ENTITY_TYPES,
    Account,
    Activity,
    ActivityKind,
    Address,
    Campaign,
    Channel,
    Consent,
    ConsentStatus,
    Contact,
    Entity,
    EntityRef,
    Feedback,
    FeedbackKind,
    LawfulBasis,
    Lead,
    LeadSource,
    LineItem,
    Opportunity,
    Order,
    Product,
    Quote,
    StageChange,
    Task,
    TaskStatus,
    Team,
    Ticket,
    User,
    WorkingHours,
)
from crmkit.errors import ValidationError
from crmkit.money import Money
from crmkit.testing import entities

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NAIVE = datetime(2026, 1, 5, 9, 0)  # noqa: DTZ001 - the point of the tests that use it


def paths_of(build, **kwargs):
    with pytest.raises(ValidationError) as caught:
        build(**kwargs)
    return caught.value.paths


def line(quantity="1", price="10.00", currency="EUR", **kwargs):
    return LineItem(quantity=Decimal(quantity), unit_price=Money(price, currency), **kwargs)


# The kinds and the common fields


def test_entity_types_maps_every_kind_to_its_class():
    assert set(ENTITY_TYPES) == {
        "contact", "account", "lead", "opportunity", "activity", "task", "ticket", "campaign",
        "order", "product", "quote", "feedback", "consent", "user", "team",
    }  # fmt: skip
    for kind, cls in ENTITY_TYPES.items():
        assert cls.kind == kind
        assert issubclass(cls, Entity)


def test_defaults_come_from_the_current_clock():
    with use_clock(FixedClock(T0)):
        lead = Lead(email="ada@example.com")
    assert lead.created_at == T0
    assert lead.updated_at == T0
    assert lead.version == 0
    assert len(lead.id) == 32
    assert lead.tags == frozenset()
    assert lead.custom_fields == {}


def test_each_record_gets_its_own_id():
    assert Team(name="A").id != Team(name="A").id


def test_host_ids_are_accepted():
    assert Team(id="team:emea-1", name="EMEA").id == "team:emea-1"


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 65, "tab\there", 17])
def test_bad_ids_are_refused_at_id(bad_id):
    assert paths_of(Team, id=bad_id, name="A") == ("id",)


def test_naive_datetimes_are_refused():
    assert paths_of(Team, name="A", created_at=NAIVE) == ("created_at", "updated_at")
    assert paths_of(Team, name="A", created_at=T0, updated_at=NAIVE) == ("updated_at",)


def test_updated_at_must_not_be_before_created_at():
    assert paths_of(Team, name="A", created_at=T0, updated_at=T0 - timedelta(seconds=1)) == ("updated_at",)


def test_version_must_not_be_negative():
    assert paths_of(Team, name="A", version=-1) == ("version",)


def test_version_must_be_an_int_not_a_bool():
    assert paths_of(Team, name="A", version=True) == ("version",)


def test_tags_accept_any_iterable_of_strings_and_are_stripped():
    team = Team(name="A", tags=[" vip ", "eu", "vip"])
    assert team.tags == frozenset({"vip", "eu"})


@pytest.mark.parametrize("tags", [["  "], ["x" * 65], [3], "vip"])
def test_bad_tags_are_refused_at_tags(tags):
    assert paths_of(Team, name="A", tags=tags) == ("tags",)


def test_custom_fields_accept_every_supported_value():
    values = {
        "plan": "pro",
        "seats": 12,
        "ratio": 0.5,
        "beta": True,
        "mrr": Decimal("99.90"),
        "renews_at": T0,
        "signed_on": date(2026, 1, 1),
        "notes": None,
    }
    assert Team(name="A", custom_fields=values).custom_fields == values


def test_custom_fields_problems_name_each_key():
    paths = paths_of(
        Team,
        name="A",
        custom_fields={
            "Score": 1,
            "ok": 1,
            "ratio": float("nan"),
            "when": NAIVE,
            "items": [1, 2],
            "cost": Decimal("Infinity"),
        },
    )
    assert paths == (
        "custom_fields.Score",
        "custom_fields.ratio",
        "custom_fields.when",
        "custom_fields.items",
        "custom_fields.cost",
    )


def test_custom_fields_must_be_a_mapping():
    assert paths_of(Team, name="A", custom_fields=[("a", 1)]) == ("custom_fields",)


def test_custom_field_names_longer_than_64_are_refused():
    assert paths_of(Team, name="A", custom_fields={"a" * 65: 1}) == (f"custom_fields.{'a' * 65}",)


def test_records_are_frozen():
    team = Team(name="A")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        team.name = "B"  # type: ignore[misc]


def test_evolve_revalidates_and_normalises():
    lead = Lead(email="ada@example.com")
    assert attrs.evolve(lead, email="GRACE@Example.com").email == "grace@example.com"
    with pytest.raises(ValidationError) as caught:
        attrs.evolve(lead, email="not-an-email")
    assert caught.value.paths == ("email",)


def test_records_compare_by_value_and_hash_by_type_id_and_version():
    with use_clock(FixedClock(T0)):
        a = Team(id="t1", name="A")
        b = Team(id="t1", name="A")
        renamed = attrs.evolve(a, name="B")
        stored = attrs.evolve(a, version=1)
    assert a == b
    assert hash(a) == hash(b)
    assert a != renamed
    assert hash(a) == hash(renamed)
    assert hash(a) != hash(stored)
    assert len({a, b, stored}) == 2


def test_records_of_different_kinds_with_one_id_are_not_equal():
    with use_clock(FixedClock(T0)):
        assert Team(id="x", name="A") != Account(id="x", name="A")


def test_many_problems_are_reported_together():
    with pytest.raises(ValidationError) as caught:
        Contact(
            email="nope",
            phone="12",
            created_at=NAIVE,
            timezone="Mars/Olympus",
            address=Address(country="FR"),
            tags=[""],
            stage="",
        )
    assert set(caught.value.paths) == {
        "created_at",
        "updated_at",
        "tags",
        "email",
        "phone",
        "timezone",
        "stage",
    }


# Enums


def test_a_plain_string_is_converted_to_its_enum_member():
    activity = Activity(activity_type="call", direction="inbound")
    assert activity.activity_type is ActivityKind.CALL
    assert Lead(email="a@b.co", source="web_form").source is LeadSource.WEB_FORM


def test_an_unknown_enum_value_lists_the_allowed_ones():
    with pytest.raises(ValidationError) as caught:
        Activity(activity_type="fax")
    assert caught.value.paths == ("activity_type",)
    assert "call, email, meeting, chat, social, visit, note" in caught.value.problems[0].message


def test_lawful_bases_are_the_six_of_gdpr_article_6():
    assert {basis.value for basis in LawfulBasis} == {
        "consent",
        "contract",
        "legal_obligation",
        "vital_interests",
        "public_task",
        "legitimate_interests",
    }


# Value types


def test_entity_ref_needs_a_known_kind_and_a_valid_id():
    assert EntityRef("lead", "l1") == EntityRef(kind="lead", id="l1")
    assert paths_of(EntityRef, kind="person", id="") == ("kind", "id")


def test_entity_ref_to_a_record():
    team = Team(id="t1", name="A")
    assert EntityRef.to(team) == EntityRef("team", "t1")


def test_stage_change_requires_a_target_stage_and_an_aware_time():
    assert paths_of(StageChange, from_stage=None, to_stage=" ", transition=None, actor=None, at=NAIVE) == (
        "to_stage",
        "at",
    )


def test_address_country_is_upper_cased_and_shape_checked():
    assert Address(country="fr").country == "FR"
    assert paths_of(Address, country="FRA") == ("country",)
    assert paths_of(Address, city="  ") == ("city",)


def test_working_hours_need_a_weekday_and_start_before_end():
    assert WorkingHours(0, time(9), time(17)).weekday == 0
    assert paths_of(WorkingHours, weekday=7, start=time(9), end=time(17)) == ("weekday",)
    assert paths_of(WorkingHours, weekday=-1, start=time(9), end=time(17)) == ("weekday",)
    assert paths_of(WorkingHours, weekday=1, start=time(17), end=time(9)) == ("end",)


def test_line_item_total_applies_discount_and_rounds_half_even():
    item = line("3", "9.99", discount=Decimal("0.1"))
    assert item.total == Money("26.97", "EUR")
    assert line("1", "0.125").total == Money("0.12", "EUR")


def test_line_item_rules():
    assert paths_of(LineItem, quantity=Decimal(-1), unit_price=Money(1, "EUR")) == ("quantity",)
    assert paths_of(LineItem, quantity=Decimal(1), unit_price=Money(1, "EUR"), discount=Decimal("1.5")) == (
        "discount",
    )
    assert paths_of(LineItem, quantity=1.5, unit_price="10") == ("quantity", "unit_price")


def test_line_item_quantity_accepts_int_and_numeric_strings():
    assert LineItem(quantity="2.5", unit_price=Money(1, "EUR")).quantity == Decimal("2.5")


# Per-entity rules


def test_contact_normalises_its_contact_points():
    contact = Contact(
        first_name="  Ada ",
        last_name="Lovelace  King",
        email=" ADA@Example.com",
        phone="+44 20 7946 0958",
        timezone="Europe/London",
    )
    assert contact.first_name == "Ada"
    assert contact.last_name == "Lovelace King"
    assert contact.full_name == "Ada Lovelace King"
    assert contact.email == "ada@example.com"
    assert contact.phone == "+442079460958"
    assert contact.stage == "subscriber"


def test_contact_address_must_be_an_address():
    assert paths_of(Contact, address={"country": "FR"}) == ("address",)


def test_stage_history_must_end_in_the_current_stage():
    history = (StageChange(from_stage=None, to_stage="lead", transition=None, actor=None, at=T0),)
    assert Contact(stage="lead", stage_history=history).stage == "lead"
    assert paths_of(Contact, stage="customer", stage_history=history) == ("stage",)


def test_stage_history_must_be_in_time_order():
    history = [
        StageChange(from_stage=None, to_stage="new", transition=None, actor=None, at=T0),
        StageChange(
            from_stage="new", to_stage="qualified", transition="qualify", actor="u1", at=T0 - timedelta(1)
        ),
    ]
    assert paths_of(Lead, email="a@b.co", stage="qualified", stage_history=history) == (
        "stage_history[1].at",
    )


def test_stage_history_entries_must_be_stage_changes():
    assert paths_of(Ticket, subject="Help", stage_history=[{"to_stage": "new"}]) == ("stage_history[0]",)


def test_account_rules():
    account = Account(name=" Acme  Corp ", domain="https://www.acme.example/about", employees=10)
    assert account.name == "Acme Corp"
    assert account.domain == "acme.example"
    assert paths_of(Account, name="", employees=-1, domain="nope") == ("name", "domain", "employees")
    assert paths_of(Account, id="a1", name="Acme", parent_id="a1") == ("parent_id",)


def test_account_name_is_required():
    with pytest.raises(TypeError):
        Account()  # type: ignore[call-arg]


def test_lead_defaults_and_normalisation():
    lead = Lead(email="ADA@example.com", country="gb", domain="ada@acme.example")
    assert lead.stage == "new"
    assert lead.country == "GB"
    assert lead.domain == "acme.example"
    assert lead.score == 0


def test_lead_needs_something_to_identify_it():
    assert paths_of(Lead, first_name="Ada") == ("email",)
    assert Lead(company="Acme").company == "Acme"
    assert Lead(last_name="Lovelace").last_name == "Lovelace"
    assert Lead(phone="+14155550100").phone == "+14155550100"


def test_lead_rules():
    assert paths_of(Lead, email="a@b.co", country="Germany", employees=-5, source="billboard") == (
        "country",
        "employees",
        "source",
    )


def test_opportunity_rules():
    deal = Opportunity(name="Big deal", amount=Money(1000, "EUR"), probability="0.4")
    assert deal.stage == "prospecting"
    assert deal.probability == Decimal("0.4")
    assert paths_of(Opportunity, name="x", probability=Decimal("1.01"), expected_close=T0) == (
        "probability",
        "expected_close",
    )
    assert paths_of(Opportunity, name="x", amount=1000) == ("amount",)


def test_opportunity_probability_refuses_floats():
    assert paths_of(Opportunity, name="x", probability=0.5) == ("probability",)


def test_activity_rules():
    assert paths_of(Activity, activity_type="call", duration_seconds=-1, occurred_at=NAIVE) == (
        "occurred_at",
        "duration_seconds",
    )
    assert paths_of(Activity, activity_type="note", direction="inbound") == ("direction",)
    assert Activity(activity_type="meeting", regarding=EntityRef("opportunity", "o1")).regarding is not None


def test_task_completed_at_is_set_exactly_when_done():
    assert Task(title="Call back", status="done", completed_at=T0).status is TaskStatus.DONE
    assert paths_of(Task, title="Call back", status="done") == ("completed_at",)
    assert paths_of(Task, title="Call back", completed_at=T0) == ("completed_at",)


def test_task_title_must_not_be_blank():
    assert paths_of(Task, title="  ") == ("title",)


def test_recurring_task_needs_due_at_and_a_valid_rrule():
    assert paths_of(Task, title="Standup", recurrence="FREQ=DAILY") == ("recurrence",)
    for bad in [
        "FREQ=SOMETIMES",
        "FREQ=DAILY;BYDAY=XX",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;BYMONTH=13",
        "FREQ=DAILY;UNTIL=20260301T000000",
        "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY",
        ";",
    ]:
        assert paths_of(Task, title="Standup", due_at=T0, recurrence=bad) == ("recurrence",), bad


def test_recurring_task_occurrences_follow_the_rule():
    task = Task(title="Review", due_at=T0, recurrence="FREQ=WEEKLY;BYDAY=MO,WE")
    assert task.occurrences(T0, 3) == (
        datetime(2026, 1, 7, 9, tzinfo=UTC),
        datetime(2026, 1, 12, 9, tzinfo=UTC),
        datetime(2026, 1, 14, 9, tzinfo=UTC),
    )
    assert task.occurrences(T0, 0) == ()


def test_occurrences_respect_the_count_and_until_of_the_rule():
    counted = Task(title="Daily", due_at=T0, recurrence="FREQ=DAILY;COUNT=2")
    assert counted.occurrences(T0 - timedelta(days=1), 10) == (T0, T0 + timedelta(days=1))
    until = Task(title="Daily", due_at=T0, recurrence="FREQ=DAILY;UNTIL=20260107T090000Z")
    assert len(until.occurrences(T0, 10)) == 2


def test_occurrences_of_a_one_off_task_is_its_due_time_if_later():
    task = Task(title="Once", due_at=T0)
    assert task.occurrences(T0 - timedelta(hours=1), 5) == (T0,)
    assert task.occurrences(T0, 5) == ()
    assert Task(title="Someday").occurrences(T0, 5) == ()


def test_occurrences_need_an_aware_start_and_a_non_negative_limit():
    task = Task(title="Once", due_at=T0)
    with pytest.raises(ValidationError) as caught:
        task.occurrences(NAIVE, -1)
    assert caught.value.paths == ("after", "limit")


def test_ticket_response_and_resolution_not_before_creation():
    assert paths_of(
        Ticket,
        subject="Broken",
        created_at=T0,
        first_response_at=T0 - timedelta(minutes=1),
        resolved_at=T0 - timedelta(minutes=1),
    ) == ("first_response_at", "resolved_at")
    ticket = Ticket(subject="Broken", channel="email", priority="urgent", created_at=T0, resolved_at=T0)
    assert ticket.channel is Channel.EMAIL


def test_campaign_ends_not_before_it_starts_and_costs_in_budget_currency():
    assert paths_of(Campaign, name="Spring", starts_at=T0, ends_at=T0 - timedelta(days=1)) == ("ends_at",)
    assert paths_of(Campaign, name="Spring", budget=Money(100, "EUR"), actual_cost=Money(50, "USD")) == (
        "actual_cost.currency",
    )
    assert Campaign(name="Spring", starts_at=T0, ends_at=T0).ends_at == T0


def test_order_total_sums_the_rounded_lines():
    order = Order(number="SO-1", currency="eur", lines=[line("2", "9.99"), line("1", "0.125")])
    assert order.currency == "EUR"
    assert isinstance(order.lines, tuple)
    assert order.total == Money("20.10", "EUR")
    assert Order(number="SO-2", currency="JPY").total == Money(0, "JPY")


def test_order_lines_must_be_in_the_order_currency():
    assert paths_of(
        Order,
        number="SO-1",
        currency="EUR",
        lines=[line(), line(currency="USD"), line(currency="GBP")],
    ) == ("lines[1].unit_price.currency", "lines[2].unit_price.currency")


def test_order_problems_name_nested_line_paths():
    assert paths_of(Order, number="SO-1", currency="EUR", lines=[line(), "not a line"]) == ("lines[1]",)
    assert paths_of(Order, number="SO-1", currency="EURO", lines=line()) == ("currency", "lines")


def test_quote_rules_mirror_order_rules():
    quote = Quote(number="Q-1", currency="USD", lines=[line(currency="USD")], valid_until=date(2026, 2, 1))
    assert quote.total == Money("10.00", "USD")
    assert paths_of(Quote, number="Q-1", currency="USD", lines=[line()], valid_until=T0) == ("valid_until",)
    with pytest.raises(ValidationError) as caught:
        Quote(number="Q-1", currency="USD", lines=[line()])
    assert caught.value.paths == ("lines[0].unit_price.currency",)


def test_product_rules():
    product = Product(sku=" SKU-1 ", name="Seat", list_price=Money(10, "EUR"), recurring_interval="month")
    assert product.sku == "SKU-1"
    assert paths_of(Product, sku="", name="", recurring_interval="weekly") == (
        "sku",
        "name",
        "recurring_interval",
    )


@pytest.mark.parametrize(("survey", "score"), [("nps", 0), ("nps", 10), ("csat", 1), ("csat", 5)])
def test_feedback_scores_within_their_scale_are_accepted(survey, score):
    assert Feedback(survey=survey, score=score).score == score


@pytest.mark.parametrize(("survey", "score"), [("nps", -1), ("nps", 11), ("csat", 0), ("csat", 6)])
def test_feedback_scores_outside_their_scale_are_refused(survey, score):
    assert paths_of(Feedback, survey=survey, score=score) == ("score",)


def test_feedback_kind_is_an_enum():
    assert Feedback(survey="csat", score=4).survey is FeedbackKind.CSAT


def test_consent_withdrawn_needs_withdrawn_at():
    subject = EntityRef("contact", "c1")
    assert paths_of(Consent, subject=subject, purpose="newsletter", status="withdrawn") == ("withdrawn_at",)
    granted_but_withdrawn = {"status": "granted", "captured_at": T0, "withdrawn_at": T0}
    assert paths_of(Consent, subject=subject, purpose="newsletter", **granted_but_withdrawn) == (
        "withdrawn_at",
    )
    consent = Consent(
        subject=subject, purpose="newsletter", status="withdrawn", captured_at=T0, withdrawn_at=T0
    )
    assert consent.status is ConsentStatus.WITHDRAWN
    assert consent.lawful_basis is LawfulBasis.CONSENT


def test_consent_times_are_ordered():
    subject = EntityRef("lead", "l1")
    assert paths_of(
        Consent,
        subject=subject,
        purpose="newsletter",
        status="withdrawn",
        captured_at=T0,
        withdrawn_at=T0 - timedelta(1),
        expires_at=T0,
    ) == ("withdrawn_at", "expires_at")


def test_consent_subject_must_be_an_entity_ref():
    assert paths_of(Consent, subject="contact:c1", purpose="newsletter", status="granted") == ("subject",)


def test_user_rules():
    user = User(
        name="Grace",
        email="Grace@Example.com",
        skills=["german", " billing "],
        capacity=5,
        timezone="America/New_York",
        working_hours=[WorkingHours(0, time(9), time(12)), WorkingHours(0, time(13), time(17))],
    )
    assert user.email == "grace@example.com"
    assert user.skills == frozenset({"german", "billing"})
    assert user.capacity == 5
    assert paths_of(User, name="G", email="g@example.com", capacity=-1, timezone="Nowhere/Land") == (
        "capacity",
        "timezone",
    )


def test_user_working_hours_must_not_overlap_on_one_day():
    overlapping = [WorkingHours(2, time(9), time(12)), WorkingHours(2, time(11), time(14))]
    assert paths_of(User, name="G", email="g@example.com", working_hours=overlapping) == ("working_hours[1]",)


def test_team_rules():
    assert paths_of(Team, name="Support", manager_id="has space") == ("manager_id",)


def test_timezones_of_all_offsets_are_accepted():
    tz = timezone(timedelta(hours=-3, minutes=-30))
    assert Team(name="A", created_at=datetime(2026, 1, 1, tzinfo=tz)).created_at.utcoffset() == timedelta(
        hours=-3, minutes=-30
    )


# Properties


@pytest.mark.parametrize("kind", sorted(ENTITY_TYPES))
def test_generated_records_rebuild_from_their_own_fields(kind):
    @given(entities(kind))
    def check(record):
        assert type(record).kind == kind
        rebuilt = type(record)(
            **{field.name: getattr(record, field.name) for field in attrs.fields(type(record))}
        )
        assert rebuilt == record
        assert hash(rebuilt) == hash(record)

    check()


@given(entities())
def test_evolve_with_no_changes_gives_an_equal_record(record):
    assert attrs.evolve(record) == record
