"""The DER/PEM reader against cryptography as the oracle, on keys and certificates written by
cryptography and by the openssl command line, and against broken input of every shape."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certbot_dane_tlsa import der
from certbot_dane_tlsa.tlsa import load_key_spki
from tests.helpers.pki import KEY_TYPES, cert_pem, make_key, make_pki

EXTRA_KEY_TYPES = ("p521", "rsa3072", "rsa4096", "ed448")
ALL_KEY_TYPES = (*KEY_TYPES, *EXTRA_KEY_TYPES)
# Formats cryptography can write, and whether the public half ends up in the file.
FORMATS = [
    (ser.Encoding.PEM, ser.PrivateFormat.PKCS8),
    (ser.Encoding.DER, ser.PrivateFormat.PKCS8),
    (ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL),
    (ser.Encoding.DER, ser.PrivateFormat.TraditionalOpenSSL),
]


def new_key(kind: str) -> PrivateKeyTypes:
    if kind in KEY_TYPES:
        return make_key(kind)
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(kind)


def spki_of(public: PublicKeyTypes) -> bytes:
    return public.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)


def oracle(key_file: bytes) -> bytes:
    """What cryptography says the SPKI of a key file's public half is."""
    if b"-----BEGIN" in key_file:
        key = ser.load_pem_private_key(key_file, password=None)
    else:
        key = ser.load_der_private_key(key_file, password=None)
    return spki_of(key.public_key())


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKeyTypes]:
    return {kind: new_key(kind) for kind in ALL_KEY_TYPES}


# ---- private keys written by cryptography ----------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KEY_TYPES)
@pytest.mark.parametrize(("encoding", "fmt"), FORMATS, ids=lambda v: getattr(v, "name", str(v)))
def test_key_spki_equals_cryptography(
    keys: dict[str, PrivateKeyTypes], kind: str, encoding: ser.Encoding, fmt: ser.PrivateFormat
) -> None:
    key = keys[kind]
    try:
        data = key.private_bytes(encoding, fmt, ser.NoEncryption())
    except ValueError:
        assert kind.startswith("ed")  # Edwards keys have no traditional format
        return
    got = der.private_key_spki(data)
    if kind.startswith("ed"):
        # PKCS#8 v1, as cryptography writes it, has no public half: only key math gives it.
        assert got is None
    else:
        assert got == oracle(data) == spki_of(key.public_key())


def one_asymmetric_key(version: int, spki: bytes, private: bytes, public: bytes) -> bytes:
    """RFC 5958 OneAsymmetricKey for an Edwards key, with [1] publicKey."""
    identifier = der.read_single(spki, der.SEQUENCE, "spki").children().next(der.SEQUENCE)
    return der.encode(
        der.SEQUENCE,
        der.encode(der.INTEGER, bytes([version]))
        + identifier.encoded
        + der.encode(der.OCTET_STRING, der.encode(der.OCTET_STRING, private))
        + der.encode(der.CTX1_PRIM, b"\x00" + public),
    )


@pytest.mark.parametrize("kind", ["ed25519", "ed448"])
def test_edwards_one_asymmetric_key_v2_carries_its_public_key(
    keys: dict[str, PrivateKeyTypes], kind: str
) -> None:
    # Neither cryptography nor OpenSSL 3.0 writes (or reads) RFC 5958 v2 with [1] publicKey,
    # so the file is built here from the key's raw halves; the oracle is the key's own SPKI.
    key = keys[kind]
    assert isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    raw = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    spki = spki_of(key.public_key())
    assert der.private_key_spki(one_asymmetric_key(1, spki, raw, public)) == spki
    # A public key in a version 0 structure, or one of the wrong length, is malformed.
    for malformed in (
        one_asymmetric_key(0, spki, raw, public),
        one_asymmetric_key(1, spki, raw, public[:-1]),
        one_asymmetric_key(1, spki, raw[:-1], public),
    ):
        with pytest.raises(der.DerError):
            der.private_key_spki(malformed)


