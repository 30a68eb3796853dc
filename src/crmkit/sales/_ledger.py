"""The account ledger: append-only debits and credits, the balance on any date, overdue amounts."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import _validation as _checks
from crmkit._validation import Validated, cross_rule, rules
from crmkit.clock import now
from crmkit.errors import ConflictError, CurrencyMismatch, Problem, ValidationError
from crmkit.money import Money, check_currency
from crmkit.serialization import from_data, to_data

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["AccountLedger", "EntryKind", "LedgerEntry", "OpenItem"]


class EntryKind(enum.StrEnum):
    """What a ledger entry records; invoices, debit notes and refunds are debits, the rest credits."""

    INVOICE = "invoice"
    DEBIT_NOTE = "debit_note"
    REFUND = "refund"
    PAYMENT = "payment"
    CREDIT_NOTE = "credit_note"

    @property
    def is_debit(self) -> bool:
        """Whether the entry increases what the customer owes."""
        return self in _DEBITS


_DEBITS = frozenset({EntryKind.INVOICE, EntryKind.DEBIT_NOTE, EntryKind.REFUND})


def _positive(value: Money) -> Money:
    if value.amount <= 0:
        _checks.fail(f"must be more than zero, got {value.amount}", "amount")
    return value


@attrs.frozen(kw_only=True)
class LedgerEntry(Validated):
    """One credit or debit on an account. Entries are never changed; a correction is a new entry.

    Attributes:
        id: A unique id (a random one by default).
        account_id: The account.
        kind: Invoice, debit note or refund (debits); payment or credit note (credits).
        amount: How much, more than zero; the kind says the direction.
        posted_at: When it was booked; defaults to the current clock.
        due_on: For a debit, the day it must be paid by; ``None`` means at once.
        reference: The document number (invoice number, payment reference).
        corrects: The id of the entry this one corrects (a credit note against an invoice).
        memo: A note for people.
    """

    id: str = attrs.field(factory=lambda: uuid.uuid4().hex, metadata=rules(_checks.identifier))
    account_id: str = attrs.field(metadata=rules(_checks.identifier))
    kind: EntryKind
    amount: Money = attrs.field(metadata=rules(_positive))
    posted_at: datetime = attrs.field(factory=now)
    due_on: date | None = None
    reference: str | None = attrs.field(default=None, metadata=rules(_checks.non_empty))
    corrects: str | None = attrs.field(default=None, metadata=rules(_checks.identifier))
    memo: str | None = None

    @cross_rule("kind", "due_on")
    def _due_only_on_debits(self, _before: LedgerEntry | None) -> Iterable[Problem]:
        if self.due_on is not None and not self.kind.is_debit:
            return [Problem("due_on", f"a {self.kind} is not due; only debits have a due date")]
        return ()

    @property
    def signed(self) -> Decimal:
        """The amount as it moves the balance: positive for a debit, negative for a credit."""
        return self.amount.amount if self.kind.is_debit else -self.amount.amount


@attrs.frozen(kw_only=True)
class OpenItem:
    """A debit not yet fully settled on a date.

    Attributes:
        entry: The debit.
        open: What is still owed on it.
        days_overdue: Whole days past its due day (0 when not yet due).
    """

    entry: LedgerEntry
    open: Money
    days_overdue: int


@attrs.frozen
class AccountLedger:
    """The ledger of one account in one currency: an immutable, append-only list of entries.

    Use :meth:`post` to append; it returns a new ledger. ``balance == sum of the signed
    entries`` (debits positive, credits negative): positive means the customer owes.

    Attributes:
        account_id: The account.
        currency: The currency of every entry.
        entries: The entries, in the order they were posted.
    """

    account_id: str = attrs.field(validator=lambda _i, _a, v: _checks.identifier(v))
    currency: str = attrs.field(converter=check_currency)
    entries: tuple[LedgerEntry, ...] = ()

    def post(self, *entries: LedgerEntry) -> AccountLedger:
        """Append entries; return the new ledger (this one is unchanged).

        Raises:
            ValidationError: An entry of another account (``[0].account_id``), or correcting an
                entry that is not in the ledger (``[0].corrects``).
            CurrencyMismatch: An entry in another currency (``[0].amount.currency``).
            ConflictError: An entry whose id is already in the ledger: entries are never replaced.
        """
        known = {entry.id for entry in self.entries}
        problems: list[Problem] = []
        given: tuple[object, ...] = entries  # callers may pass anything
        for index, entry in enumerate(given):
            if not isinstance(entry, LedgerEntry):
                message = f"expected a LedgerEntry, got {type(entry).__name__}"
                raise ValidationError.single(f"[{index}]", message)  # noqa: EM102 - a path
            if entry.amount.currency != self.currency:
                message = f"the ledger is in {self.currency}, the entry in {entry.amount.currency}"
                raise CurrencyMismatch.single(f"[{index}].amount.currency", message)  # noqa: EM102 - a path
            if entry.id in known:
                msg = f"entry {entry.id!r} is already posted; post a correcting entry instead"
                raise ConflictError(msg)
            if entry.account_id != self.account_id:
                problems.append(
                    Problem(f"[{index}].account_id", f"the ledger is account {self.account_id!r}")
                )
            if entry.corrects is not None and entry.corrects not in known:
                problems.append(Problem(f"[{index}].corrects", f"no entry {entry.corrects!r} in the ledger"))
            known.add(entry.id)
        if problems:
            raise ValidationError(problems)
        return attrs.evolve(self, entries=(*self.entries, *entries))

    def _until(self, as_of: datetime | None) -> list[LedgerEntry]:
        if as_of is None:
            return list(self.entries)
        if as_of.utcoffset() is None:
            raise ValidationError.single("as_of", "must be timezone-aware")
        return [entry for entry in self.entries if entry.posted_at <= as_of]

    def balance(self, as_of: datetime | None = None) -> Money:
        """What the customer owes (negative: what we owe them), counting entries posted up to ``as_of``.

        Raises:
            ValidationError: For a naive ``as_of``.
        """
        return Money(sum((entry.signed for entry in self._until(as_of)), Decimal(0)), self.currency)

    def open_items(self, as_of: datetime) -> list[OpenItem]:
        """The debits not yet settled on ``as_of``, oldest due first.

        Credits settle debits in this order: a credit that ``corrects`` a debit settles that
        debit first; every other credit settles the debits by due day (then posting order),
        oldest first. A credit larger than what is owed leaves a credit balance.
        """
        entries = self._until(as_of)
        debits = sorted(
            (e for e in entries if e.kind.is_debit),
            key=lambda e: (e.due_on or e.posted_at.date(), e.posted_at),
        )
        open_amounts = {entry.id: entry.amount.amount for entry in debits}
        for credit in (e for e in entries if not e.kind.is_debit):
            left = credit.amount.amount
            order = [d for d in debits if d.id == credit.corrects] + [
                d for d in debits if d.id != credit.corrects
            ]
            for debit in order:
                if left <= 0:
                    break
                taken = min(left, open_amounts[debit.id])
                open_amounts[debit.id] -= taken
                left -= taken
        day = as_of.date()
        return [
            OpenItem(
                entry=debit,
                open=Money(open_amounts[debit.id], self.currency),
                days_overdue=max(0, (day - (debit.due_on or debit.posted_at.date())).days),
            )
            for debit in debits
            if open_amounts[debit.id] > 0
        ]

    def overdue(self, as_of: datetime) -> Money:
        """The sum still open on debits whose due day is before ``as_of``'s day."""
        total = sum(
            (item.open.amount for item in self.open_items(as_of) if item.days_overdue > 0), Decimal(0)
        )
        return Money(total, self.currency)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form: account, currency and every entry."""
        return {
            "account_id": self.account_id,
            "currency": self.currency,
            "entries": [to_data(entry) for entry in self.entries],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AccountLedger:
        """Rebuild a ledger from :meth:`to_json`'s form, checking every entry as :meth:`post` does.

        Raises:
            ValidationError: Naming the bad entry (``entries[3].amount``).
        """
        entries = []
        for index, item in enumerate(data.get("entries", ())):
            try:
                entries.append(from_data(LedgerEntry, item))
            except ValidationError as exc:
                raise _under_entries(exc, index) from None
        try:
            return cls(str(data["account_id"]), str(data["currency"])).post(*entries)
        except ValidationError as exc:
            raise type(exc)([p.under("entries") for p in exc.problems]) from None


def _under_entries(exc: ValidationError, index: int) -> ValidationError:
    return type(exc)([problem.under(index).under("entries") for problem in exc.problems])
