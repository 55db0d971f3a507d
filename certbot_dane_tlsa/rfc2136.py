"""Publishing TLSA records by RFC 2136 dynamic update, safe against concurrent writers.

For a dynamic zone the server, not a file, holds the truth, so we read the TLSA RRsets from the
primary, decide the new RRsets, and send one update whose prerequisites (RFC 2136 section 2.4)
say "only if each RRset is still exactly what we read". Another writer that got in between
makes the server answer NXRRSET or YXRRSET instead of silently losing its change or ours; we
then read again and retry a bounded number of times. Everything travels over TCP (no
truncation, no spoofed UDP answers) and the update is TSIG-signed with a key that named's
``update-policy`` can restrict to TLSA records.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from typing import TextIO

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TLSA
import dns.tsig
import dns.update

from certbot_dane_tlsa.dnsname import Name, to_dnspython
from certbot_dane_tlsa.errors import DaneError
from certbot_dane_tlsa.lite_dataclasses import dataclass
from certbot_dane_tlsa.policy import DesiredState
from certbot_dane_tlsa.publish import Outcome
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.settings import Nameserver, ZoneSettings
from certbot_dane_tlsa.tsigkey import TsigKey, load_key
from certbot_dane_tlsa.zonefile.serial import serial_gt

log = logging.getLogger(__name__)

QUERY_TIMEOUT = 5.0
UPDATE_TIMEOUT = 10.0
SERIAL_WAIT = 5.0
_CONFLICT = (dns.rcode.NXRRSET, dns.rcode.YXRRSET)
_random = secrets.SystemRandom()


@dataclass(frozen=True)
class OwnerRead:
    """One owner's TLSA RRset as the primary served it; ``ttl`` is None when it is empty."""

    owner: Name
    records: frozenset[TlsaRecord]
    ttl: int | None


@dataclass(frozen=True)
class ZoneRead:
    serial: int
    default_ttl: int
    owners: dict[Name, OwnerRead]


@dataclass(frozen=True)
class OwnerChange:
    owner: Name
    before: frozenset[TlsaRecord]
    after: frozenset[TlsaRecord]
    ttl: int

    @property
    def removed(self) -> list[TlsaRecord]:
        return sorted(self.before - self.after)

    @property
    def added(self) -> list[TlsaRecord]:
        return sorted(self.after - self.before)


@dataclass(frozen=True)
class UpdatePlan:
    origin: Name
    serial: int
    changes: tuple[OwnerChange, ...]


# --- talking to the primary -----------------------------------------------------------------


def primary_server(zone: ZoneSettings) -> Nameserver:
    """``server``, else the first configured nameserver: where updates go and reads come from."""
    if zone.server is not None:
        return zone.server
    if not zone.nameservers:
        raise DaneError(f"zone {zone.name}: backend rfc2136 needs 'server' or 'nameservers'")
    return zone.nameservers[0]


def server_address(server: Nameserver) -> str:
    try:
        infos = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DaneError(f"cannot resolve nameserver {server.host}: {exc.strerror}") from None
    return str(infos[0][4][0])


def _query_tcp(server: Nameserver, qname: Name, rdtype: str) -> dns.message.Message:
    request = dns.message.make_query(to_dnspython(qname), rdtype)
    request.flags &= ~dns.flags.RD
    try:
        return dns.query.tcp(
            request, server_address(server), port=server.port, timeout=QUERY_TIMEOUT
        )
    except (dns.exception.DNSException, OSError) as exc:
        raise DaneError(
            f"nameserver {server} did not answer {qname} {rdtype} over TCP: "
            f"{exc or type(exc).__name__}"
        ) from None


def _authoritative_answer(
    server: Nameserver, zone: ZoneSettings, qname: Name, rdtype: str
) -> dns.message.Message:
    response = _query_tcp(server, qname, rdtype)
    rcode = response.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not (response.flags & dns.flags.AA):
        raise DaneError(
            f"nameserver {server} is not authoritative for zone {zone.name} "
            f"({dns.rcode.to_text(rcode)} for {qname} {rdtype}); set 'server' to its primary"
        )
    return response


