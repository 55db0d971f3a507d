"""Real Postfix instances on loopback, and posttls-finger pointed at a test resolver.

Each instance has a private config directory, queue and port, so tests can run side by side and
reload "their" Postfix the way the product does (``postfix -c DIR reload``). Postfix only accepts
a ``-c DIR`` that the default ``/etc/postfix/main.cf`` lists in ``alternate_config_directories``,
so registering and unregistering that entry (under a lock, keeping other entries) is part of the
life cycle here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from certbot_dane_tlsa.lab.ports import free_port, release
from certbot_dane_tlsa.lab.processes import terminate

DEFAULT_CONFIG_DIR = Path("/etc/postfix")
_PARAM = "alternate_config_directories"
_MARKER = "# created by the certbot-dane-tlsa test services; removed when its last entry goes"
_LOCK_PATH = Path(tempfile.gettempdir()) / "certbot-dane-tlsa-postfix-main-cf.lock"
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


class PostfixError(RuntimeError):
    """Postfix refused to start, stop or reload; the message carries what it printed."""


def backdate(path: Path, seconds: float = 60.0) -> None:
    """Moves a config file's mtime into the past.

    Postfix programs (postconf, postfix, master) that read a main.cf or master.cf modified within
    the last second or so sleep until it is older, costing about 2 s per start or edit; a test
    writing those files itself knows they are complete.
    """
    then = time.time() - seconds
    os.utime(path, (then, then))


# --- alternate_config_directories in the default main.cf -------------------------------------


@contextlib.contextmanager
def _main_cf_lock() -> Iterator[None]:
    with _LOCK_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postconf(*args: str) -> str:
    result = subprocess.run(
        ["postconf", "-c", str(DEFAULT_CONFIG_DIR), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PostfixError(f"postconf {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def registered_config_dirs() -> list[str]:
    """The raw entries of alternate_config_directories in the default main.cf (unexpanded)."""
    if not (DEFAULT_CONFIG_DIR / "main.cf").exists():
        return []
    raw = _postconf("-nh", _PARAM)
    return [item for item in raw.replace(",", " ").split() if item]


def register_config_dir(config_dir: Path) -> None:
    """Lets ``postfix -c config_dir`` run; idempotent, other entries are kept."""
    main_cf = DEFAULT_CONFIG_DIR / "main.cf"
    with _main_cf_lock():
        if not main_cf.exists():
            # Debian installs no main.cf with "No configuration"; one with only our entries is
            # removed again by unregister_config_dir.
            main_cf.write_text(f"{_MARKER}\ncompatibility_level = 3.6\n")
            backdate(main_cf)
        entries = registered_config_dirs()
        if str(config_dir) not in entries:
            _postconf("-e", f"{_PARAM} = {' '.join([*entries, str(config_dir)])}")
        backdate(main_cf)


def unregister_config_dir(config_dir: Path) -> None:
    main_cf = DEFAULT_CONFIG_DIR / "main.cf"
    with _main_cf_lock():
        if not main_cf.exists():
            return
        entries = registered_config_dirs()
        remaining = [entry for entry in entries if entry != str(config_dir)]
        if remaining != entries:
            if remaining:
                _postconf("-e", f"{_PARAM} = {' '.join(remaining)}")
            else:
                _postconf("-X", _PARAM)
            backdate(main_cf)
        if not remaining and main_cf.read_text().startswith(_MARKER):
            # `postconf -c DIR -n` also reports config_directory, which is not in the file.
            left = {
                line
                for line in _postconf("-n").splitlines()
                if not line.startswith("config_directory =")
            }
            if left <= {"compatibility_level = 3.6"}:
                main_cf.unlink()


# --- configuration files ---------------------------------------------------------------------


def _master_cf(address: str, port: int) -> str:
    """The packaged master.cf with smtpd on address:port and no chroot anywhere.

    Debian's master.cf chroots most services into the queue directory, which would need copies
    of /etc/resolv.conf and friends there; a test instance has no use for that.
    """
    lines = []
    for line in (DEFAULT_CONFIG_DIR / "master.cf").read_text().splitlines():
        fields = line.split()
        if line and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"{address}:{port}"
            fields[4] = "n"
            line = "  ".join(fields)
        lines.append(line)
    return "\n".join(lines) + "\n"


def make_data_dir() -> Path:
    """A data_directory the postfix user can reach, outside the test's tmp_path.

    The master opens ``data_directory/master.lock`` as the postfix user, and pytest's tmp_path
    lives under /tmp/pytest-of-root (mode 0700), so a data directory there fails with
    "open lock file ...: Permission denied". The caller removes it with ``shutil.rmtree``.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="cdt-postfix-data-"))
    data_dir.chmod(0o700)
    # Postfix refuses a data_directory it does not own.
    shutil.chown(data_dir, user="postfix", group="postfix")
    return data_dir


