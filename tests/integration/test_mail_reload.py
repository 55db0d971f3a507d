"""Reloading Postfix (in a container, and on the host) and proving what the live server presents.

Real parts throughout: named serves the inline-signed zone, Postfix runs inside a podman
container that the real docker CLI drives through podman's Docker API socket, and
posttls-finger, resolving through a validating unbound, is the independent DANE verifier.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import named_settings, run_cli
from tests.helpers.pki import Pki, make_key, make_pki, write_lineage
from tests.services.containers import PodmanDocker
from tests.services.named import NamedServer
from tests.services.postfix import posttls_finger

pytestmark = [pytest.mark.services, pytest.mark.slow]

ZONE = "example.test"
HOST = "mx.example.test"
VERIFIED = "Verified TLS connection established"


@dataclass
class MailLab:
    named: NamedServer
    config_dir: Path
    live: Path
    pki: Pki
    port: int
    config: Path
    env: dict[str, str]
    container: Any
    unbound_factory: Any

    def run(self, *args: str) -> Any:
        return run_cli(*args, "--config", self.config, "--lineage", self.live, env=self.env)

    def renew(self, new_key: bool = True) -> Pki:
        self.pki = self.pki.reissue(leaf_key=make_key("p256") if new_key else None)
        write_lineage(self.config_dir, HOST, self.pki)
        return self.pki

    def finger(self) -> str:
        """posttls-finger through a fresh validating resolver (nothing cached)."""
        resolver = self.unbound_factory(self.named)
        result = posttls_finger(f"[{HOST}]:{self.port}", resolver=resolver.address)
        resolver.stop()
        return result.stdout + result.stderr


@pytest.fixture
def lab(
    tmp_path: Path,
    signed_zone_server: NamedServer,
    unbound_factory: Any,
    podman_docker: PodmanDocker,
    postfix_container_factory: Any,
) -> MailLab:
    named = signed_zone_server
    config_dir = tmp_path / "le"
    pki = make_pki("p256", [HOST])
    live = write_lineage(config_dir, HOST, pki)
    container = postfix_container_factory(
        key=live / "privkey.pem",
        fullchain=live / "fullchain.pem",
        hostname=HOST,
        volumes=[(config_dir, config_dir)],
    )
    config = named_settings(
        tmp_path / "dane-tlsa.toml",
        named,
        zone=ZONE,
        verify_timeout=20,
        ports=[str(container.port)],
        postfix_container=container.name,
        postfix_command=container.postfix_argv(),
        connect="127.0.0.1",
        tls_check="starttls-smtp",
    )
    return MailLab(
        named, config_dir, live, pki, container.port, config, podman_docker.env(), container,
        unbound_factory,
    )  # fmt: skip


def test_container_reload_after_renewal_and_independent_dane_verifier_agrees(
    lab: MailLab,
) -> None:
    first = lab.run("deploy")
    assert first.returncode == 0, first.stderr
    assert f"reload Postfix in container {lab.container.name}" in first.stderr
    assert f"live server 127.0.0.1:{lab.port} presents a key" in first.stderr
    assert VERIFIED in lab.finger()

    lab.renew(new_key=True)
    second = lab.run("deploy")
    assert second.returncode == 0, second.stderr
    assert f"live server 127.0.0.1:{lab.port} presents a key" in second.stderr
    report = lab.run("check", "--json")
    assert report.returncode == 0, report.stdout + report.stderr
    findings = json.loads(report.stdout)["findings"]
    assert {f["status"] for f in findings} == {"ok"}
    assert any(f["where"].startswith("live") for f in findings)
    assert VERIFIED in lab.finger()


def test_live_key_that_dns_does_not_vouch_for_is_a_mismatch(lab: MailLab) -> None:
    assert lab.run("deploy").returncode == 0
    # The key changes on the server but DNS is not updated (a lost deploy hook).
    lab.renew(new_key=True)
    lab.container.reload()
    result = lab.run("check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "mismatch" in result.stdout
    output = lab.finger()
    assert VERIFIED not in output
    assert "TLSA" in output or "certificate" in output.lower()


def test_missing_container_is_a_clear_error_after_dns_is_published(lab: MailLab) -> None:
    result = run_cli(
        "deploy", "--config", lab.config, "--lineage", lab.live,
        "--postfix-container", "no-such-mailserver", env=lab.env,
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "certbot-dane-tlsa: error: reload Postfix in container no-such-mailserver"
    )
    assert "no-such-mailserver" in last and "no such container" in last.lower()
    assert "serves the expected TLSA" in result.stderr  # DNS was published first


def test_missing_docker_cli_is_a_clear_error(lab: MailLab) -> None:
    result = run_cli(
        "deploy", "--config", lab.config, "--lineage", lab.live,
        "--docker", "/nonexistent/docker", env=lab.env,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"certbot-dane-tlsa: error: reload Postfix in container {lab.container.name}: "
        "command not found: /nonexistent/docker"
    )


def test_host_postfix_reload(
    tmp_path: Path, signed_zone_server: NamedServer, postfix_factory: Any
) -> None:
    named = signed_zone_server
    config_dir = tmp_path / "le"
    pki = make_pki("rsa2048", [HOST])
    live = write_lineage(config_dir, HOST, pki)
    postfix = postfix_factory(key=live / "privkey.pem", fullchain=live / "fullchain.pem")
    config = named_settings(
        tmp_path / "dane-tlsa.toml",
        named,
        zone=ZONE,
        ports=[str(postfix.port)],
        postfix_reload=True,
        postfix_command=shlex.join(postfix.postfix_argv()),
        connect="127.0.0.1",
        tls_check="starttls-smtp",
    )
    assert run_cli("deploy", "--config", config, "--lineage", live).returncode == 0
    renewed = pki.reissue(leaf_key=make_key("rsa2048"))
    write_lineage(config_dir, HOST, renewed)
    result = run_cli("deploy", "--config", config, "--lineage", live)
    assert result.returncode == 0, result.stderr
    assert "reload Postfix:" in result.stderr
    assert f"live server 127.0.0.1:{postfix.port} presents a key" in result.stderr


def test_live_server_still_presenting_another_key_fails_after_the_retries(
    tmp_path: Path, signed_zone_server: NamedServer, postfix_factory: Any
) -> None:
    """Postfix serves files the deploy does not manage (a forgotten path in main.cf):
    DNS gets the lineage's record, the reload succeeds, and the live check must say no."""
    named = signed_zone_server
    config_dir = tmp_path / "le"
    live = write_lineage(config_dir, HOST, make_pki("p256", [HOST]))
    elsewhere = write_lineage(tmp_path / "old-le", HOST, make_pki("p256", [HOST]))
    postfix = postfix_factory(key=elsewhere / "privkey.pem", fullchain=elsewhere / "fullchain.pem")
    config = named_settings(
        tmp_path / "dane-tlsa.toml",
        named,
        zone=ZONE,
        ports=[str(postfix.port)],
        postfix_reload=True,
        postfix_command=shlex.join(postfix.postfix_argv()),
        connect="127.0.0.1",
        tls_check="starttls-smtp",
        live_check_timeout=3,
    )
    result = run_cli("deploy", "--config", config, "--lineage", live)
    assert result.returncode == 1
    assert "serves the expected TLSA" in result.stderr  # DNS was published first
    assert result.stderr.strip().splitlines()[-1] == (
        f"certbot-dane-tlsa: error: live server 127.0.0.1:{postfix.port} presents a key that "
        "no published TLSA record matches (after 3 s)"
    )
