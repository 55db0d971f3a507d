"""BIND key files as tsig-keygen writes them, and the secret staying out of every message."""

from __future__ import annotations

import base64
import logging
import subprocess
from pathlib import Path

import dns.message
import dns.name
import dns.tsig
import dns.tsigkeyring
import pytest

from certbot_dane_tlsa.errors import SettingsError
from certbot_dane_tlsa.tsigkey import load_key, parse_keys

SECRET_A = base64.b64encode(bytes(range(32))).decode()
SECRET_B = base64.b64encode(bytes(range(100, 164))).decode()


def _keygen(algorithm: str, name: str) -> str:
    return subprocess.run(
        ["tsig-keygen", "-a", algorithm, name], capture_output=True, text=True, check=True
    ).stdout


def _secret_of(text: str) -> str:
    return text.split('secret "', 1)[1].split('"', 1)[0]


def _write(tmp_path: Path, text: str, mode: int = 0o600, name: str = "tsig.key") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("algorithm", "wire_name", "size"),
    [
        ("hmac-sha256", dns.tsig.HMAC_SHA256, 32),
        ("hmac-sha384", dns.tsig.HMAC_SHA384, 48),
        ("hmac-sha512", dns.tsig.HMAC_SHA512, 64),
        ("hmac-sha224", dns.tsig.HMAC_SHA224, 28),
    ],
)
def test_tsig_keygen_output_round_trips_through_dnspython(
    tmp_path: Path, algorithm: str, wire_name: dns.name.Name, size: int
) -> None:
    text = _keygen(algorithm, "tlsa-key")
    key = load_key(_write(tmp_path, text))
    assert key.name == dns.name.from_text("tlsa-key")
    assert key.algorithm == algorithm
    assert key.algorithm_name == wire_name
    assert key.secret == base64.b64decode(_secret_of(text))
    assert len(key.secret) == size
    # A message signed with our key verifies with a keyring built independently by dnspython.
    query = dns.message.make_query("example.test.", "SOA")
    query.use_tsig(key.keyring(), keyname=key.name, algorithm=key.algorithm_name)
    wire = query.to_wire()
    other = dns.tsigkeyring.from_text({"tlsa-key": (algorithm, _secret_of(text))})
    assert dns.message.from_wire(wire, keyring=other).had_tsig


def test_several_keys_comments_and_unquoted_names(tmp_path: Path) -> None:
    text = f"""\
# a hash comment with key "fake" {{ secret "x"; }};
// a C++ comment
/* a block comment
   key "hidden" {{ algorithm hmac-sha256; secret "{SECRET_B}"; }};
*/
key "first" {{
    algorithm HMAC-SHA256;   // case does not matter
    secret "{SECRET_A}";
}};
key second {{ secret "{SECRET_B[:40]}
   {SECRET_B[40:]}"; algorithm hmac-sha512; }};
options {{ directory "/tmp"; }};
"""
    keys = parse_keys(text, "mem")
    assert [k.name.to_text() for k in keys] == ["first.", "second."]
    assert keys[0].algorithm == "hmac-sha256"
    assert keys[1].secret == base64.b64decode(SECRET_B)
    path = _write(tmp_path, text)
    assert load_key(path, "second").algorithm == "hmac-sha512"
    assert load_key(path, "FIRST.").secret == base64.b64decode(SECRET_A)
    with pytest.raises(SettingsError, match=r"several keys .*first.*second.*tsig_key_name"):
        load_key(path)
    with pytest.raises(SettingsError, match="has no key 'third'"):
        load_key(path, "third")


def test_md5_is_refused_and_sha1_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    md5 = _write(tmp_path, _keygen("hmac-md5", "old"), name="md5.key")
    with pytest.raises(SettingsError, match=r"md5\.key:\d+: key \"old\" uses hmac-md5"):
        load_key(md5)
    caplog.set_level(logging.WARNING)
    sha1_text = _keygen("hmac-sha1", "legacy")
    key = load_key(_write(tmp_path, sha1_text, name="sha1.key"))
    assert key.algorithm_name == dns.tsig.HMAC_SHA1
    assert "uses hmac-sha1, which is weak" in caplog.text
    assert _secret_of(sha1_text) not in caplog.text


def test_permissions(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = _keygen("hmac-sha256", "k")
    caplog.set_level(logging.WARNING)
    load_key(_write(tmp_path, text, 0o640))
    assert caplog.text == ""  # group-readable (root:bind 0640) is the normal setup
    load_key(_write(tmp_path, text, 0o644))
    assert "readable by everyone" in caplog.text
    with pytest.raises(SettingsError, match="writable by everyone"):
        load_key(_write(tmp_path, text, 0o606))
    with pytest.raises(SettingsError, match="cannot read TSIG key file"):
        load_key(tmp_path / "missing.key")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('key "k" {{ algorithm hmac-sha256; secret "{s}!!"; }};', "not valid base64"),
        ('key "k" {{ algorithm hmac-sha256; }};', "has no secret"),
        ('key "k" {{ secret "{s}"; }};', "has no algorithm"),
        ('key "k" {{ algorithm hmac-whirlpool; secret "{s}"; }};', "unsupported algorithm"),
        ('key "k" {{ algorithm hmac-sha256; secret "{s}" }};', "expected ';'"),
        ('key "k" {{ algorithm hmac-sha256; secret "{s}; }};', "unterminated quoted string"),
        ('/* key "k" {{ algorithm hmac-sha256; secret "{s}"; }};', "unterminated /"),
        ('key "k" {{ algorithm hmac-sha256; sekret "{s}"; }};', "unexpected clause"),
        ('key "k" {{ algorithm hmac-sha256; secret "{s}"; ', "file ends"),
        ('key "k" {{ algorithm hmac-sha256; secret "{s}"; }};\n' * 2, "defined twice"),
        ("# only a comment\n", "holds no key"),
    ],
)
def test_errors_name_the_place_but_never_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, message: str
) -> None:
    caplog.set_level(logging.DEBUG)
    path = _write(tmp_path, text.format(s=SECRET_A))
    with pytest.raises(SettingsError) as info:
        load_key(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    for leak in (SECRET_A, SECRET_A[:16], SECRET_A[-16:]):
        assert leak not in str(info.value)
        assert leak not in caplog.text


def test_repr_and_describe_hide_the_secret(tmp_path: Path) -> None:
    text = _keygen("hmac-sha256", "tlsa-key")
    key = load_key(_write(tmp_path, text))
    secret = _secret_of(text)
    for shown in (repr(key), str(key), key.describe()):
        assert secret not in shown
        assert repr(key.secret) not in shown
    assert key.describe() == "tlsa-key (hmac-sha256)"
