"""Settings: one table of keys, TOML and string values, clear errors for bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.errors import SettingsError
from certbot_dane_tlsa.records import TlsaParams
from certbot_dane_tlsa.settings import (
    OPTIONS,
    Nameserver,
    RawSettings,
    build,
    convert,
    from_sources,
    load_toml,
    parse_ttl,
)

BY_KEY = {o.key: o for o in OPTIONS}


def write(path: Path, text: str, mode: int = 0o640) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_minimal_toml_gets_product_defaults(tmp_path: Path) -> None:
    config = write(tmp_path / "s.toml", 'zone = "example.com"\nzone_file = "/etc/bind/db.x"\n')
    settings = from_sources(config=str(config), overrides={}, environ={})
    (zone,) = settings.zones
    assert zone.origin == dnsname.from_text("example.com")
    assert zone.zone_file == Path("/etc/bind/db.x")
    assert zone.serial == "auto" and zone.backend == "zonefile" and zone.rndc == ("rndc",)
    assert zone.nameservers == (Nameserver("127.0.0.1", 53),)
    assert zone.verify is True and zone.ttl is None
    assert settings.ports == (25,) and settings.proto == "tcp"
    assert settings.params == (TlsaParams(3, 1, 1),)
    assert settings.hosts == () and settings.postfix_container is None
    assert settings.docker == ("docker",)


def test_flags_override_file_and_strings_convert_like_toml(tmp_path: Path) -> None:
    config = write(
        tmp_path / "s.toml",
        'zone = "example.com"\nzone_file = "/z"\nports = [25]\nparams = ["3 1 1"]\n'
        'rndc = ["rndc", "-c", "/etc/bind/rndc.conf"]\n',
    )
    settings = from_sources(
        config=str(config),
        overrides={"ports": "25, 465,587", "params": "3 1 1,2 1 1", "rndc": "rndc -s 'a b'"},
        environ={},
    )
    assert settings.ports == (25, 465, 587)
    assert settings.params == (TlsaParams(3, 1, 1), TlsaParams(2, 1, 1))
    assert settings.zones[0].rndc == ("rndc", "-s", "a b")


def test_config_from_environment_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match="does not exist"):
        from_sources(config=None, overrides={}, environ={"CERTBOT_DANE_TLSA_CONFIG": str(missing)})


def test_world_writable_settings_file_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path / "s.toml", 'zone = "example.com"\nzone_file = "/z"\n', mode=0o666)
    with pytest.raises(SettingsError, match="writable by everyone"):
        load_toml(config)


def test_unknown_key_is_a_clear_error(tmp_path: Path) -> None:
    config = write(tmp_path / "s.toml", 'zone = "example.com"\nzonefile = "/z"\n')
    with pytest.raises(SettingsError, match="unknown setting 'zonefile'"):
        load_toml(config)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "s.toml", "zone = \n")
    with pytest.raises(SettingsError, match=r"s\.toml is not valid TOML"):
        load_toml(config)


def test_several_zones_longest_origin_wins(tmp_path: Path) -> None:
    config = write(
        tmp_path / "s.toml",
        'rndc = ["rndc", "-p", "953"]\n'
        '[[zone]]\nzone = "example.com"\nzone_file = "/a"\n'
        '[[zone]]\nzone = "sub.example.com"\nzone_file = "/b"\nserial = "date"\n',
    )
    settings = from_sources(config=str(config), overrides={}, environ={})
    assert [z.name for z in settings.zones] == ["example.com", "sub.example.com"]
    assert all(z.rndc == ("rndc", "-p", "953") for z in settings.zones)
    deep = settings.zone_for(dnsname.from_text("_25._tcp.mx.sub.example.com"))
    shallow = settings.zone_for(dnsname.from_text("_25._tcp.mx.example.com"))
    assert deep is not None and deep.zone_file == Path("/b") and deep.serial == "date"
    assert shallow is not None and shallow.zone_file == Path("/a")
    assert settings.zone_for(dnsname.from_text("mx.example.org")) is None


def test_zone_table_rejects_non_zone_keys(tmp_path: Path) -> None:
    config = write(tmp_path / "s.toml", '[[zone]]\nzone = "example.com"\nports = [25]\n')
    with pytest.raises(SettingsError, match="not a zone-level setting: ports"):
        load_toml(config)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("zone", "exa mple.com", "not a valid domain name"),
        ("ports", "25,http", "not a port number"),
        ("ports", [70000], "not a port number"),
        ("params", "3 1", "not three numbers"),
        ("params", "4 1 1", "usage 4"),
        ("serial", "sometimes", "not one of"),
        ("verify", "maybe", "expected true or false"),
        ("rndc", "", "the command is empty"),
        ("rndc", "rndc 'unterminated", "cannot split"),
        ("postfix_container", "x; rm -rf /", "not a container name"),
        ("nameservers", "ns1:domain", "port that is not a number"),
        ("ttl", "1x", "is not a TTL"),
    ],
)
def test_bad_values_are_named(key: str, value: object, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        convert(BY_KEY[key], value)
    assert str(info.value).startswith(key)


def test_ttl_units() -> None:
    assert parse_ttl("1h30m") == 5400
    assert parse_ttl("2d") == 172800
    assert parse_ttl(300) == 300
    assert parse_ttl("1W") == 604800


def test_nameserver_forms() -> None:
    assert Nameserver.parse("ns1.example.com") == Nameserver("ns1.example.com", 53)
    assert Nameserver.parse("127.0.0.1:5353") == Nameserver("127.0.0.1", 5353)
    assert Nameserver.parse("[::1]:5353") == Nameserver("::1", 5353)
    assert Nameserver.parse("::1") == Nameserver("::1", 53)
    assert str(Nameserver("::1", 53)) == "[::1]:53"


def test_no_zone_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="no zone configured"):
        build(RawSettings())


def test_zone_file_required_for_zonefile_backend() -> None:
    raw = RawSettings()
    raw.update({"zone": "example.com"}, "test")
    with pytest.raises(SettingsError, match="'zone_file' is required"):
        build(raw)


def test_reload_commands_are_argv_lists() -> None:
    value = convert(BY_KEY["reload_commands"], [["systemctl", "reload", "nginx"], "doveadm reload"])
    assert value == (("systemctl", "reload", "nginx"), ("doveadm", "reload"))


def test_connect_one_address_or_per_host(tmp_path: Path) -> None:
    config = write(
        tmp_path / "s.toml",
        'zone = "example.com"\nzone_file = "/z"\n'
        '[connect]\n"mx1.example.com" = "10.0.0.1"\n"*" = "192.0.2.7"\n',
    )
    settings = from_sources(config=str(config), overrides={}, environ={})
    assert settings.connect_address(dnsname.from_text("mx1.example.com")) == "10.0.0.1"
    assert settings.connect_address(dnsname.from_text("mx2.example.com")) == "192.0.2.7"
    flag = from_sources(
        config=str(config), overrides={"connect": "MX2.example.com=10.0.0.2"}, environ={}
    )
    assert flag.connect_address(dnsname.from_text("mx2.example.com")) == "10.0.0.2"
    assert flag.connect_address(dnsname.from_text("mx1.example.com")) == "mx1.example.com"
    single = from_sources(config=str(config), overrides={"connect": "127.0.0.1"}, environ={})
    assert single.connect_address(dnsname.from_text("mx9.example.com")) == "127.0.0.1"
    with pytest.raises(SettingsError, match="connect: 'a b' is not an address"):
        convert(BY_KEY["connect"], "mx1.example.com=a b")
