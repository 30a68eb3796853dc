"""A seeded, realistic company for ``crmkit demo``, run through crmkit's real APIs.

Two years of a B2B company that sells machines and their consumables: a sales team in two territories
with working hours, leads from several channels with UTM campaigns (some rows broken, some duplicates),
captured, merged, scored and routed; leads worked through the lead lifecycle and converted; deals through
the pipeline; first orders and repeat orders; support tickets answered in business hours; and e-mail
campaigns with an A/B split, consent and a holdout. Every record is built by crmkit's own functions
(capture, dedupe, scoring, routing, lifecycles, conversion, audiences) and stored in one store transaction;
the randomness is only in what the simulated people do, and the seed fixes it.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.clock import FixedClock
from crmkit.conditions import field
from crmkit.entities import (
    Activity,
    ActivityKind,
    Campaign,
    CampaignStatus,
    Channel,
    Consent,
    ConsentStatus,
    Contact,
    Direction,
    EntityRef,
    Lead,
    LineItem,
    Opportunity,
    Order,
    OrderStatus,
    Priority,
    Team,
    Ticket,
    User,
    WorkingHours,
)
from crmkit.errors import ConsentError, ValidationError
from crmkit.leads import (
    Assign,
    ConsentCapture,
    Directory,
    MatchIndex,
    MatchRule,
    MergeResult,
    Router,
    RoutingRule,
    RoutingRules,
    Scorer,
    ScoreRule,
    ScoringModel,
    Utm,
    apply_score,
    capture_lead,
    convert_lead,
    screen_duplicates,
)
from crmkit.lifecycle import LEAD_LIFECYCLE, OPPORTUNITY_LIFECYCLE, TICKET_LIFECYCLE
from crmkit.money import Money
from crmkit.segmentation import HOLDOUT, Arm, Split, build_audience
from crmkit.workflows import BusinessCalendar, SlaBreached, SlaPolicy, SlaTarget, Workflow, WorkflowEngine

if TYPE_CHECKING:
    from collections.abc import Callable

#: The demo company's "today": every number is computed as of this moment.
AS_OF = datetime(2026, 9, 30, 18, 0, tzinfo=UTC)
#: Named sizes: how many lead rows arrive over the two years.
SIZES = {"tiny": 300, "small": 3_000, "medium": 10_000, "large": 40_000}
DEFAULT_SIZE = "small"
CURRENCY = "EUR"

_START = datetime(2024, 10, 1, tzinfo=UTC)
_FIRST = (
    "Ada",
    "Grace",
    "Hedy",
    "Alan",
    "Katherine",
    "Emmy",
    "Claude",
    "Marie",
    "Lise",
    "Niels",
    "Rosalind",
    "Barbara",
    "Edsger",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Tim",
    "Sophie",
    "Carl",
    "Mary",
    "Yuki",
)
_LAST = (
    "Lovelace",
    "Hopper",
    "Lamarr",
    "Turing",
    "Johnson",
    "Noether",
    "Shannon",
    "Curie",
    "Meitner",
    "Bohr",
    "Franklin",
    "Liskov",
    "Dijkstra",
    "Knuth",
    "Allen",
    "Backus",
    "Hamilton",
    "Berners-Lee",
    "Wilson",
    "Gauss",
    "Somerville",
    "Tanaka",
)
_COMPANIES = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Gringotts",
    "Oscorp",
    "Monarch",
    "Duff",
    "Nakatomi",
    "Aperture",
)
_COUNTRIES = (
    ("DE", 24),
    ("AT", 6),
    ("CH", 6),
    ("GB", 14),
    ("FR", 10),
    ("NL", 6),
    ("US", 22),
    ("CA", 6),
    ("BR", 6),
)
_INDUSTRIES = ("manufacturing", "retail", "software", "logistics", "healthcare", "food")
_EMEA = frozenset({"DE", "AT", "CH", "GB", "FR", "NL"})


@attrs.frozen
class ChannelPlan:
    """How one acquisition channel brings leads: its share, UTM tags and quarterly spend."""

    channel: str
    share: int
    campaign: str | None
    utm_source: str | None
    utm_medium: str | None
    quarterly_spend: int
    consent_rate: float
    quality: float


_CHANNELS = (
    ChannelPlan("web_form", 32, "Search ads", "google", "cpc", 9_000, 0.6, 1.0),
    ChannelPlan("social", 18, "Social ads", "linkedin", "paid_social", 6_000, 0.5, 0.7),
    ChannelPlan("event", 12, "Trade fair", "expo", "event", 12_000, 0.3, 1.3),
    ChannelPlan("email", 14, "Newsletter", "newsletter", "email", 1_500, 1.0, 0.9),
    ChannelPlan("partner", 12, "Partner program", "partner", "referral", 4_000, 0.2, 1.4),
    ChannelPlan("referral", 12, None, None, None, 0, 0.2, 1.6),
)


@attrs.define
class Company:
    """Everything the simulation made, ready to store, and what happened on the way."""

    users: list[User] = attrs.Factory(list)
    teams: list[Team] = attrs.Factory(list)
    campaigns: list[Campaign] = attrs.Factory(list)
    leads: dict[str, Lead] = attrs.Factory(dict)
    consents: list[Consent] = attrs.Factory(list)
    contacts: list[Contact] = attrs.Factory(list)
    accounts: dict[str, Any] = attrs.Factory(dict)
    opportunities: list[Opportunity] = attrs.Factory(list)
    orders: list[Order] = attrs.Factory(list)
    tickets: list[Ticket] = attrs.Factory(list)
    activities: list[Activity] = attrs.Factory(list)
    events: list[Any] = attrs.Factory(list)
    facts: Counter[str] = attrs.Factory(Counter)
    routed: Counter[str] = attrs.Factory(Counter)
    consenting: set[str] = attrs.Factory(set)
    ids: random.Random = attrs.Factory(random.Random)

    def new_id(self) -> str:
        """A record id like the default ones (32 hex digits), drawn from the seeded generator."""
        return f"{self.ids.getrandbits(128):032x}"


def business_calendar() -> BusinessCalendar:
    """The support team's calendar: 08:00-18:00 on weekdays in Berlin, minus public holidays."""
    holidays = [
        f"{year}-{day}"
        for year in (2024, 2025, 2026)
        for day in ("01-01", "05-01", "10-03", "12-25", "12-26")
    ]
    return BusinessCalendar.office_hours("Europe/Berlin", "08:00", "18:00", holidays=holidays)


