"""Real Dovecot instances on loopback, serving IMAP over implicit TLS only.

Each instance reads a private dovecot.conf and keeps its sockets, PID file and state in its own
directory, so tests can run side by side and reload "their" Dovecot the way the product does
(``doveadm -c CONF reload``): doveadm finds the running master through the ``base_dir`` of the
configuration it is given, never through the system's /etc/dovecot.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from certbot_dane_tlsa.lab.ports import free_port, release
from certbot_dane_tlsa.lab.processes import terminate

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0
_COMMAND_TIMEOUT = 30.0
# The users Debian's dovecot-core creates: internal processes run as the first, login
# processes (which face the network before authentication) as the second.
INTERNAL_USER = "dovecot"
LOGIN_USER = "dovenull"


class DovecotError(RuntimeError):
    """Dovecot refused to start, stop or reload; the message carries what it printed."""


def make_run_dir() -> Path:
    """A directory for base_dir, state_dir and the log that Dovecot's users can traverse.

    pytest's tmp_path lives under /tmp/pytest-of-root (mode 0700); login processes that run
    as dovenull, chrooted into base_dir/login, and the anvil and stats processes running as
    dovecot would be unable to reach their sockets there. The caller removes it with
    ``shutil.rmtree``.
    """
    run_dir = Path(tempfile.mkdtemp(prefix="cdt-dovecot-"))
    run_dir.chmod(0o755)
    return run_dir


def write_config(
    path: Path,
    *,
    run_dir: Path,
    hostname: str,
    address: str,
    port: int,
    key: Path,
    fullchain: Path,
) -> Path:
    """Writes a self-contained dovecot.conf (nothing from /etc/dovecot) and returns its path."""
    home = run_dir / "home"
    home.mkdir(exist_ok=True)
    text = f"""\
# Written by the certbot-dane-tlsa test lab; removed with the test.
base_dir = {run_dir / "base"}
state_dir = {run_dir / "state"}
log_path = {run_dir / "dovecot.log"}
instance_name = cdt-dovecot-{port}
hostname = {hostname}
protocols = imap
listen = {address}
default_internal_user = {INTERNAL_USER}
default_login_user = {LOGIN_USER}
ssl = required
ssl_cert = <{fullchain}
ssl_key = <{key}
mail_location = maildir:~/Maildir
# Nobody logs in; Dovecot merely refuses to start without a passdb and a userdb.
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={INTERNAL_USER} gid={INTERNAL_USER} home={home}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
"""
    path.write_text(text)
    return path


def presented_certificate(address: str, port: int, timeout: float = 10.0) -> bytes:
    """DER of the leaf certificate presented on an implicit-TLS port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # callers compare the bytes themselves
    with (
        socket.create_connection((address, port), timeout=timeout) as sock,
        context.wrap_socket(sock) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        if der is None:
            raise DovecotError(f"{address}:{port} presented no certificate")
        return der


class DovecotInstance:
    """One Dovecot master with its own config, base_dir and imaps port on loopback."""

    def __init__(
        self,
        workdir: Path,
        *,
        hostname: str,
        key: Path,
        fullchain: Path,
        port: int | None = None,
        address: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.hostname = hostname
        self.key = key
        self.fullchain = fullchain
        self.address = address
        self._own_port = port is None
        self.port = port if port is not None else free_port(address)
        self.run_dir: Path | None = None
        self._config_path: Path | None = None
        self._started = False

    @property
    def config_path(self) -> Path:
        if self._config_path is None:
            raise DovecotError("Dovecot instance has no configuration before start()")
        return self._config_path

    @property
    def log_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "dovecot.log"

    @property
    def master_pid(self) -> int | None:
        if self.run_dir is None:
            return None
        try:
            return int((self.run_dir / "base" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def doveadm_argv(self, *args: str) -> list[str]:
        return ["doveadm", "-c", str(self.config_path), *args]

    def _log_tail(self, lines: int = 30) -> str:
        try:
            path = self.log_path
            if path is None:
                return "(no log)"
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _run(self, argv: list[str]) -> str:
        # Output goes to a file, not a pipe: the master that `dovecot` leaves behind inherits
        # stdout and stderr, so reading a pipe to its end would wait for the master to exit.
        with tempfile.TemporaryFile() as out:
            returncode = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=_COMMAND_TIMEOUT,
            ).returncode
            out.seek(0)
            output = out.read().decode(errors="replace").strip()
        if returncode != 0:
            raise DovecotError(
                f"{' '.join(argv)} exited {returncode}:\n{output}\n--- log ---\n{self._log_tail()}"
            )
        return output

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run_dir = make_run_dir()
        try:
            # The config sits with the run directory: the config process reads it as root, but
            # keeping it out of tmp_path means nothing depends on who may enter that.
            self._config_path = write_config(
                self.run_dir / "dovecot.conf",
                run_dir=self.run_dir,
                hostname=self.hostname,
                address=self.address,
                port=self.port,
                key=self.key,
                fullchain=self.fullchain,
            )
            # `dovecot` forks into the background and returns once the master is listening,
            # or exits non-zero with the reason (config errors, a taken port) on stderr.
            # Counted as started before it returns: a master may be left behind even when the
            # command fails or times out, and stop() then finds it by its PID file.
            self._started = True
            self._run(["dovecot", "-c", str(self.config_path)])
            self._wait_for_tls()
        except BaseException:
            self.stop()
            raise

    def _wait_for_tls(self) -> None:
        """Fails a start whose TLS setup is unusable, which Dovecot only finds per connection."""
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                presented_certificate(self.address, self.port)
                return
            except (OSError, DovecotError) as exc:
                if time.monotonic() > deadline:
                    raise DovecotError(
                        f"{self.address}:{self.port} offers no working TLS ({exc}):\n"
                        f"{self._log_tail()}"
                    ) from exc
                time.sleep(0.05)

    def reload(self) -> None:
        self._run(self.doveadm_argv("reload"))

    def wait_until_presented(self, expected_der: bytes, timeout: float = 15.0) -> None:
        """Waits until new connections get ``expected_der``; a reload only signals the master."""
        deadline = time.monotonic() + timeout
        while presented_certificate(self.address, self.port) != expected_der:
            if time.monotonic() > deadline:
                raise DovecotError(f"{self.address}:{self.port} still presents another certificate")
            time.sleep(0.1)

    def stop(self) -> None:
        try:
            if self._started:
                self._stop_master()
        finally:
            self._started = False
            if self._own_port:
                release(self.address, self.port)
                self._own_port = False
            if self.run_dir is not None:
                shutil.rmtree(self.run_dir, ignore_errors=True)
                self.run_dir = None

    def _stop_master(self) -> None:
        pid = self.master_pid
        if pid is None:
            # No PID file (yet): let doveadm find the master through base_dir, if there is one.
            with contextlib.suppress(DovecotError, OSError, subprocess.TimeoutExpired):
                self._run(self.doveadm_argv("stop"))
            return
        # SIGTERM to the PID it wrote is what `doveadm stop` sends too, but doveadm then polls
        # in whole seconds (about 2.8 s per stop here against 1.1 s); the children follow it.
        terminate(pid, _STOP_TIMEOUT)
