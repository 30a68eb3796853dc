"""The account ledger and loyalty points and tiers (crmkit.sales)."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crmkit import EntityRef, LineItem, Money, Order
from crmkit.conditions import field
from crmkit.errors import ConflictError, CurrencyMismatch, InsufficientBalance, RuleError, ValidationError
from crmkit.events import EVENT_TYPES, event_from_data, event_to_data
from crmkit.sales import (
    AccountLedger,
    EarnRule,
    LedgerEntry,
    LoyaltyProgram,
    LoyaltyTier,
    PointsLedger,
    TierDowngraded,
    TierUpgraded,
    review_tier,
    rolling_spend,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ADA = EntityRef("contact", "ada")


def entry(kind, amount, *, days=0, due=None, **changes):
    values = {"account_id": "acc-1", "kind": kind, "amount": Money(amount, "EUR")}
    values.update(posted_at=T0 + timedelta(days=days), due_on=due, **changes)
    return LedgerEntry(**values)


# -- account ledger -----------------------------------------------------------------------------------


def test_the_balance_is_debits_less_credits_as_of_any_date():
    invoice = entry("invoice", "1000.00", due=date(2026, 2, 4), reference="INV-1")
    ledger = AccountLedger("acc-1", "EUR").post(invoice, entry("payment", "400.00", days=10))
    assert ledger.balance(T0) == Money("1000.00", "EUR")
    assert ledger.balance(T0 + timedelta(days=10)) == Money("600.00", "EUR")
    assert ledger.balance(T0 - timedelta(days=1)) == Money(0, "EUR")
    assert ledger.balance() == Money("600.00", "EUR")


def test_overdue_counts_what_is_still_open_past_its_due_day():
    first = entry("invoice", "100.00", due=date(2026, 1, 20))
    second = entry("invoice", "50.00", days=1, due=date(2026, 3, 1))
    ledger = AccountLedger("acc-1", "EUR").post(first, second, entry("payment", "30.00", days=2))
    as_of = datetime(2026, 2, 1, tzinfo=UTC)
    assert ledger.overdue(as_of) == Money("70.00", "EUR")  # the payment settles the oldest due first
    (open_first, open_second) = ledger.open_items(as_of)
    assert (open_first.open, open_first.days_overdue) == (Money("70.00", "EUR"), 12)
    assert (open_second.open, open_second.days_overdue) == (Money("50.00", "EUR"), 0)


def test_a_correction_is_a_new_entry_that_settles_the_entry_it_corrects():
    first = entry("invoice", "100.00", due=date(2026, 1, 20))
    second = entry("invoice", "80.00", due=date(2026, 1, 25))
    ledger = AccountLedger("acc-1", "EUR").post(first, second)
    corrected = ledger.post(entry("credit_note", "80.00", days=1, corrects=second.id, memo="wrong price"))
    assert len(corrected.entries) == 3
    assert ledger.entries == (first, second)  # append-only: the old ledger is unchanged
    assert corrected.balance() == Money("100.00", "EUR")
    assert [item.entry.id for item in corrected.open_items(T0 + timedelta(days=30))] == [first.id]


def test_entries_are_never_replaced_and_must_belong_to_the_ledger():
    invoice = entry("invoice", "10")
    ledger = AccountLedger("acc-1", "EUR").post(invoice)
    with pytest.raises(ConflictError):
        ledger.post(invoice)
    with pytest.raises(ValidationError) as caught:
        ledger.post(entry("payment", "1", account_id="acc-2"))
    assert caught.value.paths == ("[0].account_id",)
    with pytest.raises(ValidationError) as caught:
        ledger.post(entry("credit_note", "1", corrects="nothing"))
    assert caught.value.paths == ("[0].corrects",)
    with pytest.raises(CurrencyMismatch) as caught:
        ledger.post(LedgerEntry(account_id="acc-1", kind="payment", amount=Money(1, "USD"), posted_at=T0))
    assert caught.value.paths == ("[0].amount.currency",)


def test_bad_entries_are_refused_when_built():
    with pytest.raises(ValidationError) as caught:
        entry("payment", "-5", due=date(2026, 1, 1))
    assert caught.value.paths == ("amount.amount",)
    with pytest.raises(ValidationError) as caught:
        entry("payment", "5", due=date(2026, 1, 1))
    assert caught.value.paths == ("due_on",)
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValidationError) as caught:
        LedgerEntry(account_id="acc-1", kind="invoice", amount=Money(1, "EUR"), posted_at=naive)
    assert caught.value.paths == ("posted_at",)


def test_a_ledger_round_trips_through_json_and_names_a_bad_entry():
    ledger = AccountLedger("acc-1", "EUR").post(
        entry("invoice", "10.50", due=date(2026, 2, 1)), entry("refund", "1")
    )
    data = json.loads(json.dumps(ledger.to_json()))
    assert AccountLedger.from_json(data) == ledger
    data["entries"][1]["kind"] = "gift"
    with pytest.raises(ValidationError) as caught:
        AccountLedger.from_json(data)
    assert caught.value.paths == ("entries[1].kind",)


# -- loyalty ------------------------------------------------------------------------------------------

PROGRAM = LoyaltyProgram(
    name="club",
    currency="EUR",
    earn_rules=[
        EarnRule(name="a-point-per-euro", points_per_unit="1"),
        EarnRule(name="big-basket", when=field("total").ge(200), bonus=100),
        EarnRule(name="double-on-spring", when=field("campaign_id").eq("spring"), points_per_unit="1"),
    ],
    points_valid_for="P12M",
    tiers=[LoyaltyTier("member", 0), LoyaltyTier("silver", 500), LoyaltyTier("gold", 2000)],
)


def an_order(amount, *, days=0, **changes):
    line = LineItem(quantity=Decimal(1), unit_price=Money(amount, "EUR"))
    return Order(
        number=f"O-{amount}-{days}",
        currency="EUR",
        lines=[line],
        ordered_at=T0 + timedelta(days=days),
        created_at=T0,
        **changes,
    )


def test_orders_earn_points_by_rule_and_say_which_rules():
    ledger, event = PointsLedger(ADA).earn(an_order("250.90", campaign_id="spring"), PROGRAM)
    assert event is not None
    assert event.points == 250 + 100 + 250
    assert event.rules == ("a-point-per-euro", "big-basket", "double-on-spring")
    assert ledger.balance(T0) == 600
    assert EVENT_TYPES["points_earned"] is type(event)


def test_cancelled_orders_earn_nothing_and_an_order_earns_once():
    ledger, event = PointsLedger(ADA).earn(an_order("50", status="cancelled"), PROGRAM)
    assert (ledger.entries, event) == ((), None)
    order = an_order("50")
    ledger, _ = ledger.earn(order, PROGRAM)
    with pytest.raises(ConflictError):
        ledger.earn(order, PROGRAM)


def test_redeeming_more_than_the_balance_is_an_insufficient_balance_error():
    ledger, _ = PointsLedger(ADA).earn(an_order("120"), PROGRAM)
    ledger, event = ledger.redeem(100, at=T0 + timedelta(days=1), reason="coffee mug")
    assert (event.points, event.balance) == (100, 20)
    with pytest.raises(InsufficientBalance) as caught:
        ledger.redeem(21, at=T0 + timedelta(days=2))
    assert caught.value.paths == ("points",)
    with pytest.raises(ValidationError):
        ledger.redeem(0, at=T0 + timedelta(days=2))


def test_points_expire_after_the_period_and_lapsed_points_cannot_be_redeemed():
    ledger, _ = PointsLedger(ADA).earn(an_order("100"), PROGRAM)
    ledger, _ = ledger.earn(an_order("30", days=200), PROGRAM)
    a_year_on = T0 + timedelta(days=366)
    assert ledger.balance(a_year_on) == 30
    with pytest.raises(InsufficientBalance):
        ledger.redeem(31, at=a_year_on)
    expired, event = ledger.expire(a_year_on)
    assert event is not None
    assert (event.points, event.balance) == (100, 30)
    assert expired.balance(a_year_on) == 30
    assert expired.expire(a_year_on)[1] is None


def test_redemptions_take_the_points_that_lapse_first():
    ledger, _ = PointsLedger(ADA).earn(an_order("100"), PROGRAM)
    ledger, _ = ledger.earn(an_order("100", days=100), PROGRAM)
    ledger, _ = ledger.redeem(150, at=T0 + timedelta(days=101))
    assert ledger.balance(T0 + timedelta(days=366)) == 50  # the first lot went first; 50 of the second remain


def test_tiers_follow_rolling_twelve_month_spend_with_upgrade_and_downgrade_events():
    orders = [an_order("300"), an_order("300", days=30)]
    as_of = T0 + timedelta(days=31)
    assert rolling_spend(orders, as_of=as_of, currency="EUR") == Money("600", "EUR")
    up = review_tier(ADA, "member", orders, PROGRAM, as_of=as_of)
    assert up.tier == "silver"
    assert isinstance(up.event, TierUpgraded)
    assert (up.event.from_tier, up.event.to_tier, up.event.spend) == ("member", "silver", Money("600", "EUR"))
    assert event_from_data(event_to_data(up.event)) == up.event
    down = review_tier(ADA, "silver", orders, PROGRAM, as_of=T0 + timedelta(days=380))
    assert down.tier == "member"
    assert isinstance(down.event, TierDowngraded)
    same = review_tier(ADA, "silver", orders, PROGRAM, as_of=as_of)
    assert same.event is None
    assert EVENT_TYPES["loyalty_tier_upgraded"] is TierUpgraded
    assert EVENT_TYPES["loyalty_tier_downgraded"] is TierDowngraded


def test_a_program_is_checked_when_built_and_round_trips_through_json():
    assert LoyaltyProgram.from_json(json.loads(json.dumps(PROGRAM.to_json()))) == PROGRAM
    data = PROGRAM.to_json()
    data["earn_rules"][1]["when"] = {"field": "shoe_size", "op": "eq", "value": 1}
    with pytest.raises(RuleError) as caught:
        LoyaltyProgram.from_json(data)
    assert caught.value.path == "earn_rules[1].when.field"
    with pytest.raises(RuleError) as caught:
        LoyaltyProgram(name="x", currency="EUR", tiers=[LoyaltyTier("a", 0), LoyaltyTier("b", 0)])
    assert caught.value.path == "tiers[1].min_spend"
    with pytest.raises(RuleError) as caught:
        LoyaltyProgram(name="x", currency="EUR", points_valid_for="a year")
    assert caught.value.path == "points_valid_for"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"earn_rules": [{"name": "a", "when": {"all": [{"field": "total"}]}}]}, "earn_rules[0].when.all[0]"),
        ({"earn_rules": [{"name": "a", "points_per_unit": "x"}]}, "earn_rules[0].points_per_unit"),
        ({"earn_rules": [{"name": "a", "bonus": -1}]}, "earn_rules[0].bonus"),
        ({"earn_rules": [{"name": "a", "colour": "red"}]}, "earn_rules[0]"),
        ({"tiers": [{"name": "a", "min_spend": "-1"}]}, "tiers[0].min_spend"),
        ({"tiers": [{"name": "a"}]}, "tiers[0]"),
        ({"spend_window": "forever"}, "spend_window"),
    ],
)
def test_bad_programs_in_json_are_rule_errors_with_a_path(change, path):
    data = {**PROGRAM.to_json(), **change}
    with pytest.raises(RuleError) as caught:
        LoyaltyProgram.from_json(data)
    assert caught.value.path == path


def test_orders_in_another_currency_are_refused():
    usd = Order(
        number="U",
        currency="USD",
        lines=[LineItem(quantity=Decimal(1), unit_price=Money(5, "USD"))],
        created_at=T0,
    )
    with pytest.raises(CurrencyMismatch):
        PointsLedger(ADA).earn(usd, PROGRAM)
