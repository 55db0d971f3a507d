"""TLSA record data derived from certificates and keys.

This is the one place where bytes that end up in DNS are computed, so it is strict: every key
type goes through ``cryptography`` (never through a key-type-specific external tool whose
failure could be lost), and it refuses outright to hand back data that cannot be a real
association, such as the digest of empty input, which once took down DANE mail for hours.

It imports only the pieces of ``cryptography`` it needs and nothing from certbot, because the
deploy hook and the plugin import it on every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dns.name
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_private_key,
    load_pem_private_key,
    load_pem_public_key,
)

from certbot_dane_tlsa.errors import CertificateError
from certbot_dane_tlsa.records import MATCHING_TYPES, SELECTORS, TlsaParams, TlsaRecord

# Digests of empty input: data equal to one of these means the key or certificate never
# reached the hash (the failure described in docs/field-notes.md section 1).
_EMPTY_DIGESTS = {
    1: hashlib.sha256(b"").digest(),
    2: hashlib.sha512(b"").digest(),
}


@dataclass(frozen=True)
class Material:
    """What one lineage gives us: the leaf, the issuers after it, and maybe the private key."""

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    private_key: PrivateKeyTypes | None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(
            f"{path}: cannot read the {what}: {_one_line(exc.strerror or str(exc))}"
        ) from None
    if not data.strip():
        raise CertificateError(f"{path}: the {what} file is empty")
    return data


def load_certificates(path: Path) -> list[x509.Certificate]:
    """All PEM certificates in ``path``, in file order."""
    data = _read(path, "certificate")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise CertificateError(f"{path}: no readable PEM certificate in this file")
    return certs


def load_private_key(path: Path) -> PrivateKeyTypes:
    """The private key in ``path`` (PEM, or DER as a fallback).

    Errors from the parser are not passed on verbatim: the message must never be able to carry
    key bytes into a log.
    """
    data = _read(path, "private key")
    try:
        if b"-----BEGIN" in data:
            return load_pem_private_key(data, password=None)
        return load_der_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when a password is needed.
        raise CertificateError(
            f"{path}: the private key is encrypted; an unencrypted key is needed"
        ) from None
    except UnsupportedAlgorithm:
        raise CertificateError(f"{path}: the private key uses an unsupported algorithm") from None
    except ValueError:
        raise CertificateError(f"{path}: not a readable private key (PEM or DER)") from None


def load_public_key(path: Path) -> PublicKeyTypes:
    """The public key in ``path``, which may hold a public key or a private key (PEM).

    ``record --key`` takes either, so a key staged for the next rollover can be published
    before any certificate exists for it.
    """
    data = _read(path, "key")
    if b"PRIVATE KEY-----" in data or b"-----BEGIN" not in data:
        return load_private_key(path).public_key()
    try:
        return load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(f"{path}: not a readable public key (PEM)") from None


def load_material(cert: Path, chain: Path | None = None, key: Path | None = None) -> Material:
    """Leaf, chain and key from files.

    ``cert`` may be a fullchain file: its first certificate is the leaf and the rest is chain.
    Certificates repeated between ``cert`` and ``chain`` are kept once, in first-seen order.
    """
    certs = load_certificates(cert)
    issuers = list(certs[1:])
    if chain is not None:
        issuers.extend(load_certificates(chain))
    unique: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for c in issuers:
        der = c.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            unique.append(c)
    private_key = load_private_key(key) if key is not None else None
    material = Material(certs[0], tuple(unique), private_key)
    if key is not None:
        _check_key(material, f"{key}: the private key does not belong to the certificate in {cert}")
    return material


def spki_der(public_key: PublicKeyTypes) -> bytes:
    """DER SubjectPublicKeyInfo: the selector 1 input."""
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _check_key(material: Material, message: str) -> None:
    if material.private_key is None:
        return
    if spki_der(material.private_key.public_key()) != spki_der(material.leaf.public_key()):
        raise CertificateError(message)


def check_key_matches(material: Material) -> None:
    """Refuse material whose private key is not the leaf's: its records would lock us out.

    Material without a private key has nothing to compare and passes.
    """
    _check_key(
        material,
        "the private key does not belong to the certificate "
        f"(subject {_one_line(material.leaf.subject.rfc4514_string())})",
    )


def _digest(data: bytes, mtype: int) -> bytes:
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    raise ValueError(f"matching type {mtype} is not one of 0, 1, 2")


def association_data(cert: x509.Certificate, selector: int, mtype: int) -> bytes:
    """The TLSA data that ``cert`` yields for ``selector``/``mtype`` (ValueError if unknown).

    Shared by :func:`derive` and the live check so both sides compute it the same way.
    """
    if selector == 0:
        selected = cert.public_bytes(Encoding.DER)
    elif selector == 1:
        selected = spki_der(cert.public_key())
    else:
        raise ValueError(f"selector {selector} is not one of 0, 1")
    return _digest(selected, mtype)


def _refuse_degenerate(data: bytes, params: TlsaParams, what: str) -> None:
    if not data or data == _EMPTY_DIGESTS.get(params.mtype):
        raise CertificateError(
            f"refusing to publish TLSA {params} for {what}: the data is empty or the digest of "
            "empty input, so the certificate or key was not read"
        )


def _check_params(params: TlsaParams) -> None:
    if params.usage not in (0, 1, 2, 3):
        raise CertificateError(f"TLSA usage {params.usage} is not one of 0, 1, 2, 3")
    if params.selector not in SELECTORS:
        raise CertificateError(f"TLSA selector {params.selector} is not one of 0, 1")
    if params.mtype not in MATCHING_TYPES:
        raise CertificateError(f"TLSA matching type {params.mtype} is not one of 0, 1, 2")


def _describe(cert: x509.Certificate) -> str:
    return _one_line(cert.subject.rfc4514_string()) or "(empty subject)"


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` really signed ``cert``: the names agree and the signature verifies.

    Name equality alone is not enough, because an intermediate can be re-keyed or cross-signed
    under the same name; a DANE-TA record for the wrong key would not match.
    """
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def find_issuer(leaf: x509.Certificate, chain: Iterable[x509.Certificate]) -> x509.Certificate:
    """The certificate in ``chain`` that issued ``leaf`` (CertificateError if none did)."""
    for candidate in chain:
        if issued_by(leaf, candidate):
            return candidate
    raise CertificateError(
        f"the issuer of {_describe(leaf)} ({_one_line(leaf.issuer.rfc4514_string())}) is not "
        "in the chain file; usage 0/2 records need the intermediate that signed the certificate"
    )