@pytest.mark.parametrize("kind", ALL_KEY_TYPES)
def test_key_shape_from_spki(keys: dict[str, PrivateKeyTypes], kind: str) -> None:
    public = keys[kind].public_key()
    shape = der.spki_kind(spki_of(public))
    if isinstance(public, rsa.RSAPublicKey):
        assert (shape.algorithm, shape.rsa_bits) == ("rsa", public.key_size)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        assert (shape.algorithm, shape.curve) == ("ec", public.curve.name)
    else:
        assert shape.algorithm == kind
    assert shape.oid.count(".") >= 2


def test_unknown_curve_and_algorithm_shapes() -> None:
    brainpool = ec.generate_private_key(ec.BrainpoolP256R1()).public_key()
    shape = der.spki_kind(spki_of(brainpool))
    assert (shape.algorithm, shape.curve) == ("ec", None)
    x25519_spki = bytes.fromhex("302a300506032b656e032100") + bytes(32)
    shape = der.spki_kind(x25519_spki)
    assert (shape.algorithm, shape.oid) == ("unknown", "1.3.101.110")


def test_secp256k1_key_spki_equals_cryptography() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    data = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    assert der.private_key_spki(data) == spki_of(key.public_key())


def test_unknown_curve_key_is_left_to_cryptography() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    data = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    assert der.private_key_spki(data) is None


@pytest.mark.parametrize("fmt", [ser.PrivateFormat.PKCS8, ser.PrivateFormat.TraditionalOpenSSL])
def test_encrypted_keys_written_by_cryptography_are_recognised(fmt: ser.PrivateFormat) -> None:
    key = make_key("p256")
    data = key.private_bytes(ser.Encoding.PEM, fmt, ser.BestAvailableEncryption(b"secret"))
    with pytest.raises(der.EncryptedKeyError):
        der.private_key_spki(data)


# ---- private keys written by the openssl command line ----------------------------------------


def openssl(*argv: str, data: bytes | None = None) -> bytes:
    out = subprocess.run(["openssl", *argv], input=data, capture_output=True, check=True).stdout
    assert out, f"openssl {argv} printed nothing"
    return out


GENPKEY = {
    "rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "rsa3072": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "p521": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
    "ed25519": ["-algorithm", "ed25519"],
    "ed448": ["-algorithm", "ed448"],
}


@pytest.fixture(scope="module")
def openssl_keys() -> dict[str, bytes]:
    return {kind: openssl("genpkey", *argv) for kind, argv in GENPKEY.items()}


@pytest.mark.parametrize("kind", sorted(GENPKEY))
def test_openssl_genpkey_pkcs8(openssl_keys: dict[str, bytes], kind: str) -> None:
    pem = openssl_keys[kind]
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    pkcs8_der = openssl("pkey", "-outform", "DER", data=pem)
    for data in (pem, pkcs8_der):
        got = der.private_key_spki(data)
        if kind.startswith("ed"):
            assert got is None
        else:
            assert got == oracle(data)


@pytest.mark.parametrize("kind", ["rsa2048", "rsa3072"])
def test_openssl_traditional_rsa(openssl_keys: dict[str, bytes], kind: str) -> None:
    pem = openssl("rsa", "-traditional", data=openssl_keys[kind])
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    rsa_der = openssl("rsa", "-traditional", "-outform", "DER", data=openssl_keys[kind])
    assert der.private_key_spki(pem) == oracle(pem)
    assert der.private_key_spki(rsa_der) == oracle(rsa_der) == oracle(pem)


@pytest.mark.parametrize("curve", ["prime256v1", "secp384r1", "secp521r1"])
def test_openssl_ecparam_genkey(curve: str) -> None:
    # -noout: the EC PRIVATE KEY alone, with [0] parameters and [1] public key.
    alone = openssl("ecparam", "-name", curve, "-genkey", "-noout")
    assert alone.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert der.private_key_spki(alone) == oracle(alone)
    # Without -noout an EC PARAMETERS block comes first; the key is still the one block.
    both = openssl("ecparam", "-name", curve, "-genkey")
    assert both.startswith(b"-----BEGIN EC PARAMETERS-----")
    assert der.private_key_spki(both) == oracle(both)
    ec_der = openssl("ec", "-outform", "DER", data=alone)
    assert der.private_key_spki(ec_der) == oracle(alone)


