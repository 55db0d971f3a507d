"""Reloading a real Dovecot through ``dovecot_command`` and proving the key it presents after.

named serves the inline-signed zone; Dovecot runs on loopback with a private configuration, so
only ``doveadm -c CONF reload`` (the product's ``dovecot_command`` followed by ``reload``)
reaches it. A plain ``doveadm reload`` would look for the system's instance instead.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from certbot_dane_tlsa.lab.dovecot import DovecotInstance
from certbot_dane_tlsa.livecheck import fetch_chain
from tests.helpers.cli import named_settings, run_cli
from tests.helpers.pki import make_key, make_pki, write_lineage
from tests.services.named import NamedServer

pytestmark = [pytest.mark.services, pytest.mark.slow]

ZONE = "example.test"
HOST = "mx.example.test"


def presented_leaf(dovecot: DovecotInstance) -> x509.Certificate:
    return fetch_chain(dovecot.address, dovecot.port, mode="tls", server_name=HOST)[0]


def settings_for(
    path: Path, named: NamedServer, dovecot: DovecotInstance, command: list[str]
) -> Path:
    return named_settings(
        path,
        named,
        zone=ZONE,
        ports=[str(dovecot.port)],
        dovecot_reload=True,
        dovecot_command=shlex.join(command),
        connect="127.0.0.1",
        tls_check="tls",
    )


def test_host_dovecot_reload_puts_the_renewed_key_live(
    tmp_path: Path, signed_zone_server: NamedServer, dovecot_factory: Any
) -> None:
    named = signed_zone_server
    config_dir = tmp_path / "le"
    pki = make_pki("p256", [HOST])
    live = write_lineage(config_dir, HOST, pki)
    dovecot = dovecot_factory(key=live / "privkey.pem", fullchain=live / "fullchain.pem")
    config = settings_for(tmp_path / "dane-tlsa.toml", named, dovecot, dovecot.doveadm_argv())

    first = run_cli("deploy", "--config", config, "--lineage", live)
    assert first.returncode == 0, first.stderr
    assert "reload Dovecot" in first.stderr
    assert f"live server 127.0.0.1:{dovecot.port} presents a key" in first.stderr
    assert presented_leaf(dovecot) == pki.leaf

    renewed = pki.reissue(leaf_key=make_key("p256"))
    write_lineage(config_dir, HOST, renewed)
    # New files alone change nothing: Dovecot read them at start, so the old key stays live
    # until the deploy's reload.
    assert presented_leaf(dovecot) == pki.leaf

    second = run_cli("deploy", "--config", config, "--lineage", live)
    assert second.returncode == 0, second.stderr
    assert "reload Dovecot" in second.stderr
    assert f"live server 127.0.0.1:{dovecot.port} presents a key" in second.stderr
    after = presented_leaf(dovecot)
    assert after == renewed.leaf
    assert after.public_key() == renewed.leaf_key.public_key()


def test_doveadm_failure_is_reported_after_dns_is_published(
    tmp_path: Path, signed_zone_server: NamedServer, dovecot_factory: Any
) -> None:
    named = signed_zone_server
    live = write_lineage(tmp_path / "le", HOST, make_pki("p256", [HOST]))
    dovecot = dovecot_factory(key=live / "privkey.pem", fullchain=live / "fullchain.pem")
    missing = tmp_path / "no-such-dir" / "dovecot.conf"
    config = settings_for(
        tmp_path / "dane-tlsa.toml", named, dovecot, ["doveadm", "-c", str(missing)]
    )

    result = run_cli("deploy", "--config", config, "--lineage", live)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("certbot-dane-tlsa: error: reload Dovecot failed: "), last
    # doveadm's own words, naming the file it could not read.
    assert str(missing) in last and "No such file or directory" in last, last
    assert "serves the expected TLSA" in result.stderr  # DNS was published first