def derive(material: Material, params: TlsaParams) -> TlsaRecord:
    """The TLSA record ``params`` asks for.

    Usage 1/3 describe the leaf; usage 0/2 the certificate that actually issued it, found by
    name and signature so that a stale or unrelated intermediate in the chain file is not used.
    """
    _check_params(params)
    check_key_matches(material)
    leaf = material.leaf
    target = leaf if params.usage in (1, 3) else find_issuer(leaf, material.chain)
    data = association_data(target, params.selector, params.mtype)
    _refuse_degenerate(data, params, _describe(target))
    return TlsaRecord(params.usage, params.selector, params.mtype, data)


def derive_from_public_key(public_key: PublicKeyTypes, params: TlsaParams) -> TlsaRecord:
    """A selector 1 record for a bare key, e.g. a staged next key with no certificate yet."""
    _check_params(params)
    if params.selector != 1:
        raise CertificateError(
            f"TLSA {params}: a bare public key only gives selector 1 (SPKI) records; "
            "selector 0 needs the certificate"
        )
    data = _digest(spki_der(public_key), params.mtype)
    _refuse_degenerate(data, params, "the public key")
    return TlsaRecord(params.usage, params.selector, params.mtype, data)


def params_warnings(params: TlsaParams, port: int) -> list[str]:
    """Advice about parameter choices that work but are known to cause outages or bloat."""
    warnings: list[str] = []
    if params.selector == 0:
        warnings.append(
            f"TLSA {params}: selector 0 hashes the whole certificate, which changes at every "
            "renewal; selector 1 (public key) survives renewals with a reused key"
        )
    if params.usage in (0, 1) and port == 25:
        warnings.append(
            f"TLSA {params}: usage {params.usage} is unusable for SMTP on port 25 "
            "(RFC 7672 section 3.1.3): DANE senders treat it as unusable; use 3 or 2"
        )
    if params.mtype == 0:
        warnings.append(
            f"TLSA {params}: matching type 0 publishes the full data, making large RRsets "
            "(truncation, TCP fallback); use 1 (SHA-256)"
        )
    if params.usage == 2:
        warnings.append(
            f"TLSA {params}: usage 2 pins the issuing intermediate; Let's Encrypt picks among "
            "several and rotates them, so publish 3 1 1 as well or every possible issuer"
        )
    return warnings


def record_lines(
    records: Iterable[tuple[dns.name.Name, TlsaRecord]], ttl: int | None = None
) -> list[str]:
    """Master-file lines, one per record, e.g. ``_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 ..``.

    Owners are printed as given; pass absolute names so the lines do not depend on ``$ORIGIN``.
    """
    ttl_field = "" if ttl is None else f" {ttl}"
    return [f"{owner.to_text()}{ttl_field} IN TLSA {rec.to_text()}" for owner, rec in records]
