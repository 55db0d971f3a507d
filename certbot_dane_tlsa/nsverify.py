"""Which servers answer for the zone, and whether every one of them has caught up.

Resolvers pick any server of the zone's NS set, so checking only the primary proves little: a
secondary that missed the NOTIFY keeps serving the old TLSA records until its next refresh, and
mail to the host fails DANE there. We therefore take the NS set as the primary publishes it,
find each target's addresses, and require every server's SOA serial to have reached the
primary's (RFC 1982 order) before comparing records with :func:`verify.wait_until_served`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Mapping, Sequence

import dns.exception
import dns.rdatatype

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.dnsname import Name, to_dnspython
from certbot_dane_tlsa.errors import VerificationError
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.settings import Nameserver, ZoneSettings
from certbot_dane_tlsa.verify import query, served_serial, wait_until_served
from certbot_dane_tlsa.zonefile.serial import serial_gt

log = logging.getLogger(__name__)


def _normal(server: Nameserver) -> Nameserver:
    """IP literals in one spelling, so ``::1`` and ``0::1`` count as the same server."""
    try:
        return Nameserver(ipaddress.ip_address(server.host).compressed, server.port)
    except ValueError:
        return server


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise VerificationError(f"cannot resolve nameserver {host}: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _first_address(server: Nameserver) -> str:
    return _addresses(server.host, server.port)[0]


def _answer_names(server: Nameserver, qname: Name, rdtype: str) -> list[str]:
    """The rdata texts of ``qname rdtype`` as ``server`` answers it (empty when none)."""
    try:
        response = query(_first_address(server), server.port, qname, rdtype)
    except (dns.exception.DNSException, OSError) as exc:
        raise VerificationError(
            f"nameserver {server} did not answer {qname} {rdtype}: {exc or type(exc).__name__}"
        ) from None
    wanted = dns.rdatatype.from_text(rdtype)
    wire_name = to_dnspython(qname)
    return [
        str(rdata.to_text())
        for rrset in response.answer
        if rrset.name == wire_name and rrset.rdtype == wanted
        for rdata in rrset
    ]


def ns_targets(zone: ZoneSettings) -> list[Name]:
    """The zone's NS set as its first nameserver serves it."""
    if not zone.nameservers:
        raise VerificationError(f"zone {zone.name}: no nameservers to ask for the NS set")
    texts = _answer_names(zone.nameservers[0], zone.origin, "NS")
    if not texts:
        raise VerificationError(
            f"nameserver {zone.nameservers[0]} serves no NS records for zone {zone.name}"
        )
    return list(dict.fromkeys(dnsname.from_text(t, zone.origin) for t in texts))


def _target_addresses(zone: ZoneSettings, target: Name) -> list[str]:
    if target.is_subdomain(zone.origin):
        # In-zone (or glue below a delegation): the primary knows; a resolver may not yet.
        found = [
            text
            for rdtype in ("A", "AAAA")
            for text in _answer_names(zone.nameservers[0], target, rdtype)
        ]
        if found:
            return found
    try:
        return _addresses(target.to_text(omit_final_dot=True), zone.ns_port)
    except VerificationError:
        raise VerificationError(
            f"zone {zone.name}: cannot find an address for NS target {target}; "
            "list the servers in 'nameservers' and set verify_ns = false"
        ) from None


def authoritative_servers(zone: ZoneSettings) -> list[Nameserver]:
    """``nameservers``, plus every address of every NS target when ``verify_ns`` is set."""
    servers = [_normal(ns) for ns in zone.nameservers]
    if zone.verify_ns:
        for target in ns_targets(zone):
            addresses = _target_addresses(zone, target)
            log.debug("zone %s: NS %s has %s", zone.name, target, ", ".join(addresses))
            servers.extend(_normal(Nameserver(a, zone.ns_port)) for a in addresses)
    return list(dict.fromkeys(servers))


def _serial_of(server: Nameserver, zone: ZoneSettings) -> int | None:
    return served_serial(_first_address(server), server.port, zone.origin)


def wait_for_serials(
    servers: Sequence[Nameserver],
    zone: ZoneSettings,
    primary: Nameserver,
    *,
    timeout: float,
    minimum: int | None = None,
    interval: float = 0.5,
) -> int:
    """Poll until every server serves a serial not older than the primary's; return that serial.

    The primary's serial is read once, at the start (after publishing). ``minimum`` is the
    serial the publisher saw after its change: a primary still below it has not loaded it yet,
    so we wait for the primary too.
    """
    deadline = time.monotonic() + timeout
    target: int | None = None
    pending = list(dict.fromkeys(servers))
    while True:
        problems: list[str] = []
        if target is None:
            target = _primary_serial(primary, zone, minimum, problems)
        if target is not None:
            pending = [s for s in pending if not _caught_up(s, zone, target, problems)]
            if not pending:
                return target
        if time.monotonic() >= deadline:
            raise VerificationError(f"{'; '.join(problems)} (after waiting {timeout:g} s)")
        time.sleep(interval)


def _primary_serial(
    primary: Nameserver, zone: ZoneSettings, minimum: int | None, problems: list[str]
) -> int | None:
    try:
        serial = _serial_of(primary, zone)
    except (dns.exception.DNSException, OSError) as exc:
        problems.append(f"primary {primary} did not answer SOA for {zone.name}: {exc}")
        return None
    if serial is None:
        problems.append(f"primary {primary} serves no SOA for zone {zone.name}")
        return None
    if minimum is not None and serial_gt(minimum, serial):
        problems.append(f"primary {primary} serves serial {serial}, the update made {minimum}")
        return None
    return serial


def _caught_up(server: Nameserver, zone: ZoneSettings, target: int, problems: list[str]) -> bool:
    try:
        serial = _serial_of(server, zone)
    except (dns.exception.DNSException, OSError) as exc:
        problems.append(
            f"nameserver {server} did not answer SOA for {zone.name}: {exc or type(exc).__name__}"
        )
        return False
    if serial is None:
        problems.append(f"nameserver {server} serves no SOA for zone {zone.name}")
        return False
    if serial != target and not serial_gt(serial, target):
        problems.append(f"nameserver {server} serves serial {serial}, primary has {target}")
        return False
    log.info("nameserver %s serves serial %d of %s", server, serial, zone.name)
    return True


def verify_authoritative(
    zone: ZoneSettings,
    expected: Mapping[Name, frozenset[TlsaRecord]],
    managed: Mapping[Name, frozenset[TlsaParams]],
    *,
    timeout: float,
    primary: Nameserver | None = None,
    minimum_serial: int | None = None,
) -> list[Nameserver]:
    """Serials first (names a lagging secondary plainly), then the TLSA RRsets everywhere.

    Returns the servers that were checked. Both waits share one ``timeout``.
    """
    servers = authoritative_servers(zone)
    primary = primary or zone.server or zone.nameservers[0]
    deadline = time.monotonic() + timeout
    wait_for_serials(servers, zone, primary, timeout=timeout, minimum=minimum_serial)
    remaining = max(1.0, deadline - time.monotonic())
    wait_until_served(servers, zone.origin, expected, managed, timeout=remaining)
    return servers
