"""A real BIND ``named`` on loopback, owned by one test: config, start, readiness, stop.

Every instance lives in its own directory with its own ports, pid, lock, session-key and key
files, so several can run at once (primary + secondaries, parallel test processes). named runs in
the foreground (``-f``) as our child, so stopping it is a signal to a PID we know, never a search
by process name.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.zone

from certbot_dane_tlsa.lab import ports
from certbot_dane_tlsa.lite_dataclasses import dataclass

_live: set[DaemonProcess] = set()


class DaemonProcess:
    """A foreground daemon that is our child; stop() ends it by PID, escalating to SIGKILL."""

    def __init__(self, argv: list[str], output: Path) -> None:
        self.argv = argv
        self.output = output
        self._out: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._out = self.output.open("ab")
        # A session of its own: a Ctrl-C aimed at pytest does not hit the daemon half-way
        # through a test; teardown stops it in order.
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _live.add(self)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._out is not None:
            self._out.close()
            self._out = None
        _live.discard(self)


@atexit.register
def _stop_leftovers() -> None:
    """Last resort when a test run is interrupted before fixture teardown."""
    for daemon in list(_live):
        daemon.stop(grace=3.0)


def run_tool(argv: list[str], *, what: str, log: Callable[[], str] | None = None) -> str:
    """Run a short command; on failure raise with its output (and the daemon log) attached."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        extra = f"\n--- log ---\n{log()[-4000:]}" if log else ""
        raise RuntimeError(
            f"{what} failed ({done.returncode}): {argv}\n{done.stdout}{done.stderr}{extra}"
        )
    return done.stdout


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.1) -> bool:
    """Poll until ``predicate`` is true; exceptions count as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def dns_query(
    address: str,
    port: int,
    name: str,
    rdtype: str,
    *,
    dnssec: bool = True,
    recursive: bool = False,
    timeout: float = 3.0,
) -> dns.message.Message:
    """One query over UDP, retried over TCP when truncated."""
    query = dns.message.make_query(name, rdtype, want_dnssec=dnssec)
    if not recursive:
        query.flags &= ~dns.flags.RD
    response, _ = dns.query.udp_with_fallback(query, address, timeout=timeout, port=port)
    return response


@dataclass
class ZoneSpec:
    """One zone of a test named; ``text`` is the unsigned master file written at first start."""

    name: str
    text: str = ""
    signed: bool = True
    dynamic: bool = False
    update_policy: str | None = None
    secondaries_notify: bool = True
    # Signed zones are inline-signed by default (the common static setup). False signs a
    # dynamic zone in place, so the zone file itself holds the signatures after a freeze.
    inline_signing: bool = True

    @property
    def origin(self) -> str:
        return self.name.rstrip(".")


class NamedServer:
    """A primary (default) or, with ``primary=``, a secondary of all the primary's zones."""

    def __init__(
        self,
        workdir: Path,
        zones: list[ZoneSpec],
        *,
        address: str = "127.0.0.1",
        tsig_keys: dict[str, tuple[str, str]] | None = None,
        primary: NamedServer | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.primary = primary
        self.zones: list[ZoneSpec] = (
            list(zones) if zones or primary is None else list(primary.zones)
        )
        self.address = address
        self.tsig_keys = dict(tsig_keys or {})
        self.port = ports.free_port(address)
        self.rndc_port = ports.free_port(address)
        self.conf_path = self.workdir / "named.conf"
        self.rndc_conf_path = self.workdir / "rndc.conf"
        self.rndc_key_path = self.workdir / "rndc.key"
        self.log_path = self.workdir / "named.log"
        self.rndc_argv = ["rndc", "-c", str(self.rndc_conf_path)]
        self._notify_targets: list[tuple[str, int]] = []
        self._daemon: DaemonProcess | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        for sub in ("zones", "keys"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        if self.primary is None:
            for zone in self.zones:
                path = self.zone_file(zone.name)
                if not path.exists():
                    path.write_text(zone.text)
        if not self.rndc_key_path.exists():
            key = run_tool(["tsig-keygen", "-a", "hmac-sha256", "rndc-key"], what="tsig-keygen")
            self.rndc_key_path.write_text(key)
        self._write_configs()
        run_tool(["named-checkconf", str(self.conf_path)], what="named-checkconf")
        self._daemon = DaemonProcess(
            ["named", "-c", str(self.conf_path), "-u", "root", "-f", "-n", "1"],
            self.workdir / "named.stderr",
        )
        self._daemon.start()
        daemon = self._daemon
        ready = wait_for(lambda: not daemon.running() or self._ready(), timeout)
        alive = daemon.running()
        if not (ready and alive):
            self.stop()
            state = "is not answering" if alive else "exited"
            raise RuntimeError(
                f"named on {self.address}:{self.port} {state} after {timeout}s;\n"
                f"--- stderr ---\n{self._stderr_text()[-3000:]}\n"
                f"--- log ---\n{self.log_text()[-5000:]}"
            )
        if self.primary is not None:
            self.primary.add_also_notify(self.address, self.port)

    def stop(self) -> None:
        """Stop named and give the ports back; safe to call twice."""
        if self._daemon is not None:
            self._daemon.stop()
            self._daemon = None
        ports.release(self.address, self.port)
        ports.release(self.address, self.rndc_port)

    def restart(self, timeout: float = 20.0) -> None:
        """Stop and start again on the same ports, keeping zone files, journals and keys."""
        if self._daemon is not None:
            self._daemon.stop()
            self._daemon = None
        self.start(timeout)

    @property
    def pid(self) -> int | None:
        return self._daemon.pid if self._daemon else None

    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running()

    def _ready(self) -> bool:
        for zone in self.zones:
            if not self._zone_ready(zone):
                return False
        done = subprocess.run(
            [*self.rndc_argv, "status"], capture_output=True, timeout=10, check=False
        )
        return done.returncode == 0

    def _zone_ready(self, zone: ZoneSpec) -> bool:
        soa = self.query(zone.origin, "SOA", timeout=1.0)
        if soa.rcode() != 0 or not soa.flags & dns.flags.AA or not soa.answer:
            return False
        if not zone.signed:
            return True
        if not _has_rrsig(soa, dns.rdatatype.SOA):
            return False
        keys = self.query(zone.origin, "DNSKEY", timeout=1.0)
        return _has_type(keys, dns.rdatatype.DNSKEY) and _has_rrsig(keys, dns.rdatatype.DNSKEY)

    # --- configuration ---------------------------------------------------------------------

    def _write_configs(self) -> None:
        self.conf_path.write_text(self._named_conf())
        self.rndc_conf_path.write_text(
            f'include "{self.rndc_key_path}";\n'
            f'options {{ default-key "rndc-key"; default-server {self.address}; '
            f"default-port {self.rndc_port}; }};\n"
        )

    def _named_conf(self) -> str:
        w = self.workdir
        keys = "".join(
            f'key "{name}" {{ algorithm {alg}; secret "{secret}"; }};\n'
            for name, (alg, secret) in self.tsig_keys.items()
        )
        zones = "".join(self._zone_conf(zone) for zone in self.zones)
        return f"""\
include "{self.rndc_key_path}";
{keys}
controls {{
  inet {self.address} port {self.rndc_port} allow {{ 127.0.0.0/8; }} keys {{ "rndc-key"; }};
}};
options {{
  directory "{w}";
  pid-file "{w}/named.pid";
  lock-file "{w}/named.lock";
  session-keyfile "{w}/session.key";
  managed-keys-directory "{w}";
  key-directory "{w}/keys";
  dump-file "{w}/named_dump.db";
  statistics-file "{w}/named.stats";
  memstatistics-file "{w}/named.memstats";
  listen-on port {self.port} {{ {self.address}; }};
  listen-on-v6 {{ none; }};
  notify-source {self.address};
  transfer-source {self.address};
  recursion no;
  dnssec-validation no;
  allow-transfer {{ 127.0.0.0/8; }};
  allow-query {{ 127.0.0.0/8; }};
  notify-delay 0;
  startup-notify-rate 100;
  serial-query-rate 100;
  max-refresh-time 300;
  min-refresh-time 1;
  min-retry-time 1;
}};
logging {{
  channel to_file {{
    file "{self.log_path}";
    severity info;
    print-time yes;
    print-severity yes;
    print-category yes;
  }};
  category default {{ to_file; }};
  category lame-servers {{ null; }};
}};
{zones}"""

    def _zone_conf(self, zone: ZoneSpec) -> str:
        lines = [f'zone "{zone.origin}" {{']
        lines.append(f'  file "{self.zone_file(zone.name)}";')
        if self.primary is not None:
            lines.append("  type secondary;")
            lines.append(f"  primaries {{ {self.primary.address} port {self.primary.port}; }};")
            lines.append("  masterfile-format text;")
            lines.append("  notify no;")
        else:
            lines.append("  type primary;")
            if zone.signed:
                lines.append("  dnssec-policy default;")
                lines.append(f"  inline-signing {'yes' if zone.inline_signing else 'no'};")
            if zone.dynamic:
                if zone.update_policy is not None:
                    lines.append(f"  update-policy {{ {zone.update_policy} }};")
                else:
                    lines.append('  allow-update { key "rndc-key"; };')
            if zone.secondaries_notify and self._notify_targets:
                targets = " ".join(f"{a} port {p};" for a, p in self._notify_targets)
                lines.append("  notify explicit;")
                lines.append(f"  also-notify {{ {targets} }};")
            else:
                # The zone's own NS names point at 127.0.0.1:53, which is nobody of ours.
                lines.append("  notify no;")
        lines.append("};\n")
        return "\n".join(lines)

    def add_also_notify(self, address: str, port: int) -> None:
        """Send NOTIFY for every zone to a secondary at ``address:port`` from now on."""
        if (address, port) in self._notify_targets:
            return
        self._notify_targets.append((address, port))
        if self.running():
            self._write_configs()
            self.rndc("reconfig")

    # --- operations used by tests ----------------------------------------------------------

    def zone_file(self, zone: str) -> Path:
        return self.workdir / "zones" / f"db.{zone.rstrip('.')}"

    def rndc(self, *args: str) -> str:
        """Run ``rndc ARGS`` against this instance; raise with named's log on failure."""
        return run_tool([*self.rndc_argv, *args], what="rndc", log=self.log_text)

    def query(
        self, name: str, rdtype: str, *, dnssec: bool = True, timeout: float = 3.0
    ) -> dns.message.Message:
        return dns_query(self.address, self.port, name, rdtype, dnssec=dnssec, timeout=timeout)

    def raw_serial(self, zone: str) -> int:
        """The serial of the unsigned zone as named holds it (``rndc zonestatus``)."""
        for line in self.rndc("zonestatus", zone.rstrip(".")).splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "serial":
                return int(value)
        raise RuntimeError(f"rndc zonestatus {zone} shows no serial")

    def file_serial(self, zone: str) -> int:
        """The SOA serial written in the unsigned zone file right now."""
        origin = zone.rstrip(".") + "."
        parsed = dns.zone.from_text(
            self.zone_file(zone).read_text(), origin=origin, relativize=False, check_origin=False
        )
        soa = parsed.find_rdataset(origin, dns.rdatatype.SOA)[0]
        assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
        return int(soa.serial)

    def freeze(self, zone: str, timeout: float = 5.0) -> None:
        """``rndc freeze`` and wait until the journal really is in the zone file.

        rndc returns before named has finished dumping the zone; an edit made in that window
        is overwritten by the dump (seen about once in ten runs).
        """
        self.rndc("freeze", zone.rstrip("."))
        if not wait_for(lambda: self.file_serial(zone) == self.raw_serial(zone), timeout):
            raise RuntimeError(
                f"{zone}: file serial {self.file_serial(zone)} never reached "
                f"{self.raw_serial(zone)} after freeze\n{self.log_text()[-3000:]}"
            )

    def thaw(self, zone: str) -> None:
        self.rndc("thaw", zone.rstrip("."))

    def soa_serial(self, zone: str) -> int:
        response = self.query(zone, "SOA", dnssec=False)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                rdata = rrset[0]
                assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
                return int(rdata.serial)
        raise RuntimeError(f"no SOA for {zone} from {self.address}:{self.port}: {response}")

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        return wait_for(predicate, timeout)

    def write_zone_text(self, zone: str, text: str) -> Path:
        """Replace the unsigned file, making sure its mtime moves forward.

        ``rndc reload`` answers "up to date" and keeps the old data when the file's mtime is not
        newer than at the last load, which happens when a test edits within the same second.
        """
        path = self.zone_file(zone)
        before = path.stat().st_mtime if path.exists() else 0.0
        path.write_text(text)
        stamp = max(time.time(), before + 1.0)
        os.utime(path, (stamp, stamp))
        return path

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _stderr_text(self) -> str:
        try:
            return (self.workdir / "named.stderr").read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _has_type(response: dns.message.Message, rdtype: dns.rdatatype.RdataType) -> bool:
    return any(rrset.rdtype == rdtype for rrset in response.answer)


def _has_rrsig(response: dns.message.Message, covered: dns.rdatatype.RdataType) -> bool:
    return any(
        rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == covered for rrset in response.answer
    )
