"""Reading the metrics' inputs: order rows or entities, and naming the row that broke a fast loop."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from crmkit.errors import ValidationError
from crmkit.segmentation._rows import as_rows  # one reader of order rows for both packages

__all__ = ["as_rows", "bad_row"]


def bad_row(row: object) -> ValidationError:
    """The error for a row a fast loop could not read: what is wrong with it, at ``orders``."""
    if not isinstance(row, tuple) or len(row) < 5:  # noqa: PLR2004 - customer, time, amount, id, campaign
        return ValidationError.single("orders", f"expected an OrderRow or an Order, got {row!r}")
    customer_id, at, amount = row[0], row[1], row[2]
    if not isinstance(customer_id, str) or not customer_id:
        return ValidationError.single("orders.customer_id", f"must be a non-empty text, got {customer_id!r}")
    if not isinstance(at, datetime) or at.utcoffset() is None:
        return ValidationError.single("orders.ordered_at", f"must be a timezone-aware datetime, got {at!r}")
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
        return ValidationError.single("orders.amount", f"must be a Decimal, got {amount!r}")
    return ValidationError.single("orders", f"a row could not be read: {row!r}")