def test_openssl_ec_without_public_key_falls_back(tmp_path: Path) -> None:
    full = openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout")
    traditional = openssl("ec", "-no_public", data=full)
    pkcs8 = openssl("pkey", data=traditional)
    compressed = openssl("ec", "-conv_form", "compressed", data=full)
    for data in (traditional, pkcs8, compressed):
        assert der.private_key_spki(data) is None
        # The caller then asks cryptography, and gets the same key.
        path = tmp_path / "key.pem"
        path.write_bytes(data)
        assert load_key_spki(path) == oracle(full)
    assert b"BEGIN PRIVATE KEY" in pkcs8 and b"BEGIN EC PRIVATE KEY" in traditional


def test_openssl_encrypted_keys_are_recognised(openssl_keys: dict[str, bytes]) -> None:
    plain = openssl_keys["rsa2048"]
    pkcs8 = openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:x", data=plain)
    assert pkcs8.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    pkcs8_der = openssl(
        "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:x", "-outform", "DER",
        data=plain,
    )  # fmt: skip
    legacy = openssl("rsa", "-traditional", "-aes128", "-passout", "pass:x", data=plain)
    assert b"Proc-Type: 4,ENCRYPTED" in legacy
    legacy_ec = openssl(
        "ec", "-aes128", "-passout", "pass:x",
        data=openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout"),
    )  # fmt: skip
    for data in (pkcs8, pkcs8_der, legacy, legacy_ec):
        with pytest.raises(der.EncryptedKeyError):
            der.private_key_spki(data)


