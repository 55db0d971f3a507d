"""Pebble (the ACME test server) and a real certbot bound to it, for tests that need real issuance.

Pebble validates nothing when ``PEBBLE_VA_ALWAYS_VALID=1`` is set, so certbot can obtain
certificates for any name without DNS or an HTTP listener; each test gets its own Pebble on free
loopback ports and its own certbot directories, so tests never share ACME state.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from certbot_dane_tlsa.lab.ports import free_port, release

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0
_CERTBOT_TIMEOUT = 120.0
_NO_SLEEP = "--no-random-sleep-on-renew"


class ServiceError(RuntimeError):
    """A real service did not start or a real tool failed; the message carries its own output."""


def _run(argv: Sequence[str], *, cwd: Path | None = None) -> None:
    result = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = _STOP_TIMEOUT) -> None:
    """Ends one child we started, by its PID: SIGTERM first, SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class Pebble:
    """One Pebble process with a private TLS identity, so its CA can be trusted per test only."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ca_bundle = workdir / "pebble-ca.pem"
        self.log_path = workdir / "pebble.log"
        self.config_path = workdir / "pebble.json"
        self.port = 0
        self.management_port = 0
        self.directory_url = ""
        self.management_url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._ports: list[int] = []

    def _port(self) -> int:
        port = free_port()
        self._ports.append(port)
        return port

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _make_tls_identity(self) -> tuple[Path, Path]:
        ca_key = self.workdir / "pebble-ca.key"
        srv_key = self.workdir / "pebble-srv.key"
        srv_csr = self.workdir / "pebble-srv.csr"
        srv_cert = self.workdir / "pebble-srv.pem"
        ext = self.workdir / "pebble-srv.ext"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _run(
            [
                "openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out",
                str(self.ca_bundle), "-days", "7", "-subj", "/CN=certbot-dane-tlsa test pebble CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]
        )  # fmt: skip
        _run(
            ["openssl", "req", *ec, "-keyout", str(srv_key), "-out", str(srv_csr),
             "-subj", "/CN=localhost"]
        )  # fmt: skip
        ext.write_text(
            "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
            "extendedKeyUsage = serverAuth\n"
            "basicConstraints = critical, CA:FALSE\n"
        )
        _run(
            [
                "openssl", "x509", "-req", "-in", str(srv_csr), "-CA", str(self.ca_bundle),
                "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(srv_cert), "-days", "7",
                "-extfile", str(ext),
            ],
            cwd=self.workdir,
        )  # fmt: skip
        return srv_cert, srv_key

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert, key = self._make_tls_identity()
        self.port = self._port()
        self.management_port = self._port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                # Unused while the VA always answers "valid", but pebble insists on them.
                "httpPort": self._port(),
                "tlsPort": self._port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        self.config_path.write_text(json.dumps(config, indent=2))
        self.directory_url = f"https://127.0.0.1:{self.port}/dir"
        self.management_url = f"https://127.0.0.1:{self.management_port}"
        env = dict(os.environ)
        env.update(PEBBLE_VA_ALWAYS_VALID="1", PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                ["pebble", "-config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        if not url.startswith("https://127."):
            raise ServiceError(f"refusing to fetch {url}: the lab only talks to loopback")
        with urllib.request.urlopen(url, context=context, timeout=5) as response:  # noqa: S310
            body: bytes = response.read()
            return body

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        last_error = ""
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ServiceError(
                    f"pebble exited with {self._proc.returncode}:\n{_tail(self.log_path)}"
                )
            try:
                json.loads(self._get(self.directory_url))
                return
            except (OSError, urllib.error.URLError, ValueError) as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise ServiceError(f"pebble not ready ({last_error}):\n{_tail(self.log_path)}")

    def issuing_root_pem(self) -> str:
        """The root Pebble signs certificates with; it is random per process (for 2 x x TLSA)."""
        return self._get(f"{self.management_url}/roots/0").decode()

    def stop(self) -> None:
        stop_process(self._proc)
        for port in self._ports:
            release("127.0.0.1", port)
        self._ports.clear()


class CertbotError(ServiceError):
    """certbot exited non-zero; the message holds its stderr and the end of its log."""


class Certbot:
    """Runs the real certbot CLI against one Pebble, with directories no other test touches."""

    def __init__(self, pebble: Pebble, workdir: Path) -> None:
        self.pebble = pebble
        self.workdir = workdir
        self.config_dir = workdir / "config"
        self.work_dir = workdir / "work"
        self.logs_dir = workdir / "logs"
        for directory in (self.config_dir, self.work_dir, self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["REQUESTS_CA_BUNDLE"] = str(self.pebble.ca_bundle)
        # certbot (and plugins installed beside it) must come from the interpreter running pytest,
        # not from whatever a pyenv shim or the system would pick.
        # sysconfig's "scripts" is where pip put them, for a venv and a pyenv version alike.
        bin_dir = sysconfig.get_path("scripts")
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
        return env

    def base_args(self) -> list[str]:
        return [
            "certbot",
            "--server", self.pebble.directory_url,
            "--config-dir", str(self.config_dir),
            "--work-dir", str(self.work_dir),
            "--logs-dir", str(self.logs_dir),
            "--non-interactive",
            "--agree-tos",
            "--register-unsafely-without-email",
        ]  # fmt: skip

    def run(
        self, *args: str, check: bool = True, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = self.env()
        if extra_env:
            env.update(extra_env)
        argv = [*self.base_args(), *args]
        if args and args[0] == "renew" and _NO_SLEEP not in args:
            # Without a tty, `certbot renew` first sleeps a random time of up to 8 minutes.
            argv.append(_NO_SLEEP)
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, env=env, check=False, timeout=_CERTBOT_TIMEOUT
            )
        except subprocess.TimeoutExpired as exc:
            raise CertbotError(
                f"certbot {' '.join(args)} still running after {_CERTBOT_TIMEOUT:.0f} s\n"
                f"--- letsencrypt.log (tail) ---\n{_tail(self.logs_dir / 'letsencrypt.log')}"
            ) from exc
        if check and result.returncode != 0:
            raise CertbotError(
                f"certbot {' '.join(args)} exited {result.returncode}\n"
                f"--- stderr ---\n{result.stderr.strip()}\n"
                f"--- letsencrypt.log (tail) ---\n{_tail(self.logs_dir / 'letsencrypt.log')}"
            )
        return result

    def certonly(self, *domains: str, extra: Sequence[str] = ()) -> Path:
        """Issues without DNS or HTTP: the manual hook does nothing and Pebble accepts anyway."""
        if not domains:
            raise ValueError("certonly needs at least one domain")
        domain_args = [arg for domain in domains for arg in ("-d", domain)]
        self.run(
            "certonly",
            "--preferred-challenges", "dns",
            "-a", "manual",
            "--manual-auth-hook", "/bin/true",
            *domain_args,
            *extra,
        )  # fmt: skip
        return self.live_dir(_cert_name(domains, extra))

    def renew(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """``certbot renew --force-renewal``: every lineage in config_dir gets a new version."""
        return self.run("renew", "--force-renewal", *extra)

    def live_dir(self, name: str) -> Path:
        return self.config_dir / "live" / name

    def archive_dir(self, name: str) -> Path:
        return self.config_dir / "archive" / name

    def renewal_conf(self, name: str) -> Path:
        return self.config_dir / "renewal" / f"{name}.conf"


def _cert_name(domains: Sequence[str], extra: Sequence[str]) -> str:
    items = list(extra)
    for index, item in enumerate(items):
        if item == "--cert-name" and index + 1 < len(items):
            return items[index + 1]
        if item.startswith("--cert-name="):
            return item.split("=", 1)[1]
    return domains[0]
