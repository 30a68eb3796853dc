"""Quotes: drafted from an opportunity, moved through the quote lifecycle, revised, accepted into orders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from crmkit._validation import replace
from crmkit.clock import Clock, now
from crmkit.entities import EntityRef, LineItem, Opportunity, Order, Quote, QuoteStatus
from crmkit.errors import CurrencyMismatch, Problem, TransitionError, ValidationError
from crmkit.events import DomainEvent, StageChanged, register_event
from crmkit.lifecycle import OPPORTUNITY_LIFECYCLE, Lifecycle, Stage, StageCategory, Transition
from crmkit.money import Money, minor_units, sum_money
from crmkit.sales._pricing import PricedLine

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date, datetime

__all__ = [
    "QUOTE_LIFECYCLE",
    "Acceptance",
    "LineTotals",
    "QuoteAccepted",
    "QuoteTotals",
    "Revision",
    "accept_quote",
    "draft_quote",
    "move_quote",
    "quote_totals",
    "revise_quote",
]

QUOTE_LIFECYCLE = Lifecycle(
    "quote",
    "quote",
    [
        Stage("draft"),
        Stage("sent"),
        Stage("accepted", category=StageCategory.WON, terminal=True),
        Stage("rejected", category=StageCategory.LOST, terminal=True),
        Stage("expired", category=StageCategory.CLOSED, terminal=True),
        Stage("superseded", category=StageCategory.CLOSED, terminal=True, label="Superseded by a revision"),
    ],
    [
        Transition("send", ["draft"], "sent", required=["lines", "valid_until"]),
        Transition("accept", ["sent"], "accepted"),
        Transition("reject", ["sent"], "rejected"),
        Transition("expire", ["draft", "sent"], "expired"),
        Transition("supersede", ["draft", "sent"], "superseded"),
    ],
)
"""The quote lifecycle: draft -> sent -> accepted | rejected; draft or sent -> expired | superseded.

