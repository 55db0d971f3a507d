"""RFC 2136 publishing and authoritative-server verification against real named instances.

Layout used by most tests: a dynamic, inline-signed primary that the tool updates (configured as
``nameservers``), and a secondary that follows by NOTIFY + IXFR and is the zone's only NS target,
so it is found through ``verify_ns`` with ``ns_port`` set to its port (a hidden primary). Both
are on 127.0.0.1: named listens only on addresses configured on an interface, and lo has no
127.0.0.2 on these machines.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import pytest

from certbot_dane_tlsa import dnsname, rfc2136
from certbot_dane_tlsa.dnsname import Name, to_dnspython
from certbot_dane_tlsa.errors import DaneError, VerificationError
from certbot_dane_tlsa.nsverify import authoritative_servers, verify_authoritative, wait_for_serials
from certbot_dane_tlsa.policy import DesiredState, Target
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord, tlsa_owner
from certbot_dane_tlsa.rfc2136 import publish_rfc2136
from certbot_dane_tlsa.settings import Nameserver, ZoneSettings
from certbot_dane_tlsa.tsigkey import load_key
from tests.services.named import NamedServer, ZoneSpec

pytestmark = pytest.mark.services

ZONE = "example.test"
ORIGIN = dnsname.from_text(ZONE)
MX = dnsname.from_text(f"mx.{ZONE}")
OWNER = tlsa_owner(MX, 25)
REC_A = TlsaRecord(3, 1, 1, bytes.fromhex("ab" * 32))
REC_B = TlsaRecord(3, 1, 1, bytes.fromhex("cd" * 32))
HAND_MADE = TlsaRecord(2, 1, 1, bytes.fromhex("ee" * 32))
OTHER_WRITER = TlsaRecord(2, 1, 1, bytes.fromhex("77" * 32))
MANAGED = frozenset({TlsaParams(3, 1, 1)})

ZONE_TEXT = f"""\
$TTL 300
@       IN SOA ns2.{ZONE}. hostmaster.{ZONE}. ( 1 3600 600 86400 300 )
        IN NS  ns2