def test_key_file_with_two_keys_is_left_to_the_caller() -> None:
    one = make_key("p256").private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()
    )
    with pytest.raises(der.DerError, match="one private key"):
        der.private_key_spki(one + one)
    with pytest.raises(der.DerError, match="one private key"):
        der.private_key_spki(b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n")


def test_rsa_key_damaged_in_its_private_part_is_refused() -> None:
    key = make_key("rsa2048")
    data = bytearray(
        key.private_bytes(
            ser.Encoding.DER, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()
        )
    )
    # Damage the last byte of p (version, n, e, d, p, ...): the public half is intact, yet
    # n = p * q no longer holds.
    reader = der.read_single(bytes(data), der.SEQUENCE, "key").children()
    fields = [reader.next(der.INTEGER) for _ in range(5)]
    prime1 = fields[4]
    data[prime1.end - 1] ^= 0x02
    with pytest.raises(der.DerError, match="inconsistent"):
        der.private_key_spki(bytes(data))


# ---- certificates -----------------------------------------------------------------------------


def facts_match(info: der.CertInfo, cert: x509.Certificate) -> None:
    assert info.der == cert.public_bytes(ser.Encoding.DER)
    assert info.spki == spki_of(cert.public_key())
    assert info.issuer == cert.issuer.public_bytes()
    assert info.subject == cert.subject.public_bytes()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        expected = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        expected = ()
    assert info.dns_names == expected


@pytest.mark.parametrize("kind", KEY_TYPES)
def test_certificate_facts_equal_cryptography(kind: str) -> None:
    pki = make_pki(kind, ["mx.example.test", "Mail.Example.Test.", "*.example.test"])
    infos = der.certificates_from_pem(cert_pem(pki.leaf, pki.intermediate, pki.root))
    assert len(infos) == 3
    for info, cert in zip(infos, (pki.leaf, pki.intermediate, pki.root), strict=True):
        facts_match(info, cert)
    assert infos[0].dns_names == ("mx.example.test", "Mail.Example.Test.", "*.example.test")
    assert infos[1].dns_names == ()
    assert infos[0].issuer == infos[1].subject


def _self_signed(
    key: CertificateIssuerPrivateKeyTypes, extensions: list[x509.ExtensionType]
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd names")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(key, hashes.SHA256())


def test_san_dns_names_keep_order_among_other_name_types() -> None:
    san = x509.SubjectAlternativeName(
        [
            x509.RFC822Name("postmaster@example.test"),
            x509.DNSName("b.example.test"),
            x509.IPAddress(ipaddress.ip_address("192.0.2.1")),
            x509.UniformResourceIdentifier("https://example.test/"),
            x509.DNSName("a.example.test"),
            x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dir")])),
            x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
            x509.OtherName(x509.ObjectIdentifier("1.2.3.5"), b"\x05\x00"),
            x509.DNSName("c.example.test"),
        ]
    )
    cert = _self_signed(make_key("p256"), [san])
    info = der.read_certificate(cert.public_bytes(ser.Encoding.DER))
    facts_match(info, cert)
    assert info.dns_names == ("b.example.test", "a.example.test", "c.example.test")


def test_certificates_written_by_openssl(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    pem = openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
        "-subj", "/O=x/CN=openssl.example.test", "-days", "2",
        "-addext", "subjectAltName=DNS:one.example.test,IP:127.0.0.1,DNS:two.example.test",
    )  # fmt: skip
    info = der.certificates_from_pem(pem)[0]
    facts_match(info, x509.load_pem_x509_certificate(pem))
    assert info.dns_names == ("one.example.test", "two.example.test")
    assert der.private_key_spki(key.read_bytes()) == oracle(key.read_bytes()) == info.spki
    # A version 1 certificate: no [0] version, no extensions.
    csr = openssl("req", "-new", "-key", str(key), "-subj", "/CN=v1.example.test")
    v1 = openssl("x509", "-req", "-key", str(key), "-days", "2", data=csr)
    parsed = x509.load_pem_x509_certificate(v1)
    assert parsed.version == x509.Version.v1
    facts_match(der.certificates_from_pem(v1)[0], parsed)


def test_pem_reading_is_strict_but_skips_text_between_blocks() -> None:
    pki = make_pki("p256")
    pem = cert_pem(pki.leaf, pki.intermediate)
    leaf_der = pki.leaf.public_bytes(ser.Encoding.DER)
    assert (
        der.pem_decode(b"Certificate:\n  text\n" + pem.replace(b"\n", b"\r\n"), "CERTIFICATE")[0]
        == leaf_der
    )
    x509_label = pem.replace(b"CERTIFICATE", b"X509 CERTIFICATE")
    assert der.certificates_from_pem(x509_label)[0].der == leaf_der
    key = make_key("p256").private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()
    )
    assert len(der.pem_decode(key + pem, "CERTIFICATE")) == 2
    broken = [
        pem + b"-----BEGIN CERTIFICATE-----\nAAAA\n",  # never closed
        pem.replace(b"END CERTIFICATE", b"END FOO", 1),  # closed by another label
        pem + b"-----END CERTIFICATE-----\n",  # END without BEGIN
        pem + b"-----BEGIN FOO-----\nAA!A\n-----END FOO-----\n",  # bad base64 anywhere
        pem.replace(b"\n", b"\nA", 2),  # stray characters break the base64 length
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n",
    ]
    for data in broken:
        with pytest.raises(der.DerError):
            der.certificates_from_pem(data)


# ---- malformed DER ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_cert() -> bytes:
    pki = make_pki("p256", ["mx.example.test", "smtp.example.test"])
    return pki.leaf.public_bytes(ser.Encoding.DER)


@pytest.fixture(scope="module")
def sample_keys() -> list[bytes]:
    out = []
    for kind in ("rsa2048", "p256"):
        key = make_key(kind)
        for encoding, fmt in FORMATS:
            out.append(key.private_bytes(encoding, fmt, ser.NoEncryption()))
    return out


def test_every_truncation_of_a_certificate_is_refused(sample_cert: bytes) -> None:
    for cut in range(len(sample_cert)):
        with pytest.raises(der.DerError):
            der.read_certificate(sample_cert[:cut])


def test_every_truncation_of_a_der_key_is_refused(sample_keys: list[bytes]) -> None:
    for data in (k for k in sample_keys if not k.startswith(b"-----")):
        for cut in range(len(data)):
            with pytest.raises(der.DerError):
                der.private_key_spki(data[:cut])


READERS: list[Callable[[bytes], object]] = [
    der.read_certificate,
    der.private_key_spki,
    der.spki_kind,
    der.pem_blocks,
    der.certificates_from_pem,
]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x81\x05\x00\x00\x00\x00\x00",  # long form for a short length
        b"\x30\x82\x00\x05\x00\x00\x00\x00\x00",  # leading zero in the length
        b"\x30\x84\xff\xff\xff\xff\x00",  # length far past the end
        b"\x30\x85\x01\x00\x00\x00\x00\x00",  # more length octets than supported
        b"\x30\xff",  # length-of-length 127
        b"\x1f\x81\x00\x00",  # multi-byte tag
        b"\x30\x00\x00",  # trailing byte
        b"\x02\x02\x00\x05",  # non-minimal INTEGER
        b"garbage that is not DER at all",
        bytes(range(256)),
    ],
)
def test_malformed_input_raises_the_module_error(data: bytes) -> None:
    for read in READERS:
        try:
            read(data)
        except der.DerError:
            continue
        # Only the PEM readers may accept text without any block in it.
        assert read in (der.pem_blocks, der.certificates_from_pem), (read, data)


