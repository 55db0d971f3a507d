"""A real validating unbound on loopback that trusts our test zones' own keys.

The test zones are not delegated from the root, so the chain of trust starts at each signed
zone: its current KSK/CSK, fetched from named at start, is a trust anchor, and a stub-zone sends
the zone's queries to that named. Port 53 by default, on a 127.0.0.x address of its own, because
``posttls-finger`` finds its resolver through ``/etc/resolv.conf``, which has no port field.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY

from certbot_dane_tlsa.lab import ports
from certbot_dane_tlsa.lab.named import DaemonProcess, NamedServer, dns_query, run_tool, wait_for

# TLDs that unbound answers locally (NXDOMAIN) unless told "nodefault" (RFC 6761 names).
_LOCAL_DEFAULT_TLDS = {"test", "invalid", "onion", "localhost", "home.arpa", "resolver.arpa"}


class UnboundResolver:
    """``address=None`` picks the lowest free 127.0.0.x (x >= 2) where ``port`` is free."""

    def __init__(
        self,
        workdir: Path,
        stubs: list[tuple[str, NamedServer]],
        *,
        address: str | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.stubs = [(zone.rstrip("."), server) for zone, server in stubs]
        self.port = 53 if port is None else port
        if address is None:
            self.address = ports.free_address(self.port)
        else:
            if not ports.claim(address, self.port):
                raise RuntimeError(f"{address}:{self.port} is in use or claimed by another test")
            self.address = address
        self.conf_path = self.workdir / "unbound.conf"
        self.log_path = self.workdir / "unbound.log"
        self.ta_path = self.workdir / "ta.txt"
        # The control socket path must fit in sun_path (108 bytes); pytest's tmp_path may not.
        self._ctl_dir = Path(tempfile.mkdtemp(prefix="ubctl-"))
        self.control_argv = ["unbound-control", "-c", str(self.conf_path)]
        self._daemon: DaemonProcess | None = None

    def start(self, timeout: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_trust_anchors()
        self.conf_path.write_text(self._conf())
        run_tool(["unbound-checkconf", str(self.conf_path)], what="unbound-checkconf")
        self._daemon = DaemonProcess(
            ["unbound", "-d", "-c", str(self.conf_path)], self.workdir / "unbound.stderr"
        )
        self._daemon.start()
        daemon = self._daemon
        ready = wait_for(lambda: not daemon.running() or self._ready(), timeout)
        alive = daemon.running()
        if not (ready and alive):
            self.stop()
            state = "is not answering" if alive else "exited"
            raise RuntimeError(
                f"unbound on {self.address}:{self.port} {state} after {timeout}s;\n"
                f"--- stderr ---\n{self._read(self.workdir / 'unbound.stderr')[-3000:]}\n"
                f"--- log ---\n{self.log_text()[-5000:]}"
            )

    def stop(self) -> None:
        """Stop unbound and give its address back; safe to call twice."""
        self._halt()
        ports.release(self.address, self.port)
        shutil.rmtree(self._ctl_dir, ignore_errors=True)

    def restart(self) -> None:
        """A fresh process: empty caches and trust anchors re-read from named."""
        self._halt()
        self._ctl_dir.mkdir(exist_ok=True)
        self.start()

    def _halt(self) -> None:
        if self._daemon is not None:
            self._daemon.stop()
            self._daemon = None

    @property
    def pid(self) -> int | None:
        return self._daemon.pid if self._daemon else None

    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running()

    def flush(self) -> None:
        """Forget every cached answer, key and server fact, without a restart."""
        for command in (
            ["flush_zone", "."],
            ["flush_bogus"],
            ["flush_negative"],
            ["flush_infra", "all"],
            ["flush_requestlist"],
        ):
            run_tool([*self.control_argv, *command], what="unbound-control", log=self.log_text)

    def query(self, name: str, rdtype: str, *, timeout: float = 5.0) -> dns.message.Message:
        """Recursive, with the DO bit: a validated answer has the AD flag."""
        return dns_query(
            self.address, self.port, name, rdtype, dnssec=True, recursive=True, timeout=timeout
        )

    def log_text(self) -> str:
        return self._read(self.log_path)

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _ready(self) -> bool:
        done = subprocess.run(
            [*self.control_argv, "status"], capture_output=True, timeout=10, check=False
        )
        if done.returncode != 0:
            return False
        zone = self.stubs[0][0] if self.stubs else "."
        self.query(zone, "SOA", timeout=1.0)
        return True

    def _write_trust_anchors(self) -> None:
        lines: list[str] = []
        for zone, server in self.stubs:
            spec = next((z for z in server.zones if z.origin == zone), None)
            if spec is None or not spec.signed:
                continue
            response = server.query(zone, "DNSKEY", dnssec=False)
            for rrset in response.answer:
                if rrset.rdtype != dns.rdatatype.DNSKEY:
                    continue
                for rdata in rrset:
                    assert isinstance(rdata, dns.rdtypes.ANY.DNSKEY.DNSKEY)
                    if rdata.flags & 0x0001:  # SEP: the KSK or CSK
                        lines.append(f"{zone}. {rrset.ttl} IN DNSKEY {rdata.to_text()}")
            if not any(line.startswith(f"{zone}. ") for line in lines):
                raise RuntimeError(f"{zone} is signed but named served no KSK: {response}")
        self.ta_path.write_text("".join(line + "\n" for line in lines))

    def _conf(self) -> str:
        w = self.workdir
        server = [
            f"  interface: {self.address}",
            f"  port: {self.port}",
            "  interface-automatic: no",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{w}"',
            f'  pidfile: "{w}/unbound.pid"',
            f'  logfile: "{self.log_path}"',
            "  use-syslog: no",
            "  log-time-ascii: yes",
            "  verbosity: 1",
            "  val-log-level: 2",
            "  log-servfail: yes",
            "  num-threads: 1",
            "  do-ip6: no",
            "  access-control: 127.0.0.0/8 allow",
            "  do-not-query-localhost: no",
            # Answers must come from named, fresh: no serve-expired, no prefetch surprises.
            "  prefetch: no",
            "  serve-expired: no",
            # Its "_ta-XXXX" key-tag queries only add noise to named's log.
            "  trust-anchor-signaling: no",
        ]
        if self.ta_path.read_text():
            server.append(f'  trust-anchor-file: "{self.ta_path}"')
        tlds = {
            tld
            for zone, _ in self.stubs
            for tld in _LOCAL_DEFAULT_TLDS
            if zone == tld or zone.endswith("." + tld)
        }
        server += [f'  local-zone: "{tld}." nodefault' for tld in sorted(tlds)]
        remote = [
            "  control-enable: yes",
            f'  control-interface: "{self._ctl_dir}/ctl.sock"',
            "  control-use-cert: no",
        ]
        stubs: list[str] = []
        for zone, named in self.stubs:
            stubs += [
                "stub-zone:",
                f'  name: "{zone}."',
                f"  stub-addr: {named.address}@{named.port}",
            ]
        return "\n".join(["server:", *server, "remote-control:", *remote, *stubs, ""])
