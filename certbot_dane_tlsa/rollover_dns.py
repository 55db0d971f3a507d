"""What DNS says about a rollover's records: one question to one server at a time.

Kept apart from :mod:`certbot_dane_tlsa.rollover` because it needs dnspython, which the
deploy hook must not pay for on every renewal: only staging, committing and pruning ask DNS.
Every failure to get an answer comes out as :class:`DaneError`, so callers need not know
dnspython's exception types.
"""

from __future__ import annotations

import socket

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype

from certbot_dane_tlsa.dnsname import Name, to_dnspython
from certbot_dane_tlsa.errors import DaneError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.records import TlsaRecord
from certbot_dane_tlsa.settings import Nameserver, ZoneSettings
from certbot_dane_tlsa.verify import tlsa_in_answer

QUERY_TIMEOUT = 3.0


@dataclass(frozen=True)
class Answer:
    records: frozenset[TlsaRecord]
    ttl: int
    signed: bool
    authenticated: bool


def _address(server: Nameserver) -> str:
    try:
        return str(socket.getaddrinfo(server.host, server.port, type=socket.SOCK_DGRAM)[0][4][0])
    except (socket.gaierror, IndexError) as exc:
        raise DaneError(f"cannot resolve {server.host}: {exc}") from None


def _ask(server: Nameserver, qname: Name, rdtype: str, *, recursive: bool) -> dns.message.Message:
    request = dns.message.make_query(to_dnspython(qname), rdtype, want_dnssec=True)
    if recursive:
        request.flags |= dns.flags.AD
    else:
        request.flags &= ~dns.flags.RD
    try:
        response, _ = dns.query.udp_with_fallback(
            request, _address(server), timeout=QUERY_TIMEOUT, port=server.port
        )
    except (dns.exception.DNSException, OSError) as exc:
        raise DaneError(str(exc) or type(exc).__name__) from None
    return response


def ask_tlsa(server: Nameserver, owner: Name, *, recursive: bool = False) -> Answer:
    response = _ask(server, owner, "TLSA", recursive=recursive)
    records, ttl, signed = tlsa_in_answer(response, owner)
    return Answer(records, ttl, signed, bool(response.flags & dns.flags.AD))


def negative_ttl(zone: ZoneSettings) -> int:
    """How long resolvers cache "no such record" here: min(SOA TTL, SOA minimum) (RFC 2308)."""
    server = zone.server or zone.nameservers[0]
    response = _ask(server, zone.origin, "SOA", recursive=False)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(min(rrset.ttl, rrset[0].minimum))
    raise DaneError(f"nameserver {server} serves no SOA for zone {zone.name}")