def read_soa(server: Nameserver, zone: ZoneSettings) -> tuple[int, int]:
    """(serial, default TTL) of the zone as ``server`` serves it now."""
    response = _authoritative_answer(server, zone, zone.origin, "SOA")
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == to_dnspython(zone.origin):
            soa = rrset[0]
            assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
            # The SOA's own TTL is normally the file's $TTL; MINIMUM caps it the way RFC 2308
            # caps negative answers. The shorter one suits records that change at rollover.
            return int(soa.serial), min(int(rrset.ttl), int(soa.minimum))
    raise DaneError(f"nameserver {server} serves no SOA for zone {zone.name}")


def read_owner(server: Nameserver, zone: ZoneSettings, owner: Name) -> OwnerRead:
    response = _authoritative_answer(server, zone, owner, "TLSA")
    records: set[TlsaRecord] = set()
    ttl: int | None = None
    wire_owner = to_dnspython(owner)
    for rrset in response.answer:
        if rrset.name != wire_owner:
            continue
        if rrset.rdtype == dns.rdatatype.CNAME:
            # named would drop a TLSA added beside a CNAME without an error.
            raise DaneError(f"zone {zone.name}: {owner} is a CNAME; TLSA records cannot go there")
        if rrset.rdtype == dns.rdatatype.TLSA:
            ttl = int(rrset.ttl)
            for rdata in rrset:
                assert isinstance(rdata, dns.rdtypes.ANY.TLSA.TLSA)
                records.add(TlsaRecord(rdata.usage, rdata.selector, rdata.mtype, bytes(rdata.cert)))
    return OwnerRead(owner, frozenset(records), ttl if records else None)


def read_zone(server: Nameserver, zone: ZoneSettings, owners: Iterable[Name]) -> ZoneRead:
    serial, default_ttl = read_soa(server, zone)
    return ZoneRead(
        serial, default_ttl, {owner: read_owner(server, zone, owner) for owner in owners}
    )


# --- deciding -------------------------------------------------------------------------------


def plan_update(
    zone: ZoneSettings,
    current: ZoneRead,
    desired: Mapping[Name, frozenset[TlsaRecord]],
    managed: Mapping[Name, frozenset[TlsaParams]],
) -> UpdatePlan:
    """Keep what we do not manage, replace what we do; owners already right are left out."""
    changes = []
    for owner in sorted(desired):
        read = current.owners[owner]
        kept = {r for r in read.records if r.params not in managed[owner]}
        after = frozenset(kept | desired[owner])
        if after == read.records:
            continue
        if zone.ttl is not None:
            ttl = zone.ttl
        elif read.ttl is not None:
            ttl = read.ttl
        else:
            ttl = current.default_ttl
        changes.append(OwnerChange(owner, read.records, after, ttl))
    return UpdatePlan(zone.origin, current.serial, tuple(changes))


def _rdata(record: TlsaRecord) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, record.to_text())


def build_update(plan: UpdatePlan, key: TsigKey | None) -> dns.update.UpdateMessage:
    """One message for the whole zone: either every owner changes, or none does."""
    origin = to_dnspython(plan.origin)
    if key is None:
        message = dns.update.UpdateMessage(origin)
    else:
        message = dns.update.UpdateMessage(
            origin,
            keyring=key.keyring(),
            keyname=key.name,
            keyalgorithm=key.algorithm_name,
        )
    for change in plan.changes:
        owner = to_dnspython(change.owner)
        if change.before:
            # RFC 2136 2.4.2: "RRset exists (value dependent)" - exactly these records.
            message.present(owner, *(_rdata(r) for r in sorted(change.before)))
        else:
            # RFC 2136 2.4.3: "RRset does not exist".
            message.absent(owner, dns.rdatatype.TLSA)
        for record in change.removed:
            message.delete(owner, _rdata(record))
        for record in change.added:
            message.add(owner, change.ttl, _rdata(record))
    return message


