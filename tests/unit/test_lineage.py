"""Reading certbot lineages laid out as certbot lays them out (relative live -> archive links)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certbot_dane_tlsa.errors import CertificateError
from certbot_dane_tlsa.lineage import Lineage
from certbot_dane_tlsa.records import TlsaParams
from certbot_dane_tlsa.tlsa import as_certificate, derive, spki_der
from tests.helpers.pki import key_pem, make_key, make_pki, write_lineage, write_renewal_conf

NAME = "mx.example.test"


def test_reads_a_certbot_lineage(tmp_path: Path) -> None:
    pki = make_pki("rsa2048", names=(NAME, "Mail.Example.Test", "*.example.test"))
    live = write_lineage(tmp_path, NAME, pki)
    # The helper must produce certbot's shape, or this test proves nothing about certbot.
    link = os.readlink(live / "cert.pem")
    assert link == f"../../archive/{NAME}/cert1.pem"
    lineage = Lineage.from_dir(live)
    assert lineage.name == NAME
    assert lineage.live_dir == live
    assert lineage.cert == live / "cert.pem" and lineage.cert.is_symlink()
    assert lineage.privkey == live / "privkey.pem"
    material = lineage.material()
    assert material.leaf == as_certificate(pki.leaf)
    assert material.chain == (as_certificate(pki.intermediate),)
    assert material.key_spki == spki_der(pki.leaf_key.public_key())
    assert lineage.names() == [NAME, "mail.example.test"]


def test_follows_renewal_to_the_newest_version(tmp_path: Path) -> None:
    pki = make_pki("p256")
    live = write_lineage(tmp_path, NAME, pki)
    lineage = Lineage.from_dir(live)
    first = derive(lineage.material(), TlsaParams(3, 1, 1))
    # Renewal with key reuse: 3 1 1 stays, 3 0 1 changes.
    reused = pki.reissue()
    write_lineage(tmp_path, NAME, reused)
    assert os.readlink(live / "cert.pem").endswith("cert2.pem")
    assert derive(lineage.material(), TlsaParams(3, 1, 1)) == first
    assert lineage.material().leaf == as_certificate(reused.leaf)
    # Renewal with a new key: 3 1 1 changes.
    new_key = make_key("p256")
    write_lineage(tmp_path, NAME, pki.reissue(leaf_key=new_key))
    material = lineage.material()
    assert derive(material, TlsaParams(3, 1, 1)) != first
    assert material.key_spki == spki_der(new_key.public_key())


def test_relative_and_trailing_slash_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = write_lineage(tmp_path, NAME, make_pki("ed25519"))
    monkeypatch.chdir(tmp_path / "live")
    lineage = Lineage.from_dir(Path(NAME + "/"))
    assert lineage.name == NAME
    assert lineage.live_dir == live
    assert lineage.material().leaf is not None


def test_missing_dir_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "live" / "nope.example"
    with pytest.raises(CertificateError) as exc:
        Lineage.from_dir(missing)
    message = str(exc.value)
    assert str(missing) in message and "does not exist" in message
    assert "\n" not in message


def test_file_instead_of_dir(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(CertificateError, match="not a directory"):
        Lineage.from_dir(path)


def test_missing_privkey_names_the_path(tmp_path: Path) -> None:
    live = write_lineage(tmp_path, NAME, make_pki("p384"))
    (live / "privkey.pem").unlink()
    with pytest.raises(CertificateError) as exc:
        Lineage.from_dir(live)
    assert str(live / "privkey.pem") in str(exc.value)
    assert "missing" in str(exc.value)


def test_dangling_symlink_is_reported_as_such(tmp_path: Path) -> None:
    live = write_lineage(tmp_path, NAME, make_pki("p256"))
    (tmp_path / "archive" / NAME / "chain1.pem").unlink()
    with pytest.raises(CertificateError) as exc:
        Lineage.from_dir(live)
    assert str(live / "chain.pem") in str(exc.value)
    assert "dangling symlink" in str(exc.value)


def test_mismatched_key_in_lineage_is_refused(tmp_path: Path) -> None:
    pki = make_pki("p256")
    live = write_lineage(tmp_path, NAME, pki)
    target = live / os.readlink(live / "privkey.pem")
    other = make_pki("p256")
    target.write_bytes(key_pem(other.leaf_key))
    lineage = Lineage.from_dir(live)
    with pytest.raises(CertificateError) as exc:
        lineage.material()
    assert str(live / "privkey.pem") in str(exc.value)
    # names() does not need the key.
    assert lineage.names() == [NAME]


def test_names_keep_certificate_order_without_duplicates(tmp_path: Path) -> None:
    names = (
        "b.example.test",
        "*.example.test",
        "A.Example.Test.",
        "B.EXAMPLE.TEST",
        "a.example.test",
    )
    live = write_lineage(tmp_path, NAME, make_pki("p384", names=names))
    assert Lineage.from_dir(live).names() == ["b.example.test", "a.example.test"]


def test_names_without_san(tmp_path: Path) -> None:
    live = write_lineage(tmp_path, NAME, make_pki("p256", names=()))
    assert Lineage.from_dir(live).names() == []


def test_renewal_conf(tmp_path: Path) -> None:
    live = write_lineage(tmp_path, NAME, make_pki("p256"))
    lineage = Lineage.from_dir(live)
    assert lineage.renewal_conf() is None
    conf = write_renewal_conf(tmp_path, NAME, "reuse_key = True\n")
    assert lineage.renewal_conf() == conf
    assert "reuse_key = True" in conf.read_text()
