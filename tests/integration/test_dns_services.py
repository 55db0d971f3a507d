"""Self-tests of the named/unbound fixtures: if these fail, every DNS test after them is moot."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import pytest

from tests.services.fixtures_dns import (
    EXAMPLE_ZONE,
    EXAMPLE_ZONE_TEXT,
    NamedFactory,
    UnboundFactory,
)
from tests.services.named import NamedServer, ZoneSpec

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]
TLSA_OWNER = f"_25._tcp.mx.{EXAMPLE_ZONE}"
TLSA_A = "3 1 1 " + "ab" * 32
TLSA_B = "3 1 1 " + "cd" * 32


def _with_serial(serial: int, extra: str = "") -> str:
    text = EXAMPLE_ZONE_TEXT.replace("1       ; serial", f"{serial}       ; serial")
    assert text != EXAMPLE_ZONE_TEXT
    return text + extra


def _signed_answer(response: dns.message.Message, rdtype: dns.rdatatype.RdataType) -> bool:
    types = {(rrset.rdtype, rrset.covers) for rrset in response.answer}
    return (rdtype, dns.rdatatype.NONE) in types and (dns.rdatatype.RRSIG, rdtype) in types


def _answer_text(response: dns.message.Message, rdtype: dns.rdatatype.RdataType) -> set[str]:
    return {rd.to_text() for rrset in response.answer if rrset.rdtype == rdtype for rd in rrset}


def _serves_txt(server: NamedServer, name: str, value: str) -> bool:
    response = server.query(name, "TXT")
    return _signed_answer(response, dns.rdatatype.TXT) and any(
        value in text for text in _answer_text(response, dns.rdatatype.TXT)
    )


def test_inline_signed_zone_serves_rrsig_and_follows_rndc_reload(
    signed_zone_server: NamedServer,
) -> None:
    server = signed_zone_server
    assert _signed_answer(server.query(EXAMPLE_ZONE, "SOA"), dns.rdatatype.SOA)
    assert server.query(f"probe.{EXAMPLE_ZONE}", "TXT").rcode() == dns.rcode.NXDOMAIN
    serial_before = server.soa_serial(EXAMPLE_ZONE)

    server.write_zone_text(EXAMPLE_ZONE, _with_serial(2, 'probe IN TXT "reloaded"\n'))
    done = subprocess.run(
        [*server.rndc_argv, "reload", EXAMPLE_ZONE], capture_output=True, text=True, check=True
    )
    assert "reload queued" in done.stdout

    assert server.wait_for(lambda: _serves_txt(server, f"probe.{EXAMPLE_ZONE}", "reloaded"), 5), (
        server.log_text()
    )
    # The signed serial is named's own, but it must move forward with the change.
    assert server.soa_serial(EXAMPLE_ZONE) > serial_before


def test_secondary_transfers_and_follows_notify(named_factory: NamedFactory) -> None:
    primary = named_factory([ZoneSpec(EXAMPLE_ZONE, EXAMPLE_ZONE_TEXT)])
    secondary = named_factory([], primary=primary)
    assert secondary.port != primary.port
    assert secondary.soa_serial(EXAMPLE_ZONE) == primary.soa_serial(EXAMPLE_ZONE)
    soa = secondary.query(EXAMPLE_ZONE, "SOA")
    assert soa.flags & dns.flags.AA
    assert _signed_answer(soa, dns.rdatatype.SOA)

    primary.write_zone_text(EXAMPLE_ZONE, _with_serial(2, 'probe IN TXT "notified"\n'))
    primary.rndc("reload", EXAMPLE_ZONE)
    # The zone's refresh is an hour: only NOTIFY can bring the change over this fast.
    assert secondary.wait_for(
        lambda: _serves_txt(secondary, f"probe.{EXAMPLE_ZONE}", "notified"), 8
    ), primary.log_text() + secondary.log_text()
    assert secondary.soa_serial(EXAMPLE_ZONE) == primary.soa_serial(EXAMPLE_ZONE)


def test_dynamic_zone_tsig_update_is_scoped_to_tlsa_and_freeze_thaw_work(
    named_factory: NamedFactory,
) -> None:
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    server = named_factory(
        [
            ZoneSpec(
                EXAMPLE_ZONE,
                EXAMPLE_ZONE_TEXT,
                dynamic=True,
                update_policy="grant tlsa-key zonesub TLSA;",
            )
        ],
        tsig_keys={"tlsa-key": ("hmac-sha256", secret)},
    )
    keyring = dns.tsigkeyring.from_text({"tlsa-key": ("hmac-sha256", secret)})

    def send(rdtype: str, value: str, owner: str) -> int:
        update = dns.update.UpdateMessage(
            EXAMPLE_ZONE,
            keyring=keyring,
            keyname=dns.name.from_text("tlsa-key"),
            keyalgorithm="hmac-sha256",
        )
        update.add(owner, 300, rdtype, value)
        return dns.query.tcp(update, server.address, port=server.port, timeout=5).rcode()

    assert send("TLSA", TLSA_A, "_25._tcp.mx") == dns.rcode.NOERROR
    assert server.wait_for(
        lambda: _signed_answer(server.query(TLSA_OWNER, "TLSA"), dns.rdatatype.TLSA), 5
    ), server.log_text()
    assert send("A", "127.0.0.9", "intruder") == dns.rcode.REFUSED
    assert server.query(f"intruder.{EXAMPLE_ZONE}", "A").rcode() == dns.rcode.NXDOMAIN

    # freeze writes the journal into the file (asynchronously: rndc returns before the dump
    # is done, hence freeze() waits for it); an edit made while frozen is loaded on thaw.
    zone_file = server.zone_file(EXAMPLE_ZONE)
    server.freeze(EXAMPLE_ZONE)
    assert "frozen: yes" in server.rndc("zonestatus", EXAMPLE_ZONE)
    frozen_text = zone_file.read_text()
    assert "TLSA" in frozen_text, server.log_text()
    assert send("TLSA", TLSA_B, "_25._tcp.mx") != dns.rcode.NOERROR  # frozen: no updates
    serial = server.soa_serial(EXAMPLE_ZONE)
    edited = _bump_serial(frozen_text) + f'thawed.{EXAMPLE_ZONE}. 300 IN TXT "after-thaw"\n'
    server.write_zone_text(EXAMPLE_ZONE, edited)
    done = subprocess.run(
        [*server.rndc_argv, "thaw", EXAMPLE_ZONE], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert server.wait_for(
        lambda: _serves_txt(server, f"thawed.{EXAMPLE_ZONE}", "after-thaw"), 5
    ), server.log_text()
    assert server.soa_serial(EXAMPLE_ZONE) > serial
    # Thawed: dynamic updates are accepted again.
    assert send("TLSA", TLSA_B, "_25._tcp.mx") == dns.rcode.NOERROR


def _bump_serial(text: str) -> str:
    """Add one to the serial of a file that named itself wrote (``N ; serial`` on its own line)."""
    bumped, count = re.subn(
        r"^(\s*)(\d+)(\s*; serial)",
        lambda m: f"{m[1]}{int(m[2]) + 1}{m[3]}",
        text,
        count=1,
        flags=re.M,
    )
    assert count == 1, text
    return bumped


def test_unbound_validates_signed_zone_and_not_unsigned(
    named_factory: NamedFactory, unbound_factory: UnboundFactory
) -> None:
    server = named_factory(
        [
            ZoneSpec(EXAMPLE_ZONE, EXAMPLE_ZONE_TEXT + f"_25._tcp.mx IN TLSA {TLSA_A}\n"),
            ZoneSpec(
                "plain.test",
                EXAMPLE_ZONE_TEXT.replace("example.test.", "plain.test.")
                + f"_25._tcp.mx IN TLSA {TLSA_A}\n",
                signed=False,
            ),
        ]
    )
    resolver = unbound_factory(server)
    assert resolver.port == 53 and resolver.address.startswith("127.0.0.")

    signed = resolver.query(TLSA_OWNER, "TLSA")
    assert signed.rcode() == dns.rcode.NOERROR
    assert signed.flags & dns.flags.AD, resolver.log_text()
    assert _answer_text(signed, dns.rdatatype.TLSA) == {TLSA_A}

    unsigned = resolver.query("_25._tcp.mx.plain.test", "TLSA")
    assert unsigned.rcode() == dns.rcode.NOERROR
    assert _answer_text(unsigned, dns.rdatatype.TLSA) == {TLSA_A}
    assert not unsigned.flags & dns.flags.AD

    # The cache holds the old RRset for its TTL; flush() must make the new one visible.
    server.write_zone_text(EXAMPLE_ZONE, _with_serial(2, f"_25._tcp.mx IN TLSA {TLSA_B}\n"))
    server.rndc("reload", EXAMPLE_ZONE)
    assert server.wait_for(
        lambda: _answer_text(server.query(TLSA_OWNER, "TLSA"), dns.rdatatype.TLSA) == {TLSA_B}
    )
    assert _answer_text(resolver.query(TLSA_OWNER, "TLSA"), dns.rdatatype.TLSA) == {TLSA_A}
    resolver.flush()
    fresh = resolver.query(TLSA_OWNER, "TLSA")
    assert _answer_text(fresh, dns.rdatatype.TLSA) == {TLSA_B}
    assert fresh.flags & dns.flags.AD


INNER_TEST = """
    from pathlib import Path

    from tests.services.fixtures_dns import EXAMPLE_ZONE_TEXT
    from tests.services.named import ZoneSpec


    def test_fails_with_daemons_running(named_factory, unbound_factory):
        server = named_factory([ZoneSpec("example.test", EXAMPLE_ZONE_TEXT)])
        resolver = unbound_factory(server)
        Path({pid_file!r}).write_text(f"{{server.pid}} {{resolver.pid}}")
        assert server.running() and resolver.running()
        raise AssertionError("deliberate failure: teardown must still stop named and unbound")
"""


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and ("named" in cmdline or "unbound" in cmdline):
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_teardown_of_failed_test_leaves_no_daemon(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    test_file = tmp_path / "inner" / "test_inner.py"
    test_file.parent.mkdir()
    test_file.write_text(textwrap.dedent(INNER_TEST.format(pid_file=str(pid_file))))
    basetemp = tmp_path / "inner-tmp"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.services.fixtures_dns",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(test_file.parent),
            "-c",
            os.devnull,
            "--basetemp",
            str(basetemp),
            str(test_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout and "deliberate failure" in done.stdout, done.stdout
    named_pid, unbound_pid = (int(p) for p in pid_file.read_text().split())
    for pid in (named_pid, unbound_pid):
        assert not Path(f"/proc/{pid}").exists() or str(basetemp) not in Path(
            f"/proc/{pid}/cmdline"
        ).read_bytes().decode(errors="replace")
    assert _processes_mentioning(str(basetemp)) == []
