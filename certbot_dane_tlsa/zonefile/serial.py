"""SOA serial arithmetic (RFC 1982) and the choice of the next serial.

BIND refuses a reload, and secondaries never transfer, unless the new serial is greater than
the old one in 32-bit serial space, so every method here ends with "at least old + 1".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from certbot_dane_tlsa.errors import SettingsError

SERIAL_METHODS = ("auto", "increment", "date", "unixtime", "keep")

_MOD = 2**32
_HALF = 2**31
# A unix-time serial is taken for one when it lies between 2001-09-09 (1e9) and ten years after
# now; a smaller number is a counter. A ten-digit number that reads as a real date is a date.
_UNIX_MIN = 1_000_000_000
_DATE_MIN_YEAR = 1970
_TEN_YEARS = 10 * 366 * 86400


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 section 3.2: ``a > b`` in serial space (undefined pairs count as not greater)."""
    a %= _MOD
    b %= _MOD
    return (a < b and b - a > _HALF) or (a > b and a - b < _HALF)


def serial_add(a: int, n: int) -> int:
    """RFC 1982 section 3.1 addition; ``n`` may be at most 2**31 - 1."""
    if not 0 <= n < _HALF:
        raise ValueError(f"serial increment {n} is outside 0..2**31-1")
    return (a + n) % _MOD


def _as_utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _date_of(serial: int, now: datetime) -> datetime | None:
    """The day a YYYYMMDDnn serial names, if it names a real, plausible day."""
    text = str(serial)
    if len(text) != 10:
        return None
    try:
        # Not strptime: its first call imports _strptime and calendar, start-up the deploy
        # hook pays on every renewal; the digits are fixed-width here anyway.
        day = datetime(int(text[:4]), int(text[4:6]), int(text[6:8]), tzinfo=UTC)
    except ValueError:
        return None
    return day if _DATE_MIN_YEAR <= day.year <= _as_utc(now).year + 10 else None


def detect_format(serial: int, now: datetime) -> Literal["date", "unixtime", "counter"]:
    """Guess how the zone's author counts, so ``auto`` can keep counting the same way.

    Some ten-digit numbers read both as a date and as a unix time (1975020120 is 1975-02-01
    and also August 2032). A serial is seldom ahead of the clock, so a reading more than two
    days in the future loses; otherwise the reading closer to ``now`` wins.
    """
    now_utc = _as_utc(now)
    day = _date_of(serial, now)
    unix_ok = _UNIX_MIN <= serial <= int(now_utc.timestamp()) + _TEN_YEARS
    if day is not None and unix_ok:
        as_time = datetime.fromtimestamp(serial, UTC)

        def score(when: datetime) -> tuple[bool, timedelta]:
            return when - now_utc > timedelta(days=2), abs(when - now_utc)

        return "date" if score(day) <= score(as_time) else "unixtime"
    if day is not None:
        return "date"
    if unix_ok:
        return "unixtime"
    return "counter"


def _date_value(now: datetime) -> int:
    return int(_as_utc(now).strftime("%Y%m%d")) * 100


def _at_least_next(old: int, candidate: int) -> int:
    # BIND's serial-update-method: the format's value when that moves forward, else old + 1.
    if 0 <= candidate < _MOD and serial_gt(candidate, old):
        return candidate
    return serial_add(old, 1)


def next_serial(old: int, method: str, now: datetime) -> int:
    """The serial to write when the zone's content changes (``keep`` leaves it as it is)."""
    if method not in SERIAL_METHODS:
        raise SettingsError(f"serial method {method!r} is not one of {', '.join(SERIAL_METHODS)}")
    if not 0 <= old < _MOD:
        raise ValueError(f"serial {old} is outside 0..2**32-1")
    if method == "keep":
        return old
    if method == "auto":
        fmt = detect_format(old, now)
        method = {"date": "date", "unixtime": "unixtime", "counter": "increment"}[fmt]
    if method == "increment":
        return serial_add(old, 1)
    if method == "date":
        return _at_least_next(old, _date_value(now))
    return _at_least_next(old, int(_as_utc(now).timestamp()))