ns2     IN A   127.0.0.1
mx      IN A   127.0.0.1
_25._tcp.mx 600 IN TLSA {HAND_MADE.to_text()}
"""

Factory = Callable[..., NamedServer]


def _keygen(algorithm: str, name: str, directory: Path) -> tuple[Path, str]:
    """A real tsig-keygen key file (mode 0600) and its secret, for named.conf."""
    text = subprocess.run(
        ["tsig-keygen", "-a", algorithm, name], capture_output=True, text=True, check=True
    ).stdout
    path = directory / f"{name}.key"
    path.write_text(text)
    path.chmod(0o600)
    return path, text.split('secret "', 1)[1].split('"', 1)[0]


@pytest.fixture
def named(tmp_path: Path) -> Iterator[Factory]:
    """Like fixtures_dns.named_factory; kept local so this file runs whatever state the shared
    conftest plugins are in."""
    started: list[NamedServer] = []

    def make(zones: list[ZoneSpec], **kwargs: Any) -> NamedServer:
        server = NamedServer(tmp_path / f"named-{len(started) + 1}", zones, **kwargs)
        started.append(server)
        server.start(20.0)
        return server

    try:
        yield make
    finally:
        for server in reversed(started):
            server.stop()


def _zone(primary: NamedServer, key: Path | None, **changes: Any) -> ZoneSettings:
    values: dict[str, Any] = {
        "origin": ORIGIN,
        "zone_file": None,
        "serial": "auto",
        "backend": "rfc2136",
        "rndc": ("rndc",),
        "view": None,
        "checkzone": ("named-checkzone",),
        "nameservers": (Nameserver(primary.address, primary.port),),
        "verify": True,
        "dynamic": "auto",
        "ttl": None,
        "verify_ns": False,
        "ns_port": 53,
        "server": None,
        "tsig_key_file": key,
        "tsig_key_name": None,
        "update_retries": 5,
    }
    values.update(changes)
    return ZoneSettings(**values)


def _state(zone: ZoneSettings, records: dict[Name, set[TlsaRecord]]) -> DesiredState:
    targets = tuple(
        Target(Name(owner.labels[2:]), int(owner.labels[0][1:]), owner, zone) for owner in records
    )
    return DesiredState(
        targets=targets,
        desired={owner: frozenset(recs) for owner, recs in records.items()},
        managed={owner: MANAGED for owner in records},
        warnings=(),
    )


def _served(server: NamedServer, owner: Name) -> tuple[set[TlsaRecord], bool, set[int]]:
    """(records, has a TLSA RRSIG, TTLs) as ``server`` answers."""
    response = server.query(owner.to_text(), "TLSA")
    records: set[TlsaRecord] = set()
    ttls: set[int] = set()
    signed = False
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.TLSA:
            ttls.add(rrset.ttl)
            records |= {TlsaRecord(r.usage, r.selector, r.mtype, bytes(r.cert)) for r in rrset}
        if rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == dns.rdatatype.TLSA:
            signed = True
    return records, signed, ttls


def _wait_served(server: NamedServer, owner: Name, want: set[TlsaRecord]) -> bool:
    return server.wait_for(lambda: _served(server, owner)[0] == want, 10)


def _primary_with_secondary(
    named: Factory, keys: dict[str, tuple[str, str]], policy: str, *, notify: bool = True
) -> tuple[NamedServer, NamedServer]:
    spec = ZoneSpec(ZONE, ZONE_TEXT, dynamic=True, update_policy=policy, secondaries_notify=notify)
    primary = named([spec], tsig_keys=keys)
    secondary = named([], primary=primary)
    return primary, secondary


# --- the normal path ------------------------------------------------------------------------


def test_publish_reaches_primary_and_secondary_keeps_hand_made_and_is_idempotent(
    named: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, secret = _keygen("hmac-sha256", "tlsa-key", tmp_path)
    primary, secondary = _primary_with_secondary(
        named, {"tlsa-key": ("hmac-sha256", secret)}, "grant tlsa-key zonesub TLSA;"
    )
    zone = _zone(primary, key, verify_ns=True, ns_port=secondary.port)
    assert authoritative_servers(zone) == [
        Nameserver("127.0.0.1", primary.port),
        Nameserver("127.0.0.1", secondary.port),
    ]
    before = primary.soa_serial(ZONE)

    outcome = publish_rfc2136(zone, _state(zone, {OWNER: {REC_A}}))
    assert outcome.changed and outcome.edit is None
    assert outcome.old_serial == before
    assert outcome.new_serial is not None and outcome.new_serial > before
    checked = verify_authoritative(zone, {OWNER: frozenset({REC_A})}, {OWNER: MANAGED}, timeout=20)
    assert len(checked) == 2
    for server in (primary, secondary):
        records, signed, ttls = _served(server, OWNER)
        assert records == {REC_A, HAND_MADE}, server.address
        assert signed, f"{server.address} serves the TLSA RRset unsigned"
        assert ttls == {600}  # the existing RRset's TTL, since no ttl is configured

    # Nothing to do: nothing sent, so the served serial stays put.
    serial = primary.soa_serial(ZONE)
    updates = _updates_logged(primary)
    assert updates > 0
    again = publish_rfc2136(zone, _state(zone, {OWNER: {REC_A}}))
    assert not again.changed and again.new_serial is None and again.old_serial == serial
    assert primary.soa_serial(ZONE) == serial
    assert _updates_logged(primary) == updates

    # Rollover: the managed record is replaced, the hand-made one still survives.
    rolled = publish_rfc2136(zone, _state(zone, {OWNER: {REC_B}}))
    assert rolled.changed
    verify_authoritative(zone, {OWNER: frozenset({REC_B})}, {OWNER: MANAGED}, timeout=20)
    assert _served(secondary, OWNER)[0] == {REC_B, HAND_MADE}
    assert secret not in caplog.text


def _updates_logged(server: NamedServer) -> int:
    """How many record changes named logged for dynamic updates."""
    return server.log_text().count("updating zone")


def test_sha512_key_and_dry_run(
    named: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, secret = _keygen("hmac-sha512", "tlsa512", tmp_path)
    primary = named(
        [ZoneSpec(ZONE, ZONE_TEXT, dynamic=True, update_policy="grant tlsa512 zonesub TLSA;")],
        tsig_keys={"tlsa512": ("hmac-sha512", secret)},
    )
    zone = _zone(primary, key, ttl=120)
    state = _state(zone, {OWNER: {REC_A}})
    serial = primary.soa_serial(ZONE)

    out = io.StringIO()
    planned = publish_rfc2136(zone, state, dry_run=True, out=out)
    text = out.getvalue()
    assert planned.changed and planned.new_serial is None
    assert "signed with TSIG key tlsa512 (hmac-sha512)" in text
    assert "opcode UPDATE" in text
    assert f"{OWNER} 0 IN TLSA {HAND_MADE.to_text()}" in text  # prerequisite: RRset as read
    assert f"{OWNER} 120 IN TLSA {REC_A.to_text()}" in text
    assert secret not in text and secret not in caplog.text
    assert primary.soa_serial(ZONE) == serial
    assert _served(primary, OWNER)[0] == {HAND_MADE}

    done = publish_rfc2136(zone, state)
    assert done.changed
    assert _wait_served(primary, OWNER, {REC_A, HAND_MADE})
    # A configured ttl applies to the RRset (named gives the whole RRset one TTL).
    assert _served(primary, OWNER)[2] == {120}
    assert secret not in caplog.text


# --- refusals -------------------------------------------------------------------------------


def test_refused_and_bad_keys_give_clear_errors_without_secrets(
    named: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good, good_secret = _keygen("hmac-sha256", "tlsa-key", tmp_path)
    other, other_secret = _keygen("hmac-sha256", "other-key", tmp_path)
    primary = named(
        [ZoneSpec(ZONE, ZONE_TEXT, dynamic=True, update_policy="grant tlsa-key zonesub TLSA;")],
        tsig_keys={
            "tlsa-key": ("hmac-sha256", good_secret),
            "other-key": ("hmac-sha256", other_secret),
        },
    )
    wrong_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    files = {
        "wrong-secret": f'key "tlsa-key" {{ algorithm hmac-sha256; secret "{wrong_secret}"; }};',
        "wrong-alg": f'key "tlsa-key" {{ algorithm hmac-sha512; secret "{good_secret}"; }};',
        "unknown": f'key "nobody" {{ algorithm hmac-sha256; secret "{good_secret}"; }};',
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.key"
        paths[name].write_text(text)
        paths[name].chmod(0o600)
    where = f"zone {ZONE} at 127.0.0.1:{primary.port}"
    cases = [
        (other, r"REFUSED.*other-key.*update-policy"),
        (paths["wrong-secret"], r"BADSIG.*secret or algorithm"),
        (paths["wrong-alg"], r"(BADKEY|BADSIG).*algorithm"),
        (paths["unknown"], r"does not know TSIG key nobody.*BADKEY"),
    ]
    for key, pattern in cases:
        zone = _zone(primary, key)
        with pytest.raises(DaneError, match=pattern) as info:
            publish_rfc2136(zone, _state(zone, {OWNER: {REC_A}}))
        message = str(info.value)
        assert where in message, message
        assert "\n" not in message
        for secret in (good_secret, other_secret, wrong_secret):
            assert secret not in message
    assert _served(primary, OWNER)[0] == {HAND_MADE}
    for secret in (good_secret, other_secret, wrong_secret):
        assert secret not in caplog.text
    # The good key does work on this very server, so the refusals above were about the keys.
    zone = _zone(primary, good)
    assert publish_rfc2136(zone, _state(zone, {OWNER: {REC_A}})).changed


# --- concurrent writers ---------------------------------------------------------------------


def test_lost_update_is_detected_and_retried(
    named: Factory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fault injection, named as such: a second writer must change the RRset exactly between
    # our read and our update, a window of microseconds that no schedule hits reliably. So
    # read_zone is wrapped: the real read runs, then a real, separate TSIG update is sent to
    # the real named. Everything else (the prerequisite, NXRRSET/YXRRSET, the retry) is real.
    key, secret = _keygen("hmac-sha256", "tlsa-key", tmp_path)
    primary = named(
        [ZoneSpec(ZONE, ZONE_TEXT, dynamic=True, update_policy="grant tlsa-key zonesub TLSA;")],
        tsig_keys={"tlsa-key": ("hmac-sha256", secret)},
    )
    zone = _zone(primary, key)
    server = Nameserver(primary.address, primary.port)
    tsig = load_key(key)
    owner2 = tlsa_owner(dnsname.from_text(f"mx2.{ZONE}"), 25)

    # Step by step: a change between our read and our update makes the prerequisite fail.
    for owner, expected in ((OWNER, dns.rcode.NXRRSET), (owner2, dns.rcode.YXRRSET)):
        current = rfc2136.read_zone(server, zone, [owner])
        plan = rfc2136.plan_update(zone, current, {owner: frozenset({REC_A})}, {owner: MANAGED})
        assert len(plan.changes) == 1
        _other_writer_adds_at(primary, secret, owner, TlsaRecord(2, 1, 1, secrets.token_bytes(32)))
        message = rfc2136.build_update(plan, tsig)
        assert rfc2136.send_update(server, zone, message, tsig) == expected
    assert REC_A not in _served(primary, OWNER)[0]

    # The whole publisher: it re-reads and retries, and both writers' records survive.
    target = tlsa_owner(dnsname.from_text(f"mx3.{ZONE}"), 25)
    real_read = rfc2136.read_zone
    reads: list[int] = []

    def read_then_someone_writes(*args: Any, **kwargs: Any) -> rfc2136.ZoneRead:
        result = real_read(*args, **kwargs)
        reads.append(result.serial)
        if len(reads) == 1:
            _other_writer_adds_at(primary, secret, target, OTHER_WRITER)
        return result

    monkeypatch.setattr(rfc2136, "read_zone", read_then_someone_writes)
    caplog.set_level(logging.INFO)
    outcome = publish_rfc2136(zone, _state(zone, {target: {REC_A}}))
    assert outcome.changed
    assert len(reads) >= 2
    assert "another writer changed the TLSA records first (YXRRSET)" in caplog.text
    assert _wait_served(primary, target, {REC_A, OTHER_WRITER})

    # With no retries left the user is told plainly.
    reads.clear()
    target4 = tlsa_owner(dnsname.from_text(f"mx4.{ZONE}"), 25)

    def always_someone_writes(*args: Any, **kwargs: Any) -> rfc2136.ZoneRead:
        result = real_read(*args, **kwargs)
        _other_writer_adds_at(
            primary, secret, target4, TlsaRecord(2, 1, 1, secrets.token_bytes(32))
        )
        return result

    monkeypatch.setattr(rfc2136, "read_zone", always_someone_writes)
    no_retry = _zone(primary, key, update_retries=0)
    with pytest.raises(DaneError, match=r"kept changing under us \(1 attempts, last YXRRSET\)"):
        publish_rfc2136(no_retry, _state(no_retry, {target4: {REC_A}}))
    assert REC_A not in _served(primary, target4)[0]


def _other_writer_adds_at(
    primary: NamedServer, secret: str, owner: Name, record: TlsaRecord
) -> None:
    keyring = dns.tsigkeyring.from_text({"tlsa-key": ("hmac-sha256", secret)})
    update = dns.update.UpdateMessage(ZONE, keyring=keyring, keyname="tlsa-key")
    update.add(to_dnspython(owner), 600, "TLSA", record.to_text())
    response = dns.query.tcp(update, primary.address, port=primary.port, timeout=5)
    assert response.rcode() == dns.rcode.NOERROR


def test_twenty_concurrent_publishers_all_succeed(named: Factory, tmp_path: Path) -> None:
    key, secret = _keygen("hmac-sha256", "tlsa-key", tmp_path)
    primary = named(
        [ZoneSpec(ZONE, ZONE_TEXT, dynamic=True, update_policy="grant tlsa-key zonesub TLSA;")],
        tsig_keys={"tlsa-key": ("hmac-sha256", secret)},
    )
    zone = _zone(primary, key)
    owners = [tlsa_owner(dnsname.from_text(f"h{i}.{ZONE}"), 25) for i in range(20)]
    records = {owner: TlsaRecord(3, 1, 1, secrets.token_bytes(32)) for owner in owners}

    def publish(owner: Name) -> bool:
        return publish_rfc2136(zone, _state(zone, {owner: {records[owner]}})).changed

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(publish, owners))
    assert results == [True] * 20
    for owner in owners:
        assert _wait_served(primary, owner, {records[owner]}), owner


# --- verification ---------------------------------------------------------------------------


def test_verification_names_a_lagging_then_a_dead_secondary(named: Factory, tmp_path: Path) -> None:
    key, secret = _keygen("hmac-sha256", "tlsa-key", tmp_path)
    # No NOTIFY to the secondary: it only refreshes after the SOA refresh time (minutes).
    primary, secondary = _primary_with_secondary(
        named, {"tlsa-key": ("hmac-sha256", secret)}, "grant tlsa-key zonesub TLSA;", notify=False
    )
    zone = _zone(primary, key, verify_ns=True, ns_port=secondary.port)
    old = secondary.soa_serial(ZONE)
    outcome = publish_rfc2136(zone, _state(zone, {OWNER: {REC_A}}))
    assert outcome.new_serial is not None
    new = primary.soa_serial(ZONE)
    label = f"127.0.0.1:{secondary.port}"

    with pytest.raises(VerificationError) as info:
        verify_authoritative(zone, {OWNER: frozenset({REC_A})}, {OWNER: MANAGED}, timeout=2)
    assert f"nameserver {label} serves serial {old}, primary has {new}" in str(info.value)
    assert f"127.0.0.1:{primary.port}" not in str(info.value)  # the primary is fine

    # The primary alone passes, so the failure above really is the secondary's.
    primary_only = _zone(primary, key, verify_ns=False)
    verify_authoritative(primary_only, {OWNER: frozenset({REC_A})}, {OWNER: MANAGED}, timeout=10)

    secondary.stop()
    servers = authoritative_servers(zone)  # found through the primary, dead or not
    with pytest.raises(VerificationError, match=rf"nameserver {label} did not answer SOA"):
        wait_for_serials(servers, zone, servers[0], timeout=1)


def test_out_of_zone_ns_targets_are_resolved_by_the_system(named: Factory) -> None:
    text = ZONE_TEXT.replace("IN NS  ns2", "IN NS  ns3\n        IN NS  localhost.").replace(
        "ns2     IN A   127.0.0.1", "ns3     IN A   127.0.0.3"
    )
    primary = named([ZoneSpec(ZONE, text, signed=False)])
    zone = _zone(primary, None, verify_ns=True, ns_port=primary.port)
    servers = authoritative_servers(zone)
    # ns3 is only in the zone (the system resolver cannot know it); localhost is only local.
    assert Nameserver("127.0.0.3", primary.port) in servers
    assert servers[0] == Nameserver("127.0.0.1", primary.port)
    assert len(servers) == len(set(servers))
    assert set(servers) <= {
        Nameserver("127.0.0.1", primary.port),
        Nameserver("127.0.0.3", primary.port),
        Nameserver("::1", primary.port),
    }
