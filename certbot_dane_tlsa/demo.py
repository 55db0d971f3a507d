"""`certbot-dane-tlsa demo`: the whole job, for real, on a throwaway lab on loopback.

It starts BIND with an inline-signed zone, a validating unbound, Pebble (an ACME test server),
a real certbot with the `dane-tlsa` installer, and Postfix inside a podman container driven by
the docker CLI (or on the host when no container can run). Then it issues a certificate,
renews it, rolls the key over, and after each step shows what DNS serves and what Postfix's
own DANE verifier, posttls-finger, says. Everything it started is stopped again, also on
Ctrl-C. Nothing outside its temporary directory changes, except a line it adds to (and removes
from) Postfix's default main.cf, which Postfix needs in order to accept a private config dir.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

ZONE = "example.test"
HOST = "mx.example.test"
TTL = 4  # seconds: short, so that "wait 2 x TTL" takes seconds in the demo, not hours
ZONE_TEXT = f"""\
$TTL 60
@       IN SOA ns1.{ZONE}. hostmaster.{ZONE}. (
                1       ; serial
                3600    ; refresh
                600     ; retry
                86400   ; expire
                {TTL} )     ; negative TTL
        IN NS  ns1
ns1     IN A   127.0.0.1
mx      IN A   127.0.0.1
"""
NEEDED = ("named", "rndc", "unbound", "pebble", "certbot", "postfix", "posttls-finger")
VERIFIED = "Verified TLS connection established"


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


class Display:
    """Numbered steps with their duration, and indented facts under them."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = total
        self.number = 0

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.number += 1
        self.out.write(f"[{self.number}/{self.total}] {title} ...\n")
        self.out.flush()
        start = time.monotonic()
        try:
            yield
        except BaseException:
            self.out.write(f"      FAILED after {time.monotonic() - start:.1f} s\n")
            raise
        self.out.write(f"      done in {time.monotonic() - start:.1f} s\n")
        self.out.flush()

    def fact(self, text: str) -> None:
        for line in text.splitlines():
            self.out.write(f"      {line}\n")
        self.out.flush()

    def wait(self, seconds: float, why: str) -> None:
        """A visible countdown instead of a silent sleep."""
        end = time.monotonic() + seconds
        if not self.out.isatty():
            self.out.write(f"      waiting {seconds:.0f} s: {why}\n")
            self.out.flush()
            time.sleep(seconds)
            return
        while (left := end - time.monotonic()) > 0:
            self.out.write(f"\r      waiting {left:4.1f} s: {why} ")
            self.out.flush()
            time.sleep(min(0.2, left))
        self.out.write(f"\r      waited {seconds:.0f} s: {why}{' ' * 8}\n")


class Lab:
    """Everything the demo starts, stopped in reverse order by :meth:`close`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stops: list[Callable[[], None]] = []

    def started(self, stop: Callable[[], None]) -> None:
        self._stops.append(stop)

    def close(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                print(f"warning: while cleaning up: {exc}", file=sys.stderr)
        self._sweep()

    def _sweep(self, grace: float = 5.0) -> None:
        """Stop any process still working in the lab's directory.

        A Ctrl-C can land while a child (certbot, say) is being started, before anything
        holds its PID; every process of the lab names the lab's directory on its command
        line, so that is how the leftovers are found.
        """
        from certbot_dane_tlsa.lab.processes import pid_alive, processes_naming

        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = processes_naming(self.root)
            for pid in pids:
                with suppress(OSError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while pids and time.monotonic() < deadline:
                pids = [pid for pid in pids if pid_alive(pid)]
                time.sleep(0.1)
            if not pids:
                return


def _served(named: Any, owner: str) -> tuple[list[str], bool]:
    import dns.rdatatype

    response = named.query(owner, "TLSA")
    records: list[str] = []
    signed = False
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.TLSA:
            records += [f"{r.usage} {r.selector} {r.mtype} {r.cert.hex()}" for r in rrset]
        elif rrset.rdtype == dns.rdatatype.RRSIG:
            signed = signed or any(s.type_covered == dns.rdatatype.TLSA for s in rrset)
    return sorted(records), signed


def _show_dns(display: Display, named: Any, owner: str) -> list[str]:
    records, signed = _served(named, owner)
    display.fact(f"DNS serves {owner} TLSA ({'signed' if signed else 'NOT signed'}):")
    for record in records or ["(nothing)"]:
        display.fact(f"  {record[:24]}...{record[-8:]}" if len(record) > 40 else f"  {record}")
    return records


def _finger(display: Display, svc: Any, port: int) -> None:
    """posttls-finger through a validating resolver: Postfix's own, independent DANE check."""
    from certbot_dane_tlsa.lab.postfix import posttls_finger

    result = posttls_finger(f"[{HOST}]:{port}", resolver=svc.unbound.address)
    output = result.stdout + result.stderr
    verdict = [line for line in output.splitlines() if "TLS connection established" in line]
    summary = verdict[0].split(": ", 1)[-1].split(": TLS", 1)[0] if verdict else "no TLS"
    display.fact(f"posttls-finger: {summary}")
    if VERIFIED not in output:
        raise DemoError(f"posttls-finger did not verify the server:\n{output.strip()}")


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "certbot_dane_tlsa", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _check_prerequisites() -> None:
    # pip puts certbot beside this interpreter, which need not be on PATH (pyenv shims are
    # only made on a rehash): look there too, and let every child find it the same way.
    bin_dir = sysconfig.get_path("scripts")
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, path])
    missing = [name for name in NEEDED if shutil.which(name) is None]
    if missing:
        raise DemoError(
            f"missing programs: {', '.join(missing)}; ./scripts/demo installs them "
            "(Debian: bind9 unbound pebble postfix podman runc, and certbot from pip)"
        )
    if os.geteuid() != 0:
        raise DemoError("the demo runs named, Postfix and podman as root; run it as root")


