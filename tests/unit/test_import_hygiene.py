"""What each front door imports: the deploy hook never certbot, the plugin almost nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    }, loaded
