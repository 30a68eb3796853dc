"""Products and price books: which price applies to a product, in a currency, on a day, and why."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import _validation as _checks
from crmkit._validation import Validated, cross_rule, rules
from crmkit.errors import CurrencyMismatch, NotFound, Problem, ValidationError
from crmkit.money import Money
from crmkit.serialization import from_data, to_data

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from crmkit.entities import Product

__all__ = ["Catalog", "PriceBook", "PriceEntry", "PriceLookup", "VolumeTier"]

_MEMO_SIZE = 100_000


@attrs.frozen(kw_only=True)
class VolumeTier(Validated):
    """A unit price that applies from a quantity on (a volume break).

    Attributes:
        min_quantity: The smallest quantity the tier applies to (more than 0).
        unit_price: The price of one unit at that volume, in the price book's currency.
    """

    min_quantity: Decimal = attrs.field(metadata=rules(_checks.non_negative))
    unit_price: Decimal = attrs.field(metadata=rules(_checks.non_negative))


@attrs.frozen(kw_only=True)
class PriceEntry(Validated):
    """The price of one product in a price book.

    Attributes:
        product_id: The product priced.
        unit_price: The price of one unit below the first volume tier.
        tiers: Volume breaks, by increasing ``min_quantity``; the last one reached applies.
    """

    product_id: str = attrs.field(metadata=rules(_checks.identifier))
    unit_price: Decimal = attrs.field(metadata=rules(_checks.non_negative))
    tiers: tuple[VolumeTier, ...] = ()

    @cross_rule("tiers")
    def _tiers_increase(self, _before: PriceEntry | None) -> Iterable[Problem]:
        problems = []
        for index, tier in enumerate(self.tiers):
            if tier.min_quantity <= (self.tiers[index - 1].min_quantity if index else 0):
                message = "must be more than 0 and than the previous tier's min_quantity"
                problems.append(Problem(f"tiers[{index}].min_quantity", message))
        return problems

    def price_for(self, quantity: Decimal) -> tuple[Decimal, VolumeTier | None]:
        """Return the unit price for ``quantity`` and the volume tier it came from (``None``: the base)."""
        chosen: VolumeTier | None = None
        for tier in self.tiers:
            if quantity < tier.min_quantity:
                break
            chosen = tier
        return (chosen.unit_price if chosen else self.unit_price), chosen


@attrs.frozen(kw_only=True)
class PriceBook(Validated):
    """Prices in one currency, optionally for one customer segment or sales channel, for a period.

    Attributes:
        id: The price book's id.
        name: What it is called (``"EU list prices 2026"``).
        currency: The ISO 4217 currency of every price in it.
        segment: The customer segment it is for; ``None`` means every segment.
        channel: The sales channel it is for (``"partner"``, ``"web"``); ``None`` means every channel.
        valid_from: The first day it applies; ``None`` means since always.
        valid_until: The last day it applies; ``None`` means open-ended.
        entries: One price per product.
    """

    id: str = attrs.field(metadata=rules(_checks.identifier))
    name: str = attrs.field(metadata=rules(_checks.non_empty))
    currency: str = attrs.field(metadata=rules(_checks.currency))
    segment: str | None = attrs.field(default=None, metadata=rules(_checks.short_label))
    channel: str | None = attrs.field(default=None, metadata=rules(_checks.short_label))
    valid_from: date | None = None
    valid_until: date | None = None
    entries: tuple[PriceEntry, ...] = ()

    @cross_rule("valid_from", "valid_until")
    def _a_period(self, _before: PriceBook | None) -> Iterable[Problem]:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            return [Problem("valid_until", "must not be before valid_from")]
        return ()

    @cross_rule("entries")
    def _one_price_per_product(self, _before: PriceBook | None) -> Iterable[Problem]:
        seen: set[str] = set()
        problems = []
        for index, entry in enumerate(self.entries):
            if entry.product_id in seen:
                problems.append(
                    Problem(f"entries[{index}].product_id", f"{entry.product_id!r} is priced twice")
                )
            seen.add(entry.product_id)
        return problems

    @property
    def specificity(self) -> int:
        """How specific the book is: one point each for a segment and a channel."""
        return (self.segment is not None) + (self.channel is not None)

    def entry(self, product_id: str) -> PriceEntry | None:
        """Return the price entry of ``product_id``, or ``None`` when the book does not price it."""
        return next((entry for entry in self.entries if entry.product_id == product_id), None)

    def applies(self, *, on: date, segment: str | None = None, channel: str | None = None) -> bool:
        """Whether the book applies on day ``on`` to a customer in ``segment`` buying through ``channel``."""
        return (
            (self.valid_from is None or self.valid_from <= on)
            and (self.valid_until is None or on <= self.valid_until)
            and (self.segment is None or self.segment == segment)
            and (self.channel is None or self.channel == channel)
        )

    def describe(self) -> str:
        """A one-line description for explanations: id, currency, segment, channel and period."""
        parts = [self.currency]
        if self.segment is not None:
            parts.append(f"segment {self.segment}")
        if self.channel is not None:
            parts.append(f"channel {self.channel}")
        if self.valid_from or self.valid_until:
            parts.append(f"valid {self.valid_from or '...'} to {self.valid_until or '...'}")
        return f"price book {self.id!r} ({', '.join(parts)})"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form (decimals as strings, dates in ISO 8601)."""
        return to_data(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PriceBook:
        """Build a price book from :meth:`to_json`'s form.

        Raises:
            ValidationError: Naming every bad path (``entries[2].tiers[0].min_quantity``).
        """
        return from_data(cls, data)


@attrs.frozen(kw_only=True)
class PriceLookup:
    """The list price of a product for one line, and why it is that price.

    Attributes:
        product_id: The product.
        quantity: The quantity the volume tiers were read for.
        unit_price: The list price of one unit.
        price_book_id: The price book it came from; ``None`` when it is the product's own list price.
        tier: The volume tier that applied, if any.
        reasons: How the price was chosen, in plain words, first to last.
    """

    product_id: str
    quantity: Decimal
    unit_price: Money
    price_book_id: str | None
    tier: VolumeTier | None
    reasons: tuple[str, ...]


class Catalog:
    """Products and their price books, indexed for fast lookups.

    Args:
        products: The products on sale (the :class:`~crmkit.entities.Product` records).
        price_books: The price books.

    Raises:
        ValidationError: If two products share an id, or a price book prices a product
            that is not in ``products`` (path ``price_books[1].entries[0].product_id``).
    """

    __slots__ = ("_books", "_books_by_currency", "_described", "_entries", "_made", "_products")

    def __init__(self, products: Iterable[Product], price_books: Iterable[PriceBook] = ()) -> None:
        self._products: dict[str, Product] = {}
        problems: list[Problem] = []
        for index, product in enumerate(products):
            if product.id in self._products:
                problems.append(Problem(f"products[{index}].id", f"{product.id!r} appears twice"))
            self._products[product.id] = product
        self._books = tuple(price_books)
        for index, book in enumerate(self._books):
            problems.extend(
                Problem(
                    f"price_books[{index}].entries[{position}].product_id",
                    f"unknown product {entry.product_id!r}",
                )
                for position, entry in enumerate(book.entries)
                if entry.product_id not in self._products
            )
        if problems:
            raise ValidationError(problems)
        by_currency: dict[str, list[PriceBook]] = {}
        # Most specific first, then the most recent start, then by id: the first book that applies wins.
        ordered = sorted(
            self._books, key=lambda b: (-b.specificity, -(b.valid_from or date.min).toordinal(), b.id)
        )
        for book in ordered:
            by_currency.setdefault(book.currency, []).append(book)
        self._books_by_currency = {currency: tuple(books) for currency, books in by_currency.items()}
        self._entries = {book.id: {entry.product_id: entry for entry in book.entries} for book in self._books}
        self._described = {book.id: book.describe() for book in self._books}
        self._made: dict[tuple[str, str, VolumeTier | None, date], tuple[Money, tuple[str, ...]]] = {}

    @property
    def products(self) -> Mapping[str, Product]:
        """The products by id."""
        return self._products

    @property
    def price_books(self) -> tuple[PriceBook, ...]:
        """The price books, in the order given."""
        return self._books

    def product(self, product_id: str) -> Product:
        """Return the product with this id.

        Raises:
            NotFound: If there is none.
        """
        found = self._products.get(product_id)
        if found is None:
            raise NotFound("product", product_id)
        return found

    def price_book(self, price_book_id: str) -> PriceBook:
        """Return the price book with this id.

        Raises:
            NotFound: If there is none.
        """
        for book in self._books:
            if book.id == price_book_id:
                return book
        raise NotFound("price_book", price_book_id)

    def lookup(
        self,
        product_id: str,
        *,
        quantity: Decimal | int,
        currency: str,
        on: date,
        segment: str | None = None,
        channel: str | None = None,
        price_book_id: str | None = None,
    ) -> PriceLookup:
        """Return the list price of ``quantity`` units of a product, with the reasons for it.

        The price comes from the most specific price book in ``currency`` that applies on
        ``on`` to the segment and channel and prices the product (a book for the segment and
        the channel beats one for either, which beats a general one; then the latest
        ``valid_from``, then the id), at the volume tier the quantity reaches. Without such a
        book, the product's own ``list_price`` is used when it is in ``currency``.

        Args:
            product_id: The product.
            quantity: How many units (0 or more).
            currency: The currency wanted.
            on: The day the price is for.
            segment: The customer's segment, if any.
            channel: The sales channel, if any.
            price_book_id: Use only this price book (a quote priced from a given book).

        Raises:
            NotFound: For an unknown product or price book.
            ValidationError: For a negative quantity (``quantity``) or an inactive product (``product_id``).
            CurrencyMismatch: When ``price_book_id`` names a book in another currency, or no
                price in ``currency`` exists for the product (path ``currency``).
        """
        product = self.product(product_id)
        amount = Decimal(quantity)
        if amount < 0:
            raise ValidationError.single("quantity", f"must not be negative, got {quantity}")
        if not product.active:
            raise ValidationError.single("product_id", f"product {product_id!r} is not active")
        currency = currency.upper()
        if price_book_id is not None:
            book = self.price_book(price_book_id)
            if book.currency != currency:
                message = f"price book {book.id!r} is in {book.currency}, not {currency}"
                raise CurrencyMismatch.single("currency", message)
            candidates: tuple[PriceBook, ...] = (book,)
        else:
            candidates = self._books_by_currency.get(currency, ())
        for book in candidates:
            entry = self._entries[book.id].get(product_id)
            if entry is None or not book.applies(on=on, segment=segment, channel=channel):
                continue
            unit, tier = entry.price_for(amount)
            key = (book.id, product_id, tier, on)
            made = self._made.get(key)
            if made is None:
                reasons = (
                    f"{self._described[book.id]} applies on {on}",
                    f"volume tier from {tier.min_quantity} units: {unit} {currency}"
                    if tier is not None
                    else f"base price {unit} {currency}",
                )
                made = (Money(unit, currency), reasons)
                if len(self._made) < _MEMO_SIZE:  # the same few prices recur: build them once
                    self._made[key] = made
            return PriceLookup(
                product_id=product_id,
                quantity=amount,
                unit_price=made[0],
                price_book_id=book.id,
                tier=tier,
                reasons=made[1],
            )
        if (
            price_book_id is None
            and product.list_price is not None
            and product.list_price.currency == currency
        ):
            return PriceLookup(
                product_id=product_id,
                quantity=amount,
                unit_price=product.list_price,
                price_book_id=None,
                tier=None,
                reasons=(f"no price book applies; the product's list price {product.list_price}",),
            )
        where = f"price book {price_book_id!r}" if price_book_id else f"no price book in {currency}"
        message = (
            f"{where} prices product {product_id!r} on {on} for segment {segment!r}, channel {channel!r}"
        )
        raise CurrencyMismatch.single("currency", message)
