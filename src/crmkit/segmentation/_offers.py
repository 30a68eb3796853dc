"""Next best offer: item-to-item recommendations from products bought together."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

import attrs

from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit.segmentation._rows import LineRow

__all__ = ["CoPurchases", "Offer", "Similarity", "co_purchases", "recommend"]

Similarity = Literal["lift", "cosine"]


@attrs.frozen
class CoPurchases:
    """How often products were bought, alone and together, counted per basket (one order).

    Attributes:
        baskets: The number of baskets ``N``.
        counts: Product -> baskets containing it (``n_x``).
        pairs: Product -> other product -> baskets containing both (``n_xy``), both directions.
    """

    baskets: int
    counts: Mapping[str, int]
    pairs: Mapping[str, Mapping[str, int]]

    def similarity(self, x: str, y: str, measure: Similarity = "lift") -> float:
        """``lift = N n_xy / (n_x n_y)`` or ``cosine = n_xy / sqrt(n_x n_y)``; 0 when never together."""
        together = self.pairs.get(x, {}).get(y, 0)
        if not together:
            return 0.0
        n_x, n_y = self.counts[x], self.counts[y]
        if measure == "lift":
            return self.baskets * together / (n_x * n_y)
        return together / math.sqrt(n_x * n_y)


def co_purchases(lines: Iterable[LineRow]) -> CoPurchases:
    """Count products and product pairs per order (each product once per order)."""
    baskets: dict[str, set[str]] = defaultdict(set)
    try:
        for line in lines:
            baskets[line[2]].add(line[3])
    except (TypeError, IndexError) as exc:
        raise ValidationError.single("lines", f"expected LineRow rows: {exc}") from None
    counts: dict[str, int] = defaultdict(int)
    pairs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for products in baskets.values():
        ordered = sorted(products)
        for index, x in enumerate(ordered):
            counts[x] += 1
            for y in ordered[index + 1 :]:
                pairs[x][y] += 1
                pairs[y][x] += 1
    return CoPurchases(
        len(baskets), dict(counts), {product: dict(others) for product, others in pairs.items()}
    )


@attrs.frozen
class Offer:
    """A recommended product and why.

    Attributes:
        product_id: What to offer.
        score: The highest similarity to a product the customer bought.
        because: The bought products it is most similar to (at most two), most similar first.
        reason: The explanation in words: ``"bought X and Y"``.
    """

    product_id: str
    score: float
    because: tuple[str, ...]
    reason: str


def recommend(
    model: CoPurchases,
    bought: Iterable[str],
    *,
    measure: Similarity = "lift",
    categories: Mapping[str, str | Iterable[str]] | None = None,
    avoid: Iterable[str] = (),
    min_together: int = 2,
    limit: int = 5,
) -> list[Offer]:
    """The best products to offer a customer who bought ``bought``.

    A candidate is a product bought together with one of theirs in at least ``min_together`` baskets,
    that they have not bought, and in none of the ``avoid`` categories. Its score is its highest
    similarity (``measure``) to one of their products; ties go to the product id.

    Args:
        model: From :func:`co_purchases`.
        bought: The customer's products.
        measure: ``"lift"`` or ``"cosine"`` (see :meth:`CoPurchases.similarity`).
        categories: Product -> category or categories, for ``avoid``.
        avoid: Categories the customer avoids (``"meat"`` for a vegetarian).
        min_together: The fewest baskets a pair needs to count as evidence.
        limit: The most offers returned.

    Raises:
        ValidationError: For an unknown measure or a limit / minimum below 1.
    """
    if measure not in {"lift", "cosine"}:
        raise ValidationError.single("measure", f"must be 'lift' or 'cosine', got {measure!r}")
    for name, value in (("min_together", min_together), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            message = f"must be a whole number of at least 1, got {value!r}"
            raise ValidationError.single(name, message)
    owned = set(bought)
    avoided = set(avoid)
    lookup = categories or {}

    def allowed(product: str) -> bool:
        found = lookup.get(product, ())
        tags = {found} if isinstance(found, str) else set(found)
        return not (tags & avoided)

    evidence: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for x in sorted(owned):
        for y, together in model.pairs.get(x, {}).items():
            if together >= min_together and y not in owned and allowed(y):
                evidence[y].append((model.similarity(x, y, measure), x))
    offers = []
    for product, found in evidence.items():
        found.sort(key=lambda item: (-item[0], item[1]))
        because = tuple(x for _, x in found[:2])
        offers.append(Offer(product, found[0][0], because, "bought " + " and ".join(because)))
    offers.sort(key=lambda offer: (-offer.score, offer.product_id))
    return offers[:limit]
