"""Sales and loyalty: price books, pricing rules, quotes, the account ledger, loyalty, the timeline.

Everything here is pure: values in, values and domain events out. Products are the
:class:`~crmkit.entities.Product` records; a :class:`Catalog` adds
:class:`PriceBook` values (per currency, segment or channel, with validity dates and
volume tiers) and says which price applies and why. :class:`PricingRules` are
if-then-else rules in the condition language, checked and compiled once, that
configure options (require, exclude), add discounts and surcharges, and flag lines
that need approval; :func:`price_line` returns every price with the rules that made
it. Quotes follow :data:`QUOTE_LIFECYCLE`; :func:`accept_quote` makes the order and
wins the deal. :class:`AccountLedger` keeps an account's invoices, payments and
credit notes; :class:`PointsLedger` and :class:`LoyaltyProgram` run loyalty points
and tiers. :func:`customer_timeline` reads any store (through the :class:`RecordSource`
port) into one ordered, paginated view of a customer's history.
"""

from crmkit.sales._catalog import Catalog, PriceBook, PriceEntry, PriceLookup, VolumeTier
from crmkit.sales._ledger import AccountLedger, EntryKind, LedgerEntry, OpenItem
from crmkit.sales._loyalty import (
    ORDER_FIELDS,
    EarnRule,
    LoyaltyProgram,
    LoyaltyTier,
    PointsEarned,
    PointsEntry,
    PointsEntryKind,
    PointsExpired,
    PointsLedger,
    PointsRedeemed,
    TierDowngraded,
    TierReview,
    TierUpgraded,
    review_tier,
    rolling_spend,
)
from crmkit.sales._pricing import (
    PRICING_FIELDS,
    Action,
    AppliedRule,
    Effect,
    LineRequest,
    PricedLine,
    PricingRule,
    PricingRules,
    price_line,
    price_lines,
)
from crmkit.sales._quotes import (
    QUOTE_LIFECYCLE,
    Acceptance,
    LineTotals,
    QuoteAccepted,
    QuoteTotals,
    Revision,
    accept_quote,
    draft_quote,
    move_quote,
    quote_totals,
    revise_quote,
)
from crmkit.sales._timeline import (
    RecordQuery,
    RecordSource,
    TimelineEntry,
    TimelineKind,
    TimelinePage,
    customer_timeline,
)

__all__ = [
    "ORDER_FIELDS",
    "PRICING_FIELDS",
    "QUOTE_LIFECYCLE",
    "Acceptance",
    "AccountLedger",
    "Action",
    "AppliedRule",
    "Catalog",
    "EarnRule",
    "Effect",
    "EntryKind",
    "LedgerEntry",
    "LineRequest",
    "LineTotals",
    "LoyaltyProgram",
    "LoyaltyTier",
    "OpenItem",
    "PointsEarned",
    "PointsEntry",
    "PointsEntryKind",
    "PointsExpired",
    "PointsLedger",
    "PointsRedeemed",
    "PriceBook",
    "PriceEntry",
    "PriceLookup",
    "PricedLine",
    "PricingRule",
    "PricingRules",
    "QuoteAccepted",
    "QuoteTotals",
    "RecordQuery",
    "RecordSource",
    "Revision",
    "TierDowngraded",
    "TierReview",
    "TierUpgraded",
    "TimelineEntry",
    "TimelineKind",
    "TimelinePage",
    "VolumeTier",
    "accept_quote",
    "customer_timeline",
    "draft_quote",
    "move_quote",
    "price_line",
    "price_lines",
    "quote_totals",
    "review_tier",
    "revise_quote",
    "rolling_spend",
]
