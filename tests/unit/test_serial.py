"""Serial arithmetic and the choice of the next serial (RFC 1982, BIND's update methods)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from certbot_dane_tlsa.errors import SettingsError
from certbot_dane_tlsa.zonefile.serial import (
    SERIAL_METHODS,
    detect_format,
    next_serial,
    serial_add,
    serial_gt,
)

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
MAX = 2**32 - 1
serials = st.integers(min_value=0, max_value=MAX)
moments = st.datetimes(
    min_value=datetime(2001, 9, 10), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


def test_serial_gt_basic_and_wrap() -> None:
    assert serial_gt(2, 1)
    assert not serial_gt(1, 2)
    assert not serial_gt(5, 5)
    assert serial_gt(0, MAX)  # 0 follows 2**32-1
    assert not serial_gt(MAX, 0)
    assert serial_gt(2**31 - 1, 0)
    assert not serial_gt(2**31, 0)  # exactly half way round: undefined, so not greater


def test_serial_add_wraps() -> None:
    assert serial_add(MAX, 1) == 0
    assert serial_add(10, 5) == 15
    with pytest.raises(ValueError):
        serial_add(1, 2**31)


@pytest.mark.parametrize(
    ("serial", "fmt"),
    [
        (2024050100, "date"),
        (2024043099, "date"),
        (2024023001, "unixtime"),  # February 30th is no date, but 2034 is a plausible time
        (1714566600, "unixtime"),
        (42, "counter"),
        (1999123100, "date"),
        (1975020120, "date"),  # as a unix time it would lie in 2032, in the future
    ],
)
def test_detect_format(serial: int, fmt: str) -> None:
    assert detect_format(serial, NOW) == fmt


def test_ambiguous_serial_takes_the_reading_closest_to_now() -> None:
    in_2032 = datetime(2032, 8, 2, 0, 42, tzinfo=UTC)
    assert detect_format(1975020120, in_2032) == "unixtime"
    assert detect_format(2032080200, in_2032) == "date"


def test_methods() -> None:
    assert next_serial(2024010101, "auto", NOW) == 2024050100
    assert next_serial(2024050100, "auto", NOW) == 2024050101  # same day: count up
    assert next_serial(2024050199, "auto", NOW) == 2024050200
    assert next_serial(1700000000, "auto", NOW) == int(NOW.timestamp())
    assert next_serial(41, "auto", NOW) == 42
    assert next_serial(41, "increment", NOW) == 42
    assert next_serial(41, "date", NOW) == 2024050100
    assert next_serial(2100000000, "date", NOW) == 2100000001  # ahead of today: old + 1
    assert next_serial(41, "unixtime", NOW) == int(NOW.timestamp())
    assert next_serial(41, "keep", NOW) == 41
    assert next_serial(MAX, "increment", NOW) == 0


def test_naive_now_is_utc() -> None:
    assert next_serial(5, "unixtime", NOW.replace(tzinfo=None)) == int(NOW.timestamp())


def test_unknown_method() -> None:
    with pytest.raises(SettingsError):
        next_serial(1, "weekly", NOW)
    assert set(SERIAL_METHODS) == {"auto", "increment", "date", "unixtime", "keep"}


@given(serials, st.sampled_from([m for m in SERIAL_METHODS if m != "keep"]), moments)
def test_next_is_always_greater(old: int, method: str, now: datetime) -> None:
    assert serial_gt(next_serial(old, method, now), old)


@given(serials, moments)
def test_keep_keeps(old: int, now: datetime) -> None:
    assert next_serial(old, "keep", now) == old


@given(moments, st.integers(0, 3650), st.integers(0, 98))
def test_auto_keeps_date_format(now: datetime, days_ago: int, count: int) -> None:
    day = now - timedelta(days=days_ago)
    old = int(day.strftime("%Y%m%d")) * 100 + count
    # 2033-2036: some numbers read as both; only serials that read as dates are in scope
    assume(detect_format(old, now) == "date")
    new = next_serial(old, "auto", now)
    assert detect_format(new, now) == "date"
    assert new >= int(now.strftime("%Y%m%d")) * 100


@given(moments, st.integers(0, 10**8))
def test_auto_keeps_unixtime_format(now: datetime, seconds_ago: int) -> None:
    old = max(int(now.timestamp()) - seconds_ago, 1_000_000_000)
    assume(detect_format(old, now) == "unixtime")
    new = next_serial(old, "auto", now)
    assert detect_format(new, now) == "unixtime"
    assert new == max(int(now.timestamp()), old + 1)


@given(moments, st.integers(0, 10**8))
def test_auto_keeps_counter_format(now: datetime, old: int) -> None:
    assert next_serial(old, "auto", now) == old + 1
    assert detect_format(old + 1, now) == "counter"


@given(st.integers(MAX - 1000, MAX), st.integers(1, 2000))
def test_increment_wraps_around(old: int, steps: int) -> None:
    value = old
    for _ in range(steps):
        new = next_serial(value, "increment", NOW)
        assert serial_gt(new, value)
        value = new
    assert value == (old + steps) % 2**32