def test_over_long_lengths_are_refused(sample_cert: bytes) -> None:
    # The certificate claims one byte more than there is.
    data = bytearray(sample_cert)
    assert data[:2] == b"\x30\x82"
    data[3] += 1
    with pytest.raises(der.DerError, match="past the end"):
        der.read_certificate(bytes(data))
    # The TBSCertificate claims 256 bytes more than the certificate around it holds.
    data = bytearray(sample_cert)
    assert data[4:6] == b"\x30\x82"
    data[6] += 1
    with pytest.raises(der.DerError, match="past the end"):
        der.read_certificate(bytes(data))


def test_certificate_with_trailing_data_is_refused(sample_cert: bytes) -> None:
    with pytest.raises(der.DerError):
        der.read_certificate(sample_cert + b"\x00")


def test_integers_and_oids_must_be_minimal() -> None:
    def tlv(data: bytes) -> der.Tlv:
        return der.read_single(data, data[0], "test")

    assert der.uint(tlv(b"\x02\x02\x00\x80"), "n") == 128
    assert der.integer(tlv(b"\x02\x01\xff"), "n") == -1
    for bad in (b"\x02\x02\x00\x05", b"\x02\x02\xff\x80", b"\x02\x00"):
        with pytest.raises(der.DerError):
            der.integer(tlv(bad), "n")
    with pytest.raises(der.DerError, match="negative"):
        der.uint(tlv(b"\x02\x01\x80"), "n")
    assert der.oid_text(der.oid(tlv(b"\x06\x03\x55\x1d\x11"), "o")) == "2.5.29.17"
    for bad in (b"\x06\x02\x80\x01", b"\x06\x01\x81", b"\x06\x00"):
        with pytest.raises(der.DerError):
            der.oid(tlv(bad), "o")


# ---- fuzzing ----------------------------------------------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_any_bytes_parse_or_raise_der_error(data: bytes) -> None:
    for read in READERS:
        with contextlib.suppress(der.DerError):
            read(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_certificates_and_keys(
    sample_cert: bytes, sample_keys: list[bytes], data: st.DataObject
) -> None:
    original = data.draw(st.sampled_from([sample_cert, *sample_keys]))
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(mutated) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "set"]))
        if action == "flip":
            mutated[where] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "insert":
            mutated.insert(where, data.draw(st.integers(0, 255)))
        elif action == "delete" and len(mutated) > 1:
            del mutated[where]
        else:
            mutated[where] = data.draw(st.sampled_from([0x00, 0x30, 0x80, 0x81, 0x82, 0xFF]))
    for read in READERS:
        with contextlib.suppress(der.DerError):
            read(bytes(mutated))
