"""Our master-file names and field parsers against dnspython's, input by input.

The deploy path reads names, TTLs, classes and TLSA data without dnspython (for start-up
time); these tests hold it to dnspython's behaviour, which the zone tests use as the oracle.
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.ttl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.dnsname import BadName, Name, from_dnspython, to_dnspython
from certbot_dane_tlsa.zonefile.presentation import parse_class, parse_tlsa, parse_ttl

NAME_CHARS = st.sampled_from([*'abcXYZ019.-_\\@*$"();', "\\0", "\\065", "\\.", "\\256"])
ORIGINS = [dns.name.root, dns.name.from_text("example.com."), None, dns.name.empty]


def _ours(text: str, origin: dns.name.Name | None) -> tuple[bytes, ...] | str:
    try:
        ours_origin = None if origin is None else from_dnspython(origin)
        return dnsname.from_text(text, ours_origin).labels
    except BadName:
        return "error"


def _theirs(text: str, origin: dns.name.Name | None) -> tuple[bytes, ...] | str:
    try:
        return dns.name.from_text(text, origin).labels
    except dns.exception.DNSException:
        return "error"


@settings(max_examples=1500, deadline=None)
@given(st.lists(NAME_CHARS, max_size=30).map("".join), st.sampled_from(ORIGINS))
def test_from_text_parses_like_dnspython(text: str, origin: dns.name.Name | None) -> None:
    assert _ours(text, origin) == _theirs(text, origin)


@pytest.mark.parametrize(
    "text",
    ["@", ".", "", "mail", "mail.example.com.", "a\\.b", "\\065bc", "a..b", "\\", "\\25",
     "x" * 63, "x" * 64, ".".join(["a" * 60] * 4), ".".join(["a" * 61] * 4) + "."],
)  # fmt: skip
def test_from_text_edge_cases(text: str) -> None:
    for origin in ORIGINS:
        assert _ours(text, origin) == _theirs(text, origin), (text, origin)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=8), max_size=5), st.booleans(), st.booleans())
def test_to_text_prints_like_dnspython(labels: list[bytes], absolute: bool, omit: bool) -> None:
    full = tuple(labels) + ((b"",) if absolute else ())
    assert Name(full).to_text(omit) == dns.name.Name(full).to_text(omit)
    # And it reads back as the same name.
    assert dnsname.from_text(Name(full).to_text(), None) == Name(full)


LABELS = st.lists(st.sampled_from([b"a", b"B", b"mail", b"MAIL", b"example", b"com"]), max_size=4)


@settings(max_examples=500, deadline=None)
@given(LABELS, LABELS, st.booleans())
def test_relations_agree_with_dnspython(a: list[bytes], b: list[bytes], absolute: bool) -> None:
    root = [b""] if absolute else []
    ours_a, ours_b = Name(a + root), Name(b + root)
    their_a, their_b = dns.name.Name(a + root), dns.name.Name(b + root)
    assert (ours_a == ours_b) == (their_a == their_b)
    assert (hash(ours_a) == hash(ours_b)) or ours_a != ours_b
    assert ours_a.is_subdomain(ours_b) == their_a.is_subdomain(their_b)
    if ours_b.labels:  # dnspython relativizes to the empty name as name[:-0], i.e. to nothing
        assert ours_a.relativize(ours_b).labels == their_a.relativize(their_b).labels
    else:
        assert ours_a.relativize(ours_b) == ours_a
    assert (ours_a < ours_b) == (their_a < their_b)
    assert len(ours_a) == len(their_a)


def test_names_of_different_kinds_are_never_related() -> None:
    absolute = dnsname.from_text("mail.example.com.")
    relative = dnsname.from_text("mail.example.com", None)
    assert absolute != relative
    assert not absolute.is_subdomain(relative)
    assert not relative.is_subdomain(absolute)
    with pytest.raises(BadName):
        absolute.concatenate(relative)


def test_conversion_to_dnspython_round_trips() -> None:
    name = dnsname.from_text("_25._TCP.Mail.example.com.")
    wire = to_dnspython(name)
    assert wire == dns.name.from_text("_25._tcp.mail.example.com.")
    assert from_dnspython(wire) == name
    assert from_dnspython(wire).to_text() == "_25._TCP.Mail.example.com."


def test_non_ascii_text_is_refused_with_advice() -> None:
    with pytest.raises(BadName, match="xn--"):
        dnsname.from_text("bücher.example.")


# --- fields ---------------------------------------------------------------------------------

TTL_CHARS = st.sampled_from([*"0123456789wdhmsWDHMSx ", "٣"])


def _try(func: object, *args: object) -> object:
    try:
        return func(*args)  # type: ignore[operator]
    except (ValueError, dns.exception.DNSException):
        return "error"


@settings(max_examples=1500, deadline=None)
@given(st.lists(TTL_CHARS, max_size=12).map("".join))
def test_parse_ttl_agrees_with_dnspython(text: str) -> None:
    assert _try(parse_ttl, text) == _try(dns.ttl.from_text, text)


@pytest.mark.parametrize("text", ["0", "3600", "1w2d3h4m5s", "1H", "4294967295", "4294967296",
                                  "1h30", "h", "", "1x", "01d"])  # fmt: skip
def test_parse_ttl_cases(text: str) -> None:
    assert _try(parse_ttl, text) == _try(dns.ttl.from_text, text)


@pytest.mark.parametrize("text", ["IN", "in", "CH", "CHAOS", "HS", "hesiod", "NONE", "ANY",
                                  "CLASS1", "class255", "CLASS65535", "CLASS65536", "CLASS",
                                  "TLSA", "A", "INX", "RESERVED0"])  # fmt: skip
def test_parse_class_agrees_with_dnspython(text: str) -> None:
    def theirs(t: str) -> int:
        return int(dns.rdataclass.from_text(t))

    assert _try(parse_class, text) == _try(theirs, text)


TLSA_WORDS = st.sampled_from(
    ["3", "1", "0", "2", "255", "256", "-1", "\\#", "35", "3", "00", "ab", "AB", "abc", "zz",
     "0301", "01", "\\051", "\\x", "0" * 64, "1" * 63]
)  # fmt: skip


def _their_tlsa(words: list[str]) -> object:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, " ".join(words))
    return (rdata.usage, rdata.selector, rdata.mtype, bytes(rdata.cert))  # type: ignore[attr-defined]


def _our_tlsa(words: list[str]) -> object:
    record = parse_tlsa(words)
    return (record.usage, record.selector, record.mtype, record.data)


@settings(max_examples=2000, deadline=None)
@given(st.lists(TLSA_WORDS, max_size=7))
def test_parse_tlsa_agrees_with_dnspython(words: list[str]) -> None:
    def theirs(w: list[str]) -> object:
        try:
            return _their_tlsa(w)
        except Exception:  # dnspython raises several kinds here, all meaning "not valid"
            return "error"

    assert _try(_our_tlsa, words) == theirs(words)


def test_parse_tlsa_generic_form() -> None:
    data = bytes(range(32))
    words = ["\\#", "35", "030101", data.hex()]
    record = parse_tlsa(words)
    assert (record.usage, record.selector, record.mtype, record.data) == (3, 1, 1, data)
    with pytest.raises(ValueError, match="not the 36"):
        parse_tlsa(["\\#", "36", "030101", data.hex()])
