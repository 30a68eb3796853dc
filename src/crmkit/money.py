"""Money: an exact decimal amount in one ISO 4217 currency.

Amounts are :class:`~decimal.Decimal`, never ``float``, so ``0.1 + 0.2`` is
exactly ``0.3``. Arithmetic keeps full precision; :meth:`Money.rounded` rounds
to the currency's minor units (cents, fils, yen) with banker's rounding
(``ROUND_HALF_EVEN``), which does not drift upwards when many amounts are
rounded and summed. Combining two currencies raises
:class:`~crmkit.errors.CurrencyMismatch`; crmkit never converts silently::

    >>> Money("19.99", "eur") + Money(1, "EUR")
    Money(amount=Decimal('20.99'), currency='EUR')
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.errors import CurrencyMismatch, Problem, ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["CURRENCIES", "Money", "check_currency", "minor_units", "sum_money"]

# The active ISO 4217 codes and their minor units (digits after the decimal point),
# without the fund-less codes such as XAU or XXX that have no minor units.
_ISO_4217 = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
    "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2,
    "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2,
    "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2,
    "COU": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2,
    "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2,
    "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2,
    "FJD": 2, "FKP": 2,
    "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2,
    "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2,
    "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0,
    "JMD": 2, "JOD": 3, "JPY": 0,
    "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2,
    "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3,
    "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
    "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2,
    "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2,
    "OMR": 3,
    "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0,
    "QAR": 2,
    "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0,
    "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2,
    "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2,
    "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2,
    "UAH": 2, "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2,
    "VED": 2, "VES": 2, "VND": 0, "VUV": 0,
    "WST": 2,
    "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0,
    "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip

CURRENCIES: Mapping[str, int] = MappingProxyType(_ISO_4217)
"""Read-only mapping of every supported ISO 4217 code to its minor units."""

# One quantum per number of minor units, so rounding does not rebuild it each call.
_QUANTA = {units: Decimal(1).scaleb(-units) for units in set(_ISO_4217.values())}


def minor_units(currency: str) -> int:
    """Return how many digits follow the decimal point in ``currency`` (EUR 2, JPY 0, BHD 3).

    Args:
        currency: An ISO 4217 code, in any letter case.

    Raises:
        ValidationError: If the code is not an active ISO 4217 currency (path ``currency``).
    """
    return _ISO_4217[check_currency(currency)]


def check_currency(currency: object, *, field: str = "currency") -> str:
    """Return ``currency`` upper-cased if it is an active ISO 4217 code.

    Args:
        currency: The code to check.
        field: The path named in the error.

    Raises:
        ValidationError: If it is not a string naming an active ISO 4217 currency.
    """
    if not isinstance(currency, str):
        raise ValidationError.single(field, f"expected an ISO 4217 code, got {type(currency).__name__}")
    code = currency.strip().upper()
    if code not in _ISO_4217:
        raise ValidationError.single(field, f"{currency!r} is not an active ISO 4217 currency code")
    return code


def _to_amount(amount: object) -> Decimal | str:
    """Convert an accepted amount to Decimal, or return why it is refused."""
    if isinstance(amount, bool | float):
        return f"{type(amount).__name__} is not an exact amount; use Decimal, int or str"
    if isinstance(amount, Decimal):
        value = amount
    elif isinstance(amount, int):
        value = Decimal(amount)
    elif isinstance(amount, str):
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            return f"{amount!r} is not a decimal number"
    else:
        return f"expected Decimal, int or str, got {type(amount).__name__}"
    if not value.is_finite():
        return f"{amount!r} is not a finite amount"
    return value


@attrs.frozen(init=False)
class Money:
    """An exact amount of one currency.

    Money values are immutable and compare by value: ``Money("1.0", "EUR") ==
    Money("1.00", "EUR")``. Ordering comparisons (``<``, ``<=``, ...) are only
    defined within one currency.

    Args:
        amount: A ``Decimal``, ``int`` or numeric ``str``; ``float`` is refused
            because it cannot hold most decimal amounts exactly.
        currency: An active ISO 4217 code; lower case is accepted and upper-cased.

    Raises:
        ValidationError: With a problem at ``amount`` and/or ``currency``.

    Attributes:
        amount: The amount, at full precision (see :meth:`rounded`).
        currency: The upper-case ISO 4217 code.
    """

    amount: Decimal
    currency: str

    def __init__(self, amount: Decimal | int | str, currency: str) -> None:
        value = _to_amount(amount)
        problems = [Problem("amount", value)] if isinstance(value, str) else []
        try:
            code = check_currency(currency)
        except ValidationError as exc:
            problems.extend(exc.problems)
        if problems or isinstance(value, str):
            raise ValidationError(problems)
        self.__attrs_init__(value, code)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Return zero in ``currency``."""
        return cls(Decimal(0), currency)

    @property
    def is_zero(self) -> bool:
        """Whether the amount is zero."""
        return self.amount.is_zero()

    def rounded(self) -> Money:
        """Return the amount rounded to the currency's minor units, half to even.

        ``ROUND_HALF_EVEN`` (banker's rounding) sends ties to the even digit:
        ``Money("0.125", "EUR").rounded()`` is ``0.12`` and ``0.135`` becomes ``0.14``.
        """
        quantum = _QUANTA[_ISO_4217[self.currency]]
        return Money(self.amount.quantize(quantum, rounding=ROUND_HALF_EVEN), self.currency)

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch.single("currency", f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __mul__(self, factor: object) -> Money:
        # bool is an int subclass but multiplying money by True is a bug, not a quantity.
        if isinstance(factor, bool) or not isinstance(factor, int | Decimal):
            return NotImplemented
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def _compare_amounts(self, other: object) -> tuple[Decimal, Decimal] | None:
        if not isinstance(other, Money):
            return None
        self._same_currency(other)
        return self.amount, other.amount

    def __lt__(self, other: object) -> bool:
        pair = self._compare_amounts(other)
        return NotImplemented if pair is None else pair[0] < pair[1]

    def __le__(self, other: object) -> bool:
        pair = self._compare_amounts(other)
        return NotImplemented if pair is None else pair[0] <= pair[1]

    def __gt__(self, other: object) -> bool:
        pair = self._compare_amounts(other)
        return NotImplemented if pair is None else pair[0] > pair[1]

    def __ge__(self, other: object) -> bool:
        pair = self._compare_amounts(other)
        return NotImplemented if pair is None else pair[0] >= pair[1]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.amount, self.currency))


def sum_money(amounts: Iterable[Money], currency: str) -> Money:
    """Add up ``amounts``; an empty iterable gives zero in ``currency``.

    Args:
        amounts: Money values, all in ``currency``.
        currency: The currency of the total (needed so an empty sum has one).

    Raises:
        CurrencyMismatch: If an amount is in another currency.
        ValidationError: If ``currency`` is not an ISO 4217 code.
    """
    total = Money.zero(currency)
    for amount in amounts:
        total = total + amount
    return total