Sending needs lines and a ``valid_until``; accepted, rejected, expired and superseded are terminal.
"""


@register_event("quote_accepted")
@attrs.frozen(kw_only=True)
class QuoteAccepted(DomainEvent):
    """A customer accepted a quote; an order was made from it.

    Attributes:
        order_id: The order created.
        opportunity_id: The opportunity won, if the quote had one.
        total: The quote's total including tax.
    """

    order_id: str
    opportunity_id: str | None = None
    total: Money


@attrs.frozen(kw_only=True)
class LineTotals:
    """The money of one line, each amount rounded half to even to the currency's minor units.

    Attributes:
        gross: Quantity x unit price, rounded.
        discount: ``gross - net``.
        net: The line total after the discount (:attr:`crmkit.entities.LineItem.total`).
        tax: ``net`` x the tax rate, rounded.
        total: ``net + tax``.
    """

    gross: Money
    discount: Money
    net: Money
    tax: Money
    total: Money


@attrs.frozen(kw_only=True)
class QuoteTotals:
    """A quote's totals: the sums of its rounded lines, so they equal the printed lines' sums.

    Attributes:
        lines: Each line's amounts.
        gross: The sum of the lines' gross amounts.
        discount: The sum of the lines' discounts.
        net: The sum of the lines' net amounts (the subtotal).
        tax: The sum of the lines' taxes.
        total: ``net + tax``: what the customer pays.
        minor_units: The digits after the decimal point every amount is rounded to.
    """

    lines: tuple[LineTotals, ...]
    gross: Money
    discount: Money
    net: Money
    tax: Money
    total: Money
    minor_units: int


def quote_totals(quote: Quote) -> QuoteTotals:
    """Return the totals of a quote, line by line.

    Rounding: every line is rounded on its own, half to even (banker's rounding), to the
    minor units of the quote's currency (2 for EUR, 0 for JPY, 3 for BHD), as an invoice
    prints it; tax is computed on the rounded net line and rounded again; the totals are
    exact sums of the rounded lines, so ``total == sum(line.net) + sum(line.tax)`` always.
    No floating point is involved anywhere.
    """
    currency = quote.currency
    lines = []
    for item in quote.lines:
        gross = (item.unit_price * item.quantity).rounded()
        net = item.total
        tax = item.tax
        lines.append(LineTotals(gross=gross, discount=gross - net, net=net, tax=tax, total=net + tax))

    def total_of(name: str) -> Money:
        return sum_money((getattr(line, name) for line in lines), currency)

    net, tax = total_of("net"), total_of("tax")
    return QuoteTotals(
        lines=tuple(lines),
        gross=total_of("gross"),
        discount=total_of("discount"),
        net=net,
        tax=tax,
        total=net + tax,
        minor_units=minor_units(currency),
    )


def _lines(
    lines: Sequence[PricedLine | LineItem], currency: str, price_book_id: str | None
) -> tuple[LineItem, ...]:
    items: list[LineItem] = []
    problems: list[Problem] = []
    given: Sequence[object] = lines  # callers may pass anything
    for index, line in enumerate(given):
        item: object = line.line if isinstance(line, PricedLine) else line
        if (
            isinstance(line, PricedLine)
            and price_book_id is not None
            and line.lookup.price_book_id != price_book_id
        ):
            message = (
                f"priced from {line.lookup.price_book_id!r}, not the quote's price book {price_book_id!r}"
            )
            problems.append(Problem(f"lines[{index}].price_book_id", message))
        if not isinstance(item, LineItem):
            problems.append(
                Problem(f"lines[{index}]", f"expected a LineItem or PricedLine, got {type(line).__name__}")
            )
            continue
        if item.unit_price.currency != currency:
            message = f"priced in {item.unit_price.currency}, the quote is in {currency}"
            raise CurrencyMismatch.single(f"lines[{index}].unit_price.currency", message)  # noqa: EM102 - a path
        items.append(item)
    if problems:
        raise ValidationError(problems)
    return tuple(items)


def draft_quote(
    opportunity: Opportunity,
    *,
    number: str,
    currency: str,
    lines: Sequence[PricedLine | LineItem] = (),
    valid_until: date | None = None,
    price_book_id: str | None = None,
    contact_id: str | None = None,
    delivery_terms: str | None = None,
    delivery_by: date | None = None,
    clock: Clock | None = None,
) -> Quote:
    """Draft a quote for an opportunity (stage ``draft``, revision 1).

    Args:
        opportunity: The deal the quote prices; its account and contact are copied.
        number: The quote number the customer sees.
        currency: The quote's currency; every line must be priced in it.
        lines: Priced lines (from :func:`~crmkit.sales.price_line`) or plain line items.
        valid_until: The last day the offer holds.
        price_book_id: The price book the lines come from; priced lines from another book are refused.
        contact_id: The addressee; the opportunity's contact by default.
        delivery_terms: Delivery requirements.
        delivery_by: The requested delivery date.
        clock: Where ``created_at`` comes from; the current clock by default.

    Raises:
        CurrencyMismatch: A line in another currency (``lines[2].unit_price.currency``), or an
            opportunity amount in another currency (``currency``).
        ValidationError: Any other bad field, named by its path.
    """
    if opportunity.amount is not None and opportunity.amount.currency != currency.upper():
        message = f"the opportunity is in {opportunity.amount.currency}, the quote in {currency}"
        raise CurrencyMismatch.single("currency", message)
    created = clock.now() if clock is not None else now()
    return Quote(
        number=number,
        opportunity_id=opportunity.id,
        account_id=opportunity.account_id,
        contact_id=contact_id or opportunity.contact_id,
        currency=currency,
        lines=_lines(lines, currency.upper(), price_book_id),
        valid_until=valid_until,
        price_book_id=price_book_id,
        delivery_terms=delivery_terms,
        delivery_by=delivery_by,
        created_at=created,
    )


def move_quote(
    quote: Quote,
    transition: str,
    *,
    at: datetime | None = None,
    actor: str | None = None,
    lifecycle: Lifecycle = QUOTE_LIFECYCLE,
) -> tuple[Quote, StageChanged]:
    """Apply a quote lifecycle transition (``send``, ``reject``, ``expire``, ...); ``status`` follows.

    Accepting goes through :func:`accept_quote`, which also checks the validity and makes the order.

    Raises:
        TransitionError: If the transition is not allowed from the quote's stage, or sending
            a quote without lines or ``valid_until``.
    """
    target = lifecycle.transition(transition).target if transition in _names(lifecycle) else None
    payload: dict[str, Any] = {}
    if target is not None and target in set(QuoteStatus):
        payload["status"] = target
    moved, event = lifecycle.apply(quote, transition, at=at, actor=actor, payload=payload or None)
    return moved, event


def _names(lifecycle: Lifecycle) -> set[str]:
    return {transition.name for transition in lifecycle.transitions}


def _today(at: datetime | None) -> datetime:
    moment = at if at is not None else now()
    if moment.utcoffset() is None:
        raise ValidationError.single("at", "must be timezone-aware")
    return moment


@attrs.frozen(kw_only=True)
class Revision:
    """A quote revised: the old version (superseded) and the new draft.

    Attributes:
        previous: The old version, moved to ``superseded``; it keeps its lines and history.
        quote: The new draft: the same number, revision + 1, ``supersedes_id`` the old id.
        events: The old version's stage change.
    """

    previous: Quote
    quote: Quote
    events: tuple[DomainEvent, ...]


def revise_quote(
    quote: Quote,
    *,
    lines: Sequence[PricedLine | LineItem] | None = None,
    valid_until: date | None = None,
    at: datetime | None = None,
    actor: str | None = None,
) -> Revision:
    """Revise a draft or sent quote: the old one is superseded (and kept), a new draft replaces it.

    Args:
        quote: The quote to revise, in ``draft`` or ``sent``.
        lines: The new lines; the old ones by default.
        valid_until: The new validity; the old one by default.
        at: When; the current clock by default.
        actor: Who revised it.

    Raises:
        TransitionError: If the quote is accepted, rejected, expired or superseded already.
        CurrencyMismatch: A new line in another currency.
    """
    moment = _today(at)
    previous, event = move_quote(quote, "supersede", at=moment, actor=actor)
    new_lines = quote.lines if lines is None else _lines(lines, quote.currency, quote.price_book_id)
    revised = Quote(
        number=quote.number,
        opportunity_id=quote.opportunity_id,
        account_id=quote.account_id,
        contact_id=quote.contact_id,
        currency=quote.currency,
        lines=new_lines,
        valid_until=valid_until if valid_until is not None else quote.valid_until,
        revision=quote.revision + 1,
        supersedes_id=quote.id,
        price_book_id=quote.price_book_id,
        delivery_terms=quote.delivery_terms,
        delivery_by=quote.delivery_by,
        tags=quote.tags,
        custom_fields=quote.custom_fields,
        created_at=moment,
    )
    return Revision(previous=previous, quote=revised, events=(event,))


@attrs.frozen(kw_only=True)
class Acceptance:
    """What accepting a quote produces; store all of it in one transaction.

    Attributes:
        quote: The quote, now ``accepted``.
        order: The new order (lines copied, ``quote_id`` set).
        opportunity: The opportunity moved to won with the quote's net total as its amount,
            or ``None`` when no opportunity was given.
        events: The quote's and the opportunity's stage changes and a :class:`QuoteAccepted`.
    """

    quote: Quote
    order: Order
    opportunity: Opportunity | None
    events: tuple[DomainEvent, ...]


def accept_quote(
    quote: Quote,
    *,
    order_number: str,
    opportunity: Opportunity | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    opportunity_lifecycle: Lifecycle = OPPORTUNITY_LIFECYCLE,
    win_transition: str = "win",
) -> Acceptance:
    """Accept a sent quote: return the accepted quote, a new order, the won deal and the events.

    Args:
        quote: The quote, in ``sent``.
        order_number: The number of the order to create.
        opportunity: The quote's opportunity, to move to won (its id must be the quote's
            ``opportunity_id``); leave out to only make the order.
        at: When the customer accepted; the current clock by default. A quote is valid
            through its ``valid_until`` day (in ``at``'s timezone).
        actor: Who recorded the acceptance.
        opportunity_lifecycle: The pipeline the opportunity follows.
        win_transition: The transition that wins it there.

    Raises:
        TransitionError: If the quote expired (``valid_until`` is before ``at``'s day), is not
            ``sent``, or the opportunity cannot be won from its stage. Nothing is changed.
        ValidationError: If ``opportunity`` is not the quote's (path ``opportunity``).
    """
    moment = _today(at)
    if quote.valid_until is not None and quote.valid_until < moment.date():
        reason = f"the quote expired: it was valid until {quote.valid_until}, accepted on {moment.date()}"
        raise TransitionError("accept", [reason], entity=EntityRef.to(quote), stage=quote.stage)
    if opportunity is not None and opportunity.id != quote.opportunity_id:
        message = f"opportunity {opportunity.id!r} is not the quote's ({quote.opportunity_id!r})"
        raise ValidationError.single("opportunity", message)
    accepted, quote_event = move_quote(quote, "accept", at=moment, actor=actor)
    totals = quote_totals(quote)
    won: Opportunity | None = None
    events: list[DomainEvent] = [quote_event]
    if opportunity is not None:
        payload = {"amount": totals.net}
        won, deal_event = opportunity_lifecycle.apply(
            opportunity, win_transition, at=moment, actor=actor, payload=payload
        )
        events.append(deal_event)
    order = Order(
        number=order_number,
        account_id=quote.account_id,
        contact_id=quote.contact_id,
        ordered_at=moment,
        currency=quote.currency,
        lines=quote.lines,
        quote_id=quote.id,
        created_at=moment,
    )
    events.append(
        QuoteAccepted(
            entity=EntityRef.to(accepted),
            at=moment,
            actor=actor,
            order_id=order.id,
            opportunity_id=quote.opportunity_id,
            total=totals.total,
        )
    )
    return Acceptance(quote=replace(accepted), order=order, opportunity=won, events=tuple(events))
