from datetime import UTC, datetime, timedelta, timezone

import pytest

from crmkit import clock
from crmkit.clock import Clock, FixedClock, SystemClock, get_clock, use_clock
from crmkit.errors import ValidationError

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_system_clock_tells_aware_time_in_its_timezone():
    tokyo = timezone(timedelta(hours=9))
    assert SystemClock().now().tzinfo is UTC
    assert SystemClock(tokyo).now().utcoffset() == timedelta(hours=9)


def test_fixed_clock_stands_still_until_moved():
    fixed = FixedClock(START)
    assert fixed.now() == fixed.now() == START
    assert fixed.advance(hours=2, minutes=30) == START + timedelta(hours=2, minutes=30)
    assert fixed.advance(timedelta(days=1), seconds=1) == START + timedelta(
        days=1, hours=2, minutes=30, seconds=1
    )
    fixed.set(START)
    assert fixed.now() == START


def test_fixed_clock_refuses_naive_times_and_backward_steps():
    with pytest.raises(ValidationError) as caught:
        FixedClock(datetime(2026, 1, 5))  # noqa: DTZ001 - the point of the test
    assert caught.value.paths == ("at",)
    fixed = FixedClock(START)
    with pytest.raises(ValidationError, match="only advances"):
        fixed.advance(hours=-1)
    with pytest.raises(ValidationError):
        fixed.set("2026-01-05")  # type: ignore[arg-type]


def test_use_clock_swaps_the_current_clock_inside_the_block_only():
    fixed = FixedClock(START)
    assert isinstance(get_clock(), SystemClock)
    with use_clock(fixed) as inside:
        assert inside is fixed
        assert get_clock() is fixed
        assert clock.now() == START
    assert isinstance(get_clock(), SystemClock)


def test_use_clock_needs_something_with_now():
    with pytest.raises(ValidationError), use_clock(object()):  # type: ignore[arg-type]
        pass


def test_clocks_satisfy_the_protocol():
    assert isinstance(FixedClock(START), Clock)
    assert isinstance(SystemClock(), Clock)
