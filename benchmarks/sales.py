"""Sales cases: pricing quote lines against 200 rules, and the first page of a customer timeline.

``sales-pricing`` prices synthetic quote lines (500 products in 20 families, one EUR price book with volume
tiers) against 200 pricing and configuration rules: product rules (``sku in [...] and quantity >= N``),
family and customer-tier rules, segment and channel rules, campaign rules, option rules (a surcharge, an
option requiring another) and approval rules. crmkit's ``price_line`` is compared with hand-written Python
closures doing the same arithmetic; the answer per line is its total, the names of the rules applied and
whether it needs approval.

``sales-timeline`` fills a SQLite store with activities (one hot contact with 10,000 of them, the rest
spread over 10,000 other contacts) and times the first page (50 entries) of a contact's timeline, against
raw ``sqlite3`` on its own table with a ``(contact_id, at)`` index. The store holds
``EVENTS_PER_LOOKUP x n`` activities (1,000,000 at full size; set ``CRMKIT_BENCH_TIMELINE_EVENTS`` to fix
it); building it is untimed but takes minutes at full size.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Case, Contender

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from benchmarks.harness import Work

__all__ = ["CASES", "RULE_COUNT", "make_lines", "make_lookups", "make_rule_specs"]

SEED = 9_009
RULE_COUNT = 200
PRODUCTS = 500
FAMILIES = 20
TIERS = ("bronze", "silver", "gold", "platinum")
SEGMENTS = ("smb", "mid", "enterprise")
CHANNELS = ("web", "partner", "direct")
CAMPAIGNS = tuple(f"c{n:02}" for n in range(12))
DAY = datetime(2026, 3, 2, tzinfo=UTC).date()


def _sku(number: int) -> str:
    return f"P{number:04}"


def _family(number: int) -> str:
    return f"fam{number % FAMILIES:02}"


def _list_price(number: int) -> Decimal:
    return Decimal(5 + (number * 37) % 995) + Decimal("0.99")


def _tier_price(number: int, quantity: Decimal) -> Decimal:
    """Products with an even number have volume breaks at 10 and 100 units (5 % and 10 % off)."""
    price = _list_price(number)
    if number % 2 == 0:
        if quantity >= 100:
            return (price * Decimal("0.90")).quantize(Decimal("0.01"))
        if quantity >= 10:
            return (price * Decimal("0.95")).quantize(Decimal("0.01"))
    return price


@dataclass(frozen=True)
class RuleSpec:
    """One rule as plain data, so crmkit and the hand-written peer build theirs from the same facts."""

    name: str
    kind: str  # product, family, segment, campaign, install, premium, approval
    skus: tuple[str, ...] = ()
    family: str = ""
    tiers: tuple[str, ...] = ()
    segment: str = ""
    channel: str = ""
    campaign: str = ""
    quantity: int = 0
    rate: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)


def make_rule_specs(seed: int = SEED) -> list[RuleSpec]:
    """The 200 rules: product, family and tier, segment and channel, campaign, option and approval rules."""
    rng = random.Random(seed)
    specs: list[RuleSpec] = []
    for index in range(120):
        skus = tuple(sorted({_sku(rng.randrange(PRODUCTS)) for _ in range(3)}))
        quantity = rng.choice((1, 5, 10, 25, 50))
        rate = Decimal(rng.randint(1, 5)) / 100
        specs.append(RuleSpec(f"product-{index}", "product", skus=skus, quantity=quantity, rate=rate))
    for index in range(30):
        tiers = tuple(sorted(rng.sample(TIERS, 2)))
        specs.append(
            RuleSpec(f"family-{index}", "family", family=_family(index), tiers=tiers, rate=Decimal("0.02"))
        )
    for index in range(20):
        segment, channel = SEGMENTS[index % 3], CHANNELS[(index // 3) % 3]
        rate = Decimal("0.01") * (1 + index % 3)
        specs.append(RuleSpec(f"segment-{index}", "segment", segment=segment, channel=channel, rate=rate))
    specs.extend(
        RuleSpec(f"campaign-{index}", "campaign", campaign=CAMPAIGNS[index], rate=Decimal("0.03"))
        for index in range(10)
    )
    specs.extend(
        RuleSpec(f"install-{index}", "install", family=_family(index), amount=Decimal(25))
        for index in range(5)
    )
    specs.extend(RuleSpec(f"premium-{index}", "premium", family=_family(index)) for index in range(5))
    specs.extend(RuleSpec(f"approval-{index}", "approval", quantity=400 + 40 * index) for index in range(10))
    return specs


SPECS: tuple[RuleSpec, ...] = tuple(make_rule_specs())


def make_lines(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """The first ``n`` quote lines of a seeded stream: product, quantity, options and customer facts."""
    rng = random.Random(seed + 1)
    lines = []
    for _ in range(n):
        options = set()
        if rng.random() < 0.3:
            options.add("install")
        if rng.random() < 0.1:
            options.update({"premium", "install"})  # premium requires install: generated lines are valid
        lines.append(
            {
                "product": rng.randrange(PRODUCTS),
                "quantity": Decimal(rng.choice((1, 1, 2, 3, 5, 10, 12, 20, 50, 100, 250, 500))),
                "options": frozenset(options),
                "customer_tier": rng.choice(TIERS),
                "segment": rng.choice(SEGMENTS),
                "channel": rng.choice(CHANNELS),
                "campaign_id": rng.choice((*CAMPAIGNS, None, None, None, None)),
            }
        )
    return lines


def _answer(total: Decimal, names: Sequence[str], *, approval: bool) -> tuple[str, tuple[str, ...], bool]:
    return (str(total), tuple(names), approval)


# -- pricing contenders ------------------------------------------------------------------------------


def _crmkit_rules() -> Any:
    from crmkit.conditions import field  # noqa: PLC0415 - a missing module skips, not fails
    from crmkit.sales import Action, PricingRule, PricingRules  # noqa: PLC0415

    rules = []
    for spec in SPECS:
        if spec.kind == "product":
            when = field("sku").in_(list(spec.skus)) & field("quantity").ge(spec.quantity)
            then = [Action(effect="discount", rate=spec.rate)]
        elif spec.kind == "family":
            when = field("family").eq(spec.family) & field("customer_tier").in_(list(spec.tiers))
            then = [Action(effect="discount", rate=spec.rate)]
        elif spec.kind == "segment":
            when = field("segment").eq(spec.segment) & field("channel").eq(spec.channel)
            then = [Action(effect="discount", rate=spec.rate)]
        elif spec.kind == "campaign":
            when = field("campaign_id").eq(spec.campaign)
            then = [Action(effect="discount", rate=spec.rate)]
        elif spec.kind == "install":
            when = field("family").eq(spec.family) & field("options").contains("install")
            then = [Action(effect="surcharge", amount=spec.amount)]
        elif spec.kind == "premium":
            when = field("family").eq(spec.family) & field("options").contains("premium")
            then = [Action(effect="require_option", option="install")]
        else:
            when = field("quantity").ge(spec.quantity)
            then = [Action(effect="require_approval")]
        rules.append(PricingRule(name=spec.name, when=when, then=then))
    return PricingRules(rules, approval_threshold="0.15")


def _crmkit_catalog() -> Any:
    from crmkit.entities import Product  # noqa: PLC0415
    from crmkit.sales import Catalog, PriceBook, PriceEntry, VolumeTier  # noqa: PLC0415

    products, entries = [], []
    for number in range(PRODUCTS):
        products.append(
            Product(id=_sku(number), sku=_sku(number), name=f"Product {number}", family=_family(number))
        )
        tiers = (
            [
                VolumeTier(min_quantity=Decimal(10), unit_price=_tier_price(number, Decimal(10))),
                VolumeTier(min_quantity=Decimal(100), unit_price=_tier_price(number, Decimal(100))),
            ]
            if number % 2 == 0
            else []
        )
        entries.append(PriceEntry(product_id=_sku(number), unit_price=_list_price(number), tiers=tiers))
    book = PriceBook(id="eu", name="EU list", currency="EUR", entries=entries)
    return Catalog(products, [book])


def _crmkit_pricing(lines: Sequence[dict[str, Any]]) -> Work:
    from crmkit.sales import LineRequest, price_line  # noqa: PLC0415

    rules, catalog = _crmkit_rules(), _crmkit_catalog()
    requests = [
        LineRequest(
            product_id=_sku(line["product"]),
            quantity=line["quantity"],
            options=line["options"],
            customer_tier=line["customer_tier"],
            segment=line["segment"],
            channel=line["channel"],
            campaign_id=line["campaign_id"],
        )
        for line in lines
    ]

    def work() -> list[Any]:
        answers = []
        for request in requests:
            priced = price_line(request, catalog=catalog, rules=rules, currency="EUR", on=DAY)
            answers.append(_answer(priced.total.amount, priced.rule_names, approval=priced.approval_required))
        return answers

    return work


def _closure(spec: RuleSpec) -> Callable[[dict[str, Any]], bool]:
    if spec.kind == "product":
        skus, quantity = frozenset(spec.skus), spec.quantity
        return lambda r: r["sku"] in skus and r["quantity"] >= quantity
    if spec.kind == "family":
        family, tiers = spec.family, frozenset(spec.tiers)
        return lambda r: r["family"] == family and r["customer_tier"] in tiers
    if spec.kind == "segment":
        segment, channel = spec.segment, spec.channel
        return lambda r: r["segment"] == segment and r["channel"] == channel
    if spec.kind == "campaign":
        campaign = spec.campaign
        return lambda r: r["campaign_id"] == campaign
    if spec.kind in {"install", "premium"}:
        family, option = spec.family, spec.kind
        return lambda r: r["family"] == family and option in r["options"]
    quantity = spec.quantity
    return lambda r: r["quantity"] >= quantity


def _hand_written(lines: Sequence[dict[str, Any]]) -> Work:
    rules = [(spec, _closure(spec)) for spec in SPECS]
    cent, threshold = Decimal("0.01"), Decimal("0.15")

    def price(line: dict[str, Any]) -> tuple[str, tuple[str, ...], bool]:
        number = line["product"]
        record = {**line, "sku": _sku(number), "family": _family(number)}
        unit = _tier_price(number, line["quantity"])
        discount, surcharge, names, approval = Decimal(0), Decimal(0), [], False
        for spec, holds in rules:
            if not holds(record):
                continue
            names.append(spec.name)
            if spec.kind in {"product", "family", "segment", "campaign"}:
                discount += spec.rate
            elif spec.kind == "install":
                surcharge += spec.amount
            elif spec.kind == "premium" and "install" not in line["options"]:
                msg = f"{spec.name} requires install"
                raise ValueError(msg)
            elif spec.kind == "approval":
                approval = True
        total = ((unit + surcharge) * line["quantity"] * (1 - discount)).quantize(
            cent, rounding=ROUND_HALF_EVEN
        )
        return _answer(total, names, approval=approval or discount > threshold)

    def work() -> list[Any]:
        return [price(line) for line in lines]

    return work


def _pricing_summary(answers: Sequence[Any]) -> str:
    rules = sum(len(names) for _, names, _ in answers)
    approvals = sum(1 for _, _, approval in answers if approval)
    per_line = rules / max(len(answers), 1)
    return (
        f"{len(answers):,} lines against {RULE_COUNT} rules: {per_line:.1f} rules applied per line,"
        f" {approvals:,} lines need approval"
    )


# -- timeline ----------------------------------------------------------------------------------------

EVENTS_PER_LOOKUP = 20_000
HOT_EVENTS = 10_000
OTHER_CONTACTS = 10_000
PAGE = 50
T0 = datetime(2024, 1, 1, tzinfo=UTC)
_BUILT: dict[int, tuple[Path, Path]] = {}


def _event_count(lookups: int) -> int:
    fixed = os.environ.get("CRMKIT_BENCH_TIMELINE_EVENTS")
    return int(fixed) if fixed else EVENTS_PER_LOOKUP * lookups


def make_lookups(n: int) -> list[tuple[str, int]]:
    """``n`` first-page lookups: mostly the hot contact, every fourth a random other contact.

    Each item carries the store size it is meant for, so every contender reads the same store.
    """
    rng = random.Random(SEED + 2)
    events = _event_count(n)
    return [("c-hot" if index % 4 else f"c-{rng.randrange(OTHER_CONTACTS)}", events) for index in range(n)]


def _events(total: int) -> Any:
    """``(id, contact_id, occurred_at, activity_type)`` of every activity, from a fixed seed, in chunks."""
    rng = random.Random(SEED + 3)
    hot = min(HOT_EVENTS, total // 10)
    kinds = ("email", "call", "meeting", "note")
    chunk = []
    for number in range(total):
        contact = "c-hot" if number < hot else f"c-{rng.randrange(OTHER_CONTACTS)}"
        at = T0 + timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        chunk.append((f"a{number:08}", contact, at, kinds[number % 4]))
        if len(chunk) == 10_000:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _build(total: int) -> tuple[Path, Path]:
    """Fill a crmkit SQLite store and a raw table with the same activities (untimed, cached per size)."""
    if total in _BUILT:
        return _BUILT[total]
    from crmkit.clock import FixedClock, use_clock  # noqa: PLC0415
    from crmkit.entities import Activity  # noqa: PLC0415
    from crmkit.storage import open_store  # noqa: PLC0415

    folder = Path(tempfile.mkdtemp(prefix="crmkit-bench-timeline-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # a full-size store takes about a gigabyte
    crm_path, raw_path = folder / "crm.db", folder / "raw.db"
    raw = sqlite3.connect(raw_path)
    raw.execute("CREATE TABLE events (id TEXT PRIMARY KEY, contact_id TEXT, at TEXT, kind TEXT)")
    with open_store(f"sqlite:///{crm_path}") as store, use_clock(FixedClock(T0)):
        for chunk in _events(total):
            activities = [
                Activity(id=id_, activity_type=kind, contact_id=contact, occurred_at=at, created_at=T0)
                for id_, contact, at, kind in chunk
            ]
            with store.transaction() as tx:
                tx[Activity].bulk_add(activities, strict=True)
                tx.commit()
            raw.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                [(id_, contact, at.isoformat(), kind) for id_, contact, at, kind in chunk],
            )
        # The same index both sides: a contact's activities, newest first.
        store.add_index(Activity, "contact_id", ("occurred_at", "desc"))
    raw.execute("CREATE INDEX events__contact_at ON events (contact_id, at DESC, id)")
    raw.commit()
    raw.close()
    _BUILT[total] = (crm_path, raw_path)
    return _BUILT[total]


def _crmkit_timeline(lookups: Sequence[tuple[str, int]]) -> Work:
    from crmkit.sales import customer_timeline  # noqa: PLC0415
    from crmkit.storage import open_store  # noqa: PLC0415

    crm_path, _ = _build(lookups[0][1])
    store = open_store(f"sqlite:///{crm_path}")

    def work() -> list[Any]:
        answers = []
        with store.transaction() as tx:
            for contact, _ in lookups:
                page = customer_timeline(tx, contact_id=contact, limit=PAGE)
                answers.append(tuple(entry.record.id for entry in page.entries))
        return answers

    return work


def _raw_timeline(lookups: Sequence[tuple[str, int]]) -> Work:
    _, raw_path = _build(lookups[0][1])
    connection = sqlite3.connect(raw_path)
    query = "SELECT id FROM events WHERE contact_id = ? ORDER BY at DESC, id LIMIT ?"

    def work() -> list[Any]:
        return [tuple(row[0] for row in connection.execute(query, (contact, PAGE))) for contact, _ in lookups]

    return work


def _timeline_summary(answers: Sequence[Any]) -> str:
    return f"{len(answers):,} first pages of {PAGE} entries, {sum(map(len, answers)):,} entries in all"


CASES = (
    Case(
        name="sales-pricing",
        description=f"price quote lines against {RULE_COUNT} pricing and configuration rules",
        unit="line",
        sizes={"tiny": 2_000, "small": 20_000, "full": 100_000},
        make_items=make_lines,
        contenders=(
            Contender("crmkit", _crmkit_pricing, distribution="crmkit"),
            Contender("hand-written", _hand_written),
        ),
        summarize=_pricing_summary,
    ),
    Case(
        name="sales-timeline",
        description="first timeline page (50) of a contact, SQLite store of 20,000 activities per lookup",
        unit="page",
        sizes={"tiny": 5, "small": 20, "full": 50},
        make_items=make_lookups,
        contenders=(
            Contender("crmkit", _crmkit_timeline, distribution="crmkit"),
            Contender("sqlite3-raw", _raw_timeline),
        ),
        summarize=_timeline_summary,
    ),
)