# --- sending --------------------------------------------------------------------------------


def _key_text(key: TsigKey | None) -> str:
    return f"TSIG key {key.describe()}" if key is not None else "no TSIG key"


def send_update(
    server: Nameserver, zone: ZoneSettings, message: dns.update.UpdateMessage, key: TsigKey | None
) -> dns.rcode.Rcode:
    """Send over TCP; return the rcode, or raise when the answer is not an rcode we act on."""
    where = f"RFC 2136 update of zone {zone.name} at {server}"
    try:
        response = dns.query.tcp(
            message, server_address(server), port=server.port, timeout=UPDATE_TIMEOUT
        )
    except dns.tsig.PeerBadKey:
        raise DaneError(
            f"{where}: the server does not know {_key_text(key)} (BADKEY); the key name or "
            "algorithm differs from its named.conf"
        ) from None
    except dns.tsig.PeerBadSignature:
        raise DaneError(
            f"{where}: the server rejected the signature of {_key_text(key)} (BADSIG); "
            "the secret or algorithm differs from its named.conf"
        ) from None
    except dns.tsig.PeerBadTime:
        raise DaneError(
            f"{where}: the server rejected the time of {_key_text(key)} (BADTIME); "
            "the clocks of this host and the server differ"
        ) from None
    except dns.tsig.PeerError as exc:
        raise DaneError(f"{where}: the server rejected {_key_text(key)}: {exc}") from None
    except (dns.tsig.BadSignature, dns.message.UnknownTSIGKey):
        raise DaneError(
            f"{where}: the answer is not signed by {_key_text(key)}; the secret differs from "
            "the server's"
        ) from None
    except (dns.exception.DNSException, OSError) as exc:
        raise DaneError(f"{where}: no answer: {exc or type(exc).__name__}") from None
    return response.rcode()


def _refusal(
    rcode: dns.rcode.Rcode, server: Nameserver, zone: ZoneSettings, key: TsigKey | None
) -> str:
    where = f"RFC 2136 update of zone {zone.name} at {server}"
    name = dns.rcode.to_text(rcode)
    if rcode == dns.rcode.REFUSED:
        granted = f"grant {key.name.to_text(omit_final_dot=True)}" if key else "grant KEY"
        return (
            f"{where} was refused (REFUSED) with {_key_text(key)}: its update-policy must allow "
            f"it ('{granted} zonesub TLSA;'), and the zone must be dynamic and not frozen"
        )
    if rcode == dns.rcode.NOTAUTH:
        return (
            f"{where} was rejected (NOTAUTH) with {_key_text(key)}: the server is not the "
            "primary of the zone, or the key name, algorithm or secret is wrong"
        )
    if rcode == dns.rcode.NOTZONE:
        return f"{where} was rejected (NOTZONE): {zone.name} is not a zone on that server"
    if rcode == dns.rcode.SERVFAIL:
        return f"{where} failed on the server (SERVFAIL); its log says why"
    return f"{where} failed ({name})"


def _describe(records: Iterable[TlsaRecord]) -> str:
    return ", ".join(f"{r.usage} {r.selector} {r.mtype} {r.data.hex()[:12]}…" for r in records)


def _log_plan(zone: ZoneSettings, plan: UpdatePlan) -> None:
    for change in plan.changes:
        parts = []
        if change.added:
            parts.append(f"add {_describe(change.added)}")
        if change.removed:
            parts.append(f"delete {_describe(change.removed)}")
        log.info(
            "zone %s: updating %s TLSA: %s (TTL %d)",
            zone.name,
            change.owner,
            "; ".join(parts),
            change.ttl,
        )


