"""A key's whole life with a DANE sender watching: issue, stage, commit, prune (and replace).

Everything is real: certbot against Pebble with the dane-tlsa installer, an inline-signed zone
in named with short TTLs, Postfix on loopback presenting the lineage's live files, and a
validating, caching unbound in front of Postfix's own DANE verifier, posttls-finger. Before
every step the test fills unbound's cache with the TLSA RRset as it is at that moment; after
the step posttls-finger, which sees only that cache, must still verify the server. The replace
mode walk shows the failure window the rollover avoids, so the difference is proven real.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.flags
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certbot_dane_tlsa.rollover import KeySwap
from tests.helpers.cli import run_cli
from tests.services.fixtures_dns import NamedFactory, UnboundFactory
from tests.services.fixtures_mail import PostfixFactory
from tests.services.named import NamedServer, ZoneSpec
from tests.services.pebble import Certbot
from tests.services.postfix import PostfixInstance, posttls_finger
from tests.services.unbound import UnboundResolver

pytestmark = [pytest.mark.services, pytest.mark.slow]

ZONE = "example.test"
HOST = "mx.example.test"
VERIFIED = "Verified TLS connection established"
NOT_READY = 75


def zone_text(ttl: int) -> str:
    return f"""\
$TTL {ttl}
@       IN SOA ns1.example.test. hostmaster.example.test. (
                1       ; serial
                3600    ; refresh
                600     ; retry
                86400   ; expire
                2 )     ; negative TTL
        IN NS  ns1