def write_config(
    workdir: Path,
    *,
    hostname: str,
    address: str,
    port: int,
    key: Path,
    fullchain: Path,
    data_dir: Path,
) -> Path:
    """Writes conf/ and queue/ under workdir and returns the config directory."""
    config_dir = workdir / "conf"
    queue_dir = workdir / "queue"
    for directory in (config_dir, queue_dir):
        directory.mkdir(parents=True, exist_ok=True)
    main_cf = {
        "compatibility_level": "3.6",
        "inet_interfaces": address,
        "inet_protocols": "ipv4",
        "myhostname": hostname,
        "mydestination": "",
        "mynetworks": "127.0.0.0/8",
        "relayhost": "",
        # No /etc/aliases.db here, and NIS lookups only add warnings to the log.
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "queue_directory": str(queue_dir),
        "data_directory": str(data_dir),
        "maillog_file": str(workdir / "maillog"),
        "maillog_file_prefixes": str(workdir),
        "syslog_name": f"postfix-test-{port}",
        "smtpd_tls_chain_files": f"{key}, {fullchain}",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_loglevel": "1",
        "smtp_tls_security_level": "may",
        "smtpd_banner": "$myhostname ESMTP",
    }
    (config_dir / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main_cf.items()))
    (config_dir / "master.cf").write_text(_master_cf(address, port))
    backdate(config_dir / "main.cf")
    backdate(config_dir / "master.cf")
    return config_dir


# --- running postfix -------------------------------------------------------------------------