#: First-response targets by priority, in the support team's business hours.
SLA_HOURS = {"urgent": 1, "high": 4, "normal": 8, "low": 24}


@attrs.frozen
class Support:
    """The support desk: its calendar, its SLA policy and the workflow escalating late urgent tickets."""

    calendar: BusinessCalendar
    policy: SlaPolicy
    engine: WorkflowEngine

    @classmethod
    def build(cls) -> Support:
        """The desk of the demo company."""
        calendar = business_calendar()
        policy = SlaPolicy(
            "support",
            calendar,
            [SlaTarget("first_response", f"PT{hours}H", priority=p) for p, hours in SLA_HOURS.items()],
        )
        escalation = Workflow.from_json(
            {
                "name": "late-first-response",
                "entity": "ticket",
                "trigger": {"type": "event", "event": "sla_breached"},
                "event_conditions": {"field": "metric", "op": "eq", "value": "first_response"},
                "conditions": {"field": "priority", "op": "in", "value": ["high", "urgent"]},
                "steps": [
                    {"action": "escalate", "params": {"level": "second_line", "transition": "escalate"}}
                ],
            }
        )
        return cls(calendar, policy, WorkflowEngine([escalation]))


def _team() -> tuple[list[User], list[Team]]:
    weekdays = [WorkingHours(day, time(8), time(18)) for day in range(5)]
    teams = [
        Team(id="emea", name="EMEA sales"),
        Team(id="americas", name="Americas sales"),
        Team(id="support", name="Customer support"),
    ]
    people = [
        ("anna", "Anna Berg", "emea", "Europe/Berlin"),
        ("ben", "Ben Carter", "emea", "Europe/London"),
        ("chloe", "Chloe Martin", "emea", "Europe/Paris"),
        ("diego", "Diego Silva", "americas", "America/Sao_Paulo"),
        ("emma", "Emma Brown", "americas", "America/New_York"),
        ("frank", "Frank Lee", "americas", "America/Toronto"),
        ("gita", "Gita Rao", "support", "Europe/Berlin"),
        ("hugo", "Hugo Weber", "support", "Europe/Berlin"),
    ]
    users = [
        User(
            id=uid,
            name=name,
            email=f"{uid}@demo-company.example",
            team_id=team,
            timezone=tz,
            working_hours=tuple(weekdays),
            created_at=_START,
        )
        for uid, name, team, tz in people
    ]
    return users, teams


