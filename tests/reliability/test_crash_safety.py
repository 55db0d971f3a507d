"""SIGKILL the real deploy command at random moments against a real named and a big zone.

A crash (power loss, OOM killer, an impatient admin) can stop the tool anywhere: while it
reads the zone, while it writes the candidate, between named-checkzone and the rename, or while
rndc reloads. Whatever the moment, the zone file must be exactly the complete old version or
exactly the complete new one, named-checkzone must accept it, and the next normal run must
finish the job and leave no temporary files behind. The zone is unsigned so that named loads
its 50k records quickly, which lets the loop kill many runs in the time budget.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.dnsname import to_dnspython
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile import plan_zone_edit
from tests.helpers.cli import run_cli, write_settings
from tests.helpers.dns import spki_sha256
from tests.helpers.pki import Pki, make_key, make_pki, write_lineage
from tests.services.named import NamedServer, ZoneSpec, wait_for

pytestmark = pytest.mark.services

ZONE = "example.test"
ORIGIN = dnsname.from_text(ZONE)
HOST = "mx.example.test"
OWNER = dnsname.from_text(f"_25._tcp.{HOST}")
P311 = TlsaParams(3, 1, 1)
RECORDS = 50_000
MAX_KILLS = 60
TIME_BUDGET = 90.0


def big_zone_text(count: int) -> str:
    """A plain zone with ``count`` A records; ``mx`` sits in the middle, so the new TLSA line
    lands mid-file and the writer has to stream most of the file on either side of it."""
    lines = [
        "$TTL 300",
        f"@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. ( 1 3600 600 86400 300 )",
        "  IN NS ns1",
        "ns1 IN A 127.0.0.1",
    ]
    for i in range(count):
        if i == count // 2:
            lines.append("mx IN A 127.0.0.1")
        lines.append(f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    return "\n".join(lines) + "\n"


def record_311(pki: Pki) -> TlsaRecord:
    return TlsaRecord(3, 1, 1, bytes.fromhex(spki_sha256(pki.leaf)))


def expected_new_bytes(zone_file: Path, record: TlsaRecord) -> tuple[bytes, int | None]:
    """What one uninterrupted run would write (the serial is a counter, so time plays no
    part). The bytes are cross-checked below against a real uninterrupted run."""
    edit = plan_zone_edit(
        zone_file,
        ORIGIN,
        {OWNER: {record}},
        {OWNER: {P311}},
        now=datetime.now(UTC),
        anchors={OWNER: dnsname.from_text(HOST)},
    )
    out = io.BytesIO()
    edit.write_to(out)
    return out.getvalue(), edit.new_serial


def tlsa_in_file(data: bytes) -> set[str]:
    zone = dns.zone.from_text(data.decode(), to_dnspython(ORIGIN), relativize=False)
    rds = zone.get_rdataset(to_dnspython(OWNER), dns.rdatatype.TLSA)
    return {r.to_text() for r in rds} if rds is not None else set()


def checkzone(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["named-checkzone", "-q", ZONE, str(path)], capture_output=True, text=True, check=False
    )


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def served_tlsa(named: NamedServer) -> set[str]:
    response = named.query(OWNER.to_text(), "TLSA", dnssec=False)
    return {
        r.to_text()
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.TLSA
        for r in rrset
    }


def deploy_argv(config: Path, live: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "certbot_dane_tlsa",
        "deploy",
        "--config",
        str(config),
        "--lineage",
        str(live),
    ]


def test_sigkill_at_random_moments_leaves_old_or_new_zone(
    tmp_path: Path, named_factory: object
) -> None:
    named: NamedServer = named_factory(  # type: ignore[operator]
        [ZoneSpec(ZONE, big_zone_text(RECORDS), signed=False)]
    )
    zone_file = named.zone_file(ZONE)
    zone_dir = zone_file.parent
    config = write_settings(
        tmp_path / "dane-tlsa.toml",
        zone=ZONE,
        zone_file=zone_file,
        hosts=[HOST],
        rndc=named.rndc_argv,
        nameservers=[f"127.0.0.1:{named.port}"],
        verify=False,
    )
    le = tmp_path / "le"
    pki = make_pki("p256", [HOST])
    live = write_lineage(le, HOST, pki)
    env = {k: v for k, v in os.environ.items() if k not in ("RENEWED_LINEAGE",)}

    # One full run: its bytes must be what the in-process oracle predicts, and its duration
    # sets the range of kill moments.
    predicted, _ = expected_new_bytes(zone_file, record_311(pki))
    started = time.monotonic()
    first = run_cli("deploy", "--config", config, "--lineage", live)
    full_run = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    assert zone_file.read_bytes() == predicted
    assert tlsa_in_file(predicted) == {record_311(pki).to_text()}

    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    phases: Counter[str] = Counter()
    deadline = time.monotonic() + TIME_BUDGET
    kills = 0
    while kills < MAX_KILLS and time.monotonic() < deadline:
        pki = pki.reissue(leaf_key=make_key("p256"))
        write_lineage(le, HOST, pki)
        record = record_311(pki)
        old = zone_file.read_bytes()
        old_serial = named.soa_serial(ZONE)
        new, new_serial = expected_new_bytes(zone_file, record)
        assert new != old and new_serial is not None

        proc = subprocess.Popen(
            deploy_argv(config, live),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own group: the kill takes rndc/checkzone with it
        )
        time.sleep(rng.uniform(0.0, full_run))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        kills += 1

        after = zone_file.read_bytes()
        assert after in (old, new), f"kill #{kills}: the zone file is neither old nor new"
        if proc.returncode == 0:
            phase = "finished before the kill"
        elif after == old:
            phase = "old, candidate left behind" if leftovers(zone_dir) else "old, no candidate"
        elif named.soa_serial(ZONE) == new_serial:
            phase = "new, loaded by named"
        else:
            phase = "new, not yet loaded by named"
        phases[phase] += 1
        if proc.returncode != 0:
            phases["killed, old" if after == old else "killed, new"] += 1
        check = checkzone(zone_file)
        assert check.returncode == 0, f"kill #{kills} ({phase}): {check.stdout}{check.stderr}"

        # A kill after the backup link was made but before the swap leaves .bak and the zone
        # as one inode; the recovery run must cope with that too. Count how often it happened.
        backup = zone_dir / f".{zone_file.name}.dane-tlsa.bak"
        if backup.exists() and backup.stat().st_ino == zone_file.stat().st_ino:
            phases["backup and zone one inode before recovery"] += 1
        again = run_cli("deploy", "--config", config, "--lineage", live)
        assert again.returncode == 0, f"kill #{kills} ({phase}): {again.stderr}"
        assert zone_file.read_bytes() == new, f"kill #{kills} ({phase}): recovery run differs"
        assert leftovers(zone_dir) == [], f"kill #{kills} ({phase})"
        assert wait_for(lambda record=record: served_tlsa(named) == {record.to_text()}, 10), (
            f"kill #{kills} ({phase}): named does not serve the new record after recovery"
        )
        assert named.soa_serial(ZONE) == new_serial
        assert old_serial < new_serial

    summary = ", ".join(f"{k}: {v}" for k, v in sorted(phases.items()))
    print(f"\n{kills} kills in {RECORDS} records, full run {full_run:.2f} s; {summary}")
    assert kills >= 10, f"only {kills} kills fitted in the time budget"
    # Both outcomes: the kills straddled the rename, so the critical window was exercised.
    assert phases["killed, old"] >= 1 and phases["killed, new"] >= 1, summary


SMALL_ZONE = f"""\
$TTL 300
@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. ( 1 3600 600 86400 300 )
  IN NS ns1
