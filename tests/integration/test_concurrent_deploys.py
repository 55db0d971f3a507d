"""Twenty mail hosts, each with its own certificate, deploying into one zone at the same time.

Run as twenty real `certbot-dane-tlsa deploy` processes against a real named, once through the
zone-file backend (the lock serialises the edits) and once through RFC 2136 (prerequisites
and retries keep concurrent writers from overwriting each other). Every host's record must be
served at the end.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dns.rdatatype
import pytest
from cryptography.hazmat.primitives import serialization

from tests.helpers.cli import write_settings
from tests.helpers.pki import make_pki, write_lineage
from tests.services.fixtures_dns import EXAMPLE_ZONE, EXAMPLE_ZONE_TEXT
from tests.services.named import NamedServer, ZoneSpec

pytestmark = [pytest.mark.services, pytest.mark.slow]

HOSTS = [f"mx{i}.example.test" for i in range(20)]


def served_311(named: NamedServer, host: str) -> set[str]:
    response = named.query(f"_25._tcp.{host}.", "TLSA")
    return {
        r.cert.hex()
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.TLSA
        for r in rrset
    }


def run_all(tmp_path: Path, named: NamedServer, **settings: Any) -> dict[str, str]:
    """Start one deploy per host at once; return host -> expected 3 1 1 data."""
    expected: dict[str, str] = {}
    procs = []
    env = {k: v for k, v in os.environ.items() if k != "RENEWED_LINEAGE"}
    for host in HOSTS:
        pki = make_pki("p256", [host])
        spki = pki.leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        expected[host] = hashlib.sha256(spki).hexdigest()
        live = write_lineage(tmp_path / "le", host, pki)
        config = write_settings(
            tmp_path / f"{host}.toml",
            zone=EXAMPLE_ZONE,
            nameservers=[f"127.0.0.1:{named.port}"],
            verify_timeout=60,
            **settings,
        )
        argv = [sys.executable, "-m", "certbot_dane_tlsa", "deploy", "--config", str(config),
                "--lineage", str(live)]  # fmt: skip
        procs.append((host, subprocess.Popen(argv, env=env, text=True, stderr=subprocess.PIPE)))
    for host, proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{host}: {err}"
    return expected


def test_twenty_concurrent_zone_file_deploys(
    tmp_path: Path, signed_zone_server: NamedServer
) -> None:
    named = signed_zone_server
    expected = run_all(
        tmp_path, named, zone_file=named.zone_file(EXAMPLE_ZONE), rndc=named.rndc_argv
    )
    for host, digest in expected.items():
        assert served_311(named, host) == {digest}, host
    lines = named.zone_file(EXAMPLE_ZONE).read_text().splitlines()
    assert sum("TLSA" in line.split() for line in lines) == len(HOSTS)


def test_twenty_concurrent_rfc2136_deploys(tmp_path: Path, named_factory: Any) -> None:
    key_text = subprocess.run(
        ["tsig-keygen", "-a", "hmac-sha256", "tlsa-key"], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    secret = key_text.split('secret "', 1)[1].split('"', 1)[0]
    key_file = tmp_path / "tlsa-key.key"
    key_file.write_text(key_text)
    key_file.chmod(0o600)
    named: NamedServer = named_factory(
        [ZoneSpec(EXAMPLE_ZONE, EXAMPLE_ZONE_TEXT, dynamic=True,
                  update_policy="grant tlsa-key zonesub TLSA;")],
        tsig_keys={"tlsa-key": ("hmac-sha256", secret)},
    )  # fmt: skip
    expected = run_all(
        tmp_path, named, backend="rfc2136", tsig_key_file=key_file, update_retries=20
    )
    for host, digest in expected.items():
        assert served_311(named, host) == {digest}, host
