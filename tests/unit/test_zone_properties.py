"""Property test: zones built at random from the master-file features the editor must read
($ORIGIN switches, blank owners, relative/absolute/upper-case owners, TTL and class in either
order, parentheses, comments, tricky TXT quotes, CRLF, existing TLSA records at the managed
owners). After the edit dnspython must read exactly the expected zone, named-checkzone must
accept it, only splices of the allowed kinds may appear, and the fast scanner must plan what
the line-by-line scanner plans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.dnsname import Name
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile import plan_zone_edit, scanner

ORIGIN = dnsname.from_text("example.com.")


@contextmanager
def small_chunks(size: int = 23) -> Iterator[None]:
    old = scanner.CHUNK_SIZE
    scanner.CHUNK_SIZE = size
    try:
        yield
    finally:
        scanner.CHUNK_SIZE = old


NOW = datetime(2024, 5, 1, tzinfo=UTC)
ORIGINS = [ORIGIN, dnsname.from_text("mail.example.com."), dnsname.from_text("sub.example.com.")]
MANAGED = [
    dnsname.from_text("_25._tcp.mail.example.com."),
    dnsname.from_text("_465._tcp.mail.example.com."),
]
OWNERS = [
    *MANAGED,
    dnsname.from_text("mail.example.com."),
    dnsname.from_text("www.example.com."),
    dnsname.from_text("a.sub.example.com."),
    dnsname.from_text("_25._tcp.www.example.com."),
]
POOL = [TlsaRecord(u, 1, 1, bytes([n]) * 32) for u in (3, 2) for n in (1, 2, 3)]
TXTS = ['"plain"', '"semi;colon"', '"(" ")"', '"esc \\" quote ;("', '"a" "b c"', '"\\\\"']


def owner_text(owner: Name, origin: Name, upper: bool) -> str:
    if owner == origin:
        text = "@"
    elif owner.is_subdomain(origin):
        text = owner.relativize(origin).to_text()
    else:
        text = owner.to_text()
    return text.upper() if upper else text


@st.composite
def zones(draw: Any) -> str:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    serial = draw(st.sampled_from(["2024010101", "42", "1700000000"]))
    soa_form = draw(st.integers(0, 2))
    lines = ["$TTL 3600"]
    if soa_form == 0:
        lines.append(f"@ IN SOA ns1.example.com. h.example.com. {serial} 7200 3600 1209600 300")
    elif soa_form == 1:
        lines += [
            "@ 3600 IN SOA ns1.example.com. h.example.com. (",
            f"  {serial} ; Serial",
            "  7200 3600 ; (refresh) retry",
            "  1209600 300 ) ; end",
        ]
    else:
        lines += [
            "example.com. SOA ( ns1.example.com. h.example.com.",
            f"{serial}",
            "7200 3600 1209600 300 )",
        ]
    lines += [" IN NS ns1.example.com.", "ns1.example.com. IN A 192.0.2.1"]
    origin = ORIGIN
    have_owner = True
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            origin = draw(st.sampled_from(ORIGINS))
            lines.append(f"$ORIGIN {origin.to_text()}")
            continue
        if kind == 1:
            lines.append(
                draw(st.sampled_from(["", "; just a comment (with paren", "   ; indented"]))
            )
            continue
        blank = have_owner and draw(st.booleans())
        owner = (
            "" if blank else owner_text(draw(st.sampled_from(OWNERS)), origin, draw(st.booleans()))
        )
        have_owner = True
        ttl = draw(st.sampled_from(["", "300", "1h"]))
        cls = draw(st.sampled_from(["", "IN", "in"]))
        head = " ".join(x for x in ((ttl, cls) if draw(st.booleans()) else (cls, ttl)) if x)
        if kind <= 5:
            rec = draw(st.sampled_from(POOL))
            rtype = draw(st.sampled_from(["TLSA", "tlsa", "TYPE52"]))
            if rtype == "TYPE52":
                data = f"\\# 35 {rec.usage:02x}{rec.selector:02x}{rec.mtype:02x}{rec.data.hex()}"
            else:
                hexdata = rec.data.hex()
                data = f"{rec.usage} {rec.selector} {rec.mtype} {hexdata[:20]} {hexdata[20:]}"
            if draw(st.booleans()):
                parts = data.split(" ")
                data = (
                    "( "
                    + " ".join(parts[:3])
                    + " ; split"
                    + eol
                    + "\t"
                    + " ".join(parts[3:])
                    + " )"
                )
        elif kind <= 7:
            rtype, data = "TXT", draw(st.sampled_from(TXTS))
        else:
            rtype, data = "A", f"192.0.2.{draw(st.integers(2, 250))}"
        comment = draw(st.sampled_from(["", " ; note", ' ; "odd quote']))
        lines.append(f"{owner}\t{head}\t{rtype}\t{data}{comment}")
    text = eol.join(lines)
    return text + (eol if draw(st.booleans()) else "")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=zones(),
    want25=st.sets(st.sampled_from(POOL[:3]), max_size=2),
    want465=st.sets(st.sampled_from(POOL[:3]), max_size=2),
)
def test_random_zones(
    tmp_path: Path, zc: Any, text: str, want25: set[TlsaRecord], want465: set[TlsaRecord]
) -> None:
    zone = tmp_path / "db.example.com"
    zone.write_bytes(text.encode())
    managed = {MANAGED[0]: {TlsaParams(3, 1, 1)}, MANAGED[1]: {TlsaParams(3, 1, 1)}}
    desired = {MANAGED[0]: want25, MANAGED[1]: want465}
    edit = plan_zone_edit(zone, ORIGIN, desired, managed, now=NOW)
    full = plan_zone_edit(zone, ORIGIN, desired, managed, now=NOW, full_scan=True)
    assert edit.splices == full.splices
    with small_chunks():
        assert plan_zone_edit(zone, ORIGIN, desired, managed, now=NOW).splices == edit.splices
    assert edit.changes == full.changes and edit.found == full.found

    before = zc.parse_zone(zone, ORIGIN)
    for owner in MANAGED:
        rds = before.get((owner, int(dns.rdatatype.TLSA)), (0, frozenset()))[1]
        assert {zc.tlsa_rdata(r) for r in edit.found[owner]} == set(rds)

    original = zone.read_bytes()
    result = zc.written(edit)
    assert result == zc.apply_splices(original, edit)
    zc.check_splices_are_minimal(original, edit)
    if not edit.changed:
        assert result == original and edit.new_serial is None
        return
    out = tmp_path / "edited"
    out.write_bytes(result)
    after = zc.parse_zone(out, ORIGIN)
    expected = zc.expected_rrsets(before, managed, desired, edit.new_serial, ORIGIN)
    owners = set(MANAGED)
    assert zc.without_tlsa_ttls(after, owners) == zc.without_tlsa_ttls(expected, owners)
    if zc.named_checkzone(zone, ORIGIN).returncode == 0:  # BIND may refuse what dnspython reads
        check = zc.named_checkzone(out, ORIGIN)
        assert check.returncode == 0, check.stdout + text