def _routing() -> RoutingRules:
    return RoutingRules(
        rules=[
            RoutingRule(
                "key_accounts", field("employees").ge(5000), Assign(strategy="fixed", user_id="anna")
            ),
            RoutingRule(
                "emea", field("country").in_(sorted(_EMEA)), Assign(strategy="round_robin", team_id="emea")
            ),
            RoutingRule(
                "americas",
                field("country").in_(["US", "CA", "BR"]),
                Assign(
                    strategy="territory",
                    field="country",
                    territories={"US": ["emma", "frank"], "CA": ["frank"], "BR": ["diego"]},
                ),
            ),
        ],
        fallback_queue="triage",
        seed=11,
    )


def _scoring() -> ScoringModel:
    return ScoringModel(
        rules=[
            ScoreRule(
                name="core_market", condition=field("country").in_(["DE", "AT", "CH", "GB", "US"]), points=20
            ),
            ScoreRule(name="mid_market", condition=field("employees").ge(200), points=25),
            ScoreRule(name="enterprise", condition=field("employees").ge(2000), points=15),
            ScoreRule(
                name="industry_fit",
                condition=field("industry").in_(["manufacturing", "logistics", "food"]),
                points=20,
            ),
            ScoreRule(name="has_phone", condition=field("phone").exists(), points=10),
        ]
    )


def _when(rng: random.Random, start: datetime, end: datetime, *, growth: float = 1.0) -> datetime:
    """A business-like moment between ``start`` and ``end``, more of them later when ``growth`` > 1."""
    u = rng.random() ** (1 / growth)
    moment = start + (end - start) * u
    day = moment.date()
    while day.weekday() >= 5 and rng.random() < 0.85:  # noqa: PLR2004 - few leads at weekends
        day -= timedelta(days=1)
    hour = rng.choice((8, 9, 9, 10, 10, 11, 11, 13, 14, 14, 15, 16, 17, 20, 22))
    return datetime.combine(day, time(hour, rng.randrange(60)), UTC)


