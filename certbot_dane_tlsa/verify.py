"""Asking the authoritative servers what they really serve.

Publishing is only half the job: a reload can be lost, a secondary can lag, and a signed zone
can serve a record without its signature for a moment. We query every configured server
directly (no recursion, DO bit set) and compare the TLSA RRset by value with what we wrote,
polling for a bounded time, and we name the server and owner that disagree.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from certbot_dane_tlsa.dnsname import Name, to_dnspython
from certbot_dane_tlsa.errors import VerificationError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.settings import Nameserver

log = logging.getLogger(__name__)

QUERY_TIMEOUT = 3.0


@dataclass(frozen=True)
class Served:
    """One server's answer for one owner."""

    records: frozenset[TlsaRecord]
    signed: bool
    rcode: str


def _addresses(server: Nameserver) -> list[str]:
    try:
        infos = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise VerificationError(f"cannot resolve nameserver {server.host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def query(address: str, port: int, qname: Name, rdtype: str) -> dns.message.Message:
    request = dns.message.make_query(to_dnspython(qname), rdtype, want_dnssec=True)
    request.flags &= ~dns.flags.RD
    response, _ = dns.query.udp_with_fallback(request, address, timeout=QUERY_TIMEOUT, port=port)
    return response


def tlsa_in_answer(
    response: dns.message.Message, owner: Name
) -> tuple[frozenset[TlsaRecord], int, bool]:
    """The TLSA records at ``owner`` in an answer, their TTL, and whether an RRSIG covers them."""
    wire_owner = to_dnspython(owner)
    records: set[TlsaRecord] = set()
    ttl = 0
    signed = False
    for rrset in response.answer:
        if rrset.name != wire_owner:
            continue
        if rrset.rdtype == dns.rdatatype.TLSA:
            ttl = max(ttl, rrset.ttl)
            for rdata in rrset:
                records.add(TlsaRecord(rdata.usage, rdata.selector, rdata.mtype, bytes(rdata.cert)))
        elif rrset.rdtype == dns.rdatatype.RRSIG:
            signed = signed or any(sig.type_covered == dns.rdatatype.TLSA for sig in rrset)
    return frozenset(records), ttl, signed


def served_tlsa(address: str, port: int, owner: Name) -> Served:
    response = query(address, port, owner, "TLSA")
    records, _, signed = tlsa_in_answer(response, owner)
    return Served(records, signed, dns.rcode.to_text(response.rcode()))


def zone_is_signed(address: str, port: int, origin: Name) -> bool:
    """A zone whose SOA comes with an RRSIG is signed; then every TLSA answer must be too."""
    response = query(address, port, origin, "SOA")
    return any(rrset.rdtype == dns.rdatatype.RRSIG for rrset in response.answer)


def served_serial(address: str, port: int, origin: Name) -> int | None:
    response = query(address, port, origin, "SOA")
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def _managed(
    records: frozenset[TlsaRecord], params: frozenset[TlsaParams]
) -> frozenset[TlsaRecord]:
    return frozenset(r for r in records if r.params in params)


def _describe(records: frozenset[TlsaRecord]) -> str:
    if not records:
        return "nothing"
    return ", ".join(
        sorted(f"{r.usage} {r.selector} {r.mtype} {r.data.hex()[:12]}…" for r in records)
    )


def wait_until_served(
    nameservers: Sequence[Nameserver],
    origin: Name,
    expected: Mapping[Name, frozenset[TlsaRecord]],
    managed: Mapping[Name, frozenset[TlsaParams]],
    *,
    timeout: float,
    interval: float = 0.5,
) -> None:
    """Poll every server until each owner's managed TLSA records equal ``expected``.

    Records at the same owner with parameters we do not manage are ignored, so a hand-made
    record beside ours does not fail the check. In a signed zone the TLSA answer must carry an
    RRSIG. Raises :class:`VerificationError` naming the first server and owner still wrong.
    """
    targets = [(str(ns), address, ns.port) for ns in nameservers for address in _addresses(ns)]
    pending = {
        (label, address, port, owner) for label, address, port in targets for owner in expected
    }
    signed: dict[tuple[str, int], bool] = {}
    deadline = time.monotonic() + timeout
    problem = ""
    while True:
        for label, address, port, owner in sorted(pending, key=str):
            try:
                if (address, port) not in signed:
                    signed[(address, port)] = zone_is_signed(address, port, origin)
                served = served_tlsa(address, port, owner)
            except (dns.exception.DNSException, OSError) as exc:
                problem = (
                    f"nameserver {label} did not answer for {owner}: {exc or type(exc).__name__}"
                )
                continue
            want = expected[owner]
            got = _managed(served.records, managed[owner])
            if got != want:
                problem = (
                    f"nameserver {label} serves {_describe(got)} at {owner} TLSA "
                    f"({served.rcode}), expected {_describe(want)}"
                )
            elif signed[(address, port)] and want and not served.signed:
                problem = f"nameserver {label} serves {owner} TLSA without an RRSIG"
            else:
                pending.discard((label, address, port, owner))
                log.info("nameserver %s serves the expected TLSA at %s", label, owner)
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise VerificationError(f"{problem} (after waiting {timeout:g} s)")
        time.sleep(interval)