def run_with_tty(argv: Sequence[str], timeout: float = 60.0) -> tuple[int, str]:
    """Runs argv with a pseudo-terminal as stdout/stderr and returns (status, output).

    Postfix prints its fatal errors only to syslog unless stderr is a terminal; this box has no
    syslog, so without a tty a failed ``postfix start`` would say nothing at all.
    """
    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary
        )
    finally:
        os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            exited = proc.poll() is not None
            # The daemon postfix leaves behind may keep the terminal open: never wait for EOF
            # once the command itself has exited, just drain what is already there.
            ready, _, _ = select.select([primary], [], [], 0 if exited else 0.05)
            if ready:
                try:
                    data = os.read(primary, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    data = b""
                if data:
                    chunks.append(data)
                    continue
                if not exited:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                break
            if exited:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise PostfixError(f"{argv[0]} still running after {timeout:.0f} s")
    finally:
        os.close(primary)
    status = proc.wait()
    return status, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def wait_for_port(address: str, port: int, timeout: float = _START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def presented_certificate(address: str, port: int, timeout: float = 10.0) -> bytes:
    """DER of the leaf certificate an SMTP server presents after EHLO + STARTTLS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # callers compare the bytes themselves
    with smtplib.SMTP(address, port, timeout=timeout) as client:
        client.ehlo("client.example.test")
        if not client.has_extn("starttls"):
            raise PostfixError(f"{address}:{port} does not offer STARTTLS")
        client.starttls(context=context)
        sock = client.sock
        assert isinstance(sock, ssl.SSLSocket)
        der = sock.getpeercert(binary_form=True)
        assert der is not None
        return der


def wait_until_presented(
    address: str, port: int, expected_der: bytes, timeout: float = 15.0
) -> None:
    """Waits until new connections get ``expected_der``.

    ``postfix reload`` only signals the master and returns at once; an idle smtpd of the old
    generation can still take the next connection (with the old key) for a moment, more so on a
    busy machine. Asserting right after a reload is a race.
    """
    deadline = time.monotonic() + timeout
    while True:
        presented = presented_certificate(address, port)
        if presented == expected_der:
            return
        if time.monotonic() > deadline:
            raise PostfixError(f"{address}:{port} still presents another certificate")
        time.sleep(0.1)


def check_starttls(address: str, port: int, maillog: Path) -> None:
    """Fails a start whose TLS files are unusable.

    smtpd reads the key and chain only when a connection comes in, and then merely drops
    STARTTLS with a warning in the log, so `postfix start` succeeds with missing or mismatched
    files; a test would only notice much later.
    """
    try:
        presented_certificate(address, port)
    except (PostfixError, OSError, smtplib.SMTPException) as exc:
        try:
            log = "\n".join(maillog.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            log = "(no maillog)"
        raise PostfixError(f"{address}:{port} offers no working STARTTLS ({exc}):\n{log}") from exc


class _Configurable(Protocol):
    workdir: Path
    hostname: str
    address: str
    port: int
    key: Path
    fullchain: Path
    config_dir: Path


def configure(instance: _Configurable, data_dir: Path) -> None:
    """Write a Postfix instance's private config and make the default main.cf accept it."""
    write_config(
        instance.workdir,
        hostname=instance.hostname,
        address=instance.address,
        port=instance.port,
        key=instance.key,
        fullchain=instance.fullchain,
        data_dir=data_dir,
    )
    register_config_dir(instance.config_dir)


class PostfixInstance:
    """One Postfix master with its own config directory, queue and smtpd port on loopback."""

    def __init__(
        self,
        workdir: Path,
        *,
        hostname: str,
        port: int | None = None,
        address: str = "127.0.0.1",
        key: Path,
        fullchain: Path,
    ) -> None:
        self.workdir = workdir
        self.hostname = hostname
        self.address = address
        self._own_port = port is None
        self.port = port if port is not None else free_port(address)
        self.key = key
        self.fullchain = fullchain
        self.config_dir = workdir / "conf"
        self.queue_dir = workdir / "queue"
        self.maillog = workdir / "maillog"
        self.data_dir: Path | None = None
        self._registered = False
        self._started = False

    def postfix_argv(self, *args: str) -> list[str]:
        return ["postfix", "-c", str(self.config_dir), *args]

    @property
    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _postfix(self, *args: str) -> str:
        status, output = run_with_tty(self.postfix_argv(*args))
        if status != 0:
            raise PostfixError(
                f"postfix -c {self.config_dir} {' '.join(args)} exited {status}:\n{output}"
                f"\n--- maillog ---\n{self._maillog_tail()}"
            )
        return output

    def _maillog_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.maillog.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no maillog)"

    def start(self) -> None:
        self.data_dir = make_data_dir()
        try:
            configure(self, self.data_dir)
            self._registered = True
            self._postfix("start")
            self._started = True
            wait_for_port(self.address, self.port)
            check_starttls(self.address, self.port, self.maillog)
        except BaseException:
            self.stop()
            raise

    def reload(self) -> None:
        self._postfix("reload")

    def stop(self) -> None:
        try:
            if self._started:
                self._stop_master()
        finally:
            self._started = False
            if self._registered:
                unregister_config_dir(self.config_dir)
                self._registered = False
            if self._own_port:
                release(self.address, self.port)
            if self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.data_dir = None

    def _stop_master(self) -> None:
        pid = self.master_pid
        if pid is None:
            with contextlib.suppress(PostfixError):
                self._postfix("stop")
            return
        # SIGTERM is what `postfix stop` sends too, but postfix-script then polls in 1 s steps.
        terminate(pid, _STOP_TIMEOUT)


# --- posttls-finger with its own resolver ----------------------------------------------------


# Runs inside the private mount namespace: bind the file over /etc/resolv.conf, then become the
# command. A fixed program text; the paths and the command arrive as argv, never interpolated.
_BIND_RESOLV_CONF_AND_EXEC = """\
import os, subprocess, sys
subprocess.run(["mount", "--bind", sys.argv[1], "/etc/resolv.conf"], check=True)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def with_resolver_argv(resolv_conf: Path, *argv: str) -> list[str]:
    """argv that runs ``argv`` with ``resolv_conf`` bound over /etc/resolv.conf, for it alone.

    The override lives in a private mount namespace (``unshare --mount``), so the host and every
    other process keep their resolver, and nothing needs a shell.
    """
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        sys.executable, "-I", "-c", _BIND_RESOLV_CONF_AND_EXEC, str(resolv_conf), *argv,
    ]  # fmt: skip


def posttls_finger(
    target: str,
    *,
    resolver: str,
    extra: Sequence[str] = ("-c", "-l", "dane", "-L", "summary"),
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Runs posttls-finger as if /etc/resolv.conf said ``nameserver <resolver>``.

    ``target`` is posttls-finger's destination, e.g. ``"[mx.example.test]:2525"``; with a port
    other than 25 it looks up ``_2525._tcp.mx.example.test`` TLSA.
    """
    with tempfile.TemporaryDirectory(prefix="posttls-finger-") as tmp:
        resolv_conf = Path(tmp) / "resolv.conf"
        resolv_conf.write_text(f"nameserver {resolver}\n")
        argv = with_resolver_argv(resolv_conf, "posttls-finger", *extra, target)
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