ns1 IN A 127.0.0.1
mx IN A 127.0.0.1
"""


def test_deploy_after_a_restore_leaves_no_temp_file(tmp_path: Path, named_factory: object) -> None:
    named: NamedServer = named_factory(  # type: ignore[operator]
        [ZoneSpec(ZONE, SMALL_ZONE, signed=False)]
    )
    zone_file = named.zone_file(ZONE)
    config = write_settings(
        tmp_path / "dane-tlsa.toml",
        zone=ZONE,
        zone_file=zone_file,
        hosts=[HOST],
        rndc=named.rndc_argv,
        nameservers=[f"127.0.0.1:{named.port}"],
        verify=False,
    )
    live = write_lineage(tmp_path / "le", HOST, make_pki("p256", [HOST]))
    broken = " ".join([*named.rndc_argv, "-p", "1"])
    failed = run_cli(
        "deploy", "--config", config, "--lineage", live, "--rndc", broken, "--dynamic", "no"
    )
    assert "the previous zone file was restored" in failed.stderr, failed.stderr
    backup = zone_file.parent / f".{zone_file.name}.dane-tlsa.bak"
    assert backup.stat().st_ino == zone_file.stat().st_ino  # the state that triggers it

    ok = run_cli("deploy", "--config", config, "--lineage", live)
    assert ok.returncode == 0, ok.stderr
    assert leftovers(zone_file.parent) == []
