"""Reading dane_tlsa_* settings from a certbot renewal config without importing certbot."""

from __future__ import annotations

from pathlib import Path

from certbot_dane_tlsa.renewalconf import dane_config_file, dane_settings, renewal_conf_path

CONF = """\
# renew_before_expiry = 30 days
version = 5.8.0
archive_dir = /etc/letsencrypt/archive/mx.example.com
cert = /etc/letsencrypt/live/mx.example.com/cert.pem

# Options used in the renewal process
[renewalparams]
authenticator = standalone
installer = dane-tlsa
dane_tlsa_zone = example.com
dane_tlsa_zone_file = /etc/bind/db.example.com
dane_tlsa_ports = "25, 587"
dane_tlsa_rndc = 'rndc -c /etc/bind/rndc.conf'
dane_tlsa_ttl = None
reuse_key = True
[[webroot_map]]
dane_tlsa_zone = not.this.one
"""


def test_reads_only_dane_keys_of_renewalparams(tmp_path: Path) -> None:
    live = tmp_path / "live" / "mx.example.com"
    live.mkdir(parents=True)
    conf = renewal_conf_path(live)
    assert conf == tmp_path / "renewal" / "mx.example.com.conf"
    conf.parent.mkdir()
    conf.write_text(CONF)
    found = dane_settings(live)
    assert found is not None
    values, source = found
    assert source == str(conf)
    assert values == {
        "zone": "example.com",
        "zone_file": "/etc/bind/db.example.com",
        "ports": "25, 587",
        "rndc": "rndc -c /etc/bind/rndc.conf",
    }


def test_missing_conf_gives_nothing(tmp_path: Path) -> None:
    assert dane_settings(tmp_path / "live" / "x") is None


def test_saved_settings_file_is_not_a_setting(tmp_path: Path) -> None:
    live = tmp_path / "live" / "mx.example.com"
    live.mkdir(parents=True)
    conf = renewal_conf_path(live)
    conf.parent.mkdir()
    conf.write_text(
        "[renewalparams]\ninstaller = dane-tlsa\n"
        "dane_tlsa_config = /etc/letsencrypt/dane-tlsa.toml\ndane_tlsa_zone = example.com\n"
    )
    found = dane_settings(live)
    assert found is not None and found[0] == {"zone": "example.com"}
    assert dane_config_file(live) == "/etc/letsencrypt/dane-tlsa.toml"
