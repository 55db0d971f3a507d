"""What each front door imports: the deploy hook never certbot, the plugin almost nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.helpers.pki import make_pki, write_lineage

ZONE_TEXT = """\
$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. ( 1 3600 600 86400 300 )
  IN NS ns1
ns1 IN A 127.0.0.1
mx IN A 127.0.0.1
"""

PROBE = """
import json, sys
from certbot_dane_tlsa.cli import main
code = main(sys.argv[1:])
mods = sorted(m for m in sys.modules if m == "certbot" or m.startswith(("certbot.", "acme")))
print(json.dumps({"code": code, "certbot_modules": mods}))
"""


def test_deploy_hook_path_does_not_import_certbot(tmp_path: Path) -> None:
    live = write_lineage(tmp_path / "le", "mx.example.test", make_pki("p256", ["mx.example.test"]))
    zone = tmp_path / "db.example.test"
    zone.write_text(ZONE_TEXT)
    config = tmp_path / "dane-tlsa.toml"
    config.write_text(
        f'zone = "example.test"\nzone_file = "{zone}"\ndynamic = "no"\nrndc = ["true"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "deploy", "--dry-run", "--config", str(config),
         "--lineage", str(live)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    assert report["certbot_modules"] == []
    assert "TLSA" in result.stdout  # the dry run really planned an edit


def test_plugin_module_imports_nothing_of_the_pipeline() -> None:
    probe = (
        "import sys, json\n"
        "import certbot_dane_tlsa.plugin as p\n"
        "p.Installer.add_parser_arguments(lambda *a, **k: None)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('certbot_dane_tlsa'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout))
    # Building the options needs the settings table; nothing heavier may load with certbot.
    assert loaded <= {
        "certbot_dane_tlsa",
        "certbot_dane_tlsa.plugin",
        "certbot_dane_tlsa.settings",
        "certbot_dane_tlsa.errors",
        "certbot_dane_tlsa.records",
        "certbot_dane_tlsa.dnsname",
        "certbot_dane_tlsa.lite_dataclasses",
    }, loaded


# Issue 7: the deploy hook starts a fresh interpreter at every renewal, and these cost more
# at import than the whole rest of a deploy (dataclasses: by compiling every class's methods).
HEAVY = ("cryptography", "dns", "dataclasses")
HEAVY_PROBE = f"""
import json, sys
from certbot_dane_tlsa.cli import main
code = main(sys.argv[1:])
heavy = {HEAVY!r}
mods = sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
print(json.dumps({{"code": code, "heavy_modules": mods}}))
"""


def _deploy_probe(tmp_path: Path, kind: str, params: list[str]) -> tuple[dict[str, object], str]:
    """A real deploy (zone file rewritten, rndc is `true`) in a fresh interpreter."""
    pki = make_pki(kind, ["mx.example.test"])
    live = write_lineage(tmp_path / "le", "mx.example.test", pki)
    zone = tmp_path / "db.example.test"
    zone.write_text(ZONE_TEXT)
    config = tmp_path / "dane-tlsa.toml"
    params_toml = ", ".join(f'"{p}"' for p in params)
    config.write_text(
        f'zone = "example.test"\nzone_file = "{zone}"\ndynamic = "no"\nrndc = ["true"]\n'
        f"verify = false\nparams = [{params_toml}]\n"
    )
    config.chmod(0o600)
    result = subprocess.run(
        [sys.executable, "-c", HEAVY_PROBE, "deploy", "--config", str(config),
         "--lineage", str(live)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    return report, zone.read_text()


def _hash(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@pytest.mark.parametrize("kind", ["rsa2048", "p256"])
def test_deploy_imports_no_heavy_library(tmp_path: Path, kind: str) -> None:
    report, zone_text = _deploy_probe(tmp_path, kind, ["3 1 1", "3 0 1"])
    assert report["heavy_modules"] == []
    live = tmp_path / "le" / "live" / "mx.example.test"
    leaf = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert f"3 1 1 {_hash(leaf)}" in zone_text
    assert f"3 0 1 {hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()}" in zone_text


def test_usage_2_deploy_still_finds_the_signing_intermediate(tmp_path: Path) -> None:
    # Usage 2 verifies the intermediate's signature, which needs cryptography: allowed here.
    _, zone_text = _deploy_probe(tmp_path, "p256", ["2 1 1", "3 1 1"])
    live = tmp_path / "le" / "live" / "mx.example.test"
    intermediate = x509.load_pem_x509_certificate((live / "chain.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert f"2 1 1 {_hash(intermediate)}" in zone_text
    assert f"3 1 1 {_hash(leaf)}" in zone_text
