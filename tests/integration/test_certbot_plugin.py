"""The `dane-tlsa` installer with a real certbot, a real Pebble and a real named.

These walk a lineage through certbot's own commands (certonly, renew, install, reconfigure)
and read back what named serves, so they prove that certbot calls the plugin where we think it
does, saves its settings, and restores them on renewal.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from cryptography import x509

from tests.helpers.cli import named_settings, run_cli
from tests.helpers.dns import served_tlsa, spki_sha256
from tests.services.named import NamedServer
from tests.services.pebble import Certbot

pytestmark = [pytest.mark.services, pytest.mark.slow]

ZONE = "example.test"
HOST = "mx.example.test"
OWNER = f"_25._tcp.{HOST}."


def live_311(live: Path) -> str:
    return spki_sha256(x509.load_pem_x509_certificate((live / "cert.pem").read_bytes()))


def served(named: NamedServer, owner: str = OWNER) -> tuple[set[str], bool]:
    """(3 1 1 data served at ``owner``, signed)."""
    records, signed = served_tlsa(named, owner)
    return {r.split()[3] for r in records if r.startswith("3 1 1 ")}, signed


def installer_args(named: NamedServer) -> list[str]:
    return [
        "-i", "dane-tlsa",
        "--dane-tlsa-zone", ZONE,
        "--dane-tlsa-zone-file", str(named.zone_file(ZONE)),
        "--dane-tlsa-rndc", shlex.join(named.rndc_argv),
        "--dane-tlsa-nameservers", f"127.0.0.1:{named.port}",
        "--dane-tlsa-verify-timeout", "20",
    ]  # fmt: skip


def renewalparams(certbot: Certbot, name: str = HOST) -> dict[str, str]:
    text = certbot.renewal_conf(name).read_text()
    section = text.split("[renewalparams]", 1)[1]
    return dict(re.findall(r"^(\w+) = (.*)$", section, flags=re.MULTILINE))


def test_installer_route_through_issue_renew_reuse_and_dry_run(
    signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    named, certbot = signed_zone_server, certbot_env
    zone_file = named.zone_file(ZONE)

    # 1. certonly -i dane-tlsa publishes the issued key's record, signed.
    live = certbot.certonly(HOST, extra=installer_args(named))
    first = live_311(live)
    assert served(named) == ({first}, True)

    # 2. The settings are saved for renewals, with the plugin as the installer.
    params = renewalparams(certbot)
    assert params["installer"] == "dane-tlsa"
    assert params["dane_tlsa_zone"] == ZONE
    assert params["dane_tlsa_zone_file"] == str(zone_file)
    assert params["dane_tlsa_nameservers"] == f"127.0.0.1:{named.port}"

    # 3. A renewal with a new key (the plugin made the lineage reuse its key, so ask for a
    #    new one): the served record follows the new key.
    assert renewalparams(certbot)["reuse_key"] == "True"
    certbot.renew("--new-key")
    second = live_311(live)
    assert second != first
    assert served(named) == ({second}, True)

    # 4. Renewal reusing the key: the zone file is left byte for byte, serial included.
    before = zone_file.read_bytes()
    certbot.renew("--reuse-key")
    assert live_311(live) == second
    assert zone_file.read_bytes() == before

    # 5. certbot's dry run changes nothing in DNS.
    certbot.run("renew", "--dry-run")
    assert zone_file.read_bytes() == before
    assert served(named) == ({second}, True)


def test_generic_updates_reconciles_a_zone_edited_behind_our_back(
    signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    named, certbot = signed_zone_server, certbot_env
    live = certbot.certonly(HOST, extra=installer_args(named))
    zone_file = named.zone_file(ZONE)
    # Someone removes our record and reloads (serial bumped the crude way).
    text = zone_file.read_text()
    kept = [line for line in text.splitlines() if "TLSA" not in line]
    edited = "\n".join(kept) + "\n"
    edited = re.sub(r"(\d+)(\s*; serial)", lambda m: f"{int(m[1]) + 100}{m[2]}", edited, count=1)
    zone_file.write_text(edited)
    named.rndc("reload", ZONE)
    assert named.wait_for(lambda: served(named)[0] == set())

    # `certbot renew` with nothing due still runs generic_updates, which republishes.
    result = certbot.run("renew")
    assert "not due for renewal" in result.stdout + result.stderr
    assert served(named) == ({live_311(live)}, True)


def test_install_and_reconfigure_attach_the_plugin_to_an_existing_lineage(
    signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    named, certbot = signed_zone_server, certbot_env
    live = certbot.certonly(HOST)  # no installer yet
    assert served(named)[0] == set()

    certbot.run("install", "--cert-name", HOST, *installer_args(named))
    assert served(named) == ({live_311(live)}, True)

    certbot.run("reconfigure", "--cert-name", HOST, *installer_args(named))
    params = renewalparams(certbot)
    assert params["installer"] == "dane-tlsa"
    assert params["dane_tlsa_zone_file"] == str(named.zone_file(ZONE))
    certbot.renew()
    assert served(named) == ({live_311(live)}, True)


def test_deploy_hook_route_reads_toml_and_matches_installer_route(
    tmp_path: Path, signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    named, certbot = signed_zone_server, certbot_env
    config = named_settings(
        tmp_path / "dane-tlsa.toml",
        named,
        zone=ZONE,
        verify_timeout=20,
    )
    hook = shlex.join(["certbot-dane-tlsa", "deploy", "--config", str(config)])
    live = certbot.certonly(HOST)
    certbot.renew("--deploy-hook", hook)
    assert served(named) == ({live_311(live)}, True)
    # The hook saw certbot's environment and wrote exactly one record for the lineage.
    lines = [line for line in named.zone_file(ZONE).read_text().splitlines() if "TLSA" in line]
    assert len(lines) == 1


def test_hook_reads_dane_settings_from_the_renewal_config(
    signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    """Mixing routes: settings saved by the installer serve the deploy hook too."""
    named, certbot = signed_zone_server, certbot_env
    live = certbot.certonly(HOST, extra=installer_args(named))
    certbot.renew()
    # Run the hook by hand with no settings file: it finds them in renewal/NAME.conf.
    renewed = live_311(live)
    result = run_cli(
        "deploy",
        env={"RENEWED_LINEAGE": str(live), "CERTBOT_DANE_TLSA_CONFIG": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "already right" in result.stderr
    assert served(named) == ({renewed}, True)


def test_certbot_dry_run_with_deploy_hooks_changes_nothing(
    tmp_path: Path, signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    named, certbot = signed_zone_server, certbot_env
    config = named_settings(
        tmp_path / "dane-tlsa.toml",
        named,
        zone=ZONE,
    )
    live = certbot.certonly(HOST)
    zone_text = named.zone_file(ZONE).read_bytes()
    hook = shlex.join(["certbot-dane-tlsa", "deploy", "--config", str(config)])
    certbot.run("renew", "--dry-run", "--run-deploy-hooks", "--deploy-hook", hook)
    # The hook ran (certbot logs its output) but only printed what it would do.
    log_text = (certbot.logs_dir / "letsencrypt.log").read_text()
    assert "certbot is doing a dry run" in log_text
    assert live_311(live) in log_text  # the diff it printed names the record
    assert named.zone_file(ZONE).read_bytes() == zone_text
    assert served(named)[0] == set()


def test_link_in_renewal_hooks_deploy_runs_deploy(
    tmp_path: Path, signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    """Certbot runs renewal-hooks/deploy/* without arguments; a bare link must still work."""
    import os
    import shutil

    named, certbot = signed_zone_server, certbot_env
    config = named_settings(
        tmp_path / "dane-tlsa.toml",
        named,
        zone=ZONE,
    )
    live = certbot.certonly(HOST)
    hooks = certbot.config_dir / "renewal-hooks" / "deploy"
    hooks.mkdir(parents=True, exist_ok=True)
    command = shutil.which("certbot-dane-tlsa", path=certbot.env()["PATH"])
    assert command is not None
    os.symlink(command, hooks / "certbot-dane-tlsa")
    certbot.run("renew", "--force-renewal", extra_env={"CERTBOT_DANE_TLSA_CONFIG": str(config)})
    assert served(named) == ({live_311(live)}, True)


def test_failure_during_renew_is_reported_by_certbot_and_leaves_the_zone_alone(
    signed_zone_server: NamedServer, certbot_env: Certbot
) -> None:
    named, certbot = signed_zone_server, certbot_env
    live = certbot.certonly(HOST, extra=installer_args(named))
    zone_file = named.zone_file(ZONE)
    before = zone_file.read_bytes()
    # rndc now points at a port where nothing listens; the new key needs a zone change.
    broken = shlex.join([*named.rndc_argv, "-p", "1"])
    result = certbot.run(
        "renew", "--force-renewal", "--new-key", "--dane-tlsa-rndc", broken, check=False
    )
    assert result.returncode != 0
    log_text = (certbot.logs_dir / "letsencrypt.log").read_text()
    assert "dane-tlsa: mx.example.test: rndc zonestatus example.test failed" in (
        result.stdout + result.stderr + log_text
    )
    assert zone_file.read_bytes() == before
    assert served(named)[0] != {live_311(live)}  # the new key is not (yet) published
