"""`certbot-dane-tlsa record`: zone-file lines that agree with openssl, from a cert or a key."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.pki import make_pki, write_lineage


def openssl_311(cert: Path) -> str:
    pubkey = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"], input=pubkey, capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True
    ).stdout
    assert len(digest) == 32
    return digest.hex()


def test_record_from_cert_and_from_key_agree_with_openssl(tmp_path: Path) -> None:
    live = write_lineage(tmp_path, "mx.example.test", make_pki("rsa2048", ["mx.example.test"]))
    expected = openssl_311(live / "cert.pem")
    from_cert = run_cli("record", "--cert", live / "fullchain.pem", "--host", "mx.example.test")
    assert from_cert.returncode == 0, from_cert.stderr
    assert from_cert.stdout == f"_25._tcp.mx.example.test. IN TLSA 3 1 1 {expected}\n"
    from_key = run_cli("record", "--key", live / "privkey.pem", "--host", "mx.example.test")
    assert from_key.stdout == from_cert.stdout


def test_record_several_ports_and_ttl(tmp_path: Path) -> None:
    live = write_lineage(tmp_path, "mx.example.test", make_pki("p256", ["mx.example.test"]))
    result = run_cli(
        "record", "--cert", live / "cert.pem", "--host", "mx.example.test",
        "--port", "25,465", "--ttl", "1h",
    )  # fmt: skip
    owners = [line.split()[0] for line in result.stdout.splitlines()]
    assert owners == ["_25._tcp.mx.example.test.", "_465._tcp.mx.example.test."]
    assert all(line.split()[1] == "3600" for line in result.stdout.splitlines())


def test_record_warns_about_fragile_params(tmp_path: Path) -> None:
    live = write_lineage(tmp_path, "mx.example.test", make_pki("p256", ["mx.example.test"]))
    result = run_cli("record", "--cert", live / "cert.pem", "--params", "3 0 1")
    assert result.returncode == 0
    assert "warning" in result.stderr and "renewal" in result.stderr


def test_record_bad_input_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    result = run_cli("record", "--cert", empty)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"certbot-dane-tlsa: error: {empty}: the certificate file is empty"
    ]
    bad_port = run_cli("record", "--cert", empty, "--port", "smtp")
    assert "--port" in bad_port.stderr and bad_port.returncode == 1