ns1     IN A   127.0.0.1
mx      IN A   127.0.0.1
"""


class Lab:
    """The parts of one walk, and the few things a sender and an operator would do."""

    def __init__(
        self,
        named: NamedServer,
        certbot: Certbot,
        postfix: PostfixInstance,
        resolver: UnboundResolver,
        ttl: int,
    ) -> None:
        self.named, self.certbot, self.postfix, self.resolver = named, certbot, postfix, resolver
        self.ttl = ttl
        self.owner = f"_{postfix.port}._tcp.{HOST}."
        self.live = certbot.live_dir(HOST)

    def installer_args(self, *extra: str) -> list[str]:
        return [
            "-i", "dane-tlsa",
            "--dane-tlsa-zone", ZONE,
            "--dane-tlsa-zone-file", str(self.named.zone_file(ZONE)),
            "--dane-tlsa-rndc", shlex.join(self.named.rndc_argv),
            "--dane-tlsa-nameservers", f"127.0.0.1:{self.named.port}",
            "--dane-tlsa-verify-timeout", "20",
            "--dane-tlsa-ports", str(self.postfix.port),
            "--dane-tlsa-ttl", str(self.ttl),
            "--dane-tlsa-postfix-reload", "true",
            "--dane-tlsa-postfix-command", shlex.join(self.postfix.postfix_argv()),
            "--dane-tlsa-connect", "127.0.0.1",
            "--dane-tlsa-tls-check", "starttls-smtp",
            "--dane-tlsa-resolver", f"{self.resolver.address}:{self.resolver.port}",
            *extra,
        ]  # fmt: skip

    def served(self) -> set[str]:
        response = self.named.query(self.owner, "TLSA")
        return {
            r.cert.hex()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.TLSA
            for r in rrset
        }

    def fill_cache(self) -> set[str]:
        """What a sender asking now would cache (validated: AD bit)."""
        response = self.resolver.query(self.owner, "TLSA")
        assert response.flags & dns.flags.AD, f"unbound did not validate: {response}"
        return {
            r.cert.hex()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.TLSA
            for r in rrset
        }

    def finger(self) -> str:
        result = posttls_finger(f"[{HOST}]:{self.postfix.port}", resolver=self.resolver.address)
        return result.stdout + result.stderr

    def assert_sender_verifies(self, step: str) -> None:
        output = self.finger()
        assert VERIFIED in output, f"after {step}, posttls-finger did not verify:\n{output}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        dirs = [
            "--config-dir", str(self.certbot.config_dir),
            "--work-dir", str(self.certbot.work_dir),
            "--logs-dir", str(self.certbot.logs_dir),
        ]  # fmt: skip
        return run_cli(*args, "--cert-name", HOST, *dirs, env=self.certbot.env(), timeout=300)

    def live_key_hash(self) -> str:
        cert = x509.load_pem_x509_certificate((self.live / "cert.pem").read_bytes())
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).hexdigest()

    def lineage_snapshot(self) -> dict[str, bytes]:
        """Every file and link certbot keeps for the lineage, as bytes (links as targets)."""
        snapshot: dict[str, bytes] = {}
        for top in ("live", "archive", "renewal"):
            for path in sorted((self.certbot.config_dir / top).rglob("*")):
                key = str(path.relative_to(self.certbot.config_dir))
                if path.is_symlink():
                    snapshot[key] = b"-> " + str(path.readlink()).encode()
                elif path.is_file():
                    snapshot[key] = path.read_bytes()
        return snapshot


def make_lab(
    ttl: int,
    named_factory: NamedFactory,
    unbound_factory: UnboundFactory,
    certbot_env: Certbot,
    postfix_factory: PostfixFactory,
) -> Lab:
    named = named_factory([ZoneSpec(ZONE, zone_text(ttl))])
    live = certbot_env.live_dir(HOST)
    # Postfix must run before certbot issues (the installer reloads it and checks it), but the
    # lineage's files do not exist yet: start it on links to a throwaway certificate, then point
    # the links at where certbot will put the lineage's files.
    links = certbot_env.workdir / "postfix-tls"
    key_link, chain_link = links / "privkey.pem", links / "fullchain.pem"
    bootstrap = write_self_signed(links / "bootstrap")
    key_link.symlink_to(bootstrap[0])
    chain_link.symlink_to(bootstrap[1])
    postfix = postfix_factory(key=key_link, fullchain=chain_link)
    for link, target in ((key_link, live / "privkey.pem"), (chain_link, live / "fullchain.pem")):
        link.unlink()
        link.symlink_to(target)
    resolver = unbound_factory(named)
    return Lab(named, certbot_env, postfix, resolver, ttl)


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def seconds_to_wait(text: str) -> float:
    found = re.search(r"try again in (\d+) s", text)
    assert found, f"the refusal does not say how long to wait:\n{text}"
    return float(found.group(1))


def test_rollover_never_leaves_a_caching_sender_unable_to_verify(
    named_factory: NamedFactory,
    unbound_factory: UnboundFactory,
    certbot_env: Certbot,
    postfix_factory: PostfixFactory,
) -> None:
    lab = make_lab(5, named_factory, unbound_factory, certbot_env, postfix_factory)

    # 1. Issue with the installer: the record is published and the key will be reused.
    certbot_env.certonly(HOST, extra=lab.installer_args())
    first = lab.live_key_hash()
    assert lab.served() == {first}
    assert "reuse_key = True" in certbot_env.renewal_conf(HOST).read_text()
    assert lab.fill_cache() == {first}
    lab.assert_sender_verifies("issuance")

    # 2. Stage: the next key's record joins the current one; the server still presents the old key.
    lab.fill_cache()
    staged = lab.cli("rollover", "stage")
    assert staged.returncode == 0, staged.stderr
    published = lab.served()
    assert first in published and len(published) == 2
    (next_key,) = published - {first}
    state_dir = certbot_env.config_dir / "dane-tlsa" / HOST
    assert (state_dir / "next-key.pem").stat().st_mode & 0o777 == 0o600
    assert state_dir.stat().st_mode & 0o777 == 0o700
    lab.assert_sender_verifies("stage")

    # 3. Commit too early: refused, with the time to wait, and nothing changed.
    lab.fill_cache()
    zone_before = lab.named.zone_file(ZONE).read_bytes()
    lineage_before = lab.lineage_snapshot()
    early = lab.cli("rollover", "commit")
    assert early.returncode == NOT_READY, early.stdout + early.stderr
    wait = seconds_to_wait(early.stderr)
    assert 0 < wait <= 2 * lab.ttl + 1
    assert "nothing was changed" in early.stderr
    assert lab.named.zone_file(ZONE).read_bytes() == zone_before
    assert lab.lineage_snapshot() == lineage_before
    assert lab.live_key_hash() == first
    lab.assert_sender_verifies("a refused commit")

    # 4. Once it is time, a certbot that fails (its ACME server is down) changes nothing: the
    #    key file it was handed and the state are put back exactly.
    unreachable = shlex.join(["certbot", "--server", "https://127.0.0.1:9/dir"])
    for _ in range(3):
        time.sleep(wait + 0.5)
        lab.fill_cache()
        state_before = (state_dir / "state.json").read_bytes()
        failing = lab.cli("rollover", "commit", "--certbot", unreachable)
        if failing.returncode != NOT_READY:
            break
        wait = seconds_to_wait(failing.stderr)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "restored" in failing.stderr
    assert lab.lineage_snapshot() == lineage_before
    assert (state_dir / "state.json").read_bytes() == state_before
    assert (state_dir / "next-key.pem").exists()
    assert lab.served() == {first, next_key}
    lab.assert_sender_verifies("a failed commit")

    # 5. Commit: certbot issues for the staged key; both records stay published.
    cached = lab.fill_cache()
    done = lab.cli("rollover", "commit")
    assert done.returncode == 0, done.stdout + done.stderr
    assert next_key in cached  # the sender's cache already knew the key that is about to go live
    assert lab.live_key_hash() == next_key
    assert lab.served() == {first, next_key}
    assert not (state_dir / "next-key.pem").exists()
    assert "reuse_key = True" in certbot_env.renewal_conf(HOST).read_text()
    lab.assert_sender_verifies("commit")

    # 6. Prune right away: the old record must stay (2 x TTL after the new key went live).
    lab.fill_cache()
    too_soon = lab.cli("prune")
    assert too_soon.returncode == 0, too_soon.stderr
    assert "stay until" in too_soon.stdout
    assert lab.served() == {first, next_key}
    lab.assert_sender_verifies("an early prune")

    # 7. Prune after 2 x TTL: only the new key's record is left, and the sender still verifies.
    time.sleep(2 * lab.ttl + 0.5)
    lab.fill_cache()
    pruned = lab.cli("prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "removed the records" in pruned.stdout
    assert lab.served() == {next_key}
    lab.assert_sender_verifies("prune")

    # check reports the clean state, per owner, with reuse_key in place.
    report = run_cli("check", "--lineage", lab.live, env=certbot_env.env())
    assert report.returncode == 0, report.stdout + report.stderr
    assert "none staged" in report.stderr and "reuse_key = True" in report.stderr


def test_replace_mode_shows_the_failure_window_that_rollover_avoids(
    named_factory: NamedFactory,
    unbound_factory: UnboundFactory,
    certbot_env: Certbot,
    postfix_factory: PostfixFactory,
) -> None:
    # A TTL long enough that the sender's cached RRset outlives the renewal.
    lab = make_lab(120, named_factory, unbound_factory, certbot_env, postfix_factory)
    certbot_env.certonly(HOST, extra=lab.installer_args("--dane-tlsa-mode", "replace"))
    first = lab.live_key_hash()
    assert "reuse_key" not in certbot_env.renewal_conf(HOST).read_text()
    assert lab.fill_cache() == {first}
    lab.assert_sender_verifies("issuance")

    # The renewal brings a new key; its record replaces the old one at once.
    certbot_env.renew()
    second = lab.live_key_hash()
    assert second != first
    assert lab.served() == {second}
    log_text = (certbot_env.logs_dir / "letsencrypt.log").read_text()
    assert "mode = replace" in log_text and "fail" in log_text

    # A sender that cached the RRset before the renewal now cannot verify the server.
    output = lab.finger()
    assert VERIFIED not in output, output
    assert lab.fill_cache() == {first}  # the cache still pins the old key


@pytest.mark.parametrize("linked", [False, True])
def test_key_swap_restores_the_archive_entry_exactly(tmp_path: Path, linked: bool) -> None:
    """After a reuse-key renewal privkeyN.pem is a link to an older file; either way it comes
    back as it was (kind, bytes, mode, time), and the older file is never touched."""
    archive = tmp_path / "archive" / HOST
    live = tmp_path / "live" / HOST
    archive.mkdir(parents=True)
    live.mkdir(parents=True)
    (archive / "privkey1.pem").write_bytes(b"old key\n")
    (archive / "privkey1.pem").chmod(0o640)
    os.utime(archive / "privkey1.pem", (1_000_000, 1_000_000))
    entry = "privkey1.pem"
    if linked:
        (archive / "privkey2.pem").symlink_to("privkey1.pem")
        entry = "privkey2.pem"
    (live / "privkey.pem").symlink_to(f"../../archive/{HOST}/{entry}")
    before = (archive / entry).lstat()

    swap = KeySwap(live)
    swap.install(b"staged key\n")
    assert (live / "privkey.pem").read_bytes() == b"staged key\n"
    if linked:  # the link was replaced, not the older file it pointed to
        assert (archive / "privkey1.pem").read_bytes() == b"old key\n"
    swap.restore()

    assert (live / "privkey.pem").read_bytes() == b"old key\n"
    if linked:
        assert (archive / entry).readlink() == Path("privkey1.pem")
    else:
        after = (archive / entry).lstat()
        assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)
    assert sorted(p.name for p in archive.iterdir()) == sorted({"privkey1.pem", entry})


def test_certbot_renew_repairs_reuse_key_and_stages_a_key_past_its_age(
    signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    named = signed_zone_server
    args = [
        "-i", "dane-tlsa",
        "--dane-tlsa-zone", ZONE,
        "--dane-tlsa-zone-file", str(named.zone_file(ZONE)),
        "--dane-tlsa-rndc", shlex.join(named.rndc_argv),
        "--dane-tlsa-nameservers", f"127.0.0.1:{named.port}",
        "--dane-tlsa-key-max-age", "30",
    ]  # fmt: skip
    live = certbot_env.certonly(HOST, extra=args)
    conf = certbot_env.renewal_conf(HOST)
    owner = f"_25._tcp.{HOST}."

    def served() -> int:
        response = named.query(owner, "TLSA")
        return sum(len(r) for r in response.answer if r.rdtype == dns.rdatatype.TLSA)

    # Someone drops reuse_key; the next `certbot renew` (nothing due) puts it back, loudly.
    conf.write_text(conf.read_text().replace("reuse_key = True\n", ""))
    result = certbot_env.run("renew")
    assert "reuse_key = True" in conf.read_text()
    assert (
        "had lost reuse_key"
        in result.stderr + (certbot_env.logs_dir / "letsencrypt.log").read_text()
    )
    assert served() == 1

    # The key file is 31 days old: the same run stages a next key and publishes its record.
    key_file = Path(os.path.realpath(live / "privkey.pem"))
    month_ago = time.time() - 31 * 86400
    os.utime(key_file, (month_ago, month_ago))
    certbot_env.run("renew")
    state = (certbot_env.config_dir / "dane-tlsa" / HOST / "state.json").read_text()
    assert '"next": {' in state
    assert served() == 2