class _Services:
    """Named attributes for what the steps share."""

    named: Any
    unbound: Any
    pebble: Any
    certbot: Any
    postfix: Any
    podman: Any
    in_container: bool


def _start_postfix(display: Display, lab: Lab, svc: _Services, live: Path, port: int) -> list[str]:
    """Postfix in a podman container if one can run here, else on the host.

    Returns the installer options that make the plugin reload it.
    """
    from certbot_dane_tlsa.lab.containers import PodmanDocker, PostfixContainer
    from certbot_dane_tlsa.lab.postfix import PostfixInstance

    key, fullchain = live / "privkey.pem", live / "fullchain.pem"
    if shutil.which("podman") and shutil.which("docker"):
        try:
            podman = PodmanDocker(lab.root / "podman")
            podman.start()
            lab.started(podman.stop)
            container = PostfixContainer(
                podman,
                lab.root / "postfix-container",
                name="dane-demo-mail",
                hostname=HOST,
                key=key,
                fullchain=fullchain,
                port=port,
                volumes=[(svc.certbot.config_dir, svc.certbot.config_dir)],
            )
            container.start()
            lab.started(container.stop)
            svc.postfix, svc.podman, svc.in_container = container, podman, True
            # The plugin runs inside certbot; both inherit the docker CLI's settings.
            os.environ.update(podman.docker_env)
            display.fact(f"Postfix runs in container {container.name}, port {container.port}")
            return [
                "--dane-tlsa-postfix-container", container.name,
                "--dane-tlsa-postfix-command", shlex.join(container.postfix_argv()),
            ]  # fmt: skip
        except Exception as exc:  # fall back to the host, and say why
            display.fact(f"no container runtime here ({exc}); using Postfix on the host")
    postfix = PostfixInstance(
        lab.root / "postfix", hostname=HOST, key=key, fullchain=fullchain, port=port
    )
    postfix.start()
    lab.started(postfix.stop)
    svc.postfix, svc.in_container = postfix, False
    display.fact(f"Postfix runs on the host, port {postfix.port}")
    return [
        "--dane-tlsa-postfix-reload", "true",
        "--dane-tlsa-postfix-command", shlex.join(postfix.postfix_argv()),
    ]  # fmt: skip


