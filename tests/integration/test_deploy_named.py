"""`certbot-dane-tlsa deploy` against a real named serving an inline-signed zone.

Each test starts its own named on loopback, writes a certbot-shaped lineage, and runs the real
command line as certbot would run a deploy hook. What DNS serves is read back with dnspython
straight from named, so these tests check the whole path: file edit, named-checkzone, rndc,
signing, and the tool's own verification.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.helpers.cli import named_settings, run_cli, write_settings
from tests.helpers.dns import served_tlsa, spki_sha256
from tests.helpers.pki import Pki, make_key, make_pki, write_lineage
from tests.services.named import NamedServer, ZoneSpec

pytestmark = pytest.mark.services

ZONE = "example.test"
OWNER = "_25._tcp.mx.example.test."


def tlsa_311(pki: Pki) -> str:
    return spki_sha256(pki.leaf)


def served(named: NamedServer, owner: str = OWNER) -> tuple[set[str], bool]:
    return served_tlsa(named, owner)


@dataclass
class Setup:
    named: NamedServer
    pki: Pki
    live: Path
    config: Path
    zone_file: Path
    tmp: Path

    def deploy(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return run_cli("deploy", "--config", self.config, "--lineage", self.live, *extra)


@pytest.fixture
def setup(tmp_path: Path, signed_zone_server: NamedServer) -> Setup:
    named = signed_zone_server
    pki = make_pki("p256", ["mx.example.test"])
    live = write_lineage(tmp_path / "le", "mx.example.test", pki)
    zone_file = named.zone_file(ZONE)
    config = write_settings(
        tmp_path / "dane-tlsa.toml",
        zone=ZONE,
        zone_file=zone_file,
        rndc=named.rndc_argv,
        nameservers=[f"127.0.0.1:{named.port}"],
        verify_timeout=20,
    )
    return Setup(named, pki, live, config, zone_file, tmp_path)


def test_deploy_publishes_signed_record_and_second_run_changes_nothing(setup: Setup) -> None:
    before_serial = setup.named.soa_serial(ZONE)
    result = setup.deploy()
    assert result.returncode == 0, result.stderr
    data, signed = served(setup.named)
    assert data == {f"3 1 1 {tlsa_311(setup.pki)}"}
    assert signed, "the TLSA answer from the inline-signed zone carries no RRSIG"
    assert setup.named.soa_serial(ZONE) != before_serial
    assert "serves the expected TLSA" in result.stderr

    text = setup.zone_file.read_bytes()
    stat = setup.zone_file.stat()
    signed_serial = setup.named.soa_serial(ZONE)
    again = setup.deploy()
    assert again.returncode == 0, again.stderr
    assert "already right" in again.stderr
    assert setup.zone_file.read_bytes() == text
    assert setup.zone_file.stat().st_mtime_ns == stat.st_mtime_ns
    assert setup.named.soa_serial(ZONE) == signed_serial


def test_file_serial_increases_and_only_tlsa_lines_are_added(setup: Setup) -> None:
    original = setup.zone_file.read_text()
    assert setup.deploy().returncode == 0
    edited = setup.zone_file.read_text()
    old_lines, new_lines = original.splitlines(), edited.splitlines()
    added = [line for line in new_lines if line not in old_lines]
    removed = [line for line in old_lines if line not in new_lines]
    assert len(removed) == 1 and "; serial" in removed[0] and " 1 " in f" {removed[0]} "
    serial_lines = [line for line in added if "; serial" in line]
    assert len(serial_lines) == 1 and " 2 " in f" {serial_lines[0]} "
    tlsa_lines = [line for line in added if "TLSA" in line]
    assert len(tlsa_lines) == 1 and tlsa_311(setup.pki) in tlsa_lines[0]


def test_renewal_with_new_key_replaces_record_and_warns(setup: Setup) -> None:
    assert setup.deploy().returncode == 0
    renewed = setup.pki.reissue(leaf_key=make_key("p256"))
    write_lineage(setup.tmp / "le", "mx.example.test", renewed)
    result = setup.deploy()
    assert result.returncode == 0, result.stderr
    data, signed = served(setup.named)
    assert data == {f"3 1 1 {tlsa_311(renewed)}"} and signed
    assert "reuse_key" in result.stderr  # the key changed under a published record


def test_several_ports_and_params(setup: Setup) -> None:
    result = setup.deploy("--ports", "25,465", "--params", "3 1 1,3 1 2")
    assert result.returncode == 0, result.stderr
    for owner in (OWNER, "_465._tcp.mx.example.test."):
        data, signed = served(setup.named, owner)
        assert {d.split()[2] for d in data} == {"1", "2"} and signed


def test_dry_run_prints_diff_and_changes_nothing(setup: Setup) -> None:
    text = setup.zone_file.read_bytes()
    result = setup.deploy("--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"+++ {setup.zone_file}" in result.stdout
    assert tlsa_311(setup.pki) in result.stdout
    assert "# would run: rndc" in result.stdout
    assert setup.zone_file.read_bytes() == text
    assert served(setup.named)[0] == set()


def test_key_that_does_not_match_certificate_is_refused(setup: Setup) -> None:
    text = setup.zone_file.read_bytes()
    stranger = make_pki("p256", ["mx.example.test"])
    key_path = setup.live / "privkey.pem"
    target = key_path.resolve()
    target.write_bytes(
        stranger.leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    result = setup.deploy()
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not belong to the certificate" in lines[0], result.stderr
    assert "PRIVATE KEY" not in result.stderr
    assert setup.zone_file.read_bytes() == text


def test_named_checkzone_failure_leaves_zone_untouched(setup: Setup) -> None:
    # A CNAME at the TLSA owner: adding TLSA there is "CNAME and other data", which
    # named-checkzone rejects. The edit must not reach the live file.
    setup.zone_file.write_text(
        setup.zone_file.read_text() + "_25._tcp.mx IN CNAME _25._tcp.elsewhere.example.\n"
    )
    text = setup.zone_file.read_bytes()
    result = setup.deploy()
    assert result.returncode != 0
    assert "named-checkzone rejected" in result.stderr
    assert "CNAME" in result.stderr
    assert setup.zone_file.read_bytes() == text
    leftovers = [p.name for p in setup.zone_file.parent.iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_rndc_unreachable_before_edit_leaves_zone_untouched(setup: Setup) -> None:
    text = setup.zone_file.read_bytes()
    broken = [*setup.named.rndc_argv, "-p", "1"]  # nothing listens there: rndc cannot connect
    result = setup.deploy("--rndc", " ".join(broken))
    assert result.returncode != 0
    assert "rndc zonestatus example.test failed: rndc: connect failed" in result.stderr
    assert setup.zone_file.read_bytes() == text


def test_rndc_reload_failure_restores_previous_file(setup: Setup) -> None:
    # With dynamic = no the tool does not ask rndc before editing, so the first rndc call
    # is the reload, after the new file is in place: it must put the old one back.
    text = setup.zone_file.read_bytes()
    broken = [*setup.named.rndc_argv, "-p", "1"]
    result = setup.deploy("--rndc", " ".join(broken), "--dynamic", "no")
    assert result.returncode != 0
    assert "rndc reload example.test failed" in result.stderr, result.stderr
    assert "the previous zone file was restored" in result.stderr
    assert setup.zone_file.read_bytes() == text
    assert served(setup.named)[0] == set()


@pytest.mark.parametrize("verify", ["true", "false"])
def test_a_reload_lost_by_an_earlier_run_is_made_good(setup: Setup, verify: str) -> None:
    # The first run's rndc is `true`: the file gets the record but named never hears of it,
    # as when a run is killed between the swap and the reload. The next run finds the file
    # right and must still get it loaded, also when it may not ask DNS (verify = false).
    first = setup.deploy("--rndc", "true", "--dynamic", "no", "--verify", "false")
    assert first.returncode == 0, first.stderr
    assert served(setup.named)[0] == set()
    again = setup.deploy("--verify", verify)
    assert again.returncode == 0, again.stderr
    assert "already right" in again.stderr
    assert "may not have loaded the file: rndc reload" in again.stderr
    assert setup.named.wait_for(
        lambda: served(setup.named)[0] == {f"3 1 1 {tlsa_311(setup.pki)}"}, 10
    )


def test_settings_error_is_one_line(setup: Setup) -> None:
    result = setup.deploy("--ports", "25,smtp")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "certbot-dane-tlsa: error: ports: 'smtp' is not a port number (1-65535)"
    ]


def test_lineage_from_renewed_lineage_environment(setup: Setup) -> None:
    result = run_cli("deploy", "--config", setup.config, env={"RENEWED_LINEAGE": str(setup.live)})
    assert result.returncode == 0, result.stderr
    assert served(setup.named)[0] == {f"3 1 1 {tlsa_311(setup.pki)}"}


def test_dynamic_zone_is_frozen_edited_and_thawed(tmp_path: Path, named_factory: object) -> None:
    from tests.services.fixtures_dns import EXAMPLE_ZONE_TEXT

    named: NamedServer = named_factory(  # type: ignore[operator]
        [ZoneSpec(ZONE, EXAMPLE_ZONE_TEXT, dynamic=True)]
    )
    pki = make_pki("p256", ["mx.example.test"])
    live = write_lineage(tmp_path / "le", "mx.example.test", pki)
    config = named_settings(
        tmp_path / "dane-tlsa.toml",
        named,
        zone=ZONE,
        verify_timeout=20,
    )
    result = run_cli("deploy", "--config", config, "--lineage", live)
    assert result.returncode == 0, result.stderr
    assert "rndc freeze" in result.stderr and "rndc thaw" in result.stderr
    assert served(named)[0] == {f"3 1 1 {tlsa_311(pki)}"}
    # named still takes dynamic updates afterwards: the zone was thawed, also by a second run
    # that has nothing to change.
    assert "frozen: no" in named.rndc("zonestatus", ZONE)
    again = run_cli("deploy", "--config", config, "--lineage", live)
    assert again.returncode == 0, again.stderr
    assert "already right" in again.stderr
    assert "frozen: no" in named.rndc("zonestatus", ZONE)


def test_concurrent_deploys_into_one_zone_keep_every_record(
    tmp_path: Path, signed_zone_server: NamedServer
) -> None:
    named = signed_zone_server
    hosts = [f"h{i}.example.test" for i in range(8)]
    procs = []
    for host in hosts:
        pki = make_pki("p256", [host])
        live = write_lineage(tmp_path / "le", host, pki)
        config = named_settings(
            tmp_path / f"{host}.toml",
            named,
            zone=ZONE,
            verify_timeout=30,
        )
        procs.append(
            (
                host,
                tlsa_311(pki),
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "certbot_dane_tlsa",
                        "deploy",
                        "--config",
                        str(config),
                        "--lineage",
                        str(live),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={k: v for k, v in os.environ.items() if k != "RENEWED_LINEAGE"},
                ),
            )
        )
    for host, _, proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{host}: {err}"
    for host, digest, _ in procs:
        assert served(named, f"_25._tcp.{host}.")[0] == {f"3 1 1 {digest}"}
    text = named.zone_file(ZONE).read_text()
    assert sum("TLSA" in line for line in text.splitlines()) == len(hosts)
