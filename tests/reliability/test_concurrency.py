"""Twelve deploy hooks at once into one zone file, against a real, inline-signing named.

certbot runs hooks one after another, but several certbot instances (separate config dirs,
a cron reconcile beside a renewal, an admin running the command by hand) can hit the same
zone together. The zone lock must serialise them so that no run's record is lost, every run
moves the serial forward, and what named serves at the end is every run's record, signed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from tests.helpers.cli import write_settings
from tests.helpers.dns import served_tlsa, spki_sha256
from tests.helpers.pki import make_pki, write_lineage
from tests.services.named import NamedServer

pytestmark = pytest.mark.services

ZONE = "example.test"
ORIGIN = dns.name.from_text(ZONE)
N = 12


def test_parallel_deploys_keep_every_record(
    tmp_path: Path, signed_zone_server: NamedServer
) -> None:
    named = signed_zone_server
    zone_file = named.zone_file(ZONE)
    start_serial = named.file_serial(ZONE)
    env = {k: v for k, v in os.environ.items() if k not in ("RENEWED_LINEAGE",)}
    runs = []
    for i in range(N):
        host = f"h{i}.{ZONE}"
        pki = make_pki("p256", [host])
        live = write_lineage(tmp_path / "le", host, pki)
        config = write_settings(
            tmp_path / f"{host}.toml",
            zone=ZONE,
            zone_file=zone_file,
            rndc=named.rndc_argv,
            nameservers=[f"127.0.0.1:{named.port}"],
            verify_timeout=60,
        )
        argv = [sys.executable, "-m", "certbot_dane_tlsa", "deploy"]
        argv += ["--config", str(config), "--lineage", str(live)]
        runs.append((host, spki_sha256(pki.leaf), argv))

    started = time.monotonic()
    procs = [
        (host, digest, subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env))
        for host, digest, argv in runs
    ]
    for host, _, proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{host}: {err}"
        assert "TLSA records published and verified" in err, f"{host}: {err}"
    print(f"\n{N} parallel deploys finished in {time.monotonic() - started:.1f} s")

    text = zone_file.read_text()
    tlsa_lines = [line for line in text.splitlines() if re.search(r"\sTLSA\s", line)]
    assert len(tlsa_lines) == N, tlsa_lines
    for host, digest, _ in procs:
        assert sum(digest in line for line in tlsa_lines) == 1, host

    # Every run changed the file once, and each change moved the counter serial by one.
    end_serial = named.file_serial(ZONE)
    assert end_serial == start_serial + N

    parsed = dns.zone.from_text(text, ORIGIN, relativize=False)
    for host, digest, _ in procs:
        owner = dns.name.from_text(f"_25._tcp.{host}")
        rds = parsed.get_rdataset(owner, dns.rdatatype.TLSA)
        assert rds is not None and {r.cert.hex() for r in rds} == {digest}, host
        data, signed = served_tlsa(named, owner.to_text())
        assert data == {f"3 1 1 {digest}"}, f"named serves {data} at {owner}"
        assert signed, f"no RRSIG over {owner} TLSA"
    assert named.raw_serial(ZONE) == end_serial

    check = subprocess.run(
        ["named-checkzone", "-q", ZONE, str(zone_file)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert [p.name for p in zone_file.parent.iterdir() if p.name.endswith(".tmp")] == []