def run_demo(out: TextIO, *, workdir: Path | None = None, keep: bool = False) -> int:
    _check_prerequisites()
    root = Path(tempfile.mkdtemp(prefix="dane-demo-", dir=workdir))
    root.chmod(0o755)  # Postfix and named read from here
    lab = Lab(root)
    display = Display(out, total=8)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    out.write(f"certbot-dane-tlsa demo: everything lives in {root} and on 127.0.0.0/8\n\n")
    try:
        _walk(display, lab)
        out.write("\nThe demo is complete: every step was verified by DNS and posttls-finger.\n")
        return 0
    except KeyboardInterrupt:
        out.write("\ninterrupted: cleaning up\n")
        return 130
    except DemoError:
        raise
    except Exception as exc:  # a lab service failed: say which, as one line
        raise DemoError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        lab.close()
        signal.signal(signal.SIGTERM, previous)
        if keep:
            out.write(f"kept {root}\n")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _walk(display: Display, lab: Lab) -> None:
    from certbot_dane_tlsa.lab.named import NamedServer, ZoneSpec
    from certbot_dane_tlsa.lab.pebble import Certbot, Pebble
    from certbot_dane_tlsa.lab.unbound import UnboundResolver

    svc = _Services()
    with display.step("Starting BIND with an inline-signed zone, and a validating resolver"):
        svc.named = NamedServer(lab.root / "named", [ZoneSpec(ZONE, ZONE_TEXT)])
        svc.named.start()
        lab.started(svc.named.stop)
        svc.unbound = UnboundResolver(lab.root / "unbound", [(ZONE, svc.named)])
        svc.unbound.start()
        lab.started(svc.unbound.stop)
        display.fact(f"named on 127.0.0.1:{svc.named.port}, unbound on {svc.unbound.address}:53")

    with display.step("Starting Pebble, the ACME test server"):
        svc.pebble = Pebble(lab.root / "pebble")
        svc.pebble.start()
        lab.started(svc.pebble.stop)
        svc.certbot = Certbot(svc.pebble, lab.root / "certbot")
        # Our own commands run certbot too (rollover commit): they must trust Pebble as well.
        os.environ["REQUESTS_CA_BUNDLE"] = str(svc.pebble.ca_bundle)

    from certbot_dane_tlsa.lab.ports import free_port

    port = free_port()
    owner = f"_{port}._tcp.{HOST}."
    zone_file = svc.named.zone_file(ZONE)
    installer = [
        "-i", "dane-tlsa",
        "--dane-tlsa-zone", ZONE,
        "--dane-tlsa-zone-file", str(zone_file),
        "--dane-tlsa-rndc", shlex.join(svc.named.rndc_argv),
        "--dane-tlsa-nameservers", f"127.0.0.1:{svc.named.port}",
        "--dane-tlsa-ports", str(port),
        "--dane-tlsa-ttl", str(TTL),
        "--dane-tlsa-connect", "127.0.0.1",
        "--dane-tlsa-tls-check", "starttls-smtp",
    ]  # fmt: skip
    with display.step(f"certbot certonly -d {HOST} -i dane-tlsa --reuse-key"):
        live = svc.certbot.certonly(HOST, extra=[*installer, "--reuse-key"])
        _show_dns(display, svc.named, owner)

    with display.step("Starting Postfix with the new certificate"):
        reload_options = _start_postfix(display, lab, svc, live, port)
        _finger(display, svc, port)

    with display.step("certbot reconfigure: the plugin now also reloads Postfix"):
        svc.certbot.run("reconfigure", "--cert-name", HOST, *installer, *reload_options)
        display.fact("renewal/mx.example.test.conf now holds every dane_tlsa_* setting")

    with display.step("certbot renew --force-renewal (the key is reused)"):
        before = zone_file.read_bytes()
        svc.certbot.renew()
        same = zone_file.read_bytes() == before
        display.fact("zone file unchanged: same key, same record" if same else "zone changed")
        _show_dns(display, svc.named, owner)
        _finger(display, svc, port)

    with display.step("Key rollover: stage the next key, wait 2 x TTL, commit, prune"):
        _rollover(display, svc, owner, port)

    with display.step("certbot-dane-tlsa check (what monitoring runs)"):
        result = _tool("check", "--lineage", str(live))
        display.fact(f"exit {result.returncode}: {result.stdout.strip()}")
        if result.returncode != 0:
            raise DemoError(f"check failed: {result.stdout}{result.stderr}")


def _rollover(display: Display, svc: _Services, owner: str, port: int) -> None:
    dirs = [
        "--config-dir", str(svc.certbot.config_dir),
        "--work-dir", str(svc.certbot.work_dir),
        "--logs-dir", str(svc.certbot.logs_dir),
    ]  # fmt: skip
    env_ok = _tool("rollover", "--help").returncode == 0
    if not env_ok:
        display.fact("(this build has no rollover command; skipping)")
        return
    stage = _tool("rollover", "stage", "--cert-name", HOST, *dirs)
    if stage.returncode != 0:
        raise DemoError(f"rollover stage failed: {stage.stderr.strip()}")
    records = _show_dns(display, svc.named, owner)
    display.fact(f"{len(records)} records: the current key and the staged next key")
    early = _tool("rollover", "commit", "--cert-name", HOST, *dirs)
    display.fact(f"commit right away is refused: {_last_line(early.stderr)}")
    display.wait(2 * TTL + 1, "resolvers must be able to know the next key's record")
    commit = _tool("rollover", "commit", "--cert-name", HOST, *dirs)
    if commit.returncode != 0:
        raise DemoError(f"rollover commit failed: {commit.stderr.strip()}")
    display.fact("certbot issued a certificate for the staged key; Postfix presents it")
    _finger(display, svc, port)
    display.wait(2 * TTL + 1, "the old key's record may still sit in caches")
    prune = _tool("prune", "--cert-name", HOST, *dirs)
    if prune.returncode != 0:
        raise DemoError(f"prune failed: {prune.stderr.strip()}")
    _show_dns(display, svc.named, owner)
    _finger(display, svc, port)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("certbot-dane-tlsa: error: ") if lines else "(no message)"
