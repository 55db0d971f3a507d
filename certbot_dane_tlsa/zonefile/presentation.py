"""The few master-file field formats the zone reader must understand: TTLs, classes, TLSA data.

They follow RFC 1035 section 5, BIND's TTL units and RFC 3597's generic ``\\# length hex``
form, and accept and reject what dnspython's zone parser does (the fuzz tests use it as the
oracle). They live here rather than being borrowed from dnspython so that the deploy hook
does not pay for importing it.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

from certbot_dane_tlsa.records import DIGEST_SIZES, TlsaRecord

MAX_TTL = 2**32 - 1
_TTL_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# Class mnemonics (RFC 1035 section 3.2.4, RFC 2136 for NONE/ANY) and their aliases.
_CLASSES = {
    "RESERVED0": 0,
    "IN": 1,
    "INTERNET": 1,
    "CH": 3,
    "CHAOS": 3,
    "HS": 4,
    "HESIOD": 4,
    "NONE": 254,
    "ANY": 255,
}


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_ttl(text: str) -> int:
    """Seconds from ``3600`` or BIND's unit form ``1w2d3h4m5s`` (ValueError if neither)."""
    if _ascii_digits(text):
        total = int(text)
    else:
        if not text:
            raise ValueError("empty TTL")
        total = current = 0
        need_digit = True
        for char in text:
            if _ascii_digits(char):
                current = current * 10 + int(char)
                need_digit = False
                continue
            unit = _TTL_UNITS.get(char.lower())
            if need_digit or unit is None:
                raise ValueError(f"{text!r} is not a TTL")
            total += current * unit
            current, need_digit = 0, True
        if not need_digit:
            raise ValueError(f"TTL {text!r} ends in a number without a unit")
    if total > MAX_TTL:
        raise ValueError(f"TTL {text!r} is above 2**32 - 1")
    return total


def parse_class(text: str) -> int:
    """The class number of ``IN``, ``CH``, ``CLASS255``... (ValueError if not a class)."""
    upper = text.upper()
    value = _CLASSES.get(upper)
    if value is not None:
        return value
    digits = upper[len("CLASS") :]
    if upper.startswith("CLASS") and _ascii_digits(digits) and int(digits) <= 0xFFFF:
        return int(digits)
    raise ValueError(f"{text!r} is not a DNS class")


def _unescape(word: str) -> str:
    # Master-file escapes (\X and \DDD) may appear in any field; resolve them as BIND does.
    if "\\" not in word:
        return word
    out: list[str] = []
    i = 0
    while i < len(word):
        char = word[i]
        i += 1
        if char != "\\":
            out.append(char)
        elif _ascii_digits(word[i : i + 3]) and len(word[i : i + 3]) == 3:
            out.append(chr(int(word[i : i + 3])))
            i += 3
        elif i < len(word) and not _ascii_digits(word[i]):
            out.append(word[i])
            i += 1
        else:
            raise ValueError(f"bad escape in {word!r}")
    return "".join(out)


def _uint8(word: str, what: str) -> int:
    text = _unescape(word)
    if not _ascii_digits(text) or int(text) > 255:
        raise ValueError(f"{what} {word!r} is not a number from 0 to 255")
    return int(text)


def _hex(words: Sequence[str]) -> bytes:
    text = "".join(_unescape(w) for w in words)
    try:
        return binascii.unhexlify(text.encode("ascii"))
    except (ValueError, binascii.Error):
        raise ValueError("the data is not an even number of hex digits") from None


def parse_tlsa(words: Sequence[str]) -> TlsaRecord:
    """TLSA RDATA from its fields: ``3 1 1 <hex...>`` or the generic ``\\# 35 <hex...>``."""
    if words and words[0] == "\\#":
        if len(words) < 2 or not _ascii_digits(words[1]):
            raise ValueError("generic data (\\#) needs a decimal length")
        wire = _hex(words[2:])
        if len(wire) != int(words[1]):
            raise ValueError(f"generic data is {len(wire)} octets, not the {words[1]} it says")
        if len(wire) < 3:
            raise ValueError("generic TLSA data is shorter than its three one-octet fields")
        return _checked(TlsaRecord(wire[0], wire[1], wire[2], wire[3:]))
    if len(words) < 4:
        raise ValueError("TLSA data needs usage, selector, matching type and data")
    usage = _uint8(words[0], "usage")
    selector = _uint8(words[1], "selector")
    mtype = _uint8(words[2], "matching type")
    return _checked(TlsaRecord(usage, selector, mtype, _hex(words[3:])))


def _checked(record: TlsaRecord) -> TlsaRecord:
    # A digest of the wrong size can match nothing; dnspython refuses it, and so do we.
    size = DIGEST_SIZES.get(record.mtype)
    if size is not None and len(record.data) != size:
        raise ValueError(
            f"matching type {record.mtype} data is {size} octets, not {len(record.data)}"
        )
    return record