def _wait_for_new_serial(server: Nameserver, zone: ZoneSettings, old: int) -> int:
    """The served serial once it has moved past ``old`` (a signed zone re-signs first)."""
    deadline = time.monotonic() + SERIAL_WAIT
    while True:
        serial, _ = read_soa(server, zone)
        if serial_gt(serial, old) or time.monotonic() >= deadline:
            if not serial_gt(serial, old):
                log.warning(
                    "zone %s: %s still serves serial %d after the update", zone.name, server, serial
                )
            return serial
        time.sleep(0.1)


def _backoff(attempt: int) -> float:
    return float(min(2.0, 0.1 * 2**attempt) * _random.uniform(0.5, 1.5))


def publish_rfc2136(
    zone: ZoneSettings,
    state: DesiredState,
    *,
    dry_run: bool = False,
    out: TextIO | None = None,
) -> Outcome:
    """Bring the zone's TLSA RRsets to ``state`` on the primary by one guarded update.

    ``old_serial``/``new_serial`` are the serials the primary served before and after (the
    new one is None when nothing was sent).
    """
    server = primary_server(zone)
    key = load_key(zone.tsig_key_file, zone.tsig_key_name) if zone.tsig_key_file else None
    if key is None and not dry_run:
        log.warning("zone %s: sending unsigned updates (no tsig_key_file)", zone.name)
    targets = state.targets_in(zone)
    desired = {t.owner: state.desired[t.owner] for t in targets}
    managed = {t.owner: state.managed[t.owner] for t in targets}
    old_serial: int | None = None
    attempts = zone.update_retries + 1
    rcode = dns.rcode.NOERROR
    for attempt in range(attempts):
        current = read_zone(server, zone, desired)
        if old_serial is None:
            old_serial = current.serial
        plan = plan_update(zone, current, desired, managed)
        if dry_run:
            _print_dry_run(out, zone, server, plan, key)
            return Outcome(zone, bool(plan.changes), False, old_serial, None, None)
        if not plan.changes:
            log.info("zone %s: TLSA records at %s are already right", zone.name, server)
            return Outcome(zone, False, False, old_serial, None, None)
        _log_plan(zone, plan)
        rcode = send_update(server, zone, build_update(plan, key), key)
        if rcode == dns.rcode.NOERROR:
            new_serial = _wait_for_new_serial(server, zone, current.serial)
            log.info(
                "zone %s: %s took the update (serial %d -> %d)",
                zone.name,
                server,
                old_serial,
                new_serial,
            )
            return Outcome(zone, True, False, old_serial, new_serial, None)
        if rcode not in _CONFLICT:
            raise DaneError(_refusal(rcode, server, zone, key))
        if attempt + 1 < attempts:
            delay = _backoff(attempt)
            log.info(
                "zone %s: another writer changed the TLSA records first (%s); "
                "reading again in %.2f s",
                zone.name,
                dns.rcode.to_text(rcode),
                delay,
            )
            time.sleep(delay)
    raise DaneError(
        f"RFC 2136 update of zone {zone.name} at {server}: the TLSA records kept changing under "
        f"us ({attempts} attempts, last {dns.rcode.to_text(rcode)}); another writer is busy, "
        "try again later or raise update_retries"
    )


def _print_dry_run(
    out: TextIO | None,
    zone: ZoneSettings,
    server: Nameserver,
    plan: UpdatePlan,
    key: TsigKey | None,
) -> None:
    if out is None:
        return
    if not plan.changes:
        out.write(
            f"# zone {zone.name}: TLSA records at {server} are already right; nothing to do\n"
        )
        return
    # Built without the key: the text must show what changes, never the credential.
    text = build_update(plan, None).to_text()
    out.write(f"# zone {zone.name}: would send this update to {server} over TCP, ")
    out.write(f"signed with {_key_text(key)}:\n" if key else "unsigned:\n")
    out.write(text.rstrip("\n") + "\n")
