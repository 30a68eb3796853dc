"""Where "now" comes from: an injectable clock.

crmkit never calls ``datetime.now()`` on its own. Code that needs the current
time takes a :class:`Clock` argument, and defaults (such as an entity's
``created_at``) read the *current clock*, which is the system clock unless a
host or a test swaps it in with :func:`use_clock`::

    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    with use_clock(clock):
        lead = Lead(email="ada@example.com")   # created_at == 2026-01-05 09:00 UTC
        clock.advance(hours=2)

Every time a clock returns is timezone-aware.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Clock", "FixedClock", "SystemClock", "get_clock", "now", "use_clock"]


@runtime_checkable
class Clock(Protocol):
    """Anything that can tell the current, timezone-aware time."""

    def now(self) -> datetime:
        """Return the current time; it always carries a timezone."""
        ...


class SystemClock:
    """The real time of the machine, in a given timezone (UTC by default)."""

    __slots__ = ("_tz",)

    def __init__(self, tz: tzinfo = UTC) -> None:
        self._tz = tz

    def now(self) -> datetime:
        """Return the machine's current time in this clock's timezone."""
        return datetime.now(self._tz)

    def __repr__(self) -> str:
        return f"SystemClock({self._tz!r})"


class FixedClock:
    """A clock that stands still until it is moved: for tests and replays.

    Args:
        at: The time the clock shows; it must be timezone-aware.
    """

    __slots__ = ("_at",)

    def __init__(self, at: datetime) -> None:
        self._at = _require_aware(at)

    def now(self) -> datetime:
        """Return the time the clock was set to."""
        return self._at

    def set(self, at: datetime) -> None:
        """Move the clock to ``at`` (forwards or backwards)."""
        self._at = _require_aware(at)

    def advance(
        self,
        delta: timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> datetime:
        """Move the clock forward and return the new time.

        Args:
            delta: How far to move, as a ``timedelta``; added to the keyword parts.
            days: Days to move.
            hours: Hours to move.
            minutes: Minutes to move.
            seconds: Seconds to move.

        Raises:
            ValidationError: If the total step is negative.
        """
        step = (delta or timedelta()) + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if step < timedelta():
            msg = f"a clock only advances; got a step of {step}"
            raise ValidationError.single("delta", msg)
        self._at = self._at + step
        return self._at

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()!r})"


def _require_aware(at: object) -> datetime:
    if not isinstance(at, datetime):
        msg = f"expected a datetime, got {type(at).__name__}"
        raise ValidationError.single("at", msg)
    if at.utcoffset() is None:
        msg = f"datetime {at.isoformat()} has no timezone"
        raise ValidationError.single("at", msg)
    return at


_SYSTEM = SystemClock()
_current: ContextVar[Clock] = ContextVar("crmkit_clock", default=_SYSTEM)


def get_clock() -> Clock:
    """Return the current clock: the system clock unless :func:`use_clock` set another."""
    return _current.get()


def now() -> datetime:
    """Return the current clock's time."""
    return _current.get().now()


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the current clock inside the ``with`` block (per thread and task).

    Args:
        clock: The clock to use.

    Yields:
        The same clock, for convenience.
    """
    if not callable(getattr(clock, "now", None)):
        msg = f"expected an object with now(), got {type(clock).__name__}"
        raise ValidationError.single("clock", msg)
    token = _current.set(clock)
    try:
        yield clock
    finally:
        _current.reset(token)
