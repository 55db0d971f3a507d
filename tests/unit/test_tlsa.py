"""TLSA derivation checked against openssl and ldns-dane, computed independently."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certbot_dane_tlsa import der, dnsname
from certbot_dane_tlsa.errors import CertificateError
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord, tlsa_owner
from certbot_dane_tlsa.tlsa import (
    Certificate,
    Material,
    as_certificate,
    association_data,
    check_key_matches,
    derive,
    derive_from_public_key,
    load_certificates,
    load_key_spki,
    load_material,
    load_private_key,
    params_warnings,
    record_lines,
    same_public_key,
    spki_der,
)
from tests.helpers.pki import KEY_TYPES, Pki, cert_pem, issue, key_pem, make_key, make_pki

ALL_PARAMS = [TlsaParams(u, s, m) for u, s, m in itertools.product(range(4), range(2), range(3))]
EMPTY_SHA256 = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


class Files:
    """One PKI written to disk the way certbot writes it (plus the root for ldns-dane -f)."""

    def __init__(self, base: Path, pki: Pki) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.cert = base / "cert.pem"
        self.chain = base / "chain.pem"
        self.fullchain = base / "fullchain.pem"
        self.privkey = base / "privkey.pem"
        self.root = base / "root.pem"
        self.cert.write_bytes(cert_pem(pki.leaf))
        self.chain.write_bytes(cert_pem(pki.intermediate))
        self.fullchain.write_bytes(cert_pem(pki.leaf, pki.intermediate))
        self.privkey.write_bytes(key_pem(pki.leaf_key))
        self.root.write_bytes(cert_pem(pki.root))


@pytest.fixture(scope="module", params=KEY_TYPES)
def files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Files:
    kind = str(request.param)
    return Files(tmp_path_factory.mktemp(kind), make_pki(kind))


def run(argv: list[str], data: bytes | None = None) -> bytes:
    out = subprocess.run(argv, input=data, capture_output=True, check=True).stdout
    assert out, f"{argv} printed nothing"
    return out


def openssl_tlsa(cert_file: Path, params: TlsaParams) -> bytes:
    """TLSA data computed by the openssl command line only."""
    if params.selector == 0:
        selected = run(["openssl", "x509", "-in", str(cert_file), "-outform", "DER"])
    else:
        pem = run(["openssl", "x509", "-in", str(cert_file), "-noout", "-pubkey"])
        selected = run(["openssl", "pkey", "-pubin", "-outform", "DER"], pem)
    if params.mtype == 0:
        return selected
    algo = {1: "-sha256", 2: "-sha512"}[params.mtype]
    return run(["openssl", "dgst", algo, "-binary"], selected)


@pytest.mark.parametrize("params", ALL_PARAMS, ids=str)
def test_derive_agrees_with_openssl(files: Files, params: TlsaParams) -> None:
    material = load_material(files.fullchain, key=files.privkey)
    record = derive(material, params)
    target = files.cert if params.usage in (1, 3) else files.chain
    expected = openssl_tlsa(target, params)
    assert record == TlsaRecord(params.usage, params.selector, params.mtype, expected)
    assert record.looks_well_formed()


def ldns_dane(files: Files, params: TlsaParams | None) -> TlsaRecord:
    """``ldns-dane -c``: offline, reads the chain file and prints one TLSA line.

    Usage 0/1 make ldns-dane do PKIX validation, so it gets the root as CA file; it then picks
    the trust anchor by offset from the end of the validated path (leaf, intermediate, root),
    and ``-o 1`` selects the intermediate. For usage 2 it walks the presented chain only, where
    ``-o 0`` is the last presented certificate: the intermediate.
    """
    argv = ["ldns-dane"]
    if params is not None and params.usage in (0, 1):
        argv += ["-f", str(files.root)]
    if params is not None and params.usage == 0:
        argv += ["-o", "1"]
    if params is not None and params.usage == 2:
        argv += ["-o", "0"]
    argv += ["-c", str(files.fullchain), "create", "mx.example.test", "25"]
    if params is not None:
        argv += [str(params.usage), str(params.selector), str(params.mtype)]
    fields = run(argv).decode().split()
    assert fields[:4] == ["_25._tcp.mx.example.test.", "3600", "IN", "TLSA"]
    return TlsaRecord.from_text(" ".join(fields[4:]))


def test_ldns_dane_default_is_311_and_agrees(files: Files) -> None:
    material = load_material(files.cert, files.chain, files.privkey)
    assert ldns_dane(files, None) == derive(material, TlsaParams(3, 1, 1))


@pytest.mark.parametrize("params", ALL_PARAMS, ids=str)
def test_derive_agrees_with_ldns_dane(files: Files, params: TlsaParams) -> None:
    material = load_material(files.cert, files.chain, files.privkey)
    assert ldns_dane(files, params) == derive(material, params)


def test_record_lines_match_ldns_dane_fields(files: Files) -> None:
    material = load_material(files.fullchain)
    owner = tlsa_owner(dnsname.from_text("mx.example.test"), 25)
    lines = record_lines([(owner, derive(material, TlsaParams(3, 1, 1)))], ttl=3600)
    expected = run(["ldns-dane", "-c", str(files.fullchain), "create", "mx.example.test", "25"])
    assert [line.split() for line in lines] == [expected.decode().split()]


def test_mixed_key_types_usage_2_uses_the_rsa_issuer(tmp_path: Path) -> None:
    # Let's Encrypt issues ECDSA leaves from RSA intermediates too.
    f = Files(tmp_path, make_pki("p256", ca_type="rsa2048"))
    material = load_material(f.fullchain, key=f.privkey)
    record = derive(material, TlsaParams(2, 1, 1))
    assert record.data == openssl_tlsa(f.chain, TlsaParams(2, 1, 1))
    assert record.data != derive(material, TlsaParams(3, 1, 1)).data


def test_usage_2_picks_the_real_issuer_among_decoys(tmp_path: Path) -> None:
    pki = make_pki("p256")
    # Same subject name as the real intermediate but another key: name match alone would pick it.
    decoy_key = make_key("p256")
    decoy = issue("Test Intermediate p256", decoy_key.public_key(), pki.root, pki.root_key, ca=True)
    assert decoy.subject == pki.intermediate.subject
    other = make_pki("p256", tag="other ")
    material = Material(pki.leaf, (other.intermediate, decoy, pki.intermediate), None)
    record = derive(material, TlsaParams(2, 1, 1))
    assert record.data == hashlib.sha256(spki_der(pki.intermediate.public_key())).digest()


def test_derive_from_public_key_equals_certificate_spki(files: Files) -> None:
    material = load_material(files.fullchain, key=files.privkey)
    for mtype in range(3):
        params = TlsaParams(3, 1, mtype)
        assert derive_from_public_key(files.pki.leaf_key.public_key(), params) == derive(
            material, params
        )


def test_derive_from_public_key_refuses_selector_0() -> None:
    key = make_key("p256")
    with pytest.raises(CertificateError, match="selector 1"):
        derive_from_public_key(key.public_key(), TlsaParams(3, 0, 1))


def test_association_data_rejects_unknown_selector_and_mtype() -> None:
    pki = make_pki("p256")
    with pytest.raises(ValueError):
        association_data(pki.leaf, 2, 1)
    with pytest.raises(ValueError):
        association_data(pki.leaf, 1, 3)


def test_derive_rejects_out_of_range_params() -> None:
    pki = make_pki("p256")
    material = Material(pki.leaf, (pki.intermediate,), None)
    for params in (TlsaParams(4, 1, 1), TlsaParams(3, 2, 1), TlsaParams(3, 1, 3)):
        with pytest.raises(CertificateError):
            derive(material, params)


# ---- refusals ---------------------------------------------------------------------------


def assert_one_line_naming(exc: pytest.ExceptionInfo[CertificateError], path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_empty_certificate_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.pem"
    path.write_bytes(b"")
    with pytest.raises(CertificateError) as exc:
        load_certificates(path)
    assert "empty" in assert_one_line_naming(exc, path)


def test_whitespace_only_certificate_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.pem"
    path.write_bytes(b"\n \n")
    with pytest.raises(CertificateError) as exc:
        load_certificates(path)
    assert_one_line_naming(exc, path)


def test_garbage_certificate_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pem"
    path.write_bytes(
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(CertificateError) as exc:
        load_certificates(path)
    assert_one_line_naming(exc, path)


def test_missing_certificate_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.pem"
    with pytest.raises(CertificateError) as exc:
        load_certificates(path)
    assert "No such file" in assert_one_line_naming(exc, path)


def test_key_file_given_as_certificate_is_refused_without_leaking_it(tmp_path: Path) -> None:
    key = make_key("p256")
    path = tmp_path / "privkey.pem"
    pem = key_pem(key)
    path.write_bytes(pem)
    with pytest.raises(CertificateError) as exc:
        load_certificates(path)
    message = assert_one_line_naming(exc, path)
    body = b"".join(pem.splitlines()[1:-1]).decode()
    assert body[:16] not in message


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\n", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
)
def test_unreadable_key_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "privkey.pem"
    path.write_bytes(content)
    with pytest.raises(CertificateError) as exc:
        load_private_key(path)
    assert_one_line_naming(exc, path)


def test_encrypted_key_is_refused_with_reason(tmp_path: Path) -> None:
    key = make_key("rsa2048")
    path = tmp_path / "privkey.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(CertificateError) as exc:
        load_private_key(path)
    assert "encrypted" in assert_one_line_naming(exc, path)


def test_der_key_is_accepted(tmp_path: Path) -> None:
    key = make_key("ed25519")
    path = tmp_path / "privkey.der"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    loaded = load_private_key(path)
    assert spki_der(loaded.public_key()) == spki_der(key.public_key())


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_key_that_does_not_match_is_refused_and_not_shown(tmp_path: Path, kind: str) -> None:
    f = Files(tmp_path, make_pki(kind))
    wrong = make_key(kind)
    wrong_pem = key_pem(wrong)
    f.privkey.write_bytes(wrong_pem)
    with pytest.raises(CertificateError) as exc:
        load_material(f.fullchain, key=f.privkey)
    message = assert_one_line_naming(exc, f.privkey)
    assert "does not belong" in message
    for line in wrong_pem.splitlines()[1:-1]:
        assert line.decode() not in message
    assert key_pem(f.pki.leaf_key).splitlines()[1].decode() not in message
    # The same check through Material, without files.
    material = Material(f.pki.leaf, (f.pki.intermediate,), wrong)
    with pytest.raises(CertificateError, match="does not belong"):
        check_key_matches(material)
    with pytest.raises(CertificateError, match="does not belong"):
        derive(material, TlsaParams(3, 1, 1))


def test_matching_key_passes_and_no_key_passes() -> None:
    pki = make_pki("p384")
    check_key_matches(Material(pki.leaf, (), pki.leaf_key))
    check_key_matches(Material(pki.leaf, (), None))


@pytest.mark.parametrize("usage", [0, 2])
def test_issuer_usages_need_the_issuer_in_the_chain(tmp_path: Path, usage: int) -> None:
    f = Files(tmp_path, make_pki("p256"))
    material = load_material(f.cert)  # cert.pem alone: no chain
    assert material.chain == ()
    with pytest.raises(CertificateError) as exc:
        derive(material, TlsaParams(usage, 1, 1))
    message = str(exc.value)
    assert "\n" not in message
    assert "not in the chain" in message
    # A chain holding only an unrelated CA is no better.
    other = make_pki("p256", tag="unrelated ")
    with pytest.raises(CertificateError, match="not in the chain"):
        derive(Material(f.pki.leaf, (other.intermediate, other.root), None), TlsaParams(2, 1, 1))


def test_load_material_splits_fullchain_and_dedupes_chain(files: Files) -> None:
    material = load_material(files.fullchain, files.chain, files.privkey)
    assert material.leaf == as_certificate(files.pki.leaf)
    assert material.leaf.der == files.pki.leaf.public_bytes(serialization.Encoding.DER)
    assert material.chain == (as_certificate(files.pki.intermediate),)
    assert material.key_spki == spki_der(files.pki.leaf_key.public_key())


def test_degenerate_data_is_refused() -> None:
    # A key object whose serialisation comes back empty stands in for the lost-pipe failure
    # (openssl rsa fed an ECDSA key): cryptography itself cannot be made to produce it.
    class EmptyKey:
        def public_bytes(self, *_: object) -> bytes:
            return b""

    for mtype in range(3):
        with pytest.raises(CertificateError, match="empty"):
            derive_from_public_key(EmptyKey(), TlsaParams(3, 1, mtype))  # type: ignore[arg-type]
    assert hashlib.sha256(b"").digest() == EMPTY_SHA256


def test_params_warnings() -> None:
    assert params_warnings(TlsaParams(3, 1, 1), 25) == []
    assert params_warnings(TlsaParams(3, 1, 2), 443) == []
    sel0 = params_warnings(TlsaParams(3, 0, 1), 25)
    assert len(sel0) == 1 and "renewal" in sel0[0]
    for usage in (0, 1):
        on25 = params_warnings(TlsaParams(usage, 1, 1), 25)
        assert any("7672" in w for w in on25)
        assert not any("7672" in w for w in params_warnings(TlsaParams(usage, 1, 1), 443))
    full = params_warnings(TlsaParams(3, 1, 0), 993)
    assert len(full) == 1 and "large" in full[0]
    ta = params_warnings(TlsaParams(2, 1, 1), 25)
    assert len(ta) == 1 and "intermediate" in ta[0]
    assert len(params_warnings(TlsaParams(0, 0, 0), 25)) == 3
    assert len(params_warnings(TlsaParams(2, 0, 0), 25)) == 3
    assert all("\n" not in w for w in params_warnings(TlsaParams(0, 0, 0), 25))


def test_record_lines_with_and_without_ttl() -> None:
    owner = tlsa_owner(dnsname.from_text("mail.example.com"), 25)
    rec = TlsaRecord(3, 1, 1, bytes(range(32)))
    assert record_lines([(owner, rec)]) == [
        "_25._tcp.mail.example.com. IN TLSA 3 1 1 " + bytes(range(32)).hex()
    ]
    assert record_lines([(owner, rec), (owner, rec)], ttl=300)[1].startswith(
        "_25._tcp.mail.example.com. 300 IN TLSA 3 1 1 000102"
    )
    assert record_lines([]) == []


def test_truncated_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    pem = key_pem(make_key("rsa2048"))
    lines = pem.splitlines()
    path = tmp_path / "privkey.pem"
    path.write_bytes(b"\n".join(lines[: len(lines) // 2] + lines[-1:]) + b"\n")
    with pytest.raises(CertificateError) as exc:
        load_private_key(path)
    message = assert_one_line_naming(exc, path)
    for line in lines[1:-1]:
        assert line.decode() not in message


# ---- the key's public half, read without cryptography where the file carries it ------------


def test_load_key_spki_equals_cryptography_for_every_key_type(files: Files) -> None:
    # Ed25519 keys written by cryptography carry no public half: that path asks cryptography.
    assert load_key_spki(files.privkey) == spki_der(files.pki.leaf_key.public_key())


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_encrypted_key_in_material_is_refused_with_reason(
    tmp_path: Path, fmt: serialization.PrivateFormat
) -> None:
    f = Files(tmp_path, make_pki("p256"))
    f.privkey.write_bytes(
        f.pki.leaf_key.private_bytes(
            serialization.Encoding.PEM, fmt, serialization.BestAvailableEncryption(b"secret")
        )
    )
    with pytest.raises(CertificateError) as exc:
        load_material(f.fullchain, key=f.privkey)
    message = assert_one_line_naming(exc, f.privkey)
    assert message == f"{f.privkey}: the private key is encrypted; an unencrypted key is needed"


def test_key_without_public_half_or_with_compressed_point_still_matches(tmp_path: Path) -> None:
    f = Files(tmp_path, make_pki("p256"))
    traditional = f.pki.leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    for argv in (["openssl", "ec", "-no_public"], ["openssl", "ec", "-conv_form", "compressed"]):
        f.privkey.write_bytes(run(argv, traditional))
        material = load_material(f.fullchain, key=f.privkey)
        assert material.key_spki == material.leaf.spki
        assert derive(material, TlsaParams(3, 1, 1)).data == openssl_tlsa(
            f.cert, TlsaParams(3, 1, 1)
        )


def test_same_public_key_sees_through_point_compression() -> None:
    key = make_key("p256")
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    uncompressed = spki_der(public)
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    outer = der.read_single(uncompressed, der.SEQUENCE, "spki")
    algorithm = outer.children().next(der.SEQUENCE).encoded
    compressed = der.encode(der.SEQUENCE, algorithm + der.encode(der.BIT_STRING, b"\x00" + point))
    assert compressed != uncompressed
    assert same_public_key(compressed, uncompressed)
    assert not same_public_key(compressed, spki_der(make_key("p256").public_key()))
    assert not same_public_key(b"garbage", uncompressed)


def test_material_accepts_cryptography_objects_and_der_certificates(files: Files) -> None:
    pki = files.pki
    from_objects = Material(pki.leaf, (pki.intermediate,), pki.leaf_key)
    leaf = Certificate.from_der(pki.leaf.public_bytes(serialization.Encoding.DER))
    from_der = Material(
        leaf,
        (as_certificate(pki.intermediate),),
        spki_der(pki.leaf_key.public_key()),
    )
    assert from_objects == from_der
    assert leaf.to_x509() == pki.leaf
    assert leaf.der == pki.leaf.public_bytes(serialization.Encoding.DER)
    assert leaf.subject_text() == pki.leaf.subject.rfc4514_string()
    assert leaf.dns_names == ("mx.example.test",)
    assert association_data(pki.leaf, 1, 1) == association_data(leaf, 1, 1)


def test_deploy_path_records_need_no_cryptography_import(tmp_path: Path) -> None:
    f = Files(tmp_path, make_pki("p256"))
    probe = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from certbot_dane_tlsa.records import TlsaParams\n"
        "from certbot_dane_tlsa.tlsa import derive, load_material\n"
        "m = load_material(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))\n"
        "data = [derive(m, TlsaParams(u, s, t)).data.hex() for u in (1, 3) for s in (0, 1)"
        " for t in (0, 1, 2)]\n"
        "print(json.dumps([data, sorted(n for n in sys.modules if n.startswith('cryptography'))]))"
    )
    out = run([sys.executable, "-c", probe, str(f.cert), str(f.chain), str(f.privkey)])
    data, modules = json.loads(out)
    assert modules == []
    material = Material(f.pki.leaf, (f.pki.intermediate,), f.pki.leaf_key)
    expected = [
        derive(material, TlsaParams(u, s, t)).data.hex()
        for u in (1, 3)
        for s in (0, 1)
        for t in (0, 1, 2)
    ]
    assert data == expected