def _campaigns(rng: random.Random) -> list[Campaign]:
    campaigns = []
    for quarter in range(8):
        first = date(2024 + (9 + 3 * quarter) // 12, (9 + 3 * quarter) % 12 + 1, 1)
        starts = datetime.combine(first, time(), UTC)
        label = f"{first.year}q{(first.month - 1) // 3 + 1}"
        for plan in _CHANNELS:
            if plan.campaign is None:
                continue
            cost = Decimal(round(plan.quarterly_spend * rng.uniform(0.8, 1.25)))
            campaigns.append(
                Campaign(
                    id=f"{plan.channel}-{label}",
                    name=f"{plan.campaign} {label.upper()}",
                    channel=Channel(plan.channel),
                    status=CampaignStatus.COMPLETED
                    if starts + timedelta(days=92) < AS_OF
                    else CampaignStatus.ACTIVE,
                    budget=Money(plan.quarterly_spend, CURRENCY),
                    actual_cost=Money(cost, CURRENCY),
                    starts_at=starts,
                    ends_at=starts + timedelta(days=91),
                    utm_campaign=f"{plan.channel}-{label}",
                    created_at=starts - timedelta(days=14),
                )
            )
    return campaigns


def _campaign_of(plan: ChannelPlan, at: datetime) -> str | None:
    if plan.campaign is None:
        return None
    months = (at.year - 2024) * 12 + at.month - 10
    quarter = months // 3
    first = date(2024 + (9 + 3 * quarter) // 12, (9 + 3 * quarter) % 12 + 1, 1)
    return f"{plan.channel}-{first.year}q{(first.month - 1) // 3 + 1}"


def _lead_row(rng: random.Random, number: int) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    company = rng.choice(_COMPANIES)
    country = rng.choices([c for c, _ in _COUNTRIES], [w for _, w in _COUNTRIES])[0]
    domain = f"{company.lower()}-{country.lower()}{number % 97}.example"
    row: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "email": f" {first}.{last}{number}@{domain} ".upper()
        if number % 9 == 0
        else f"{first}.{last}{number}@{domain}",
        "company": f"{company} {country}",
        "country": country,
        "industry": rng.choice(_INDUSTRIES),
        "employees": int(10 ** rng.uniform(1, 4)),
    }
    if rng.random() < 0.4:  # noqa: PLR2004 - 40 % leave a phone number
        row["phone"] = f"+1 202 555 {rng.randrange(10_000):04d}" if country in {"US", "CA"} else None
        if row["phone"] is None:
            del row["phone"]
    return row


class Progress:
    """Reports progress through a callback: ``(step name, done, total)``."""

    def __init__(self, report: Callable[[str, int, int], None] | None) -> None:
        self._report = report

    def __call__(self, step: str, done: int, total: int) -> None:
        if self._report is not None:
            self._report(step, done, total)


def simulate(
    size: int, seed: int, *, state: Any, progress: Callable[[str, int, int], None] | None = None
) -> Company:
    """Run two years of the company; return every record made. ``state`` keeps routing turns: ``tx.state``."""
    rng = random.Random(seed)  # noqa: S311 - simulated behaviour, not security
    tick = Progress(progress)
    company = Company(ids=random.Random(f"ids-{seed}"))  # noqa: S311 - reproducible ids, not security
    company.users, company.teams = _team()
    company.campaigns = _campaigns(rng)
    clock = FixedClock(_START)
    # attrs types a converter=tuple parameter as Iterable[_T_co], which mypy cannot match.
    directory = Directory(company.users, company.teams)  # type: ignore[arg-type]
    router = Router(_routing(), directory, clock=clock)
    scorer = Scorer(_scoring(), clock=clock)
    index = MatchIndex((MatchRule(name="email", keys=("email",)), MatchRule(name="phone", keys=("phone",))))
    plans = list(_CHANNELS)
    arrivals = sorted(_when(rng, _START, AS_OF - timedelta(days=2), growth=1.6) for _ in range(size))
    earlier: list[dict[str, Any]] = []
    step = max(size // 50, 1)
    for number, at in enumerate(arrivals):
        if number % step == 0:
            tick("capturing, de-duplicating, scoring and routing leads", number, size)
        plan = rng.choices(plans, [p.share for p in plans])[0]
        if earlier and rng.random() < 0.06:  # noqa: PLR2004 - 6 % fill in a form twice
            row = dict(rng.choice(earlier))
            row["email"] = row["email"].upper()
            row.pop("phone", None)
        else:
            row = _lead_row(rng, number)
            if rng.random() < 0.03:  # noqa: PLR2004 - 3 % of the rows are broken
                row["email"] = row["email"].replace("@", "@@")
                row.pop("phone", None)
        _capture(company, row, plan, at, clock=clock, index=index, router=router, scorer=scorer, state=state)
        earlier.append(row)
    tick("capturing, de-duplicating, scoring and routing leads", size, size)
    _work_leads(company, rng, tick)
    _orders_and_tickets(company, rng, tick)
    _email_campaigns(company, rng)
    return company


def _capture(
    company: Company,
    row: dict[str, Any],
    plan: ChannelPlan,
    at: datetime,
    *,
    clock: FixedClock,
    index: MatchIndex,
    router: Router,
    scorer: Scorer,
    state: Any,
) -> None:
    clock.set(at)
    campaign_id = _campaign_of(plan, at)
    utm = None
    if plan.utm_source is not None:
        utm = Utm(source=plan.utm_source, medium=plan.utm_medium, campaign=campaign_id)
    consent_given = random.Random(row["email"]).random() < plan.consent_rate  # noqa: S311 - simulated
    consents = (
        [ConsentCapture(purpose="newsletter", channel=Channel.EMAIL, wording="Send me product news")]
        if (consent_given)
        else []
    )
    try:
        captured = capture_lead(
            {**row, "id": company.new_id(), "custom_fields": {"quality": plan.quality}},
            channel=plan.channel,
            utm=utm,
            consents=consents,
            campaign_id=campaign_id,
            clock=clock,
        )
    except (ValidationError, ConsentError):
        company.facts["rejected"] += 1
        return
    company.facts["captured"] += 1
    screened = screen_duplicates(captured, index, "merge", fetch=lambda ref: company.leads[ref.id])
    if isinstance(screened, MergeResult):
        company.facts["merged"] += 1
        survivor = screened.survivor
        assert isinstance(survivor, Lead)  # noqa: S101 - a lead merges into a lead
        company.leads[survivor.id] = survivor
        company.consents.extend(r for r in screened.new_records if isinstance(r, Consent))
        company.events.extend(screened.events)
        return
    card = scorer.score(screened.lead, at=at)
    lead = apply_score(screened.lead, card).lead
    decision = router.route(lead, state=state, at=at)
    lead, assigned = decision.assign(lead)
    company.routed[decision.owner_id or decision.queue or "unassigned"] += 1
    index.add(lead)
    company.leads[lead.id] = lead
    company.consents.extend(screened.consents)
    if screened.consents:
        company.consenting.add(lead.id)
    company.events.extend((*screened.events, assigned))


def _apply(
    company: Company, lifecycle: Any, record: Any, transition: str, at: datetime, **payload: Any
) -> Any:
    result = lifecycle.apply(record, transition, at=at, payload=payload or None)
    new, event = result
    company.events.append(event)
    return new


def _work_leads(company: Company, rng: random.Random, tick: Progress) -> None:
    """Sales works the leads: contacts, qualifies, converts or disqualifies them, and runs the deals."""
    leads = list(company.leads.values())
    step = max(len(leads) // 50, 1)
    for number, lead in enumerate(leads):
        if number % step == 0:
            tick("working leads and deals through their lifecycles", number, len(leads))
        quality = float(lead.custom_fields.get("quality", 1.0) or 1.0)  # type: ignore[arg-type]
        at = lead.created_at + timedelta(hours=rng.uniform(2, 72))
        if at > AS_OF or rng.random() < 0.12:  # noqa: PLR2004 - some leads are never worked
            continue
        current = _apply(company, LEAD_LIFECYCLE, lead, "contact", at)
        at += timedelta(days=rng.uniform(2, 15))
        chance = min(0.25 + lead.score / 200 * quality, 0.9)
        if at > AS_OF:
            company.leads[lead.id] = current
            continue
        if rng.random() > chance:
            reason = rng.choice(["no budget", "wrong size", "student", "competitor"])
            current = attrs.evolve(
                current, custom_fields={**current.custom_fields, "disqualification_reason": reason}
            )
            current = _apply(company, LEAD_LIFECYCLE, current, "disqualify", at)
            company.leads[lead.id] = current
            continue
        current = _apply(company, LEAD_LIFECYCLE, current, "qualify", at)
        at += timedelta(days=rng.uniform(1, 10))
        if at > AS_OF or rng.random() < 0.2:  # noqa: PLR2004 - a fifth stay qualified a while
            company.leads[lead.id] = current
            continue
        _convert(company, rng, current, at=at, quality=quality)
    tick("working leads and deals through their lifecycles", len(leads), len(leads))


def _convert(company: Company, rng: random.Random, lead: Lead, *, at: datetime, quality: float) -> None:
    """Convert a qualified lead; its newsletter consent carries over to the contact; run the deal."""
    conversion = convert_lead(lead, accounts=company.accounts, at=at, actor=lead.owner_id)
    company.leads[lead.id] = conversion.lead
    company.events.extend(conversion.events)
    if conversion.account is not None and conversion.account.domain:
        company.accounts[conversion.account.domain] = conversion.account
    if conversion.contact is None:
        return
    company.contacts.append(conversion.contact)
    if lead.id in company.consenting:
        company.consents.append(
            Consent(
                id=company.new_id(),
                subject=EntityRef.to(conversion.contact),
                purpose="newsletter",
                channel=Channel.EMAIL,
                status=ConsentStatus.GRANTED,
                wording="Send me product news",
                source="lead conversion",
                captured_at=at,
                created_at=at,
            )
        )
    if conversion.opportunity is not None:
        _run_deal(
            company,
            rng,
            conversion.opportunity,
            contact=conversion.contact,
            lead=lead,
            at=at,
            quality=quality,
        )


def _run_deal(
    company: Company,
    rng: random.Random,
    deal: Opportunity,
    *,
    contact: Contact,
    lead: Lead,
    at: datetime,
    quality: float,
) -> None:
    amount = Decimal(round(rng.lognormvariate(math.log(6_000), 0.6), -1))
    deal = attrs.evolve(
        deal,
        amount=Money(amount, CURRENCY),
        expected_close=(at + timedelta(days=60)).date(),
        campaign_id=lead.campaign_id,
    )
    for transition in ("qualify", "propose", "negotiate"):
        step_at = at + timedelta(days=rng.uniform(3, 20))
        if step_at > AS_OF:
            break
        at = step_at
        deal = _apply(company, OPPORTUNITY_LIFECYCLE, deal, transition, at)
        if rng.random() < 0.15:  # noqa: PLR2004 - some deals die early
            break
    close_at = at + timedelta(days=rng.uniform(3, 25))
    if close_at > AS_OF:
        late = (AS_OF + timedelta(days=rng.uniform(5, 150))).date()
        company.opportunities.append(
            attrs.evolve(deal, expected_close=max(late, deal.expected_close or late))
        )
        return
    if deal.stage in {"proposal", "negotiation"} and rng.random() < min(0.45 * quality, 0.8):
        deal = _apply(company, OPPORTUNITY_LIFECYCLE, deal, "win", close_at)
        deal = attrs.evolve(deal, closed_at=close_at)
        company.opportunities.append(deal)
        company.facts["won"] += 1
        _first_order(company, contact, deal, close_at)
        return
    reason = rng.choice(["price", "timing", "competitor", "no decision"])
    deal = _apply(company, OPPORTUNITY_LIFECYCLE, deal, "lose", close_at, lost_reason=reason)
    company.opportunities.append(attrs.evolve(deal, closed_at=close_at))


def _order(
    company: Company,
    contact: Contact,
    at: datetime,
    *,
    amount: Decimal,
    description: str,
    campaign_id: str | None = None,
) -> None:
    number = f"SO-{len(company.orders) + 1:06d}"
    company.orders.append(
        Order(
            id=company.new_id(),
            number=number,
            contact_id=contact.id,
            account_id=contact.account_id,
            ordered_at=at,
            currency=CURRENCY,
            status=OrderStatus.PAID,
            campaign_id=campaign_id,
            created_at=at,
            lines=(
                LineItem(description=description, quantity=Decimal(1), unit_price=Money(amount, CURRENCY)),
            ),
        )
    )


def _first_order(company: Company, contact: Contact, deal: Opportunity, at: datetime) -> None:
    assert deal.amount is not None  # noqa: S101 - every simulated deal has an amount
    _order(
        company, contact, at, amount=deal.amount.amount, description="Machine", campaign_id=deal.campaign_id
    )


def _orders_and_tickets(company: Company, rng: random.Random, tick: Progress) -> None:
    """Customers reorder consumables until they drop out (a BG/NBD-like process) and open tickets."""
    desk = Support.build()
    customers = {order.contact_id: order for order in company.orders}
    contacts = {contact.id: contact for contact in company.contacts}
    step = max(len(customers) // 20, 1)
    for number, (contact_id, first) in enumerate(list(customers.items())):
        if number % step == 0:
            tick("placing repeat orders and answering tickets", number, len(customers))
        contact = contacts[contact_id or ""]
        rate = rng.gammavariate(2.0, 1 / 70)  # purchases per day while a customer is alive
        churn = rng.uniform(0.05, 0.3)  # chance of leaving after each purchase
        at = first.ordered_at
        size = first.total.amount * Decimal(str(rng.uniform(0.05, 0.2)))
        while True:
            at += timedelta(days=rng.expovariate(rate))
            if at > AS_OF:
                break
            _order(company, contact, at, amount=size.quantize(Decimal("0.01")), description="Consumables")
            if rng.random() < churn:
                break
        _tickets(company, rng, desk, contact=contact, start=first.ordered_at, end=min(at, AS_OF))
    tick("placing repeat orders and answering tickets", len(customers), len(customers))


def _tickets(
    company: Company,
    rng: random.Random,
    desk: Support,
    *,
    contact: Contact,
    start: datetime,
    end: datetime,
) -> None:
    """Tickets answered in business hours; the SLA policy flags late ones and a workflow escalates them."""
    for _ in range(rng.randrange(0, 4)):
        opened = _when(rng, start, max(end, start + timedelta(days=1)))
        if opened > AS_OF:
            continue
        priority = rng.choices(list(SLA_HOURS), [1, 3, 8, 3])[0]
        late = rng.random() < 0.12  # noqa: PLR2004 - about one ticket in eight misses its target
        hours = SLA_HOURS[priority] * (rng.uniform(1.1, 3) if late else rng.uniform(0.05, 0.95))
        answered = desk.calendar.add_business_time(opened, timedelta(hours=hours))
        ticket = Ticket(
            id=company.new_id(),
            subject=rng.choice(["Machine stops", "Invoice question", "Spare parts", "Training"]),
            contact_id=contact.id,
            account_id=contact.account_id,
            team_id="support",
            owner_id=rng.choice(["gita", "hugo"]),
            priority=Priority(priority),
            channel=Channel.EMAIL,
            created_at=opened,
        )
        ticket = _watch_sla(company, desk, ticket, min(answered, AS_OF))
        if answered > AS_OF:
            company.tickets.append(ticket)
            continue
        back = "return_to_first_line" if ticket.stage == "escalated" else "accept"
        ticket = attrs.evolve(
            _apply(company, TICKET_LIFECYCLE, ticket, back, answered), first_response_at=answered
        )
        resolved = desk.calendar.add_business_time(answered, timedelta(hours=rng.uniform(1, 30)))
        if resolved <= AS_OF:
            ticket = _apply(company, TICKET_LIFECYCLE, ticket, "resolve", resolved)
            ticket = attrs.evolve(ticket, resolved_at=resolved)
        company.tickets.append(ticket)


def _watch_sla(company: Company, desk: Support, ticket: Ticket, now: datetime) -> Ticket:
    """Evaluate the SLA policy until ``now``; run the escalation workflow on each breach it raises."""
    for event in desk.policy.evaluate(ticket, now=now).events:
        company.events.append(event)
        if not isinstance(event, SlaBreached):
            continue
        company.facts["sla_breached"] += 1
        result = desk.engine.handle(event, record=ticket, now=event.deadline)
        company.events.extend(result.events)
        for record in result.records:
            if isinstance(record, Ticket) and record.id == ticket.id:
                ticket = record
                company.facts["escalated"] += 1
    return ticket


def _email_campaigns(company: Company, rng: random.Random) -> None:
    """Two offers by e-mail to the customers who consented: variant B's subject line against A's."""
    offers = (
        ("spring-offer-2026", "Spring offer 2026", datetime(2026, 4, 14, 9, tzinfo=UTC), 0.05, 0.09),
        ("autumn-offer-2026", "Autumn offer 2026", datetime(2026, 9, 8, 9, tzinfo=UTC), 0.06, 0.065),
    )
    split = Split(arms=(Arm("A"), Arm("B")), holdout=0.1)
    for campaign_id, name, at, rate_a, rate_b in offers:
        campaign = Campaign(
            id=campaign_id,
            name=name,
            channel=Channel.EMAIL,
            status=CampaignStatus.COMPLETED,
            starts_at=at,
            ends_at=at + timedelta(days=14),
            utm_campaign=campaign_id,
            actual_cost=Money(800, CURRENCY),
            created_at=at - timedelta(days=7),
        )
        company.campaigns.append(campaign)
        customers = sorted({o.contact_id for o in company.orders if o.contact_id and o.ordered_at < at})
        audience = build_audience(
            customers, channel=Channel.EMAIL, purpose="newsletter", consents=company.consents, at=at
        )
        company.facts[f"{campaign_id}:audience"] = len(audience.included)
        company.facts[f"{campaign_id}:excluded"] = len(audience.excluded)
        contacts = {c.id: c for c in company.contacts}
        for customer in audience.included:
            variant = split.assign(customer, campaign_id)
            if variant == HOLDOUT:
                continue

            def respond(
                kind: str,
                when: datetime,
                customer: str = customer,
                variant: str = variant,
                sent: Campaign = campaign,
            ) -> None:
                activity = _response(sent, customer, variant, kind, when)
                company.activities.append(attrs.evolve(activity, id=company.new_id()))

            respond("sent", at)
            if rng.random() < 0.45:  # noqa: PLR2004 - open rate
                respond("opened", at + timedelta(hours=rng.uniform(1, 48)))
                if rng.random() < 0.3:  # noqa: PLR2004 - click-through among openers
                    respond("clicked", at + timedelta(hours=rng.uniform(2, 60)))
            if rng.random() < (rate_a if variant == "A" else rate_b):
                when = at + timedelta(days=rng.uniform(1, 14))
                if when <= AS_OF:
                    respond("converted", when)
                    price = Decimal(rng.choice((150, 240, 390)))
                    _order(
                        company,
                        contacts[customer],
                        when,
                        amount=price,
                        description=name,
                        campaign_id=campaign_id,
                    )


def _response(campaign: Campaign, customer: str, variant: str, kind: str, when: datetime) -> Activity:
    """A campaign e-mail sent to a customer, or their response to it, as an activity."""
    return Activity(
        activity_type=ActivityKind.EMAIL,
        subject=campaign.name,
        direction=Direction.OUTBOUND,
        occurred_at=when,
        regarding=EntityRef.to(campaign),
        contact_id=customer,
        created_at=when,
        custom_fields={"variant": variant, "response": kind},
    )
