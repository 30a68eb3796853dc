"""Products, price books, pricing and configuration rules, and quotes (crmkit.sales)."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crmkit import FixedClock, LineItem, Money, Opportunity, Product, TransitionError
from crmkit.conditions import field
from crmkit.errors import CurrencyMismatch, NotFound, RuleError, ValidationError
from crmkit.events import EVENT_TYPES, event_from_data, event_to_data
from crmkit.sales import (
    QUOTE_LIFECYCLE,
    Action,
    Catalog,
    LineRequest,
    PriceBook,
    PriceEntry,
    PricingRule,
    PricingRules,
    QuoteAccepted,
    VolumeTier,
    accept_quote,
    draft_quote,
    move_quote,
    price_line,
    price_lines,
    quote_totals,
    revise_quote,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = date(2026, 3, 2)

ROUTER = Product(id="router", sku="RT-1", name="Router", family="hardware", created_at=T0)
WIFI = Product(
    id="wifi", sku="WF-1", name="Wi-Fi plan", family="service", tags=["subscription"], created_at=T0
)
OLD = Product(id="old", sku="OLD-1", name="Legacy modem", active=False, created_at=T0)
CABLE = Product(
    id="cable", sku="CB-1", name="Cable", list_price=Money("4.00", "USD"), family="hardware", created_at=T0
)

EU_LIST = PriceBook(
    id="eu-list",
    name="EU list 2026",
    currency="EUR",
    valid_from=date(2026, 1, 1),
    valid_until=date(2026, 12, 31),
    entries=[
        PriceEntry(
            product_id="router",
            unit_price=Decimal("100.00"),
            tiers=[
                VolumeTier(min_quantity=Decimal(10), unit_price=Decimal("90.00")),
                VolumeTier(min_quantity=Decimal(100), unit_price=Decimal("80.00")),
            ],
        ),
        PriceEntry(product_id="wifi", unit_price=Decimal("20.00")),
        PriceEntry(product_id="old", unit_price=Decimal("5.00")),
    ],
)
EU_PARTNER = PriceBook(
    id="eu-partner",
    name="EU partners",
    currency="EUR",
    channel="partner",
    entries=[PriceEntry(product_id="router", unit_price=Decimal("85.00"))],
)
US_LIST = PriceBook(
    id="us-list", name="US list", currency="USD", entries=[PriceEntry(product_id="router", unit_price="110")]
)
CATALOG = Catalog([ROUTER, WIFI, OLD, CABLE], [EU_LIST, EU_PARTNER, US_LIST])

RULES = PricingRules(
    [
        PricingRule(
            name="volume-50",
            when=field("quantity").ge(50),
            then=[Action(effect="discount", rate="0.05")],
        ),
        PricingRule(
            name="gold-customers",
            when=field("customer_tier").eq("gold"),
            then=[Action(effect="discount", rate="0.10")],
        ),
        PricingRule(
            name="mesh-needs-router",
            when=field("product_id").eq("wifi") & field("options").contains("mesh"),
            then=[Action(effect="require_option", option="router_rental")],
        ),
        PricingRule(
            name="express-surcharge",
            when=field("options").contains("express"),
            then=[Action(effect="surcharge", amount="15.00")],
            otherwise=[],
        ),
        PricingRule(
            name="spring-campaign",
            when=field("campaign_id").eq("spring26") & field("family").eq("hardware"),
            then=[Action(effect="discount", rate="0.10")],
        ),
        PricingRule(
            name="no-basic-with-mesh",
            when=field("options").contains("mesh"),
            then=[Action(effect="exclude_option", option="basic")],
        ),
    ],
    approval_threshold="0.15",
)


def request(**changes):
    values = {"product_id": "router", "quantity": 1}
    values.update(changes)
    return LineRequest(**values)


def priced(**changes):
    return price_line(request(**changes), catalog=CATALOG, rules=RULES, currency="EUR", on=DAY)


# -- price books --------------------------------------------------------------------------------------


def test_the_price_book_in_the_currency_valid_on_the_day_gives_the_price_and_says_why():
    found = CATALOG.lookup("router", quantity=1, currency="eur", on=DAY)
    assert found.unit_price == Money("100.00", "EUR")
    assert found.price_book_id == "eu-list"
    assert found.tier is None
    assert (
        found.reasons[0] == "price book 'eu-list' (EUR, valid 2026-01-01 to 2026-12-31) applies on 2026-03-02"
    )


def test_volume_tiers_apply_from_their_minimum_quantity():
    assert CATALOG.lookup("router", quantity=9, currency="EUR", on=DAY).unit_price.amount == Decimal("100.00")
    tenth = CATALOG.lookup("router", quantity=10, currency="EUR", on=DAY)
    assert tenth.unit_price.amount == Decimal("90.00")
    assert tenth.tier == VolumeTier(min_quantity=Decimal(10), unit_price=Decimal("90.00"))
    assert "volume tier from 10 units: 90.00 EUR" in tenth.reasons
    assert CATALOG.lookup("router", quantity=500, currency="EUR", on=DAY).unit_price.amount == Decimal(
        "80.00"
    )


def test_a_channel_price_book_beats_the_general_one_for_that_channel_only():
    assert CATALOG.lookup("router", quantity=1, currency="EUR", on=DAY, channel="partner").price_book_id == (
        "eu-partner"
    )
    assert (
        CATALOG.lookup("router", quantity=1, currency="EUR", on=DAY, channel="web").price_book_id == "eu-list"
    )


def test_a_price_book_does_not_apply_outside_its_validity_dates():
    with pytest.raises(CurrencyMismatch) as caught:
        CATALOG.lookup("wifi", quantity=1, currency="EUR", on=date(2027, 1, 1))
    assert caught.value.paths == ("currency",)


def test_the_products_own_list_price_is_the_fallback_in_its_currency():
    found = CATALOG.lookup("cable", quantity=3, currency="USD", on=DAY)
    assert found.unit_price == Money("4.00", "USD")
    assert found.price_book_id is None


def test_a_price_in_a_currency_no_book_has_is_a_currency_mismatch():
    with pytest.raises(CurrencyMismatch):
        CATALOG.lookup("wifi", quantity=1, currency="GBP", on=DAY)


def test_a_named_price_book_in_another_currency_is_refused():
    with pytest.raises(CurrencyMismatch) as caught:
        CATALOG.lookup("router", quantity=1, currency="USD", on=DAY, price_book_id="eu-list")
    assert "price book 'eu-list' is in EUR, not USD" in str(caught.value)


def test_unknown_products_and_inactive_products_and_negative_quantities_are_refused():
    with pytest.raises(NotFound):
        CATALOG.lookup("nope", quantity=1, currency="EUR", on=DAY)
    with pytest.raises(ValidationError) as caught:
        CATALOG.lookup("old", quantity=1, currency="EUR", on=DAY)
    assert caught.value.paths == ("product_id",)
    with pytest.raises(ValidationError) as caught:
        CATALOG.lookup("router", quantity=-1, currency="EUR", on=DAY)
    assert caught.value.paths == ("quantity",)


def test_price_books_are_checked_when_built():
    with pytest.raises(ValidationError) as caught:
        PriceBook(
            id="b",
            name="bad",
            currency="EUR",
            valid_from=date(2026, 2, 1),
            valid_until=date(2026, 1, 1),
            entries=[
                PriceEntry(product_id="router", unit_price=1),
                PriceEntry(product_id="router", unit_price=2),
            ],
        )
    assert set(caught.value.paths) == {"valid_until", "entries[1].product_id"}
    with pytest.raises(ValidationError) as caught:
        PriceEntry(product_id="router", unit_price=1, tiers=[VolumeTier(min_quantity=5, unit_price=1)] * 2)
    assert caught.value.paths == ("tiers[1].min_quantity",)
    with pytest.raises(ValidationError) as caught:
        Catalog([ROUTER], [US_LIST, EU_LIST])
    assert "price_books[1].entries[1].product_id" in caught.value.paths


def test_a_price_book_round_trips_through_json():
    text = json.dumps(EU_LIST.to_json())
    assert PriceBook.from_json(json.loads(text)) == EU_LIST
    data = EU_LIST.to_json()
    data["entries"][0]["tiers"][1]["min_quantity"] = "-3"
    with pytest.raises(ValidationError) as caught:
        PriceBook.from_json(data)
    assert caught.value.paths == ("entries[0].tiers[1].min_quantity",)


# -- pricing rules ------------------------------------------------------------------------------------


def test_every_price_lists_the_rules_that_made_it():
    line = priced(quantity=60, customer_tier="gold", options={"express"})
    assert line.rule_names == ("volume-50", "gold-customers", "express-surcharge")
    assert line.lookup.unit_price == Money("90.00", "EUR")
    assert line.unit_price == Money("105.00", "EUR")  # 90 list + 15 express per unit
    assert line.discount == Decimal("0.15")
    assert line.line.total == Money("5355.00", "EUR")  # 60 x 105 x 0.85
    assert line.applied[1].effects == ("discount 10%",)
    assert not line.approval_required  # 15 % is not above the 15 % threshold


def test_a_discount_above_the_threshold_needs_approval_and_says_why():
    line = priced(quantity=60, customer_tier="gold", campaign_id="spring26")
    assert line.discount == Decimal("0.25")
    assert line.approval_required
    assert line.approval_reasons == ("discount 25% is above the 15% approval threshold",)


def test_a_rule_can_require_approval_on_its_own():
    rules = PricingRules(
        [PricingRule(name="big", when=field("quantity").gt(1000), then=[Action(effect="require_approval")])]
    )
    line = price_line(request(quantity=1001), catalog=CATALOG, rules=rules, currency="EUR", on=DAY)
    assert line.approval_reasons == ("rule 'big' requires approval",)


def test_the_otherwise_branch_runs_when_the_condition_fails():
    rules = PricingRules(
        [
            PricingRule(
                name="small-order-fee",
                when=field("quantity").ge(5),
                otherwise=[Action(effect="surcharge", rate="0.02")],
            )
        ]
    )
    line = price_line(request(quantity=2), catalog=CATALOG, rules=rules, currency="EUR", on=DAY)
    assert line.unit_price == Money("102.00", "EUR")
    assert line.applied[0].branch == "otherwise"
    assert price_line(request(quantity=5), catalog=CATALOG, rules=rules, currency="EUR", on=DAY).applied == ()


def test_an_option_that_requires_a_missing_option_is_a_rule_error_naming_the_rule_and_line():
    with pytest.raises(RuleError) as caught:
        price_lines(
            [request(), request(product_id="wifi", options={"mesh"})],
            catalog=CATALOG,
            rules=RULES,
            currency="EUR",
            on=DAY,
        )
    assert caught.value.path == "rules[2].then[0]"
    assert "line 1: rule 'mesh-needs-router' requires option 'router_rental'" in str(caught.value)


def test_an_excluded_option_that_is_chosen_is_a_rule_error():
    with pytest.raises(RuleError) as caught:
        priced(product_id="wifi", options={"mesh", "router_rental", "basic"})
    assert caught.value.path == "rules[5].then[0]"
    assert "excludes option 'basic'" in str(caught.value)


def test_an_option_required_by_one_rule_and_excluded_by_another_is_a_rule_error_naming_both():
    rules = PricingRules(
        [
            PricingRule(
                name="a", when=field("quantity").ge(1), then=[Action(effect="require_option", option="x")]
            ),
            PricingRule(
                name="b", when=field("quantity").ge(2), then=[Action(effect="exclude_option", option="x")]
            ),
        ]
    )
    with pytest.raises(RuleError) as caught:
        price_line(request(quantity=3, options={"x"}), catalog=CATALOG, rules=rules, currency="EUR", on=DAY)
    assert "rule 'a' requires option 'x', which rule 'b' excludes" in str(caught.value)


def test_discounts_adding_up_to_more_than_everything_are_conflicting_rules():
    rules = PricingRules(
        [
            PricingRule(
                name="half", when=field("quantity").ge(1), then=[Action(effect="discount", rate="0.6")]
            ),
            PricingRule(
                name="more", when=field("quantity").ge(1), then=[Action(effect="discount", rate="0.6")]
            ),
        ]
    )
    with pytest.raises(RuleError) as caught:
        price_line(request(), catalog=CATALOG, rules=rules, currency="EUR", on=DAY)
    assert caught.value.path == "rules[0]"
    assert "'half', 'more' add up to 120%" in str(caught.value)


def test_rules_that_conflict_on_their_face_are_refused_when_built():
    with pytest.raises(RuleError) as caught:
        PricingRules(
            [
                PricingRule(
                    name="a", when=field("sku").eq("RT-1"), then=[Action(effect="require_option", option="x")]
                ),
                PricingRule(
                    name="b", when=field("sku").eq("RT-1"), then=[Action(effect="exclude_option", option="x")]
                ),
            ]
        )
    assert caught.value.path == "rules[1].then[0]"
    with pytest.raises(RuleError) as caught:
        PricingRules(
            [
                PricingRule(
                    name="a",
                    when=field("sku").eq("RT-1"),
                    then=[
                        Action(effect="require_option", option="x"),
                        Action(effect="exclude_option", option="x"),
                    ],
                )
            ]
        )
    assert caught.value.path == "rules[0].then[1]"
    with pytest.raises(RuleError) as caught:
        PricingRules([RULES.rules[0], RULES.rules[0]])
    assert caught.value.path == "rules[1].name"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"when": {"field": "shoe_size", "op": "eq", "value": 1}}, "rules[1].when.field"),
        (
            {"when": {"all": [{"field": "quantity", "op": "contains", "value": "x"}]}},
            "rules[1].when.all[0].op",
        ),
        ({"then": [{"effect": "discount", "rate": "1.5"}]}, "rules[1].then[0].rate"),
        ({"then": [{"effect": "discount"}]}, "rules[1].then[0].rate"),
        ({"then": [{"effect": "require_option"}]}, "rules[1].then[0].option"),
        ({"then": [{"effect": "teleport"}]}, "rules[1].then[0].effect"),
        ({"then": [{"effect": "discount", "rate": 0.1}]}, "rules[1].then[0].rate"),
        ({"colour": "red"}, "rules[1].colour"),
    ],
)
def test_bad_rules_in_json_are_rule_errors_with_the_path_of_the_node(change, path):
    data = RULES.to_json()
    data["rules"][1].update(change)
    with pytest.raises(RuleError) as caught:
        PricingRules.from_json(data)
    assert caught.value.path == path


def test_a_rule_set_round_trips_through_json():
    text = json.dumps(RULES.to_json())
    assert PricingRules.from_json(json.loads(text)) == RULES


def test_a_rule_pinned_to_other_products_is_not_evaluated_for_this_one():
    rules = PricingRules(
        [
            PricingRule(
                name="wifi-only",
                when=field("sku").in_(["WF-1"]),
                then=[Action(effect="discount", rate="0.5")],
            ),
            PricingRule(
                name="family",
                when=field("family").eq("hardware"),
                then=[Action(effect="discount", rate="0.1")],
            ),
        ]
    )
    assert price_line(request(), catalog=CATALOG, rules=rules, currency="EUR", on=DAY).rule_names == (
        "family",
    )
    wifi = price_line(request(product_id="wifi"), catalog=CATALOG, rules=rules, currency="EUR", on=DAY)
    assert wifi.rule_names == ("wifi-only",)


def test_a_negative_quantity_names_the_line():
    with pytest.raises(ValidationError) as caught:
        price_lines([request(), request(quantity=-2)], catalog=CATALOG, rules=RULES, currency="EUR", on=DAY)
    assert caught.value.paths == ("lines[1].quantity",)


# -- quotes -------------------------------------------------------------------------------------------


def a_deal(**changes):
    values = {"name": "Routers for Babbage", "stage": "negotiation", "created_at": T0, "account_id": "acc-1"}
    values.update(changes)
    return Opportunity(**values)


def a_quote(deal=None, **changes):
    lines = [priced(quantity=12, tax_rate="0.2"), priced(product_id="wifi", quantity=12, tax_rate="0.2")]
    values = {"number": "Q-1", "currency": "EUR", "lines": lines, "valid_until": date(2026, 3, 31)}
    values.update(changes)
    return draft_quote(deal or a_deal(), clock=FixedClock(T0), **values)


def test_a_quote_is_drafted_from_an_opportunity_with_its_lines():
    quote = a_quote(delivery_terms="DAP Berlin", delivery_by=date(2026, 4, 15), price_book_id="eu-list")
    assert (quote.stage, quote.status, quote.revision) == ("draft", "draft", 1)
    assert quote.account_id == "acc-1"
    assert quote.delivery_terms == "DAP Berlin"
    assert [line.product_id for line in quote.lines] == ["router", "wifi"]


def test_quote_totals_are_the_sums_of_the_rounded_lines():
    totals = quote_totals(a_quote())
    assert totals.net == Money("1320.00", "EUR")  # 12 x 90 + 12 x 20
    assert totals.tax == Money("264.00", "EUR")
    assert totals.total == Money("1584.00", "EUR")
    assert totals.minor_units == 2


def test_each_line_is_rounded_half_to_even_in_the_currencys_minor_units():
    line = LineItem(quantity=Decimal(1), unit_price=Money("0.125", "EUR"), tax_rate=Decimal("0.1"))
    yen = LineItem(quantity=Decimal(1), unit_price=Money("12.5", "JPY"))
    eur = quote_totals(a_quote(lines=[line, line]))
    assert eur.lines[0].net == Money("0.12", "EUR")
    assert eur.net == Money("0.24", "EUR")  # not 0.25: each line is rounded as printed
    assert eur.tax == Money("0.02", "EUR")
    assert quote_totals(a_quote(currency="JPY", lines=[yen])).total == Money(12, "JPY")


def test_a_line_in_another_currency_is_refused_with_its_path():
    usd = LineItem(quantity=Decimal(1), unit_price=Money(1, "USD"))
    with pytest.raises(CurrencyMismatch) as caught:
        a_quote(lines=[priced(), usd])
    assert caught.value.paths == ("lines[1].unit_price.currency",)


def test_a_quote_priced_from_another_price_book_is_refused():
    with pytest.raises(ValidationError) as caught:
        a_quote(lines=[priced(channel="partner")], price_book_id="eu-list")
    assert caught.value.paths == ("lines[0].price_book_id",)


def test_a_quote_in_another_currency_than_the_deal_is_refused():
    with pytest.raises(CurrencyMismatch):
        a_quote(deal=a_deal(amount=Money(1000, "USD")))


def test_the_quote_lifecycle_sends_and_keeps_status_and_stage_together():
    sent, event = move_quote(a_quote(), "send", at=T0 + timedelta(hours=1), actor="u-1")
    assert (sent.stage, sent.status) == ("sent", "sent")
    assert (event.from_stage, event.to_stage, event.lifecycle) == ("draft", "sent", "quote")
    assert QUOTE_LIFECYCLE.allowed_transitions("sent") == ("accept", "reject", "expire", "supersede")


def test_a_quote_without_lines_cannot_be_sent():
    with pytest.raises(TransitionError) as caught:
        move_quote(a_quote(lines=[]), "send", at=T0)
    assert caught.value.reasons == ("required field 'lines' is missing",)


def test_accepting_a_quote_makes_an_order_and_wins_the_deal():
    deal = a_deal()
    sent, _ = move_quote(a_quote(deal), "send", at=T0)
    accepted_at = T0 + timedelta(days=3)
    outcome = accept_quote(sent, order_number="SO-7", opportunity=deal, at=accepted_at, actor="u-1")
    assert (outcome.quote.stage, outcome.quote.status) == ("accepted", "accepted")
    assert outcome.order.quote_id == sent.id
    assert outcome.order.lines == sent.lines
    assert outcome.order.total == quote_totals(sent).net
    assert outcome.opportunity is not None
    assert (outcome.opportunity.stage, outcome.opportunity.amount) == ("won", Money("1320.00", "EUR"))
    assert outcome.opportunity.closed_at == accepted_at
    assert [type(event).__name__ for event in outcome.events] == [
        "StageChanged",
        "StageChanged",
        "QuoteAccepted",
    ]
    accepted = outcome.events[-1]
    assert isinstance(accepted, QuoteAccepted)
    assert accepted.total == Money("1584.00", "EUR")
    assert EVENT_TYPES["quote_accepted"] is QuoteAccepted
    assert event_from_data(event_to_data(accepted)) == accepted
    assert deal.stage == "negotiation"  # pure: the inputs are unchanged


def test_an_expired_quote_cannot_be_accepted():
    sent, _ = move_quote(a_quote(), "send", at=T0)
    with pytest.raises(TransitionError) as caught:
        accept_quote(sent, order_number="SO-1", at=datetime(2026, 4, 1, 0, 30, tzinfo=UTC))
    assert caught.value.reasons == (
        "the quote expired: it was valid until 2026-03-31, accepted on 2026-04-01",
    )
    assert accept_quote(
        sent, order_number="SO-1", at=datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    ).quote.stage == ("accepted")


def test_a_draft_quote_cannot_be_accepted_and_the_opportunity_must_be_the_quotes():
    with pytest.raises(TransitionError):
        accept_quote(a_quote(), order_number="SO-1", at=T0)
    sent, _ = move_quote(a_quote(), "send", at=T0)
    with pytest.raises(ValidationError) as caught:
        accept_quote(sent, order_number="SO-1", opportunity=a_deal(), at=T0)
    assert caught.value.paths == ("opportunity",)


def test_a_revision_supersedes_the_old_quote_and_keeps_it():
    sent, _ = move_quote(a_quote(), "send", at=T0)
    revision = revise_quote(sent, lines=[priced(quantity=20)], at=T0 + timedelta(days=1))
    assert (revision.previous.stage, revision.previous.status) == ("superseded", "superseded")
    assert revision.previous.lines == sent.lines
    assert [change.to_stage for change in revision.previous.stage_history] == ["sent", "superseded"]
    new = revision.quote
    assert (new.number, new.revision, new.supersedes_id, new.stage) == ("Q-1", 2, sent.id, "draft")
    assert new.lines[0].quantity == 20
    with pytest.raises(TransitionError):
        revise_quote(revision.previous, at=T0 + timedelta(days=2))
