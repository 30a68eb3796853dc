"""Properties of crmkit.sales: totals, ledgers, points, rules and the quote lifecycle, for any input."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import EntityRef, LineItem, Money, Order, Product, Quote, TransitionError
from crmkit.conditions import field
from crmkit.errors import InsufficientBalance, RuleError
from crmkit.money import minor_units
from crmkit.sales import (
    QUOTE_LIFECYCLE,
    AccountLedger,
    Action,
    Catalog,
    EarnRule,
    LedgerEntry,
    LoyaltyProgram,
    PointsLedger,
    PriceBook,
    PriceEntry,
    PricingRule,
    PricingRules,
    VolumeTier,
    move_quote,
    quote_totals,
)
from crmkit.testing.strategies import line_items

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=60, deadline=None)

currencies = st.sampled_from(["EUR", "JPY", "BHD", "USD"])


@SETTINGS
@given(currencies.flatmap(lambda c: st.lists(line_items(c), max_size=8).map(lambda lines: (c, lines))))
def test_quote_totals_equal_the_sum_of_the_rounded_lines(currency_and_lines):
    currency, lines = currency_and_lines
    quote = Quote(number="Q", currency=currency, lines=lines, created_at=T0)
    totals = quote_totals(quote)
    exponent = -minor_units(currency)
    assert totals.net.amount == sum((line.total.amount for line in lines), Decimal(0))
    assert totals.tax.amount == sum((line.tax.amount for line in lines), Decimal(0))
    assert totals.total == totals.net + totals.tax
    assert totals.gross - totals.discount == totals.net
    for line in totals.lines:
        for amount in (line.gross, line.net, line.tax, line.total):
            assert amount.amount == amount.amount.quantize(Decimal(1).scaleb(exponent))


entries = st.builds(
    lambda kind, cents, days, due: LedgerEntry(
        account_id="acc",
        kind=kind,
        amount=Money(Decimal(cents) / 100, "EUR"),
        posted_at=T0 + timedelta(days=days),
        due_on=(date(2026, 1, 1) + timedelta(days=due))
        if kind in {"invoice", "debit_note", "refund"}
        else None,
    ),
    st.sampled_from(["invoice", "debit_note", "refund", "payment", "credit_note"]),
    st.integers(1, 10**8),
    st.integers(0, 400),
    st.integers(0, 400),
)


@SETTINGS
@given(st.lists(entries, max_size=20), st.integers(-10, 420))
def test_the_ledger_balance_equals_the_sum_of_the_signed_entries(posted, day):
    ledger = AccountLedger("acc", "EUR").post(*posted)
    assert AccountLedger.from_json(ledger.to_json()) == ledger
    as_of = T0 + timedelta(days=day)
    counted = [e for e in posted if e.posted_at <= as_of]
    debits = sum((e.amount.amount for e in counted if e.kind.is_debit), Decimal(0))
    paid = sum((e.amount.amount for e in counted if not e.kind.is_debit), Decimal(0))
    assert ledger.balance(as_of).amount == debits - paid
    open_total = sum((item.open.amount for item in ledger.open_items(as_of)), Decimal(0))
    assert open_total >= max(ledger.balance(as_of).amount, Decimal(0))  # what is open covers what is owed
    assert Decimal(0) <= ledger.overdue(as_of).amount <= open_total


PROGRAM = LoyaltyProgram(
    name="club",
    currency="EUR",
    earn_rules=[
        EarnRule(name="per-euro", points_per_unit="1"),
        EarnRule(name="bonus", when=field("total").ge(50), bonus=10),
    ],
    points_valid_for="P3M",
)
operations = st.lists(
    st.tuples(st.sampled_from(["earn", "redeem", "expire"]), st.integers(0, 40), st.integers(1, 300)),
    max_size=25,
)


@SETTINGS
@given(operations)
def test_points_never_go_negative_and_redeeming_too_much_changes_nothing(steps):
    ledger = PointsLedger(EntityRef("contact", "c"))
    moment = T0
    for number, (operation, days, amount) in enumerate(steps):
        moment += timedelta(days=days)
        if operation == "earn":
            line = LineItem(quantity=Decimal(1), unit_price=Money(amount, "EUR"))
            order = Order(number=str(number), currency="EUR", lines=[line], ordered_at=moment, created_at=T0)
            ledger, _ = ledger.earn(order, PROGRAM)
        elif operation == "redeem":
            before = ledger.balance(moment)
            try:
                ledger, event = ledger.redeem(amount, at=moment)
            except InsufficientBalance:
                assert amount > before
            else:
                assert event.balance == before - amount
        else:
            ledger, _ = ledger.expire(moment)
        for probe in (moment, moment + timedelta(days=45), moment + timedelta(days=400)):
            assert ledger.balance(probe) >= 0


names = st.text("abcdefghij-", min_size=1, max_size=10)
actions = st.one_of(
    st.builds(Action, effect=st.just("discount"), rate=st.decimals(0, 1, places=2)),
    st.builds(Action, effect=st.just("surcharge"), rate=st.decimals(0, 1, places=2)),
    st.builds(Action, effect=st.just("surcharge"), amount=st.decimals(0, 1000, places=2)),
    st.builds(Action, effect=st.sampled_from(["require_option", "exclude_option"]), option=names),
    st.builds(Action, effect=st.just("require_approval")),
)
conditions = st.one_of(
    st.builds(lambda q: field("quantity").ge(q), st.integers(0, 1000)),
    st.builds(lambda s: field("sku").in_(s), st.lists(names, min_size=1, max_size=3)),
    st.builds(lambda t, q: field("customer_tier").eq(t) & field("quantity").lt(q), names, st.integers(0, 9)),
    st.builds(lambda o: ~field("options").contains(o), names),
)
rule_sets = st.lists(
    st.builds(
        PricingRule,
        name=names,
        when=conditions,
        then=st.lists(st.sampled_from(["discount", "approval"]).flatmap(lambda _: actions), max_size=3),
        otherwise=st.lists(actions, max_size=2),
    ),
    max_size=6,
    unique_by=lambda rule: rule.name,
)


@SETTINGS
@given(rule_sets, st.decimals(0, 1, places=2))
def test_pricing_rules_round_trip_through_json(rules, threshold):
    try:
        built = PricingRules(rules, approval_threshold=threshold)
    except RuleError:  # a drawn set may conflict on its face (require and exclude one option)
        return
    assert PricingRules.from_json(built.to_json()) == built


tiers = st.lists(st.decimals(0, 1000, places=2), max_size=4, unique=True).map(sorted)


@SETTINGS
@given(
    st.lists(st.tuples(names, st.decimals(0, 1000, places=2), tiers), max_size=5, unique_by=lambda e: e[0])
)
def test_price_books_round_trip_through_json(rows):
    book = PriceBook(
        id="b",
        name="book",
        currency="EUR",
        entries=[
            PriceEntry(
                product_id=name,
                unit_price=price,
                tiers=[VolumeTier(min_quantity=q + 1, unit_price=price) for q in breaks],
            )
            for name, price, breaks in rows
        ],
    )
    assert PriceBook.from_json(book.to_json()) == book


@SETTINGS
@given(st.lists(st.sampled_from(["send", "accept", "reject", "expire", "supersede", "reopen"]), max_size=8))
def test_the_quote_lifecycle_keeps_stage_and_status_together_and_terminal_stages_final(moves):
    line = LineItem(quantity=Decimal(1), unit_price=Money(1, "EUR"))
    quote = Quote(number="Q", currency="EUR", lines=[line], valid_until=date(2026, 2, 1), created_at=T0)
    moment = T0
    for move in moves:
        moment += timedelta(hours=1)
        allowed = move in QUOTE_LIFECYCLE.allowed_transitions(quote.stage)
        try:
            quote, event = move_quote(quote, move, at=moment)
        except TransitionError:
            assert not allowed  # "reopen" is no quote transition at all
        else:
            assert allowed
            assert event.to_stage == quote.stage
        assert quote.stage == str(quote.status)
    stages = [change.to_stage for change in quote.stage_history]
    terminal = {s.name for s in QUOTE_LIFECYCLE.stages if s.terminal}
    assert all(stage not in terminal for stage in stages[:-1])


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(1, 1000), st.decimals(0, 500, places=2)), max_size=5, unique_by=lambda t: t[0]
    ),
    st.decimals(0, 2000, places=1),
)
def test_the_volume_tier_is_the_last_one_the_quantity_reaches(breaks, quantity):
    tiers = [VolumeTier(min_quantity=q, unit_price=p) for q, p in sorted(breaks)]
    book = PriceBook(
        id="b", name="b", currency="EUR", entries=[PriceEntry(product_id="p", unit_price=7, tiers=tiers)]
    )
    catalog = Catalog([Product(id="p", sku="P", name="P", created_at=T0)], [book])
    found = catalog.lookup("p", quantity=quantity, currency="EUR", on=T0.date())
    reached = [tier for tier in tiers if tier.min_quantity <= quantity]
    assert found.tier == (reached[-1] if reached else None)
    assert found.unit_price == Money(reached[-1].unit_price if reached else 7, "EUR")
