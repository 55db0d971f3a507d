"""Self-tests of the mail-side test services: if these fail, tests built on them mean nothing.

They check each service the way product tests will use it: certbot really issues and renews
against Pebble, Postfix really presents the configured certificate and picks up a new one on
reload (on the host and inside a podman container driven by the real docker CLI), posttls-finger
really connects, and teardown really leaves nothing running.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.services import postfix as postfix_service
from tests.services.containers import PodmanDocker
from tests.services.fixtures_mail import PostfixContainerFactory, PostfixFactory
from tests.services.pebble import Certbot, Pebble
from tests.services.postfix import (
    PostfixError,
    PostfixInstance,
    posttls_finger,
    presented_certificate,
    registered_config_dirs,
    wait_until_presented,
    with_resolver_argv,
)

pytestmark = pytest.mark.services


def _self_signed(directory: Path, name: str, common_name: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={common_name}", "-addext", f"subjectAltName=DNS:{common_name}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


def _leaf_der(pem_path: Path) -> bytes:
    return x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(Encoding.DER)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _san_names(cert_path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name) for name in san.get_values_for_type(x509.DNSName)]


def test_certbot_issues_and_renews_against_pebble(certbot_env: Certbot, pebble: Pebble) -> None:
    live = certbot_env.certonly("mx.example.test", "mail.example.test")

    assert live == certbot_env.live_dir("mx.example.test")
    assert {"cert.pem", "privkey.pem", "fullchain.pem", "chain.pem"} <= {
        p.name for p in live.iterdir()
    }
    assert sorted(_san_names(live / "cert.pem")) == ["mail.example.test", "mx.example.test"]
    assert certbot_env.renewal_conf("mx.example.test").is_file()
    first_key = (live / "privkey.pem").read_bytes()

    certbot_env.run("renew", "--force-renewal")

    archive = certbot_env.archive_dir("mx.example.test")
    assert (archive / "cert2.pem").is_file()
    assert (live / "cert.pem").resolve() == (archive / "cert2.pem").resolve()
    assert (live / "privkey.pem").read_bytes() != first_key
    # The issuing root is random per Pebble; the lineage's chain must end below it.
    root = x509.load_pem_x509_certificate(pebble.issuing_root_pem().encode())
    chain = x509.load_pem_x509_certificates((live / "chain.pem").read_bytes())
    assert chain[-1].issuer == root.subject


def test_certbot_failure_reports_its_output(certbot_env: Certbot) -> None:
    with pytest.raises(RuntimeError, match=r"certbot certonly.*exited") as info:
        certbot_env.run("certonly", "--no-such-option-here")
    assert "no-such-option-here" in str(info.value)


def test_postfix_presents_configured_cert_and_reloads(
    postfix_factory: PostfixFactory, tmp_path: Path
) -> None:
    key, cert = _self_signed(tmp_path / "tls", "served", "mx.example.test")
    instance = postfix_factory(key=key, fullchain=cert)

    assert str(instance.config_dir) in registered_config_dirs()
    assert instance.postfix_argv("reload") == ["postfix", "-c", str(instance.config_dir), "reload"]
    # presented_certificate raises unless EHLO offers STARTTLS.
    der = presented_certificate(instance.address, instance.port)
    assert der == _leaf_der(cert)

    new_key, new_cert = _self_signed(tmp_path / "tls-new", "served", "mx.example.test")
    key.write_bytes(new_key.read_bytes())
    cert.write_bytes(new_cert.read_bytes())
    instance.reload()

    # Not asserted right away: reload returns before old smtpd processes have gone.
    wait_until_presented(instance.address, instance.port, _leaf_der(new_cert))
    assert _leaf_der(new_cert) != der


def test_postfix_start_fails_on_unusable_tls_files(
    postfix_factory: PostfixFactory, tmp_path: Path
) -> None:
    with pytest.raises(PostfixError, match="no working STARTTLS"):
        postfix_factory(key=tmp_path / "missing.key", fullchain=tmp_path / "missing.pem")
    assert str(tmp_path / "postfix-1" / "conf") not in registered_config_dirs()


def test_posttls_finger_connects_through_private_resolver(
    postfix_factory: PostfixFactory, tmp_path: Path
) -> None:
    key, cert = _self_signed(tmp_path / "tls", "served", "mx.example.test")
    instance = postfix_factory(key=key, fullchain=cert)
    resolv_before = Path("/etc/resolv.conf").read_text()

    result = posttls_finger(
        f"[{instance.address}]:{instance.port}",
        resolver="127.0.0.53",
        extra=("-c", "-l", "encrypt", "-L", "summary"),
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"Untrusted TLS connection established to {instance.address}" in output, output
    # The bind mount stayed inside posttls-finger's own mount namespace.
    assert Path("/etc/resolv.conf").read_text() == resolv_before


def test_private_resolver_is_what_the_tool_reads(tmp_path: Path) -> None:
    # posttls-finger cannot print its resolver, so the same namespace wrapper runs `cat`.
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("nameserver 127.0.0.9\n")
    result = subprocess.run(
        with_resolver_argv(resolv_conf, "cat", "/etc/resolv.conf"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "nameserver 127.0.0.9\n"
    assert Path("/etc/resolv.conf").read_text() != result.stdout


def test_alternate_config_directories_entries_are_shared_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scratch "default" config directory, so this test can watch the file come and go
    # without racing other tests that use the real /etc/postfix.
    default = tmp_path / "etc-postfix"
    default.mkdir()
    monkeypatch.setattr(postfix_service, "DEFAULT_CONFIG_DIR", default)
    one, two = tmp_path / "one" / "conf", tmp_path / "two" / "conf"

    postfix_service.register_config_dir(one)
    postfix_service.register_config_dir(two)
    postfix_service.register_config_dir(one)
    assert registered_config_dirs() == [str(one), str(two)]

    postfix_service.unregister_config_dir(one)
    assert registered_config_dirs() == [str(two)]
    postfix_service.unregister_config_dir(two)
    assert not (default / "main.cf").exists()

    # A main.cf the test services did not create stays, with its own settings intact.
    (default / "main.cf").write_text("myhostname = keep.example.test\n")
    postfix_service.backdate(default / "main.cf")  # else postconf waits ~2 s for it to settle
    postfix_service.register_config_dir(one)
    assert registered_config_dirs() == [str(one)]
    postfix_service.unregister_config_dir(one)
    assert (default / "main.cf").read_text().strip() == "myhostname = keep.example.test"


def test_docker_cli_drives_podman(podman_docker: PodmanDocker) -> None:
    name = f"cdt-selftest-{uuid.uuid4().hex[:8]}"
    podman_docker.run_container(name, "sleep", "infinity")

    assert podman_docker.docker("exec", name, "true").returncode == 0
    exit_3 = podman_docker.docker("exec", name, "sh", "-c", "exit 3", check=False)
    assert exit_3.returncode == 3
    assert name in podman_docker.docker("ps", "--format", "{{.Names}}").stdout.split()

    missing = podman_docker.docker("exec", "cdt-no-such-container", "true", check=False)
    assert missing.returncode != 0
    # podman's wording, relayed by the docker CLI (a Docker engine says "No such container").
    assert "no such container" in missing.stderr.lower(), missing.stderr


def test_postfix_in_container_reloads_via_docker_exec(
    postfix_container_factory: PostfixContainerFactory,
    certbot_env: Certbot,
    podman_docker: PodmanDocker,
) -> None:
    live = certbot_env.certonly("mx.example.test")
    container = postfix_container_factory(
        key=live / "privkey.pem",
        fullchain=live / "fullchain.pem",
        volumes=[(certbot_env.config_dir, certbot_env.config_dir)],
    )
    der = presented_certificate(container.address, container.port)
    assert der == _leaf_der(live / "cert.pem")

    certbot_env.run("renew", "--force-renewal")
    # Exactly what the product runs: the real docker CLI, against the container by name.
    argv = container.docker_exec_argv("reload")
    assert argv[:3] == ["docker", "exec", container.name]
    reload = subprocess.run(
        argv, env={**os.environ, **podman_docker.docker_env}, capture_output=True, text=True
    )
    assert reload.returncode == 0, reload.stderr

    wait_until_presented(container.address, container.port, _leaf_der(live / "cert.pem"))
    assert _leaf_der(live / "cert.pem") != der


def test_teardown_leaves_nothing_running(tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path / "tls", "served", "mx.example.test")
    name = f"cdt-selftest-{uuid.uuid4().hex[:8]}"
    pebble = Pebble(tmp_path / "pebble")
    podman = PodmanDocker(tmp_path / "podman")
    postfix = PostfixInstance(
        tmp_path / "postfix", hostname="mx.example.test", key=key, fullchain=cert
    )
    try:
        pebble.start()
        podman.start()
        postfix.start()
        podman.run_container(name, "sleep", "infinity")
        podman.docker("exec", name, "true")
        pids = [pebble.pid, podman.service_pid, postfix.master_pid]
        assert all(pid is not None and _alive(pid) for pid in pids)
        assert _processes_mentioning(name.encode()) != []
    finally:
        postfix.stop()
        podman.stop()
        pebble.stop()

    assert not any(_alive(pid) for pid in pids if pid is not None)
    assert str(postfix.config_dir) not in registered_config_dirs()
    leftover = podman.podman("ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}")
    assert leftover.stdout.strip() == ""
    # conmon (the container's and each exec session's) names the container on its command line.
    assert _processes_mentioning(name.encode()) == []


def _processes_mentioning(needle: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not _alive(int(entry.name)):
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
