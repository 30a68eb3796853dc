"""ISO 8601 durations (``P30D``, ``PT4H``, ``P1Y2M``) for the time operators."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from crmkit.errors import RuleError

__all__ = ["format_duration", "parse_duration"]

# Anchored and without nested quantifiers, so matching is linear in the input length.
_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d{1,6})?)S)?)?"
)
_MAX_TEXT = 64


def parse_duration(text: str) -> relativedelta:
    """Parse an ISO 8601 duration such as ``P1Y2M10DT2H30M`` or ``P2W``.

    Calendar parts (years, months) stay calendar-aware: ``P1M`` before
    31 March is 28 or 29 February.

    Raises:
        RuleError: If the text is not a positive ISO 8601 duration.
    """
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        msg = f"expected an ISO 8601 duration such as 'P30D', got {text!r}"
        raise RuleError(msg)
    match = _DURATION.fullmatch(text)
    if match is None or text in {"P", "PT"} or text.endswith("T"):
        msg = f"expected an ISO 8601 duration such as 'P30D' or 'PT4H', got {text!r}"
        raise RuleError(msg)
    parts = match.groupdict()
    seconds = Decimal((parts["seconds"] or "0").replace(",", "."))
    whole_seconds = int(seconds)
    delta = relativedelta(
        years=int(parts["years"] or 0),
        months=int(parts["months"] or 0),
        weeks=int(parts["weeks"] or 0),
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=whole_seconds,
        microseconds=int((seconds - whole_seconds) * 1_000_000),
    )
    if not delta:
        msg = f"a duration must be longer than zero, got {text!r}"
        raise RuleError(msg)
    return delta


def format_duration(delta: timedelta) -> str:
    """Write a positive ``timedelta`` as an ISO 8601 duration (days and time parts).

    Raises:
        RuleError: If the duration is zero or negative.
    """
    if delta <= timedelta():
        msg = f"a duration must be longer than zero, got {delta}"
        raise RuleError(msg)
    days, rest = delta.days, delta.seconds
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    date_part = f"{days}D" if days else ""
    time_part = "".join(
        f"{amount}{unit}" for amount, unit in ((hours, "H"), (minutes, "M")) if amount
    )
    if seconds or delta.microseconds:
        fraction = f".{delta.microseconds:06d}".rstrip("0") if delta.microseconds else ""
        time_part += f"{seconds}{fraction}S"
    return f"P{date_part}" + (f"T{time_part}" if time_part else "")
